/**
 * ProxierState → the `kube-proxy` table kube-proxy's nftables proxier builds in a full sync,
 * for one node and one IP family (table `ip kube-proxy` or `ip6 kube-proxy`).
 *
 * This follows syncProxyRules in pkg/proxy/nftables/proxier.go: setupNFTables (base chains,
 * fixed chains and rules, sets and maps), then each service port (state.servicePorts is sorted
 * by spn; kube-proxy walks a Go map, so its order of elements is random and its tests sort).
 * Chains, sets and maps are created in the order kube-proxy's full sync creates them (with
 * services in name order where kube-proxy follows Go's random map order); a kernel lists them
 * in that order once the script is loaded. (knftables' fake, which kube-proxy's tests compare
 * against, sorts them by name instead; the tests sort both sides.)
 */
import type { ProxierState } from '../tracker/types.js';
import { writeFixedRules } from './fixed.js';
import { KUBE_PROXY_TABLE, TABLE_COMMENT } from './names.js';
import { serviceMapsOf, writeServicePort } from './service-rules.js';
import { applyFragment, countTable, type NftCounts, subtractCounts } from './shared-work.js';
import { createNftSyncContext, type NftSyncContext, type NftablesCompileOptions } from './sync-context.js';
import { createTable } from './table-builder.js';
import type { NftRuleset, NftTable } from './types.js';

export type { NftablesCompileOptions } from './sync-context.js';
export { NftablesSharedWork, type NftCounts } from './shared-work.js';

export function compileNftablesRules(state: ProxierState, options: NftablesCompileOptions = {}): NftRuleset {
  const { table, ctx } = fixedTable(state, options);
  const maps = serviceMapsOf(ctx);
  const shared = options.shared?.forContext(ctx);
  const only = options.onlyServicePorts;
  const ports = state.servicePorts;
  for (let i = 0; i < ports.length; i++) {
    const sp = ports[i]!;
    if (only !== undefined && !only(sp.info)) continue;
    if (shared === undefined) writeServicePort(ctx, maps, sp);
    else applyFragment(table, shared.fragment(ctx, sp, i));
  }
  return { family: state.family, tables: [table], skipped: [] };
}

/**
 * How many rules, chains, sets and elements compileNftablesRules writes. With `options.shared`
 * a node is counted against a node compiled before, by the ports that differ: counting a node
 * of a big cluster costs what that node changes, not its whole table.
 */
export function countNftablesRules(state: ProxierState, options: NftablesCompileOptions = {}): NftCounts {
  const whole = (): NftCounts => countTable(compileNftablesRules(state, options).tables[0]!);
  if (options.shared === undefined || options.onlyServicePorts !== undefined) return whole();
  const { table, ctx } = fixedTable(state, options);
  const fixed = countTable(table);
  const ports = options.shared.forContext(ctx).count(ctx, state.servicePorts, () => subtractCounts(whole(), fixed));
  return { rules: fixed.rules + ports.rules, chains: fixed.chains + ports.chains, sets: fixed.sets + ports.sets, elements: fixed.elements + ports.elements };
}

/** The table with what every sync writes whatever the services (fixed.ts), and the sync's context. */
function fixedTable(state: ProxierState, options: NftablesCompileOptions): { table: NftTable; ctx: NftSyncContext } {
  const table = createTable(state.family === 4 ? 'ip' : 'ip6', KUBE_PROXY_TABLE, TABLE_COMMENT);
  const ctx = createNftSyncContext(state, options, table);
  writeFixedRules(ctx);
  return { table, ctx };
}
