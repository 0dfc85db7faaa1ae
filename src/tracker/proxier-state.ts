/**
 * Cluster → what one kube-proxy proxier (one node, one IP family) works from: its service
 * ports (pkg/proxy/serviceport.go) and their endpoints (pkg/proxy/endpointslicecache.go),
 * categorised (pkg/proxy/topology.go).
 */
import { KpsimError } from '../errors.js';
import { featureGateEnabled, isVIPMode } from '../model/feature-gates.js';
import { nodeIPs as nodeObjectIPs } from '../model/node.js';
import type { Cluster, EndpointSlice, Node, Protocol, ProxyConfig, Service, ServicePort, Warning } from '../model/types.js';
import { byEndpointText, categorizeEndpoints, type TopologyContext } from '../topology/categorize.js';
import { type Family, ipFamily, isLoopback, joinHostPort, normalizeIP, parseCIDR } from '../util/ip.js';
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
export function familiesInUse(cluster: Cluster, node: ResolvedNode): Family[] {
  const families = new Set<Family>();
  for (const ip of node.ips) families.add(ipFamily(ip)!);
  for (const svc of cluster.services) for (const ip of svc.clusterIPs) families.add(ipFamily(ip)!);
  const { clusterCIDRs, nodePortAddresses } = cluster.config;
  for (const text of [...clusterCIDRs, ...nodePortAddresses, ...node.podCIDRs]) {
    // nodePortAddresses may hold the word "primary", which names no family.
    const cidr = parseCIDR(text);
    if (cidr) families.add(cidr.family);
  }
  if (families.size === 0) families.add(4);
  return [...families].sort();
}

export function buildProxierState(cluster: Cluster, node: ResolvedNode, family: Family): ProxierState {
  const nodeIPs = node.ips.filter((ip) => ipFamily(ip) === family);
  const loopback = family === 4 ? '127.0.0.1' : '::1';
  const topology: TopologyContext = {
    nodeName: node.name,
    nodeLabels: node.labels,
    preferSameTrafficDistribution: featureGateEnabled(cluster.config, 'PreferSameTrafficDistribution'),
  };
  const endpointsBySpn = collectEndpoints(cluster.endpointSlices, family, node.name);
  const servicePorts: ProxierServicePort[] = [];
  for (const svc of cluster.services) {
    for (const info of servicePortInfos(svc, family, cluster.config)) {
      const endpoints = [...(endpointsBySpn.get(endpointsKey(info.svcPortName))?.values() ?? [])].sort(byEndpointText);
      servicePorts.push({ info, endpoints, categorized: categorizeEndpoints(endpoints, info, topology) });
    }
  }
  servicePorts.sort((a, b) => compareText(a.info.spn + '\0' + a.info.protocol, b.info.spn + '\0' + b.info.protocol));
  const serviceCIDRs = (cluster.serviceCIDRs ?? []).filter((c) => parseCIDR(c)?.family === family);
  return {
    family,
    nodeName: node.name,
    nodeIPs,
    localAddresses: [...nodeIPs.filter((ip) => !isLoopback(ip)), loopback],
    nodeLabels: node.labels,
    config: cluster.config,
    localDetector: localDetector(cluster, node, family),
    masqueradeMark: `0x${(1 << cluster.config.masqueradeBit >>> 0).toString(16)}`,
    servicePorts,
    ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}),
  };
}

