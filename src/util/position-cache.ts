/**
 * Values worked out for the objects at each position of a list that many callers hand in again
 * and again, mostly with the very same objects at the same positions: every node of a cluster
 * lists one family's service ports in one order, and a node shares most of them with every
 * other node (a few per position differ: one per zone of a topology-aware port, or a node's own
 * view of a port with a local endpoint). Lookup is by identity; a few variants per position are
 * kept, the oldest dropped first.
 */
export class PositionCache<K extends object, V> {
  readonly #positions: { readonly key: K; value: V }[][] = [];
  readonly #variants: number;

  constructor(variants = 4) {
    this.#variants = variants;
  }

  /** The value kept for `key` at `index`, if any. */
  get(index: number, key: K): V | undefined {
    const seen = this.#positions[index];
    if (seen === undefined) return undefined;
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
      this.#positions[index] = [{ key, value }];
      return;
    }
    const entry = seen.find((e) => e.key === key);
    if (entry !== undefined) {
      entry.value = value;
      return;
    }
    if (!shareable) return;
    if (seen.length >= this.#variants) seen.shift();
    seen.push({ key, value });
  }
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
