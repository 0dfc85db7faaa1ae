/**
 * kube-proxy's chain-name hash written the plain way (node:crypto's SHA-256, then RFC 4648
 * base32, first 16 characters), as an oracle for the compiler's own (src/iptables/names.ts,
 * which hashes in JavaScript and encodes only the ten bytes it needs, for speed).
 */
import { createHash } from 'node:crypto';
import { base32Std } from '../../src/util/hash.js';

/** The 16-character hash kube-proxy puts after KUBE-SVC-, KUBE-SEP- and the other prefixes. */
export function kubeProxyHash(input: string): string {
  return base32Std(createHash('sha256').update(input).digest()).slice(0, 16);
}
