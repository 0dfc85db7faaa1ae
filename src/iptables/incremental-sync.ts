/**
 * kube-proxy's iptables syncs over time (syncProxyRules in pkg/proxy/iptables/proxier.go with
 * KEP-3453's partial restores): every sync writes the whole filter table and nat's top-level
 * chains (KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-MARK-MASQ, with every service's
 * cluster-IP, external, load-balancer and node-port rules); a full sync also writes every
 * service's own chains (KUBE-SVC-, KUBE-SVL-, KUBE-EXT-, KUBE-FW-, KUBE-SEP-), a partial sync
 * only those of the Services that changed since the last sync. The others are counted, not
 * written (kube-proxy's discard buffer), so the rule-count metrics stay right. Chains that exist
 * in the kernel but belong to no service any more are flushed and deleted (`-X`), when the
 * caller says the cleanup is due (every sync, or once per syncPeriod in large-cluster mode).
 *
 * A full sync's payload is exactly what compileIptablesRules renders for the same state (a test
 * holds them byte-equal), and it recomputes everything, as kube-proxy's does. Between syncs the
 * writer keeps what each service port contributes (its "fragment": rule lines for the top-level
 * chains and its own chains), in the state's order. A partial sync recomputes the fragments of
 * the changed Services only (found by binary search: a Service's ports are contiguous in that
 * order) and hands on the other fragments' lines as they are, so it costs in proportion to what
 * changed, not to the cluster. The caller's contract is kube-proxy's: `updatedServices` names
 * every Service whose ports or endpoints changed since the last sync (UpdatedServices of the
 * two change trackers).
 */
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { writeSync } from './compile.js';
import { declareFixedChains } from './fixed-rules.js';
import { isServiceChainName } from './names.js';
import { renderRule } from './render.js';
import type { ChainRules, RestorePayload, RestoreTable } from './restore.js';
import { RulesetSink } from './rule-sink.js';
import { createRuleset, tableOf } from './ruleset-builder.js';
import { servicePortFacts, writeServicePortRules } from './service-rules.js';
import { type FixedChains, type IptablesCompileOptions, type SyncContext, createSyncContext } from './sync-context.js';
import type { Table } from './types.js';

export interface IptablesSyncRequest {
  readonly state: ProxierState;
  /** Write every service's own chains (at start, after a failure, periodically). */
  readonly full: boolean;
  /** "namespace/name" of the Services that changed since the last sync (a partial sync writes their chains). */
  readonly updatedServices: ReadonlySet<string>;
  /** The nat chains the kernel holds now, when stale chains are to be deleted this sync; undefined: not this sync. */
  readonly existingNatChains?: ReadonlySet<string>;
}

