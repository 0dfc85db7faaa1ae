/**
 * nq, never queue (net/netfilter/ipvs/ip_vs_nq.c): scanning from the front and skipping OVERLOAD
 * and weight-0 dests, the first dest with no active connection is returned at once (weight and
 * inactive connections do not matter); when every available dest is busy, sed's rule applies:
 * smallest (activeconns + 1) / weight, first in list order on ties.
 */
import { byListPosition, leastLoadScheduler, type LoadSnapshot } from './least-conn-index.js';
import { expectedDelayOverhead } from './sed.js';
import type { Scheduler } from './types.js';
import { byLoadPerWeight } from './wlc.js';

/** load is activeconns + 1, so an idle dest has load 1. */
function idleFirstThenExpectedDelay(a: LoadSnapshot, b: LoadSnapshot): number {
  const aIdle = a.load === 1;
  const bIdle = b.load === 1;
  if (aIdle !== bIdle) return aIdle ? -1 : 1;
  return aIdle ? byListPosition(a, b) : byLoadPerWeight(a, b);
}

export const nq: Scheduler = {
  name: 'nq',
  init: (service) => leastLoadScheduler(service.dests, idleFirstThenExpectedDelay, expectedDelayOverhead),
};
