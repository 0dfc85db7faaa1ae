/**
 * v1 Pod as stored (kubectl get pods -o yaml): what the EndpointSlice controller reads (labels,
 * addresses, readiness, deletion, container ports, node, hostname) and what the scheduler and
 * the kubelet need to place a pod that has not been placed yet (--allocate).
 */
import { normalizeIP } from '../util/ip.js';
import { child, type FieldReader, type Json, type JsonObject, isObject } from './fields.js';
import { readNodeSelectorTerms } from './label-selector.js';
import { readMetadata, readOwnerReferences } from './metadata.js';
import { PROTOCOLS } from './service.js';
import { type SharedValues, exactList } from './shared-values.js';
import type { ContainerPort, Pod, PodSpec, Protocol, TaintEffect, Toleration } from './types.js';

export const TAINT_EFFECTS: readonly TaintEffect[] = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

/**
 * Scheduling fields kpsim reads past without modelling: a pod that uses them is placed as if
 * they were not there, and kpsim says so.
 */
const UNMODELLED_SPEC_FIELDS: readonly (readonly string[])[] = [
  ['affinity', 'podAffinity'],
  ['affinity', 'podAntiAffinity'],
  ['affinity', 'nodeAffinity', 'preferredDuringSchedulingIgnoredDuringExecution'],
  ['topologySpreadConstraints'],
  ['schedulingGates'],
];
const UNMODELLED_SPEC_NAMES: readonly string[] = UNMODELLED_SPEC_FIELDS.map((fields) => fields.join('.'));

export function decodePod(doc: JsonObject, r: FieldReader): Pod | undefined {
  const meta = readMetadata(doc, r, 'Pod', true);
  if (!meta) return undefined;
  // Loaded by name, handed to the reader only when not plainly set (as in readPodSpec).
  const specValue = doc['spec'];
  const statusValue = doc['status'];
  const specObject = isObject(specValue) ? specValue : (r.object_(doc, 'spec', '') ?? {});
  const status = isObject(statusValue) ? statusValue : (r.object_(doc, 'status', '') ?? {});
  // The port list is shared as a whole below, which shares each port of a list it keeps.
  const spec = readPodSpec(specObject, 'spec', r, false);
  if (r.shared !== undefined) {
    spec.nodeSelector = r.shared.stringMap(spec.nodeSelector);
    spec.tolerations = r.shared.list(spec.tolerations);
    spec.unmodelled = r.shared.list(spec.unmodelled);
    spec.ports = r.shared.containerPorts(spec.ports);
  }
  const podIPs = readPodIPs(status, r);
  const phaseValue = status['phase'];
  const conditionsValue = status['conditions'];
  const phase = typeof phaseValue === 'string' ? phaseValue : (r.string(status, 'phase', 'status') ?? '');
  const readyCondition = findReadyCondition(Array.isArray(conditionsValue) ? conditionsValue : r.list(status, 'conditions', 'status'));
  const ready = readyCondition !== undefined;
  // metadataString and hasMetadataField, each field loaded by its name.
  const metaValue = doc['metadata'];
  const metaObject = isObject(metaValue) ? metaValue : undefined;
  const uidValue = metaObject?.['uid'];
  const creationTimestampValue = metaObject?.['creationTimestamp'];
  const deletionTimestampValue = metaObject?.['deletionTimestamp'];
  const uid = typeof uidValue === 'string' && uidValue !== '' ? uidValue : undefined;
  const creationTimestamp = typeof creationTimestampValue === 'string' && creationTimestampValue !== '' ? creationTimestampValue : undefined;
  const readySince = typeof readyCondition?.['lastTransitionTime'] === 'string' ? readyCondition['lastTransitionTime'] : undefined;
  const restarts = mostRestarts(status['containerStatuses']);
  const pod: Pod = {
    kind: 'Pod',
    origin: { file: r.file, object: r.object },
    namespace: meta.namespace,
    name: meta.name,
    labels: r.shared?.stringMap(meta.labels) ?? meta.labels,
    annotations: r.shared?.stringMap(meta.annotations) ?? meta.annotations,
    ownerReferences: readOwnerReferences(doc, r),
    spec,
    podIPs,
    phase,
    ready,
    terminating: deletionTimestampValue !== undefined && deletionTimestampValue !== null,
  };
  // Set one by one rather than spread from little objects: 150,000 pods made 4 such objects each.
  if (uid !== undefined) pod.uid = uid;
  if (creationTimestamp !== undefined) pod.creationTimestamp = creationTimestamp;
  if (readySince !== undefined) pod.readySince = readySince;
  if (restarts > 0) pod.restarts = restarts;
  return pod;
}

