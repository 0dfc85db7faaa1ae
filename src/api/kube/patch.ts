/**
 * The four PATCH bodies the API server takes (apiserver pkg/endpoints/handlers/patch.go):
 *
 * - `application/merge-patch+json`: RFC 7386 JSON merge patch (kubectl label, annotate, --type=merge);
 * - `application/json-patch+json`: RFC 6902 operations (kubectl patch --type=json), via fast-json-patch;
 * - `application/strategic-merge-patch+json`: Kubernetes' strategic merge (kubectl apply, edit, patch),
 *   where lists with a merge key merge element by element and the directives `$patch`,
 *   `$setElementOrder/<list>`, `$retainKeys` and `$deleteFromPrimitiveList/<list>` steer it
 *   (apimachinery pkg/util/strategicpatch/patch.go);
 * - `application/apply-patch+yaml`: server-side apply, here without field ownership (see applyConfiguration).
 *
 * Every function returns a new object and leaves its arguments alone.
 */
import jsonpatch from 'fast-json-patch';
import type { Json, JsonObject } from '../../model/fields.js';
import { isObject } from '../../model/fields.js';
import type { ResourceType } from './resources.js';
import { badRequest, unprocessable } from './status.js';

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

export const PATCH_CONTENT_TYPES: Readonly<Record<string, PatchType>> = {
  'application/merge-patch+json': 'merge',
  'application/json-patch+json': 'json',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

function clone<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** RFC 7386: objects merge key by key, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key] ?? null, value);
  }
  return out;
}

const JSON_PATCH_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** RFC 6902. A body that is not a list of operations is a 400; an operation that does not apply, a 422. */
export function jsonPatch(target: JsonObject, patch: Json): Json {
  if (!Array.isArray(patch)) throw badRequest('json patch: the body is not a list of operations');
  patch.forEach((op, i) => {
    if (!isObject(op) || typeof op['op'] !== 'string' || !JSON_PATCH_OPS.has(op['op']) || typeof op['path'] !== 'string') {
      throw badRequest(`json patch: operation ${i} is not an {"op", "path"} object with op one of add, remove, replace, move, copy, test`);
    }
  });
  try {
    return jsonpatch.applyPatch(clone(target), patch as unknown as jsonpatch.Operation[], true, true, true).newDocument as Json;
  } catch (e) {
    throw unprocessable(`the server rejected our request due to an error in our request: json patch: ${(e as Error).message.split('\n')[0]}`);
  }
}

interface ListStrategy {
  strategy: 'merge';
  /** The key list elements are matched on; absent for lists of scalars (a set union). */
  mergeKey?: string;
}

/**
 * patchStrategy / patchMergeKey struct tags of the fields these kinds have (k8s.io/api
 * core/v1/types.go, discovery/v1/types.go, meta/v1/types.go); every other list is replaced whole.
 * Keys are dotted field paths, list elements not counted.
 */
const COMMON_STRATEGIES: Readonly<Record<string, ListStrategy>> = {
  'metadata.finalizers': { strategy: 'merge' },
  'metadata.ownerReferences': { strategy: 'merge', mergeKey: 'uid' },
};
/** A PodSpec's lists (core/v1 PodSpec, Container), at `prefix` ("spec." in a Pod, "spec.template.spec." in a workload). */
function podSpecStrategies(prefix: string): Record<string, ListStrategy> {
  const out: Record<string, ListStrategy> = {};
  for (const containers of ['containers', 'initContainers', 'ephemeralContainers']) {
    out[`${prefix}${containers}`] = { strategy: 'merge', mergeKey: 'name' };
    out[`${prefix}${containers}.ports`] = { strategy: 'merge', mergeKey: 'containerPort' };
    out[`${prefix}${containers}.env`] = { strategy: 'merge', mergeKey: 'name' };
    out[`${prefix}${containers}.volumeMounts`] = { strategy: 'merge', mergeKey: 'mountPath' };
    out[`${prefix}${containers}.volumeDevices`] = { strategy: 'merge', mergeKey: 'devicePath' };
  }
  out[`${prefix}volumes`] = { strategy: 'merge', mergeKey: 'name' };
  out[`${prefix}imagePullSecrets`] = { strategy: 'merge', mergeKey: 'name' };
  out[`${prefix}hostAliases`] = { strategy: 'merge', mergeKey: 'ip' };
  return out;
}

