/**
 * The status each workload controller writes after a sync, from the pods it has
 * (pkg/controller/replicaset calculateStatus, deployment/sync.go calculateStatus,
 * statefulset updateStatefulSetStatus, daemon updateDaemonSetStatus): counts of pods, Ready
 * pods and available pods (Ready, since kpsim's pods have no minReadySeconds to wait out),
 * observedGeneration, a Deployment's conditions. Fields the API leaves out when zero
 * (omitempty) are left out. Conditions that keep their status keep their times, so a sync that
 * changes nothing writes nothing. Pure: the time is passed in.
 */
import { type Json, type JsonObject, isObject } from '../model/fields.js';
import type { Pod, Workload } from '../model/types.js';

function counts(pods: readonly Pod[]): { replicas: number; ready: number } {
  let ready = 0;
  for (const pod of pods) if (pod.ready && pod.phase === 'Running') ready++;
  return { replicas: pods.length, ready };
}

function nonZero(key: string, value: number): JsonObject {
  return value !== 0 ? { [key]: value } : {};
}

export function replicaSetStatus(pods: readonly Pod[], generation: number): JsonObject {
  const { replicas, ready } = counts(pods);
  return { replicas, ...nonZero('fullyLabeledReplicas', replicas), ...nonZero('readyReplicas', ready), ...nonZero('availableReplicas', ready), observedGeneration: generation };
}

interface DeploymentCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

function deploymentCondition(c: DeploymentCondition, previous: readonly JsonObject[], now: string): JsonObject {
  const status = c.status ? 'True' : 'False';
  const before = previous.find((p) => p['type'] === c.type);
  const same = before !== undefined && before['status'] === status;
  const unchanged = same && before['reason'] === c.reason && before['message'] === c.message;
  const time = (key: string, keep: boolean): Json => (keep && typeof before?.[key] === 'string' ? before[key]! : now);
  return { type: c.type, status, lastUpdateTime: time('lastUpdateTime', unchanged), lastTransitionTime: time('lastTransitionTime', same), reason: c.reason, message: c.message };
}

/** maxUnavailable of a rolling update (25% by default, rounded down); 0 for Recreate. */
function maxUnavailable(deployment: JsonObject, replicas: number): number {
  const spec = isObject(deployment['spec']) ? deployment['spec'] : {};
  const strategy = isObject(spec['strategy']) ? spec['strategy'] : {};
  if (strategy['type'] === 'Recreate') return 0;
  const rolling = isObject(strategy['rollingUpdate']) ? strategy['rollingUpdate'] : {};
  const value = rolling['maxUnavailable'] ?? '25%';
  if (typeof value === 'number') return value;
  const match = typeof value === 'string' ? /^(\d+)%$/.exec(value) : null;
  return match ? Math.floor((Number(match[1]) * replicas) / 100) : 0;
}

/**
 * A Deployment's status from its ReplicaSets' pods: `current` is the ReplicaSet of its template
 * (updatedReplicas counts its pods), `pods` the pods of all of them.
 */
export function deploymentStatus(deployment: Workload, manifest: JsonObject, current: string | undefined, currentPods: readonly Pod[], pods: readonly Pod[], generation: number, now: string): JsonObject {
  const { replicas, ready } = counts(pods);
  const previous = (isObject(manifest['status']) && Array.isArray(manifest['status']['conditions']) ? manifest['status']['conditions'] : []).filter(isObject);
  const minimum = deployment.replicas - maxUnavailable(manifest, deployment.replicas);
  const available: DeploymentCondition =
    ready >= minimum
      ? { type: 'Available', status: true, reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
      : { type: 'Available', status: false, reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' };
  const complete = currentPods.length === deployment.replicas && replicas === deployment.replicas && ready === deployment.replicas;
  const progressing: DeploymentCondition = complete
    ? { type: 'Progressing', status: true, reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${current ?? ''}" has successfully progressed.` }
    : { type: 'Progressing', status: true, reason: 'ReplicaSetUpdated', message: `ReplicaSet "${current ?? ''}" is progressing.` };
  return {
    observedGeneration: generation,
    replicas,
    ...nonZero('updatedReplicas', currentPods.length),
    ...nonZero('readyReplicas', ready),
    ...nonZero('availableReplicas', ready),
    ...nonZero('unavailableReplicas', Math.max(deployment.replicas - ready, 0)),
    conditions: [deploymentCondition(available, previous, now), deploymentCondition(progressing, previous, now)],
  };
}

export function statefulSetStatus(set: Workload, pods: readonly Pod[], generation: number): JsonObject {
  const { replicas, ready } = counts(pods);
  const revision = `${set.name}-${set.template.hash}`;
  return {
    observedGeneration: generation,
    replicas,
    ...nonZero('readyReplicas', ready),
    ...nonZero('currentReplicas', replicas),
    ...nonZero('updatedReplicas', replicas),
    currentRevision: revision,
    updateRevision: revision,
    collisionCount: 0,
    availableReplicas: ready,
  };
}

/** `desired`: the nodes the DaemonSet may run on; `misplaced`: its pods on nodes it may not run on. */
export function daemonSetStatus(pods: readonly Pod[], desired: number, misplaced: number, generation: number): JsonObject {
  const { replicas, ready } = counts(pods);
  const scheduled = replicas - misplaced;
  return {
    currentNumberScheduled: scheduled,
    numberMisscheduled: misplaced,
    desiredNumberScheduled: desired,
    numberReady: ready,
    observedGeneration: generation,
    ...nonZero('updatedNumberScheduled', scheduled),
    ...nonZero('numberAvailable', ready),
    ...nonZero('numberUnavailable', Math.max(desired - ready, 0)),
  };
}
