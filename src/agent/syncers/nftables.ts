/**
 * nftables mode in the agent: each sync is kube-proxy's nftables syncProxyRules
 * (src/nftables/incremental-sync.ts) against the kernel's nftables (the model in
 * src/nftables/kernel-nftables.ts): first, in a transaction of its own, the deletion of service
 * chains flushed as stale more than a second before (a refusal counts as a cleanup failure and
 * the sync goes on); then the sync's transaction, full (setup, every chain and element) or
 * partial (changed services' chains, element changes, stale chains flushed). A refused
 * transaction counts as a sync failure and makes the next sync full. Each family has its own
 * table (ip kube-proxy, ip6 kube-proxy).
 */
import { renderNftCanonical } from '../../nftables/canonical.js';
import { NftablesRulesWriter } from '../../nftables/incremental-sync.js';
import { NftKernel } from '../../nftables/kernel-nftables.js';
import { countOps, renderTransaction, type NftTransaction } from '../../nftables/transaction.js';
import { ipFamilyLabel } from '../metrics.js';
import type { FamilySyncer, ModeSyncer, SyncArtifact, SyncerContext } from '../syncer.js';

const SHARED_KEY = 'nftables-kernel';

/** "3 add chain, 3 flush chain, 6 add rule, 1 add element": what a transaction does. */
export function describeTransaction(tx: NftTransaction): string {
  if (tx.ops.length === 0) return 'no change';
  return [...countOps(tx)].map(([what, n]) => `${n} ${what}`).join(', ');
}

export const nftablesSyncer: ModeSyncer = {
  mode: 'nftables',
  metrics: ['syncFullProxyRulesLatency', 'syncPartialProxyRulesLatency', 'nftablesSyncFailuresTotal', 'nftablesCleanupFailuresTotal'],
  create(context: SyncerContext): FamilySyncer {
    // One kernel for both families: `nft list ruleset` lists both tables.
    let shared = context.shared.get(SHARED_KEY) as NftKernel | undefined;
    if (shared === undefined) context.shared.set(SHARED_KEY, (shared = new NftKernel()));
    const kernel = shared;
    const writer = new NftablesRulesWriter();
    const family = context.family === 4 ? 'ip' : 'ip6';
    const ipFamily = ipFamilyLabel(context.family);
    const m = context.metrics.m;
    return {
      sync({ update, full, now, serviceCIDRs }) {
        const payload: SyncArtifact[] = [];
        const cleanup = writer.staleChainCleanup(family, now);
        let cleanupNote = '';
        if (cleanup !== undefined) {
          payload.push({ name: 'nft-cleanup', text: () => renderTransaction(cleanup) });
          try {
            kernel.apply(cleanup);
            cleanupNote = `; ${cleanup.ops.length} stale chains deleted first`;
          } catch (e) {
            // The chains are still there: this sync finds them, flushes them and remembers them again.
            m.nftablesCleanupFailuresTotal.inc({ ip_family: ipFamily });
            context.log(`${ipFamily}: unable to delete stale chains; will retry later: ${(e as Error).message}`);
            cleanupNote = '; deleting stale chains failed';
          }
        }
        const result = writer.sync({
          state: update.state,
          full,
          updatedServices: update.updatedServices,
          now,
          existingChains: kernel.chainNames(family),
          existingSets: kernel.setNames(family),
          ...(serviceCIDRs !== undefined ? { options: { serviceCIDRs } } : {}),
        });
        payload.push({ name: 'nft', text: () => renderTransaction(result.tx) });
        const summary = `${full ? 'full' : 'partial'} transaction: ${describeTransaction(result.tx)} (${result.servicePortsWritten} service ports' chains written, ${result.staleChainsFlushed} stale chains flushed)${cleanupNote}`;
        try {
          context.kernelHook?.({ family: context.family, full, mode: 'nftables' });
          kernel.apply(result.tx);
        } catch (e) {
          writer.failed();
          m.nftablesSyncFailuresTotal.inc({ ip_family: ipFamily });
          return { ok: false, error: `nft -f failed: ${(e as Error).message}`, payload, summary };
        }
        return { ok: true, payload, summary, noLocalEndpoints: result.noLocalEndpoints };
      },
      state: () => [{ name: 'nft-ruleset', text: () => renderNftCanonical(kernel.ruleset()) }],
    };
  },
};
