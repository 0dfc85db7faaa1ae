/**
 * iptables-mode work shared by the compiles of every node of one cluster.
 *
 * kube-proxy writes each service port's rules from facts of the port (its endpoints, as the node
 * categorises them) and of the proxier (mark, local detector, large-cluster mode, ...). On two
 * nodes of one cluster most ports look the same: a node that has no endpoint of a port sees it
 * as every other such node does. So the rules one port writes (into the fixed chains, and its own
 * chains) are kept as a fragment, and another node whose port has the same rules input takes the
 * fragment instead of writing them again; a node whose port differs (a local endpoint under a
 * Local traffic policy) writes the port again but takes over the chains that do not depend on
 * the node: each endpoint's KUBE-SEP chain, and KUBE-SVC/KUBE-SVL over the same endpoints.
 *
 * Nothing else is different: a node's ruleset is the one compileIptablesRules writes for it
 * alone (test/cluster/shared-compile.test.ts holds them equal). Fragments are shared between
 * nodes, so their rules and chains must never change once written.
 */
import { sameEndpoints } from '../topology/categorize.js';
import { SourceRangeCheck } from '../tracker/source-ranges.js';
import type { EndpointInfo, ProxierServicePort, ServicePortInfo } from '../tracker/types.js';
import { MAX_BASELINES, PositionCache, keepAsBaseline, nearestBaseline, withLast } from '../util/position-cache.js';
import { ruleCountOf } from './deferred-chains.js';
import { EndpointChainNameCache, KEPT_VARIANTS, PortReuse } from './port-reuse.js';
import { shareChainRendering } from './render.js';
import { RulesetSink } from './rule-sink.js';
import { adoptChain, createRuleset, tableOf } from './ruleset-builder.js';
import { writeServicePortRules } from './service-rules.js';
import { type TextFragment, TextFragmentArena, type TextPortReuse } from './shared-text.js';
import type { FixedChains, SyncContext } from './sync-context.js';
import type { TextChain } from './text-sink.js';
import type { Chain, Rule, Table } from './types.js';

/** What one service port wrote on a node. */
export interface PortFragment {
  /** Rules for the fixed chains, by the chain's key in FixedChains, in the order they were written. */
  readonly fixed: readonly (readonly [keyof FixedChains, readonly Rule[]])[];
  /** The port's own nat chains, in the order they were declared, but for the KUBE-SEP chains. */
  readonly chains: readonly Chain[];
  /** Its KUBE-SEP chains, declared last (one block, which fragments of other nodes may share). */
  readonly endpointChains: readonly Chain[];
  /** Every rule of the fragment (fixed and own chains). */
  readonly ruleCount: number;
}

/** A port's KUBE-SEP chains for one list of endpoints. */
interface EndpointChainBlock {
  readonly endpoints: readonly EndpointInfo[];
  readonly chains: readonly Chain[];
  readonly ruleCount: number;
}

/** The work of compiles with one set of compile options; per sync context inside. */
export class IptablesSharedWork {
  readonly mode = 'iptables' as const;
  readonly #contexts = new Map<string, ContextWork>();

  /** The fragments made under the same proxier-wide facts as `ctx`. */
  forContext(ctx: SyncContext<unknown>): ContextWork {
    // Everything writeServicePortRules reads from the context except the node's IP (the
    // firewall chain's self rule: part of each fragment's key) and the tables it writes to.
    const key = [
      ctx.family, ctx.masqueradeMark, ctx.masqueradeAll, ctx.localDetectorCIDR ?? '', ctx.localhostNodePorts,
      ctx.nfacctCounters, ctx.largeClusterMode,
    ].join('\0');
    let work = this.#contexts.get(key);
    if (work === undefined) {
      work = new ContextWork();
      this.#contexts.set(key, work);
    }
    return work;
  }
}

interface PortWork<F, R> {
  readonly reuse: R;
  /**
   * Fragments and the ports they were written for, taken by another node whose port has the
   * same rules input: the view most nodes share, and one per zone for a topology-aware port.
   */
  references: readonly { readonly sp: ProxierServicePort; readonly allowFromNode: boolean; readonly fragment: F }[];
}

/** No references yet (one list for every port's work until its first fragment). */
const NO_REFERENCES: readonly never[] = [];

/** A port's fragments by the node-dependent firewall bit (false, true). */
type FragmentPair<F> = [F | undefined, F | undefined];

/**
 * One kind of fragment (`F`, written by `write` with the port's reuse `R` from a node's sync
 * context `X`), looked up for a node's view of a port: the very same port object at the same
 * position as a node before, else a port with the same rules input, else written now.
 */
export class PortFragments<F, R, X extends SyncContext<unknown>> {
  /**
   * Fragments by position in the states' servicePorts and port object: nodes of one cluster and
   * family list the same ports in the same order, and most of them as the very same objects.
   */
  readonly #positions = new PositionCache<ProxierServicePort, FragmentPair<F>>(KEPT_VARIANTS);
  /**
   * A Map, not a WeakMap: the ports live as long as the cluster view the shared work belongs to,
   * and a full collection marks a WeakMap's values only once their keys are marked, in rounds
   * that at 10k ports (whose values hold other WeakMaps' keys) took seconds.
   */
  readonly #byInfo = new Map<ServicePortInfo, PortWork<F, R>>();

