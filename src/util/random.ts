/**
 * The one seeded random source of kpsim (mulberry32): everything random — twos, the iptables
 * statistic picks, sampled trace walks, generated workloads and clusters — repeats exactly for
 * the same seed, on every run and machine. Not for anything that needs unpredictability.
 */
export type Rng = () => number;

/** Unsigned 32-bit integers, the same sequence for the same 32-bit seed. */
export function seededUint32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + MULBERRY32_STEP) >>> 0;
    return mulberry32Mix(state);
  };
}

const MULBERRY32_STEP = 0x6d2b79f5;

/** mulberry32's output for a state (the state advances by MULBERRY32_STEP before each draw). */
function mulberry32Mix(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/**
 * seededUint32's sequence in an object that can start over with another seed: a caller that
 * draws for many seeds (a tracer answering seeded lookups) keeps one, rather than making a
 * closure per seed. `draw` is `next` as a function, made once.
 */
export class SeededDraws {
  private state = 0;
  readonly draw: () => number = () => this.next();

  /** Start over: the draws that follow are seededUint32(seed)'s. */
  reset(seed: number): this {
    this.state = seed >>> 0;
    return this;
  }

  next(): number {
    this.state = (this.state + MULBERRY32_STEP) >>> 0;
    return mulberry32Mix(this.state);
  }

  /**
   * `(next() & 0x7fffffff) <= limit`, the draw kept in here: a draw past 2^30 handed out of a
   * call that is not inlined is a heap number, one per draw of a seeded lookup.
   */
  nextLow31AtMost(limit: number): boolean {
    return (this.next() & 0x7fffffff) <= limit;
  }

  /** `Math.floor(next() * n / 2^32)`: the draw scaled to 0 .. n - 1, kept in here (as nextLow31AtMost). */
  nextScaled(n: number): number {
    return Math.floor((this.next() * n) / 0x100000000);
  }
}

/** Uniform numbers in [0, 1): seededUint32 / 2^32. */
export function seededRng(seed: number): Rng {
  const next = seededUint32(seed);
  return () => next() / 0x100000000;
}
