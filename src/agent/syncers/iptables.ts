/**
 * iptables mode in the agent: each sync's restore input from the rules writer (a full sync
 * writes every chain; a partial one the top-level chains plus the changed services' chains, and
 * deletes stale chains), handed to the kernel's tables (the model in src/iptables/
 * kernel-tables.ts). kube-proxy's bookkeeping around it: stale chains are looked for every sync,
 * or at most once per syncPeriod in large-cluster mode (over 1000 endpoints), where the
 * periodic full sync is skipped too; the rule-count gauges are set before the restore; a
 * refused restore counts as a restore failure, and as a partial restore failure when the sync
 * was partial.
 */
import { IptablesRulesWriter } from '../../iptables/incremental-sync.js';
import { IptablesKernel } from '../../iptables/kernel-tables.js';
import { renderRestore } from '../../iptables/restore.js';
import { LARGE_CLUSTER_ENDPOINTS_THRESHOLD, totalEndpoints } from '../../iptables/sync-context.js';
import { ipFamilyLabel } from '../metrics.js';
import type { FamilySyncer, ModeSyncer, SyncerContext } from '../syncer.js';

export const iptablesSyncer: ModeSyncer = {
  mode: 'iptables',
  metrics: ['syncFullProxyRulesLatency', 'syncPartialProxyRulesLatency', 'iptablesRestoreFailuresTotal', 'iptablesPartialRestoreFailuresTotal', 'iptablesRulesTotal', 'iptablesRulesLastSync'],
  create(context: SyncerContext): FamilySyncer {
    const writer = new IptablesRulesWriter({
      ...(context.options.randomFully !== undefined ? { randomFully: context.options.randomFully } : {}),
      ...(context.options.nfacct !== undefined ? { nfacct: context.options.nfacct } : {}),
    });
    const kernel = new IptablesKernel(context.family);
    const ipFamily = ipFamilyLabel(context.family);
    const m = context.metrics.m;
    let lastCleanup = -Infinity;
    let largeClusterMode = false;
    return {
      sync({ update, full, now }) {
        largeClusterMode = totalEndpoints(update.state) > LARGE_CLUSTER_ENDPOINTS_THRESHOLD;
        // iptables-save of a big table is slow: large clusters look for stale chains once per syncPeriod.
        const cleanup = !largeClusterMode || now - lastCleanup > context.syncPeriodMs;
        const result = writer.sync({ state: update.state, full, updatedServices: update.updatedServices, ...(cleanup ? { existingNatChains: kernel.chains('nat') } : {}) });
        if (cleanup) lastCleanup = now;
        m.iptablesRulesTotal.set({ table: 'filter', ip_family: ipFamily }, result.filterRules);
        m.iptablesRulesLastSync.set({ table: 'filter', ip_family: ipFamily }, result.filterRules);
        m.iptablesRulesTotal.set({ table: 'nat', ip_family: ipFamily }, result.natRulesWritten + result.natRulesSkipped);
        m.iptablesRulesLastSync.set({ table: 'nat', ip_family: ipFamily }, result.natRulesWritten);
        const payload = [{ name: 'iptables-restore', text: () => renderRestore(result.payload) }];
        const summary = `${full ? 'full' : 'partial'} restore: ${result.filterRules} filter rules, ${result.natRulesWritten} nat rules written (${result.servicePortsWritten} service ports' chains), ${result.natRulesSkipped} left as they were, ${result.deletedChains} stale chains deleted`;
        try {
          context.kernelHook?.({ family: context.family, full, mode: 'iptables' });
          kernel.restore(result.payload);
        } catch (e) {
          m.iptablesRestoreFailuresTotal.inc({ ip_family: ipFamily });
          if (!full) m.iptablesPartialRestoreFailuresTotal.inc({ ip_family: ipFamily });
          return { ok: false, error: `iptables-restore failed: ${(e as Error).message}`, payload, summary };
        }
        return { ok: true, payload, summary, noLocalEndpoints: result.noLocalEndpoints };
      },
      state: () => [{ name: 'iptables-save', text: () => kernel.save() }],
      skipsPeriodicFullSync: () => largeClusterMode,
    };
  },
};
