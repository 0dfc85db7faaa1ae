/**
 * Cluster → what one kube-proxy proxier (one node, one IP family) works from: its service
 * ports (pkg/proxy/serviceport.go) and their endpoints (pkg/proxy/endpointslicecache.go),
 * categorised (pkg/proxy/topology.go).
 */
import { KpsimError } from '../errors.js';
import { featureGateEnabled, isVIPMode } from '../model/feature-gates.js';
import { nodeIPs as nodeObjectIPs } from '../model/node.js';
import type { Cluster, EndpointSlice, Node, Protocol, ProxyConfig, Service, ServicePort, Warning } from '../model/types.js';
import { ZONE_LABEL, categorizeEndpoints, sortByEndpointText, type TopologyContext } from '../topology/categorize.js';
import { type Family, familyOfValidIP, ipFamily, isLoopback, normalizeIP, parseCIDR } from '../util/ip.js';
import { mapSmallestFirst } from '../util/smallest-first.js';
import type { EndpointInfo, LocalDetector, ProxierServicePort, ProxierState, ServicePortInfo, ServicePortName } from './types.js';

/** Which node's point of view, and its addresses. */
export interface NodeSelection {
  /** --node: a Node object's name (or any name, when --node-ip gives the addresses). */
  node?: string;
  /** --node-ip, repeatable: used instead of the Node object's addresses. */
  nodeIPs?: readonly string[];
}

export interface ResolvedNode {
  name: string;
  /** All families, primary first. */
  ips: string[];
  labels: Record<string, string>;
  podCIDRs: string[];
  warnings: Warning[];
}

/** The name kpsim gives the node when the input names none. */
export const DEFAULT_NODE_NAME = 'kpsim-node';

/**
 * The node kpsim stands on: --node, else the config's hostnameOverride, else the first Node in
 * the input; its addresses from --node-ip or the Node object.
 */
export function resolveNode(cluster: Cluster, selection: NodeSelection = {}): ResolvedNode {
  const warnings: Warning[] = [];
  const wanted = selection.node ?? (cluster.config.hostnameOverride || undefined);
  let node: Node | undefined;
  if (wanted !== undefined) {
    node = cluster.nodes.find((n) => n.name === wanted);
    if (!node && (selection.nodeIPs ?? []).length === 0) {
      const known = cluster.nodes.map((n) => n.name).join(', ') || 'none';
      throw new KpsimError('KPSIM_ERR_CONFIG_UNKNOWN_NODE', `node ${JSON.stringify(wanted)} is not in the cluster (nodes: ${known}); give its addresses with --node-ip`);
    }
  } else {
    node = cluster.nodes[0];
  }
  const name = wanted ?? node?.name ?? DEFAULT_NODE_NAME;
  const ips = readNodeIPs(selection.nodeIPs, node);
  if (ips.length === 0) {
    warnings.push({ message: `node ${name} has no IP address (no Node object with addresses, no --node-ip): only loopback counts as a local address` });
  }
  return { name, ips, labels: node?.labels ?? {}, podCIDRs: node?.podCIDRs ?? [], warnings };
}

function readNodeIPs(flagIPs: readonly string[] | undefined, node: Node | undefined): string[] {
  if (flagIPs && flagIPs.length > 0) {
    return flagIPs.map((ip) => {
      const normalized = normalizeIP(ip);
      if (normalized === undefined) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `--node-ip: ${JSON.stringify(ip)} is not an IP address`);
      return normalized;
    });
  }
  return node ? nodeObjectIPs(node) : [];
}

/**
 * The families kube-proxy runs a proxier for on this node, IPv4 first. kube-proxy runs one per
 * family the host supports (cmd/kube-proxy/app/server.go, platformCheckSupported: nearly always
 * both), and each proxier writes its base rules even when no service has an address of its
 * family. kpsim cannot look at the host, so it counts a family as running when the cluster says
 * the node is dual-stack: the node has an address of it, a service a ClusterIP of it, or the
 * configuration or the node names a CIDR of it (clusterCIDR, nodePortAddresses, podCIDRs).
 */
