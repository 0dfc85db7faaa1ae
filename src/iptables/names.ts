/**
 * kube-proxy's iptables chain names (pkg/proxy/iptables/proxier.go): the fixed chains, and the
 * per-service and per-endpoint chains named by a hash. Names are made only here.
 *
 * The hash is the first 16 characters of base32(sha256(input)) (RFC 4648, upper case): iptables
 * limits chain names to 28 characters, and "KUBE-SEP-" plus 16 fits. The service chains of one
 * service port share one hash of `spn + protocol`; an endpoint chain hashes
 * `spn + protocol + endpoint`, where spn is ServicePortName.String() ("ns/name:port") and
 * protocol is lower case ("tcp").
 */
import * as crypto from 'node:crypto';
import { sha256AsciiPrefixOf } from './sha256.js';
import type { Protocol } from '../model/types.js';

// Fixed chains, with kube-proxy's spelling.
export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's anti-martian chain, which kube-proxy also writes (IPv4 with localhost node ports). */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

export const SVC_PREFIX = 'KUBE-SVC-';
export const SVL_PREFIX = 'KUBE-SVL-';
export const EXT_PREFIX = 'KUBE-EXT-';
export const FW_PREFIX = 'KUBE-FW-';
export const SEP_PREFIX = 'KUBE-SEP-';

/** The longest chain name iptables accepts. */
export const MAX_CHAIN_NAME_LENGTH = 28;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const BASE32_CODES = Array.from(BASE32, (c) => c.charCodeAt(0));

const digest = new Uint8Array(10);
/** The 16 base32 character codes of the last hash computed. */
const hashCodes = new Array<number>(16).fill(0);
/** Reused character-code buffers, one per name length. */
const nameBuffers = new Map<number, number[]>();

/**
 * base32(sha256(first + second + third))[0:16] into hashCodes. Sixteen base32 characters are exactly the first
 * ten bytes of the digest, so only those are computed and encoded, five bits at a time. This
 * runs once per endpoint (100k times for a big cluster): see sha256.ts for why the hash is not
 * node:crypto's.
 */
function computeHash(first: string, second = '', third = ''): void {
  let d: Uint8Array = digest;
  if (!sha256AsciiPrefixOf(first, second, third, d, 10)) d = crypto.createHash('sha256').update(first + second + third).digest();
  const c = BASE32_CODES;
  const h = hashCodes;
  h[0] = c[d[0]! >> 3]!;
  h[1] = c[((d[0]! & 7) << 2) | (d[1]! >> 6)]!;
  h[2] = c[(d[1]! >> 1) & 31]!;
  h[3] = c[((d[1]! & 1) << 4) | (d[2]! >> 4)]!;
  h[4] = c[((d[2]! & 15) << 1) | (d[3]! >> 7)]!;
  h[5] = c[(d[3]! >> 2) & 31]!;
  h[6] = c[((d[3]! & 3) << 3) | (d[4]! >> 5)]!;
  h[7] = c[d[4]! & 31]!;
  h[8] = c[d[5]! >> 3]!;
  h[9] = c[((d[5]! & 7) << 2) | (d[6]! >> 6)]!;
  h[10] = c[(d[6]! >> 1) & 31]!;
  h[11] = c[((d[6]! & 1) << 4) | (d[7]! >> 4)]!;
  h[12] = c[((d[7]! & 15) << 1) | (d[8]! >> 7)]!;
  h[13] = c[(d[8]! >> 2) & 31]!;
  h[14] = c[((d[8]! & 3) << 3) | (d[9]! >> 5)]!;
  h[15] = c[d[9]! & 31]!;
}

/**
 * prefix + the last computed hash, as one flat string. (prefix + hash would be a concatenated
 * string, which V8 must flatten, i.e. copy, when it becomes a Map key or is read character by
 * character: once per chain.) Every prefix but "" and KUBE-FW- has nine characters: those names
 * are made by one call with their 25 character codes as arguments, which costs half of an apply
 * over an array of them (this runs once per endpoint: 150k times for a big cluster).
 */
function nameWithLastHash(prefix: string): string {
  const h = hashCodes;
  if (prefix.length === 9) {
    return String.fromCharCode(
      prefix.charCodeAt(0), prefix.charCodeAt(1), prefix.charCodeAt(2), prefix.charCodeAt(3), prefix.charCodeAt(4),
      prefix.charCodeAt(5), prefix.charCodeAt(6), prefix.charCodeAt(7), prefix.charCodeAt(8),
      h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!, h[8]!, h[9]!, h[10]!, h[11]!, h[12]!, h[13]!, h[14]!, h[15]!,
    );
  }
  const p = prefix.length;
  let out = nameBuffers.get(p);
  if (out === undefined) {
    out = new Array<number>(p + 16).fill(0);
    nameBuffers.set(p, out);
  }
  for (let i = 0; i < p; i++) out[i] = prefix.charCodeAt(i);
  for (let i = 0; i < 16; i++) out[p + i] = h[i]!;
  return String.fromCharCode.apply(null, out);
}

/** base32(sha256(input))[0:16]: the part after the prefix of every hashed chain name. */
export function chainHash(input: string): string {
  computeHash(input);
  return nameWithLastHash('');
}

/** kube-proxy's lower-case protocol word, as used in hashes and in `-m tcp -p tcp`. */
export function protocolWord(protocol: Protocol): 'tcp' | 'udp' | 'sctp' {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : 'sctp';
}

/** The chains of one service port; they share one hash and differ only in prefix. */
export interface ServicePortChainNames {
  readonly hash: string;
  /** KUBE-SVC-: the endpoints for Cluster traffic policy. */
  readonly clusterPolicyChain: string;
  /** KUBE-SVL-: the endpoints for Local traffic policy. */
  readonly localPolicyChain: string;
  /** KUBE-EXT-: every external destination (node port, external IP, LB IP) jumps here. */
  readonly externalChain: string;
  /** KUBE-FW-: loadBalancerSourceRanges. */
  readonly firewallChain: string;
}

export function servicePortChainNames(spn: string, protocol: Protocol): ServicePortChainNames {
  computeHash(spn, protocolWord(protocol));
  return {
    hash: nameWithLastHash(''),
    clusterPolicyChain: nameWithLastHash(SVC_PREFIX),
    localPolicyChain: nameWithLastHash(SVL_PREFIX),
    externalChain: nameWithLastHash(EXT_PREFIX),
    firewallChain: nameWithLastHash(FW_PREFIX),
  };
}

/** KUBE-SEP- chain of one endpoint ("10.180.0.1:80" or "[fd00::1]:80") of a service port. */
export function endpointChainName(spn: string, protocol: Protocol, endpoint: string): string {
  computeHash(spn, protocolWord(protocol), endpoint);
  return nameWithLastHash(SEP_PREFIX);
}

/** Whether a chain is one of kube-proxy's per-service or per-endpoint chains. */
export function isServiceChainName(chain: string): boolean {
  return [SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX].some((prefix) => chain.startsWith(prefix));
}
