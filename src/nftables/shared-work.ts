/**
 * nftables-mode work shared by the compiles of every node of one cluster (as iptables/shared-rules.ts
 * is for iptables mode).
 *
 * kube-proxy writes each service port from facts of the port (its endpoints, as the node
 * categorises them) and of the proxier (family, masqueradeAll, the local detector); only the
 * firewall chain reads the node itself (whether its IP is inside loadBalancerSourceRanges). On two
 * nodes of one cluster most ports are the very same objects (a node without an endpoint of a port
 * sees it as every other such node does), so what one port writes is kept as a fragment: its own
 * chains, the sets it declares and the elements it adds to the shared maps, in order. Another
 * node takes the fragment over instead of writing the port again.
 *
 * Counting a node (`kpsim nodes`) goes further: a baseline node is compiled once, and every other
 * node is counted as the baseline plus, at each position where its port is another object, the
 * difference between the two ports' fragments. Nothing is different from the node compiled
 * alone (test/cluster/shared-compile.test.ts holds them equal). Fragments are shared between
 * nodes, so their chains and elements must never change once written.
 */
import { SourceRangeCheck } from '../tracker/source-ranges.js';
import { EndpointBlocks } from '../topology/endpoint-blocks.js';
import type { EndpointInfo, ProxierServicePort, ServicePortInfo } from '../tracker/types.js';
import { MAX_BASELINES, PositionCache, keepAsBaseline, nearestBaseline } from '../util/position-cache.js';
import { ChainMap, appendChains } from './chain-map.js';
import { ruleCountOf } from './endpoint-chain.js';
import { CLUSTER_IPS_SET } from './names.js';
import { type NftPortReuse, type ServiceMaps, serviceMapsOf, writeServicePort } from './service-rules.js';
import type { NftSyncContext } from './sync-context.js';
import { addKeyedElement, clearElements, createTable, elementKeyAt, fitRules } from './table-builder.js';
import type { NftChain, NftElement, NftSet, NftTable } from './types.js';

/** What one service port wrote on a node. */
export interface NftPortFragment {
  /** Its endpoint- chains, declared first (one block, which fragments of other nodes may share). */
  readonly endpointChains: EndpointChainBlock;
  /** The port's other chains, in the order it declared them. */
  readonly chains: readonly NftChain[];
  /** The sets it declared (session affinity), in order. */
  readonly sets: readonly NftSet[];
  /**
   * The elements it added to the shared sets and maps, in order, as flat triples: the set's
   * name, the element, its key (elementKey). One array per port instead of an array per element
   * (a port adds two or more; 12k ports at 5,000 nodes).
   */
  readonly elements: readonly (string | NftElement)[];
  readonly ruleCount: number;
  /** Elements added to sets other than cluster-ips (whose one element per IP every port of a service adds again). */
  readonly mapElements: number;
}

/** A port's endpoint- chains for one list of reachable endpoints, in order. */
interface EndpointChainBlock {
  readonly endpoints: readonly EndpointInfo[];
  readonly chains: readonly NftChain[];
  readonly ruleCount: number;
}

/**
 * What other nodes wrote for one port (service-rules.ts NftPortReuse): endpoint chains as whole
 * blocks, and one by one. A node's own view of a DaemonSet's port (its one local endpoint
 * among one per node) reaches the same endpoints as every other node: it takes the block over
 * instead of walking thousands of chains again. A view that reaches other endpoints (a zone's,
 * for a topology-aware port) takes the chains it shares with the kept blocks one by one.
 */
class PortChains extends EndpointBlocks<EndpointChainBlock> implements NftPortReuse {
  // Whole blocks are what it is (one object per port of a cluster, not two); the one the last
  // takeEndpointChains gave (or keepEndpointChains made) is `taken`, read by writeFragment.
  clusterChain?: NftPortReuse['clusterChain'];
  /**
   * Chains written for the port by endpoint text, made only when a port is written a second time
   * with other endpoints (from the kept blocks), then added to as blocks are written: most ports
   * are written once, and an index for each would keep a map entry per endpoint of the cluster
   * alive.
   */
  #byEndpoint: Map<string, NftChain> | undefined;

  constructor() {
    super(KEPT_VARIANTS);
  }

