/**
 * `numgen random mod N`: the kernel draws one 32-bit random number and scales it to 0..N-1
 * with reciprocal_scale (index = ⌊r·N / 2³²⌋, nft_ng_random_gen), then adds the offset. So
 * index i is drawn by ceil((i+1)·2³²/N) − ceil(i·2³²/N) of the 2³² numbers: uniform up to
 * 1/2³², exactly as computed here.
 */

/** The exact chance of each index. */
export function numgenProbabilities(mod: number): number[] {
  const out = new Array<number>(mod);
  let previous = 0;
  for (let i = 0; i < mod; i++) {
    const bound = Math.ceil(((i + 1) * 0x100000000) / mod);
    out[i] = (bound - previous) / 0x100000000;
    previous = bound;
  }
  return out;
}

/** The index a 32-bit random number gives. */
export function numgenIndex(random32: number, mod: number): number {
  return Math.floor(((random32 >>> 0) * mod) / 0x100000000);
}
