/**
 * discovery.k8s.io/v1 EndpointSlice, and the legacy v1 Endpoints converted the way the
 * EndpointSlice mirroring controller converts them.
 */
import { ipFamily, isNormalIPv6, plainIPv4Value } from '../util/ip.js';
import { child, type FieldReader, type Json, type JsonObject, isObject } from './fields.js';
import { readMetadata } from './metadata.js';
import { PROTOCOLS } from './service.js';
import { exactList, sharedConditions, sharedConditionsOf } from './shared-values.js';
import type { Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Protocol } from './types.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;

export function decodeEndpointSlice(doc: JsonObject, r: FieldReader): EndpointSlice | undefined {
  const meta = readMetadata(doc, r, 'EndpointSlice', true);
  if (!meta) return undefined;
  const addressType = r.oneOf(doc, 'addressType', '', ADDRESS_TYPES, 'IPv4');
  if (doc['addressType'] === undefined) r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', 'addressType', 'is required (IPv4, IPv6 or FQDN)');
  const serviceName = meta.labels[SERVICE_NAME_LABEL] ?? '';
  if (serviceName === '') r.warn(`metadata.labels[${SERVICE_NAME_LABEL}]`, 'not set, so kube-proxy ignores this slice');
  const values = r.list(doc, 'endpoints', '');
  const read: Endpoint[] = [];
  for (let i = 0; i < values.length; i++) {
    // An endpoint as the controller writes it is taken as it is; any other goes the way that
    // reports what is wrong with it (its field paths made only then).
    const endpoint = plainEndpoint(values[i]!, addressType) ?? readEndpoint(values[i]!, child('endpoints', i), addressType, r);
    if (endpoint !== undefined) read.push(endpoint);
  }
  const endpoints = exactList(read);
  const ports = r
    .list(doc, 'ports', '')
    .map((p, i) => readEndpointPort(p, child('ports', i), r))
    .filter((p): p is EndpointPort => p !== undefined);
  return {
    kind: 'EndpointSlice',
    origin: { file: r.file, object: r.object },
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    serviceName,
    addressType,
    endpoints,
    ports,
  };
}

/** A condition flag as r.boolean reads it without a problem: true, false, or unset (undefined); null when it is not that. */
function plainFlag(value: Json | undefined): boolean | undefined | null {
  return value === undefined || value === null ? undefined : typeof value === 'boolean' ? value : null;
}

/** A string field as r.string reads it without a problem (absent, null and "" are unset); null when it is not that. */
function plainString(value: Json | undefined): string | undefined | null {
  return value === undefined || value === null || value === '' ? undefined : typeof value === 'string' ? value : null;
}

/**
 * The endpoint readEndpoint would read when it has nothing to report about it: addresses in
 * normal form of the slice's family, flags, names, a targetRef, no hints. Undefined when it
 * has anything else (readEndpoint reads that one).
 */
function plainEndpoint(value: Json, addressType: EndpointSlice['addressType']): Endpoint | undefined {
  if (!isObject(value) || addressType === 'FQDN') return undefined;
  const rawAddresses = value['addresses'];
  if (!Array.isArray(rawAddresses) || rawAddresses.length === 0) return undefined;
  const addresses: string[] = [];
  for (const a of rawAddresses) {
    // In normal form of the slice's family: what r.ip gives back as it is, and ipFamily agrees.
    if (typeof a !== 'string' || (addressType === 'IPv4' ? plainIPv4Value(a) < 0 : !isNormalIPv6(a))) return undefined;
    addresses.push(a);
  }
  const conditionsValue = value['conditions'];
  let ready: boolean | undefined;
  let serving: boolean | undefined;
  let terminating: boolean | undefined;
  if (conditionsValue !== undefined && conditionsValue !== null) {
    if (!isObject(conditionsValue)) return undefined;
    const readyFlag = plainFlag(conditionsValue['ready']);
    const servingFlag = plainFlag(conditionsValue['serving']);
    const terminatingFlag = plainFlag(conditionsValue['terminating']);
    if (readyFlag === null || servingFlag === null || terminatingFlag === null) return undefined;
    ready = readyFlag;
    serving = servingFlag;
    terminating = terminatingFlag;
  }
  const nodeName = plainString(value['nodeName']);
  const zone = plainString(value['zone']);
  const hostname = plainString(value['hostname']);
  if (nodeName === null || zone === null || hostname === null) return undefined;
  if (value['hints'] !== undefined && value['hints'] !== null) return undefined;
  const targetRef = value['targetRef'];
  let refName: string | undefined;
  let refNamespace: string | undefined;
  let refKind: string | undefined;
  if (targetRef !== undefined && targetRef !== null) {
    if (!isObject(targetRef)) return undefined;
    const name = plainString(targetRef['name']);
    const namespace = plainString(targetRef['namespace']);
    const kind = plainString(targetRef['kind']);
    if (name === null || namespace === null || kind === null) return undefined;
    refName = name;
    refNamespace = namespace;
    refKind = kind;
  }
  const endpoint: Endpoint = { addresses: exactList(addresses), conditions: sharedConditionsOf(ready, serving, terminating) };
  if (nodeName !== undefined) endpoint.nodeName = nodeName;
  if (zone !== undefined) endpoint.zone = zone;
  if (hostname !== undefined) endpoint.hostname = hostname;
  if (refName !== undefined) {
    endpoint.targetRef = { kind: refKind ?? 'Pod', name: refName };
    if (refNamespace !== undefined) endpoint.targetRef.namespace = refNamespace;
  }
  return endpoint;
}

