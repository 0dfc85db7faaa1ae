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
import { createHash } from 'node:crypto';
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

/**
 * base32(sha256(input))[0:16]. Sixteen base32 characters are exactly the first ten bytes of the
 * digest, so only those are encoded (this runs once per endpoint: 100k times for a big cluster).
 */
export function chainHash(input: string): string {
  const digest = createHash('sha256').update(input).digest();
  let out = '';
  // Two groups of 5 bytes = 40 bits = 8 characters each.
  for (let group = 0; group < 10; group += 5) {
    const hi = digest[group]!;
    const lo = (digest[group + 1]! * 0x1000000 + digest[group + 2]! * 0x10000 + digest[group + 3]! * 0x100 + digest[group + 4]!) >>> 0;
    // 40-bit value = hi * 2^32 + lo; read it 5 bits at a time from the top.
    const bits = hi * 0x100000000 + lo;
    for (let shift = 35; shift >= 0; shift -= 5) out += BASE32[Math.floor(bits / 2 ** shift) % 32];
  }
  return out;
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
  const hash = chainHash(spn + protocolWord(protocol));
  return {
    hash,
    clusterPolicyChain: SVC_PREFIX + hash,
    localPolicyChain: SVL_PREFIX + hash,
    externalChain: EXT_PREFIX + hash,
    firewallChain: FW_PREFIX + hash,
  };
}

/** KUBE-SEP- chain of one endpoint ("10.180.0.1:80" or "[fd00::1]:80") of a service port. */
export function endpointChainName(spn: string, protocol: Protocol, endpoint: string): string {
  return SEP_PREFIX + chainHash(spn + protocolWord(protocol) + endpoint);
}

/** Whether a chain is one of kube-proxy's per-service or per-endpoint chains. */
export function isServiceChainName(chain: string): boolean {
  return [SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX].some((prefix) => chain.startsWith(prefix));
}