export function familiesInUse(cluster: Cluster, node: ResolvedNode, serviceFamilies: Iterable<Family> = servicesPerFamily(cluster).keys()): Family[] {
  const families = new Set<Family>(serviceFamilies);
  for (const ip of node.ips) families.add(ipFamily(ip)!);
  const { clusterCIDRs, nodePortAddresses } = cluster.config;
  for (const text of [...clusterCIDRs, ...nodePortAddresses, ...node.podCIDRs]) {
    // nodePortAddresses may hold the word "primary", which names no family.
    const cidr = parseCIDR(text);
    if (cidr) families.add(cidr.family);
  }
  if (families.size === 0) families.add(4);
  return [...families].sort();
}

/**
 * How many services have a ClusterIP of each family (a dual-stack service counts in both); its
 * keys are the services' families (the same for every node: worked out once for many).
 */
export function servicesPerFamily(cluster: Cluster): Map<Family, number> {
  const counts = new Map<Family, number>();
  for (const svc of cluster.services) for (const ip of svc.clusterIPs) {
    const family = familyOfValidIP(ip);
    counts.set(family, (counts.get(family) ?? 0) + 1);
  }
  return counts;
}

/**
 * `fn` of each family's state, the family with the fewest service ports first (see
 * util/smallest-first.ts for why), the results in the states' order (IPv4 first).
 */
export function mapStatesSmallestFirst<R>(states: readonly ProxierState[], fn: (state: ProxierState, index: number) => R): R[] {
  return mapSmallestFirst(states, (state) => state.servicePorts.length, fn);
}

/**
 * What the proxiers of one family share on every node: the service ports and their endpoints as
 * a node without a local endpoint sees them (kube-proxy's ServicePortMap and EndpointsMap do
 * not depend on the node, except for each endpoint's isLocal and the topology the node is in).
 * A node's ProxierState is this plus what its own endpoints and zone change (proxierStateOn).
 */
export interface FamilyServicePorts {
  readonly family: Family;
  /** Sorted by spn, then protocol; categorised for a node with no local endpoint. */
  readonly servicePorts: readonly ProxierServicePort[];
  /** The positions in servicePorts of the ports with an endpoint on each node (by node name). */
  readonly portsByNode: ReadonlyMap<string, readonly number[]>;
  /** The positions of the ports whose categorisation depends on the node's zone or name (topology hints). */
  readonly topologyPorts: ReadonlyMap<number, 'zone' | 'node'>;
  readonly preferSameTrafficDistribution: boolean;
  /** Topology ports as categorised for a zone (or node) where the node has no endpoint of them. */
  readonly topologyCache: Map<string, ProxierServicePort>;
  /** The endpoints of every port, added up. */
  readonly endpointCount: number;
  /** This family's ServiceCIDRs (networking.k8s.io ServiceCIDR objects); empty when none are known. */
  readonly serviceCIDRs: readonly string[];
  /** The local detector, when it is the same for every node (not NodeCIDR). */
  localDetector?: { readonly detector: LocalDetector | undefined };
}

/** One empty list for every port without endpoints. */
const NO_ENDPOINTS: readonly EndpointInfo[] = Object.freeze([]);

/** No node's point of view: categorising for it gives what a node without local endpoints gets. */
const NO_NODE: TopologyContext = { nodeName: '', nodeLabels: {}, preferSameTrafficDistribution: false };

