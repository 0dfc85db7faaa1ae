/**
 * The facts one nftables sync works from, derived once from the ProxierState and the compile
 * options before anything is written: what kube-proxy's nftables Proxier holds in its fields.
 */
import { type NodePortAddresses, nodePortAddresses, nodePortIPs } from '../iptables/node-port-addresses.js';
import type { ProxierState, ServicePortInfo } from '../tracker/types.js';
import type { NftablesSharedWork } from './shared-work.js';
import { type Family, isLoopback, parseCIDR } from '../util/ip.js';
import type { NftTable } from './types.js';

export interface NftablesCompileOptions {
  /**
   * The ServiceCIDRs kube-proxy knows (OnServiceCIDRsChanged, any family), instead of the
   * state's (networking.k8s.io ServiceCIDR objects among the manifests). With them, traffic to
   * an unallocated address in a service CIDR is dropped (cluster-ips-check); without any, as
   * when kube-proxy has seen no ServiceCIDR, that rule is left out.
   */
  serviceCIDRs?: readonly string[];
  /**
   * What compiles of other nodes of the same cluster wrote that this one can take over
   * (shared-work.ts): the table is the same, only made sooner.
   */
  shared?: NftablesSharedWork;
  /**
   * Write only these service ports (and everything else of the table as usual): what one packet
   * to these ports crosses.
   */
  onlyServicePorts?: (info: ServicePortInfo) => boolean;
}

export interface NftSyncContext {
  readonly state: ProxierState;
  readonly family: Family;
  readonly table: NftTable;
  /** "ip" or "ip6": the payload expression of the family. */
  readonly ipX: 'ip' | 'ip6';
  /** "ipv4_addr" or "ipv6_addr". */
  readonly addrType: 'ipv4_addr' | 'ipv6_addr';
  /** "ip daddr != 127.0.0.0/8" or "ip6 daddr != ::1": localhost node ports are not supported. */
  readonly noLocalhost: string;
  /** kube-proxy's masquerade mark, as its test fixture writes it ("0x4000"). */
  readonly masqueradeMark: string;
  readonly masqueradeAll: boolean;
  /** The local detector's match for pod traffic ("ip saddr 10.0.0.0/8"); undefined without one. */
  readonly ifLocal: string | undefined;
  /** ... and for other traffic ("ip saddr != 10.0.0.0/8"). */
  readonly ifNotLocal: string | undefined;
  readonly nodePortAddresses: NodePortAddresses;
  /** The node IPs that accept node ports (the nodeport-ips set), loopback left out. */
  readonly nodePortIPs: readonly string[];
  /** This family's service CIDRs, "a,b" as kube-proxy joins them; "" when none are known. */
  readonly serviceCIDRs: string;
  /** The node's primary IP of this family (kube-proxy's nodeIP), for the source-range self rule. */
  readonly nodeIP: string;
}

/**
 * nftables mode's default for --nodeport-addresses is "primary" (cmd/kube-proxy: the nftables
 * backend's Init), where iptables and IPVS mode default to every local address.
 */
export function nftablesNodePortAddresses(state: ProxierState): NodePortAddresses {
  const configured = state.config.nodePortAddresses.length === 0 ? ['primary'] : state.config.nodePortAddresses;
  return nodePortAddresses(configured, state.family, state.nodeIPs[0]);
}

export function createNftSyncContext(state: ProxierState, options: NftablesCompileOptions, table: NftTable): NftSyncContext {
  const family = state.family;
  const ipX = family === 4 ? 'ip' : 'ip6';
  const npa = nftablesNodePortAddresses(state);
  const detector = state.localDetector?.cidrs[0];
  const serviceCIDRs = (options.serviceCIDRs ?? state.serviceCIDRs ?? [])
    .map((c) => parseCIDR(c))
    .filter((c) => c !== undefined && c.family === family)
    .map((c) => c!.text);
  return {
    state,
    family,
    table,
    ipX,
    addrType: family === 4 ? 'ipv4_addr' : 'ipv6_addr',
    noLocalhost: family === 4 ? 'ip daddr != 127.0.0.0/8' : 'ip6 daddr != ::1',
    masqueradeMark: state.masqueradeMark,
    masqueradeAll: state.config.masqueradeAll,
    ifLocal: detector === undefined ? undefined : `${ipX} saddr ${detector}`,
    ifNotLocal: detector === undefined ? undefined : `${ipX} saddr != ${detector}`,
    nodePortAddresses: npa,
    // "--nodeport-addresses includes localhost but localhost NodePorts are not supported": skipped.
    nodePortIPs: npa.matchAll ? [] : nodePortIPs(npa, state.localAddresses).filter((ip) => !isLoopback(ip)),
    serviceCIDRs: serviceCIDRs.join(','),
    // Without a node IP of this family kube-proxy falls back to the loopback address.
    nodeIP: state.nodeIPs[0] ?? (family === 4 ? '127.0.0.1' : '::1'),
  };
}
