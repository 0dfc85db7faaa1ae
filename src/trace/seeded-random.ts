/**
 * A small seeded random source (mulberry32) for repeatable sampled walks: the same seed gives
 * the same draws, hence the same endpoint, on every run and machine.
 */

/** Returns a function giving uniformly distributed unsigned 32-bit integers. */
export function createSeededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
