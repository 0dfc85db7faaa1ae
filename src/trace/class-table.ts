/**
 * The source classes of kept walks laid out flat (see DecisionTrie in decisions.ts for what a
 * class is). A lookup at 10k services was bound by memory latency: a dozen dependent reads of
 * objects scattered over the heap (the destination's slot map, the slot, the trie, its
 * boundaries, its class map, the class, its draws, its answers), each a likely cache miss. Here
 * everything a class lookup reads lives in one Int32Array shared by every trie of a tracer:
 *
 *   region (one per trie):  [B, bound 0 .. bound B-1, B * TYPE_SLOTS class cells]; bounds as
 *                           signedOrder(bound), so that signed comparison keeps their order
 *   draws (one per class):  4 numbers per draw: the stored probability less one (a 31-bit draw
 *                           matches when not above it), 1 when negated, and where yes and no
 *                           lead (a draw's offset, or -(ref + 1): an answer); or an nftables
 *                           `numgen random mod N` pick: N less one, PICK_STEP or PICKED_STEP
 *                           + 4 * the index it asks for (PICK draws the index, PICKED asks the
 *                           same draw's index again), and where yes and no lead
 *
 * A class cell is 0 until the class is first asked, then CELL_ANSWER/CELL_DRAWS/CELL_NODE + 4 *
 * x: an answer (`refs[x]`), draws at offset x, or a trie node to walk from (`refs[x]`: the
 * draws below it could not be flattened). Answers and nodes are kept in `refs`, by index.
 *
 * And keyed by destination side (the IPv4 destination address as a number, protocol, port,
 * origin, mark), an open-addressing table of each side's two regions (every outcome, seeded
 * samples), so that a plain packet's lookup reads this table and the region, and nothing of the
 * slot, the tries or the destination's facts (not even its interned id: a map of strings, two
 * or three cache lines far apart, was a quarter of a lookup). Only IPv4 sources have classes,
 * so only IPv4 destinations have regions.
 *
 * Staleness: a region is a copy of its trie's boundaries and classes. A trie that changes (a
 * walk added: new boundaries, a leaf replaced, new draws) kills its region (its first number
 * set to DEAD) and makes a new one when next asked; a side's entry that points to a dead region
 * is not answered from (the tracer asks the trie, then records the new region). Past
 * MAX_ENTRIES numbers everything is let go at once (`generation` counts the times): tries whose
 * region is of an older generation make a new one.
 */
import type { SeededDraws } from '../util/random.js';

/** Address types per interval of a class (ADDRESS_TYPES has 12; no type: 15). */
export const TYPE_SLOTS = 16;
/** A region's first number once its trie changed. */
const DEAD = -1;
export const CELL_ANSWER = 1;
export const CELL_DRAWS = 2;
export const CELL_NODE = 3;
/** Numbers kept before everything is let go (4 bytes each: 128 MB at most). */
const MAX_ENTRIES = 1 << 25;
/** Boundaries past which a trie keeps no region (its classes would be too many to lay out). */
export const MAX_REGION_BOUNDS = 256;

/** A flattened numgen pick's second number: draw the index (PICK_STEP) or ask the last one (PICKED_STEP), + 4 * the index asked for. */
export const PICK_STEP = 2;
export const PICKED_STEP = 3;

/** Not answered from the table: ask the trie. */
export const NOT_FLAT = Symbol('not in the class table');

/**
 * The class table's first size per rule of the rulesets (see the constructor): at 10k services x
 * 10 endpoints a load of every kind of lookup over 16k packets filled some 12 numbers per rule
 * in iptables mode (368k rules) and 17 in nftables mode (256k rules: its maps make fewer rules
 * for the same walks); rounded up to a power of two, both come to 8M numbers (32 MB).
 */
export const CLASS_NUMBERS_PER_RULE = 20;

/** Numbers per side in the side table: side key + 1 (0: free), destination, mark, the two regions (and room). */
const SIDE_STRIDE = 8;

export class ClassTable {
  data: Int32Array;
  /** The first free number of `data`. */
  top = 0;
  /** Answers and trie nodes, by the index a cell or a draw keeps. */
  refs: unknown[] = [];
  generation = 0;
  /** Where cellOf, answer and sideRegion put what they are given, for cellAt, answerAt and sideRegionAt to read. */
  private readonly scratch = new Int32Array(3);
  /** The sides: SIDE_STRIDE Int32 per side, open addressing, at most half full. */
  private sides = new Int32Array(SIDE_STRIDE * 1024);
  private sideCount = 0;

  /**
   * `capacity`: numbers to make room for at once (rounded up to a power of two, at most
   * MAX_ENTRIES). A tracer sizes it by its rules: growing later allocates a buffer twice the
   * size and copies, tens of MB at 10k services, and V8 answers that much new external memory
   * with a major collection of the whole heap, which slowed every lookup for seconds while it
   * marked. A buffer's pages are the system's zeroed pages until written, so room not used
   * costs address space, not memory.
   */
  constructor(capacity = 1024) {
    let size = 1024;
    while (size < capacity && size < MAX_ENTRIES) size *= 2;
    this.data = new Int32Array(size);
  }

