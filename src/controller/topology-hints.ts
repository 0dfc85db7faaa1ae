/**
 * Topology hints on a Service's new slices, as the EndpointSlice controller writes them:
 *
 * - topology-aware routing (annotation service.kubernetes.io/topology-mode: Auto, or the older
 *   service.kubernetes.io/topology-aware-hints, which wins when both are set): the TopologyCache
 *   (staging/src/k8s.io/endpointslice/topologycache): each zone gets a share of the ready
 *   endpoints in proportion to its nodes' allocatable CPU, endpoints first hinted for their own
 *   zone, then donated from zones with too many to zones with too few. Go walks maps in random
 *   order where zones tie; kpsim walks zones in name order.
 * - spec.trafficDistribution (PreferClose, PreferSameZone; PreferSameNode with the
 *   PreferSameTrafficDistribution feature gate): every ready endpoint hinted for its own zone
 *   (and, for PreferSameNode, its own node) (staging/src/k8s.io/endpointslice/trafficdist).
 *
 * Both start from slices without hints: kpsim derives slices afresh, so there are no unchanged
 * slices whose hints would count.
 */
import type { Endpoint, EndpointSlice, Node, Service } from '../model/types.js';
import { ZONE_LABEL } from '../model/node.js';

export const TOPOLOGY_MODE_ANNOTATION = 'service.kubernetes.io/topology-mode';
export const DEPRECATED_TOPOLOGY_HINTS_ANNOTATION = 'service.kubernetes.io/topology-aware-hints';

/** The controller's event messages when it gives up on hints (topologycache/event.go). */
export const HINTS_DISABLED = {
  noZoneSpecified: 'One or more endpoints do not have a zone specified',
  noAllocatedHintsForZones: 'No hints allocated for zones',
  insufficientNodeInfo: 'Insufficient Node information: allocatable CPU or zone not specified on one or more nodes',
  insufficientNumberOfEndpoints: 'Insufficient number of endpoints',
  minAllocationExceedsOverloadThreshold: 'Unable to allocate minimum required endpoints to each zone without exceeding overload threshold',
} as const;

/** The most any one endpoint may be overloaded by a zone's share (topologycache.go). */
const OVERLOAD_THRESHOLD = 0.2;

/** hintsEnabled: the older annotation wins when both are set; "Auto" or "auto" turns hints on. */
export function topologyHintsEnabled(service: Service): boolean {
  const annotations = service.annotations ?? {};
  const value = annotations[DEPRECATED_TOPOLOGY_HINTS_ANNOTATION] ?? annotations[TOPOLOGY_MODE_ANNOTATION];
  return value === 'Auto' || value === 'auto';
}

/** validTrafficDistribution: PreferClose always; PreferSameZone and PreferSameNode behind the gate. */
export function usableTrafficDistribution(service: Service, preferSameTrafficDistribution: boolean): string | undefined {
  const value = service.trafficDistribution;
  if (value === 'PreferClose') return value;
  if (preferSameTrafficDistribution && (value === 'PreferSameZone' || value === 'PreferSameNode')) return value;
  return undefined;
}

/** preferCloseHeuristic.update: own zone (and own node for PreferSameNode) on every ready endpoint. */
export function addTrafficDistributionHints(slices: readonly EndpointSlice[], trafficDistribution: string): void {
  const nodeHints = trafficDistribution === 'PreferSameNode';
  for (const slice of slices) {
    for (const endpoint of slice.endpoints) {
      if (endpoint.conditions.ready !== true) continue;
      const forZones = endpoint.zone !== undefined ? [endpoint.zone] : [];
      const forNodes = nodeHints && endpoint.nodeName !== undefined ? [endpoint.nodeName] : [];
      if (forZones.length > 0 || forNodes.length > 0) endpoint.hints = { forZones, forNodes };
      else delete endpoint.hints;
    }
  }
}

/**
 * TopologyCache.SetNodes: each zone's share of the allocatable CPU of the ready nodes, leaving
 * out control-plane nodes; undefined when any counted node lacks a zone or CPU, or when fewer
 * than two zones are left.
 */
export function cpuRatiosByZone(nodes: readonly Node[]): Map<string, number> | undefined {
  const cpuByZone = new Map<string, number>();
  let total = 0;
  for (const node of nodes) {
    if ('node-role.kubernetes.io/control-plane' in node.labels || 'node-role.kubernetes.io/master' in node.labels) continue;
    if (node.ready !== true) continue;
    const zone = node.labels[ZONE_LABEL];
    const cpu = node.allocatableCPUMillis ?? 0;
    if (zone === undefined || zone === '' || cpu === 0) return undefined;
    total += cpu;
    cpuByZone.set(zone, (cpuByZone.get(zone) ?? 0) + cpu);
  }
  if (total === 0 || cpuByZone.size < 2) return undefined;
  return new Map([...cpuByZone].sort(([a], [b]) => compareText(a, b)).map(([zone, cpu]) => [zone, cpu / total]));
}

interface Allocation {
  minimum: number;
  maximum: number;
  desired: number;
}

/**
 * TopologyCache.AddHints on slices that are all new. Returns undefined when hints were added,
 * else the controller's reason for leaving them out (and no endpoint keeps a hint).
 */
