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
import type { ProxierState } from '../tracker/types.js';
import { declareFixedChains, writeForwardRules, writeMasqueradeAndFirewallRules, writeNodePortDispatch } from './fixed-rules.js';
import { type RuleSink, RulesetSink } from './rule-sink.js';
import { createRuleset } from './ruleset-builder.js';
import { writeServicePortRules } from './service-rules.js';
import { type IptablesCompileOptions, createSyncContext } from './sync-context.js';
import { IptablesTextSink } from './text-sink.js';
import type { Ruleset } from './types.js';

export type { IptablesCompileOptions } from './sync-context.js';
export { LARGE_CLUSTER_ENDPOINTS_THRESHOLD } from './sync-context.js';

export function compileIptablesRules(state: ProxierState, options: IptablesCompileOptions = {}): Ruleset {
  const ruleset = createRuleset(state.family, ['filter', 'nat']);
  writeSync(state, options, new RulesetSink(ruleset));
  return ruleset;
}

/**
 * The iptables-save text of the same sync, written straight into one buffer: exactly
 * renderIptablesSave(compileIptablesRules(state, options)), at a fraction of the cost in time
 * and memory when only the text is wanted (no Ruleset is built).
 */
export function compileIptablesSave(state: ProxierState, options: IptablesCompileOptions = {}): string {
  let endpoints = 0;
  for (const sp of state.servicePorts) endpoints += sp.endpoints.length;
  // About 350 bytes of text per endpoint (its SVC rule and its SEP chain) and 250 per service port.
  const sink = new IptablesTextSink(['filter', 'nat'], 65536 + 350 * endpoints + 250 * state.servicePorts.length);
  writeSync(state, options, sink);
  return sink.finish();
}

/** syncProxyRules: every chain and rule of one sync, written to `out`. */
function writeSync<C>(state: ProxierState, options: IptablesCompileOptions, out: RuleSink<C>): void {
  const fixed = declareFixedChains(out);
  const ctx = createSyncContext(state, options, out);
  writeMasqueradeAndFirewallRules(ctx, fixed);

  for (const sp of state.servicePorts) writeServicePortRules(ctx, fixed, sp);

  // This must be the last rule in nat KUBE-SERVICES: every service's own rules come first.
  writeNodePortDispatch(ctx, fixed);
  writeForwardRules(ctx, fixed);
}