  /** A region for these boundaries, every class unknown; -1 when there is no room. */
  region(bounds: readonly number[]): number {
    const b = bounds.length;
    const at = this.reserve(1 + b + b * TYPE_SLOTS);
    if (at < 0) return -1;
    const data = this.data;
    data[at] = b;
    for (let i = 0; i < b; i++) data[at + 1 + i] = signedOrder(bounds[i]!);
    data.fill(0, at + 1 + b, at + 1 + b + b * TYPE_SLOTS);
    return at;
  }

  /** The region will not be answered from again (its trie changed); its number of boundaries. */
  kill(region: number): number {
    const b = this.data[region]!;
    this.data[region] = DEAD;
    return b;
  }

  /**
   * A killed region made again in place for the same trie, every class unknown: `bounds` as
   * many as it had. Only its own trie may do this: the sides that pointed to it are its trie's,
   * and find it live again with that trie's classes.
   */
  reviveRegion(region: number, bounds: readonly number[]): number {
    const b = bounds.length;
    const data = this.data;
    data[region] = b;
    for (let i = 0; i < b; i++) data[region + 1 + i] = signedOrder(bounds[i]!);
    data.fill(0, region + 1 + b, region + 1 + b + b * TYPE_SLOTS);
    return region;
  }

  /** The offset of a source's class cell in a live region; -1 when the region is dead. */
  cellOf(region: number, src32: number, srcTypeBit: number): number {
    const scratch = this.scratch;
    scratch[0] = src32;
    return this.cellAt(region, scratch, 0, srcTypeBit);
  }

