/**
 * A small seeded random source (mulberry32), so that everything random in kpsim (twos, the
 * iptables-style probability picker, generated workloads) repeats exactly for the same seed.
 * Not for anything that needs unpredictability.
 */
export type Rng = () => number;

/** Uniform numbers in [0, 1), the same sequence for the same 32-bit seed. */
export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}
