/**
 * Manifest text + file name → typed objects. Pure: the file reading is in load.ts.
 *
 * Accepts YAML (one or many documents) and JSON, `kind: List` (and any *List) with items, the
 * kinds kube-proxy reads, and the kinds its EndpointSlices come from (Pods; Deployments,
 * ReplicaSets, StatefulSets, DaemonSets). Other kinds are counted and skipped: a folder of real
 * manifests also holds ConfigMaps and Jobs.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import { KpsimError } from '../errors.js';
import { decodeEndpointSlice, decodeLegacyEndpoints } from '../model/endpoint-slice.js';
import { FieldReader, type Json, type JsonObject, isObject } from '../model/fields.js';
import { decodeNode } from '../model/node.js';
import { decodePod } from '../model/pod.js';
import { decodeProxyConfig } from '../model/proxy-config.js';
import { decodeService } from '../model/service.js';
import { decodeServiceCIDR } from '../model/service-cidr.js';
import type { SharedValues } from '../model/shared-values.js';
import type { EndpointSlice, Node, Pod, ProxyConfig, Service, Warning, Workload, WorkloadKind } from '../model/types.js';
import { WORKLOAD_KINDS, decodeWorkload } from '../model/workload.js';

export interface DecodeOptions {
  /** Fill in what the API server always defaults (protocol TCP). */
  apiDefaults?: boolean;
  /** Share equal labels, owner references and container ports among the objects decoded with it (one per load). */
  shared?: SharedValues;
}

export interface DecodedManifest {
  services: Service[];
  endpointSlices: EndpointSlice[];
  nodes: Node[];
  configs: ProxyConfig[];
  pods: Pod[];
  workloads: Workload[];
  /** spec.cidrs of every ServiceCIDR. */
  serviceCIDRs: string[];
  /** Kinds kpsim does not use, with how many objects of each were skipped. */
  skippedKinds: Map<string, number>;
  problems: KpsimError[];
  warnings: Warning[];
}

export function emptyDecodedManifest(): DecodedManifest {
  return { services: [], endpointSlices: [], nodes: [], configs: [], pods: [], workloads: [], serviceCIDRs: [], skippedKinds: new Map(), problems: [], warnings: [] };
}

/** Decode one file's text; `file` names it in messages. Problems are collected, never thrown. */
export function decodeManifest(text: string, file: string, options: DecodeOptions = {}): DecodedManifest {
  const out = emptyDecodedManifest();
  const documents = parseDocuments(text, file, out.problems);
  documents.forEach((doc, index) => decodeDocument(doc, file, documentLabel(documents.length, index), options, out));
  return out;
}

/** Decode one object already parsed (from the API or a live cluster); `file` names its source in messages. */
export function decodeObject(doc: Json, file: string, options: DecodeOptions = {}): DecodedManifest {
  const out = emptyDecodedManifest();
  decodeDocument(doc, file, '', options, out);
  return out;
}

/**
 * A file's text → its documents (YAML, one or many, or JSON), without decoding them; syntax
 * problems are added to `problems` naming the file. For callers that keep the objects as they
 * are (the API's store).
 */
export function parseDocuments(text: string, file: string, problems: KpsimError[]): Json[] {
  return looksLikeJSON(text, file) ? parseJSON(text, file, problems) : parseYAML(text, file, problems);
}

/**
 * A JSON List given in pieces (its bytes scanned by json-list.ts): `head` is its top-level object
 * with the items array emptied, `items` each item's JSON text, in order. Each item is parsed and
 * decoded as it comes, so its tree dies young instead of the whole List's tree staying alive until
 * the last item is decoded. Gives what decodeManifest of the whole text gives (the same objects,
 * labels and problems), or undefined when the head is not a List or a piece is not valid JSON:
 * decodeManifest of the whole text then reports the problem in JSON.parse's words.
 */
export function decodeJSONListPieces(head: string, items: Iterable<string>, file: string, options: DecodeOptions = {}): DecodedManifest | undefined {
  let list: Json;
  try {
    list = JSON.parse(head) as Json;
  } catch {
    return undefined;
  }
  // Of a List, decodeDocument reads only kind and items; any other head goes the whole way.
  const kind = isObject(list) ? list['kind'] : undefined;
  if (typeof kind !== 'string' || !kind.endsWith('List')) return undefined;
  const out = emptyDecodedManifest();
  let index = 0;
  for (const text of items) {
    let item: Json;
    try {
      item = JSON.parse(text) as Json;
    } catch {
      return undefined;
    }
    decodeDocument(item, file, `${kind} item ${index++}`, options, out);
  }
  return out;
}

/** Merge b into a (for many files). */
export function mergeDecoded(a: DecodedManifest, b: DecodedManifest): void {
  a.services.push(...b.services);
  a.endpointSlices.push(...b.endpointSlices);
  a.nodes.push(...b.nodes);
  a.configs.push(...b.configs);
  a.pods.push(...b.pods);
  a.workloads.push(...b.workloads);
  a.serviceCIDRs.push(...b.serviceCIDRs);
  for (const [kind, n] of b.skippedKinds) a.skippedKinds.set(kind, (a.skippedKinds.get(kind) ?? 0) + n);
  a.problems.push(...b.problems);
  a.warnings.push(...b.warnings);
}

function looksLikeJSON(text: string, file: string): boolean {
  if (file.endsWith('.json')) return true;
  const first = text.trimStart()[0];
  return first === '{' || first === '[';
}

function documentLabel(count: number, index: number): string {
  return count > 1 ? `document ${index + 1}` : '';
}

