/**
 * Manifest text + file name → typed objects. Pure: the file reading is in load.ts.
 *
 * Accepts YAML (one or many documents) and JSON, `kind: List` (and any *List) with items, and
 * the kinds kube-proxy reads. Other kinds are counted and skipped: a folder of real manifests
 * also holds Deployments and ConfigMaps.
 */
import { LineCounter, parseAllDocuments } from 'yaml';
import { KpsimError } from '../errors.js';
import { decodeEndpointSlice, decodeLegacyEndpoints } from '../model/endpoint-slice.js';
import { FieldReader, type Json, type JsonObject, isObject } from '../model/fields.js';
import { decodeNode } from '../model/node.js';
import { decodeProxyConfig } from '../model/proxy-config.js';
import { decodeService } from '../model/service.js';
import { decodeServiceCIDR } from '../model/service-cidr.js';
import type { EndpointSlice, Node, ProxyConfig, Service, Warning } from '../model/types.js';

export interface DecodeOptions {
  /** Fill in what the API server always defaults (protocol TCP). */
  apiDefaults?: boolean;
}

export interface DecodedManifest {
  services: Service[];
  endpointSlices: EndpointSlice[];
  nodes: Node[];
  configs: ProxyConfig[];
  /** spec.cidrs of every ServiceCIDR. */
  serviceCIDRs: string[];
  /** Kinds kpsim does not use, with how many objects of each were skipped. */
  skippedKinds: Map<string, number>;
  problems: KpsimError[];
  warnings: Warning[];
}

export function emptyDecodedManifest(): DecodedManifest {
  return { services: [], endpointSlices: [], nodes: [], configs: [], serviceCIDRs: [], skippedKinds: new Map(), problems: [], warnings: [] };
}

/** Decode one file's text; `file` names it in messages. Problems are collected, never thrown. */
export function decodeManifest(text: string, file: string, options: DecodeOptions = {}): DecodedManifest {
  const out = emptyDecodedManifest();
  const documents = looksLikeJSON(text, file) ? parseJSON(text, file, out) : parseYAML(text, file, out);
  documents.forEach((doc, index) => decodeDocument(doc, file, documentLabel(documents.length, index), options, out));
  return out;
}

/** Merge b into a (for many files). */
export function mergeDecoded(a: DecodedManifest, b: DecodedManifest): void {
  a.services.push(...b.services);
  a.endpointSlices.push(...b.endpointSlices);
  a.nodes.push(...b.nodes);
  a.configs.push(...b.configs);
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

function parseJSON(text: string, file: string, out: DecodedManifest): Json[] {
  try {
    const value = JSON.parse(text) as Json;
    return Array.isArray(value) ? value : [value];
  } catch (e) {
    out.problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', `not valid JSON: ${(e as Error).message}`, { file }));
    return [];
  }
}

function parseYAML(text: string, file: string, out: DecodedManifest): Json[] {
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
        out.problems.push(new KpsimError('KPSIM_ERR_MANIFEST_SYNTAX', detail, { file, path: `line ${pos.line} column ${pos.col}` }));
      }
      continue;
    }
    values.push(doc.toJS({ maxAliasCount: 100 }) as Json);
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
    default:
      return false;
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
