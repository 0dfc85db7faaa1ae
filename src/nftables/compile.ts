/**
 * ProxierState → the `kube-proxy` table kube-proxy's nftables proxier builds in a full sync,
 * for one node and one IP family (table `ip kube-proxy` or `ip6 kube-proxy`).
 *
 * This follows syncProxyRules in pkg/proxy/nftables/proxier.go: setupNFTables (base chains,
 * fixed chains and rules, sets and maps), then each service port (state.servicePorts is sorted
 * by spn; kube-proxy walks a Go map, so its order of elements is random and its tests sort).
 * The result is put in knftables' dump order (objects sorted by name), which is also the order
 * the kernel lists them in once the script is loaded.
 */
import type { ProxierState } from '../tracker/types.js';
import { writeFixedRules } from './fixed.js';
import { KUBE_PROXY_TABLE, TABLE_COMMENT } from './names.js';
import { serviceMapsOf, writeServicePort } from './service-rules.js';
import { createNftSyncContext, type NftablesCompileOptions } from './sync-context.js';
import { createTable, sortTable } from './table-builder.js';
import type { NftRuleset } from './types.js';

export type { NftablesCompileOptions } from './sync-context.js';

export function compileNftablesRules(state: ProxierState, options: NftablesCompileOptions = {}): NftRuleset {
  const table = createTable(state.family === 4 ? 'ip' : 'ip6', KUBE_PROXY_TABLE, TABLE_COMMENT);
  const ctx = createNftSyncContext(state, options, table);
  writeFixedRules(ctx);
  const maps = serviceMapsOf(ctx);
  for (const sp of state.servicePorts) writeServicePort(ctx, maps, sp);
  sortTable(table);
  return { family: state.family, tables: [table], skipped: [] };
}