  constructor(
    private readonly newReuse: (info: ServicePortInfo) => R,
    private readonly write: (ctx: X, sp: ProxierServicePort, reuse: R) => F,
  ) {}

  get(ctx: X, sp: ProxierServicePort, index: number, allowFromNode: boolean): F {
    const slot = allowFromNode ? 1 : 0;
    const pair = this.#positions.get(index, sp);
    const known = pair?.[slot];
    if (known !== undefined) return known;

    let work = this.#byInfo.get(sp.info);
    if (work === undefined) {
      work = { reuse: this.newReuse(sp.info), references: NO_REFERENCES };
      this.#byInfo.set(sp.info, work);
    }
    let fragment: F | undefined;
    // A loop, not find() with a closure: this runs for every port of the first node (12k).
    for (const r of work.references) {
      if (r.allowFromNode === allowFromNode && sameRulesInput(r.sp, sp)) {
        fragment = r.fragment;
        break;
      }
    }
    // A node's own view of the port (a local endpoint under a Local policy) is its alone: keep
    // only views that other nodes may share.
    const shareable = !hasLocalEndpoint(sp);
    if (fragment === undefined) {
      fragment = this.write(ctx, sp, work.reuse);
      if (shareable || work.references.length === 0) work.references = withLast(work.references, { sp, allowFromNode, fragment }, KEPT_VARIANTS);
    }
    const kept: FragmentPair<F> = pair ?? [undefined, undefined];
    kept[slot] = fragment;
    this.#positions.set(index, sp, kept, shareable);
    return fragment;
  }
}

type RulesReuse = PortReuse<Chain, EndpointChainBlock>;

export class ContextWork {
  readonly #firewall = new SourceRangeCheck();
  readonly #names = new EndpointChainNameCache();
  readonly #rules = new PortFragments<PortFragment, RulesReuse, SyncContext>(
    (info) => new PortReuse(this.#names.of(info), true),
    writeFragment,
  );
  readonly #texts = new PortFragments<TextFragment, TextPortReuse, SyncContext<TextChain>>(
    // A text fragment is written once per view of a port and its KUBE-SEP chains are taken as a
    // block: the names are hashed again only for a node's own policy chains (a few local
    // endpoints), so none is kept (150k strings and a Map per port for a big cluster, each
    // copied by the young-generation collections of the first node's compile).
    (info) => new PortReuse(this.#names.peek(info), false),
    (ctx, sp, reuse) => this.#arena.write(ctx, sp, reuse),
  );
  readonly #arena = new TextFragmentArena();

  /**
   * The rules of `sp`, the port at position `index` of the node's servicePorts, on the node
   * `ctx` is for: taken over when some node wrote the same, else written now.
   */
  fragment(ctx: SyncContext, sp: ProxierServicePort, index: number): PortFragment {
    return this.#rules.get(ctx, sp, index, this.#firewall.allowsNode(sp.info, ctx.nodeIP));
  }

  /** A sync written straight to text starts taking text fragments (TextFragmentArena.syncStarts). */
  textSyncStarts(): void {
    this.#arena.syncStarts();
  }

  /** The same rules as iptables-save text (shared-text.ts), for a sync written straight to text. */
  textFragment(ctx: SyncContext<TextChain>, sp: ProxierServicePort, index: number): TextFragment {
    return this.#texts.get(ctx, sp, index, this.#firewall.allowsNode(sp.info, ctx.nodeIP));
  }

  readonly #baselines: Baseline[] = [];

