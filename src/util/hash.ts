/**
 * The hashes kpsim names things with: RFC 4648 base32 (kube-proxy's nftables names encode a
 * SHA-256 with it), Go's 32-bit FNV-1a, the safe-encoded controller hash (pod-template-hash,
 * controller-revision-hash) over kpsim's canonical JSON, and murmur3's finaliser. (kube-proxy's
 * iptables chain-name hash is src/iptables/names.ts.)
 */

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (upper case, with '=' padding), as Go's base32.StdEncoding writes it. */
export function base32Std(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

const FNV32_OFFSET_BASIS = 0x811c9dc5;

/** 32-bit FNV-1a of the UTF-16 code units of `text` (Go's hash/fnv New32a over ASCII input). */
export function fnv32a(text: string): number {
  return fnv32aUpdate(FNV32_OFFSET_BASIS, text);
}

/** Continues an FNV-1a hash over more text: fnv32aUpdate(fnv32a(a), b) === fnv32a(a + b). */
export function fnv32aUpdate(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * JSON with object keys sorted at every level: the same value always gives the same text,
 * whatever order its manifest wrote the keys in. What kpsim hashes to stand in for Go's
 * DeepHashObject (which hashes a struct's printed form, so the values differ from a real cluster's).
 */
export function canonicalJSON(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJSON(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJSON(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * apimachinery's rand alphabet: no vowels (no words) and no 0, 1, 3 (no look-alikes). The API
 * server's generateName suffixes and the controllers' hashes are written with it.
 */
export const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** apimachinery's rand.SafeEncodeString: each character mapped onto the safe alphabet. */
export function safeEncodeString(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) out += SAFE_ALPHABET[text.charCodeAt(i) % SAFE_ALPHABET.length];
  return out;
}

/**
 * A controller's hash as Kubernetes writes it (pod-template-hash, controller-revision-hash):
 * the decimal form of a 32-bit FNV-1a hash, safe-encoded ("5d8f7c9b6"). The hashed text is
 * kpsim's canonical JSON, so the value is stable for the same input but not a real cluster's.
 */
export function controllerHash(value: unknown): string {
  return safeEncodeString(String(fnv32a(canonicalJSON(value))));
}

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