  takeEndpointChains(reachable: readonly EndpointInfo[]): readonly NftChain[] | undefined {
    return this.take(reachable) ? this.taken!.chains : undefined;
  }

  endpointChain(endpoint: string): NftChain | undefined {
    const kept = this.kept();
    if (kept.length === 0) return undefined;
    if (this.#byEndpoint === undefined) {
      const byEndpoint = (this.#byEndpoint = new Map());
      for (const block of kept) indexBlock(byEndpoint, block);
    }
    return this.#byEndpoint.get(endpoint);
  }

  keepEndpointChains(endpoints: readonly EndpointInfo[], chains: readonly NftChain[]): void {
    let ruleCount = 0;
    for (let i = 0; i < chains.length; i++) ruleCount += ruleCountOf(chains[i]!);
    const block: EndpointChainBlock = { endpoints, chains, ruleCount };
    this.keep(block);
    this.taken = block;
    if (this.#byEndpoint !== undefined) indexBlock(this.#byEndpoint, block);
  }
}

/** The block's chains by endpoint text (a function, not a private method: that would add a brand field to every port's object). */
function indexBlock(byEndpoint: Map<string, NftChain>, block: EndpointChainBlock): void {
  for (let i = 0; i < block.endpoints.length; i++) byEndpoint.set(block.endpoints[i]!.endpoint, block.chains[i]!);
}

/** How much a node's kube-proxy table holds. */
export interface NftCounts {
  rules: number;
  chains: number;
  sets: number;
  elements: number;
}

/** Variants kept per position: a few zones' views of a topology-aware port, and the most common one. */
const KEPT_VARIANTS = 4;

/** A port's fragments by whether the node's IP is in its source ranges (false, true). */
type FragmentPair = [NftPortFragment | undefined, NftPortFragment | undefined];

/**
 * What is kept for a port at a position: the fragment itself when only the first slot (the
 * node's IP outside the port's source ranges) is known, as for almost every port; else both.
 */
type KeptFragments = NftPortFragment | FragmentPair;

/** The work of compiles of one cluster; per proxier-wide facts inside. */
export class NftablesSharedWork {
  readonly mode = 'nftables' as const;
  readonly #contexts = new Map<string, NftContextWork>();

  /** The fragments made under the same proxier-wide facts as `ctx`. */
  forContext(ctx: NftSyncContext): NftContextWork {
    // Everything writeServicePort reads from the context but the node's IP (the firewall
    // chain's self rule: a fragment slot of its own) and the table it writes to.
    const key = [ctx.family, ctx.masqueradeAll, ctx.ifLocal ?? '', ctx.ifNotLocal ?? ''].join('\0');
    let work = this.#contexts.get(key);
    if (work === undefined) {
      work = new NftContextWork();
      this.#contexts.set(key, work);
    }
    return work;
  }
}

/** A node's counts against: a node of the context counted before (the first compiled whole), with its ports' fragments. */
interface Baseline {
  readonly ports: readonly ProxierServicePort[];
  readonly fragments: (NftPortFragment | undefined)[];
  /** What the ports wrote on the baseline node (the node's fixed part left out). */
  readonly counts: NftCounts;
}

export class NftContextWork {
  readonly #positions = new PositionCache<ProxierServicePort, KeptFragments>(KEPT_VARIANTS);
  readonly #firewall = new SourceRangeCheck();
  /** Each port's chains that do not depend on the node: its endpoint chains, and its service- chain over the same endpoints. */
  readonly #reuse = new WeakMap<ServicePortInfo, PortChains>();
  readonly #baselines: Baseline[] = [];
  #scratch: ScratchTable | undefined;

  /** What `sp`, the port at `index` of the node's servicePorts, writes on the node `ctx` is for. */
  fragment(ctx: NftSyncContext, sp: ProxierServicePort, index: number): NftPortFragment {
    const slot = this.#firewall.allowsNode(sp.info, ctx.nodeIP) ? 1 : 0;
    const kept = this.#positions.get(index, sp);
    const known = kept === undefined ? undefined : Array.isArray(kept) ? kept[slot] : slot === 0 ? kept : undefined;
    if (known !== undefined) return known;
    let reuse = this.#reuse.get(sp.info);
    if (reuse === undefined) this.#reuse.set(sp.info, (reuse = new PortChains()));
    const fragment = writeFragment(ctx, sp, reuse, (this.#scratch ??= new ScratchTable(ctx)));
    let value: KeptFragments;
    if (kept === undefined) value = slot === 0 ? fragment : [undefined, fragment];
    else if (Array.isArray(kept)) {
      kept[slot] = fragment;
      value = kept;
    }
    // The first slot's fragment was kept alone: this is the second.
    else value = [kept, fragment];
    // A node's own view of a port (a local endpoint) is its alone: it must not push out what others share.
    this.#positions.set(index, sp, value, !sp.endpoints.some((ep) => ep.isLocal));
    return fragment;
  }

  /**
   * What the ports write on the node `ctx` is for. `wholeCount` counts what a whole compile of
   * the node's ports writes (for the baseline, once).
   */
  count(ctx: NftSyncContext, ports: readonly ProxierServicePort[], wholeCount: () => NftCounts): NftCounts {
    const nearest = nearestBaseline(this.#baselines, ports);
    if (nearest === undefined) {
      const counts = wholeCount();
      if (this.#baselines.length < MAX_BASELINES) this.#baselines.push({ ports: [...ports], fragments: [], counts });
      return { ...counts };
    }
    const { base, changed } = nearest;
    const counts = { ...base.counts };
    for (const i of changed) {
      const sp = ports[i]!;
      const was = base.ports[i]!;
      // Another service port at this position: not the list the baseline had.
      if (sp.info !== was.info) return wholeCount();
      const f = this.fragment(ctx, sp, i);
      // Counts do not depend on the node's IP (below): any node's context counts the baseline's port.
      const b = (base.fragments[i] ??= this.fragment(ctx, was, i));
      counts.rules += f.ruleCount - b.ruleCount;
      counts.chains += f.chains.length + f.endpointChains.chains.length - b.chains.length - b.endpointChains.chains.length;
      counts.sets += f.sets.length - b.sets.length;
      counts.elements += f.mapElements - b.mapElements;
    }
    if (keepAsBaseline(changed, ports.length, this.#baselines.length)) this.#baselines.push({ ports: [...ports], fragments: [], counts: { ...counts } });
    // The firewall chain's one rule reads the node's IP, but is one rule on every node: counts
    // do not depend on it.
    return counts;
  }
}

/**
 * A table holding only empty copies of the shared sets and maps, that one port after another
 * is written into (writeFragment) and emptied again: a table, six sets and their indexes made
 * per port of a 10k-service cluster were garbage of their own.
 */
class ScratchTable {
  readonly #table: NftTable;
  /** The shared sets, in the table's order (the others a port declares are its own). */
  readonly #sharedSets: NftSet[] = [];
  /** Names of the shared sets. */
  readonly #shared = new Set<string>();
  /**
   * The scratch context and maps of each node's context: made once per node, not per port
   * (a context per port was a copy of the node's context and an object of six lookups, 12k times
   * a node). Held by the node's context alone: they hold the node's state.
   */
  readonly #contexts = new WeakMap<NftSyncContext, { ctx: NftSyncContext; maps: ServiceMaps }>();

  constructor(ctx: NftSyncContext) {
    this.#table = createTable(ctx.table.family, ctx.table.name);
    for (const set of Object.values(serviceMapsOf(ctx))) {
      const copy: NftSet = { ...set, elements: [] };
      this.#table.sets.set(set.name, copy);
      this.#sharedSets.push(copy);
      this.#shared.add(set.name);
    }
  }

  /** The emptied table, as a context for writing on the node `ctx` is for, and its shared maps. */
  reset(ctx: NftSyncContext): { ctx: NftSyncContext; maps: ServiceMaps } {
    const table = this.#table;
    // Emptied only when written to: emptying a Map makes it a new table.
    if (table.chains.size > 0) table.chains.clear();
    // By index: a for-of made an iterator result per port (12k on the first node of a big cluster).
    const shared = this.#sharedSets;
    for (let i = 0; i < shared.length; i++) if (shared[i]!.elements.length > 0) clearElements(shared[i]!);
    if (table.sets.size > this.#sharedSets.length) {
      for (const name of [...table.sets.keys()]) if (!this.#shared.has(name)) table.sets.delete(name);
    }
    let written = this.#contexts.get(ctx);
    if (written === undefined) {
      const scratchCtx: NftSyncContext = { ...ctx, table };
      this.#contexts.set(ctx, (written = { ctx: scratchCtx, maps: serviceMapsOf(scratchCtx) }));
    }
    return written;
  }

  /** The shared sets, in the table's order. */
  get sharedSets(): readonly NftSet[] {
    return this.#sharedSets;
  }

  isShared(name: string): boolean {
    return this.#shared.has(name);
  }

  get table(): NftTable {
    return this.#table;
  }
}

/** Write the port into the emptied scratch table and keep what it wrote. */
function writeFragment(ctx: NftSyncContext, sp: ProxierServicePort, reuse: PortChains, scratch: ScratchTable): NftPortFragment {
  const into = scratch.reset(ctx);
  reuse.taken = undefined;
  // The service- chain another node wrote, which this port may take over as it is.
  const taken = reuse.clusterChain?.chain;
  writeServicePort(into.ctx, into.maps, sp, reuse);
  // Taken over, or made by writeServicePort (keepEndpointChains); the table holds the port's other chains.
  const block = reuse.taken!;
  const written = scratch.table.chains;
  const chains = written instanceof ChainMap ? written.toArray() : [...written.values()];
  let ruleCount = block.ruleCount;
  for (let i = 0; i < chains.length; i++) {
    const chain = chains[i]!;
    ruleCount += ruleCountOf(chain);
    // Made by this port (not the service- chain taken over): its rules were pushed one by one.
    if (chain !== taken) fitRules(chain);
  }
  // The shared sets' elements, set after set in the table's order (an array walked, not the map).
  const shared = scratch.sharedSets;
  let count = 0;
  for (let s = 0; s < shared.length; s++) count += shared[s]!.elements.length;
  const elements = new Array<string | NftElement>(3 * count);
  let at = 0;
  let mapElements = 0;
  for (let s = 0; s < shared.length; s++) {
    const set = shared[s]!;
    const added = set.elements;
    for (let i = 0; i < added.length; i++) {
      elements[at++] = set.name;
      elements[at++] = added[i]!;
      elements[at++] = elementKeyAt(set, i);
    }
    if (set.name !== CLUSTER_IPS_SET) mapElements += added.length;
  }
  // Sets of its own (session affinity), after the shared ones: few ports have any, the others
  // share the empty list.
  let sets: readonly NftSet[] = NO_SETS;
  const table = scratch.table;
  if (table.sets.size > shared.length) {
    const own: NftSet[] = [];
    for (const set of table.sets.values()) if (!scratch.isShared(set.name)) own.push(set);
    sets = own;
  }
  return { endpointChains: block, chains, sets, elements, ruleCount, mapElements };
}

/** The sets of a fragment that declares none. */
const NO_SETS: readonly NftSet[] = [];

/** Put a fragment into the node's table: its chains and sets after those already there, its elements into the shared maps. */
export function applyFragment(table: NftTable, fragment: NftPortFragment): void {
  // As segments: the chains are the fragment's, named after its port (chain-map.ts).
  appendChains(table.chains, fragment.endpointChains.chains);
  appendChains(table.chains, fragment.chains);
  const sets = fragment.sets;
  for (let i = 0; i < sets.length; i++) table.sets.set(sets[i]!.name, sets[i]!);
  const elements = fragment.elements;
  for (let i = 0; i < elements.length; i += 3) {
    addKeyedElement(table.sets.get(elements[i] as string)!, elements[i + 1] as NftElement, elements[i + 2] as string);
  }
}

/** Rules, chains, sets and elements of a table. */
export function countTable(table: NftTable): NftCounts {
  let rules = 0;
  let elements = 0;
  for (const chain of table.chains.values()) rules += ruleCountOf(chain);
  for (const set of table.sets.values()) elements += set.elements.length;
  return { rules, chains: table.chains.size, sets: table.sets.size, elements };
}

/** The difference a - b, field by field. */
export function subtractCounts(a: NftCounts, b: NftCounts): NftCounts {
  return { rules: a.rules - b.rules, chains: a.chains - b.chains, sets: a.sets - b.sets, elements: a.elements - b.elements };
}
