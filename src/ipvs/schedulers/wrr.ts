/**
 * wrr, weighted round robin (net/netfilter/ipvs/ip_vs_wrr.c).
 *
 * State: cl (the cursor: the head or the dest picked last), cw (current weight), mw (maximum
 * weight) and di (the step: the gcd of the positive weights, 1 if there are none).
 * mw = max weight - (di - 1), so the last pass runs at cw = 1 and still finds a dest whose weight
 * was lowered below di; all weights 0 gives mw = 0, which always means "no destination".
 *
 * A pick walks on from the cursor taking the first dest that is not OVERLOAD and has
 * weight >= cw. At the end of the list cw drops by di; when it reaches 0 it starts again at mw and
 * the pick fails if the pass that just ended was already the last one (cw <= di) or if the walk
 * began at the head. After such a restart, the final pass stops (and fails) when it reaches the
 * dest it started from. Every add, delete and edit resets the cursor to the head and recomputes
 * di and mw; cw is kept (rounded onto the new di grid) unless it is 0 or above the new mw. Because
 * a service is filled one dest at a time, cw usually does not start at mw.
 */
import type { LinkedDest, ListLink } from './dest-list.js';
import type { Dest, Scheduler, SchedulerService, ServiceScheduler } from './types.js';

interface WrrMark {
  cl: ListLink;
  cw: number;
  mw: number;
  di: number;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** ip_vs_wrr_gcd_weight: gcd of the positive weights, 1 when there are none. */
function gcdWeight(service: SchedulerService): number {
  let g = 0;
  for (const dest of service.dests) {
    if (dest.weight > 0) g = g > 0 ? gcd(dest.weight, g) : dest.weight;
  }
  return g || 1;
}

/** ip_vs_wrr_max_weight: the largest weight, 0 when there are no dests. */
function maxWeight(service: SchedulerService): number {
  let max = 0;
  for (const dest of service.dests) if (dest.weight > max) max = dest.weight;
  return max;
}

export const wrr: Scheduler = {
  name: 'wrr',
  init(service): ServiceScheduler {
    const head = service.dests.head;
    const di = gcdWeight(service);
    const mw = maxWeight(service) - (di - 1);
    const mark: WrrMark = { cl: head, cw: mw, mw, di };

    // ip_vs_wrr_dest_changed, the add, del and upd hook alike.
    const destChanged = (): void => {
      mark.cl = head;
      mark.di = gcdWeight(service);
      mark.mw = maxWeight(service) - (mark.di - 1);
      if (mark.cw > mark.mw || mark.cw === 0) mark.cw = mark.mw;
      else if (mark.di > 1) mark.cw = Math.trunc(mark.cw / mark.di) * mark.di + 1;
    };

    return {
      schedule(): Dest | undefined {
        if (mark.mw === 0) return undefined;
        const last = mark.cl;
        let stop: ListLink | undefined;
        let lastPass = false;
        let restarted = false;
        let link = last;
        for (;;) {
          for (link = link.next; link !== head; link = link.next) {
            const dest = link as LinkedDest;
            if (!dest.overloaded && dest.weight >= mark.cw) {
              mark.cl = link;
              return dest;
            }
            if (link === stop) {
              mark.cl = link;
              return undefined;
            }
          }
          mark.cw -= mark.di;
          if (mark.cw <= 0) {
            mark.cw = mark.mw;
            // Stop if the last pass (cw <= di) already ran from the first dest, or if the walk
            // began at the head: then every dest was checked for weight >= 1.
            if (lastPass || last === head) {
              mark.cl = head;
              return undefined;
            }
            restarted = true;
          }
          lastPass = mark.cw <= mark.di;
          // The first pass at weight >= 1 only covered the dests after `last`: finish at `last`.
          if (lastPass && restarted && last !== head) stop = last;
        }
      },
      addDest: destChanged,
      delDest: destChanged,
      updDest: destChanged,
    };
  },
};
