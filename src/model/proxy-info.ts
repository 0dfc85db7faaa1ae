/**
 * What every proxier knows of a service port and its endpoints: kube-proxy's ServicePortName
 * (pkg/proxy/types.go), BaseServicePortInfo (serviceport.go), BaseEndpointInfo (endpoint.go)
 * and the result of CategorizeEndpoints (topology.go). The tracker builds them and the topology
 * code categorises them; both import them from here, so neither imports the other's types.
 */
import type { Protocol, Service } from './types.js';

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
