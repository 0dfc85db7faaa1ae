/**
 * Pods as the workload controllers write them: the template's labels and spec, the labels each
 * controller adds, the owner reference, and the name (generateName for ReplicaSets and
 * DaemonSets, "name-ordinal" for StatefulSets).
 */
import type { OwnerReference, Pod, PodSpec, Workload } from '../model/types.js';

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
export const CONTROLLER_REVISION_HASH_LABEL = 'controller-revision-hash';
export const STATEFULSET_POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';
export const POD_TEMPLATE_GENERATION_LABEL = 'pod-template-generation';
/**
 * kpsim's own annotation, on a pod template or a Pod: "false" makes the pods kpsim runs not
 * Ready (their Ready condition False), as a failing readiness probe would. Ready otherwise.
 */
export const READY_ANNOTATION = 'kpsim.io/ready';

/** Whether a pod kpsim runs becomes Ready: unless its annotations say "false". */
export function readyByAnnotation(annotations: Readonly<Record<string, string>>): boolean {
  return annotations[READY_ANNOTATION] !== 'false';
}

/** The owner references of a workload's pods: the workload, as their controller. */
export function controllerReferences(owner: Workload): OwnerReference[] {
  return [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, controller: true }];
}

/**
 * A new, unscheduled pod of `owner` from its template. The pods of one workload share its
 * owner references and, when they have no labels of their own, the template's labels (pods are
 * data: nothing mutates them).
 */
export function podFromTemplate(owner: Workload, name: string, ownerReferences: OwnerReference[], extraLabels?: Record<string, string>, spec: Partial<PodSpec> = {}): Pod {
  return {
    kind: 'Pod',
    origin: { file: owner.origin.file, object: `Pod ${owner.namespace}/${name}` },
    namespace: owner.namespace,
    name,
    labels: extraLabels ? { ...owner.template.labels, ...extraLabels } : owner.template.labels,
    annotations: owner.template.annotations,
    ownerReferences,
    spec: { ...owner.template.spec, ...spec },
    podIPs: [],
    phase: 'Pending',
    ready: false,
    terminating: false,
    generated: true,
  };
}

/**
 * The ReplicaSet a Deployment makes: named after the Deployment and its pod-template-hash, the
 * hash added to its selector and its template's labels, replicas as the Deployment asks (the
 * state after a finished rollout: rolling updates are not modelled).
 */
export function replicaSetOf(deployment: Workload): Workload {
  const hash = deployment.template.hash;
  const name = `${deployment.name}-${hash}`;
  const labels = { ...deployment.template.labels, [POD_TEMPLATE_HASH_LABEL]: hash };
  return {
    kind: 'ReplicaSet',
    origin: { file: deployment.origin.file, object: `ReplicaSet ${deployment.namespace}/${name}` },
    namespace: deployment.namespace,
    name,
    labels,
    ownerReferences: controllerReferences(deployment),
    replicas: deployment.replicas,
    selector: { matchLabels: { ...deployment.selector.matchLabels, [POD_TEMPLATE_HASH_LABEL]: hash }, matchExpressions: deployment.selector.matchExpressions },
    template: { ...deployment.template, labels },
    serviceName: '',
    podManagementPolicy: 'OrderedReady',
    ordinalsStart: 0,
    generated: true,
  };
}

/** The labels the StatefulSet controller puts on the pod of one ordinal. */
export function statefulSetPodLabels(set: Workload, name: string, ordinal: number): Record<string, string> {
  return {
    [STATEFULSET_POD_NAME_LABEL]: name,
    [POD_INDEX_LABEL]: String(ordinal),
    [CONTROLLER_REVISION_HASH_LABEL]: `${set.name}-${set.template.hash}`,
  };
}

/** The labels the DaemonSet controller puts on its pods. */
export function daemonSetPodLabels(set: Workload): Record<string, string> {
  return { [CONTROLLER_REVISION_HASH_LABEL]: set.template.hash, [POD_TEMPLATE_GENERATION_LABEL]: '1' };
}
