/**
 * SHA-256 (FIPS 180-4) of a short string, for chain names. kube-proxy hashes one string per
 * endpoint; calling into node:crypto costs more than the hash itself for such short inputs
 * (a Buffer in, a Buffer out, a native call), so this runs the rounds in JavaScript over one
 * reused message schedule and returns the first ten digest bytes kube-proxy's names use.
 * Tested against node:crypto (test/iptables/compile.test.ts).
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H0 = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

/** Reused between calls: the hash state, the message schedule, the padded message as big-endian words. */
const H = new Int32Array(8);
const W = new Int32Array(64);
let words = new Int32Array(64);

/**
 * The message words of the last first part hashed (sha256AsciiPrefixOf's `a`), its bytes
 * packed as loadAscii packs them, the rest of the last word zero: kube-proxy hashes one
 * `spn + protocol + endpoint` per endpoint, and the endpoints of a port come one after the
 * other, so the port's part is read once per port instead of once per endpoint.
 */
let firstWords = new Int32Array(16);
let firstText: string | undefined;

/**
 * The first `length` bytes (at most 32) of SHA-256 over the UTF-8 bytes of `input`, written to
 * `out`. Returns false, writing nothing, when `input` is not plain ASCII (callers then use
 * node:crypto; chain-name inputs are always ASCII in practice).
 */
export function sha256AsciiPrefix(input: string, out: Uint8Array, length: number): boolean {
  return sha256AsciiPrefixOf(input, '', '', out, length);
}

/**
 * sha256AsciiPrefix of the concatenation a + b + c, without making it: kube-proxy hashes
 * `spn + protocol + endpoint` once per endpoint, and the characters are read from the parts
 * straight into the message words (`a`'s from the words kept for it when it is the last `a`).
 */
export function sha256AsciiPrefixOf(a: string, b: string, c: string, out: Uint8Array, length: number): boolean {
  const n = a.length + b.length + c.length;
  if (!startMessage(a, n)) return false;
  const m = words;
  let pos = loadAscii(m, b, a.length);
  if (pos >= 0) pos = loadAscii(m, c, pos);
  if (pos < 0) return false;
  finishDigest(m, n, out, length);
  return true;
}

/**
 * sha256AsciiPrefixOf of `a` followed by the first `n` bytes of `bytes` (ASCII, as the caller
 * wrote them): for a text whose last part is written as bytes rather than made a string.
 */
export function sha256AsciiPrefixOfBytes(a: string, bytes: Uint8Array, n: number, out: Uint8Array, length: number): boolean {
  const total = a.length + n;
  if (!startMessage(a, total)) return false;
  const m = words;
  for (let i = 0, pos = a.length; i < n; i++, pos++) m[pos >>> 2]! |= bytes[i]! << (24 - 8 * (pos & 3));
  finishDigest(m, total, out, length);
  return true;
}

/** Blocks of a message of `n` bytes, its length and padding included. */
function blocksOf(n: number): number {
  return ((n + 8) >>> 6) + 1;
}

/**
 * `words` made ready for a message of `n` bytes that starts with `a`: a's whole words and the one
 * it ends in (zero past its end), then zeros up to the padding. False when `a` is not ASCII.
 */
function startMessage(a: string, n: number): boolean {
  const size = blocksOf(n) * 16;
  if (words.length < size) words = new Int32Array(size * 2);
  if (a !== firstText && !keepFirstWords(a)) return false;
  const m = words;
  const full = (a.length + 3) >>> 2;
  const kept = firstWords;
  for (let i = 0; i < full; i++) m[i] = kept[i]!;
  m.fill(0, full, size);
  return true;
}

/** The padding and bit length after the `n` bytes loaded into `m`, the rounds, and the digest's first `length` bytes into `out`. */
function finishDigest(m: Int32Array, n: number, out: Uint8Array, length: number): void {
  const blocks = blocksOf(n);
  m[n >>> 2]! |= 0x80 << (24 - 8 * (n & 3));
  // Bit length in the last 8 bytes (the high 4 are 0 for any string this short).
  m[blocks * 16 - 1] = n * 8;
  H.set(H0);
  for (let block = 0; block < blocks; block++) compress(m, block * 16);
  for (let i = 0; i < length; i++) out[i] = (H[i >>> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
}

/** `a`'s message words into firstWords (firstText then `a`); false, nothing kept, when `a` is not ASCII. */
function keepFirstWords(a: string): boolean {
  const need = ((a.length + 3) >>> 2) + 1;
  if (firstWords.length < need) firstWords = new Int32Array(need * 2);
  firstWords.fill(0);
  if (loadAscii(firstWords, a, 0) < 0) {
    firstText = undefined;
    return false;
  }
  firstText = a;
  return true;
}

/** The characters of `s` as message bytes from byte `pos` on; the position after, or -1 if one is not ASCII. */
function loadAscii(m: Int32Array, s: string, pos: number): number {
  for (let i = 0; i < s.length; i++, pos++) {
    const code = s.charCodeAt(i);
    if (code > 0x7f) return -1;
    m[pos >>> 2]! |= code << (24 - 8 * (pos & 3));
  }
  return pos;
}

function compress(m: Int32Array, offset: number): void {
  const w = W;
  for (let t = 0; t < 16; t++) w[t] = m[offset + t]!;
  let a = H[0]!, b = H[1]!, c = H[2]!, d = H[3]!, e = H[4]!, f = H[5]!, g = H[6]!, h = H[7]!;
  for (let t = 0; t < 64; t++) {
    // The message schedule, word by word as the rounds need it (one loop instead of two).
    let wt: number;
    if (t < 16) wt = w[t]!;
    else {
      const w15 = w[t - 15]!;
      const w2 = w[t - 2]!;
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      wt = w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
    }
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[t]! + wt) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
  H[5] = (H[5]! + f) | 0;
  H[6] = (H[6]! + g) | 0;
  H[7] = (H[7]! + h) | 0;
}
