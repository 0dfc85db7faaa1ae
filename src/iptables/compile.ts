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
import { countRules } from './render.js';
import { createRuleset, tableOf } from './ruleset-builder.js';
import { writeServicePortRules } from './service-rules.js';
import { applyFragment } from './shared-rules.js';
import { type FixedChains, type IptablesCompileOptions, type SyncContext, createSyncContext } from './sync-context.js';
import type { Ruleset, Table } from './types.js';

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
 * One sync. With shared work, `countOnly` adds up the ports' fragments instead of putting them
 * into the ruleset ('baseline': only where the ports differ from a node counted before).
 */
function syncRules(state: ProxierState, options: IptablesCompileOptions, countOnly: boolean | 'baseline'): { ruleset: Ruleset; sharedRules: number; sharedChains: number } {
  const ruleset = createRuleset(state.family, ['filter', 'nat']);
  const filter = tableOf(ruleset, 'filter');
  const nat = tableOf(ruleset, 'nat');

  const fixed = declareFixedChains(filter, nat);
  const ctx = createSyncContext(state, options, filter, nat);
  writeMasqueradeAndFirewallRules(ctx, fixed);

  const { sharedRules, sharedChains } = writeServicePorts(ctx, fixed, nat, state, options, countOnly);

  // This must be the last rule in nat KUBE-SERVICES: every service's own rules come first.
  writeNodePortDispatch(ctx, fixed);
  writeForwardRules(ctx, fixed);
  return { ruleset, sharedRules, sharedChains };
}

/**
 * Every service port's rules (see syncRules). A function of its own: V8 then optimizes this
 * hot loop once and keeps it, where inside syncRules it was compiled on the fly for the loop
 * alone and thrown away at the first call after it (a cost a cluster-wide trace, which compiles
 * thousands of nodes, pays each time).
 */
function writeServicePorts(
  ctx: SyncContext,
  fixed: FixedChains,
  nat: Table,
  state: ProxierState,
  options: IptablesCompileOptions,
  countOnly: boolean | 'baseline',
): { sharedRules: number; sharedChains: number } {
  const shared = options.shared?.forContext(ctx);
  const only = options.onlyServicePorts;
  const ports = state.servicePorts;
  if (shared !== undefined && countOnly === 'baseline') {
    const counted = shared.count(ctx, ports);
    return { sharedRules: counted.rules, sharedChains: counted.chains };
  }
  let sharedRules = 0;
  let sharedChains = 0;
  for (let i = 0; i < ports.length; i++) {
    const sp = ports[i]!;
    if (only !== undefined && !only(sp.info)) continue;
    if (shared === undefined) {
      writeServicePortRules(ctx, fixed, sp);
      continue;
    }
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
