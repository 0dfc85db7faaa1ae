/**
 * wlc, weighted least-connection (net/netfilter/ipvs/ip_vs_wlc.c): the first available dest
 * (weight > 0, not OVERLOAD) is the candidate; a later non-OVERLOAD dest replaces it when
 * overhead(candidate) * weight(dest) > overhead(dest) * weight(candidate), compared as 64-bit
 * products. A weight-0 dest can never win (its side of the product is 0) and ties keep the earlier
 * dest, so the pick is the first dest in list order with the smallest overhead / weight.
 */
import type { DestList } from './dest-list.js';
import { byListPosition, leastLoadScheduler } from './least-conn-index.js';
import { connOverhead, type Dest, type Scheduler } from './types.js';

/**
 * overhead/weight without division: the kernel's cross-multiplication. Products stay below 2^53
 * (overhead < 2^31 by the kernel's int, weight <= 65535 by ipvsadm), so doubles compare exactly.
 */
export function byLoadPerWeight(load: (dest: Dest) => number): (a: Dest, b: Dest) => number {
  return (a, b) => load(a) * b.weight - load(b) * a.weight || byListPosition(a, b);
}

const byOverheadPerWeight = byLoadPerWeight(connOverhead);

export const wlc: Scheduler = {
  name: 'wlc',
  init: (service) => leastLoadScheduler(service.dests, byOverheadPerWeight),
};

/**
 * The kernel's wlc walk itself, as lblc and lblcr run it on a cache miss (__ip_vs_lblc_schedule,
 * __ip_vs_lblcr_schedule): first available dest, replaced on a strictly smaller overhead/weight.
 */
export function weightedLeastConnection(list: DestList): Dest | undefined {
  let least: Dest | undefined;
  let leastOverhead = 0;
  for (let dest = list.first(); dest !== undefined; dest = list.after(dest)) {
    if (dest.overloaded) continue;
    if (least === undefined) {
      if (dest.weight > 0) {
        least = dest;
        leastOverhead = connOverhead(dest);
      }
      continue;
    }
    const overhead = connOverhead(dest);
    if (leastOverhead * dest.weight > overhead * least.weight) {
      least = dest;
      leastOverhead = overhead;
    }
  }
  return least;
}
