/**
 * kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go): which endpoints Cluster and Local
 * traffic policy use on this node, with topology hints and the fallback to serving-terminating
 * endpoints when no ready ones are left. Every proxy mode calls this, so they agree.
 */
import { ZONE_LABEL } from '../model/node.js';
import type { CategorizedEndpoints, EndpointInfo, ServicePortInfo } from '../model/proxy-info.js';

/** The node's topology.kubernetes.io/zone label decides PreferSameZone. */
export { ZONE_LABEL };

type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

export interface TopologyContext {
  nodeName: string;
  nodeLabels: Readonly<Record<string, string>>;
  /** The PreferSameTrafficDistribution feature gate (node hints). */
  preferSameTrafficDistribution: boolean;
}

/** One empty list for every port with no endpoint of a kind (kept per port, per node's view). */
const NO_ENDPOINTS: readonly EndpointInfo[] = Object.freeze([]);

export function categorizeEndpoints(endpoints: readonly EndpointInfo[], svc: ServicePortInfo, ctx: TopologyContext): CategorizedEndpoints {
  if (endpoints.length === 0) return { clusterEndpoints: undefined, localEndpoints: undefined, allReachableEndpoints: NO_ENDPOINTS, hasAnyEndpoints: false };
  const zone = ctx.nodeLabels[ZONE_LABEL] ?? '';
  let topologyMode: TopologyMode = '';
  let clusterEndpoints: readonly EndpointInfo[] | undefined;
  let hasAnyEndpoints = false;

  if (svc.usesClusterEndpoints) {
    topologyMode = topologyModeFromHints(endpoints, ctx, zone);
    const mode = topologyMode;
    // Without topology every ready endpoint is kept: a function made once, not a closure per port.
    clusterEndpoints = mode === '' ? endpointsWhere(endpoints, isReady) : endpointsWhere(endpoints, (ep) => ep.ready && availableForTopology(ep, mode, ctx.nodeName, zone));
    // No ready endpoint anywhere (topology would have been dropped otherwise): fall back to
    // serving-terminating ones so connections keep working while pods drain.
    if (clusterEndpoints.length === 0) clusterEndpoints = endpointsWhere(endpoints, isServingTerminating);
    if (clusterEndpoints.length > 0) hasAnyEndpoints = true;
  }
  if (!svc.usesLocalEndpoints) {
    return { clusterEndpoints, localEndpoints: undefined, allReachableEndpoints: clusterEndpoints ?? NO_ENDPOINTS, hasAnyEndpoints };
  }

  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (let i = 0; i < endpoints.length; i++) {
    const ep = endpoints[i]!;
    if (ep.ready) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAnyEndpoints = true;
      if (ep.isLocal) hasLocalServingTerminating = true;
    }
  }
  let localEndpoints: readonly EndpointInfo[] | undefined;
  let usesServingTerminating = false;
  if (hasLocalReady) {
    localEndpoints = endpointsWhere(endpoints, isLocalReady);
  } else if (hasLocalServingTerminating) {
    usesServingTerminating = true;
    localEndpoints = endpointsWhere(endpoints, isLocalServingTerminating);
  }
  if (!svc.usesClusterEndpoints) {
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: localEndpoints ?? NO_ENDPOINTS, hasAnyEndpoints };
  }
  if (topologyMode === '' && !usesServingTerminating) {
    // clusterEndpoints then holds every ready endpoint, a superset of the local ready ones.
    return { clusterEndpoints, localEndpoints, allReachableEndpoints: clusterEndpoints ?? NO_ENDPOINTS, hasAnyEndpoints };
  }
  const union = new Map<string, EndpointInfo>();
  for (const ep of [...(clusterEndpoints ?? []), ...(localEndpoints ?? [])]) union.set(ep.endpoint, ep);
  const allReachableEndpoints = sortByEndpointText([...union.values()]);
  return { clusterEndpoints, localEndpoints, allReachableEndpoints, hasAnyEndpoints };
}

/**
 * The endpoints that pass `keep`, in order: `endpoints` itself when all do (a port whose endpoints
 * are all ready, the usual case, keeps one list for both), one shared empty list when none do,
 * else a list of exactly those (filter's list keeps room to grow, and every port keeps its lists).
 */
