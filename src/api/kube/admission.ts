/**
 * What the API server does to an object between the request and the store, for the kinds kpsim
 * serves: defaulting (SetDefaults_* in pkg/apis/core/v1/defaults.go and discovery/v1), the
 * registry strategies' PrepareForCreate / PrepareForUpdate (a Service's status is the server's
 * to set; ClusterIPs and node ports stay once allocated), allocation, and validation, which is
 * kpsim's own (src/model): a Service the file reader would refuse is refused here with the same
 * words, as a 422 with one cause per field.
 */
import type { KpsimError } from '../../errors.js';
import { KpsimError as KpsimErrorClass } from '../../errors.js';
import { type DecodedManifest, decodeObject } from '../../manifest/decode.js';
import { type NodePortRange, allocateServiceFields } from '../../model/allocate.js';
import { assembleCluster } from '../../model/cluster.js';
import { type Json, type JsonObject, isObject } from '../../model/fields.js';
import type { Service, Warning } from '../../model/types.js';
import { ipFamily } from '../../util/ip.js';
import { formatSelectorJson } from './scale.js';
import { DAEMON_SETS, DEPLOYMENTS, ENDPOINTS, ENDPOINT_SLICES, NAMESPACES, NODES, PODS, REPLICA_SETS, type ResourceType, SERVICES, STATEFUL_SETS, type Subresource, WORKLOAD_RESOURCES } from './resources.js';
import { invalid } from './status.js';

export interface AdmissionOptions {
  /** --service-cluster-ip-range: one CIDR per family, primary first. */
  serviceCIDRs: readonly string[];
  /** Whether --service-cluster-ip-range was given: ClusterIPs outside it are then refused. */
  checkServiceCIDRs: boolean;
  nodePortRange: NodePortRange;
}

/** An object's own map, created when missing. */
function mapAt(obj: JsonObject, key: string): JsonObject {
  const value = obj[key];
  if (isObject(value)) return value;
  const created: JsonObject = {};
  obj[key] = created;
  return created;
}

function listAt(obj: JsonObject, key: string): Json[] {
  const value = obj[key];
  return Array.isArray(value) ? value : [];
}

function isUnset(value: Json | undefined): boolean {
  return value === undefined || value === null || value === '';
}

/** The API server's defaulting of fields kube-proxy reads (mutates `obj`). */
export function applyDefaults(type: ResourceType, obj: JsonObject): void {
  if (type === SERVICES) defaultService(obj);
  else if (type === ENDPOINT_SLICES) {
    for (const port of listAt(obj, 'ports')) {
      if (!isObject(port)) continue;
      if (isUnset(port['protocol'])) port['protocol'] = 'TCP';
      if (port['name'] === undefined || port['name'] === null) port['name'] = '';
    }
  } else if (type === ENDPOINTS) {
    for (const subset of listAt(obj, 'subsets')) {
      if (!isObject(subset)) continue;
      for (const port of listAt(subset, 'ports')) if (isObject(port) && isUnset(port['protocol'])) port['protocol'] = 'TCP';
    }
  } else if (type === NAMESPACES) {
    const spec = mapAt(obj, 'spec');
    if (!Array.isArray(spec['finalizers'])) spec['finalizers'] = ['kubernetes'];
    mapAt(obj, 'status')['phase'] = 'Active';
  } else if (type === PODS) {
    defaultPodSpec(mapAt(obj, 'spec'));
  } else if (WORKLOAD_RESOURCES.includes(type)) {
    defaultWorkload(type, mapAt(obj, 'spec'));
  }
}

function setDefault(obj: JsonObject, key: string, value: Json): void {
  if (isUnset(obj[key])) obj[key] = value;
}

/** The image pull policy the API server gives a container: Always for :latest or no tag, else IfNotPresent. */
function defaultPullPolicy(image: Json | undefined): string {
  const text = typeof image === 'string' ? image : '';
  const name = text.split('@')[0]!;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  const tag = colon > slash ? name.slice(colon + 1) : '';
  return text.includes('@') || (tag !== '' && tag !== 'latest') ? 'IfNotPresent' : 'Always';
}

/**
 * SetDefaults_PodSpec and SetDefaults_Container (pkg/apis/core/v1/defaults.go), the Priority
 * admission plugin's priority 0 and DefaultTolerationSeconds' not-ready and unreachable tolerations.
 * Applied to Pods; a workload's template is kept as written, so its pod-template-hash stays
 * the one of the manifest (kpsim hashes the template as stored).
 */
