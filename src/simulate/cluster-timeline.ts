/**
 * The timeline `kpsim simulate --events FILE` replays: cluster changes to the target service's
 * endpoints at given times, against the stream of connections. YAML or JSON:
 *
 *   programmingDelaySeconds: 1     # from a change to the rules showing it (kube-proxy's sync); default 1
 *   packetIntervalSeconds: 1       # an open connection sends a packet this often; default 1
 *   conntrackCleanup: true         # kube-proxy's stale-UDP conntrack cleanup after each sync; default true
 *   events:
 *   - {at: 20, endpoint: 10.244.1.5:53, change: removed}       # the pod is deleted: gone at once
 *   - {at: 30, endpoint: 10.244.1.9:53, change: added}         # a new ready pod
 *   - {at: 40, endpoint: 10.244.2.3:53, change: terminating}   # still serving until removed
 *   - {at: 45, endpoint: 10.244.2.3:53, change: not-ready}     # alive, failing its readiness probe
 *   - {at: 50, endpoint: 10.244.2.3:53, change: ready}
 *   - {at: 90, change: service-deleted}
 *
 * A pod answers from the moment its endpoint is added until it is removed; the rules follow
 * each change programmingDelaySeconds later. Pure: text in, a timeline and cluster states out.
 */
import { parseAllDocuments } from 'yaml';
import { KpsimError } from '../errors.js';
import { type Json, isObject } from '../model/fields.js';
import type { Cluster, Endpoint, EndpointSlice } from '../model/types.js';
import { joinHostPort, splitHostPort } from '../util/ip.js';

export const CLUSTER_CHANGES = ['added', 'removed', 'terminating', 'not-ready', 'ready', 'service-deleted'] as const;
export type ClusterChangeKind = (typeof CLUSTER_CHANGES)[number];

export interface ClusterChange {
  /** Seconds from the start. */
  readonly at: number;
  readonly change: ClusterChangeKind;
  /** "ip:port" (every change but service-deleted). */
  readonly endpoint?: string;
  /** added: the node the pod runs on. */
  readonly node?: string;
}

export interface Timeline {
  readonly programmingDelaySeconds: number;
  readonly packetIntervalSeconds: number;
  readonly conntrackCleanup: boolean;
  /** In time order (equal times keep the file's order). */
  readonly events: readonly ClusterChange[];
}

/** A timeline file's text, checked; every problem at once, naming the file and field. */
export function parseTimeline(text: string, file: string): Timeline {
  const problems: KpsimError[] = [];
  const bad = (path: string, detail: string, code: 'KPSIM_ERR_MODEL_BAD_FIELD' | 'KPSIM_ERR_MODEL_MISSING_FIELD' = 'KPSIM_ERR_MODEL_BAD_FIELD'): void => {
    problems.push(new KpsimError(code, detail, { file, path }));
  };
  let doc: Json;
  try {
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [];
    const first = list[0];
    if (first === undefined) throw new KpsimError('KPSIM_ERR_MANIFEST_SHAPE', 'is empty: give events: [...]', { file });
    if (first.errors.length > 0) throw new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', `not valid YAML or JSON: ${first.errors[0]!.message.split('\n')[0]}`, { file });
    doc = first.toJS({ maxAliasCount: 100 }) as Json;
  } catch (e) {
    if (e instanceof KpsimError) throw e;
    throw new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', `not valid YAML or JSON: ${(e as Error).message}`, { file });
  }
  if (!isObject(doc)) throw new KpsimError('KPSIM_ERR_MANIFEST_SHAPE', 'is not a mapping with events: [...]', { file });
  const seconds = (key: string, fallback: number, min: number): number => {
    const value = doc[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (min > 0 && value === 0)) {
      bad(key, `${JSON.stringify(value)} is not a number of seconds ${min > 0 ? '> 0' : '>= 0'}`);
      return fallback;
    }
    return value;
  };
  const programmingDelaySeconds = seconds('programmingDelaySeconds', 1, 0);
  const packetIntervalSeconds = seconds('packetIntervalSeconds', 1, Number.MIN_VALUE);
  const cleanup = doc['conntrackCleanup'];
  if (cleanup !== undefined && typeof cleanup !== 'boolean') bad('conntrackCleanup', `${JSON.stringify(cleanup)} is not true or false`);
  for (const key of Object.keys(doc)) {
    if (!['programmingDelaySeconds', 'packetIntervalSeconds', 'conntrackCleanup', 'events'].includes(key)) bad(key, 'is not a field of a timeline (programmingDelaySeconds, packetIntervalSeconds, conntrackCleanup, events)');
  }
  const raw = doc['events'];
  const events: ClusterChange[] = [];
  if (!Array.isArray(raw)) bad('events', raw === undefined ? 'is required: a list of {at, change, endpoint}' : 'is not a list', raw === undefined ? 'KPSIM_ERR_MODEL_MISSING_FIELD' : 'KPSIM_ERR_MODEL_BAD_FIELD');
  else {
    raw.forEach((item, i) => {
      const path = `events[${i}]`;
      if (!isObject(item)) return bad(path, 'is not a mapping {at, change, endpoint}');
      const at = item['at'];
      const change = item['change'];
      const endpoint = item['endpoint'];
      const node = item['node'];
      if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) return bad(`${path}.at`, `${JSON.stringify(at)} is not a time in seconds >= 0`);
      if (typeof change !== 'string' || !(CLUSTER_CHANGES as readonly string[]).includes(change)) {
        return bad(`${path}.change`, `${JSON.stringify(change)} is not one of ${CLUSTER_CHANGES.join(', ')}`);
      }
      if (change === 'service-deleted') {
        events.push({ at, change });
        return;
      }
      const parts = typeof endpoint === 'string' ? splitHostPort(endpoint) : undefined;
      if (parts === undefined) return bad(`${path}.endpoint`, endpoint === undefined ? 'is required: "ip:port"' : `${JSON.stringify(endpoint)} is not "ip:port"`, endpoint === undefined ? 'KPSIM_ERR_MODEL_MISSING_FIELD' : 'KPSIM_ERR_MODEL_BAD_FIELD');
      if (node !== undefined && typeof node !== 'string') return bad(`${path}.node`, `${JSON.stringify(node)} is not a node name`);
      events.push({ at, change: change as ClusterChangeKind, endpoint: joinHostPort(parts.ip, parts.port), ...(typeof node === 'string' ? { node } : {}) });
    });
  }
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1) throw new KpsimError('KPSIM_ERR_MODEL_INVALID', `${problems.length} problems:\n${problems.map((p) => `  ${p.message}`).join('\n')}`, { file });
  const sorted = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i).map(({ e }) => e);
  return { programmingDelaySeconds, packetIntervalSeconds, conntrackCleanup: cleanup !== false, events: sorted };
}

