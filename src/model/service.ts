/**
 * v1 Service: decoding and per-object validation. Cross-object checks (duplicate ClusterIPs,
 * node ports, ranges) live in cluster.ts.
 */
import { ipFamily } from '../util/ip.js';
import { child, type FieldReader, type Json, type JsonObject, isObject } from './fields.js';
import { readMetadata } from './metadata.js';
import type { IPFamilyName, LoadBalancerIngress, Protocol, Service, ServicePort, ServiceType, TrafficPolicy } from './types.js';

export const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const TRAFFIC_POLICIES: readonly TrafficPolicy[] = ['Cluster', 'Local'];
/** The API server's default and maximum for sessionAffinityConfig.clientIP.timeoutSeconds. */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

export function decodeService(doc: JsonObject, r: FieldReader): Service | undefined {
  const meta = readMetadata(doc, r, 'Service', true);
  if (!meta) return undefined;
  const spec = r.object_(doc, 'spec', '') ?? {};
  const status = r.object_(doc, 'status', '') ?? {};
  const type = r.oneOf(spec, 'type', 'spec', SERVICE_TYPES, 'ClusterIP');

  const { clusterIPs, headless } = readClusterIPs(spec, r);
  const ports = r.list(spec, 'ports', 'spec').map((p, i) => readServicePort(p, child('spec.ports', i), r, type));
  const service: Service = {
    kind: 'Service',
    origin: { file: r.file, object: r.object },
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    type,
    clusterIPs,
    headless,
    ipFamilies: readIPFamilies(spec, r),
    ports: ports.filter((p): p is ServicePort => p !== undefined),
    externalIPs: r.list(spec, 'externalIPs', 'spec').map((ip, i) => r.ip(ip, child('spec.externalIPs', i))).filter(isString),
    loadBalancerIngress: readIngress(status, r),
    loadBalancerSourceRanges: r
      .list(spec, 'loadBalancerSourceRanges', 'spec')
      .map((c, i) => r.cidr(typeof c === 'string' ? c.trim() : c, child('spec.loadBalancerSourceRanges', i)))
      .filter(isString),
    externalTrafficPolicy: readPolicy(spec, 'externalTrafficPolicy', r),
    internalTrafficPolicy: readPolicy(spec, 'internalTrafficPolicy', r),
    sessionAffinity: r.oneOf(spec, 'sessionAffinity', 'spec', ['None', 'ClientIP'] as const, 'None'),
    sessionAffinityTimeoutSeconds: 0,
    healthCheckNodePort: r.port(spec, 'healthCheckNodePort', 'spec', true) ?? 0,
  };
  const externalName = r.string(spec, 'externalName', 'spec');
  if (externalName !== undefined) service.externalName = externalName;
  const trafficDistribution = r.string(spec, 'trafficDistribution', 'spec');
  if (trafficDistribution !== undefined) service.trafficDistribution = trafficDistribution;
  if (service.sessionAffinity === 'ClientIP') service.sessionAffinityTimeoutSeconds = readAffinityTimeout(spec, r);
  // An empty selector is stored as none (protobuf keeps no empty map): no EndpointSlices either way.
  const selector = r.stringMap(spec, 'selector', 'spec');
  if (Object.keys(selector).length > 0) service.selector = selector;
  service.publishNotReadyAddresses = r.boolean(spec, 'publishNotReadyAddresses', 'spec') ?? false;
  if (Object.keys(meta.annotations).length > 0) service.annotations = meta.annotations;
  checkPortNames(service, r);
  return service;
}

function isString(value: string | undefined): value is string {
  return value !== undefined;
}

/** "Cluster" by default; the API server's old spelling "Global" for externalTrafficPolicy is Cluster too. */
function readPolicy(spec: JsonObject, key: 'externalTrafficPolicy' | 'internalTrafficPolicy', r: FieldReader): TrafficPolicy {
  if (spec[key] === 'Global') return 'Cluster';
  return r.oneOf(spec, key, 'spec', TRAFFIC_POLICIES, 'Cluster');
}

function readClusterIPs(spec: JsonObject, r: FieldReader): { clusterIPs: string[]; headless: boolean } {
  const single = r.string(spec, 'clusterIP', 'spec');
  const listed = r.list(spec, 'clusterIPs', 'spec');
  if (single === 'None' || listed[0] === 'None') return { clusterIPs: [], headless: true };
  const clusterIPs = listed.map((ip, i) => r.ip(ip, child('spec.clusterIPs', i))).filter(isString);
  if (single !== undefined) {
    const ip = r.ip(single, 'spec.clusterIP');
    if (ip !== undefined) {
      if (clusterIPs.length === 0) clusterIPs.push(ip);
      else if (clusterIPs[0] !== ip) r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'spec.clusterIPs[0]', `${clusterIPs[0]} is not spec.clusterIP (${ip})`);
    }
  }
  if (clusterIPs.length === 2 && ipFamily(clusterIPs[0]!) === ipFamily(clusterIPs[1]!)) {
    r.fail('KPSIM_ERR_MODEL_FAMILY_MISMATCH', 'spec.clusterIPs', 'a dual-stack service needs one IPv4 and one IPv6 ClusterIP');
  }
  if (clusterIPs.length > 2) r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'spec.clusterIPs', 'at most two ClusterIPs (one per family)');
  return { clusterIPs, headless: false };
}

