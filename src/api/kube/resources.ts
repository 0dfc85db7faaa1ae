/**
 * The kinds kpsim's Kubernetes API serves, described as discovery publishes them (values as
 * real clusters publish them: ../shared/reference/kube-api.md §1.4). Everything else in the
 * API (routes, discovery, field selectors, tables, patch strategies) is driven by this table.
 */
import type { JsonObject } from '../../model/fields.js';

export interface ResourceType {
  /** The plural, as in the URL: "services". */
  readonly resource: string;
  readonly singular: string;
  readonly kind: string;
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  /** The subresources kpsim serves, where the real API has them: "status", and "scale" (an autoscaling/v1 Scale). */
  readonly subresources: readonly Subresource[];
  /** A PUT to a missing object creates it (the registry strategy's AllowCreateOnUpdate). */
  readonly createOnUpdate: boolean;
  /** Field selector keys beyond metadata.name and metadata.namespace, with how to read each. */
  readonly fieldSelectors: Readonly<Record<string, (obj: JsonObject) => string>>;
}

export type Subresource = 'status' | 'scale';

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

function field(obj: JsonObject, ...path: string[]): string {
  let value: unknown = obj;
  for (const key of path) value = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject)[key] : undefined;
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

export const SERVICES: ResourceType = {
  resource: 'services', singular: 'service', kind: 'Service', group: '', version: 'v1', namespaced: true,
  shortNames: ['svc'], categories: ['all'], subresources: ['status'], createOnUpdate: false,
  // pkg/registry/core/service: ServiceSelectableFields adds spec.clusterIP and spec.type.
  fieldSelectors: { 'spec.clusterIP': (o) => field(o, 'spec', 'clusterIP'), 'spec.type': (o) => field(o, 'spec', 'type') },
};
export const ENDPOINTS: ResourceType = {
  resource: 'endpoints', singular: 'endpoints', kind: 'Endpoints', group: '', version: 'v1', namespaced: true,
  shortNames: ['ep'], categories: [], subresources: [], createOnUpdate: true, fieldSelectors: {},
};
export const NODES: ResourceType = {
  resource: 'nodes', singular: 'node', kind: 'Node', group: '', version: 'v1', namespaced: false,
  shortNames: ['no'], categories: [], subresources: ['status'], createOnUpdate: false,
  fieldSelectors: { 'spec.unschedulable': (o) => field(o, 'spec', 'unschedulable') || 'false' },
};
export const NAMESPACES: ResourceType = {
  resource: 'namespaces', singular: 'namespace', kind: 'Namespace', group: '', version: 'v1', namespaced: false,
  shortNames: ['ns'], categories: [], subresources: ['status'], createOnUpdate: false,
  fieldSelectors: { 'status.phase': (o) => field(o, 'status', 'phase') },
};
export const ENDPOINT_SLICES: ResourceType = {
  resource: 'endpointslices', singular: 'endpointslice', kind: 'EndpointSlice', group: 'discovery.k8s.io', version: 'v1', namespaced: true,
  shortNames: [], categories: [], subresources: [], createOnUpdate: false,
  fieldSelectors: { addressType: (o) => field(o, 'addressType') },
};

export const PODS: ResourceType = {
  resource: 'pods', singular: 'pod', kind: 'Pod', group: '', version: 'v1', namespaced: true,
  shortNames: ['po'], categories: ['all'], subresources: ['status'], createOnUpdate: false,
  // pkg/registry/core/pod: PodToSelectableFields.
  fieldSelectors: {
    'spec.nodeName': (o) => field(o, 'spec', 'nodeName'),
    'spec.restartPolicy': (o) => field(o, 'spec', 'restartPolicy'),
    'spec.schedulerName': (o) => field(o, 'spec', 'schedulerName'),
    'spec.serviceAccountName': (o) => field(o, 'spec', 'serviceAccountName'),
    'spec.hostNetwork': (o) => field(o, 'spec', 'hostNetwork') || 'false',
    'status.phase': (o) => field(o, 'status', 'phase'),
    'status.podIP': (o) => field(o, 'status', 'podIP'),
    'status.nominatedNodeName': (o) => field(o, 'status', 'nominatedNodeName'),
  },
};
export const DEPLOYMENTS: ResourceType = {
  resource: 'deployments', singular: 'deployment', kind: 'Deployment', group: 'apps', version: 'v1', namespaced: true,
  shortNames: ['deploy'], categories: ['all'], subresources: ['scale', 'status'], createOnUpdate: false, fieldSelectors: {},
};
export const REPLICA_SETS: ResourceType = {
  resource: 'replicasets', singular: 'replicaset', kind: 'ReplicaSet', group: 'apps', version: 'v1', namespaced: true,
  shortNames: ['rs'], categories: ['all'], subresources: ['scale', 'status'], createOnUpdate: false,
  // pkg/registry/apps/replicaset: ReplicaSetToSelectableFields adds status.replicas.
  fieldSelectors: { 'status.replicas': (o) => field(o, 'status', 'replicas') || '0' },
};
export const STATEFUL_SETS: ResourceType = {
  resource: 'statefulsets', singular: 'statefulset', kind: 'StatefulSet', group: 'apps', version: 'v1', namespaced: true,
  shortNames: ['sts'], categories: ['all'], subresources: ['scale', 'status'], createOnUpdate: false, fieldSelectors: {},
};
export const DAEMON_SETS: ResourceType = {
  resource: 'daemonsets', singular: 'daemonset', kind: 'DaemonSet', group: 'apps', version: 'v1', namespaced: true,
  shortNames: ['ds'], categories: ['all'], subresources: ['status'], createOnUpdate: false, fieldSelectors: {},
};

export const SERVICE_CIDRS: ResourceType = {
  resource: 'servicecidrs', singular: 'servicecidr', kind: 'ServiceCIDR', group: 'networking.k8s.io', version: 'v1', namespaced: false,
  shortNames: [], categories: [], subresources: ['status'], createOnUpdate: false, fieldSelectors: {},
};

/** The apps/v1 workloads, in the order their controllers run. */
export const WORKLOAD_RESOURCES: readonly ResourceType[] = [DEPLOYMENTS, REPLICA_SETS, STATEFUL_SETS, DAEMON_SETS];

/**
 * In the order discovery lists them and the store keeps them. Pods come before Services and the
 * apps group is in name order, as on a real server, so `kubectl get all` prints them in its order.
 */
export const RESOURCES: readonly ResourceType[] = [NAMESPACES, PODS, SERVICES, ENDPOINTS, NODES, DAEMON_SETS, DEPLOYMENTS, REPLICA_SETS, STATEFUL_SETS, ENDPOINT_SLICES, SERVICE_CIDRS];

/** "v1" or "discovery.k8s.io/v1". */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** "services" or "endpointslices.discovery.k8s.io", as Status messages name a resource. */
export function qualifiedResource(type: ResourceType): string {
  return type.group === '' ? type.resource : `${type.resource}.${type.group}`;
}

export function findResource(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

/** The group-versions served, core first: [{group: '', version: 'v1'}, ...]. */
export function groupVersions(): { group: string; version: string }[] {
  const seen = new Map<string, { group: string; version: string }>();
  for (const r of RESOURCES) seen.set(apiVersionOf(r), { group: r.group, version: r.version });
  return [...seen.values()];
}
