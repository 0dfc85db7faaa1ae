/** metadata.name / namespace / labels / annotations, shared by every kind; ownerReferences. */
import { child, type FieldReader, type JsonObject, isDNSSubdomain, isObject } from './fields.js';
import { exactList } from './shared-values.js';
import type { OwnerReference } from './types.js';

export interface Metadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
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
  const annotations = r.stringMap(meta, 'annotations', 'metadata');
  return name === undefined ? undefined : { name, namespace, labels, annotations };
}

/** metadata.ownerReferences: which controller owns the object (a ReplicaSet's Pods, a Deployment's ReplicaSets). */
export function readOwnerReferences(doc: JsonObject, r: FieldReader): OwnerReference[] {
  const meta = isObject(doc['metadata']) ? doc['metadata'] : {};
  return exactList(r.list(meta, 'ownerReferences', 'metadata').flatMap((o, i) => {
    const path = child('metadata.ownerReferences', i);
    if (!isObject(o)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
      return [];
    }
    const apiVersion = r.string(o, 'apiVersion', path, true);
    const kind = r.string(o, 'kind', path, true);
    const name = r.string(o, 'name', path, true);
    if (apiVersion === undefined || kind === undefined || name === undefined) return [];
    const uid = r.string(o, 'uid', path);
    const ref: OwnerReference = { apiVersion, kind, name, controller: r.boolean(o, 'controller', path) ?? false, ...(uid !== undefined && uid !== '' ? { uid } : {}) };
    return [r.shared?.ownerReference(ref) ?? ref];
  }));
}

/** A string in the object's metadata (uid, creationTimestamp) as the API server set it; undefined when absent or not a string. */
export function metadataString(doc: JsonObject, key: string): string | undefined {
  const meta = doc['metadata'];
  const value = isObject(meta) ? meta[key] : undefined;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Whether the object's metadata has the key at all (deletionTimestamp: any value means terminating). */
export function hasMetadataField(doc: JsonObject, key: string): boolean {
  const meta = doc['metadata'];
  return isObject(meta) && meta[key] !== undefined && meta[key] !== null;
}
