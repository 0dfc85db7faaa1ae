/**
 * The hashes the IPVS hashing schedulers use, bit for bit:
 * - hash_32 (include/linux/hash.h): multiply by GOLDEN_RATIO_32 and keep the top bits (sh, dh);
 * - hsiphash (lib/siphash.c) on 64-bit kernels, where it is SipHash-1-3 with a 64-bit state and
 *   the low 32 bits of the result (mh);
 * - the address fold every hashing scheduler applies first (an IPv6 address is the XOR of its four
 *   32-bit words).
 *
 * 64-bit SipHash arithmetic is done on pairs of 32-bit halves: BigInt would be exact too, but is an
 * order of magnitude slower, and mh hashes on every pick and 2 × dests times per table rebuild.
 */
import { ipToBytes } from '../../util/ip.js';
import { isAvailable, type Dest } from './types.js';

const GOLDEN_RATIO_32 = 0x61c88647;

/** hash_32(val, bits): (val * GOLDEN_RATIO_32 mod 2^32) >> (32 - bits). */
export function hash32(value: number, bits: number): number {
  return (Math.imul(value >>> 0, GOLDEN_RATIO_32) >>> 0) >>> (32 - bits);
}

/**
 * ntohl(addr_fold): an IPv4 address as an unsigned 32-bit number; an IPv6 address as the XOR of
 * its four big-endian words (ip_vs_sh_hashkey and its siblings).
 */
export function foldAddress(ip: string): number {
  const bytes = ipToBytes(ip);
  let fold = 0;
  for (let i = 0; i < bytes.length; i += 4) {
    fold ^= (bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!;
  }
  return fold >>> 0;
}

/** An hsiphash key on a 64-bit kernel: two unsigned longs, each as high and low 32-bit halves. */
export interface HsiphashKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

/** A key whose two unsigned longs are given as numbers below 2^53. */
export function hsiphashKey(key0: number, key1: number): HsiphashKey {
  return {
    k0hi: Math.floor(key0 / 0x100000000) >>> 0,
    k0lo: key0 >>> 0,
    k1hi: Math.floor(key1 / 0x100000000) >>> 0,
    k1lo: key1 >>> 0,
  };
}

// The SipHash state as eight 32-bit halves. Module-level so a round is a plain call with no
// closure to allocate; every hash starts by overwriting all of it, so no state leaks between calls.
let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;

/** SIPROUND (lib/siphash.c) on the 64-bit state. */
function sipround(): void {
  let lo: number, hi: number, t: number;
  // v0 += v1; v1 = rol64(v1, 13); v1 ^= v0; v0 = rol64(v0, 32);
  lo = (v0l + v1l) >>> 0; v0h = (v0h + v1h + (lo < v0l ? 1 : 0)) >>> 0; v0l = lo;
  hi = ((v1h << 13) | (v1l >>> 19)) >>> 0; v1l = ((v1l << 13) | (v1h >>> 19)) >>> 0; v1h = hi;
  v1h = (v1h ^ v0h) >>> 0; v1l = (v1l ^ v0l) >>> 0;
  t = v0h; v0h = v0l; v0l = t;
  // v2 += v3; v3 = rol64(v3, 16); v3 ^= v2;
  lo = (v2l + v3l) >>> 0; v2h = (v2h + v3h + (lo < v2l ? 1 : 0)) >>> 0; v2l = lo;
  hi = ((v3h << 16) | (v3l >>> 16)) >>> 0; v3l = ((v3l << 16) | (v3h >>> 16)) >>> 0; v3h = hi;
  v3h = (v3h ^ v2h) >>> 0; v3l = (v3l ^ v2l) >>> 0;
  // v0 += v3; v3 = rol64(v3, 21); v3 ^= v0;
  lo = (v0l + v3l) >>> 0; v0h = (v0h + v3h + (lo < v0l ? 1 : 0)) >>> 0; v0l = lo;
  hi = ((v3h << 21) | (v3l >>> 11)) >>> 0; v3l = ((v3l << 21) | (v3h >>> 11)) >>> 0; v3h = hi;
  v3h = (v3h ^ v0h) >>> 0; v3l = (v3l ^ v0l) >>> 0;
  // v2 += v1; v1 = rol64(v1, 17); v1 ^= v2; v2 = rol64(v2, 32);
  lo = (v2l + v1l) >>> 0; v2h = (v2h + v1h + (lo < v2l ? 1 : 0)) >>> 0; v2l = lo;
  hi = ((v1h << 17) | (v1l >>> 15)) >>> 0; v1l = ((v1l << 17) | (v1h >>> 15)) >>> 0; v1h = hi;
  v1h = (v1h ^ v2h) >>> 0; v1l = (v1l ^ v2l) >>> 0;
  t = v2h; v2h = v2l; v2l = t;
}

/**
 * hsiphash(&v, 4, key) for a u32 v on a 64-bit little-endian kernel (= hsiphash_1u32): SipHash-1-3
 * over the four bytes of v, returning the low 32 bits.
 */
export function hsiphashU32(value: number, key: HsiphashKey): number {
  // HPREAMBLE: the SipHash constants ("somepseudorandomlygeneratedbytes") xor the key.
  v0h = (0x736f6d65 ^ key.k0hi) >>> 0; v0l = (0x70736575 ^ key.k0lo) >>> 0;
  v1h = (0x646f7261 ^ key.k1hi) >>> 0; v1l = (0x6e646f6d ^ key.k1lo) >>> 0;
  v2h = (0x6c796765 ^ key.k0hi) >>> 0; v2l = (0x6e657261 ^ key.k0lo) >>> 0;
  v3h = (0x74656462 ^ key.k1hi) >>> 0; v3l = (0x79746573 ^ key.k1lo) >>> 0;
  // b = len << 56 | the four message bytes (a little-endian load of v).
  const bh = 0x04000000;
  const bl = value >>> 0;
  // HPOSTAMBLE on 64-bit: one compression round, then three finalisation rounds.
  v3h = (v3h ^ bh) >>> 0; v3l = (v3l ^ bl) >>> 0;
  sipround();
  v0h = (v0h ^ bh) >>> 0; v0l = (v0l ^ bl) >>> 0;
  v2l = (v2l ^ 0xff) >>> 0;
  sipround();
  sipround();
  sipround();
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/**
 * The fallback walk of the hashing schedulers (sh-fallback, mh-fallback in ip_vs_sh.c and
 * ip_vs_mh.c): when the hashed dest is unavailable, rehash with offsets 0, 1, ... (each offset
 * added to the first slot) and take the first available dest; an empty slot ends the walk.
 */
export function rehashFallback(first: number, size: number, destAt: (roffset: number) => Dest | undefined): Dest | undefined {
  for (let offset = 0; offset < size; offset++) {
    const candidate = destAt((offset + first) % size);
    if (candidate === undefined) return undefined;
    if (isAvailable(candidate)) return candidate;
  }
  return undefined;
}
