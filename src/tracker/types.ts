/**
 * What one proxier (one IP family, one node) sees of the cluster: kube-proxy's ServicePortMap and
 * EndpointsMap, with endpoints already categorised (pkg/proxy/topology.go). Every proxy mode
 * compiles from a ProxierState, so the modes agree on which endpoints a packet may reach.
 */
import type { Family } from '../util/ip.js';
import type { Protocol, ProxyConfig, Service } from '../model/types.js';

/** kube-proxy's ServicePortName: namespace/name plus the port's name and protocol. */
export interface ServicePortName {
  readonly namespace: string;
  readonly name: string;
  /** The service port's name, "" when unnamed. */
  readonly port: string;
  readonly protocol: Protocol;
}

/** kube-proxy's BaseServicePortInfo for one family, with its derived predicates precomputed. */
export interface ServicePortInfo {
  readonly svcPortName: ServicePortName;
  /** ServicePortName.String(): "ns/name:port", or "ns/name" when the port is unnamed. */
  readonly spn: string;
  readonly protocol: Protocol;
  readonly clusterIP: string;
  readonly port: number;
  /** 0 when none. */
  readonly nodePort: number;
  /** Of this family only. */
  readonly externalIPs: readonly string[];
  /**
   * status.loadBalancer.ingress[].ip of this family that kube-proxy programs: VIP mode only
   * (model/feature-gates.ts isVIPMode: every ingress IP when the LoadBalancerIPMode gate is off).
   * Every proxy mode takes its load-balancer IPs from here.
   */
  readonly loadBalancerVIPs: readonly string[];
  /** Of this family only, normalised "network/prefix". */
  readonly loadBalancerSourceRanges: readonly string[];
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  /** 0 when sessionAffinity is None. */
  readonly sessionAffinityTimeoutSeconds: number;
  /** 0 when none; set only for type LoadBalancer with externalTrafficPolicy Local. */
  readonly healthCheckNodePort: number;
  /** nodePort != 0, or any LB VIP, or any external IP. */
  readonly externallyAccessible: boolean;
  /** !internalPolicyLocal || externallyAccessible. */
  readonly usesClusterEndpoints: boolean;
  /** internalPolicyLocal || (externalPolicyLocal && externallyAccessible). */
  readonly usesLocalEndpoints: boolean;
  /** The Service this port belongs to. */
  readonly service: Service;
}

/** kube-proxy's BaseEndpointInfo. */
export interface EndpointInfo {
  readonly ip: string;
  readonly port: number;
  /** "ip:port" or "[ip]:port": the text kube-proxy hashes, sorts and prints. */
  readonly endpoint: string;
  /** nodeName equals the proxier's node name. */
  readonly isLocal: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly zoneHints: ReadonlySet<string>;
  readonly nodeHints: ReadonlySet<string>;
  readonly nodeName?: string;
  readonly zone?: string;
  /** The pod name from targetRef, when known (for the userspace proxy's backend pods). */
  readonly podName?: string;
}

/** The result of kube-proxy's CategorizeEndpoints. */
export interface CategorizedEndpoints {
  /** Endpoints for Cluster traffic policy; undefined when the port never uses them. */
  readonly clusterEndpoints: readonly EndpointInfo[] | undefined;
  /** Endpoints for Local traffic policy; undefined when the port never uses them. */
  readonly localEndpoints: readonly EndpointInfo[] | undefined;
  /** Union of the two, sorted by endpoint text. */
  readonly allReachableEndpoints: readonly EndpointInfo[];
  /** Some usable endpoint exists anywhere in the cluster (even if none is reachable here). */
  readonly hasAnyEndpoints: boolean;
}

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
}
