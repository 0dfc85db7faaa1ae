/**
 * nq, never queue (net/netfilter/ipvs/ip_vs_nq.c): scanning from the front and skipping OVERLOAD
 * and weight-0 dests, the first dest with no active connection is returned at once (weight and
 * inactive connections do not matter); when every available dest is busy, sed's rule applies:
 * smallest (activeconns + 1) / weight, first in list order on ties.
 */
import { byListPosition, leastLoadScheduler } from './least-conn-index.js';
import { byExpectedDelay } from './sed.js';
import type { Dest, Scheduler } from './types.js';

function idleFirstThenExpectedDelay(a: Dest, b: Dest): number {
  const aIdle = a.activeConns === 0;
  const bIdle = b.activeConns === 0;
  if (aIdle !== bIdle) return aIdle ? -1 : 1;
  return aIdle ? byListPosition(a, b) : byExpectedDelay(a, b);
}

export const nq: Scheduler = {
  name: 'nq',
  init: (service) => leastLoadScheduler(service.dests, idleFirstThenExpectedDelay),
};
