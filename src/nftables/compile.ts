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
import { createNftSyncContext, type NftablesCompileOptions } from './sync-context.js';
import { createTable } from './table-builder.js';
import type { NftRuleset } from './types.js';

export type { NftablesCompileOptions } from './sync-context.js';

export function compileNftablesRules(state: ProxierState, options: NftablesCompileOptions = {}): NftRuleset {
  const table = createTable(state.family === 4 ? 'ip' : 'ip6', KUBE_PROXY_TABLE, TABLE_COMMENT);
  const ctx = createNftSyncContext(state, options, table);
  writeFixedRules(ctx);
  const maps = serviceMapsOf(ctx);
  for (const sp of state.servicePorts) writeServicePort(ctx, maps, sp);
  return { family: state.family, tables: [table], skipped: [] };
}