export function buildFamilyServicePorts(cluster: Cluster, family: Family): FamilyServicePorts {
  const preferSameTrafficDistribution = featureGateEnabled(cluster.config, 'PreferSameTrafficDistribution');
  const endpointsBySpn = collectEndpointLists(cluster.endpointSlices, family);
  const infos: ServicePortInfo[] = [];
  // Indexed loops: this function runs once per family, mostly before it is optimised, and a
  // for-of there allocates an iterator result per step.
  const services = cluster.services;
  for (let s = 0; s < services.length; s++) {
    const ofService = servicePortInfos(services[s]!, family, cluster.config);
    for (let p = 0; p < ofService.length; p++) infos.push(ofService[p]!);
  }
  // By spn, then protocol: positions sorted by keys made once (10k services, 150k comparisons).
  const keys = infos.map(servicePortSortKey);
  const order = infos.map((_, i) => i).sort((a, b) => compareText(keys[a]!, keys[b]!));
  const noNode: TopologyContext = { ...NO_NODE, preferSameTrafficDistribution };
  const servicePorts: ProxierServicePort[] = [];
  let listedTotal = 0;
  endpointsBySpn.forEach((list) => (listedTotal += list.length));
  const onNodes = new PortsOnNodes(listedTotal, cluster.nodes.length);
  const topologyPorts = new Map<number, 'zone' | 'node'>();
  let endpointCount = 0;
  for (let i = 0; i < order.length; i++) {
    const info = infos[order[i]!]!;
    const listed = endpointsBySpn.get(servicePortKey(info.svcPortName));
    const endpoints = listed === undefined ? NO_ENDPOINTS : sortedUnique(listed);
    const sp: ProxierServicePort = { info, endpoints, categorized: categorizeEndpoints(endpoints, info, noNode) };
    servicePorts.push(sp);
    endpointCount += endpoints.length;
    // Everything else the build reads of the endpoints is read now, while the sort has them in
    // cache: 150k endpoints walked again from memory cost more than the work done on them.
    onNodes.note(endpoints, i);
    const topology = topologySensitivity(sp, preferSameTrafficDistribution);
    if (topology !== undefined) topologyPorts.set(i, topology);
  }
  const portsByNode = onNodes.lists();
  const serviceCIDRs = (cluster.serviceCIDRs ?? []).filter((c) => parseCIDR(c)?.family === family);
  return { family, servicePorts, portsByNode, topologyPorts, preferSameTrafficDistribution, topologyCache: new Map(), endpointCount, serviceCIDRs };
}

/**
 * Which ports have an endpoint on each node, noted port by port in position order and then made
 * into one list per node of exactly its length. Every node's list is kept for as long as the
 * cluster is: lists grown by push would leave the garbage of their growth and a copy to their
 * length for each of 5,000 nodes, so the pairs are noted in one flat array first and counted.
 */
class PortsOnNodes {
  readonly #index = new Map<string, number>();
  readonly #names: string[] = [];
  /** Per node (by index): the last port noted, and how many ports. */
  #lastPort: Int32Array;
  #counts: Int32Array;
  /** Node index and port position, pair after pair. */
  #pairs: Int32Array;
  #length = 0;

  /** Sized for `endpoints` noted endpoints on about `nodes` nodes (then nothing grows). */
  constructor(endpoints: number, nodes: number) {
    this.#pairs = new Int32Array(2 * Math.max(endpoints, 1));
    this.#counts = new Int32Array(Math.max(nodes, 1));
    this.#lastPort = new Int32Array(Math.max(nodes, 1)).fill(-1);
  }