const WORKLOAD_STRATEGIES: Readonly<Record<string, ListStrategy>> = {
  ...podSpecStrategies('spec.template.spec.'),
  'status.conditions': { strategy: 'merge', mergeKey: 'type' },
};

const STRATEGIES: Readonly<Record<string, Readonly<Record<string, ListStrategy>>>> = {
  Pod: {
    ...podSpecStrategies('spec.'),
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
    'status.podIPs': { strategy: 'merge', mergeKey: 'ip' },
    'status.hostIPs': { strategy: 'merge', mergeKey: 'ip' },
  },
  Deployment: WORKLOAD_STRATEGIES,
  ReplicaSet: WORKLOAD_STRATEGIES,
  StatefulSet: WORKLOAD_STRATEGIES,
  DaemonSet: WORKLOAD_STRATEGIES,
  Service: {
    'spec.ports': { strategy: 'merge', mergeKey: 'port' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
  },
  Node: {
    'spec.podCIDRs': { strategy: 'merge' },
    'status.conditions': { strategy: 'merge', mergeKey: 'type' },
    'status.addresses': { strategy: 'merge', mergeKey: 'type' },
  },
  Namespace: { 'status.conditions': { strategy: 'merge', mergeKey: 'type' } },
};

function strategyFor(kind: string, path: string): ListStrategy | undefined {
  return COMMON_STRATEGIES[path] ?? STRATEGIES[kind]?.[path];
}

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';

function isDirectiveKey(key: string): boolean {
  return key === '$patch' || key === '$retainKeys' || key.startsWith(SET_ORDER) || key.startsWith(DELETE_FROM_PRIMITIVE);
}

function childPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Strategic merge patch of one object of `type`. */
export function strategicMergePatch(type: ResourceType, original: JsonObject, patch: Json): JsonObject {
  if (!isObject(patch)) throw badRequest('strategic merge patch: the body is not a JSON object');
  const merged = mergeMap(type.kind, '', clone(original), patch);
  if (merged === undefined) throw unprocessable('strategic merge patch: a $patch: delete directive at the top level would delete the whole object');
  return merged;
}

/** Returns undefined when a `$patch: delete` directive removes the map. */
function mergeMap(kind: string, path: string, original: JsonObject, patch: JsonObject): JsonObject | undefined {
  const directive = patch['$patch'];
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return stripDirectives(kind, path, patch);
  if (directive !== undefined && directive !== 'merge') throw badRequest(`strategic merge patch: unknown $patch directive ${JSON.stringify(directive)} at ${path || 'the top level'}`);
  const retain = patch['$retainKeys'];
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw badRequest(`strategic merge patch: $retainKeys at ${path || 'the top level'} is not a list`);
    const keep = new Set(retain.map(String));
    for (const key of Object.keys(original)) if (!keep.has(key) && !(key in patch)) delete original[key];
  }
  for (const [key, value] of Object.entries(patch)) {
    if (!key.startsWith(DELETE_FROM_PRIMITIVE)) continue;
    const field = key.slice(DELETE_FROM_PRIMITIVE.length);
    const list = original[field];
    if (Array.isArray(list) && Array.isArray(value)) original[field] = list.filter((item) => !value.some((v) => sameJson(v, item)));
  }
  for (const [key, value] of Object.entries(patch)) {
    if (isDirectiveKey(key)) continue;
    const fieldPath = childPath(path, key);
    if (value === null) {
      delete original[key];
      continue;
    }
    const current = original[key];
    const order = patch[`${SET_ORDER}${key}`];
    if (isObject(value) && isObject(current)) {
      const merged = mergeMap(kind, fieldPath, current, value);
      if (merged === undefined) delete original[key];
      else original[key] = merged;
    } else if (Array.isArray(value) && Array.isArray(current)) {
      original[key] = mergeList(kind, fieldPath, current, value, Array.isArray(order) ? order : undefined);
    } else if (isObject(value)) {
      const merged = mergeMap(kind, fieldPath, {}, value);
      if (merged === undefined) delete original[key];
      else original[key] = merged;
    } else if (Array.isArray(value)) {
      original[key] = mergeList(kind, fieldPath, [], value, Array.isArray(order) ? order : undefined);
    } else {
      original[key] = value;
    }
  }
  // A $setElementOrder for a list the patch does not otherwise touch still reorders it.
  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(SET_ORDER)) continue;
    const field = key.slice(SET_ORDER.length);
    const list = original[field];
    if (!(field in patch) && Array.isArray(list) && Array.isArray(order)) original[field] = applyOrder(strategyFor(kind, childPath(path, field)), list, order);
  }
  return original;
}

