/** metadata.name / namespace / labels / annotations, shared by every kind; ownerReferences. */
import { child, type FieldReader, type Json, type JsonObject, isDNSSubdomain, isObject } from './fields.js';
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
  // Loaded by name, handed to the reader only when not plainly set (its load, by a key that
  // changes from call to call, is a slow one: every object of a load has these fields).
  const metaValue = doc['metadata'];
  const meta = isObject(metaValue) ? metaValue : (r.object_(doc, 'metadata', '') ?? {});
  const nameValue = meta['name'];
  const namespaceValue = meta['namespace'];
  const name = typeof nameValue === 'string' && nameValue !== '' ? nameValue : r.string(meta, 'name', 'metadata', true);
  const namespace = !namespaced ? '' : typeof namespaceValue === 'string' && namespaceValue !== '' ? namespaceValue : (r.string(meta, 'namespace', 'metadata') ?? 'default');
  if (name !== undefined && !isDNSSubdomain(name)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'metadata.name', `${JSON.stringify(name)} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')`);
  }
  if (namespaced && !isDNSSubdomain(namespace)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'metadata.namespace', `${JSON.stringify(namespace)} is not a valid namespace`);
  }
  if (name !== undefined) r.object = namespaced ? `${kind} ${namespace}/${name}` : `${kind} ${name}`;
  const labels = r.stringMap(meta, 'labels', 'metadata');
  const annotations = meta['annotations'] === undefined ? {} : r.stringMap(meta, 'annotations', 'metadata');
  return name === undefined ? undefined : { name, namespace, labels, annotations };
}

/** metadata.ownerReferences: which controller owns the object (a ReplicaSet's Pods, a Deployment's ReplicaSets). */
export function readOwnerReferences(doc: JsonObject, r: FieldReader): OwnerReference[] {
  const meta = isObject(doc['metadata']) ? doc['metadata'] : {};
  const ownerValues = meta['ownerReferences'];
  const values = Array.isArray(ownerValues) ? ownerValues : r.list(meta, 'ownerReferences', 'metadata');
  const refs: OwnerReference[] = [];
  for (let i = 0; i < values.length; i++) {
    // A reference as the API server stores it is taken as it is; any other goes the way that
    // reports what is wrong with it (its field path made only then).
    const ref = plainOwnerReference(values[i]!) ?? readOwnerReference(values[i]!, child('metadata.ownerReferences', i), r);
    if (ref !== undefined) refs.push(r.shared?.ownerReference(ref) ?? ref);
  }
  return exactList(refs);
}

/** The reference when readOwnerReference would report nothing about it: the three names set, uid and controller of their types or absent. */
function plainOwnerReference(o: Json): OwnerReference | undefined {
  if (!isObject(o)) return undefined;
  const apiVersion = o['apiVersion'];
  const kind = o['kind'];
  const name = o['name'];
  const uid = o['uid'];
  const controller = o['controller'];
  if (typeof apiVersion !== 'string' || apiVersion === '' || typeof kind !== 'string' || kind === '' || typeof name !== 'string' || name === '') return undefined;
  if (uid !== undefined && uid !== null && typeof uid !== 'string') return undefined;
  if (controller !== undefined && controller !== null && typeof controller !== 'boolean') return undefined;
  const ref: OwnerReference = { apiVersion, kind, name, controller: controller ?? false };
  if (typeof uid === 'string' && uid !== '') ref.uid = uid;
  return ref;
}

function readOwnerReference(o: Json, path: string, r: FieldReader): OwnerReference | undefined {
  if (!isObject(o)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const apiVersion = r.string(o, 'apiVersion', path, true);
  const kind = r.string(o, 'kind', path, true);
  const name = r.string(o, 'name', path, true);
  if (apiVersion === undefined || kind === undefined || name === undefined) return undefined;
  const uid = r.string(o, 'uid', path);
  const ref: OwnerReference = { apiVersion, kind, name, controller: r.boolean(o, 'controller', path) ?? false };
  if (uid !== undefined && uid !== '') ref.uid = uid;
  return ref;
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
