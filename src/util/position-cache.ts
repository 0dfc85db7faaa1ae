/**
 * Values worked out for the objects at each position of a list that many callers hand in again
 * and again, mostly with the very same objects at the same positions: every node of a cluster
 * lists one family's service ports in one order, and a node shares most of them with every
 * other node (a few per position differ: one per zone of a topology-aware port, or a node's own
 * view of a port with a local endpoint). Lookup is by identity; a few variants per position are
 * kept, the oldest dropped first.
 */
export class PositionCache<K extends object, V> {
  /**
   * Per position its one entry, or its entries when it has more than one (a few positions
   * only): an array of one per position was 56 bytes more on each of a cluster's 12k ports.
   */
  readonly #positions: (PositionEntry<K, V> | PositionEntry<K, V>[] | undefined)[] = [];
  readonly #variants: number;

  constructor(variants = 4) {
    this.#variants = variants;
  }

  /** The value kept for `key` at `index`, if any. */
  get(index: number, key: K): V | undefined {
    const seen = this.#positions[index];
    if (seen === undefined) return undefined;
    if (!Array.isArray(seen)) return seen.key === key ? seen.value : undefined;
    for (let i = 0; i < seen.length; i++) if (seen[i]!.key === key) return seen[i]!.value;
    return undefined;
  }

  /**
   * Keep `value` for `key` at `index`. A key only this caller will ever hand in (`shareable`
   * false) is kept only while the position has nothing else, so that it never pushes out what
   * others share.
   */
  set(index: number, key: K, value: V, shareable: boolean): void {
    const seen = this.#positions[index];
    if (seen === undefined) {
      this.#positions[index] = { key, value };
      return;
    }
    const list = Array.isArray(seen) ? seen : [seen];
    const entry = list.find((e) => e.key === key);
    if (entry !== undefined) {
      entry.value = value;
      return;
    }
    if (!shareable) return;
    this.#positions[index] = withLast(list, { key, value }, this.#variants);
  }
}

/** A value kept at a position, for the object it was worked out for. */
interface PositionEntry<K, V> {
  readonly key: K;
  value: V;
}

/**
 * `list` and `item`, the oldest dropped beyond `kept`, as a new list of exactly that length: a
 * list of a few variants is kept for each of 10k+ ports of a big cluster, mostly with one item,
 * where a list grown by push would keep room for 17.
 */
export function withLast<T>(list: readonly T[], item: T, kept: number): T[] {
  return (list.length >= kept ? list.slice(1) : list).concat([item]);
}

/**
 * The positions where `current` holds another object than `baseline` (or where `always` is
 * set): what a node's view changes against a node seen before. A small function of its own so
 * that V8 optimizes the loop once (it runs over every port of every node).
 */
export function changedPositions<T>(current: readonly T[], baseline: readonly T[], always?: readonly boolean[]): number[] {
  const changed: number[] = [];
  const n = current.length;
  if (always === undefined) {
    for (let i = 0; i < n; i++) if (current[i] !== baseline[i]) changed.push(i);
  } else {
    for (let i = 0; i < n; i++) if (current[i] !== baseline[i] || always[i] === true) changed.push(i);
  }
  return changed;
}

/**
 * Nodes are counted against baselines: a few nodes counted before, with their values per
 * position. A node of another zone than the first sees every topology-aware port otherwise
 * (hundreds of positions at 5,000 nodes, against a few dozen for its own endpoints), so a node
 * that differs from every kept baseline at more than one position in NEW_BASELINE_SHARE is kept
 * as one too, up to MAX_BASELINES (derived from the nearest: no whole count again).
 */
export const NEW_BASELINE_SHARE = 32;
export const MAX_BASELINES = 8;

/**
 * Of `baselines`, the one whose ports differ from `ports` at the fewest positions, with those
 * positions; the first one near enough not to be kept as another baseline ends the search.
 */
export function nearestBaseline<T, B extends { readonly ports: readonly T[] }>(
  baselines: readonly B[], ports: readonly T[], always?: (base: B) => readonly boolean[],
): { base: B; changed: number[] } | undefined {
  let best: { base: B; changed: number[] } | undefined;
  for (const base of baselines) {
    if (base.ports.length !== ports.length) continue;
    const changed = changedPositions(ports, base.ports, always?.(base));
    if (best === undefined || changed.length < best.changed.length) best = { base, changed };
    if (changed.length * NEW_BASELINE_SHARE <= ports.length) break;
  }
  return best;
}

/** Whether a node that differs at `changed` of `ports` positions from its nearest baseline should be kept as one. */
export function keepAsBaseline(changed: readonly number[], ports: number, kept: number): boolean {
  return changed.length * NEW_BASELINE_SHARE > ports && kept < MAX_BASELINES;
}