/** The Ready condition when it is True. */
function findReadyCondition(conditions: Json[]): JsonObject | undefined {
  for (const c of conditions) if (isObject(c) && c['type'] === 'Ready' && c['status'] === 'True') return c;
  return undefined;
}

/** The most restarts of any container (status.containerStatuses[].restartCount); 0 when none say. */
function mostRestarts(statuses: Json | undefined): number {
  let most = 0;
  if (!Array.isArray(statuses)) return most;
  for (const c of statuses) most = Math.max(most, isObject(c) && typeof c['restartCount'] === 'number' ? c['restartCount'] : 0);
  return most;
}

/**
 * status.podIPs, with status.podIP authoritative for the first address: the API server's
 * conversion keeps only podIP when the two disagree, and fills podIPs from podIP when only it is set.
 * A list of exactly its addresses.
 */
function readPodIPs(status: JsonObject, r: FieldReader): string[] {
  const podIP = status['podIP'] === undefined || status['podIP'] === null || status['podIP'] === '' ? undefined : r.ip(status['podIP'], 'status.podIP');
  const podIPsValue = status['podIPs'];
  const entries = Array.isArray(podIPsValue) ? podIPsValue : r.list(status, 'podIPs', 'status');
  const listed: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    // An address in normal form is taken as it is; the field path is made only for a problem.
    const text = isObject(entry) ? entry['ip'] : undefined;
    const ip = typeof text === 'string' ? normalizeIP(text) : undefined;
    if (ip !== undefined) {
      listed.push(text === ip ? text : ip);
      continue;
    }
    if (isObject(entry)) r.ip(text, child(child('status.podIPs', i), 'ip'));
    else r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child('status.podIPs', i), 'is not an object');
  }
  if (podIP !== undefined && (listed.length === 0 || listed[0] !== podIP)) return [podIP];
  return exactList(listed);
}

/**
 * A PodSpec (a Pod's spec, or a workload's spec.template.spec) at `path`. `sharePorts`: each
 * container port is made the shared one (r.shared) as it is read; false for a caller that
 * shares the list as a whole.
 */
export function readPodSpec(spec: JsonObject, path: string, r: FieldReader, sharePorts = true): PodSpec {
  // Each field is loaded here by its name, and handed to the reader only when it is not plainly
  // set or absent (the reader's load, by a key that changes from call to call, is a slow one).
  const nodeNameValue = spec['nodeName'];
  const hostnameValue = spec['hostname'];
  const subdomainValue = spec['subdomain'];
  const hostNetworkValue = spec['hostNetwork'];
  const nodeName = typeof nodeNameValue === 'string' ? nodeNameValue : (r.string(spec, 'nodeName', path) ?? '');
  const hostname = typeof hostnameValue === 'string' ? hostnameValue : (r.string(spec, 'hostname', path) ?? '');
  const subdomain = typeof subdomainValue === 'string' ? subdomainValue : (r.string(spec, 'subdomain', path) ?? '');
  const hostNetwork = typeof hostNetworkValue === 'boolean' ? hostNetworkValue : (r.boolean(spec, 'hostNetwork', path) ?? false);
  const nodeSelector = spec['nodeSelector'] === undefined ? {} : r.stringMap(spec, 'nodeSelector', path);
  const tolerationValues = spec['tolerations'] === undefined ? [] : r.list(spec, 'tolerations', path);
  const tolerations: Toleration[] = [];
  for (let i = 0; i < tolerationValues.length; i++) {
    const toleration = readToleration(tolerationValues[i]!, child(child(path, 'tolerations'), i), r);
    if (toleration !== undefined) tolerations.push(toleration);
  }
  const ports: ContainerPort[] = [];
  const shared = sharePorts ? r.shared : undefined;
  readContainerPorts(spec, 'containers', path, r, false, shared, ports);
  // Sidecars (init containers that keep running) serve ports too; FindPort looks there last.
  if (spec['initContainers'] !== undefined) readContainerPorts(spec, 'initContainers', path, r, true, shared, ports);
  const unmodelled: string[] = [];
  if (spec['affinity'] !== undefined || spec['topologySpreadConstraints'] !== undefined || spec['schedulingGates'] !== undefined) {
    for (let i = 0; i < UNMODELLED_SPEC_FIELDS.length; i++) if (present(spec, UNMODELLED_SPEC_FIELDS[i]!)) unmodelled.push(UNMODELLED_SPEC_NAMES[i]!);
  }
  const podSpec: PodSpec = {
    nodeName,
    hostname,
    subdomain,
    hostNetwork,
    nodeSelector,
    tolerations: tolerations.length === 0 ? tolerations : exactList(tolerations),
    ports: exactList(ports),
    unmodelled: unmodelled.length === 0 ? unmodelled : exactList(unmodelled),
  };
  const affinity = spec['affinity'] === undefined ? undefined : r.object_(spec, 'affinity', path);
  const nodeAffinity = affinity ? r.object_(affinity, 'nodeAffinity', child(path, 'affinity')) : undefined;
  const required = nodeAffinity ? r.object_(nodeAffinity, 'requiredDuringSchedulingIgnoredDuringExecution', child(path, 'affinity.nodeAffinity')) : undefined;
  if (required) podSpec.requiredNodeAffinity = readNodeSelectorTerms(required, 'nodeSelectorTerms', child(path, 'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution'), r);
  return podSpec;
}

