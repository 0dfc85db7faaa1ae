/**
 * A compiled virtual server (plain data) → a live VirtualService that schedules, built the way
 * kube-proxy built it in the kernel: the service is created empty, every dest is added with
 * weight 1 in insertion order (the reverse of the list order), and the draining ones are then
 * edited to weight 0. Replaying the operations, not just the end state, matters: wrr's current
 * weight and mh's Maglev slots depend on them (a dest edited to weight 0 keeps its slots).
 */
import type { ServiceProtocol, VirtualServiceOptions } from './virtual-service.js';
import { VirtualService } from './virtual-service.js';
import { type VirtualServer, SVC_F_SCHED1, SVC_F_SCHED2, destAddr, isPersistent, serviceAddr } from './table.js';

export interface LiveServiceOptions {
  /** Clock in seconds (persistence templates); default the service's own manual clock. */
  now?: () => number;
  /** Random source in [0, 1) (twos); default a fixed seed. */
  rng?: () => number;
  /** Leave persistence out: every connection is scheduled, as for a client never seen before. */
  withoutPersistence?: boolean;
}

/** The scheduler flag names ipvsadm -b takes, from the SCHED1/SCHED2 bits (sh and mh only). */
export function schedulerFlagList(vs: Pick<VirtualServer, 'scheduler' | 'flags'>): string[] {
  if (vs.scheduler !== 'sh' && vs.scheduler !== 'mh') return [];
  const flags: string[] = [];
  if (vs.flags & SVC_F_SCHED1) flags.push(`${vs.scheduler}-fallback`);
  if (vs.flags & SVC_F_SCHED2) flags.push(`${vs.scheduler}-port`);
  return flags;
}

export function liveServiceOf(vs: VirtualServer, opts: LiveServiceOptions = {}): VirtualService {
  const options: VirtualServiceOptions = {
    flags: schedulerFlagList(vs),
    address: serviceAddr(vs),
    protocol: vs.protocol.toLowerCase() as ServiceProtocol,
    // kube-proxy sets net.ipv4.vs.expire_quiescent_template=1.
    sysctl: { expireQuiescentTemplate: true },
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.rng ? { rng: opts.rng } : {}),
    ...(isPersistent(vs) && !opts.withoutPersistence ? { persistence: { timeoutSeconds: vs.timeoutSeconds, netmask: vs.netmaskPrefix } } : {}),
  };
  const live = new VirtualService(vs.scheduler, options);
  // List order is newest first: add from the back so each lands in front of the previous.
  for (let i = vs.dests.length - 1; i >= 0; i--) {
    const dest = vs.dests[i]!;
    live.addDest({
      addr: destAddr(dest),
      weight: dest.quiesced ? 1 : dest.weight,
      activeConns: dest.activeConns,
      inactConns: dest.inactConns,
      upperThreshold: dest.upperThreshold,
      lowerThreshold: dest.lowerThreshold,
    });
  }
  for (const dest of vs.dests) if (dest.quiesced) live.setWeight(destAddr(dest), dest.weight);
  return live;
}