  note(endpoints: readonly EndpointInfo[], position: number): void {
    for (let e = 0; e < endpoints.length; e++) {
      const nodeName = endpoints[e]!.nodeName;
      if (nodeName === undefined || nodeName === '') continue;
      let k = this.#index.get(nodeName);
      if (k === undefined) k = this.#addNode(nodeName);
      if (this.#lastPort[k] === position) continue;
      this.#lastPort[k] = position;
      this.#counts[k]!++;
      if (this.#length + 2 > this.#pairs.length) this.#pairs = grown(this.#pairs, this.#pairs.length * 2);
      this.#pairs[this.#length++] = k;
      this.#pairs[this.#length++] = position;
    }
  }

  #addNode(nodeName: string): number {
    const k = this.#names.length;
    this.#names.push(nodeName);
    this.#index.set(nodeName, k);
    if (k === this.#counts.length) {
      this.#counts = grown(this.#counts, k * 2);
      const last = grown(this.#lastPort, k * 2);
      last.fill(-1, k);
      this.#lastPort = last;
    }
    return k;
  }

  /** Each node's port positions, in order; nodes in the order they were first noted. */
  lists(): Map<string, number[]> {
    const names = this.#names;
    const lists = new Array<number[]>(names.length);
    for (let k = 0; k < names.length; k++) lists[k] = new Array<number>(this.#counts[k]!);
    const filled = new Int32Array(names.length);
    const pairs = this.#pairs;
    for (let p = 0; p < this.#length; p += 2) {
      const k = pairs[p]!;
      lists[k]![filled[k]!++] = pairs[p + 1]!;
    }
    const byNode = new Map<string, number[]>();
    for (let k = 0; k < names.length; k++) byNode.set(names[k]!, lists[k]!);
    return byNode;
  }
}

function grown(array: Int32Array, length: number): Int32Array {
  const bigger = new Int32Array(length);
  bigger.set(array);
  return bigger;
}

/**
 * Whether the port's cluster endpoints can depend on where the node is: they do when every ready
 * endpoint has zone hints (PreferSameZone for a node of a hinted zone), or, with the
 * PreferSameTrafficDistribution gate, node hints (see topology/categorize.ts).
 */
function topologySensitivity(sp: ProxierServicePort, gate: boolean): 'zone' | 'node' | undefined {
  if (!sp.info.usesClusterEndpoints) return undefined;
  let hasReady = false;
  let allHaveZoneHints = true;
  let allHaveNodeHints = true;
  const endpoints = sp.endpoints;
  for (let i = 0; i < endpoints.length; i++) {
    const ep = endpoints[i]!;
    if (!ep.ready) continue;
    hasReady = true;
    if (ep.zoneHints.size === 0) allHaveZoneHints = false;
    if (ep.nodeHints.size === 0) allHaveNodeHints = false;
  }
  if (!hasReady) return undefined;
  if (gate && allHaveNodeHints) return 'node';
  return allHaveZoneHints ? 'zone' : undefined;
}

export interface NodeOverlayOptions {
  /**
   * Give the node its own view of only these ports; the others stay as a node without local
   * endpoints sees them. For compiles that write only these ports (one packet's trace).
   */
  only?: (info: ServicePortInfo) => boolean;
}

/** One node's ProxierState of the family: the shared ports with the node's own endpoints and topology applied. */
export function proxierStateOn(shared: FamilyServicePorts, cluster: Cluster, node: ResolvedNode, opts: NodeOverlayOptions = {}): ProxierState {
  const family = shared.family;
  const topology: TopologyContext = { nodeName: node.name, nodeLabels: node.labels, preferSameTrafficDistribution: shared.preferSameTrafficDistribution };
  const servicePorts = shared.servicePorts.slice();
  const local = shared.portsByNode.get(node.name) ?? [];
  for (const i of local) {
    const sp = servicePorts[i]!;
    if (opts.only && !opts.only(sp.info)) continue;
    const endpoints = sp.endpoints.map((ep) => (ep.nodeName === node.name ? { ...ep, isLocal: true } : ep));
    servicePorts[i] = { info: sp.info, endpoints, categorized: categorizeEndpoints(endpoints, sp.info, topology) };
  }
  for (const [i, by] of shared.topologyPorts) {
    const sp = servicePorts[i]!;
    if (sp !== shared.servicePorts[i] || (opts.only && !opts.only(sp.info))) continue;
    // The node has no endpoint of this port: its view depends only on its zone (or name).
    const key = `${i}\0${by === 'node' ? node.name : (node.labels[ZONE_LABEL] ?? '')}`;
    let onNode = shared.topologyCache.get(key);
    if (onNode === undefined) {
      onNode = { info: sp.info, endpoints: sp.endpoints, categorized: categorizeEndpoints(sp.endpoints, sp.info, topology) };
      shared.topologyCache.set(key, onNode);
    }
    servicePorts[i] = onNode;
  }
  const serviceCIDRs = shared.serviceCIDRs;
  return {
    ...nodeFacts(cluster.config, node, family),
    config: cluster.config,
    // With the cluster's CIDRs (not the node's own) every node has the same detector.
    localDetector: cluster.config.detectLocalMode === 'NodeCIDR' ? localDetector(cluster.config, node, family) : (shared.localDetector ??= { detector: localDetector(cluster.config, node, family) }).detector,
    servicePorts,
    endpointCount: shared.endpointCount,
    ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}),
  };
}

/** What every proxier state and node context of a family says of its node. */
function nodeFacts(config: ProxyConfig, node: ResolvedNode, family: Family): Pick<ProxierNodeContext, 'family' | 'nodeName' | 'nodeIPs' | 'localAddresses' | 'nodeLabels' | 'masqueradeMark'> {
  const nodeIPs = node.ips.filter((ip) => ipFamily(ip) === family);
  const loopback = family === 4 ? '127.0.0.1' : '::1';
  return {
    family,
    nodeName: node.name,
    nodeIPs,
    localAddresses: [...nodeIPs.filter((ip) => !isLoopback(ip)), loopback],
    nodeLabels: node.labels,
    masqueradeMark: `0x${(1 << config.masqueradeBit >>> 0).toString(16)}`,
  };
}

/**
 * What a proxier knows besides its service ports: the node, its addresses and labels, the
 * configuration and the local detector. An agent keeps this while service ports come and go.
 */
export interface ProxierNodeContext extends Omit<ProxierState, 'servicePorts' | 'endpointCount'> {
  readonly topology: TopologyContext;
}

export function proxierNodeContext(config: ProxyConfig, node: ResolvedNode, family: Family, serviceCIDRsOfCluster?: readonly string[]): ProxierNodeContext {
  const serviceCIDRs = (serviceCIDRsOfCluster ?? []).filter((c) => parseCIDR(c)?.family === family);
  return {
    ...nodeFacts(config, node, family),
    config,
    localDetector: localDetector(config, node, family),
    topology: {
      nodeName: node.name,
      nodeLabels: node.labels,
      preferSameTrafficDistribution: featureGateEnabled(config, 'PreferSameTrafficDistribution'),
    },
    ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}),
  };
}