function stripDirectives(kind: string, path: string, patch: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(patch)) {
    if (isDirectiveKey(key) || value === null) continue;
    const fieldPath = childPath(path, key);
    if (isObject(value)) out[key] = stripDirectives(kind, fieldPath, value);
    else if (Array.isArray(value)) out[key] = mergeList(kind, fieldPath, [], value, undefined);
    else out[key] = value;
  }
  return out;
}

function mergeList(kind: string, path: string, original: Json[], patch: Json[], order: Json[] | undefined): Json[] {
  const strategy = strategyFor(kind, path);
  if (!strategy) return patch.filter((item) => !(isObject(item) && item['$patch'] !== undefined)).map((item) => (isObject(item) ? stripDirectives(kind, path, item) : item));
  if (strategy.mergeKey === undefined) {
    // A list of scalars with strategy merge is a set: the patch adds what is missing.
    const out = [...original];
    for (const item of patch) if (!out.some((o) => sameJson(o, item))) out.push(item);
    return order ? applyOrder(strategy, out, order) : out;
  }
  const key = strategy.mergeKey;
  if (patch.some((item) => isObject(item) && item['$patch'] === 'replace')) {
    return patch.filter((item) => !(isObject(item) && item['$patch'] === 'replace')).map((item) => (isObject(item) ? stripDirectives(kind, path, item) : item));
  }
  let out = original.map((item) => (isObject(item) ? { ...item } : item));
  for (const item of patch) {
    if (!isObject(item)) throw badRequest(`strategic merge patch: ${path} holds objects merged on "${key}"; ${JSON.stringify(item)} is not one`);
    const keyValue = item[key];
    if (keyValue === undefined) throw badRequest(`strategic merge patch: an element of ${path} has no merge key "${key}"`);
    const index = out.findIndex((o) => isObject(o) && sameJson(o[key], keyValue));
    if (item['$patch'] === 'delete') {
      if (index >= 0) out = out.filter((_, i) => i !== index);
      continue;
    }
    if (index >= 0) {
      const merged = mergeMap(kind, path, out[index] as JsonObject, item);
      if (merged === undefined) out = out.filter((_, i) => i !== index);
      else out[index] = merged;
    } else {
      out.push(stripDirectives(kind, path, item));
    }
  }
  return order ? applyOrder(strategy, out, order) : out;
}

/**
 * `$setElementOrder/<list>`: elements named in the order come first, in that order; the rest
 * (elements only the server had) keep their relative order after them.
 */
function applyOrder(strategy: ListStrategy | undefined, list: Json[], order: Json[]): Json[] {
  const keyOf = (item: Json): string => (strategy?.mergeKey !== undefined && isObject(item) ? JSON.stringify(item[strategy.mergeKey]) : JSON.stringify(item));
  const wanted = order.map(keyOf);
  const ordered: Json[] = [];
  for (const k of wanted) {
    const found = list.find((item) => keyOf(item) === k);
    if (found !== undefined && !ordered.includes(found)) ordered.push(found);
  }
  for (const item of list) if (!ordered.includes(item)) ordered.push(item);
  return ordered;
}

/**
 * Server-side apply, simplified: the applied configuration is merged into the live object as a
 * strategic merge would merge it, and an apply to a missing object creates it. kpsim keeps no
 * managedFields, so it never reports a conflict between field managers and never removes a field
 * that an earlier apply set and this one leaves out.
 */
export function applyConfiguration(type: ResourceType, live: JsonObject | undefined, applied: Json): JsonObject {
  if (!isObject(applied)) throw badRequest('apply patch: the body is not an object');
  if (live === undefined) return stripDirectives(type.kind, '', applied);
  return strategicMergePatch(type, live, applied);
}