  /**
   * cellOf for a source whose IPv4 address is read from `addresses[at]` (its 32 bits as an
   * Int32). A plain packet's lookup asks this way: an address past 2^30 given as an argument
   * is a heap number made per call, one or two per lookup from 128.0.0.0 up.
   */
  cellAt(region: number, addresses: Int32Array, at: number, srcTypeBit: number): number {
    const data = this.data;
    const b = data[region]!;
    if (b === DEAD) return -1;
    const key = signedOrder(addresses[at]!);
    let lo = 0;
    let hi = b - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (data[region + 1 + mid]! <= key) lo = mid;
      else hi = mid - 1;
    }
    return region + 1 + b + lo * TYPE_SLOTS + ((31 - Math.clz32(srcTypeBit)) & 15);
  }

  /**
   * The answer of a source's class (following its draws with `draws`), or NOT_FLAT: the region
   * is dead, the class not asked yet, or it needs its trie (a node to walk from, or draws and
   * none given).
   */
  answer(region: number, src32: number, srcTypeBit: number, draws: SeededDraws | undefined): unknown {
    const scratch = this.scratch;
    scratch[0] = src32;
    return this.answerAt(region, scratch, 0, srcTypeBit, draws);
  }

  /** answer for a source whose IPv4 address is read from `addresses[at]` (as cellAt). */
  answerAt(region: number, addresses: Int32Array, addressAt: number, srcTypeBit: number, draws: SeededDraws | undefined): unknown {
    const cellAt = this.cellAt(region, addresses, addressAt, srcTypeBit);
    if (cellAt < 0) return NOT_FLAT;
    const data = this.data;
    const cell = data[cellAt]!;
    const kind = cell & 3;
    if (kind === CELL_ANSWER) return this.refs[(cell - CELL_ANSWER) / 4];
    if (kind !== CELL_DRAWS || draws === undefined) return NOT_FLAT;
    let at = (cell - CELL_DRAWS) / 4;
    let picked = -1;
    while (at >= 0) {
      const how = data[at + 1]!;
      if (how <= 1) {
        at = draws.nextLow31AtMost(data[at]!) !== (how !== 0) ? data[at + 2]! : data[at + 3]!;
      } else {
        // numgenIndex(draws.next(), N), the draw kept inside draws (see nextScaled).
        if ((how & 3) === PICK_STEP) picked = draws.nextScaled(data[at]! + 1);
        at = picked === how >> 2 ? data[at + 2]! : data[at + 3]!;
      }
    }
    return this.refs[-at - 1];
  }

  /** Keep `value` for a reference (an answer or a node); its index. */
  ref(value: unknown): number {
    this.refs.push(value);
    return this.refs.length - 1;
  }

  /**
   * Lay out a class's draws: `steps` as SourceClass flattens them (4 per draw, yes/no a draw's
   * index or -(end + 1)), `ends` their answers; the offset of the first draw `start`, or -1
   * when there is no room (everything was let go).
   */
  addDraws(steps: readonly number[], ends: readonly unknown[], start: number): number {
    const generation = this.generation;
    const at = this.reserve(steps.length);
    if (at < 0 || generation !== this.generation) return -1;
    const refBase = this.refs.length;
    for (const end of ends) this.refs.push(end);
    const data = this.data;
    for (let i = 0; i < steps.length; i += 4) {
      // stored - 1: fits an Int32 for every stored value (0 never matches, 2^31 and up always do).
      data[at + i] = Math.min(steps[i]!, 0x80000000) - 1;
      data[at + i + 1] = steps[i + 1]!;
      for (const k of [2, 3]) {
        const to = steps[i + k]!;
        data[at + i + k] = to >= 0 ? at + to * 4 : -(refBase + (-to - 1)) - 1;
      }
    }
    return at + start * 4;
  }

  // ------------------------------------------------------------ the side table

  /**
   * The regions recorded for a destination side (`dst32` its IPv4 address; `which` 0: every
   * outcome, 1: samples), or -1: none, or not of this generation.
   */
  sideRegion(dst32: number, sideKey: number, mark: number, which: 0 | 1): number {
    const scratch = this.scratch;
    scratch[0] = dst32;
    scratch[1] = sideKey;
    scratch[2] = mark;
    return this.sideRegionAt(scratch, 0, which);
  }

  /**
   * sideRegion for a side read from `side`: its destination's IPv4 address (32 bits as an
   * Int32), side key and mark at `at`, `at + 1`, `at + 2` (read there, as cellAt reads an
   * address: a destination or mark past 2^30 given as an argument is a heap number per call).
   */
  sideRegionAt(side: Int32Array, at: number, which: 0 | 1): number {
    const dst = side[at]!;
    const sideKey = side[at + 1]!;
    const mark = side[at + 2]!;
    const sides = this.sides;
    const mask = sides.length / SIDE_STRIDE - 1;
    for (let i = sideHash(dst, sideKey, mark) & mask; ; i = (i + 1) & mask) {
      const o = i * SIDE_STRIDE;
      const key = sides[o]!;
      if (key === 0) return -1;
      if (key === sideKey + 1 && sides[o + 1] === dst && sides[o + 2] === mark) return sides[o + 3 + which]!;
    }
  }

  /** Record a side's region (arguments as sideRegion). */
  setSideRegion(dst32: number, sideKey: number, mark: number, which: 0 | 1, region: number): void {
    if ((this.sideCount + 1) * 2 * SIDE_STRIDE > this.sides.length) this.growSides();
    const sides = this.sides;
    const mask = sides.length / SIDE_STRIDE - 1;
    for (let i = sideHash(dst32, sideKey, mark) & mask; ; i = (i + 1) & mask) {
      const o = i * SIDE_STRIDE;
      const key = sides[o]!;
      if (key === 0) {
        sides[o] = sideKey + 1;
        sides[o + 1] = dst32 | 0;
        sides[o + 2] = mark | 0;
        sides[o + 3] = -1;
        sides[o + 4] = -1;
        sides[o + 3 + which] = region;
        this.sideCount++;
        return;
      }
      if (key === sideKey + 1 && sides[o + 1] === (dst32 | 0) && sides[o + 2] === (mark | 0)) {
        sides[o + 3 + which] = region;
        return;
      }
    }
  }

  /** Let everything go (the walk cache started over, or `data` is full). */
  clear(): void {
    this.top = 0;
    this.refs = [];
    this.generation++;
    this.clearSides();
  }

  /** Forget every side's regions. */
  clearSides(): void {
    this.sides = new Int32Array(SIDE_STRIDE * 1024);
    this.sideCount = 0;
  }

  private growSides(): void {
    const old = this.sides;
    const sides = new Int32Array(old.length * 2);
    const mask = sides.length / SIDE_STRIDE - 1;
    for (let o = 0; o < old.length; o += SIDE_STRIDE) {
      if (old[o] === 0) continue;
      let i = sideHash(old[o + 1]!, old[o]! - 1, old[o + 2]!) & mask;
      while (sides[i * SIDE_STRIDE] !== 0) i = (i + 1) & mask;
      sides.set(old.subarray(o, o + SIDE_STRIDE), i * SIDE_STRIDE);
    }
    this.sides = sides;
  }

  /** `n` numbers at the top of `data`, grown as needed; -1 past MAX_ENTRIES (then all is let go). */
  private reserve(n: number): number {
    if (this.top + n > this.data.length) {
      if (this.top + n > MAX_ENTRIES) {
        this.clear();
        return -1;
      }
      let size = this.data.length * 2;
      while (size < this.top + n) size *= 2;
      const data = new Int32Array(size);
      data.set(this.data.subarray(0, this.top));
      this.data = data;
    }
    const at = this.top;
    this.top += n;
    return at;
  }
}

/** A 32-bit unsigned number as an Int32 of the same order (signed comparison then keeps it). */
function signedOrder(u32: number): number {
  return u32 ^ 0x80000000;
}

function sideHash(dst32: number, sideKey: number, mark: number): number {
  let h = Math.imul(dst32, 0x9e3779b1) ^ Math.imul(sideKey, 0x85ebca6b) ^ mark;
  h ^= h >>> 15;
  return Math.imul(h, 0x2c1b3c6d) >>> 0;
}