function readEndpoint(value: Json, path: string, addressType: EndpointSlice['addressType'], r: FieldReader): Endpoint | undefined {
  if (!isObject(value)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const rawAddresses = r.list(value, 'addresses', path);
  if (rawAddresses.length === 0) r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', child(path, 'addresses'), 'needs at least one address');
  const addresses: string[] = [];
  rawAddresses.forEach((a, i) => {
    const addrPath = child(child(path, 'addresses'), i);
    if (addressType === 'FQDN') {
      if (typeof a === 'string') addresses.push(a);
      else r.fail('KPSIM_ERR_MODEL_BAD_FIELD', addrPath, 'is not a string');
      return;
    }
    const ip = r.ip(a, addrPath);
    if (ip === undefined) return;
    if (ipFamily(ip) !== (addressType === 'IPv4' ? 4 : 6)) {
      r.fail('KPSIM_ERR_MODEL_FAMILY_MISMATCH', addrPath, `${ip} is not an ${addressType} address (addressType is ${addressType})`);
      return;
    }
    addresses.push(ip);
  });
  const conditionsObject = r.object_(value, 'conditions', path) ?? {};
  const conditions: EndpointConditions = {};
  for (const key of ['ready', 'serving', 'terminating'] as const) {
    const flag = r.boolean(conditionsObject, key, child(path, 'conditions'));
    if (flag !== undefined) conditions[key] = flag;
  }
  const endpoint: Endpoint = { addresses: exactList(addresses), conditions: sharedConditions(conditions) };
  const nodeName = r.string(value, 'nodeName', path);
  if (nodeName !== undefined) endpoint.nodeName = nodeName;
  const zone = r.string(value, 'zone', path);
  if (zone !== undefined) endpoint.zone = zone;
  const hostname = r.string(value, 'hostname', path);
  if (hostname !== undefined) endpoint.hostname = hostname;
  const hints = r.object_(value, 'hints', path);
  if (hints) endpoint.hints = { forZones: readHintNames(hints, 'forZones', child(path, 'hints'), r), forNodes: readHintNames(hints, 'forNodes', child(path, 'hints'), r) };
  const targetRef = r.object_(value, 'targetRef', path);
  if (targetRef) {
    const name = r.string(targetRef, 'name', child(path, 'targetRef'));
    const namespace = r.string(targetRef, 'namespace', child(path, 'targetRef'));
    if (name !== undefined) endpoint.targetRef = { kind: r.string(targetRef, 'kind', child(path, 'targetRef')) ?? 'Pod', name, ...(namespace !== undefined ? { namespace } : {}) };
  }
  return addresses.length > 0 ? endpoint : undefined;
}

function readHintNames(hints: JsonObject, key: 'forZones' | 'forNodes', path: string, r: FieldReader): string[] {
  return r
    .list(hints, key, path)
    .map((h, i) => (isObject(h) ? r.string(h, 'name', child(child(path, key), i), true) : r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(child(path, key), i), 'is not an object')))
    .filter((n): n is string => n !== undefined);
}