function present(spec: JsonObject, fields: readonly string[]): boolean {
  let value: Json | undefined = spec;
  for (const field of fields) {
    if (!isObject(value)) return false;
    value = value[field];
  }
  return value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0);
}

/**
 * The ports of spec[key]'s containers, appended to `out` (only the sidecars' when `sidecarsOnly`:
 * init containers with restartPolicy Always).
 */
function readContainerPorts(spec: JsonObject, key: 'containers' | 'initContainers', path: string, r: FieldReader, sidecarsOnly: boolean, shared: SharedValues | undefined, out: ContainerPort[]): void {
  const containers = r.list(spec, key, path);
  for (let i = 0; i < containers.length; i++) {
    const c = containers[i]!;
    if (!isObject(c)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(child(path, key), i), 'is not an object');
      continue;
    }
    if (sidecarsOnly && c['restartPolicy'] !== 'Always') continue;
    const portValues = Array.isArray(c['ports']) ? c['ports'] : r.list(c, 'ports', child(child(path, key), i));
    for (let j = 0; j < portValues.length; j++) {
      const p = portValues[j]!;
      // A port as the API server stores it is taken as it is; any other goes the way that reports
      // what is wrong with it (its field path made only then).
      const port = plainContainerPort(p) ?? readContainerPort(p, child(child(child(child(path, key), i), 'ports'), j), r);
      if (port !== undefined) out.push(shared?.containerPort(port) ?? port);
    }
  }
}

/** The port when it has nothing readContainerPort would report: a port number, a known protocol or none, a name or none. */
function plainContainerPort(p: Json): ContainerPort | undefined {
  if (!isObject(p)) return undefined;
  const containerPort = p['containerPort'];
  if (typeof containerPort !== 'number' || !Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535) return undefined;
  const protocol = p['protocol'];
  const name = p['name'];
  const nameText = name === undefined || name === null ? '' : typeof name === 'string' ? name : undefined;
  if (nameText === undefined) return undefined;
  if (protocol === undefined || protocol === null || protocol === '') return { name: nameText, containerPort, protocol: 'TCP' };
  if (protocol === 'TCP' || protocol === 'UDP' || protocol === 'SCTP') return { name: nameText, containerPort, protocol };
  return undefined;
}

function readContainerPort(p: Json, portPath: string, r: FieldReader): ContainerPort | undefined {
  if (!isObject(p)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', portPath, 'is not an object');
    return undefined;
  }
  const containerPort = r.port(p, 'containerPort', portPath);
  if (containerPort === undefined) {
    if (p['containerPort'] === undefined) r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', child(portPath, 'containerPort'), 'Required value');
    return undefined;
  }
  // The API server always defaults a container port's protocol to TCP.
  const protocolText = r.string(p, 'protocol', portPath) ?? 'TCP';
  if (!(PROTOCOLS as readonly string[]).includes(protocolText)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(portPath, 'protocol'), `${JSON.stringify(protocolText)} is not one of ${PROTOCOLS.join(', ')}`);
    return undefined;
  }
  return { name: r.string(p, 'name', portPath) ?? '', containerPort, protocol: protocolText as Protocol };
}

function readToleration(value: Json, path: string, r: FieldReader): Toleration | undefined {
  if (!isObject(value)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const key = r.string(value, 'key', path) ?? '';
  const operator = r.oneOf(value, 'operator', path, ['Equal', 'Exists'] as const, 'Equal');
  const effect = r.oneOf(value, 'effect', path, ['', ...TAINT_EFFECTS] as const, '');
  return { key, operator, value: r.string(value, 'value', path) ?? '', effect };
}
