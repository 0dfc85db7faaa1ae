/**
 * What one proxier (one IP family, one node) sees of the cluster: kube-proxy's ServicePortMap and
 * EndpointsMap, with endpoints already categorised (pkg/proxy/topology.go). Every proxy mode
 * compiles from a ProxierState, so the modes agree on which endpoints a packet may reach.
 */
import type { Family } from '../util/ip.js';
import type { CategorizedEndpoints, EndpointInfo, ServicePortInfo } from '../model/proxy-info.js';
import type { ProxyConfig } from '../model/types.js';

// Users of a ProxierState read these too; they live in the model (the topology code shares them).
export type { CategorizedEndpoints, EndpointInfo, ServicePortInfo, ServicePortName } from '../model/proxy-info.js';

export interface ProxierServicePort {
  readonly info: ServicePortInfo;
  /** Every endpoint of the port (deduplicated, sorted by endpoint text as kube-proxy sorts). */
  readonly endpoints: readonly EndpointInfo[];
  readonly categorized: CategorizedEndpoints;
}

/** How kube-proxy tells pod traffic from other traffic ("detect-local"). */
export interface LocalDetector {
  readonly mode: 'ClusterCIDR' | 'NodeCIDR';
  /** The CIDRs of this family; traffic from them is local (pod) traffic. */
  readonly cidrs: readonly string[];
}

export interface ProxierState {
  readonly family: Family;
  readonly nodeName: string;
  /** This family's node IPs, primary first. */
  readonly nodeIPs: readonly string[];
  /** What `addrtype --dst-type LOCAL` matches on this node: nodeIPs plus 127.0.0.1 or ::1. */
  readonly localAddresses: readonly string[];
  readonly nodeLabels: Readonly<Record<string, string>>;
  readonly config: ProxyConfig;
  /** undefined when there is no local detector for this family (no clusterCIDR given). */
  readonly localDetector: LocalDetector | undefined;
  /** 1 << masqueradeBit, as "0x4000". */
  readonly masqueradeMark: string;
  /** Sorted by spn, then protocol. */
  readonly servicePorts: readonly ProxierServicePort[];
  /**
   * The endpoints of every service port, added up (the same on every node): what kube-proxy's
   * iptables proxier compares with its large-cluster threshold.
   */
  readonly endpointCount: number;
  /** This family's ServiceCIDRs (networking.k8s.io ServiceCIDR objects); absent when none are known. */
  readonly serviceCIDRs?: readonly string[];
}
