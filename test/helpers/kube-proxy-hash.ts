/**
 * kube-proxy's chain-name hash written the plain way (node:crypto's SHA-256, then RFC 4648
 * base32, first 16 characters), as an oracle for the compiler's own (src/iptables/names.ts,
 * which hashes in JavaScript and encodes only the ten bytes it needs, for speed).
 */
import { createHash } from 'node:crypto';

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

/** The 16-character hash kube-proxy puts after KUBE-SVC-, KUBE-SEP- and the other prefixes. */
export function kubeProxyHash(input: string): string {
  return base32Std(createHash('sha256').update(input).digest()).slice(0, 16);
}
