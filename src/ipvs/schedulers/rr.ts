/**
 * rr, round robin (net/netfilter/ipvs/ip_vs_rr.c). The state is a cursor: the head, or the dest
 * picked last. A pick scans the dests after the cursor to the end of the list, then wraps to the
 * front and scans up to and including the cursor itself, which is checked last; the first
 * available dest (weight > 0, not OVERLOAD) wins and becomes the cursor. Weight size is ignored.
 * Deleting the cursor's dest moves the cursor to its predecessor, so the scan resumes at the dest
 * that followed it; adding a dest leaves the cursor alone (the new dest, at the front, is reached
 * after the wrap).
 */
import type { LinkedDest, ListLink } from './dest-list.js';
import { isAvailable, type Dest, type Scheduler, type ServiceScheduler } from './types.js';

export const rr: Scheduler = {
  name: 'rr',
  init(service): ServiceScheduler {
    const list = service.dests;
    let cursor: ListLink = list.head;
    return {
      schedule(): Dest | undefined {
        const last = cursor;
        // Pass 1 runs from after the cursor to the end; pass 2 from the front up to the cursor.
        // If the cursor is the head, pass 1 already saw every dest.
        for (let pass = 0; pass < 2; pass++) {
          if (pass === 1 && last === list.head) break;
          for (let link = pass === 0 ? last.next : list.head.next; link !== list.head; link = link.next) {
            const dest = link as LinkedDest;
            if (isAvailable(dest)) {
              cursor = link;
              return dest;
            }
            if (link === last) return undefined;
          }
        }
        return undefined;
      },
      delDest(dest): void {
        // ip_vs_rr_del_dest: the dest is already unlinked but its own prev still names its
        // predecessor, which is where the scan must resume from.
        if (cursor === (dest as LinkedDest)) cursor = cursor.prev;
      },
    };
  },
};
