/**
 * Server-side printing: the `Table` kubectl asks for with `Accept: ...;as=Table;g=meta.k8s.io`,
 * with the columns the real server prints for these kinds (kubernetes
 * pkg/printers/internalversion/printers.go: printService, printEndpoints, printNode,
 * printNamespace, printEndpointSlice, printPod, printDeployment, printReplicaSet,
 * printStatefulSet, printDaemonSet) and ages as apimachinery's duration.HumanDuration writes them.
 * Each row carries the object's metadata (PartialObjectMetadata), which kubectl needs for the
 * NAMESPACE column of `-A` and for `--show-labels`.
 */
import type { Json, JsonObject } from '../../model/fields.js';
import { isObject } from '../../model/fields.js';
import { formatSelectorJson } from './scale.js';
import { DAEMON_SETS, DEPLOYMENTS, ENDPOINTS, ENDPOINT_SLICES, NAMESPACES, NODES, PODS, REPLICA_SETS, type ResourceType, SERVICE_CIDRS, SERVICES, STATEFUL_SETS } from './resources.js';

export interface TableColumn {
  name: string;
  type: 'string' | 'integer';
  format: string;
  description: string;
  priority: number;
}

export type IncludeObject = 'None' | 'Object' | 'PartialObjectMetadata';

const NAME: TableColumn = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 };
const AGE: TableColumn = { name: 'Age', type: 'string', format: '', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0 };

function col(name: string, description: string, priority = 0): TableColumn {
  return { name, type: 'string', format: '', description, priority };
}

function intCol(name: string, description: string, priority = 0): TableColumn {
  return { name, type: 'integer', format: '', description, priority };
}

