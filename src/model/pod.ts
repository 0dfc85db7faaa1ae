/**
 * v1 Pod as stored (kubectl get pods -o yaml): what the EndpointSlice controller reads (labels,
 * addresses, readiness, deletion, container ports, node, hostname) and what the scheduler and
 * the kubelet need to place a pod that has not been placed yet (--allocate).
 */
import { child, type FieldReader, type Json, type JsonObject, isObject } from './fields.js';
import { readNodeSelectorTerms } from './label-selector.js';
import { hasMetadataField, metadataString, readMetadata, readOwnerReferences } from './metadata.js';
import { PROTOCOLS } from './service.js';
import { exactList } from './shared-values.js';
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

export function decodePod(doc: JsonObject, r: FieldReader): Pod | undefined {
  const meta = readMetadata(doc, r, 'Pod', true);
  if (!meta) return undefined;
  const specObject = r.object_(doc, 'spec', '') ?? {};
  const status = r.object_(doc, 'status', '') ?? {};
  const spec = readPodSpec(specObject, 'spec', r);
  if (r.shared !== undefined) {
    spec.nodeSelector = r.shared.stringMap(spec.nodeSelector);
    spec.tolerations = r.shared.list(spec.tolerations);
    spec.unmodelled = r.shared.list(spec.unmodelled);
    spec.ports = r.shared.containerPorts(spec.ports);
  }
  const podIPs = readPodIPs(status, r);
  const phase = r.string(status, 'phase', 'status') ?? '';
  const readyCondition = r.list(status, 'conditions', 'status').find((c): c is JsonObject => isObject(c) && c['type'] === 'Ready' && c['status'] === 'True');
  const ready = readyCondition !== undefined;
  const uid = metadataString(doc, 'uid');
  const creationTimestamp = metadataString(doc, 'creationTimestamp');
  const readySince = typeof readyCondition?.['lastTransitionTime'] === 'string' ? readyCondition['lastTransitionTime'] : undefined;
  const restarts = (Array.isArray(status['containerStatuses']) ? status['containerStatuses'] : []).reduce<number>((most, c) => Math.max(most, isObject(c) && typeof c['restartCount'] === 'number' ? c['restartCount'] : 0), 0);
  return {
    kind: 'Pod',
    origin: { file: r.file, object: r.object },
    namespace: meta.namespace,
    name: meta.name,
    labels: r.shared?.stringMap(meta.labels) ?? meta.labels,
    annotations: r.shared?.stringMap(meta.annotations) ?? meta.annotations,
    ownerReferences: readOwnerReferences(doc, r),
    spec,
    podIPs: exactList(podIPs),
    phase,
    ready,
    terminating: hasMetadataField(doc, 'deletionTimestamp'),
    ...(uid !== undefined ? { uid } : {}),
    ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
    ...(readySince !== undefined ? { readySince } : {}),
    ...(restarts > 0 ? { restarts } : {}),
  };
}

/**
 * status.podIPs, with status.podIP authoritative for the first address: the API server's
 * conversion keeps only podIP when the two disagree, and fills podIPs from podIP when only it is set.
 */
function readPodIPs(status: JsonObject, r: FieldReader): string[] {
  const podIP = status['podIP'] === undefined || status['podIP'] === null || status['podIP'] === '' ? undefined : r.ip(status['podIP'], 'status.podIP');
  const listed = r
    .list(status, 'podIPs', 'status')
    .map((entry, i) => (isObject(entry) ? r.ip(entry['ip'], child(child('status.podIPs', i), 'ip')) : r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child('status.podIPs', i), 'is not an object')))
    .filter((ip): ip is string => ip !== undefined);
  if (podIP !== undefined && (listed.length === 0 || listed[0] !== podIP)) return [podIP];
  return listed;
}

/** A PodSpec (a Pod's spec, or a workload's spec.template.spec) at `path`. */
export function readPodSpec(spec: JsonObject, path: string, r: FieldReader): PodSpec {
  const podSpec: PodSpec = {
    nodeName: r.string(spec, 'nodeName', path) ?? '',
    hostname: r.string(spec, 'hostname', path) ?? '',
    subdomain: r.string(spec, 'subdomain', path) ?? '',
    hostNetwork: r.boolean(spec, 'hostNetwork', path) ?? false,
    nodeSelector: r.stringMap(spec, 'nodeSelector', path),
    tolerations: r
      .list(spec, 'tolerations', path)
      .map((t, i) => readToleration(t, child(child(path, 'tolerations'), i), r))
      .filter((t): t is Toleration => t !== undefined),
    ports: exactList([
      ...readContainerPorts(spec, 'containers', path, r, () => true),
      // Sidecars (init containers that keep running) serve ports too; FindPort looks there last.
      ...readContainerPorts(spec, 'initContainers', path, r, (c) => c['restartPolicy'] === 'Always'),
    ]),
    unmodelled: UNMODELLED_SPEC_FIELDS.filter((fields) => present(spec, fields)).map((fields) => fields.join('.')),
  };
  const affinity = r.object_(spec, 'affinity', path);
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

function readContainerPorts(spec: JsonObject, key: 'containers' | 'initContainers', path: string, r: FieldReader, include: (c: JsonObject) => boolean): ContainerPort[] {
  return r.list(spec, key, path).flatMap((c, i) => {
    const containerPath = child(child(path, key), i);
    if (!isObject(c)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', containerPath, 'is not an object');
      return [];
    }
    if (!include(c)) return [];
    return r.list(c, 'ports', containerPath).flatMap((p, j) => {
      const portPath = child(child(containerPath, 'ports'), j);
      if (!isObject(p)) {
        r.fail('KPSIM_ERR_MODEL_BAD_FIELD', portPath, 'is not an object');
        return [];
      }
      const containerPort = r.port(p, 'containerPort', portPath);
      if (containerPort === undefined) {
        if (p['containerPort'] === undefined) r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', child(portPath, 'containerPort'), 'Required value');
        return [];
      }
      // The API server always defaults a container port's protocol to TCP.
      const protocolText = r.string(p, 'protocol', portPath) ?? 'TCP';
      if (!(PROTOCOLS as readonly string[]).includes(protocolText)) {
        r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(portPath, 'protocol'), `${JSON.stringify(protocolText)} is not one of ${PROTOCOLS.join(', ')}`);
        return [];
      }
      const port: ContainerPort = { name: r.string(p, 'name', portPath) ?? '', containerPort, protocol: protocolText as Protocol };
      return [r.shared?.containerPort(port) ?? port];
    });
  });
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