function readEndpointPort(value: Json, path: string, r: FieldReader): EndpointPort | undefined {
  if (!isObject(value)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const port = r.port(value, 'port', path);
  const protocol = readProtocol(value, path, r);
  if (value['name'] === undefined || value['name'] === null) {
    // The API server stores what was sent; kube-proxy skips a slice port with no name at all.
    r.warn(child(path, 'name'), 'not set, so kube-proxy ignores this port (write name: "" for the unnamed service port)');
    return undefined;
  }
  const name = typeof value['name'] === 'string' ? value['name'] : r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'name'), 'is not a string');
  if (name === undefined || protocol === undefined) return undefined;
  if (port === undefined && value['port'] === undefined) r.warn(child(path, 'port'), 'not set, so kube-proxy ignores this port');
  const endpointPort: EndpointPort = { name, protocol, port };
  const appProtocol = r.string(value, 'appProtocol', path);
  if (appProtocol !== undefined) endpointPort.appProtocol = appProtocol;
  return endpointPort;
}

function readProtocol(value: JsonObject, path: string, r: FieldReader): Protocol | undefined {
  const text = r.string(value, 'protocol', path);
  if (text === undefined && r.apiDefaults) return 'TCP';
  if (text === undefined) {
    r.warn(child(path, 'protocol'), 'not set, so this port is ignored (--allocate defaults it to TCP as the API server does)');
    return undefined;
  }
  if (!(PROTOCOLS as readonly string[]).includes(text)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'protocol'), `${JSON.stringify(text)} is not one of ${PROTOCOLS.join(', ')}`);
    return undefined;
  }
  return text as Protocol;
}

/**
 * v1 Endpoints → EndpointSlices, one per subset and address family, as the mirroring controller
 * does: `addresses` are ready, `notReadyAddresses` are not ready; ports keep name and protocol.
 */
export function decodeLegacyEndpoints(doc: JsonObject, r: FieldReader): EndpointSlice[] {
  const meta = readMetadata(doc, r, 'Endpoints', true);
  if (!meta) return [];
  const slices: EndpointSlice[] = [];
  r.list(doc, 'subsets', '').forEach((subset, s) => {
    const path = child('subsets', s);
    if (!isObject(subset)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
      return;
    }
    const ports = r
      .list(subset, 'ports', path)
      .map((p, i) => {
        if (isObject(p) && (p['name'] === undefined || p['name'] === null)) return readEndpointPort({ ...p, name: '' }, child(child(path, 'ports'), i), r);
        return readEndpointPort(p, child(child(path, 'ports'), i), r);
      })
      .filter((p): p is EndpointPort => p !== undefined);
    const byFamily = new Map<4 | 6, Endpoint[]>();
    for (const [key, ready] of [['addresses', true], ['notReadyAddresses', false]] as const) {
      r.list(subset, key, path).forEach((a, i) => {
        const addrPath = child(child(path, key), i);
        if (!isObject(a)) {
          r.fail('KPSIM_ERR_MODEL_BAD_FIELD', addrPath, 'is not an object');
          return;
        }
        const ip = r.ip(a['ip'], child(addrPath, 'ip'));
        if (ip === undefined) return;
        const endpoint: Endpoint = { addresses: [ip], conditions: { ready, serving: ready, terminating: false } };
        const nodeName = r.string(a, 'nodeName', addrPath);
        if (nodeName !== undefined) endpoint.nodeName = nodeName;
        const family = ipFamily(ip)!;
        byFamily.set(family, [...(byFamily.get(family) ?? []), endpoint]);
      });
    }
    for (const [family, endpoints] of byFamily) {
      slices.push({
        kind: 'EndpointSlice',
        origin: { file: r.file, object: r.object },
        namespace: meta.namespace,
        name: `${meta.name}-legacy-${s}-ipv${family}`,
        labels: { [SERVICE_NAME_LABEL]: meta.name },
        serviceName: meta.name,
        addressType: family === 4 ? 'IPv4' : 'IPv6',
        endpoints,
        ports,
      });
    }
  });
  return slices;
}
