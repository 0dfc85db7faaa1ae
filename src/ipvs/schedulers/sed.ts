/**
 * sed, shortest expected delay (net/netfilter/ipvs/ip_vs_sed.c): wlc's rule with the overhead
 * replaced by activeconns + 1 (the incoming connection included); inactive connections are ignored.
 * First available dest is the candidate, strictly smaller (active + 1) / weight replaces it.
 * (sed and nq multiply in unsigned 32 bits; that only wraps past 65536 active connections at
 * weight 65535, which this simulator does not model.)
 */
import { leastLoadScheduler } from './least-conn-index.js';
import type { Dest, Scheduler } from './types.js';
import { byLoadPerWeight } from './wlc.js';

/** ip_vs_sed_dest_overhead (nq uses the same). */
export function expectedDelayOverhead(dest: Dest): number {
  return dest.activeConns + 1;
}

/** (active + 1) / weight, first in list order on ties. */
export const byExpectedDelay = byLoadPerWeight(expectedDelayOverhead);

export const sed: Scheduler = {
  name: 'sed',
  init: (service) => leastLoadScheduler(service.dests, byExpectedDelay),
};
