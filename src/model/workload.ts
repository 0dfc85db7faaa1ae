/**
 * apps/v1 Deployment, ReplicaSet, StatefulSet and DaemonSet: the selector, the pod template and
 * the counts their controllers act on, validated as the API server validates them (a missing or
 * empty selector, a template its selector does not match: the same field paths and words).
 */
import { controllerHash } from '../util/hash.js';
import { type FieldReader, type JsonObject, isObject } from './fields.js';
import { labelsValueText, matchesSelector, readLabelSelector } from './label-selector.js';
import { metadataString, readMetadata, readOwnerReferences } from './metadata.js';
import { readPodSpec } from './pod.js';
import type { Workload, WorkloadKind } from './types.js';

export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet'];

/** What the API server says of an empty selector ("for deployment" for a ReplicaSet too: its validation reuses the words). */
const EMPTY_SELECTOR_WORDS: Record<WorkloadKind, string> = {
  Deployment: 'deployment',
  ReplicaSet: 'deployment',
  StatefulSet: 'statefulset',
  DaemonSet: 'daemonset',
};

export function decodeWorkload(kind: WorkloadKind, doc: JsonObject, r: FieldReader): Workload | undefined {
  const meta = readMetadata(doc, r, kind, true);
  if (!meta) return undefined;
  const spec = r.object_(doc, 'spec', '') ?? {};
  const replicas = kind === 'DaemonSet' ? 0 : (r.integer(spec, 'replicas', 'spec', 0, 2 ** 31 - 1) ?? 1);
  const problemsBefore = r.problems.length;
  const selector = readLabelSelector(spec, 'selector', 'spec', r);
  // A selector with a bad requirement cannot be built, so the API server does not match the template against it.
  const selectorValid = r.problems.length === problemsBefore;
  const templateObject = r.object_(spec, 'template', 'spec');
  if (!templateObject) r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', 'spec.template', 'Required value');
  const template = templateObject ?? {};
  const templateMeta = isObject(template['metadata']) ? template['metadata'] : {};
  const templateLabels = r.stringMap(templateMeta, 'labels', 'spec.template.metadata');
  const templateAnnotations = r.stringMap(templateMeta, 'annotations', 'spec.template.metadata');
  const podSpec = readPodSpec(r.object_(template, 'spec', 'spec.template') ?? {}, 'spec.template.spec', r);

  if (!selector) {
    r.fail('KPSIM_ERR_MODEL_MISSING_FIELD', 'spec.selector', 'Required value');
    return undefined;
  }
  if (Object.keys(selector.matchLabels).length + selector.matchExpressions.length === 0) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'spec.selector', `Invalid value: {}: empty selector is invalid for ${EMPTY_SELECTOR_WORDS[kind]}`);
    return undefined;
  }
  if (templateObject && selectorValid && !matchesSelector(selector, templateLabels)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', 'spec.template.metadata.labels', `Invalid value: ${labelsValueText(templateLabels)}: \`selector\` does not match template \`labels\``);
  }
  const hash = controllerHash(template);
  // A template without the pod-template-hash label (every Deployment's) is its own base: hashed once.
  const baseTemplate = withoutTemplateHash(template);
  const workload: Workload = {
    kind,
    origin: { file: r.file, object: r.object },
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    ownerReferences: readOwnerReferences(doc, r),
    replicas,
    selector,
    template: { labels: templateLabels, annotations: templateAnnotations, spec: podSpec, hash, baseHash: baseTemplate === template ? hash : controllerHash(baseTemplate) },
    serviceName: '',
    podManagementPolicy: 'OrderedReady',
    ordinalsStart: 0,
  };
  const uid = metadataString(doc, 'uid');
  const creationTimestamp = metadataString(doc, 'creationTimestamp');
  if (uid !== undefined) workload.uid = uid;
  if (creationTimestamp !== undefined) workload.creationTimestamp = creationTimestamp;
  if (kind === 'StatefulSet') {
    workload.serviceName = r.string(spec, 'serviceName', 'spec') ?? '';
    workload.podManagementPolicy = r.oneOf(spec, 'podManagementPolicy', 'spec', ['OrderedReady', 'Parallel'] as const, 'OrderedReady');
    const ordinals = r.object_(spec, 'ordinals', 'spec');
    workload.ordinalsStart = (ordinals ? r.integer(ordinals, 'start', 'spec.ordinals', 0, 2 ** 31 - 1) : undefined) ?? 0;
  }
  return workload;
}

/** The template without the pod-template-hash label the Deployment controller adds to its ReplicaSets' templates. */
function withoutTemplateHash(template: JsonObject): JsonObject {
  const meta = isObject(template['metadata']) ? template['metadata'] : undefined;
  const labels = meta && isObject(meta['labels']) ? meta['labels'] : undefined;
  if (!labels || !('pod-template-hash' in labels)) return template;
  const { 'pod-template-hash': _hash, ...rest } = labels;
  return { ...template, metadata: { ...meta, labels: rest } };
}