  /** The rules and chains the ports write on the node `ctx` is for, counted against a baseline node. */
  count(ctx: SyncContext, ports: readonly ProxierServicePort[]): { rules: number; chains: number } {
    const nearest = nearestBaseline(this.#baselines, ports, (b) => b.nodeDependent);
    if (nearest === undefined) {
      const fragments = ports.map((sp, i) => this.fragment(ctx, sp, i));
      let rules = 0;
      let chains = 0;
      for (const f of fragments) {
        rules += f.ruleCount;
        chains += f.chains.length + f.endpointChains.length;
      }
      const nodeDependent = ports.map((sp) => sp.info.loadBalancerSourceRanges.length > 0 && sp.info.loadBalancerVIPs.length > 0);
      if (this.#baselines.length < MAX_BASELINES) this.#baselines.push({ ports: [...ports], fragments, nodeDependent, rules, chains });
      return { rules, chains };
    }
    const { base, changed } = nearest;
    let rules = base.rules;
    let chains = base.chains;
    const written: PortFragment[] = [];
    for (const i of changed) {
      const f = this.fragment(ctx, ports[i]!, i);
      const b = base.fragments[i]!;
      rules += f.ruleCount - b.ruleCount;
      chains += f.chains.length + f.endpointChains.length - b.chains.length - b.endpointChains.length;
      written.push(f);
    }
    if (keepAsBaseline(changed, ports.length, this.#baselines.length)) {
      // This node as a baseline: the nearest one's fragments but where this node differs.
      const fragments = base.fragments.slice();
      changed.forEach((i, k) => (fragments[i] = written[k]!));
      this.#baselines.push({ ports: [...ports], fragments, nodeDependent: base.nodeDependent, rules, chains });
    }
    return { rules, chains };
  }
}

/**
 * The sums over one node's ports, to count another node by what differs: nodes share most port
 * objects at the same positions, so a node's count is the baseline's plus, at each position
 * where its port is another object (or the node's IP matters: source ranges), the difference.
 */
interface Baseline {
  readonly ports: readonly ProxierServicePort[];
  readonly fragments: readonly PortFragment[];
  /** Positions whose rules read the node's IP (loadBalancerSourceRanges): counted on every node. */
  readonly nodeDependent: readonly boolean[];
  readonly rules: number;
  readonly chains: number;
}

function hasLocalEndpoint(sp: ProxierServicePort): boolean {
  const endpoints = sp.endpoints;
  for (let i = 0; i < endpoints.length; i++) if (endpoints[i]!.isLocal) return true;
  return false;
}

/** Write the port's rules into empty chains and keep them as a fragment. */
function writeFragment(ctx: SyncContext, sp: ProxierServicePort, reuse: RulesReuse): PortFragment {
  const fixed = emptyFixedChains();
  const scratch = createRuleset(ctx.family, ['filter', 'nat']);
  const nat = tableOf(scratch, 'nat');
  const filter = tableOf(scratch, 'filter');
  reuse.blocks.taken = undefined;
  writeServicePortRules({ ...ctx, out: new RulesetSink(scratch), reuse }, fixed, sp);
  if (filter.chains.size > 0) throw new Error(`${sp.info.spn}: a service port declared filter chains; fragments keep nat chains only`);
  const parts: [keyof FixedChains, readonly Rule[]][] = [];
  let ruleCount = 0;
  for (const key of Object.keys(fixed) as (keyof FixedChains)[]) {
    const rules = fixed[key].rules;
    if (rules.length === 0) continue;
    parts.push([key, rules]);
    ruleCount += rules.length;
  }
  const declared = [...nat.chains.values()];
  let block: EndpointChainBlock | undefined = reuse.blocks.taken;
  let chains = declared;
  if (block === undefined) {
    // The KUBE-SEP chains are the last ones writeServicePortRules declares, one per reachable endpoint.
    const endpoints = sp.categorized.allReachableEndpoints;
    const written = declared.slice(declared.length - endpoints.length);
    chains = declared.slice(0, declared.length - endpoints.length);
    let blockRules = 0;
    for (const chain of written) {
      blockRules += ruleCountOf(chain);
      shareChainRendering(chain);
    }
    block = { endpoints, chains: written, ruleCount: blockRules };
    reuse.blocks.keep(block);
  }
  for (const chain of chains) {
    ruleCount += ruleCountOf(chain);
    shareChainRendering(chain);
  }
  return { fixed: parts, chains, endpointChains: block.chains, ruleCount: ruleCount + block.ruleCount };
}

function emptyFixedChains(): FixedChains {
  const chain = (name: string): Chain => ({ name, rules: [] });
  return {
    filterServices: chain('KUBE-SERVICES'),
    filterExternalServices: chain('KUBE-EXTERNAL-SERVICES'),
    filterForward: chain('KUBE-FORWARD'),
    filterNodePorts: chain('KUBE-NODEPORTS'),
    filterProxyFirewall: chain('KUBE-PROXY-FIREWALL'),
    natServices: chain('KUBE-SERVICES'),
    natNodePorts: chain('KUBE-NODEPORTS'),
    natPostrouting: chain('KUBE-POSTROUTING'),
    natMarkMasq: chain('KUBE-MARK-MASQ'),
  };
}

/** Add a fragment to a node's ruleset: its fixed-chain rules at the end of those chains, its own chains declared. */
export function applyFragment(fragment: PortFragment, fixed: FixedChains, nat: Table): void {
  for (const [key, rules] of fragment.fixed) {
    const target = fixed[key].rules;
    for (const rule of rules) target.push(rule);
  }
  for (const chain of fragment.chains) adoptChain(nat, chain);
  for (const chain of fragment.endpointChains) adoptChain(nat, chain);
}

/** Whether two views of one port write the same rules: writeServicePortRules reads only these. */
function sameRulesInput(a: ProxierServicePort, b: ProxierServicePort): boolean {
  if (a === b) return true;
  const x = a.categorized;
  const y = b.categorized;
  // The local endpoints first: short lists, and where two nodes' views of a port differ.
  return a.info === b.info
    && x.hasAnyEndpoints === y.hasAnyEndpoints
    && sameEndpoints(x.localEndpoints, y.localEndpoints)
    && sameEndpoints(x.clusterEndpoints, y.clusterEndpoints)
    && sameEndpoints(x.allReachableEndpoints, y.allReachableEndpoints);
}