/**
 * The cluster after one change to a service's endpoints (a new Cluster; the input is left
 * alone). The service's slices of the endpoint's address type are the ones changed; an added
 * endpoint goes into the first of them, with the slice's ports.
 */
export function applyClusterChange(cluster: Cluster, service: { namespace: string; name: string }, change: ClusterChange, file: string): Cluster {
  const ofService = (s: EndpointSlice): boolean => s.namespace === service.namespace && s.serviceName === service.name;
  if (change.change === 'service-deleted') {
    return { ...cluster, services: cluster.services.filter((s) => !(s.namespace === service.namespace && s.name === service.name)), endpointSlices: cluster.endpointSlices.filter((s) => !ofService(s)) };
  }
  const { ip, port } = splitHostPort(change.endpoint!)!;
  const slices = cluster.endpointSlices.filter(ofService);
  const holds = (s: EndpointSlice): boolean => s.ports.some((p) => p.port === port) && s.endpoints.some((ep) => ep.addresses[0] === ip);
  const conditions: Record<Exclude<ClusterChangeKind, 'added' | 'removed' | 'service-deleted'>, Endpoint['conditions']> = {
    terminating: { ready: false, serving: true, terminating: true },
    'not-ready': { ready: false, serving: false, terminating: false },
    ready: { ready: true, serving: true, terminating: false },
  };
  let changed: EndpointSlice[];
  if (change.change === 'added') {
    if (slices.some(holds)) throw new KpsimError('KPSIM_ERR_MODEL_DUPLICATE', `endpoint ${change.endpoint} is already in the service's EndpointSlices`, { file, path: `events (at ${change.at})` });
    const target = slices.find((s) => s.ports.some((p) => p.port === port));
    if (target === undefined) throw new KpsimError('KPSIM_ERR_MODEL_UNKNOWN_REFERENCE', `no EndpointSlice of ${service.namespace}/${service.name} has port ${port} for endpoint ${change.endpoint}`, { file, path: `events (at ${change.at})` });
    const endpoint: Endpoint = { addresses: [ip], conditions: { ready: true, serving: true, terminating: false }, ...(change.node !== undefined ? { nodeName: change.node } : {}) };
    changed = slices.map((s) => (s === target ? { ...s, endpoints: [...s.endpoints, endpoint] } : s));
  } else {
    if (!slices.some(holds)) throw new KpsimError('KPSIM_ERR_MODEL_UNKNOWN_REFERENCE', `endpoint ${change.endpoint} is not in the EndpointSlices of ${service.namespace}/${service.name} (at ${change.at} s)`, { file, path: `events (at ${change.at})` });
    changed = slices.map((s) => {
      if (!holds(s)) return s;
      const endpoints = change.change === 'removed'
        ? s.endpoints.filter((ep) => ep.addresses[0] !== ip)
        : s.endpoints.map((ep) => (ep.addresses[0] === ip ? { ...ep, conditions: conditions[change.change as keyof typeof conditions] } : ep));
      return { ...s, endpoints };
    });
  }
  return { ...cluster, endpointSlices: [...cluster.endpointSlices.filter((s) => !ofService(s)), ...changed] };
}
