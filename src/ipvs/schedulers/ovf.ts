/**
 * ovf, overflow (net/netfilter/ipvs/ip_vs_ovf.c): skipping OVERLOAD dests, weight-0 dests and dests
 * whose active connections exceed their weight, the one with the highest weight; the first in
 * list order wins ties. Connections stay on the heaviest dest until it holds more active ones than
 * its weight, then overflow to the next. Inactive connections are not counted.
 */
import type { Dest, Scheduler, ServiceScheduler } from './types.js';

export const ovf: Scheduler = {
  name: 'ovf',
  init(service): ServiceScheduler {
    return {
      schedule(): Dest | undefined {
        let highest: Dest | undefined;
        const list = service.dests;
        for (let dest = list.first(); dest !== undefined; dest = list.after(dest)) {
          const weight = dest.weight;
          if (dest.overloaded || dest.activeConns > weight || weight === 0) continue;
          if (highest === undefined || weight > highest.weight) highest = dest;
        }
        return highest;
      },
    };
  },
};
