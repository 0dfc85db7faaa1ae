/** metadata.name / namespace / labels, shared by every kind. */
import { type FieldReader, type JsonObject, isDNSSubdomain } from './fields.js';

export interface Metadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

/**
 * Reads metadata and names the object for later messages ("Service default/web"). Returns
 * undefined when the object has no usable name: nothing else about it can be reported usefully.
 */
export function readMetadata(doc: JsonObject, r: FieldReader, kind: string, namespaced: boolean): Metadata | undefined {
  const meta = r.object_(doc, 'metadata', '') ?? {};
  const name = r.string(meta, 'name', 'metadata', true);
  const namespace = namespaced ? (r.string(meta, 'namespace', 'metadata') ?? 'default') : '';
  if (name !== undefined && !isDNSSubdomain(name)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'metadata.name', `${JSON.stringify(name)} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')`);
  }
  if (namespaced && !isDNSSubdomain(namespace)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'metadata.namespace', `${JSON.stringify(namespace)} is not a valid namespace`);
  }
  if (name !== undefined) r.object = namespaced ? `${kind} ${namespace}/${name}` : `${kind} ${name}`;
  const labels = r.stringMap(meta, 'labels', 'metadata');
  return name === undefined ? undefined : { name, namespace, labels };
}
