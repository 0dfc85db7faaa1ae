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
  return safeEncodeString(String(fnv32aCanonicalJSON(FNV32_OFFSET_BASIS, value) >>> 0));
}

/**
 * fnv32aUpdate(hash, canonicalJSON(value)), hashed while walking the value: no text is made.
 * Every workload's template is hashed twice at load (tens of thousands of them), and the
 * strings, entry pairs and joined pieces canonicalJSON makes were most of what that cost.
 */
function fnv32aCanonicalJSON(hash: number, value: unknown): number {
  let h = hash;
  if (typeof value === 'string') return fnv32aJSONString(h, value);
  if (Array.isArray(value)) {
    h = fnv32aChar(h, 91); // [
    for (let i = 0; i < value.length; i++) {
      if (i > 0) h = fnv32aChar(h, 44); // ,
      const item: unknown = value[i];
      // An undefined item is null, as canonicalJSON writes it; a hole is nothing (map skips it, join writes '').
      if (item !== undefined) h = fnv32aCanonicalJSON(h, item);
      else if (i in value) h = fnv32aUpdate(h, 'null');
    }
    return fnv32aChar(h, 93); // ]
  }
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object);
    // Manifests mostly list keys in order already: sort only when they are not.
    for (let i = 1; i < keys.length; i++) {
      if (keys[i - 1]! > keys[i]!) {
        keys.sort();
        break;
      }
    }
    h = fnv32aChar(h, 123); // {
    let first = true;
    for (const key of keys) {
      const item = object[key];
      if (item === undefined) continue;
      if (!first) h = fnv32aChar(h, 44); // ,
      first = false;
      h = fnv32aCanonicalJSON(fnv32aChar(fnv32aJSONString(h, key), 58), item); // "key":
    }
    return fnv32aChar(h, 125); // }
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return fnv32aUpdate(h, JSON.stringify(value));
  return fnv32aUpdate(h, canonicalJSON(value));
}

function fnv32aChar(hash: number, code: number): number {
  return Math.imul(hash ^ code, 0x01000193) >>> 0;
}

/** The hash continued over JSON.stringify(text): the characters themselves when none needs escaping. */
function fnv32aJSONString(hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    // '"', '\\', control characters and surrogates (a lone one is escaped) go through JSON.stringify.
    if (ch < 32 || ch === 34 || ch === 92 || (ch >= 0xd800 && ch <= 0xdfff)) return fnv32aUpdate(hash, JSON.stringify(text));
  }
  return fnv32aChar(fnv32aUpdate(fnv32aChar(hash, 34), text), 34);
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
