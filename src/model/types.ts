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
export type ProxyMode = 'iptables' | 'ipvs' | 'nftables' | 'userspace';

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
  /** 'Proxy' ingresses are ignored by kube-proxy (the load balancer proxies itself), unless the LoadBalancerIPMode gate is off (feature-gates.ts). */
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
  /**
   * spec.selector; undefined when the Service has none (an empty one is stored as none: the API
   * server keeps objects as protobuf, where an empty map and no map are the same). Only a
   * Service with a selector gets EndpointSlices from the EndpointSlice controller.
   */
  selector?: Record<string, string>;
  /** spec.publishNotReadyAddresses: the controller marks every endpoint ready. */
  publishNotReadyAddresses?: boolean;
  /** metadata.annotations (service.kubernetes.io/topology-mode turns on topology-aware hints). */
  annotations?: Record<string, string>;
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

export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';

export interface Taint {
  key: string;
  value: string;
  effect: TaintEffect;
}

export interface Node {
  readonly kind: 'Node';
  readonly origin: Origin;
  name: string;
  labels: Record<string, string>;
  addresses: NodeAddress[];
  podCIDRs: string[];
  /** spec.taints (the scheduler and the DaemonSet controller read them). */
  taints?: Taint[];
  /** spec.unschedulable (kubectl cordon). */
  unschedulable?: boolean;
  /** status.conditions Ready; undefined when the manifest has no Ready condition. */
  ready?: boolean;
  /** status.allocatable.cpu in millicores; undefined when not given (topology-aware hints need it). */
  allocatableCPUMillis?: number;
  /** status.allocatable.pods; undefined when not given (the kubelet's default is 110). */
  allocatablePods?: number;
  /** Made by --allocate (the input had no Node objects), not read from the input. */
  generated?: boolean;
}

/** metav1.LabelSelector: every matchLabels pair and every requirement must hold. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}

export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
}

/** v1.NodeSelectorRequirement (node affinity): on labels, or on the node's name (matchFields). */
export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values: string[];
}

/** One term of requiredDuringSchedulingIgnoredDuringExecution: every requirement must hold. */
export interface NodeSelectorTerm {
  matchExpressions: NodeSelectorRequirement[];
  matchFields: NodeSelectorRequirement[];
}

export interface Toleration {
  /** "" with operator Exists tolerates every taint. */
  key: string;
  operator: 'Equal' | 'Exists';
  value: string;
  /** "" tolerates every effect. */
  effect: TaintEffect | '';
}

export interface ContainerPort {
  /** "" when unnamed. */
  name: string;
  containerPort: number;
  protocol: Protocol;
}

/** The parts of a PodSpec the scheduler, the kubelet and the EndpointSlice controller read. */
export interface PodSpec {
  /** "" when not scheduled. */
  nodeName: string;
  hostname: string;
  subdomain: string;
  hostNetwork: boolean;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  /** affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms (any one must hold); undefined when not set. */
  requiredNodeAffinity?: NodeSelectorTerm[];
  /**
   * Ports by container, in the order FindPort searches them: the containers, then the sidecars
   * (init containers with restartPolicy Always).
   */
  ports: ContainerPort[];
  /** Scheduling fields kpsim reads but does not model ("affinity.podAntiAffinity", ...), to say so. */
  unmodelled: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  controller: boolean;
  /** The owner's metadata.uid, when given (a live cluster's garbage collector follows it). */
  uid?: string;
}

export interface Pod {
  readonly kind: 'Pod';
  readonly origin: Origin;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  ownerReferences: OwnerReference[];
  spec: PodSpec;
  /** status.podIPs (status.podIP is authoritative for the first, as the API server converts them). */
  podIPs: string[];
  /** status.phase; "" when not set. */
  phase: string;
  /** status.conditions Ready is True. */
  ready: boolean;
  /** metadata.deletionTimestamp is set: the pod is terminating. */
  terminating: boolean;
  /** Made or completed by --allocate (scheduled, given addresses), rather than read as stored. */
  generated?: boolean;
  /** metadata.uid, when stored. */
  uid?: string;
  /** metadata.creationTimestamp (RFC 3339), when stored: the ReplicaSet controller deletes the newest first. */
  creationTimestamp?: string;
  /** When the Ready condition last became True (its lastTransitionTime), when stored and Ready. */
  readySince?: string;
  /** The most restarts of any of its containers (status.containerStatuses restartCount). */
  restarts?: number;
}

export type WorkloadKind = 'Deployment' | 'ReplicaSet' | 'StatefulSet' | 'DaemonSet';

export interface PodTemplate {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpec;
  /**
   * A stable hash of spec.template as written, in the form of the controllers' hashes
   * ("5d8f7c9b6"): the ReplicaSet's pod-template-hash, the controller-revision-hash.
   */
  hash: string;
  /**
   * The same hash of the template without its pod-template-hash label: a Deployment's and the
   * ReplicaSet made from it agree on it (the Deployment controller's EqualIgnoreHash).
   */
  baseHash?: string;
}

/** An apps/v1 Deployment, ReplicaSet, StatefulSet or DaemonSet. */
export interface Workload {
  readonly kind: WorkloadKind;
  readonly origin: Origin;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ownerReferences: OwnerReference[];
  /** spec.replicas (1 when not set); unused for a DaemonSet. */
  replicas: number;
  selector: LabelSelector;
  template: PodTemplate;
  /** StatefulSet: spec.serviceName ("" when not set), the pods' subdomain. */
  serviceName: string;
  /** StatefulSet: spec.podManagementPolicy. */
  podManagementPolicy: 'OrderedReady' | 'Parallel';
  /** StatefulSet: spec.ordinals.start. */
  ordinalsStart: number;
  /** Made by --allocate (a Deployment's ReplicaSet), not read from the input. */
  generated?: boolean;
  /** metadata.uid, when stored. */
  uid?: string;
  /** metadata.creationTimestamp (RFC 3339), when stored. */
  creationTimestamp?: string;
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
  /**
   * iptables.syncPeriod/minSyncPeriod, ipvs.*, nftables.* in seconds, kube-proxy's defaults
   * applied (30 s and 1 s; IPVS's minSyncPeriod defaults to 0). In v1alpha1 each mode reads its
   * own section (pkg/proxy/apis/config/v1alpha1/conversion.go); userspace reads iptables'.
   */
  syncPeriods: Record<'iptables' | 'ipvs' | 'nftables', SyncPeriods>;
}

export interface SyncPeriods {
  syncPeriodSeconds: number;
  minSyncPeriodSeconds: number;
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
  /** As given, plus those the EndpointSlice controller derives for Services with a selector. */
  endpointSlices: EndpointSlice[];
  nodes: Node[];
  config: ProxyConfig;
  /** The ServiceCIDR objects' ranges (any family); kube-proxy's nftables mode drops unallocated addresses in them. */
  serviceCIDRs?: string[];
  warnings: Warning[];
  /** The Pods: as given, plus those --allocate's controllers made. */
  pods?: Pod[];
  /** Deployments, ReplicaSets, StatefulSets and DaemonSets: as given, plus the ReplicaSets --allocate made. */
  workloads?: Workload[];
}
