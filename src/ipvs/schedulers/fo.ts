/**
 * fo, weighted failover (net/netfilter/ipvs/ip_vs_fo.c): the non-OVERLOAD dest with the highest
 * weight; a later dest replaces the candidate only with a strictly higher weight, so the first in
 * list order wins ties. Weight 0 never qualifies. Connection counts play no part.
 */
import type { Dest, Scheduler, ServiceScheduler } from './types.js';

export const fo: Scheduler = {
  name: 'fo',
  init(service): ServiceScheduler {
    return {
      schedule(): Dest | undefined {
        let highest: Dest | undefined;
        let highestWeight = 0;
        const list = service.dests;
        for (let dest = list.first(); dest !== undefined; dest = list.after(dest)) {
          if (!dest.overloaded && dest.weight > highestWeight) {
            highest = dest;
            highestWeight = dest.weight;
          }
        }
        return highest;
      },
    };
  },
};