/** One service port with its endpoints (deduplicated and sorted as kube-proxy sorts them), categorised. */
export function proxierServicePort(info: ServicePortInfo, endpoints: Iterable<EndpointInfo>, topology: TopologyContext): ProxierServicePort {
  const sorted = sortByEndpointText([...endpoints]);
  return { info, endpoints: sorted, categorized: categorizeEndpoints(sorted, info, topology) };
}

/** The order of state.servicePorts: by spn, then protocol. */
export function servicePortSortKey(info: ServicePortInfo): string {
  return `${info.spn}\0${info.protocol}`;
}

/** A ProxierState from its node context and its service ports, which must be in servicePortSortKey order. */
export function assembleProxierState(ctx: ProxierNodeContext, servicePorts: readonly ProxierServicePort[]): ProxierState {
  return {
    family: ctx.family,
    nodeName: ctx.nodeName,
    nodeIPs: ctx.nodeIPs,
    localAddresses: ctx.localAddresses,
    nodeLabels: ctx.nodeLabels,
    config: ctx.config,
    localDetector: ctx.localDetector,
    masqueradeMark: ctx.masqueradeMark,
    servicePorts,
    endpointCount: servicePorts.reduce((n, sp) => n + sp.endpoints.length, 0),
    ...(ctx.serviceCIDRs !== undefined ? { serviceCIDRs: ctx.serviceCIDRs } : {}),
  };
}

export function buildProxierState(cluster: Cluster, node: ResolvedNode, family: Family): ProxierState {
  return proxierStateOn(buildFamilyServicePorts(cluster, family), cluster, node);
}

