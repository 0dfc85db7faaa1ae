/**
 * ProxierState → the ruleset kube-proxy (>= 1.32, iptables mode) hands to iptables-restore in a
 * full sync, for one node and one IP family: the `filter` table, then `nat`.
 *
 * This follows syncProxyRules in pkg/proxy/iptables/proxier.go from top to bottom: the fixed
 * top-level chains and masquerade rules, then each service port in turn (state.servicePorts is
 * sorted by spn; kube-proxy walks a Go map, so its service order is random and its tests sort),
 * then the tail rules that must come last. The jumps from the built-in chains (PREROUTING to
 * KUBE-SERVICES, ...) are not part of the restore input; see with-jumps.ts.
 *
 * One difference of form remains: kube-proxy writes rules into one buffer per table, so in its
 * text the rules of different chains interleave; a Ruleset keeps each chain's rules together
 * (as iptables-save prints them back). The order of rules inside every chain is kube-proxy's.
 */
import { mapStatesSmallestFirst } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import { declareFixedChains, writeForwardRules, writeMasqueradeAndFirewallRules, writeNodePortDispatch } from './fixed-rules.js';
import { countRules } from './render.js';
import { type RuleSink, RulesetSink } from './rule-sink.js';
import { createRuleset, tableOf } from './ruleset-builder.js';
import { writeServicePortRules } from './service-rules.js';
import { type ContextWork, applyFragment } from './shared-rules.js';
import { emitTextFragment } from './shared-text.js';
import { type FixedChains, type IptablesCompileOptions, type SyncContext, createSyncContext } from './sync-context.js';
import { IptablesTextSink, type TextChain, finishTextSinks, finishTextSinksBytes } from './text-sink.js';
import type { Chain, Ruleset, Table } from './types.js';

export type { IptablesCompileOptions } from './sync-context.js';
export { LARGE_CLUSTER_ENDPOINTS_THRESHOLD } from './sync-context.js';
export { IptablesSharedWork } from './shared-rules.js';

export function compileIptablesRules(state: ProxierState, options: IptablesCompileOptions = {}): Ruleset {
  return syncRules(state, options, false).ruleset;
}

/**
 * How many rules and chains compileIptablesRules writes. With `options.shared` the service ports'
 * fragments are added up, not put together into a ruleset: counting a node of a big cluster
 * costs what that node changes, not its whole ruleset.
 */
export function countIptablesRules(state: ProxierState, options: IptablesCompileOptions = {}): { rules: number; chains: number } {
  const { ruleset, sharedRules, sharedChains } = syncRules(state, options, options.onlyServicePorts === undefined ? 'baseline' : true);
  let chains = sharedChains;
  for (const table of ruleset.tables.values()) chains += table.chains.size;
  return { rules: countRules(ruleset) + sharedRules, chains };
}

/**
 * The iptables-save text of the same sync, written straight into one buffer: exactly
 * renderIptablesSave(compileIptablesRules(state, options)), at a fraction of the cost in time
 * and memory when only the text is wanted (no Ruleset is built). With `options.shared` each
 * service port's text is taken from the nodes of the cluster written before (shared-text.ts).
 */
export function compileIptablesSave(state: ProxierState, options: IptablesCompileOptions = {}): string {
  return syncText(state, options).finish();
}

/**
 * compileIptablesSave of each state, one after the other in one string, each after the line
 * `header` gives for it (when given): the text is made once, as one flat string, instead of
 * joining the texts (which makes each text and then copies them all once more).
 */
export function compileIptablesSaveEach(states: readonly ProxierState[], options: IptablesCompileOptions = {}, header?: (state: ProxierState) => string): string {
  // Every sync is written before any is laid out: finishTextSinks then makes the text once,
  // the way that suits where its bytes are (mostly shared text kept as strings, or not).
  const sinks = mapStatesSmallestFirst(states, (state) => syncText(state, options));
  return finishTextSinks(sinks, header === undefined ? undefined : states.map(header));
}

/** compileIptablesSaveEach's text as bytes (UTF-8), made no string (finishTextSinksBytes). */
export function compileIptablesSaveEachBytes(states: readonly ProxierState[], options: IptablesCompileOptions = {}, header?: (state: ProxierState) => string): Uint8Array {
  const sinks = mapStatesSmallestFirst(states, (state) => syncText(state, options));
  return finishTextSinksBytes(sinks, header === undefined ? undefined : states.map(header));
}

/** About the bytes of a sync's text: 350 per endpoint (its SVC rule and its SEP chain) and 250 per service port. */
function expectedTextBytes(state: ProxierState): number {
  let endpoints = 0;
  for (const sp of state.servicePorts) endpoints += sp.endpoints.length;
  return 65536 + 350 * endpoints + 250 * state.servicePorts.length;
}

/**
 * About the bytes of a sync's text before the nat rules: its filter table and the nat
 * declarations (40 per endpoint, its KUBE-SEP chain's), and the nat KUBE-SERVICES and
 * KUBE-NODEPORTS rules (400 per service port, with its own chains' declarations). Room for it
 * is left before the nat rules (IptablesTextSink): too little only makes finish() copy them.
 */