function endpointsWhere(endpoints: readonly EndpointInfo[], keep: (ep: EndpointInfo) => boolean): readonly EndpointInfo[] {
  let count = 0;
  for (let i = 0; i < endpoints.length; i++) if (keep(endpoints[i]!)) count++;
  if (count === endpoints.length) return endpoints;
  if (count === 0) return NO_ENDPOINTS;
  // Pushed, then copied to its length: a list made by length has holes, for V8, and the lists
  // every port keeps are best of one kind.
  const kept: EndpointInfo[] = [];
  for (let i = 0; i < endpoints.length && kept.length < count; i++) if (keep(endpoints[i]!)) kept.push(endpoints[i]!);
  return kept.slice();
}

function isReady(ep: EndpointInfo): boolean {
  return ep.ready;
}

function isServingTerminating(ep: EndpointInfo): boolean {
  return ep.serving && ep.terminating;
}

function isLocalReady(ep: EndpointInfo): boolean {
  return ep.isLocal && ep.ready;
}

function isLocalServingTerminating(ep: EndpointInfo): boolean {
  return ep.isLocal && ep.serving && ep.terminating;
}

/**
 * The same endpoints in the same order, by their "ip:port" text (undefined is none). Two nodes'
 * views of one port hold mostly the very same objects (a node copies only its local endpoints),
 * so identity is checked first.
 */
export function sameEndpoints(a: readonly EndpointInfo[] | undefined, b: readonly EndpointInfo[] | undefined): boolean {
  if (a === b) return true;
  const n = a?.length ?? 0;
  if (n !== (b?.length ?? 0)) return false;
  for (let i = 0; i < n; i++) {
    const x = a![i]!;
    const y = b![i]!;
    if (x !== y && x.endpoint !== y.endpoint) return false;
  }
  return true;
}

export function byEndpointText(a: EndpointInfo, b: EndpointInfo): number {
  return a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0;
}

/** Lists up to this long are sorted by sortByEndpointText's own insertion sort. */
export const INSERTION_SORT_MAX = 32;

/**
 * Sorts `endpoints` in place by endpoint text, stably (equal texts keep their order): the order
 * `endpoints.sort(byEndpointText)` gives. A short list (a port's usual 2 to 30 endpoints) is
 * sorted by binary insertion here: the built-in sort allocates its state and a copy of the list
 * on every call, about 1 KB, which for 10k ports is more than the lists themselves.
 */
export function sortByEndpointText(endpoints: EndpointInfo[]): EndpointInfo[] {
  const n = endpoints.length;
  if (n > INSERTION_SORT_MAX) return endpoints.sort(byEndpointText);
  for (let i = 1; i < n; i++) {
    const ep = endpoints[i]!;
    const text = ep.endpoint;
    // Already in place (the list often comes sorted): one comparison.
    if (!(text < endpoints[i - 1]!.endpoint)) continue;
    // The first position whose text is greater: after every equal one, which keeps the sort stable.
    let lo = 0;
    let hi = i - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (text < endpoints[mid]!.endpoint) hi = mid;
      else lo = mid + 1;
    }
    for (let j = i; j > lo; j--) endpoints[j] = endpoints[j - 1]!;
    endpoints[lo] = ep;
  }
  return endpoints;
}

/**
 * PreferSameNode when the gate is on, every ready endpoint has node hints and one is for this
 * node; else PreferSameZone when every ready endpoint has zone hints and one is for this zone.
 */
function topologyModeFromHints(endpoints: readonly EndpointInfo[], ctx: TopologyContext, zone: string): TopologyMode {
  let hasReady = false;
  let hasForNode = false;
  let allHaveNodeHints = true;
  let hasForZone = false;
  let allHaveZoneHints = true;
  for (let i = 0; i < endpoints.length; i++) {
    const ep = endpoints[i]!;
    if (!ep.ready) continue;
    hasReady = true;
    if (ep.nodeHints.size === 0) allHaveNodeHints = false;
    else if (ep.nodeHints.has(ctx.nodeName)) hasForNode = true;
    if (ep.zoneHints.size === 0) allHaveZoneHints = false;
    else if (ep.zoneHints.has(zone)) hasForZone = true;
  }
  if (!hasReady) return '';
  if (ctx.preferSameTrafficDistribution && allHaveNodeHints && hasForNode) return 'PreferSameNode';
  if (allHaveZoneHints && hasForZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(ep: EndpointInfo, mode: TopologyMode, nodeName: string, zone: string): boolean {
  switch (mode) {
    case '':
      return true;
    case 'PreferSameNode':
      return ep.nodeHints.has(nodeName);
    case 'PreferSameZone':
      return ep.zoneHints.has(zone);
  }
}
