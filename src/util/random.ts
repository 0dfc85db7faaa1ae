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
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform numbers in [0, 1): seededUint32 / 2^32. */
export function seededRng(seed: number): Rng {
  const next = seededUint32(seed);
  return () => next() / 0x100000000;
}
