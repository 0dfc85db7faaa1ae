/**
 * The `scale` subresource of Deployments, ReplicaSets and StatefulSets (what `kubectl scale`
 * patches): the object seen as an autoscaling/v1 Scale, and a Scale written back into the
 * object's spec.replicas (pkg/registry/apps/deployment/storage: scaleFromDeployment,
 * scaleUpdatedObjectInfo).
 */
import { KpsimError } from '../../errors.js';
import { type Json, type JsonObject, isObject } from '../../model/fields.js';
import { formatLabelSelector } from '../../model/label-selector.js';
import type { LabelSelector, LabelSelectorRequirement } from '../../model/types.js';
import type { ResourceType } from './resources.js';
import { badRequest, conflict, invalid } from './status.js';

function mapOf(value: Json | undefined): JsonObject {
  return isObject(value) ? value : {};
}

/** A stored metav1.LabelSelector as a typed one, leniently (the object was validated when written). */
function selectorOf(value: Json | undefined): LabelSelector {
  const selector = mapOf(value);
  const matchLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries(mapOf(selector['matchLabels']))) if (typeof v === 'string') matchLabels[k] = v;
  const matchExpressions: LabelSelectorRequirement[] = (Array.isArray(selector['matchExpressions']) ? selector['matchExpressions'] : []).filter(isObject).map((e) => ({
    key: String(e['key'] ?? ''),
    operator: (['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(String(e['operator'])) ? e['operator'] : 'In') as LabelSelectorRequirement['operator'],
    values: (Array.isArray(e['values']) ? e['values'] : []).map(String),
  }));
  return { matchLabels, matchExpressions };
}

/** A stored selector as labels.Selector prints it ("app=web"), "<none>" when empty. */
export function formatSelectorJson(value: Json | undefined): string {
  return formatLabelSelector(selectorOf(value));
}

/** The object as an autoscaling/v1 Scale. */
export function scaleOf(obj: JsonObject): JsonObject {
  const meta = mapOf(obj['metadata']);
  const spec = mapOf(obj['spec']);
  const status = mapOf(obj['status']);
  const selector = formatSelectorJson(spec['selector']);
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: meta['name'] ?? '',
      namespace: meta['namespace'] ?? '',
      ...(meta['uid'] !== undefined ? { uid: meta['uid'] } : {}),
      ...(meta['resourceVersion'] !== undefined ? { resourceVersion: meta['resourceVersion'] } : {}),
      ...(meta['creationTimestamp'] !== undefined ? { creationTimestamp: meta['creationTimestamp'] } : {}),
    },
    spec: { replicas: typeof spec['replicas'] === 'number' ? spec['replicas'] : 1 },
    status: { replicas: typeof status['replicas'] === 'number' ? status['replicas'] : 0, ...(selector !== '<none>' ? { selector } : {}) },
  };
}

/**
 * The object with the replicas a Scale asks for. A Scale naming another object is a 400; a stale
 * metadata.resourceVersion a 409; replicas that are not a whole number >= 0 a 422.
 */
export function scaledObject(type: ResourceType, obj: JsonObject, scale: Json): JsonObject {
  if (!isObject(scale)) throw badRequest('the body of the request is not a Scale object');
  const meta = mapOf(obj['metadata']);
  const name = String(meta['name'] ?? '');
  const scaleMeta = mapOf(scale['metadata']);
  if (scale['kind'] !== undefined && scale['kind'] !== 'Scale') throw badRequest(`the kind in the data (${String(scale['kind'])}) does not match the expected kind (Scale)`);
  if (scaleMeta['name'] !== undefined && scaleMeta['name'] !== name) throw badRequest(`the name of the object (${String(scaleMeta['name'])}) does not match the name on the URL (${name})`);
  if (scaleMeta['resourceVersion'] !== undefined && scaleMeta['resourceVersion'] !== '' && scaleMeta['resourceVersion'] !== meta['resourceVersion']) throw conflict(type, name);
  const replicas = mapOf(scale['spec'])['replicas'];
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > 2 ** 31 - 1) {
    throw invalid({ ...type, kind: 'Scale', group: 'autoscaling' }, name, [new KpsimError('KPSIM_ERR_MODEL_BAD_FIELD', `Invalid value: ${JSON.stringify(replicas ?? null)}: must be greater than or equal to 0`, { file: 'api', object: `Scale ${String(meta['namespace'] ?? '')}/${name}`, path: 'spec.replicas' })]);
  }
  const out = structuredClone(obj);
  delete mapOf(out['metadata'])['resourceVersion'];
  out['spec'] = { ...mapOf(out['spec']), replicas };
  return out;
}