function defaultPodSpec(spec: JsonObject): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  if (!isObject(spec['securityContext'])) spec['securityContext'] = {};
  setDefault(spec, 'schedulerName', 'default-scheduler');
  setDefault(spec, 'enableServiceLinks', true);
  setDefault(spec, 'priority', 0);
  setDefault(spec, 'preemptionPolicy', 'PreemptLowerPriority');
  for (const key of ['containers', 'initContainers']) {
    for (const container of listAt(spec, key)) {
      if (!isObject(container)) continue;
      setDefault(container, 'terminationMessagePath', '/dev/termination-log');
      setDefault(container, 'terminationMessagePolicy', 'File');
      setDefault(container, 'imagePullPolicy', defaultPullPolicy(container['image']));
      if (!isObject(container['resources'])) container['resources'] = {};
      for (const port of listAt(container, 'ports')) if (isObject(port)) setDefault(port, 'protocol', 'TCP');
    }
  }
  const tolerations = Array.isArray(spec['tolerations']) ? spec['tolerations'] : [];
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    const has = tolerations.some((t) => isObject(t) && (t['key'] === key || (isUnset(t['key']) && t['operator'] === 'Exists')) && (isUnset(t['effect']) || t['effect'] === 'NoExecute'));
    if (!has) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
  spec['tolerations'] = tolerations;
}

