/**
 * An index that answers the least-connection family's question ("which available dest does the
 * kernel's scan pick?") in O(log n) instead of the kernel's O(n) walk, for services with thousands
 * of real servers.
 *
 * The kernel walks the list from the front and replaces its candidate only on a strictly better
 * load, so it picks the FIRST dest (in list order) among those with the best load. The index keeps
 * a min-heap (heap-js) of snapshots ordered by (load, list position); list position is descending
 * `seq`, because the list only ever grows at the front. A snapshot is taken whenever a dest's
 * counters, weight or OVERLOAD flag change; older snapshots of the same dest are left in the heap
 * and skipped when they reach the top (lazy deletion), and the heap is rebuilt when stale entries
 * outnumber the live ones, so every operation stays O(log n) amortised.
 */
import { Heap } from 'heap-js';
import { isAvailable, type Dest, type ServiceScheduler } from './types.js';

/** A dest's load as of one moment; `load`/`weight` mean what the scheduler's order says. */
export interface LoadSnapshot {
  readonly dest: Dest;
  readonly load: number;
  readonly weight: number;
  readonly seq: number;
}

/** Negative when `a` is the better pick. Must break ties by list position (higher seq first). */
export type LoadOrder = (a: LoadSnapshot, b: LoadSnapshot) => number;

/** Ties in load: the dest nearer the front of the list (added later, higher seq) wins. */
export function byListPosition(a: LoadSnapshot, b: LoadSnapshot): number {
  return b.seq - a.seq;
}

export class LeastConnIndex {
  readonly #heap: Heap<LoadSnapshot>;
  readonly #load: (dest: Dest) => number;
  /** The one live snapshot of each available dest; anything else in the heap is stale. */
  readonly #live = new Map<Dest, LoadSnapshot>();

  /** `load` reads the dest's counters into the number `order` compares (e.g. the overhead). */
  constructor(order: LoadOrder, load: (dest: Dest) => number, dests: Iterable<Dest>) {
    this.#heap = new Heap<LoadSnapshot>(order);
    this.#load = load;
    for (const dest of dests) this.#setLive(dest);
    this.#heap.init([...this.#live.values()]);
  }

  /** Take a new snapshot of the dest (or drop it, when it can no longer be picked). */
  refresh(dest: Dest): void {
    const snapshot = this.#setLive(dest);
    if (snapshot) this.#heap.push(snapshot);
    if (this.#heap.size() > 2 * this.#live.size + 32) this.#heap.init([...this.#live.values()]);
  }

  /** Forget the dest (deleted from the service). */
  remove(dest: Dest): void {
    this.#live.delete(dest);
  }

  /** The dest the kernel's scan would pick, or undefined when none is available. */
  best(): Dest | undefined {
    let top = this.#heap.peek();
    while (top !== undefined && this.#live.get(top.dest) !== top) {
      this.#heap.pop();
      top = this.#heap.peek();
    }
    return top?.dest;
  }

  #setLive(dest: Dest): LoadSnapshot | undefined {
    if (!dest.available || !isAvailable(dest)) {
      this.#live.delete(dest);
      return undefined;
    }
    const snapshot: LoadSnapshot = { dest, load: this.#load(dest), weight: dest.weight, seq: dest.seq };
    this.#live.set(dest, snapshot);
    return snapshot;
  }
}

/**
 * The ServiceScheduler of a least-load scheduler (lc, wlc, sed, nq). Those kernel schedulers have
 * no add/del/upd hooks because they read the counters on every pick; here the hooks keep the index
 * in step instead, and the pick is the index's best.
 */
export function leastLoadScheduler(
  dests: Iterable<Dest>, order: LoadOrder, load: (dest: Dest) => number,
): ServiceScheduler {
  const index = new LeastConnIndex(order, load, dests);
  return {
    schedule: () => index.best(),
    addDest: (dest) => index.refresh(dest),
    delDest: (dest) => index.remove(dest),
    updDest: (dest) => index.refresh(dest),
    countersChanged: (dest) => index.refresh(dest),
  };
}
