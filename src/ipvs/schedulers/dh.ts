/**
 * dh, destination hashing (net/netfilter/ipvs/ip_vs_dh.c): like sh, but the 256 buckets are
 * filled one per dest, cycling through the list from the front (weights are ignored), the bucket
 * is hash_32(destination address, 8) of the packet (the virtual service's own address, unless the
 * service is a fwmark one), and there is no fallback or port flag. The table is rebuilt when a
 * dest is added or deleted (dh has no upd hook: weights do not shape its table); the pick reads
 * the live weight and OVERLOAD flag of the bucket's dest.
 */
import { hash32 } from './hash.js';
import { fillBuckets } from './sh.js';
import { isAvailable, type Dest, type Flow, type Scheduler, type ServiceScheduler } from './types.js';

export const dh: Scheduler = {
  name: 'dh',
  init(service): ServiceScheduler {
    const oneEach = (): number => 1;
    let buckets = fillBuckets(service, oneEach);
    const reassign = (): void => {
      buckets = fillBuckets(service, oneEach);
    };
    return {
      schedule(flow: Flow): Dest | undefined {
        const dest = buckets[hash32(flow.dstFold, 8)];
        return dest !== undefined && dest.available && isAvailable(dest) ? dest : undefined;
      },
      addDest: reassign,
      delDest: reassign,
    };
  },
};
