/**
 * The cluster model: the Kubernetes objects kube-proxy reads, decoded and validated, plus the
 * KubeProxyConfiguration subset kpsim honours. Field names follow the Kubernetes API; values are
 * normalised (addresses in canonical text, defaults of the API server's defaulting applied only
 * where the API server always applies them, see manifest/decode.ts).
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type IPFamilyName = 'IPv4' | 'IPv6';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export type TrafficPolicy = 'Cluster' | 'Local';
export type ProxyMode = 'iptables' | 'ipvs' | 'userspace';

/** Where an object came from, for error messages: "svc.yaml", "Service default/web". */
export interface Origin {
  readonly file: string;
  readonly object: string;
}

export interface ServicePort {
  /** "" when the port is unnamed (allowed only for single-port services). */
  name: string;
  protocol: Protocol;
  port: number;
  targetPort: number | string | undefined;
  /** 0 when no node port is set: kube-proxy then writes no NodePort rules for it. */
  nodePort: number;
  appProtocol?: string;
}

export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  /** 'Proxy' ingresses are ignored by kube-proxy (the load balancer proxies itself). */
  ipMode?: 'VIP' | 'Proxy';
}

export interface Service {
  readonly kind: 'Service';
  readonly origin: Origin;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  type: ServiceType;
  /** Normalised ClusterIPs, primary first; empty when headless ("None") or not set. */
  clusterIPs: string[];
  /** spec.clusterIP was "None". */
  headless: boolean;
  ipFamilies: IPFamilyName[];
  ports: ServicePort[];
  externalIPs: string[];
  externalName?: string;
  loadBalancerIngress: LoadBalancerIngress[];
  /** As written (trimmed), any family; filtered per family by the proxier view. */
  loadBalancerSourceRanges: string[];
  externalTrafficPolicy: TrafficPolicy;
  internalTrafficPolicy: TrafficPolicy;
  sessionAffinity: 'None' | 'ClientIP';
  /** sessionAffinityConfig.clientIP.timeoutSeconds; 10800 when ClientIP and not set; 0 when None. */
  sessionAffinityTimeoutSeconds: number;
  /** spec.healthCheckNodePort, 0 when not set. */
  healthCheckNodePort: number;
  trafficDistribution?: string;
}

export interface EndpointConditions {
  /** undefined means nil, which kube-proxy reads as true (ready, serving) or false (terminating). */
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export interface EndpointHints {
  forZones: string[];
  forNodes: string[];
}

export interface Endpoint {
  /** Normalised; kube-proxy uses only addresses[0]. */
  addresses: string[];
  conditions: EndpointConditions;
  nodeName?: string;
  zone?: string;
  hostname?: string;
  hints?: EndpointHints;
  /** targetRef "Kind namespace/name", e.g. the pod behind the endpoint. */
  targetRef?: { kind: string; namespace?: string; name: string };
}

export interface EndpointPort {
  /** "" when unnamed. */
  name: string;
  protocol: Protocol;
  /** undefined when the slice port has no port number (kube-proxy ignores it). */
  port: number | undefined;
  appProtocol?: string;
}

export interface EndpointSlice {
  readonly kind: 'EndpointSlice';
  readonly origin: Origin;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** The kubernetes.io/service-name label; "" when missing (kube-proxy ignores the slice). */
  serviceName: string;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: Endpoint[];
  ports: EndpointPort[];
}

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname' | 'InternalDNS' | 'ExternalDNS' | string;
  address: string;
}

export interface Node {
  readonly kind: 'Node';
  readonly origin: Origin;
  name: string;
  labels: Record<string, string>;
  addresses: NodeAddress[];
  podCIDRs: string[];
}

/** The KubeProxyConfiguration subset kpsim honours, defaults applied. */
export interface ProxyConfig {
  readonly origin?: Origin;
  mode: ProxyMode;
  /** clusterCIDR split on commas; [] when not set. */
  clusterCIDRs: string[];
  /** 'ClusterCIDR' (default), 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'. */
  detectLocalMode: string;
  masqueradeAll: boolean;
  /** 14 by default: the mark is 1 << masqueradeBit = 0x4000. */
  masqueradeBit: number;
  localhostNodePorts: boolean;
  tcpBeLiberal: boolean;
  /** ipvs.scheduler; '' means kube-proxy's default, rr. */
  ipvsScheduler: string;
  ipvsStrictARP: boolean;
  /** ipvs.tcpTimeout etc. in seconds; 0 = leave the kernel default. */
  ipvsTCPTimeoutSeconds: number;
  ipvsTCPFinTimeoutSeconds: number;
  ipvsUDPTimeoutSeconds: number;
  /** udpIdleTimeout (userspace mode): how long an idle UDP association stays open; 0.25 s by default. */
  udpIdleTimeoutSeconds: number;
  /** CIDRs, or the word 'primary'; [] means all local addresses. */
  nodePortAddresses: string[];
  hostnameOverride: string;
  featureGates: Record<string, boolean>;
}

/** A problem that is not fatal: kpsim goes on, and says what the consequence is. */
export interface Warning {
  readonly file?: string;
  readonly object?: string;
  readonly path?: string;
  readonly message: string;
}

export interface Cluster {
  services: Service[];
  endpointSlices: EndpointSlice[];
  nodes: Node[];
  config: ProxyConfig;
  warnings: Warning[];
}