export interface IptablesSyncResult {
  readonly payload: RestorePayload;
  readonly full: boolean;
  readonly largeClusterMode: boolean;
  /** filter rules written (all of them, every sync). */
  readonly filterRules: number;
  /** nat rules written into the payload. */
  readonly natRulesWritten: number;
  /** nat rules of unchanged services left out (kube-proxy's discard buffer). */
  readonly natRulesSkipped: number;
  readonly deletedChains: number;
  /** Service ports whose own chains the payload holds. */
  readonly servicePortsWritten: number;
  /** Service ports with a Local policy and no local endpoints (sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
}

/** The top-level chains service ports write to, by role (the FixedChains field naming each). */
const FIXED_ROLES = ['filterServices', 'filterExternalServices', 'filterNodePorts', 'filterProxyFirewall', 'natServices', 'natNodePorts'] as const;
type FixedRole = (typeof FIXED_ROLES)[number];
const NAT_ROLES: ReadonlySet<FixedRole> = new Set(['natServices', 'natNodePorts']);

/** The segment of a fragment that writes nothing to a chain (shared). */
const NO_LINES: readonly string[] = Object.freeze([]);

/** What one service port writes: its rules in the top-level chains and its own chains, as text. */
interface Fragment {
  readonly sp: ProxierServicePort;
  /** state.servicePorts' order key: "spn\0protocol". */
  readonly sortKey: string;
  readonly largeClusterMode: boolean;
  /** Rule lines per top-level chain, indexed as FIXED_ROLES. */
  readonly fixed: readonly (readonly string[])[];
  /** Its own nat chains in declaration order, with their rule lines. */
  readonly own: ReadonlyMap<string, readonly string[]>;
  readonly ownRules: number;
  readonly noLocalInternal: boolean;
  readonly noLocalExternal: boolean;
}

/**
 * The chains and rules that do not depend on services: the chains in declaration order, and
 * the rules before the services and the tail after them, keyed "table chain" (KUBE-SERVICES
 * and KUBE-NODEPORTS exist in both tables).
 */
interface Frame {
  readonly filterOrder: readonly string[];
  readonly natOrder: readonly string[];
  readonly roles: ReadonlyMap<string, number>;
  readonly before: ReadonlyMap<string, readonly string[]>;
  readonly after: ReadonlyMap<string, readonly string[]>;
}

export class IptablesRulesWriter {
  readonly #options: IptablesCompileOptions;
  /** Fragments in state order. */
  #order: Fragment[] = [];
  /** Per role, each fragment's lines for that chain, parallel to #order. */
  #segments: (readonly string[])[][] = FIXED_ROLES.map(() => []);
  /** Own chains of every fragment, with how many fragments claim each (kube-proxy's activeNATChains). */
  readonly #activeChains = new Map<string, number>();
  readonly #totals = { lines: FIXED_ROLES.map(() => 0), ownRules: 0, noLocalInternal: 0, noLocalExternal: 0 };
  #frame: Frame | undefined;

  constructor(options: IptablesCompileOptions = {}) {
    this.#options = options;
  }

  /** Whether the current state uses a chain (kube-proxy's activeNATChains). */
  isActiveChain(chain: string): boolean {
    return this.#activeChains.has(chain);
  }

