/**
 * lblc, locality-based least-connection (net/netfilter/ipvs/ip_vs_lblc.c).
 *
 * A cache maps a packet's destination address to a dest. On a hit the cached dest is used while it
 * is still in the service, has weight > 0 and is not "overloaded" in lblc's own sense (more active
 * connections than its weight while some dest has fewer than half its weight active; the OVERLOAD
 * flag is not consulted for a cached dest). Otherwise the dest is chosen by the wlc walk and
 * cached. For a service on one address every client lands on the same dest until it becomes
 * overloaded in that sense.
 *
 * The kernel's garbage collector runs every 60 s; every 30th run it drops entries unused for
 * lblc_expiration (24 h). The partial collection that only starts above 16384 entries is not
 * modelled (a service sees one destination address unless it is a fwmark service).
 */
import {
  type Dest, type Flow, type Scheduler, type SchedulerContext, type SchedulerService, type ServiceScheduler,
} from './types.js';
import { weightedLeastConnection } from './wlc.js';

/** lblc_expiration and lblcr_expiration default: 24 hours. */
export const LOCALITY_EXPIRATION_SECONDS = 24 * 60 * 60;
/** CHECK_EXPIRE_INTERVAL (60 s) times COUNT_FOR_FULL_EXPIRATION (30). */
const FULL_CHECK_PERIOD_SECONDS = 60 * 30;

/**
 * Whether the kernel's full expiration check, run every 30 minutes after the service was created,
 * dropped an entry last used at `lastUse` at some time up to `now`: the first check at or after
 * lastUse + expiration drops it.
 */
export function expiredByFullCheck(createdAt: number, lastUse: number, now: number): boolean {
  const due = lastUse + LOCALITY_EXPIRATION_SECONDS;
  const checks = Math.max(1, Math.ceil((due - createdAt) / FULL_CHECK_PERIOD_SECONDS));
  return createdAt + checks * FULL_CHECK_PERIOD_SECONDS <= now;
}

/**
 * lblc's and lblcr's is_overloaded: more active connections than the weight, while some dest of
 * the service has fewer active connections than half its weight.
 */
export function isLocalityOverloaded(dest: Dest, service: SchedulerService): boolean {
  if (dest.activeConns <= dest.weight) return false;
  const list = service.dests;
  for (let other = list.first(); other !== undefined; other = list.after(other)) {
    if (other.activeConns * 2 < other.weight) return true;
  }
  return false;
}

interface CacheEntry {
  dest: Dest;
  lastUse: number;
}

export const lblc: Scheduler = {
  name: 'lblc',
  init(service: SchedulerService, context: SchedulerContext): ServiceScheduler {
    const createdAt = context.now();
    const cache = new Map<string, CacheEntry>();
    return {
      schedule(flow: Flow): Dest | undefined {
        const now = context.now();
        let entry = cache.get(flow.dstIP);
        if (entry !== undefined && expiredByFullCheck(createdAt, entry.lastUse, now)) {
          cache.delete(flow.dstIP);
          entry = undefined;
        }
        if (entry !== undefined) {
          entry.lastUse = now;
          const cached = entry.dest;
          if (cached.available && cached.weight > 0 && !isLocalityOverloaded(cached, service)) return cached;
        }
        const dest = weightedLeastConnection(service.dests);
        if (dest === undefined) return undefined;
        // ip_vs_lblc_new: an entry for the same dest is kept as it is, another one is replaced.
        if (entry === undefined || entry.dest !== dest) cache.set(flow.dstIP, { dest, lastUse: now });
        return dest;
      },
    };
  },
};