/** SetDefaults_Deployment, _ReplicaSet, _StatefulSet, _DaemonSet (pkg/apis/apps/v1/defaults.go), the template left as written. */
function defaultWorkload(type: ResourceType, spec: JsonObject): void {
  if (type !== DAEMON_SETS) setDefault(spec, 'replicas', 1);
  if (type !== REPLICA_SETS) setDefault(spec, 'revisionHistoryLimit', 10);
  if (type === DEPLOYMENTS) {
    setDefault(spec, 'strategy', { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });
    setDefault(spec, 'progressDeadlineSeconds', 600);
  } else if (type === STATEFUL_SETS) {
    setDefault(spec, 'podManagementPolicy', 'OrderedReady');
    setDefault(spec, 'updateStrategy', { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
    setDefault(spec, 'persistentVolumeClaimRetentionPolicy', { whenDeleted: 'Retain', whenScaled: 'Retain' });
  } else if (type === DAEMON_SETS) {
    setDefault(spec, 'updateStrategy', { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  }
}

function defaultService(obj: JsonObject): void {
  const spec = mapAt(obj, 'spec');
  if (isUnset(spec['type'])) spec['type'] = 'ClusterIP';
  const type = spec['type'];
  if (isUnset(spec['sessionAffinity'])) spec['sessionAffinity'] = 'None';
  if (spec['sessionAffinity'] === 'ClientIP') {
    const clientIP = mapAt(mapAt(spec, 'sessionAffinityConfig'), 'clientIP');
    if (isUnset(clientIP['timeoutSeconds'])) clientIP['timeoutSeconds'] = 10800;
  }
  for (const port of listAt(spec, 'ports')) {
    if (!isObject(port)) continue;
    if (isUnset(port['protocol'])) port['protocol'] = 'TCP';
    if (isUnset(port['targetPort']) && port['port'] !== undefined) port['targetPort'] = port['port'];
  }
  if ((type === 'NodePort' || type === 'LoadBalancer') && isUnset(spec['externalTrafficPolicy'])) spec['externalTrafficPolicy'] = 'Cluster';
  if (type !== 'ExternalName' && isUnset(spec['internalTrafficPolicy'])) spec['internalTrafficPolicy'] = 'Cluster';
  if (type === 'LoadBalancer' && spec['allocateLoadBalancerNodePorts'] === undefined) spec['allocateLoadBalancerNodePorts'] = true;
  if (!isUnset(spec['clusterIP']) && !Array.isArray(spec['clusterIPs'])) spec['clusterIPs'] = [spec['clusterIP'] as Json];
}

/** Kinds whose status only the /status subresource (and the controllers behind it) may write. */
function statusIsSeparate(type: ResourceType): boolean {
  return type === SERVICES || type === NODES || type === NAMESPACES || type === PODS || WORKLOAD_RESOURCES.includes(type);
}

/**
 * PrepareForCreate / PrepareForUpdate: on create a Service's status is cleared (the server sets
 * it), a Pod's is Pending and a workload's empty, and a workload's metadata.generation is 1; on
 * update of the main resource the status of these kinds stays the old one (and a workload's
 * generation goes up when its spec changes), and a write to `/status` changes only the status.
 * uid and creation time never change, and a Service keeps the ClusterIPs and node ports it was
 * given when the new object leaves them out.
 */
export function prepareWrite(type: ResourceType, next: JsonObject, old: JsonObject | undefined, subresource: Subresource | undefined): JsonObject {
  if (old === undefined) {
    if (type === SERVICES) next['status'] = { loadBalancer: {} };
    else if (type === PODS) next['status'] = { phase: 'Pending' };
    else if (WORKLOAD_RESOURCES.includes(type)) {
      next['status'] = {};
      mapAt(next, 'metadata')['generation'] = 1;
    }
    return next;
  }
  let out = next;
  if (subresource === 'status') {
    out = { ...structuredClone(old), status: next['status'] ?? {} };
  } else if (statusIsSeparate(type)) {
    if (old['status'] !== undefined) out['status'] = structuredClone(old['status']);
    else delete out['status'];
  }
  const meta = mapAt(out, 'metadata');
  const oldMeta = isObject(old['metadata']) ? old['metadata'] : {};
  for (const key of ['uid', 'creationTimestamp'] as const) if (oldMeta[key] !== undefined) meta[key] = oldMeta[key]!;
  if (WORKLOAD_RESOURCES.includes(type)) {
    const generation = typeof oldMeta['generation'] === 'number' ? oldMeta['generation'] : 1;
    meta['generation'] = subresource !== 'status' && JSON.stringify(out['spec'] ?? null) !== JSON.stringify(old['spec'] ?? null) ? generation + 1 : generation;
  }
  if (type === SERVICES && subresource === undefined) keepAllocations(out, old);
  return out;
}

function keepAllocations(next: JsonObject, old: JsonObject): void {
  const spec = mapAt(next, 'spec');
  const oldSpec = isObject(old['spec']) ? old['spec'] : {};
  if (spec['type'] === 'ExternalName' || oldSpec['type'] === 'ExternalName') return;
  if (isUnset(spec['clusterIP']) && !isUnset(oldSpec['clusterIP'])) {
    for (const key of ['clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy']) if (oldSpec[key] !== undefined) spec[key] = structuredClone(oldSpec[key]!);
  }
  const oldPorts = listAt(oldSpec, 'ports').filter(isObject);
  for (const port of listAt(spec, 'ports')) {
    if (!isObject(port) || !isUnset(port['nodePort'])) continue;
    const same = oldPorts.find((p) => p['port'] === port['port'] && (p['protocol'] ?? 'TCP') === (port['protocol'] ?? 'TCP'));
    if (same && !isUnset(same['nodePort']) && (spec['type'] === 'NodePort' || spec['type'] === 'LoadBalancer')) port['nodePort'] = same['nodePort']!;
  }
  if (isUnset(spec['healthCheckNodePort']) && !isUnset(oldSpec['healthCheckNodePort']) && spec['type'] === 'LoadBalancer' && spec['externalTrafficPolicy'] === 'Local') {
    spec['healthCheckNodePort'] = oldSpec['healthCheckNodePort']!;
  }
}

/**
 * Fields that may not change once set: a Service's ClusterIP (ValidateServiceUpdate; unless the
 * type goes to or from ExternalName) and a workload's selector (apps/v1 validation).
 */
function immutableProblems(type: ResourceType, next: JsonObject, old: JsonObject | undefined, where: { file: string; object: string }): KpsimError[] {
  if (old === undefined) return [];
  const spec = isObject(next['spec']) ? next['spec'] : {};
  const oldSpec = isObject(old['spec']) ? old['spec'] : {};
  if (WORKLOAD_RESOURCES.includes(type)) {
    if (JSON.stringify(spec['selector'] ?? null) === JSON.stringify(oldSpec['selector'] ?? null)) return [];
    return [new KpsimErrorClass('KPSIM_ERR_MODEL_BAD_FIELD', `Invalid value: ${JSON.stringify(formatSelectorJson(spec['selector']))}: field is immutable`, { ...where, path: 'spec.selector' })];
  }
  if (type !== SERVICES) return [];
  if (spec['type'] === 'ExternalName' || oldSpec['type'] === 'ExternalName') return [];
  if (isUnset(oldSpec['clusterIP']) || spec['clusterIP'] === oldSpec['clusterIP']) return [];
  return [new KpsimErrorClass('KPSIM_ERR_MODEL_BAD_FIELD', `${JSON.stringify(spec['clusterIP'] ?? '')} may not change once set (it is ${JSON.stringify(oldSpec['clusterIP'])})`, { ...where, path: 'spec.clusterIP' })];
}

export interface Admitted {
  /** The object's typed form, as kpsim's model decodes it. */
  decoded: DecodedManifest;
  /** What kpsim would warn about this object (sent back as `Warning` headers). */
  warnings: Warning[];
}

/**
 * Validates one object written through the API and applies the API server's defaults: kpsim's decoding,
 * the ClusterIP and node-port allocation a Service needs, and the checks across Services. On
 * success the allocated values are written into `obj`; on failure a 422 StatusError.
 */
export function admit(
  type: ResourceType,
  name: string,
  obj: JsonObject,
  old: JsonObject | undefined,
  file: string,
  otherServices: () => readonly Service[],
  options: AdmissionOptions,
  /** The typed form of `old`, when this is an update. */
  previous?: Service,
): Admitted {
  // Validate what the client sent (so the words are those kpsim gives for the same file), then
  // default it and decode the result for the typed form.
  const sent = decodeObject(obj, file, { apiDefaults: true });
  const object = describe(type, obj, name);
  const problems = [...sent.problems, ...immutableProblems(type, obj, old, { file, object })];
  if (problems.length > 0) throw invalid(type, name, problems);
  applyDefaults(type, obj);
  const decoded = decodeObject(obj, file, { apiDefaults: true });
  if (decoded.problems.length > 0) throw invalid(type, name, decoded.problems);
  const warnings = [...decoded.warnings];
  const service = decoded.services[0];
  // The checks across Services concern addresses and ports only; a write that leaves them as
  // they were (a label, an annotation, a selector) was checked when they were set.
  if (type === SERVICES && service && !(previous && sameAllocation(previous, service))) {
    const others = otherServices();
    const allocation = allocateServiceFields([service], { serviceCIDRs: options.serviceCIDRs, nodePortRange: options.nodePortRange }, others);
    if (allocation.length > 0) throw invalid(type, name, allocation);
    writeBackAllocation(obj, service);
    try {
      const checked = assembleCluster(
        { services: [...others, service], endpointSlices: [], nodes: [], configs: [], warnings: [] },
        { ...(options.checkServiceCIDRs ? { serviceCIDRs: options.serviceCIDRs } : {}), nodePortRange: options.nodePortRange },
      );
      warnings.push(...checked.warnings.filter((w) => w.object === service.origin.object && w.file === service.origin.file));
    } catch (e) {
      if (!(e instanceof KpsimErrorClass)) throw e;
      const list = e.problems.length > 0 ? e.problems : [e];
      const mine = list.filter((p) => p.object === service.origin.object && p.file === service.origin.file);
      throw invalid(type, name, mine.length > 0 ? mine : list);
    }
  }
  return { decoded, warnings };
}

function sameAllocation(a: Service, b: Service): boolean {
  const ports = (s: Service): string => s.ports.map((p) => `${p.nodePort}/${p.protocol}`).join(',');
  return a.type === b.type && a.clusterIPs.join(',') === b.clusterIPs.join(',') && ports(a) === ports(b) && a.healthCheckNodePort === b.healthCheckNodePort && a.headless === b.headless;
}

function describe(type: ResourceType, obj: JsonObject, name: string): string {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const namespace = typeof meta['namespace'] === 'string' ? meta['namespace'] : 'default';
  return type.namespaced ? `${type.kind} ${namespace}/${name}` : `${type.kind} ${name}`;
}

/** Puts what allocation gave the typed Service back into its manifest, as the API server stores it. */
export function writeBackAllocation(obj: JsonObject, service: Service): void {
  const spec = mapAt(obj, 'spec');
  if (service.clusterIPs.length > 0) {
    spec['clusterIP'] = service.clusterIPs[0]!;
    spec['clusterIPs'] = [...service.clusterIPs];
  } else if (service.headless && isUnset(spec['clusterIPs'] as Json)) {
    spec['clusterIPs'] = ['None'];
  }
  if (service.type !== 'ExternalName') {
    if (!Array.isArray(spec['ipFamilies']) || spec['ipFamilies'].length === 0) {
      const families = service.clusterIPs.map((ip) => (ipFamily(ip) === 6 ? 'IPv6' : 'IPv4'));
      if (families.length > 0) spec['ipFamilies'] = families;
    }
    if (isUnset(spec['ipFamilyPolicy']) && Array.isArray(spec['ipFamilies'])) spec['ipFamilyPolicy'] = spec['ipFamilies'].length > 1 ? 'RequireDualStack' : 'SingleStack';
  }
  const ports = listAt(spec, 'ports');
  if (ports.length === service.ports.length) {
    service.ports.forEach((p, i) => {
      const port = ports[i];
      if (!isObject(port)) return;
      if (p.nodePort !== 0) port['nodePort'] = p.nodePort;
      if (isUnset(port['protocol'])) port['protocol'] = p.protocol;
    });
  }
  if (service.healthCheckNodePort !== 0) spec['healthCheckNodePort'] = service.healthCheckNodePort;
}
