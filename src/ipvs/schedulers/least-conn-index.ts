/**
 * The least-connection family's pick (lc, wlc, sed, nq) in O(log n) per change instead of the
 * kernel's O(n) walk per pick, for services with thousands of real servers.
 *
 * The kernel walks the list from the front and replaces its candidate only on a strictly better
 * load, so it picks the FIRST dest (in list order) among those with the best load. The index is a
 * min-heap of the dests that may be picked (weight > 0, not OVERLOAD, still in the service),
 * ordered by (load, list position); list position is descending `seq`, because the list only ever
 * grows at the front. A dest is moved in the heap whenever its counters, weight or flags change,
 * so the top is always the kernel's pick.
 */
import { IndexedHeap } from './indexed-heap.js';
import { isAvailable, type Dest, type ServiceScheduler } from './types.js';

/** Negative when `a` is the better pick. Must break ties by list position (see byListPosition). */
export type LoadOrder = (a: Dest, b: Dest) => number;

/** Ties in load: the dest nearer the front of the list (added later, higher seq) wins. */
export function byListPosition(a: Dest, b: Dest): number {
  return b.seq - a.seq;
}

export class LeastConnIndex {
  readonly #heap: IndexedHeap<Dest>;

  constructor(order: LoadOrder, dests: Iterable<Dest>) {
    this.#heap = new IndexedHeap<Dest>(order);
    for (const dest of dests) this.refresh(dest);
  }

  /** The dest's counters, weight or flags changed (or it was just added). */
  refresh(dest: Dest): void {
    const pickable = dest.available && isAvailable(dest);
    const indexed = this.#heap.has(dest);
    if (pickable && indexed) this.#heap.update(dest);
    else if (pickable) this.#heap.insert(dest);
    else if (indexed) this.#heap.remove(dest);
  }

  /** Forget the dest (deleted from the service). */
  remove(dest: Dest): void {
    if (this.#heap.has(dest)) this.#heap.remove(dest);
  }

  /** The dest the kernel's scan would pick, or undefined when none is available. */
  best(): Dest | undefined {
    return this.#heap.peek();
  }
}

/**
 * The ServiceScheduler of a least-load scheduler. Those kernel schedulers have no add/del/upd
 * hooks because they read the counters on every pick; here the hooks keep the index in step.
 */
export function leastLoadScheduler(dests: Iterable<Dest>, order: LoadOrder): ServiceScheduler {
  const index = new LeastConnIndex(order, dests);
  return {
    schedule: () => index.best(),
    addDest: (dest) => index.refresh(dest),
    delDest: (dest) => index.remove(dest),
    updDest: (dest) => index.refresh(dest),
    countersChanged: (dest) => index.refresh(dest),
  };
}