  sync(request: IptablesSyncRequest): IptablesSyncResult {
    const { state, full } = request;
    const frame = this.#stableFrame(frameOf(state, this.#options));
    const scratch = scratchContext(state, this.#options);
    const own = new Map<string, readonly string[]>();
    let servicePortsWritten = 0;
    let ownRulesWritten = 0;
    const writeOwn = (fragment: Fragment): void => {
      for (const [chain, lines] of fragment.own) own.set(chain, lines);
      ownRulesWritten += fragment.ownRules;
      servicePortsWritten++;
    };

    if (full) {
      this.#replace(0, this.#order.length, state.servicePorts.map((sp) => writeFragment(scratch, sp)));
      for (const fragment of this.#order) writeOwn(fragment);
    } else {
      for (const service of [...request.updatedServices].sort()) {
        const [from, to] = serviceRange(state.servicePorts, (i) => servicePortSortKey(state.servicePorts[i]!), service);
        const [oldFrom, oldTo] = serviceRange(this.#order, (i) => this.#order[i]!.sortKey, service);
        const fragments = state.servicePorts.slice(from, to).map((sp) => writeFragment(scratch, sp));
        this.#replace(oldFrom, oldTo, fragments);
        for (const fragment of fragments) writeOwn(fragment);
      }
    }

    const deleted: string[] = [];
    for (const chain of request.existingNatChains ?? []) {
      // Only kube-proxy's own service chains: others in the table are not ours to delete.
      if (isServiceChainName(chain) && !this.#activeChains.has(chain)) deleted.push(chain);
    }

    const chainsOf = (table: 'filter' | 'nat', order: readonly string[]): Map<string, ChainRules> => {
      const chains = new Map<string, ChainRules>();
      for (const chain of order) {
        const key = `${table} ${chain}`;
        const role = frame.roles.get(key);
        const segments: (readonly string[])[] = [];
        const before = frame.before.get(key);
        if (before !== undefined) segments.push(before);
        const middle = role !== undefined ? this.#segments[role]! : [];
        const after = frame.after.get(key);
        chains.set(chain, segments.concat(middle, after !== undefined ? [after] : []));
      }
      return chains;
    };
    const filterChains = chainsOf('filter', frame.filterOrder);
    const natChains = chainsOf('nat', frame.natOrder);
    for (const [chain, lines] of own) natChains.set(chain, [lines]);
    const filter: RestoreTable = { name: 'filter', chains: filterChains, deleted: [] };
    const nat: RestoreTable = { name: 'nat', chains: natChains, deleted };

    const t = this.#totals;
    let filterRules = frameLines(frame, 'filter');
    let natFixedRules = frameLines(frame, 'nat');
    FIXED_ROLES.forEach((role, i) => {
      if (NAT_ROLES.has(role)) natFixedRules += t.lines[i]!;
      else filterRules += t.lines[i]!;
    });
    return {
      payload: { tables: [filter, nat] },
      full,
      largeClusterMode: scratch.ctx.largeClusterMode,
      filterRules,
      natRulesWritten: natFixedRules + ownRulesWritten,
      natRulesSkipped: t.ownRules - ownRulesWritten,
      deletedChains: deleted.length,
      servicePortsWritten,
      noLocalEndpoints: { internal: t.noLocalInternal, external: t.noLocalExternal },
    };
  }

  /**
   * The frame, with the line arrays of the previous sync where they are the same: the kernel
   * (and its model) sees unchanged segments as the very same ones.
   */
  #stableFrame(frame: Frame): Frame {
    const previous = this.#frame;
    this.#frame = frame;
    if (previous === undefined) return frame;
    const reuse = (now: ReadonlyMap<string, readonly string[]>, before: ReadonlyMap<string, readonly string[]>): Map<string, readonly string[]> =>
      new Map([...now].map(([key, lines]) => {
        const old = before.get(key);
        return [key, old !== undefined && old.length === lines.length && old.every((line, i) => line === lines[i]) ? old : lines];
      }));
    this.#frame = { ...frame, before: reuse(frame.before, previous.before), after: reuse(frame.after, previous.after) };
    return this.#frame;
  }

  /** Put `fragments` where #order[from, to) was, keeping the segments, totals and active chains in step. */
  #replace(from: number, to: number, fragments: readonly Fragment[]): void {
    const t = this.#totals;
    const account = (fragment: Fragment, by: 1 | -1): void => {
      fragment.fixed.forEach((lines, i) => { t.lines[i]! += by * lines.length; });
      t.ownRules += by * fragment.ownRules;
      if (fragment.noLocalInternal) t.noLocalInternal += by;
      if (fragment.noLocalExternal) t.noLocalExternal += by;
      for (const chain of fragment.own.keys()) {
        const count = (this.#activeChains.get(chain) ?? 0) + by;
        if (count > 0) this.#activeChains.set(chain, count);
        else this.#activeChains.delete(chain);
      }
    };
    for (let i = from; i < to; i++) account(this.#order[i]!, -1);
    for (const fragment of fragments) account(fragment, +1);
    if (from === 0 && to === this.#order.length) {
      this.#order = [...fragments];
      this.#segments = FIXED_ROLES.map((_, role) => fragments.map((f) => f.fixed[role]!));
      return;
    }
    this.#order.splice(from, to - from, ...fragments);
    FIXED_ROLES.forEach((_, role) => this.#segments[role]!.splice(from, to - from, ...fragments.map((f) => f.fixed[role]!)));
  }
}

function servicePortSortKey(sp: ProxierServicePort): string {
  return `${sp.info.spn}\0${sp.info.protocol}`;
}

/**
 * Where a Service's ports are in a list sorted by "spn\0protocol": an unnamed port is
 * "ns/name\0..." and named ones "ns/name:port\0...", never both (only a single-port Service may
 * leave its port unnamed), so they are contiguous.
 */
function serviceRange(list: { readonly length: number }, keyAt: (i: number) => string, service: string): [number, number] {
  for (const prefix of [`${service}\0`, `${service}:`]) {
    const from = lowerBound(list.length, keyAt, prefix);
    let to = from;
    while (to < list.length && keyAt(to).startsWith(prefix)) to++;
    if (to > from) return [from, to];
  }
  // No port now: the empty range where its ports would sort.
  const at = lowerBound(list.length, keyAt, `${service}\0`);
  return [at, at];
}

function lowerBound(length: number, keyAt: (i: number) => string, key: string): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyAt(mid) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A sync context over tables holding only the top-level chains, for writing one service port at a time. */
interface Scratch {
  readonly ctx: SyncContext;
  readonly nat: Table;
  readonly fixed: FixedChains;
  readonly fixedNames: ReadonlySet<string>;
}

function scratchContext(state: ProxierState, options: IptablesCompileOptions): Scratch {
  const ruleset = createRuleset(state.family, ['filter', 'nat']);
  const nat = tableOf(ruleset, 'nat');
  const sink = new RulesetSink(ruleset);
  const fixed = declareFixedChains(sink);
  return { ctx: createSyncContext(state, options, sink), nat, fixedNames: new Set(nat.chains.keys()), fixed };
}

function writeFragment(scratch: Scratch, sp: ProxierServicePort): Fragment {
  const { ctx, fixed } = scratch;
  writeServicePortRules(ctx, fixed, sp);
  const fixedLines = FIXED_ROLES.map((role) => {
    const chain = fixed[role];
    if (chain.rules.length === 0) return NO_LINES;
    const lines = chain.rules.map((rule) => renderRule(rule));
    chain.rules.length = 0;
    return lines;
  });
  const own = new Map<string, readonly string[]>();
  let ownRules = 0;
  for (const chain of [...scratch.nat.chains.values()]) {
    if (scratch.fixedNames.has(chain.name)) continue;
    own.set(chain.name, chain.rules.map((rule) => renderRule(rule)));
    ownRules += chain.rules.length;
    scratch.nat.chains.delete(chain.name);
  }
  const facts = servicePortFacts(sp);
  return {
    sp,
    sortKey: servicePortSortKey(sp),
    largeClusterMode: ctx.largeClusterMode,
    fixed: fixedLines,
    own,
    ownRules,
    noLocalInternal: facts.hasEndpoints && !facts.hasInternalEndpoints,
    noLocalExternal: facts.hasEndpoints && !facts.hasExternalEndpoints,
  };
}

/** The rules that come before every service (masquerading, KUBE-FIREWALL) and the tail after them. */
function frameOf(state: ProxierState, options: IptablesCompileOptions): Frame {
  const ruleset = createRuleset(state.family, ['filter', 'nat']);
  const filter = tableOf(ruleset, 'filter');
  const nat = tableOf(ruleset, 'nat');
  // A sync without service ports: what it writes where the ports go splits the frame in two.
  const { fixed, before } = writeSync(state, options, new RulesetSink(ruleset), (_ctx, fixed) => ({ fixed, before: harvest(filter, nat) }));
  const after = harvest(filter, nat);
  const roles = new Map<string, number>();
  FIXED_ROLES.forEach((role, i) => roles.set(`${NAT_ROLES.has(role) ? 'nat' : 'filter'} ${fixed[role].name}`, i));
  return { filterOrder: [...filter.chains.keys()], natOrder: [...nat.chains.keys()], roles, before, after };
}

function frameLines(frame: Frame, table: 'filter' | 'nat'): number {
  let n = 0;
  for (const [key, lines] of [...frame.before, ...frame.after]) if (key.startsWith(`${table} `)) n += lines.length;
  return n;
}

/** Every chain's rules as text, keyed "table chain"; the chains are emptied. */
function harvest(...tables: Table[]): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const table of tables) {
    for (const chain of table.chains.values()) {
      if (chain.rules.length === 0) continue;
      out.set(`${table.name} ${chain.name}`, chain.rules.map((rule) => renderRule(rule)));
      chain.rules.length = 0;
    }
  }
  return out;
}
