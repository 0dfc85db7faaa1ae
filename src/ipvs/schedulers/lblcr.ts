/**
 * lblcr, locality-based least-connection with replication (net/netfilter/ipvs/ip_vs_lblcr.c).
 *
 * A cache maps a packet's destination address to a SET of dests (newest first). On a hit the
 * set's weighted least-connection member is chosen (OVERLOAD and deleted members skipped); if the
 * set has more than one member and was last changed more than lblcr_expiration (24 h) ago, its
 * weighted most-connection member is dropped. The chosen member is used unless there is none or it
 * is "overloaded" in lblc's sense; then the wlc walk over the whole service picks a dest, which
 * joins the set. On a miss the wlc walk's pick starts a new set.
 * Entries unused for 24 h are dropped by the full check every 30 minutes, as in lblc.
 */
import { expiredByFullCheck, isLocalityOverloaded, LOCALITY_EXPIRATION_SECONDS } from './lblc.js';
import { connOverhead, type Dest, type Flow, type Scheduler, type ServiceScheduler } from './types.js';
import { weightedLeastConnection } from './wlc.js';

interface DestSet {
  /** Newest first (list_add_rcu at the set's head). */
  members: Dest[];
  lastModified: number;
  lastUse: number;
}

/** ip_vs_dest_set_min: weighted least-connection among the set's available members. */
function setMin(members: readonly Dest[]): Dest | undefined {
  let least: Dest | undefined;
  let leastOverhead = 0;
  for (const dest of members) {
    if (dest.overloaded) continue;
    if (least === undefined) {
      if (dest.weight > 0 && dest.available) {
        least = dest;
        leastOverhead = connOverhead(dest);
      }
      continue;
    }
    const overhead = connOverhead(dest);
    if (leastOverhead * dest.weight > overhead * least.weight && dest.available) {
      least = dest;
      leastOverhead = overhead;
    }
  }
  return least;
}

/** ip_vs_dest_set_max: weighted most-connection among members with weight > 0. */
function setMax(members: readonly Dest[]): Dest | undefined {
  let most: Dest | undefined;
  let mostOverhead = 0;
  for (const dest of members) {
    if (most === undefined) {
      if (dest.weight > 0) {
        most = dest;
        mostOverhead = connOverhead(dest);
      }
      continue;
    }
    const overhead = connOverhead(dest);
    if (mostOverhead * dest.weight < overhead * most.weight && dest.weight > 0) {
      most = dest;
      mostOverhead = overhead;
    }
  }
  return most;
}

export const lblcr: Scheduler = {
  name: 'lblcr',
  init(service, context): ServiceScheduler {
    const createdAt = context.now();
    const cache = new Map<string, DestSet>();
    return {
      schedule(flow: Flow): Dest | undefined {
        const now = context.now();
        let set = cache.get(flow.dstIP);
        if (set !== undefined && expiredByFullCheck(createdAt, set.lastUse, now)) {
          cache.delete(flow.dstIP);
          set = undefined;
        }
        if (set === undefined) {
          const dest = weightedLeastConnection(service.dests);
          if (dest === undefined) return undefined;
          cache.set(flow.dstIP, { members: [dest], lastModified: now, lastUse: now });
          return dest;
        }
        set.lastUse = now;
        const chosen = setMin(set.members);
        if (set.members.length > 1 && now > set.lastModified + LOCALITY_EXPIRATION_SECONDS) {
          const most = setMax(set.members);
          if (most !== undefined) {
            set.members.splice(set.members.indexOf(most), 1);
            set.lastModified = now;
          }
        }
        if (chosen !== undefined && !isLocalityOverloaded(chosen, service)) return chosen;
        const dest = weightedLeastConnection(service.dests);
        if (dest === undefined) return undefined;
        // ip_vs_dest_set_insert with check: a member already in the set changes nothing.
        if (!set.members.includes(dest)) {
          set.members.unshift(dest);
          set.lastModified = now;
        }
        return dest;
      },
    };
  },
};
