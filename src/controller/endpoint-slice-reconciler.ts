/**
 * The EndpointSlice controller's reconciler (staging/src/k8s.io/endpointslice/reconciler.go), as
 * a pure function: one Service, the pods its selector matches and the slices the controller
 * wrote for it before in; the slices to create, update and delete out. What it keeps from the
 * real one, so that a live cluster's slices change the way a real cluster's do:
 *
 * - an endpoint is known by its addresses, hostname and pod (endpointset.go hashEndpoint): one
 *   that is still wanted stays in its slice, updated in place when its conditions, node, zone or
 *   pod changed; a slice whose endpoints all went is deleted, one that lost some is updated;
 * - new endpoints fill the slices being updated first (the fullest first), then the unchanged
 *   slice they fit best (getSliceToFill), then new slices of at most maxEndpointsPerSlice;
 * - a slice is created only when no slice of the same address type is being deleted: the
 *   deleted one is updated in its place, keeping its name (finalize);
 * - a Service with nothing to list keeps one placeholder slice (no ports, no endpoints), the
 *   same one from sync to sync;
 * - slices of another Service of the same name (an owner reference with another uid) and of an
 *   address type the Service no longer has are deleted;
 * - hints follow the Service's trafficDistribution or topology-mode annotation, and are removed
 *   from slices whose Service no longer asks for them.
 *
 * Go walks sets and maps in random order; kpsim walks existing slices in the order given (name
 * order in the store) and endpoints in pod order, so the same state always gives the same writes.
 * Slices are data: those given are never changed, changed ones are copies.
 */
import { generateNamePrefix } from '../model/fields.js';
import type { Endpoint, EndpointPort, EndpointSlice, Node, Pod, Service } from '../model/types.js';
import type { GeneratedNames } from '../util/generated-names.js';
import { type AddressType, addressTypesForService, endpointPorts, podToEndpoint, portMapKey, shouldPodBeInEndpoints } from './pod-endpoint.js';
import { endpointSliceLabels } from './slice-meta.js';
import { addTopologyAwareHints, addTrafficDistributionHints, topologyHintsEnabled, usableTrafficDistribution } from './topology-hints.js';

export interface ReconcileContext {
  nodesByName: ReadonlyMap<string, Node>;
  /** Each zone's share of the nodes' CPU (topology-aware hints); computed on first use. */
  cpuRatios: () => Map<string, number> | undefined;
  names: GeneratedNames;
  maxEndpointsPerSlice: number;
  preferSameTrafficDistribution: boolean;
}

/** A slice the controller wrote before (labelled managed-by endpointslice-controller.k8s.io) for this Service's name. */
export interface ExistingSlice {
  slice: EndpointSlice;
  /** Its owner reference names this Service (the same uid): else it belongs to an older Service of the name and goes. */
  ownedByService: boolean;
}

export interface SliceChanges {
  create: EndpointSlice[];
  /** Existing slices, changed (the same names). */
  update: EndpointSlice[];
  delete: EndpointSlice[];
  /** Existing slices that stay as they are. */
  unchanged: EndpointSlice[];
  /** Pods left out because their node is not in the cluster (kept only with publishNotReadyAddresses). */
  podsOnUnknownNodes: Pod[];
  /** Per address type, the controller's reason for giving no topology hints (when they were asked for). */
  hintsDisabled: { addressType: AddressType; reason: string }[];
  /** The listed pods grouped by the ports they offer (a group's slices carry those ports). */
  portGroups: { ports: EndpointPort[]; pods: Pod[] }[];
}

/** endpointHash: what makes two endpoints the same one (addresses, hostname and the pod), whatever their conditions. */
function endpointKey(endpoint: Endpoint): string {
  const addresses = endpoint.addresses.length > 1 ? [...endpoint.addresses].sort() : endpoint.addresses;
  return `${addresses.join(',')}\0${endpoint.hostname ?? ''}\0${endpoint.targetRef?.namespace ?? ''}\0${endpoint.targetRef?.name ?? ''}`;
}

/** EndpointsEqualBeyondHash: node, zone, the three conditions and the pod; hints are the hint pass's. */
function sameBeyondKey(a: Endpoint, b: Endpoint): boolean {
  return (
    a.nodeName === b.nodeName &&
    a.zone === b.zone &&
    a.conditions.ready === b.conditions.ready &&
    a.conditions.serving === b.conditions.serving &&
    a.conditions.terminating === b.conditions.terminating &&
    a.targetRef?.kind === b.targetRef?.kind &&
    a.targetRef?.namespace === b.targetRef?.namespace &&
    a.targetRef?.name === b.targetRef?.name
  );
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => b[k] === a[k]);
}

