/**
 * lc, least-connection (net/netfilter/ipvs/ip_vs_lc.c): among dests that are not OVERLOAD and
 * have weight > 0, the one with the smallest overhead (activeconns << 8) + inactconns. The kernel
 * replaces its candidate only on a strictly smaller overhead, so the first dest in list order wins
 * ties; the weight's size plays no other part.
 */
import { byListPosition, leastLoadScheduler } from './least-conn-index.js';
import { connOverhead, type Dest, type Scheduler } from './types.js';

function byOverhead(a: Dest, b: Dest): number {
  return connOverhead(a) - connOverhead(b) || byListPosition(a, b);
}

export const lc: Scheduler = {
  name: 'lc',
  init: (service) => leastLoadScheduler(service.dests, byOverhead),
};