export function addTopologyAwareHints(slices: readonly EndpointSlice[], ratios: Map<string, number> | undefined): string | undefined {
  const endpoints = slices.flatMap((s) => s.endpoints);
  const ready = endpoints.filter(isReady);
  const allocations = getAllocations(ratios, ready.length);
  if (typeof allocations === 'string') return removeHints(endpoints, allocations);

  // Step 1: every ready endpoint hinted for its own zone.
  const allocated = new Map<string, number>();
  for (const endpoint of ready) {
    if (endpoint.zone === undefined || endpoint.zone === '') return removeHints(endpoints, HINTS_DISABLED.noZoneSpecified);
    allocated.set(endpoint.zone, (allocated.get(endpoint.zone) ?? 0) + 1);
    endpoint.hints = { forZones: [endpoint.zone], forNodes: [] };
  }
  // Steps 2 and 3: zones with more than their share donate endpoints to zones with too few.
  const { giving, receiving } = givingAndReceivingZones(allocations, allocated);
  for (const [zone, diff] of redistributeHints(ready, giving, receiving)) allocated.set(zone, (allocated.get(zone) ?? 0) + diff);
  if (allocated.size === 0) return removeHints(endpoints, HINTS_DISABLED.noAllocatedHintsForZones);
  return undefined;
}

function isReady(endpoint: Endpoint): boolean {
  return endpoint.conditions.ready === true;
}

function removeHints(endpoints: readonly Endpoint[], reason: string): string {
  for (const endpoint of endpoints) delete endpoint.hints;
  return reason;
}

function getAllocations(ratios: Map<string, number> | undefined, numEndpoints: number): Map<string, Allocation> | string {
  if (ratios === undefined) return HINTS_DISABLED.insufficientNodeInfo;
  if (ratios.size > numEndpoints) return `${HINTS_DISABLED.insufficientNumberOfEndpoints} (${numEndpoints} endpoints, ${ratios.size} zones)`;
  let remainingMinEndpoints = numEndpoints;
  let minTotal = 0;
  const allocations = new Map<string, Allocation>();
  for (const [zone, ratio] of ratios) {
    const desired = ratio * numEndpoints;
    const minimum = Math.ceil(desired * (1 / (1 + OVERLOAD_THRESHOLD)));
    allocations.set(zone, { minimum, maximum: 0, desired: Math.max(desired, minimum) });
    minTotal += minimum;
    remainingMinEndpoints -= minimum;
    if (remainingMinEndpoints < 0) return `${HINTS_DISABLED.minAllocationExceedsOverloadThreshold} (${numEndpoints} endpoints, ${ratios.size} zones)`;
  }
  for (const allocation of allocations.values()) allocation.maximum = allocation.minimum + numEndpoints - minTotal;
  return allocations;
}

/** getGivingAndReceivingZones: whole endpoints to move, from the exact surpluses and shortfalls. */
function givingAndReceivingZones(allocations: Map<string, Allocation>, allocated: Map<string, number>): { giving: Map<string, number>; receiving: Map<string, number> } {
  const givingDesired = new Map<string, number>();
  const receivingDesired = new Map<string, number>();
  for (const [zone, allocation] of allocations) {
    const hints = allocated.get(zone) ?? 0;
    if (hints > allocation.desired) givingDesired.set(zone, hints - allocation.desired);
    else if (hints < allocation.desired) receivingDesired.set(zone, allocation.desired - hints);
  }
  const giving = new Map<string, number>();
  const receiving = new Map<string, number>();
  for (;;) {
    const [givingZone, toGive] = most(givingDesired);
    const [receivingZone, toReceive] = most(receivingDesired);
    if (givingZone === '' || receivingZone === '' || (toGive < 1 && toReceive < 1) || toGive < 0.5 || toReceive < 0.5) break;
    giving.set(givingZone, (giving.get(givingZone) ?? 0) + 1);
    givingDesired.set(givingZone, toGive - 1);
    receiving.set(receivingZone, (receiving.get(receivingZone) ?? 0) + 1);
    receivingDesired.set(receivingZone, toReceive - 1);
  }
  return { giving, receiving };
}

/** getMost: the zone with the largest value (above 0); the first in name order on a tie. */
function most(zones: Map<string, number>): [string, number] {
  let zone = '';
  let num = 0;
  for (const z of [...zones.keys()].sort(compareText)) {
    const n = zones.get(z)!;
    if (n > num) {
      zone = z;
      num = n;
    }
  }
  return [zone, num];
}

/** redistributeHints: re-hint endpoints of giving zones for receiving zones; returns the change per zone. */
function redistributeHints(ready: readonly Endpoint[], giving: Map<string, number>, receiving: Map<string, number>): Map<string, number> {
  const changes = new Map<string, number>();
  for (const endpoint of ready) {
    if (giving.size === 0 || receiving.size === 0) break;
    const givingZone = endpoint.zone!;
    const toGive = giving.get(givingZone) ?? 0;
    if (toGive <= 0) continue;
    const receivingZone = [...receiving.keys()].sort(compareText).find((z) => receiving.get(z)! > 0);
    if (receivingZone === undefined) continue;
    endpoint.hints = { forZones: [receivingZone], forNodes: [] };
    if (toGive === 1) giving.delete(givingZone);
    else giving.set(givingZone, toGive - 1);
    const toReceive = receiving.get(receivingZone)!;
    if (toReceive === 1) receiving.delete(receivingZone);
    else receiving.set(receivingZone, toReceive - 1);
    changes.set(receivingZone, (changes.get(receivingZone) ?? 0) + 1);
    changes.set(givingZone, (changes.get(givingZone) ?? 0) - 1);
  }
  return changes;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