function sameHints(a: Endpoint, b: Endpoint): boolean {
  const text = (e: Endpoint): string => (e.hints ? `${e.hints.forZones.join(',')}\0${e.hints.forNodes.join(',')}` : '');
  return text(a) === text(b);
}

/** One group of desired endpoints: the ports they share, in pod order. */
interface DesiredGroup {
  ports: EndpointPort[];
  endpoints: Endpoint[];
  pods: Pod[];
}

/**
 * The pods to list, grouped by the ports they offer (insertion order). Pods of one template
 * share their ports list, so each distinct list is resolved against the Service once.
 */
function groupByPorts(service: Service, pods: readonly Pod[]): Map<string, { ports: EndpointPort[]; pods: Pod[] }> {
  const groups = new Map<string, { ports: EndpointPort[]; pods: Pod[] }>();
  const resolved = new Map<Pod['spec']['ports'], { ports: EndpointPort[]; key: string }>();
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod)) continue;
    let found = resolved.get(pod.spec.ports);
    if (!found) {
      const ports = endpointPorts(service, pod);
      found = { ports, key: portMapKey(ports) };
      resolved.set(pod.spec.ports, found);
    }
    let group = groups.get(found.key);
    if (!group) {
      group = { ports: found.ports, pods: [] };
      groups.set(found.key, group);
    }
    group.pods.push(pod);
  }
  return groups;
}

/** What the controller writes for one Service: the changes against the slices it wrote before (none for a new Service). */
export function reconcileEndpointSlices(service: Service, pods: readonly Pod[], existing: readonly ExistingSlice[], context: ReconcileContext): SliceChanges {
  const out: SliceChanges = { create: [], update: [], delete: [], unchanged: [], podsOnUnknownNodes: [], hintsDisabled: [], portGroups: [] };
  const addressTypes = addressTypesForService(service);
  const groups = groupByPorts(service, pods);
  out.portGroups = [...groups.values()];
  const byType = new Map<AddressType, ExistingSlice[]>(addressTypes.map((t) => [t, []]));
  for (const e of existing) {
    const list = byType.get(e.slice.addressType as AddressType);
    if (list) list.push(e);
    else out.delete.push(e.slice); // the Service no longer has this address type
  }
  for (const addressType of addressTypes) {
    const desired = new Map<string, DesiredGroup>();
    for (const [key, group] of groups) {
      const endpoints: Endpoint[] = [];
      for (const pod of group.pods) {
        const node = context.nodesByName.get(pod.spec.nodeName);
        if (!node && !(service.publishNotReadyAddresses ?? false)) {
          // The pod garbage collector would remove it; meanwhile the slice goes on without it.
          if (addressType === addressTypes[0]) out.podsOnUnknownNodes.push(pod);
          continue;
        }
        const endpoint = podToEndpoint(pod, node, service, addressType);
        if (endpoint.addresses.length > 0) endpoints.push(endpoint);
      }
      desired.set(key, { ports: group.ports, endpoints, pods: group.pods });
    }
    reconcileByAddressType(service, addressType, byType.get(addressType)!, desired, context, out);
  }
  return out;
}

