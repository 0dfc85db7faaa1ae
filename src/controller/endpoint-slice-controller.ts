/**
 * kube-controller-manager's EndpointSlice controller (pkg/controller/endpointslice and its
 * reconciler, staging/src/k8s.io/endpointslice/reconciler.go), as a pure function: Services,
 * Pods and Nodes in, EndpointSlices out.
 *
 * For every Service with a selector (not ExternalName): the pods its selector matches in its
 * namespace; per address type of the Service, the pods grouped by the ports they offer (a named
 * targetPort resolves per pod), each group cut into slices of at most maxEndpointsPerSlice
 * endpoints; a placeholder slice (no ports, no endpoints) when there is nothing to list; then
 * topology hints. The controller reconciles against the slices it wrote before
 * (endpoint-slice-reconciler.ts); for files kpsim derives from nothing, which is what the
 * controller writes for a Service it sees for the first time. Go fills slices from a set in
 * random order; kpsim fills them in pod order.
 *
 * Slices given in the input (a dump of a live cluster) always win: a Service that has any gets
 * none derived. kpsim serve's controllers reconcile the slices they wrote before with
 * reconcileEndpointSlices instead, as a live cluster's controller does.
 */
import { formatSelectorMap, matchesMap } from '../model/label-selector.js';
import type { EndpointPort, EndpointSlice, Node, Pod, Service, Warning } from '../model/types.js';
import { GeneratedNames } from '../util/generated-names.js';
import { type ReconcileContext, reconcileEndpointSlices } from './endpoint-slice-reconciler.js';
import type { AddressType } from './pod-endpoint.js';
import { cpuRatiosByZone } from './topology-hints.js';
import { CONTROLLER_NAME, MANAGED_BY_LABEL } from './slice-meta.js';

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
  /** An index of `pods` made already (by a caller that selects from the same pods): else one is made. */
  podIndex?: PodIndex;
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
  const index = input.podIndex ?? new PodIndex(input.pods);
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
      // Slices the controller itself wrote (a dump of a running cluster: `kubectl get -o yaml`,
      // `kpsim generate`) are what it makes of those pods: nothing to say.
      const controllers = givenForService.every((slice) => slice.labels[MANAGED_BY_LABEL] === CONTROLLER_NAME);
      if (pods.length > 0 && !controllers) out.warnings.push(givenSlicesWin(service, givenForService, pods.length));
      continue;
    }
    if (pods.length === 0 && input.pods.length > 0) out.warnings.push(selectorMatchesNothing(service));
    const result = reconcileServiceSlices(service, pods, context);
    out.slices.push(...result.slices);
    out.warnings.push(...serviceWarnings(service, pods, result));
  }
  return out;
}

export type { ReconcileContext } from './endpoint-slice-reconciler.js';

/** The slices the controller writes for one Service, from the pods its selector matched, when it has written none before. */
export function reconcileServiceSlices(service: Service, pods: readonly Pod[], context: ReconcileContext): ServiceSlices {
  const { create, podsOnUnknownNodes, hintsDisabled, portGroups } = reconcileEndpointSlices(service, pods, [], context);
  return { slices: create, podsOnUnknownNodes, hintsDisabled, portGroups };
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