/** One ProxierState per family in use, IPv4 first. */
export function buildProxierStates(cluster: Cluster, node: ResolvedNode): ProxierState[] {
  return familiesInUse(cluster, node).map((family) => buildProxierState(cluster, node, family));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function servicePortNameString(n: ServicePortName): string {
  return n.port === '' ? `${n.namespace}/${n.name}` : `${n.namespace}/${n.name}:${n.port}`;
}

function endpointsKey(n: { namespace: string; name: string; port: string; protocol: Protocol }): string {
  return `${n.namespace}/${n.name}\0${n.port}\0${n.protocol}`;
}

/** kube-proxy skips ExternalName and headless services, and those without a ClusterIP of this family. */
function servicePortInfos(svc: Service, family: Family, config: ProxyConfig): ServicePortInfo[] {
  if (svc.type === 'ExternalName' || svc.headless) return [];
  const clusterIP = svc.clusterIPs.find((ip) => ipFamily(ip) === family);
  if (clusterIP === undefined) return [];
  return svc.ports.filter((p) => p.port !== 0).map((p) => servicePortInfo(svc, p, clusterIP, family, config));
}

function servicePortInfo(svc: Service, port: ServicePort, clusterIP: string, family: Family, config: ProxyConfig): ServicePortInfo {
  const svcPortName: ServicePortName = { namespace: svc.namespace, name: svc.name, port: port.name, protocol: port.protocol };
  const externalIPs = svc.externalIPs.filter((ip) => ipFamily(ip) === family);
  // An ipMode Proxy ingress is the load balancer's business, unless the LoadBalancerIPMode gate is off.
  const loadBalancerVIPs = svc.loadBalancerIngress
    .filter((ing) => ing.ip !== undefined && isVIPMode(ing, config) && ipFamily(ing.ip) === family)
    .map((ing) => ing.ip!);
  const loadBalancerSourceRanges = svc.loadBalancerSourceRanges.map((c) => parseCIDR(c)).filter((c) => c?.family === family).map((c) => c!.text);
  const externallyAccessible = port.nodePort !== 0 || loadBalancerVIPs.length > 0 || externalIPs.length > 0;
  const externalPolicyLocal =
    svc.externalTrafficPolicy === 'Local' && (svc.type === 'LoadBalancer' || svc.type === 'NodePort' || svc.externalIPs.length > 0);
  const internalPolicyLocal = svc.internalTrafficPolicy === 'Local';
  return {
    svcPortName,
    spn: servicePortNameString(svcPortName),
    protocol: port.protocol,
    clusterIP,
    port: port.port,
    nodePort: port.nodePort,
    externalIPs,
    loadBalancerVIPs,
    loadBalancerSourceRanges,
    externalPolicyLocal,
    internalPolicyLocal,
    sessionAffinityTimeoutSeconds: svc.sessionAffinity === 'ClientIP' ? svc.sessionAffinityTimeoutSeconds : 0,
    healthCheckNodePort: svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' ? svc.healthCheckNodePort : 0,
    externallyAccessible,
    usesClusterEndpoints: !internalPolicyLocal || externallyAccessible,
    usesLocalEndpoints: internalPolicyLocal || (externalPolicyLocal && externallyAccessible),
    service: svc,
  };
}

/** Endpoints per service port, deduplicated by "ip:port" (a non-terminating entry wins). */
function collectEndpoints(slices: readonly EndpointSlice[], family: Family, nodeName: string): Map<string, Map<string, EndpointInfo>> {
  const bySpn = new Map<string, Map<string, EndpointInfo>>();
  const addressType = family === 4 ? 'IPv4' : 'IPv6';
  for (const slice of slices) {
    if (slice.serviceName === '' || slice.addressType !== addressType) continue;
    for (const port of slice.ports) {
      if (port.port === undefined || port.port === 0) continue;
      const key = endpointsKey({ namespace: slice.namespace, name: slice.serviceName, port: port.name, protocol: port.protocol });
      const set = bySpn.get(key) ?? new Map<string, EndpointInfo>();
      bySpn.set(key, set);
      for (const ep of slice.endpoints) {
        const info = endpointInfo(ep, port.port, nodeName);
        if (!set.has(info.endpoint) || !info.terminating) set.set(info.endpoint, info);
      }
    }
  }
  return bySpn;
}

function endpointInfo(ep: EndpointSlice['endpoints'][number], port: number, nodeName: string): EndpointInfo {
  const ip = ep.addresses[0]!;
  return {
    ip,
    port,
    endpoint: joinHostPort(ip, port),
    isLocal: nodeName !== '' && ep.nodeName === nodeName,
    ready: ep.conditions.ready ?? true,
    serving: ep.conditions.serving ?? true,
    terminating: ep.conditions.terminating ?? false,
    zoneHints: new Set(ep.hints?.forZones ?? []),
    nodeHints: new Set(ep.hints?.forNodes ?? []),
    ...(ep.nodeName !== undefined ? { nodeName: ep.nodeName } : {}),
    ...(ep.zone !== undefined ? { zone: ep.zone } : {}),
    ...(ep.targetRef !== undefined ? { podName: ep.targetRef.name } : {}),
  };
}

function localDetector(cluster: Cluster, node: ResolvedNode, family: Family): LocalDetector | undefined {
  const mode = cluster.config.detectLocalMode;
  const source = mode === 'NodeCIDR' ? node.podCIDRs : mode === 'ClusterCIDR' || mode === '' ? cluster.config.clusterCIDRs : [];
  const cidrs = source.filter((c) => parseCIDR(c)?.family === family);
  if (cidrs.length === 0) return undefined;
  return { mode: mode === 'NodeCIDR' ? 'NodeCIDR' : 'ClusterCIDR', cidrs };
}
