/**
 * The --nodeport-addresses setting as one proxier sees it (pkg/proxy/util/nodeport_addresses.go
 * and cmd/kube-proxy/app/server.go): which local addresses accept NodePort traffic.
 *
 * - Only CIDRs of the proxier's family count; with none, the family matches all (0.0.0.0/0, ::/0).
 * - The single word "primary" stands for the node's primary IP of each family (/32, /128); a
 *   family without a (non-loopback) primary IP then matches all.
 * - Whether the CIDRs contain an IPv4 loopback address decides if localhost node ports can
 *   work at all: without it kube-proxy turns localhostNodePorts off.
 */
import { type Cidr, type Family, cidrContains, hostPrefix, isLoopback, parseCIDR } from '../util/ip.js';

export interface NodePortAddresses {
  /** The family's CIDRs include 0.0.0.0/0 or ::/0: every local address accepts node ports. */
  readonly matchAll: boolean;
  readonly cidrs: readonly Cidr[];
  readonly containsIPv4Loopback: boolean;
}

const IPV4_LOOPBACK_START = '127.0.0.0';

/**
 * @param configured config.nodePortAddresses: CIDRs of any family, or ["primary"].
 * @param primaryNodeIP the node's primary IP of this family, if it has one.
 */
export function nodePortAddresses(configured: readonly string[], family: Family, primaryNodeIP: string | undefined): NodePortAddresses {
  let texts = [...configured];
  if (texts.length === 1 && texts[0] === 'primary') {
    texts = primaryNodeIP !== undefined && !isLoopback(primaryNodeIP) ? [`${primaryNodeIP}/${hostPrefix(family)}`] : [];
  }
  let cidrs = texts.map((t) => parseCIDR(t)).filter((c): c is Cidr => c !== undefined && c.family === family);
  if (cidrs.length === 0) cidrs = [parseCIDR(family === 4 ? '0.0.0.0/0' : '::/0')!];

  let containsIPv4Loopback = false;
  const kept: Cidr[] = [];
  for (const cidr of cidrs) {
    if (cidr.family === 4 && (isLoopback(cidr.network) || cidrContains(cidr, IPV4_LOOPBACK_START))) containsIPv4Loopback = true;
    if (cidr.prefixLength === 0) {
      // A zero CIDR makes the rest irrelevant (kube-proxy stops reading there).
      return { matchAll: true, cidrs: [cidr], containsIPv4Loopback };
    }
    kept.push(cidr);
  }
  return { matchAll: false, cidrs: kept, containsIPv4Loopback };
}

/**
 * The interface addresses inside the CIDRs (kube-proxy's GetNodeIPs), each once. kube-proxy
 * collects them in a Go map, so its order is random; ours is the order of `interfaceAddresses`.
 */
export function nodePortIPs(npa: NodePortAddresses, interfaceAddresses: readonly string[]): string[] {
  return interfaceAddresses.filter((ip, i) => interfaceAddresses.indexOf(ip) === i && npa.cidrs.some((cidr) => cidrContains(cidr, ip)));
}