function expectedTextBytesBeforeRules(state: ProxierState): number {
  let endpoints = 0;
  for (const sp of state.servicePorts) endpoints += sp.endpoints.length;
  return 65536 + 48 * endpoints + 400 * state.servicePorts.length;
}

/** One sync written to a text sink, not finished. */
function syncText(state: ProxierState, options: IptablesCompileOptions): IptablesTextSink {
  // With shared work the ports' text stays where the fragments hold it, until finish() copies it.
  const sink = options.shared === undefined
    ? new IptablesTextSink(['filter', 'nat'], expectedTextBytes(state), expectedTextBytesBeforeRules(state))
    : new IptablesTextSink(['filter', 'nat'], 1 << 20);
  writeSync(state, options, sink, (ctx, fixed) => {
    const shared = options.shared?.forContext(ctx);
    if (shared === undefined) writeEachServicePort(ctx, fixed, state, options);
    else emitEachServicePort(ctx, fixed, sink, shared, state, options);
  });
  return sink;
}

/** Every service port's text, taken from the fragments shared across nodes (written when new). */
function emitEachServicePort(
  ctx: SyncContext<TextChain>,
  fixed: FixedChains<TextChain>,
  sink: IptablesTextSink,
  shared: ContextWork,
  state: ProxierState,
  options: IptablesCompileOptions,
): void {
  const only = options.onlyServicePorts;
  const ports = state.servicePorts;
  shared.textSyncStarts();
  for (let i = 0; i < ports.length; i++) {
    const sp = ports[i]!;
    if (only !== undefined && !only(sp.info)) continue;
    emitTextFragment(shared.textFragment(ctx, sp, i), fixed, sink);
  }
}

/**
 * One sync into a Ruleset. With shared work, `countOnly` adds up the ports' fragments instead of
 * putting them into the ruleset ('baseline': only where the ports differ from a node counted before).
 */
function syncRules(state: ProxierState, options: IptablesCompileOptions, countOnly: boolean | 'baseline'): { ruleset: Ruleset; sharedRules: number; sharedChains: number } {
  const ruleset = createRuleset(state.family, ['filter', 'nat']);
  const nat = tableOf(ruleset, 'nat');
  const counted = writeSync(state, options, new RulesetSink(ruleset), (ctx, fixed) => writeServicePorts(ctx, fixed, nat, state, options, countOnly));
  return { ruleset, ...counted };
}

/** syncProxyRules: every chain and rule of one sync, written to `out`; `writePorts` writes the service ports' rules. */
export function writeSync<C, R>(state: ProxierState, options: IptablesCompileOptions, out: RuleSink<C>, writePorts: (ctx: SyncContext<C>, fixed: FixedChains<C>) => R): R {
  const fixed = declareFixedChains(out);
  const ctx = createSyncContext(state, options, out);
  writeMasqueradeAndFirewallRules(ctx, fixed);

  const result = writePorts(ctx, fixed);

  // This must be the last rule in nat KUBE-SERVICES: every service's own rules come first.
  writeNodePortDispatch(ctx, fixed);
  writeForwardRules(ctx, fixed);
  return result;
}

/**
 * Every service port's rules, each written in full (`options.onlyServicePorts` honoured). A
 * function of its own: V8 then optimizes this hot loop once and keeps it, where inside the sync
 * it was compiled on the fly for the loop alone and thrown away at the first call after it (a
 * cost a cluster-wide trace, which compiles thousands of nodes, pays each time).
 */
function writeEachServicePort<C>(ctx: SyncContext<C>, fixed: FixedChains<C>, state: ProxierState, options: IptablesCompileOptions): void {
  const only = options.onlyServicePorts;
  const ports = state.servicePorts;
  for (let i = 0; i < ports.length; i++) {
    const sp = ports[i]!;
    if (only !== undefined && !only(sp.info)) continue;
    writeServicePortRules(ctx, fixed, sp);
  }
}

/** Every service port's rules into a Ruleset: written, or with `options.shared` taken from other nodes' fragments (see syncRules). */
function writeServicePorts(
  ctx: SyncContext<Chain>,
  fixed: FixedChains<Chain>,
  nat: Table,
  state: ProxierState,
  options: IptablesCompileOptions,
  countOnly: boolean | 'baseline',
): { sharedRules: number; sharedChains: number } {
  const shared = options.shared?.forContext(ctx);
  if (shared === undefined) {
    writeEachServicePort(ctx, fixed, state, options);
    return { sharedRules: 0, sharedChains: 0 };
  }
  const only = options.onlyServicePorts;
  const ports = state.servicePorts;
  if (countOnly === 'baseline') {
    const counted = shared.count(ctx, ports);
    return { sharedRules: counted.rules, sharedChains: counted.chains };
  }
  let sharedRules = 0;
  let sharedChains = 0;
  for (let i = 0; i < ports.length; i++) {
    const sp = ports[i]!;
    if (only !== undefined && !only(sp.info)) continue;
    const fragment = shared.fragment(ctx, sp, i);
    if (countOnly) {
      sharedRules += fragment.ruleCount;
      sharedChains += fragment.chains.length + fragment.endpointChains.length;
    } else {
      applyFragment(fragment, fixed, nat);
    }
  }
  return { sharedRules, sharedChains };
}