function parseJSON(text: string, file: string, problems: KpsimError[]): Json[] {
  try {
    const value = JSON.parse(text) as Json;
    return Array.isArray(value) ? value : [value];
  } catch (e) {
    problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', `not valid JSON: ${(e as Error).message}`, { file }));
    return [];
  }
}

/** Aliases one document may expand; more is a billion-laughs document, refused before it grows. */
export const MAX_YAML_ALIASES = 100;

function parseYAML(text: string, file: string, problems: KpsimError[]): Json[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [];
  const values: Json[] = [];
  for (const doc of list) {
    const errors = doc.errors;
    if (errors.length > 0) {
      for (const err of errors) {
        const pos = lineCounter.linePos(err.pos[0]);
        const detail = `not valid YAML: ${err.message.split('\n')[0]}`;
        problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', detail, { file, path: `line ${pos.line} column ${pos.col}` }));
      }
      continue;
    }
    try {
      values.push(doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) as Json);
    } catch (e) {
      // The yaml library refuses a document whose aliases would expand past the limit (a
      // "billion laughs" bomb) with a ReferenceError; that is a problem of the file, not a bug.
      // An alias to an anchor not yet set is a ReferenceError too.
      if (!(e instanceof ReferenceError)) throw e;
      const detail = /excessive alias count/i.test(e.message)
        ? `not accepted: its aliases expand to more than ${MAX_YAML_ALIASES} copies (a YAML alias bomb?)`
        : `not valid YAML: ${e.message}`;
      problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', detail, { file }));
    }
  }
  return values;
}

function decodeDocument(doc: Json, file: string, label: string, options: DecodeOptions, out: DecodedManifest): void {
  if (doc === null || doc === undefined) return; // an empty document ("---" at the end of a file)
  if (!isObject(doc)) {
    out.problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SHAPE', 'is not a Kubernetes object (a mapping with apiVersion and kind)', { file, object: label }));
    return;
  }
  const kind = doc['kind'];
  const apiVersion = doc['apiVersion'];
  const what = describeObject(doc, label);
  if (typeof kind !== 'string' || kind === '') {
    out.problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SHAPE', 'is required', { file, object: what, path: 'kind' }));
    return;
  }
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(doc['items']))) {
    const items = Array.isArray(doc['items']) ? doc['items'] : [];
    items.forEach((item, i) => decodeDocument(item, file, `${kind} item ${i}`, options, out));
    return;
  }
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    out.problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SHAPE', 'is required', { file, object: what, path: 'apiVersion' }));
    return;
  }
  const r = new FieldReader(file, what, options.apiDefaults ?? false);
  r.shared = options.shared;
  decodeKnownKind(`${apiVersion} ${kind}`, doc, r, out) || countSkipped(kind, apiVersion, out);
  out.problems.push(...r.problems);
  out.warnings.push(...r.warnings);
}

/** Decodes a kind kube-proxy reads; false when kpsim does not use this kind. */
function decodeKnownKind(key: string, doc: JsonObject, r: FieldReader, out: DecodedManifest): boolean {
  switch (key) {
    case 'v1 Service':
      pushDefined(out.services, decodeService(doc, r));
      return true;
    case 'discovery.k8s.io/v1 EndpointSlice':
    case 'discovery.k8s.io/v1beta1 EndpointSlice':
      pushDefined(out.endpointSlices, decodeEndpointSlice(doc, r));
      return true;
    case 'v1 Endpoints':
      out.endpointSlices.push(...decodeLegacyEndpoints(doc, r));
      return true;
    case 'v1 Node':
      pushDefined(out.nodes, decodeNode(doc, r));
      return true;
    case 'networking.k8s.io/v1 ServiceCIDR':
    case 'networking.k8s.io/v1beta1 ServiceCIDR':
      out.serviceCIDRs.push(...(decodeServiceCIDR(doc, r) ?? []));
      return true;
    case 'kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration':
      out.configs.push(decodeProxyConfig(doc, r));
      return true;
    case 'v1 Pod':
      pushDefined(out.pods, decodePod(doc, r));
      return true;
    default: {
      const kind = key.startsWith('apps/v1 ') ? key.slice('apps/v1 '.length) : '';
      if (!(WORKLOAD_KINDS as readonly string[]).includes(kind)) return false;
      pushDefined(out.workloads, decodeWorkload(kind as WorkloadKind, doc, r));
      return true;
    }
  }
}

function pushDefined<T>(list: T[], value: T | undefined): void {
  if (value !== undefined) list.push(value);
}

function countSkipped(kind: string, apiVersion: string, out: DecodedManifest): void {
  const key = `${kind} (${apiVersion})`;
  out.skippedKinds.set(key, (out.skippedKinds.get(key) ?? 0) + 1);
}

/** "Service default/web" when the name is there, else the kind and document number. */
function describeObject(doc: JsonObject, label: string): string {
  const kind = typeof doc['kind'] === 'string' ? doc['kind'] : 'object';
  const meta = doc['metadata'];
  if (isObject(meta) && typeof meta['name'] === 'string' && meta['name'] !== '') {
    const ns = typeof meta['namespace'] === 'string' && meta['namespace'] !== '' ? meta['namespace'] : undefined;
    const namespaced = typeof doc['kind'] === 'string' && kind !== 'Node' && kind !== 'KubeProxyConfiguration';
    return namespaced ? `${kind} ${ns ?? 'default'}/${meta['name']}` : `${kind} ${meta['name']}`;
  }
  return label === '' ? kind : `${kind} (${label})`;
}