/** One ProxierState per family in use, IPv4 first. */
export function buildProxierStates(cluster: Cluster, node: ResolvedNode): ProxierState[] {
  // Built smallest family first (util/smallest-first.ts says why), listed IPv4 first.
  const perFamily = servicesPerFamily(cluster);
  const families = familiesInUse(cluster, node, perFamily.keys());
  return mapSmallestFirst(families, (family) => perFamily.get(family) ?? 0, (family) => buildProxierState(cluster, node, family));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function servicePortNameString(n: ServicePortName): string {
  // Joined, not concatenated: a port keeps its spn, and concatenation keeps a tree of the parts.
  // The parts arrays are reused.
  if (n.port === '') {
    SPN_PARTS[0] = n.namespace;
    SPN_PARTS[1] = n.name;
    return SPN_PARTS.join('/');
  }
  NAMED_SPN_PARTS[0] = n.namespace;
  NAMED_SPN_PARTS[2] = n.name;
  NAMED_SPN_PARTS[4] = n.port;
  return NAMED_SPN_PARTS.join('');
}
const SPN_PARTS = ['', ''];
const NAMED_SPN_PARTS = ['', '/', '', ':', ''];

/** kube-proxy's ServicePortName as a map key: namespace/name, port name and protocol. */
export function servicePortKey(n: { namespace: string; name: string; port: string; protocol: Protocol }): string {
  // Joined flat from a reused parts array: a map key is hashed, and a concatenation would be a
  // tree of four strings flattened into a fifth first (for each of 23k slice and service ports).
  KEY_PARTS[0] = n.namespace;
  KEY_PARTS[2] = n.name;
  KEY_PARTS[4] = n.port;
  KEY_PARTS[6] = n.protocol;
  return KEY_PARTS.join('');
}
const KEY_PARTS = ['', '/', '', '\0', '', '\0', ''];

/** One empty list for every port without external IPs, load-balancer IPs or source ranges (most of them). */
const NO_ADDRESSES: readonly string[] = Object.freeze([]);

/** What a Service's ports share in a family's proxier: worked out once for all its ports. */
type ServiceFamilyFacts = Pick<
  ServicePortInfo,
  | 'clusterIP'
  | 'externalIPs'
  | 'loadBalancerVIPs'
  | 'loadBalancerSourceRanges'
  | 'externalPolicyLocal'
  | 'internalPolicyLocal'
  | 'sessionAffinityTimeoutSeconds'
  | 'healthCheckNodePort'
>;

/** One empty list for every service a family's proxier skips (most of them in the other family's build). */
const NO_INFOS: readonly ServicePortInfo[] = Object.freeze([]);

/** kube-proxy skips ExternalName and headless services, and those without a ClusterIP of this family. */
export function servicePortInfos(svc: Service, family: Family, config: ProxyConfig): readonly ServicePortInfo[] {
  if (svc.type === 'ExternalName' || svc.headless) return NO_INFOS;
  const clusterIP = clusterIPOf(svc.clusterIPs, family);
  if (clusterIP === undefined) return NO_INFOS;
  const ports = svc.ports;
  let count = 0;
  for (let i = 0; i < ports.length; i++) if (ports[i]!.port !== 0) count++;
  if (count === 0) return NO_INFOS;
  const infos = new Array<ServicePortInfo>(count);
  const facts = serviceFamilyFacts(svc, clusterIP, family, config);
  let at = 0;
  for (let i = 0; i < ports.length; i++) if (ports[i]!.port !== 0) infos[at++] = servicePortInfo(svc, ports[i]!, facts);
  return infos;
}

/**
 * The service's first ClusterIP of the family: a loop, not find with a closure, as each family's
 * build asks it of every service (10k on a big cluster, nine in ten of them in vain for IPv6).
 */
function clusterIPOf(clusterIPs: readonly string[], family: Family): string | undefined {
  for (let i = 0; i < clusterIPs.length; i++) if (familyOfValidIP(clusterIPs[i]!) === family) return clusterIPs[i]!;
  return undefined;
}

function serviceFamilyFacts(svc: Service, clusterIP: string, family: Family, config: ProxyConfig): ServiceFamilyFacts {
  const externalIPs = svc.externalIPs.length === 0 ? NO_ADDRESSES : orNone(svc.externalIPs.filter((ip) => familyOfValidIP(ip) === family));
  // An ipMode Proxy ingress is the load balancer's business, unless the LoadBalancerIPMode gate is off.
  const loadBalancerVIPs = svc.loadBalancerIngress.length === 0 ? NO_ADDRESSES : orNone(svc.loadBalancerIngress
    .filter((ing) => ing.ip !== undefined && isVIPMode(ing, config) && familyOfValidIP(ing.ip) === family)
    .map((ing) => ing.ip!));
  const loadBalancerSourceRanges = svc.loadBalancerSourceRanges.length === 0 ? NO_ADDRESSES
    : orNone(svc.loadBalancerSourceRanges.map((c) => parseCIDR(c)).filter((c) => c?.family === family).map((c) => c!.text));
  return {
    clusterIP,
    externalIPs,
    loadBalancerVIPs,
    loadBalancerSourceRanges,
    externalPolicyLocal: svc.externalTrafficPolicy === 'Local' && (svc.type === 'LoadBalancer' || svc.type === 'NodePort' || svc.externalIPs.length > 0),
    internalPolicyLocal: svc.internalTrafficPolicy === 'Local',
    sessionAffinityTimeoutSeconds: svc.sessionAffinity === 'ClientIP' ? svc.sessionAffinityTimeoutSeconds : 0,
    healthCheckNodePort: svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' ? svc.healthCheckNodePort : 0,
  };
}

function orNone(list: readonly string[]): readonly string[] {
  return list.length === 0 ? NO_ADDRESSES : list;
}

function servicePortInfo(svc: Service, port: ServicePort, facts: ServiceFamilyFacts): ServicePortInfo {
  const svcPortName: ServicePortName = { namespace: svc.namespace, name: svc.name, port: port.name, protocol: port.protocol };
  const { externalIPs, loadBalancerVIPs, externalPolicyLocal, internalPolicyLocal } = facts;
  const externallyAccessible = port.nodePort !== 0 || loadBalancerVIPs.length > 0 || externalIPs.length > 0;
  return {
    svcPortName,
    spn: servicePortNameString(svcPortName),
    protocol: port.protocol,
    clusterIP: facts.clusterIP,
    port: port.port,
    nodePort: port.nodePort,
    externalIPs,
    loadBalancerVIPs,
    loadBalancerSourceRanges: facts.loadBalancerSourceRanges,
    externalPolicyLocal,
    internalPolicyLocal,
    sessionAffinityTimeoutSeconds: facts.sessionAffinityTimeoutSeconds,
    healthCheckNodePort: facts.healthCheckNodePort,
    externallyAccessible,
    usesClusterEndpoints: !internalPolicyLocal || externallyAccessible,
    usesLocalEndpoints: internalPolicyLocal || (externalPolicyLocal && externallyAccessible),
    service: svc,
  };
}

/** Endpoints per service port (servicePortKey), deduplicated by "ip:port" (a non-terminating entry wins). */
export function collectEndpoints(slices: readonly EndpointSlice[], family: Family, nodeName: string): Map<string, Map<string, EndpointInfo>> {
  const bySpn = new Map<string, Map<string, EndpointInfo>>();
  const hints: HintSets = new Map();
  forEachSlicePort(slices, family, (key, endpoints, port) => {
    let set = bySpn.get(key);
    if (set === undefined) bySpn.set(key, (set = new Map<string, EndpointInfo>()));
    const portSuffix = `:${port}`;
    for (const ep of endpoints) {
      const info = endpointInfo(ep, port, portSuffix, nodeName, hints);
      if (!set.has(info.endpoint) || !info.terminating) set.set(info.endpoint, info);
    }
  });
  return bySpn;
}

/**
 * Every family endpoint of each service port (servicePortKey), in slice order, duplicates
 * included: collectEndpoints without its map per port, for the cluster-wide build, which sorts
 * each port's list once and then drops the duplicates (sortedUnique). Each list holds exactly its
 * endpoints (most ports have one slice, whose endpoints are mapped at once): the list is what a
 * port keeps when it has no duplicates.
 */
function collectEndpointLists(slices: readonly EndpointSlice[], family: Family): Map<string, EndpointInfo[]> {
  const bySpn = new Map<string, EndpointInfo[]>();
  const hints: HintSets = new Map();
  forEachSlicePort(slices, family, (key, endpoints, port) => {
    // map: a list of exactly the slice's endpoints, packed (a list made by length has holes, for V8).
    const portSuffix = `:${port}`;
    const list = endpoints.map((ep) => endpointInfo(ep, port, portSuffix, '', hints));
    const before = bySpn.get(key);
    bySpn.set(key, before === undefined ? list : before.concat(list));
  });
  return bySpn;
}

/** Each port kube-proxy uses of the family's slices, with its servicePortKey and the slice's endpoints. */
function forEachSlicePort(slices: readonly EndpointSlice[], family: Family, visit: (key: string, endpoints: EndpointSlice['endpoints'], port: number) => void): void {
  const addressType = family === 4 ? 'IPv4' : 'IPv6';
  for (let s = 0; s < slices.length; s++) {
    const slice = slices[s]!;
    if (slice.serviceName === '' || slice.addressType !== addressType) continue;
    for (let p = 0; p < slice.ports.length; p++) {
      const port = slice.ports[p]!;
      if (port.port === undefined || port.port === 0) continue;
      const key = servicePortKey({ namespace: slice.namespace, name: slice.serviceName, port: port.name, protocol: port.protocol });
      visit(key, slice.endpoints, port.port);
    }
  }
}

/**
 * The endpoints sorted by text, one per "ip:port", as collectEndpoints keeps them: of those with
 * one text (in slice order, which the stable sort keeps), the last that is not terminating, else
 * the first. `listed` itself, sorted in place, when it has no duplicates; else a new list of
 * exactly the endpoints kept.
 */
function sortedUnique(listed: EndpointInfo[]): EndpointInfo[] {
  if (listed.length < 2) return listed;
  sortByEndpointText(listed);
  let unique = 1;
  for (let i = 1; i < listed.length; i++) if (listed[i]!.endpoint !== listed[i - 1]!.endpoint) unique++;
  if (unique === listed.length) return listed;
  const out: EndpointInfo[] = [];
  for (let i = 0; i < listed.length; ) {
    const text = listed[i]!.endpoint;
    let kept = listed[i]!;
    let j = i + 1;
    for (; j < listed.length && listed[j]!.endpoint === text; j++) if (!listed[j]!.terminating) kept = listed[j]!;
    out.push(kept);
    i = j;
  }
  return out.slice();
}

/**
 * "ip:port", or "[ip]:port" for IPv6 (util/ip.ts joinHostPort), joined into one flat string from
 * the ":port" made once for the slice port.
 */
function endpointText(ip: string, portSuffix: string): string {
  // Every endpoint keeps its text: concatenation would keep a tree of two or three strings (and
  // the flat copy the first comparison of the sort makes), a join keeps one string. The parts
  // arrays are reused (a join allocates half as much then, for each of 150k endpoints).
  if (ip.includes(':')) {
    IPV6_TEXT_PARTS[1] = ip;
    IPV6_TEXT_PARTS[3] = portSuffix;
    return IPV6_TEXT_PARTS.join('');
  }
  IPV4_TEXT_PARTS[0] = ip;
  IPV4_TEXT_PARTS[1] = portSuffix;
  return IPV4_TEXT_PARTS.join('');
}
const IPV4_TEXT_PARTS = ['', ''];
const IPV6_TEXT_PARTS = ['[', '', ']', ''];

function endpointInfo(ep: EndpointSlice['endpoints'][number], port: number, portSuffix: string, nodeName: string, hints: HintSets): EndpointInfo {
  const ip = ep.addresses[0]!;
  const endpoint = endpointText(ip, portSuffix);
  const isLocal = nodeName !== '' && ep.nodeName === nodeName;
  const ready = ep.conditions.ready ?? true;
  const serving = ep.conditions.serving ?? true;
  const terminating = ep.conditions.terminating ?? false;
  const zoneHints = hintSet(ep.hints?.forZones, hints);
  const nodeHints = hintSet(ep.hints?.forNodes, hints);
  if (ep.nodeName !== undefined && ep.zone !== undefined && ep.targetRef !== undefined) {
    // What a cluster's endpoints nearly always have: one literal with every field keeps them all
    // in the object (fields added afterwards go to a second, out-of-object array).
    return { ip, port, endpoint, isLocal, ready, serving, terminating, zoneHints, nodeHints, nodeName: ep.nodeName, zone: ep.zone, podName: ep.targetRef.name };
  }
  const info: { -readonly [K in keyof EndpointInfo]: EndpointInfo[K] } = { ip, port, endpoint, isLocal, ready, serving, terminating, zoneHints, nodeHints };
  // Set afterwards, not spread in: a literal with spreads is built field by field at run time.
  if (ep.nodeName !== undefined) info.nodeName = ep.nodeName;
  if (ep.zone !== undefined) info.zone = ep.zone;
  if (ep.targetRef !== undefined) info.podName = ep.targetRef.name;
  return info;
}

/** One empty set for every endpoint without hints (most of them): a large cluster has 100k endpoints. */
const NO_HINTS: ReadonlySet<string> = new Set();

/** Hint sets by their names (joined by NUL): the endpoints with the same hints (a zone's) share one set. */
type HintSets = Map<string, ReadonlySet<string>>;

function hintSet(names: readonly string[] | undefined, sets: HintSets): ReadonlySet<string> {
  if (names === undefined || names.length === 0) return NO_HINTS;
  const key = names.length === 1 ? names[0]! : names.join('\0');
  let set = sets.get(key);
  if (set === undefined) sets.set(key, (set = new Set(names)));
  return set;
}

function localDetector(config: ProxyConfig, node: Pick<ResolvedNode, 'podCIDRs'>, family: Family): LocalDetector | undefined {
  const mode = config.detectLocalMode;
  const source = mode === 'NodeCIDR' ? node.podCIDRs : mode === 'ClusterCIDR' || mode === '' ? config.clusterCIDRs : [];
  const cidrs = source.filter((c) => parseCIDR(c)?.family === family);
  if (cidrs.length === 0) return undefined;
  return { mode: mode === 'NodeCIDR' ? 'NodeCIDR' : 'ClusterCIDR', cidrs };
}
