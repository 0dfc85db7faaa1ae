/**
 * sh, source hashing (net/netfilter/ipvs/ip_vs_sh.c).
 *
 * A 256-bucket table is filled by walking the list cyclically from the front, each dest taking
 * `weight` consecutive buckets (a weight-0 dest still takes one) until all 256 are set; an empty
 * service has an empty table. It is rebuilt on every add, delete and edit.
 * A client's bucket is hash_32(source address + port, 8), the port being the client's source port
 * with the sh-port flag and 0 otherwise. If that bucket's dest has weight 0 or is OVERLOAD the pick
 * fails, unless sh-fallback is set: then buckets (offset + 2 * bucket) & 255 for offset 0..255 are
 * tried in turn (the kernel adds the first bucket twice), the first available dest wins, and an
 * empty bucket ends the search.
 */
import type { LinkedDest } from './dest-list.js';
import { hash32, rehashFallback } from './hash.js';
import { isAvailable, type Dest, type Flow, type Scheduler, type SchedulerService, type ServiceScheduler } from './types.js';

const TAB_BITS = 8;
const TAB_SIZE = 1 << TAB_BITS;
const TAB_MASK = TAB_SIZE - 1;

/** ip_vs_sh_reassign (dh's table is the same with every weight taken as 1). */
export function fillBuckets(service: SchedulerService, bucketsPerDest: (dest: Dest) => number): (Dest | undefined)[] {
  const buckets = new Array<Dest | undefined>(TAB_SIZE).fill(undefined);
  const list = service.dests;
  if (list.size === 0) return buckets;
  let link = list.head;
  let count = 0;
  for (let i = 0; i < TAB_SIZE; i++) {
    if (link === list.head) link = link.next;
    const dest = link as LinkedDest;
    buckets[i] = dest;
    // "Don't move to next dest until filling weight": ++count >= weight, so weight 0 takes one.
    if (++count >= bucketsPerDest(dest)) {
      link = link.next;
      count = 0;
    }
  }
  return buckets;
}

/** ip_vs_sh_hashkey: (offset + hash_32(port + addr, 8)) & 255, in unsigned 32-bit arithmetic. */
export function shBucket(addrFold: number, port: number, offset: number): number {
  return (offset + hash32((port + addrFold) >>> 0, TAB_BITS)) & TAB_MASK;
}

export const sh: Scheduler = {
  name: 'sh',
  init(service): ServiceScheduler {
    let buckets = fillBuckets(service, (dest) => dest.weight);
    const reassign = (): void => {
      buckets = fillBuckets(service, (dest) => dest.weight);
    };
    const usePort = service.flags.has('sh-port');
    const fallback = service.flags.has('sh-fallback');

    return {
      schedule(flow: Flow): Dest | undefined {
        const port = usePort ? flow.srcPort : 0;
        const first = shBucket(flow.srcFold, port, 0);
        const dest = buckets[first];
        if (dest === undefined) return undefined;
        if (isAvailable(dest)) return dest;
        if (!fallback) return undefined;
        return rehashFallback(first, TAB_SIZE, (roffset) => buckets[shBucket(flow.srcFold, port, roffset)]);
      },
      addDest: reassign,
      delDest: reassign,
      updDest: reassign,
    };
  },
};