const CONTAINERS = col('Containers', 'Names of each container in the template.', 1);
const IMAGES = col('Images', 'Images referenced by each container in the template.', 1);
const SELECTOR = col('Selector', 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.', 1);

const COLUMNS = new Map<ResourceType, TableColumn[]>([
  [SERVICES, [NAME, col('Type', 'type determines how the Service is exposed.'), col('Cluster-IP', 'clusterIP is the IP address of the service.'), col('External-IP', 'The external IP addresses of the service.'), col('Port(s)', 'The ports that are exposed by this service.'), AGE, col('Selector', 'Route service traffic to pods with label keys and values matching this selector.', 1)]],
  [ENDPOINTS, [NAME, col('Endpoints', 'Endpoints of the service.'), AGE]],
  [NODES, [NAME, col('Status', 'The status of the node.'), col('Roles', 'The roles of the node.'), AGE, col('Version', 'Kubelet version.'), col('Internal-IP', 'The internal IP of the node.', 1), col('External-IP', 'The external IP of the node.', 1), col('OS-Image', 'OS image reported by the node.', 1), col('Kernel-Version', 'Kernel version reported by the node.', 1), col('Container-Runtime', 'Container runtime reported by the node.', 1)]],
  [NAMESPACES, [NAME, col('Status', 'The status of the namespace.'), AGE]],
  [PODS, [NAME, col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'), col('Status', 'The aggregate status of the containers in this pod.'), col('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'), AGE, col('IP', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1), col('Node', 'NodeName is a request to schedule this pod onto a specific node.', 1), col('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node.', 1), col('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', 1)]],
  [DEPLOYMENTS, [NAME, col('Ready', 'Number of the pod with ready state'), intCol('Up-to-date', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'), intCol('Available', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'), AGE, CONTAINERS, IMAGES, SELECTOR]],
  [REPLICA_SETS, [NAME, intCol('Desired', 'Replicas is the number of desired replicas.'), intCol('Current', 'Replicas is the most recently observed number of replicas.'), intCol('Ready', 'The number of ready replicas for this replica set.'), AGE, CONTAINERS, IMAGES, SELECTOR]],
  [STATEFUL_SETS, [NAME, col('Ready', 'Number of the pod with ready state'), AGE, CONTAINERS, IMAGES]],
  [DAEMON_SETS, [NAME, intCol('Desired', 'The total number of nodes that should be running the daemon pod.'), intCol('Current', 'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.'), intCol('Ready', 'numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.'), intCol('Up-to-date', 'The total number of nodes that are running updated daemon pod'), intCol('Available', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)'), col('Node Selector', 'NodeSelector is a selector which must be true for the pod to fit on a node.'), AGE, CONTAINERS, IMAGES, SELECTOR]],
  [ENDPOINT_SLICES, [NAME, col('AddressType', 'addressType specifies the type of address carried by this EndpointSlice.'), col('Ports', 'ports specifies the list of network ports exposed by each endpoint in this slice.'), col('Endpoints', 'endpoints is a list of unique endpoints in this slice.'), AGE]],
  // pkg/printers/internalversion printServiceCIDR.
  [SERVICE_CIDRS, [NAME, col('CIDRs', 'CIDRs defines the IP blocks in CIDR notation (e.g. "192.168.0.0/24" or "2001:db8::/64") from which to assign service cluster IPs.'), AGE]],
]);

/**
 * apimachinery pkg/util/duration HumanDuration: seconds up to two minutes, then minutes (with
 * seconds under ten minutes), hours (with minutes under eight hours), days, years.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.trunc(hours / 24) % 365;
    return days === 0 ? `${Math.trunc(hours / 24 / 365)}y` : `${Math.trunc(hours / 24 / 365)}y${days}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

function get(obj: Json | undefined, ...path: (string | number)[]): Json | undefined {
  let value: Json | undefined = obj;
  for (const key of path) {
    if (typeof key === 'number') value = Array.isArray(value) ? value[key] : undefined;
    else value = isObject(value) ? value[key] : undefined;
  }
  return value;
}

function str(value: Json | undefined): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

function list(value: Json | undefined): Json[] {
  return Array.isArray(value) ? value : [];
}

function age(obj: JsonObject, now: number): string {
  const created = str(get(obj, 'metadata', 'creationTimestamp'));
  const t = Date.parse(created);
  return created === '' || Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

function serviceCells(svc: JsonObject, now: number): Json[] {
  const type = str(get(svc, 'spec', 'type')) || 'ClusterIP';
  const clusterIPs = list(get(svc, 'spec', 'clusterIPs')).map(str);
  const internalIP = clusterIPs[0] ?? (str(get(svc, 'spec', 'clusterIP')) || '<none>');
  const externalIPs = list(get(svc, 'spec', 'externalIPs')).map(str);
  const ingress = list(get(svc, 'status', 'loadBalancer', 'ingress')).map((i) => str(get(i, 'ip')) || str(get(i, 'hostname'))).filter((s) => s !== '');
  let external: string;
  if (type === 'LoadBalancer') {
    const all = [...ingress, ...externalIPs];
    external = all.length > 0 ? all.join(',') : '<pending>';
  } else if (type === 'ExternalName') {
    external = str(get(svc, 'spec', 'externalName'));
  } else {
    external = externalIPs.length > 0 ? externalIPs.join(',') : '<none>';
  }
  const ports = list(get(svc, 'spec', 'ports')).map((p) => {
    const nodePort = get(p, 'nodePort');
    const protocol = str(get(p, 'protocol')) || 'TCP';
    return nodePort !== undefined && nodePort !== 0 ? `${str(get(p, 'port'))}:${str(nodePort)}/${protocol}` : `${str(get(p, 'port'))}/${protocol}`;
  });
  const selector = get(svc, 'spec', 'selector');
  const selectorText = isObject(selector) && Object.keys(selector).length > 0 ? Object.entries(selector).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${str(v)}`).join(',') : '<none>';
  return [str(get(svc, 'metadata', 'name')), type, internalIP, external, ports.length > 0 ? ports.join(',') : '<none>', age(svc, now), selectorText];
}

/** At most three "ip:port" (or addresses) and "+ N more..." (printers.go formatEndpoints). */
function firstThree(items: string[]): string {
  if (items.length === 0) return '<none>';
  const shown = items.slice(0, 3).join(',');
  return items.length > 3 ? `${shown} + ${items.length - 3} more...` : shown;
}

function endpointsCells(ep: JsonObject, now: number): Json[] {
  const items: string[] = [];
  for (const subset of list(get(ep, 'subsets'))) {
    const ports = list(get(subset, 'ports'));
    for (const address of list(get(subset, 'addresses'))) {
      const ip = str(get(address, 'ip'));
      if (ports.length === 0) items.push(ip);
      for (const port of ports) items.push(ip.includes(':') ? `[${ip}]:${str(get(port, 'port'))}` : `${ip}:${str(get(port, 'port'))}`);
    }
  }
  return [str(get(ep, 'metadata', 'name')), firstThree(items), age(ep, now)];
}

function nodeCells(node: JsonObject, now: number): Json[] {
  const ready = list(get(node, 'status', 'conditions')).find((c) => str(get(c, 'type')) === 'Ready');
  const statuses = [ready === undefined ? 'Unknown' : str(get(ready, 'status')) === 'True' ? 'Ready' : 'NotReady'];
  if (get(node, 'spec', 'unschedulable') === true) statuses.push('SchedulingDisabled');
  const labels = get(node, 'metadata', 'labels');
  const roles = isObject(labels)
    ? Object.keys(labels)
        .flatMap((k) => (k.startsWith('node-role.kubernetes.io/') ? [k.slice('node-role.kubernetes.io/'.length)] : k === 'kubernetes.io/role' ? [str(labels[k])] : []))
        .filter((r) => r !== '')
        .sort()
    : [];
  const address = (type: string): string => str(get(list(get(node, 'status', 'addresses')).find((a) => str(get(a, 'type')) === type), 'address')) || '<none>';
  const info = (key: string): string => str(get(node, 'status', 'nodeInfo', key)) || '<unknown>';
  return [
    str(get(node, 'metadata', 'name')),
    statuses.join(','),
    roles.length > 0 ? roles.join(',') : '<none>',
    age(node, now),
    str(get(node, 'status', 'nodeInfo', 'kubeletVersion')),
    address('InternalIP'),
    address('ExternalIP'),
    info('osImage'),
    info('kernelVersion'),
    info('containerRuntimeVersion'),
  ];
}

function namespaceCells(ns: JsonObject, now: number): Json[] {
  return [str(get(ns, 'metadata', 'name')), str(get(ns, 'status', 'phase')), age(ns, now)];
}

function endpointSliceCells(slice: JsonObject, now: number): Json[] {
  const ports = list(get(slice, 'ports')).map((p) => str(get(p, 'port'))).filter((p) => p !== '');
  const addresses = list(get(slice, 'endpoints')).flatMap((e) => list(get(e, 'addresses')).map(str));
  return [str(get(slice, 'metadata', 'name')), str(get(slice, 'addressType')), ports.length > 0 ? ports.join(',') : '<unset>', firstThree(addresses), age(slice, now)];
}

function serviceCIDRCells(cidr: JsonObject, now: number): Json[] {
  return [str(get(cidr, 'metadata', 'name')), list(get(cidr, 'spec', 'cidrs')).map(str).join(','), age(cidr, now)];
}

function int(value: Json | undefined): number {
  return typeof value === 'number' ? value : 0;
}

/** printPod: ready containers of all, the reason or phase ("Terminating" once deleted), restarts, IP and node. */
function podCells(pod: JsonObject, now: number): Json[] {
  const containers = list(get(pod, 'spec', 'containers'));
  const statuses = list(get(pod, 'status', 'containerStatuses'));
  const ready = statuses.filter((c) => get(c, 'ready') === true).length;
  const restarts = statuses.reduce<number>((n, c) => n + int(get(c, 'restartCount')), 0);
  let reason = str(get(pod, 'status', 'reason')) || str(get(pod, 'status', 'phase')) || 'Pending';
  for (const c of statuses) {
    const waiting = str(get(c, 'state', 'waiting', 'reason'));
    if (waiting !== '') reason = waiting;
  }
  if (get(pod, 'metadata', 'deletionTimestamp') !== undefined && get(pod, 'metadata', 'deletionTimestamp') !== null) reason = 'Terminating';
  const gates = list(get(pod, 'spec', 'readinessGates'));
  const conditions = list(get(pod, 'status', 'conditions'));
  const gatesTrue = gates.filter((g) => conditions.some((c) => str(get(c, 'type')) === str(get(g, 'conditionType')) && str(get(c, 'status')) === 'True')).length;
  return [
    str(get(pod, 'metadata', 'name')),
    `${ready}/${containers.length}`,
    reason,
    String(restarts),
    age(pod, now),
    str(get(pod, 'status', 'podIP')) || '<none>',
    str(get(pod, 'spec', 'nodeName')) || '<none>',
    str(get(pod, 'status', 'nominatedNodeName')) || '<none>',
    gates.length > 0 ? `${gatesTrue}/${gates.length}` : '<none>',
  ];
}

/** The wide columns of a workload: its template's container names and images, its selector. */
function templateCells(obj: JsonObject): { containers: string; images: string; selector: string } {
  const containers = list(get(obj, 'spec', 'template', 'spec', 'containers'));
  return {
    containers: containers.map((c) => str(get(c, 'name'))).join(','),
    images: containers.map((c) => str(get(c, 'image'))).join(','),
    selector: formatSelectorJson(get(obj, 'spec', 'selector')),
  };
}

function deploymentCells(d: JsonObject, now: number): Json[] {
  const t = templateCells(d);
  const replicas = get(d, 'spec', 'replicas');
  return [str(get(d, 'metadata', 'name')), `${int(get(d, 'status', 'readyReplicas'))}/${typeof replicas === 'number' ? replicas : 1}`, int(get(d, 'status', 'updatedReplicas')), int(get(d, 'status', 'availableReplicas')), age(d, now), t.containers, t.images, t.selector];
}

function replicaSetCells(rs: JsonObject, now: number): Json[] {
  const t = templateCells(rs);
  const replicas = get(rs, 'spec', 'replicas');
  return [str(get(rs, 'metadata', 'name')), typeof replicas === 'number' ? replicas : 1, int(get(rs, 'status', 'replicas')), int(get(rs, 'status', 'readyReplicas')), age(rs, now), t.containers, t.images, t.selector];
}

function statefulSetCells(set: JsonObject, now: number): Json[] {
  const t = templateCells(set);
  const replicas = get(set, 'spec', 'replicas');
  return [str(get(set, 'metadata', 'name')), `${int(get(set, 'status', 'readyReplicas'))}/${typeof replicas === 'number' ? replicas : 1}`, age(set, now), t.containers, t.images];
}

function daemonSetCells(ds: JsonObject, now: number): Json[] {
  const t = templateCells(ds);
  const nodeSelector = get(ds, 'spec', 'template', 'spec', 'nodeSelector');
  const selectorText = isObject(nodeSelector) && Object.keys(nodeSelector).length > 0 ? Object.keys(nodeSelector).sort().map((k) => `${k}=${str(nodeSelector[k])}`).join(',') : '<none>';
  const status = (key: string): number => int(get(ds, 'status', key));
  return [str(get(ds, 'metadata', 'name')), status('desiredNumberScheduled'), status('currentNumberScheduled'), status('numberReady'), status('updatedNumberScheduled'), status('numberAvailable'), selectorText, age(ds, now), t.containers, t.images, t.selector];
}

const CELLS = new Map<ResourceType, (obj: JsonObject, now: number) => Json[]>([
  [PODS, podCells],
  [DEPLOYMENTS, deploymentCells],
  [REPLICA_SETS, replicaSetCells],
  [STATEFUL_SETS, statefulSetCells],
  [DAEMON_SETS, daemonSetCells],
  [SERVICES, serviceCells],
  [ENDPOINTS, endpointsCells],
  [NODES, nodeCells],
  [NAMESPACES, namespaceCells],
  [ENDPOINT_SLICES, endpointSliceCells],
  [SERVICE_CIDRS, serviceCIDRCells],
]);

function rowObject(obj: JsonObject, include: IncludeObject): Json | undefined {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: get(obj, 'metadata') ?? {} };
}

/** A Table of `objects`; `resourceVersion` and `continueToken` go in its metadata as in a list. */
export function toTable(
  type: ResourceType,
  objects: readonly JsonObject[],
  options: { now: number; include: IncludeObject; resourceVersion?: string; continueToken?: string; withColumns?: boolean },
): JsonObject {
  const cells = CELLS.get(type)!;
  const rows = objects.map((obj) => {
    const object = rowObject(obj, options.include);
    return { cells: cells(obj, options.now), ...(object !== undefined ? { object } : {}) } as JsonObject;
  });
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: {
      ...(options.resourceVersion !== undefined ? { resourceVersion: options.resourceVersion } : {}),
      ...(options.continueToken ? { continue: options.continueToken } : {}),
    },
    ...(options.withColumns === false ? {} : { columnDefinitions: COLUMNS.get(type)! as unknown as Json }),
    rows,
  };
}
