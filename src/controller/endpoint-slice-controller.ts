/**
 * kube-controller-manager's EndpointSlice controller (pkg/controller/endpointslice and its
 * reconciler, staging/src/k8s.io/endpointslice/reconciler.go), as a pure function: Services,
 * Pods and Nodes in, EndpointSlices out.
 *
 * For every Service with a selector (not ExternalName): the pods its selector matches in its
 * namespace; per address type of the Service, the pods grouped by the ports they offer (a named
 * targetPort resolves per pod), each group cut into slices of at most maxEndpointsPerSlice
 * endpoints; a placeholder slice (no ports, no endpoints) when there is nothing to list; then
 * topology hints. The controller reconciles against the slices it wrote before; kpsim derives
 * from nothing, which is what the controller writes for a Service it sees for the first time.
 * Go fills slices from a set in random order; kpsim fills them in pod order.
 *
 * Slices given in the input (a dump of a live cluster, or written through an API) always win:
 * a Service that has any gets none derived. A live store calls deriveEndpointSlices on every
 * change with the slices it holds from others as `givenSlices`.
 */
import { generateNamePrefix } from '../model/fields.js';
import { formatSelectorMap, matchesMap } from '../model/label-selector.js';
import type { EndpointPort, EndpointSlice, Node, Pod, Service, Warning } from '../model/types.js';
import { GeneratedNames } from '../util/generated-names.js';
import { type AddressType, addressTypesForService, endpointPorts, podToEndpoint, portMapKey, shouldPodBeInEndpoints } from './pod-endpoint.js';
import { endpointSliceLabels } from './slice-meta.js';
import { addTopologyAwareHints, addTrafficDistributionHints, cpuRatiosByZone, topologyHintsEnabled, usableTrafficDistribution } from './topology-hints.js';

/** kube-controller-manager's --max-endpoints-per-slice default. */
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;

export interface EndpointSliceControllerOptions {
  /** kube-controller-manager --max-endpoints-per-slice (default 100). */
  maxEndpointsPerSlice?: number;
  /** The PreferSameTrafficDistribution feature gate: PreferSameZone and PreferSameNode hints (default on). */
  preferSameTrafficDistribution?: boolean;
  /** Mixed into the hash that stands for the API server's random name suffixes. */
  seed?: number;
}

export interface EndpointSliceControllerInput {
  services: readonly Service[];
  pods: readonly Pod[];
  nodes: readonly Node[];
  /** Slices that exist already (given, or written by others): their Services get none derived, their names stay taken. */
  givenSlices?: readonly EndpointSlice[];
}

export interface DerivedEndpointSlices {
  /** The slices the controller writes, Service by Service in input order. */
  slices: EndpointSlice[];
  /** What the user should know: selectors matching no pod, named ports no pod has, given slices winning, ... */
  warnings: Warning[];
}

/** One Service's slices: what the controller writes for it, and why some pods are not in them. */
export interface ServiceSlices {
  slices: EndpointSlice[];
  /** Pods left out because their node is not in the cluster (kept only with publishNotReadyAddresses). */
  podsOnUnknownNodes: Pod[];
  /** Per address type, the controller's reason for giving no topology hints (when they were asked for). */
  hintsDisabled: { addressType: AddressType; reason: string }[];
  /** The listed pods grouped by the ports they offer (a group's slices carry those ports). */
  portGroups: { ports: EndpointPort[]; pods: Pod[] }[];
}

/** Derives the EndpointSlices of every Service with a selector that has none given. */
export function deriveEndpointSlices(input: EndpointSliceControllerInput, options: EndpointSliceControllerOptions = {}): DerivedEndpointSlices {
  const given = input.givenSlices ?? [];
  const names = new GeneratedNames(options.seed ?? 0);
  const slicesByService = new Map<string, EndpointSlice[]>();
  for (const slice of given) {
    names.reserve(slice.namespace, slice.name);
    if (slice.serviceName === '') continue;
    const key = `${slice.namespace}/${slice.serviceName}`;
    const list = slicesByService.get(key);
    if (list) list.push(slice);
    else slicesByService.set(key, [slice]);
  }
  const index = new PodIndex(input.pods);
  const context: ReconcileContext = {
    nodesByName: new Map(input.nodes.map((n) => [n.name, n])),
    cpuRatios: lazy(() => cpuRatiosByZone(input.nodes)),
    names,
    maxEndpointsPerSlice: options.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE,
    preferSameTrafficDistribution: options.preferSameTrafficDistribution ?? true,
  };
  const out: DerivedEndpointSlices = { slices: [], warnings: [] };
  for (const service of input.services) {
    if (service.type === 'ExternalName' || service.selector === undefined) continue;
    const pods = index.select(service.namespace, service.selector);
    const givenForService = slicesByService.get(`${service.namespace}/${service.name}`);
    if (givenForService) {
      if (pods.length > 0) out.warnings.push(givenSlicesWin(service, givenForService, pods.length));
      continue;
    }
    if (pods.length === 0 && input.pods.length > 0) out.warnings.push(selectorMatchesNothing(service));
    const result = reconcileServiceSlices(service, pods, context);
    out.slices.push(...result.slices);
    out.warnings.push(...serviceWarnings(service, pods, result));
  }
  return out;
}