function reconcileByAddressType(service: Service, addressType: AddressType, existing: readonly ExistingSlice[], desired: Map<string, DesiredGroup>, context: ReconcileContext, out: SliceChanges): void {
  const toCreate: EndpointSlice[] = [];
  const toUpdate: EndpointSlice[] = [];
  const toDelete: EndpointSlice[] = [];
  const existingByPorts = new Map<string, EndpointSlice[]>();
  for (const { slice, ownedByService } of existing) {
    if (!ownedByService) {
      toDelete.push(slice);
      continue;
    }
    const key = portMapKey(slice.ports);
    const list = existingByPorts.get(key);
    if (list) list.push(slice);
    else existingByPorts.set(key, [slice]);
  }
  const unchanged: EndpointSlice[] = [];
  for (const [key, group] of desired) {
    const result = reconcileByPortMapping(service, addressType, key, existingByPorts.get(key) ?? [], group, context);
    toCreate.push(...result.create);
    toUpdate.push(...result.update);
    toDelete.push(...result.delete);
    unchanged.push(...result.unchanged);
  }
  // Port sets no pod offers any more: their slices go.
  for (const [key, slices] of existingByPorts) if (!desired.has(key)) toDelete.push(...slices);

  // When nothing would be left, a placeholder: a slice with no ports and no endpoints, kept if it is there.
  if (existing.length === toDelete.length && toCreate.length === 0) {
    const placeholder = newSlice(service, '', addressType, [], []);
    if (toDelete.length === 1 && isSamePlaceholder(toDelete[0]!, placeholder)) {
      unchanged.push(toDelete.pop()!);
    } else {
      const name = context.names.generate(service.namespace, generateNamePrefix(service.name), `${service.name}\0${addressType}\0placeholder`);
      toCreate.push(newSlice(service, name, addressType, [], []));
    }
  }

  hintSlices(service, addressType, toCreate, toUpdate, unchanged, context, out);
  finalize(toCreate, toUpdate, toDelete, existing);
  out.create.push(...toCreate);
  out.update.push(...toUpdate);
  out.delete.push(...toDelete);
  out.unchanged.push(...unchanged);
}

/** placeholderSliceCompare: the same namespace, labels, address type, and no ports or endpoints (names aside). */
function isSamePlaceholder(slice: EndpointSlice, placeholder: EndpointSlice): boolean {
  return slice.namespace === placeholder.namespace && slice.addressType === placeholder.addressType && slice.endpoints.length === 0 && slice.ports.length === 0 && sameLabels(slice.labels, placeholder.labels);
}

/**
 * reconcileByPortMapping: 1. existing slices keep the endpoints still wanted (updated in place),
 * 2. slices being updated are filled up (the fullest first), 3. what is left goes into the
 * unchanged slice it fits best, else into new slices.
 */
function reconcileByPortMapping(
  service: Service,
  addressType: AddressType,
  portKey: string,
  existing: readonly EndpointSlice[],
  group: DesiredGroup,
  context: ReconcileContext,
): { create: EndpointSlice[]; update: EndpointSlice[]; delete: EndpointSlice[]; unchanged: EndpointSlice[] } {
  const labels = endpointSliceLabels(service);
  const updated = new Map<string, EndpointSlice>();
  const unchanged = new Map<string, EndpointSlice>();
  const deleted: EndpointSlice[] = [];
  // The endpoints still to place, in pod order. Keyed only when there are slices to compare with
  // (a Service seen for the first time, the files' case, needs no keys).
  let remaining: Endpoint[] = group.endpoints;
  if (existing.length > 0) {
    const wanted = new Map<string, Endpoint>();
    for (const endpoint of group.endpoints) wanted.set(endpointKey(endpoint), endpoint);
    for (const slice of existing) {
      const kept: Endpoint[] = [];
      let changed = false;
      for (const endpoint of slice.endpoints) {
        const key = endpointKey(endpoint);
        const got = wanted.get(key);
        if (!got) continue;
        kept.push(got);
        if (!sameBeyondKey(got, endpoint)) changed = true;
        wanted.delete(key);
      }
      if (changed || kept.length !== slice.endpoints.length) {
        if (kept.length === 0) deleted.push(slice);
        else updated.set(slice.name, { ...slice, labels, endpoints: kept });
      } else if (!sameLabels(slice.labels, labels)) {
        updated.set(slice.name, { ...slice, labels, endpoints: slice.endpoints.map((e) => ({ ...e })) });
      } else {
        unchanged.set(slice.name, slice);
      }
    }
    remaining = [...wanted.values()];
  }
  let next = 0;
  const take = (slice: EndpointSlice): void => {
    while (next < remaining.length && slice.endpoints.length < context.maxEndpointsPerSlice) slice.endpoints.push(remaining[next++]!);
  };
  // 2. Fill the slices being updated, the fullest first.
  if (next < remaining.length && updated.size > 0) {
    const fullestFirst = [...updated.values()].map((s, i) => ({ s, i })).sort((a, b) => b.s.endpoints.length - a.s.endpoints.length || a.i - b.i);
    for (const { s } of fullestFirst) take(s);
  }
  // 3. The rest: into the unchanged slice it fits best, else new slices.
  const created: EndpointSlice[] = [];
  let n = 0;
  const prefix = generateNamePrefix(service.name);
  while (next < remaining.length) {
    let fill: EndpointSlice | undefined;
    const left = remaining.length - next;
    if (left < context.maxEndpointsPerSlice && unchanged.size > 0) {
      const best = sliceToFill([...unchanged.values()], left, context.maxEndpointsPerSlice);
      if (best) {
        unchanged.delete(best.name);
        fill = { ...best, labels, endpoints: best.endpoints.map((e) => ({ ...e })) };
        updated.set(fill.name, fill);
      }
    }
    if (!fill) {
      fill = newSlice(service, context.names.generate(service.namespace, prefix, `${service.name}\0${addressType}\0${portKey}`, n++), addressType, group.ports, []);
      created.push(fill);
    }
    take(fill);
  }
  return { create: created, update: [...updated.values()], delete: deleted, unchanged: [...unchanged.values()] };
}

