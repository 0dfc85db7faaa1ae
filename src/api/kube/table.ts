/**
 * Server-side printing: the `Table` kubectl asks for with `Accept: ...;as=Table;g=meta.k8s.io`,
 * with the columns the real server prints for these kinds (kubernetes
 * pkg/printers/internalversion/printers.go: printService, printEndpoints, printNode,
 * printNamespace, printEndpointSlice) and ages as apimachinery's duration.HumanDuration writes them.
 * Each row carries the object's metadata (PartialObjectMetadata), which kubectl needs for the
 * NAMESPACE column of `-A` and for `--show-labels`.
 */
import type { Json, JsonObject } from '../../model/fields.js';
import { isObject } from '../../model/fields.js';
import { ENDPOINTS, ENDPOINT_SLICES, NAMESPACES, NODES, type ResourceType, SERVICE_CIDRS, SERVICES } from './resources.js';

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

const COLUMNS = new Map<ResourceType, TableColumn[]>([
  [SERVICES, [NAME, col('Type', 'type determines how the Service is exposed.'), col('Cluster-IP', 'clusterIP is the IP address of the service.'), col('External-IP', 'The external IP addresses of the service.'), col('Port(s)', 'The ports that are exposed by this service.'), AGE, col('Selector', 'Route service traffic to pods with label keys and values matching this selector.', 1)]],
  [ENDPOINTS, [NAME, col('Endpoints', 'Endpoints of the service.'), AGE]],
  [NODES, [NAME, col('Status', 'The status of the node.'), col('Roles', 'The roles of the node.'), AGE, col('Version', 'Kubelet version.'), col('Internal-IP', 'The internal IP of the node.', 1), col('External-IP', 'The external IP of the node.', 1), col('OS-Image', 'OS image reported by the node.', 1), col('Kernel-Version', 'Kernel version reported by the node.', 1), col('Container-Runtime', 'Container runtime reported by the node.', 1)]],
  [NAMESPACES, [NAME, col('Status', 'The status of the namespace.'), AGE]],
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

const CELLS = new Map<ResourceType, (obj: JsonObject, now: number) => Json[]>([
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