export interface ReconcileContext {
  nodesByName: ReadonlyMap<string, Node>;
  /** Each zone's share of the nodes' CPU (topology-aware hints); computed on first use. */
  cpuRatios: () => Map<string, number> | undefined;
  names: GeneratedNames;
  maxEndpointsPerSlice: number;
  preferSameTrafficDistribution: boolean;
}

/** The slices the controller writes for one Service, from the pods its selector matched. */
export function reconcileServiceSlices(service: Service, pods: readonly Pod[], context: ReconcileContext): ServiceSlices {
  const result: ServiceSlices = { slices: [], podsOnUnknownNodes: [], hintsDisabled: [], portGroups: [] };
  const hintsEnabled = topologyHintsEnabled(service);
  const trafficDistribution = hintsEnabled ? undefined : usableTrafficDistribution(service, context.preferSameTrafficDistribution);
  const addressTypes = addressTypesForService(service);
  const groups = groupByPorts(service, pods);
  result.portGroups = [...groups.values()];
  const prefix = generateNamePrefix(service.name);
  for (const addressType of addressTypes) {
    const slices: EndpointSlice[] = [];
    for (const [key, group] of groups) {
      const endpoints = [];
      for (const pod of group.pods) {
        const node = context.nodesByName.get(pod.spec.nodeName);
        if (!node && !(service.publishNotReadyAddresses ?? false)) {
          // The pod garbage collector would remove it; meanwhile the slice goes on without it.
          if (addressType === addressTypes[0]) result.podsOnUnknownNodes.push(pod);
          continue;
        }
        const endpoint = podToEndpoint(pod, node, service, addressType);
        if (endpoint.addresses.length > 0) endpoints.push(endpoint);
      }
      for (let start = 0, n = 0; start < endpoints.length; start += context.maxEndpointsPerSlice, n++) {
        const name = context.names.generate(service.namespace, prefix, `${service.name}\0${addressType}\0${key}`, n);
        slices.push(newSlice(service, name, addressType, group.ports, endpoints.slice(start, start + context.maxEndpointsPerSlice)));
      }
    }
    // When nothing would be written, a placeholder: a slice with no ports and no endpoints.
    if (slices.length === 0) {
      const name = context.names.generate(service.namespace, prefix, `${service.name}\0${addressType}\0placeholder`);
      slices.push(newSlice(service, name, addressType, [], []));
    }
    if (hintsEnabled) {
      const reason = addTopologyAwareHints(slices, context.cpuRatios());
      if (reason !== undefined) result.hintsDisabled.push({ addressType, reason });
    } else if (trafficDistribution !== undefined) {
      addTrafficDistributionHints(slices, trafficDistribution);
    }
    result.slices.push(...slices);
  }
  return result;
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

function newSlice(service: Service, name: string, addressType: AddressType, ports: EndpointPort[], endpoints: EndpointSlice['endpoints']): EndpointSlice {
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

/** Pods by namespace, label key and label value, so a selector looks at the pods of its rarest pair only. */
export class PodIndex {
  private readonly byNamespace = new Map<string, Map<string, Map<string, Pod[]>>>();
  private readonly inNamespace = new Map<string, Pod[]>();

  constructor(pods: readonly Pod[]) {
    for (const pod of pods) {
      let byKey = this.byNamespace.get(pod.namespace);
      if (!byKey) {
        byKey = new Map();
        this.byNamespace.set(pod.namespace, byKey);
        this.inNamespace.set(pod.namespace, []);
      }
      this.inNamespace.get(pod.namespace)!.push(pod);
      for (const key in pod.labels) {
        let byValue = byKey.get(key);
        if (!byValue) {
          byValue = new Map();
          byKey.set(key, byValue);
        }
        const value = pod.labels[key]!;
        const list = byValue.get(value);
        if (list) list.push(pod);
        else byValue.set(value, [pod]);
      }
    }
  }

  /** The pods of `namespace` whose labels include every pair of `selector` (all of them for an empty map), in input order. */
  select(namespace: string, selector: Readonly<Record<string, string>>): Pod[] {
    const byKey = this.byNamespace.get(namespace);
    if (!byKey) return [];
    let smallest: Pod[] | undefined = this.inNamespace.get(namespace);
    for (const key in selector) {
      const list = byKey.get(key)?.get(selector[key]!);
      if (!list) return [];
      if (list.length < smallest!.length) smallest = list;
    }
    return (smallest ?? []).filter((pod) => matchesMap(selector, pod.labels));
  }
}

function lazy<T>(compute: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}

function at(service: Service, path: string): Pick<Warning, 'file' | 'object' | 'path'> {
  return { file: service.origin.file, object: service.origin.object, path };
}

function givenSlicesWin(service: Service, given: readonly EndpointSlice[], podCount: number): Warning {
  const names = given.map((s) => s.name).join(', ');
  return {
    ...at(service, 'spec.selector'),
    message: `EndpointSlices are given for this service (${names}): they are used, not the ${podCount} pod${podCount === 1 ? '' : 's'} its selector ${formatSelectorMap(service.selector!)} matches`,
  };
}

function selectorMatchesNothing(service: Service): Warning {
  return { ...at(service, 'spec.selector'), message: `${formatSelectorMap(service.selector!)} matches no pod in namespace ${service.namespace}, so the service has no endpoints` };
}

function serviceWarnings(service: Service, pods: readonly Pod[], result: ServiceSlices): Warning[] {
  const warnings: Warning[] = [];
  const selector = formatSelectorMap(service.selector!);
  const withoutIP = pods.filter((p) => p.podIPs.length === 0 && p.phase !== 'Succeeded' && p.phase !== 'Failed');
  if (withoutIP.length > 0) {
    warnings.push({
      ...at(service, 'spec.selector'),
      message: `${countOf(withoutIP.length, pods.length)} selected by ${selector} ${withoutIP.length === 1 ? 'has' : 'have'} no status.podIP yet (${sample(withoutIP)}), so ${withoutIP.length === 1 ? 'it is not an endpoint' : 'they are not endpoints'} (--allocate schedules pods and gives them addresses)`,
    });
  }
  if (result.podsOnUnknownNodes.length > 0) {
    const missing = [...new Set(result.podsOnUnknownNodes.map((p) => p.spec.nodeName || '""'))];
    warnings.push({
      ...at(service, 'spec.selector'),
      message: `${countOf(result.podsOnUnknownNodes.length, pods.length)} selected by ${selector} ${result.podsOnUnknownNodes.length === 1 ? 'runs' : 'run'} on node${missing.length === 1 ? '' : 's'} not in the cluster (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}), so the controller leaves ${result.podsOnUnknownNodes.length === 1 ? 'it' : 'them'} out: give the Node objects too`,
    });
  }
  const listed = result.portGroups.reduce((n, g) => n + g.pods.length, 0);
  service.ports.forEach((port, i) => {
    if (typeof port.targetPort !== 'string' || listed === 0) return;
    // The pods of a group that lacks this port are the ones the named targetPort did not resolve for.
    const lacking = result.portGroups.filter((g) => !g.ports.some((p) => p.name === port.name && p.protocol === port.protocol)).flatMap((g) => g.pods);
    if (lacking.length === 0) return;
    const what = `port named ${JSON.stringify(port.targetPort)} (${port.protocol})`;
    warnings.push({
      ...at(service, `spec.ports[${i}].targetPort`),
      message:
        lacking.length === listed
          ? `no pod selected by ${selector} has a ${what}: the pods are listed without this port, so it has no endpoints`
          : `${countOf(lacking.length, listed)} selected by ${selector} ${lacking.length === 1 ? 'has' : 'have'} no ${what} (${sample(lacking)}): listed without this port, so ${lacking.length === 1 ? 'it is' : 'they are'} not among its endpoints`,
    });
  });
  for (const { addressType, reason } of result.hintsDisabled) {
    warnings.push({ ...at(service, 'metadata.annotations'), message: `topology-aware hints asked for, but the controller adds none to the ${addressType} slices: ${reason}` });
  }
  return warnings;
}

function countOf(n: number, total: number): string {
  return n === total ? (n === 1 ? 'the pod' : `all ${n} pods`) : `${n} of the ${total} pods`;
}

function sample(pods: readonly Pod[]): string {
  return pods.slice(0, 3).map((p) => p.name).join(', ') + (pods.length > 3 ? ', ...' : '');
}