/** getSliceToFill: the slice that comes closest to full with `count` more endpoints; the first of equals. */
function sliceToFill(slices: readonly EndpointSlice[], count: number, max: number): EndpointSlice | undefined {
  let closestDiff = max;
  let closest: EndpointSlice | undefined;
  for (const slice of slices) {
    const diff = max - (count + slice.endpoints.length);
    if (diff >= 0 && diff < closestDiff) {
      closestDiff = diff;
      closest = slice;
      if (diff === 0) return closest;
    }
  }
  return closest;
}

/**
 * Hints on the slices of one address type: topology-aware hints over all of them, or each ready
 * endpoint's own zone (and node) for a trafficDistribution, or none. An unchanged slice whose
 * hints change becomes an update.
 */
function hintSlices(service: Service, addressType: AddressType, toCreate: EndpointSlice[], toUpdate: EndpointSlice[], unchanged: EndpointSlice[], context: ReconcileContext, out: SliceChanges): void {
  const hintsEnabled = topologyHintsEnabled(service);
  const trafficDistribution = hintsEnabled ? undefined : usableTrafficDistribution(service, context.preferSameTrafficDistribution);
  // Work on copies of the unchanged slices' endpoints; keep a slice unchanged when its hints come out the same.
  const copies = unchanged.map((slice) => ({ ...slice, endpoints: slice.endpoints.map((e) => ({ ...e })) }));
  const all = [...toCreate, ...toUpdate, ...copies];
  for (const slice of all) for (const e of slice.endpoints) if (e.hints !== undefined) delete e.hints;
  if (hintsEnabled) {
    const reason = addTopologyAwareHints(all, context.cpuRatios());
    if (reason !== undefined) out.hintsDisabled.push({ addressType, reason });
  } else if (trafficDistribution !== undefined) {
    addTrafficDistributionHints(all, trafficDistribution);
  }
  const stay: EndpointSlice[] = [];
  unchanged.forEach((slice, i) => {
    const copy = copies[i]!;
    if (slice.endpoints.every((e, j) => sameHints(e, copy.endpoints[j]!))) stay.push(slice);
    else toUpdate.push(copy);
  });
  unchanged.length = 0;
  unchanged.push(...stay);
}

/** finalize: a slice to create takes the place (and name) of one of the same address type to delete. */
function finalize(toCreate: EndpointSlice[], toUpdate: EndpointSlice[], toDelete: EndpointSlice[], existing: readonly ExistingSlice[]): void {
  const owned = new Set(existing.filter((e) => e.ownedByService).map((e) => e.slice));
  for (let i = 0; i < toDelete.length && toCreate.length > 0; ) {
    const old = toDelete[i]!;
    const slice = toCreate[toCreate.length - 1]!;
    if (old.addressType === slice.addressType && owned.has(old)) {
      toCreate.pop();
      toUpdate.push({ ...slice, name: old.name, origin: { ...slice.origin, object: `EndpointSlice ${slice.namespace}/${old.name}` } });
      toDelete.splice(i, 1);
    } else {
      i++;
    }
  }
}

export function newSlice(service: Service, name: string, addressType: AddressType, ports: EndpointPort[], endpoints: EndpointSlice['endpoints']): EndpointSlice {
  return {
    kind: 'EndpointSlice',
    origin: { file: service.origin.file, object: `EndpointSlice ${service.namespace}/${name}` },
    namespace: service.namespace,
    name,
    labels: endpointSliceLabels(service),
    serviceName: service.name,
    addressType,
    endpoints,
    ports,
  };
}
