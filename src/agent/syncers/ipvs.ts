/**
 * IPVS mode in the agent: each sync compiles the family's IPVS table, sets and rules
 * (src/ipvs/compile.ts, as kube-proxy rebuilds its desired state every sync), and changes the
 * kernel by the difference (src/ipvs/kernel-ipvs.ts): virtual and real servers, ipset entries,
 * kube-ipvs0 addresses, then the IPVS-mode iptables rules restored whole. The kernel's IPVS
 * table is one for both families, shared by their proxiers. IPVS mode has no partial syncs: a
 * full and a routine sync do the same work.
 */
import { compileIpvs } from '../../ipvs/compile.js';
import { renderIPSets } from '../../ipvs/ipsets.js';
import { formatIpvsadmList } from '../../ipvs/ipvsadm-format.js';
import { IpvsKernel, renderIpvsPayload } from '../../ipvs/kernel-ipvs.js';
import { ipFamilyLabel } from '../metrics.js';
import type { FamilySyncer, ModeSyncer, SyncerContext } from '../syncer.js';

const SHARED_KEY = 'ipvs-kernel';

export const ipvsSyncer: ModeSyncer = {
  mode: 'ipvs',
  metrics: ['iptablesRestoreFailuresTotal'],
  create(context: SyncerContext): FamilySyncer {
    let kernel = context.shared.get(SHARED_KEY) as IpvsKernel | undefined;
    if (kernel === undefined) context.shared.set(SHARED_KEY, (kernel = new IpvsKernel()));
    const ipvs = kernel;
    const family = context.family;
    return {
      sync({ update, full }) {
        const compiled = compileIpvs(update.state, context.options.scheduler !== undefined ? { scheduler: context.options.scheduler } : {});
        const payload = ipvs.diff(compiled);
        const counts = new Map<string, number>();
        for (const op of payload.operations) counts.set(op.kind, (counts.get(op.kind) ?? 0) + 1);
        const summary = payload.operations.length === 0 ? 'no IPVS change' : [...counts].map(([kind, n]) => `${n} ${kind}`).join(', ');
        const artifacts = [{ name: 'ipvs', text: () => renderIpvsPayload(payload) }];
        try {
          context.kernelHook?.({ family, full, mode: 'ipvs' });
          ipvs.apply(payload);
        } catch (e) {
          context.metrics.m.iptablesRestoreFailuresTotal.inc({ ip_family: ipFamilyLabel(family) });
          return { ok: false, error: (e as Error).message, payload: artifacts, summary };
        }
        // kube-proxy's IPVS proxier counts Services (not ports) with a Local policy and no local endpoint.
        const internal = new Set<string>();
        const external = new Set<string>();
        for (const sp of update.state.servicePorts) {
          const noLocal = sp.categorized.hasAnyEndpoints && (sp.categorized.localEndpoints?.length ?? 0) === 0;
          const name = `${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}`;
          if (noLocal && sp.info.internalPolicyLocal) internal.add(name);
          if (noLocal && sp.info.externalPolicyLocal) external.add(name);
        }
        return { ok: true, payload: artifacts, summary, noLocalEndpoints: { internal: internal.size, external: external.size } };
      },
      state: () => [
        { name: 'ipvsadm', text: () => formatIpvsadmList(ipvs.table()) },
        { name: 'ipset-save', text: () => renderIPSets(ipvs.ipsets()) },
        { name: 'iptables-save', text: () => ipvs.iptables(family).save() },
      ],
    };
  },
};