function readIPFamilies(spec: JsonObject, r: FieldReader): IPFamilyName[] {
  return r
    .list(spec, 'ipFamilies', 'spec')
    .map((f, i) => {
      if (f === 'IPv4' || f === 'IPv6') return f;
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child('spec.ipFamilies', i), `${JSON.stringify(f)} is not IPv4 or IPv6`);
      return undefined;
    })
    .filter((f): f is IPFamilyName => f !== undefined);
}

function readServicePort(value: Json, path: string, r: FieldReader, type: ServiceType): ServicePort | undefined {
  if (!isObject(value)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const port = r.port(value, 'port', path);
  if (port === undefined && value['port'] === undefined) r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', child(path, 'port'), 'is required');
  const protocolText = r.string(value, 'protocol', path);
  let protocol: Protocol | undefined;
  if (protocolText === undefined && r.apiDefaults) {
    protocol = 'TCP';
  } else if (protocolText === undefined) {
    // The API server always stores a protocol; a hand-written manifest may lack it (--allocate defaults it).
    r.warn(child(path, 'protocol'), 'not set, so kube-proxy would not match this port: it is ignored (--allocate defaults it to TCP as the API server does)');
  } else if ((PROTOCOLS as readonly string[]).includes(protocolText)) {
    protocol = protocolText as Protocol;
  } else {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'protocol'), `${JSON.stringify(protocolText)} is not one of ${PROTOCOLS.join(', ')}`);
  }
  const nodePort = r.port(value, 'nodePort', path, true) ?? 0;
  if (nodePort !== 0 && type !== 'NodePort' && type !== 'LoadBalancer') {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'nodePort'), `may be set only for type NodePort or LoadBalancer, not ${type}`);
  }
  const targetPortValue = value['targetPort'];
  let targetPort: number | string | undefined;
  if (typeof targetPortValue === 'string') targetPort = targetPortValue;
  else if (targetPortValue !== undefined && targetPortValue !== null) targetPort = r.port(value, 'targetPort', path);
  const name = r.string(value, 'name', path) ?? '';
  if (port === undefined || protocol === undefined) return undefined;
  const servicePort: ServicePort = { name, protocol, port, targetPort, nodePort };
  const appProtocol = r.string(value, 'appProtocol', path);
  if (appProtocol !== undefined) servicePort.appProtocol = appProtocol;
  return servicePort;
}

function checkPortNames(service: Service, r: FieldReader): void {
  const seen = new Map<string, number>();
  service.ports.forEach((p, i) => {
    if (service.ports.length > 1 && p.name === '') r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', `spec.ports[${i}].name`, 'is required when a service has more than one port');
    const key = `${p.port}/${p.protocol}`;
    const previous = seen.get(key);
    if (previous !== undefined) r.fail('KPSIM_ERR_MODEL_DUPLICATE', `spec.ports[${i}]`, `port ${key} is already spec.ports[${previous}]`);
    seen.set(key, i);
  });
}

function readIngress(status: JsonObject, r: FieldReader): LoadBalancerIngress[] {
  const lb = r.object_(status, 'loadBalancer', 'status');
  if (!lb) return [];
  return r
    .list(lb, 'ingress', 'status.loadBalancer')
    .map((entry, i): LoadBalancerIngress | undefined => {
      const path = child('status.loadBalancer.ingress', i);
      if (!isObject(entry)) {
        r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
        return undefined;
      }
      const ingress: LoadBalancerIngress = {};
      if (entry['ip'] !== undefined && entry['ip'] !== '') {
        const ip = r.ip(entry['ip'], child(path, 'ip'));
        if (ip === undefined) return undefined;
        ingress.ip = ip;
      }
      const hostname = r.string(entry, 'hostname', path);
      if (hostname !== undefined) ingress.hostname = hostname;
      const ipMode = entry['ipMode'];
      if (ipMode === 'VIP' || ipMode === 'Proxy') ingress.ipMode = ipMode;
      else if (ipMode !== undefined && ipMode !== null) r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'ipMode'), `${JSON.stringify(ipMode)} is not VIP or Proxy`);
      return ingress;
    })
    .filter((i): i is LoadBalancerIngress => i !== undefined);
}

function readAffinityTimeout(spec: JsonObject, r: FieldReader): number {
  const config = r.object_(spec, 'sessionAffinityConfig', 'spec');
  const clientIP = config ? r.object_(config, 'clientIP', 'spec.sessionAffinityConfig') : undefined;
  const timeout = clientIP ? r.integer(clientIP, 'timeoutSeconds', 'spec.sessionAffinityConfig.clientIP', 1, MAX_AFFINITY_TIMEOUT_SECONDS) : undefined;
  if (timeout === undefined && clientIP?.['timeoutSeconds'] === undefined) {
    r.warn('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `not set: taken as ${DEFAULT_AFFINITY_TIMEOUT_SECONDS}, the API server's default`);
  }
  return timeout ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS;
}
