/**
 * The objects the controllers, the scheduler and the kubelets write, as the API stores them:
 * a Deployment's ReplicaSet, a workload's pod (as its controller creates it, then as the
 * scheduler binds it and as the kubelet reports it running), and the nodes --allocate makes up.
 * What kpsim's typed model decided (names, labels, nodes, addresses, readiness) put back into
 * manifests, the rest taken from the workload's template as written. Pure: times are passed in.
 */
import { type Json, type JsonObject, isObject } from '../model/fields.js';
import { nodeIPs } from '../model/node.js';
import type { Node, Pod, Toleration, Workload } from '../model/types.js';
import { POD_TEMPLATE_HASH_LABEL } from './pods.js';

/** The Kubernetes version kpsim's API answers as (discovery's /version). */
export const KUBELET_VERSION = 'v1.33.1';

export interface OwnerObject {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/** metav1.NewControllerRef: the owner as the controller of what it makes. */
export function controllerRef(owner: OwnerObject): JsonObject {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true };
}

function mapAt(obj: JsonObject, key: string): JsonObject {
  const value = obj[key];
  return isObject(value) ? value : {};
}

function intOrPercent(value: Json | undefined, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const match = typeof value === 'string' ? /^(\d+)%$/.exec(value) : null;
  if (!match) return 0;
  const exact = (Number(match[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** deployment.kubernetes.io/max-replicas: replicas plus the rolling update's maxSurge (25% by default). */
function maxReplicas(deployment: JsonObject, replicas: number): number {
  const strategy = mapAt(mapAt(deployment, 'spec'), 'strategy');
  if (strategy['type'] === 'Recreate') return replicas;
  const surge = mapAt(strategy, 'rollingUpdate')['maxSurge'] ?? '25%';
  return replicas + intOrPercent(surge, replicas, true);
}

/**
 * The ReplicaSet a Deployment makes (the Deployment controller's getNewReplicaSet): its
 * template and selector with the pod-template-hash label added, the replicas, the annotations
 * the Deployment controller keeps on it, and the Deployment as its controller.
 */
export function replicaSetManifest(deployment: JsonObject, replicaSet: Workload, owner: OwnerObject, revision: number): JsonObject {
  const spec = mapAt(deployment, 'spec');
  const template = structuredClone(mapAt(spec, 'template'));
  const hash = replicaSet.template.labels[POD_TEMPLATE_HASH_LABEL] ?? '';
  const templateMeta = mapAt(template, 'metadata');
  template['metadata'] = { ...templateMeta, labels: { ...mapAt(templateMeta, 'labels'), [POD_TEMPLATE_HASH_LABEL]: hash } };
  const selector = structuredClone(mapAt(spec, 'selector'));
  selector['matchLabels'] = { ...mapAt(selector, 'matchLabels'), [POD_TEMPLATE_HASH_LABEL]: hash };
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: replicaSet.name,
      namespace: replicaSet.namespace,
      labels: { ...replicaSet.labels },
      annotations: replicaSetAnnotations(deployment, replicaSet.replicas, revision),
      ownerReferences: [controllerRef(owner)],
    },
    spec: {
      replicas: replicaSet.replicas,
      ...(spec['minReadySeconds'] !== undefined ? { minReadySeconds: spec['minReadySeconds'] } : {}),
      selector,
      template,
    },
  };
}

/** The annotations the Deployment controller keeps on its ReplicaSets. */
export function replicaSetAnnotations(deployment: JsonObject, replicas: number, revision: number): Record<string, string> {
  return {
    'deployment.kubernetes.io/desired-replicas': String(replicas),
    'deployment.kubernetes.io/max-replicas': String(maxReplicas(deployment, replicas)),
    'deployment.kubernetes.io/revision': String(revision),
  };
}

function tolerationManifest(t: Toleration): JsonObject {
  return { ...(t.key !== '' ? { key: t.key } : {}), operator: t.operator, ...(t.value !== '' ? { value: t.value } : {}), ...(t.effect !== '' ? { effect: t.effect } : {}) };
}

/**
 * A pod as its controller creates it from the template (pkg/controller: GetPodFromTemplate):
 * the template's spec, the labels, annotations and name kpsim's controllers gave it, its owner;
 * a StatefulSet's hostname and subdomain; a DaemonSet's tolerations and the node affinity that
 * pins it to its node (ReplaceDaemonSetPodNodeNameNodeAffinity). Not yet scheduled, no status.
 */
export function podManifest(pod: Pod, template: JsonObject, owner: OwnerObject): JsonObject {
  const spec = structuredClone(mapAt(template, 'spec'));
  if (pod.spec.hostname !== '') spec['hostname'] = pod.spec.hostname;
  if (pod.spec.subdomain !== '') spec['subdomain'] = pod.spec.subdomain;
  if (owner.kind === 'DaemonSet') {
    spec['tolerations'] = pod.spec.tolerations.map(tolerationManifest);
    const affinity = mapAt(spec, 'affinity');
    const nodeAffinity = mapAt(affinity, 'nodeAffinity');
    nodeAffinity['requiredDuringSchedulingIgnoredDuringExecution'] = {
      nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [pod.spec.nodeName] }] }],
    };
    spec['affinity'] = { ...affinity, nodeAffinity };
  }
  const generateName = owner.kind === 'StatefulSet' ? undefined : `${owner.name}-`;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: pod.name,
      ...(generateName !== undefined ? { generateName } : {}),
      namespace: pod.namespace,
      labels: { ...pod.labels },
      ...(Object.keys(pod.annotations).length > 0 ? { annotations: { ...pod.annotations } } : {}),
      ownerReferences: [controllerRef(owner)],
    },
    spec,
  };
}

function condition(type: string, status: boolean, now: string, previous: JsonObject[], extra: JsonObject = {}): JsonObject {
  const text = status ? 'True' : 'False';
  const before = previous.find((c) => c['type'] === type);
  const since = before && before['status'] === text && typeof before['lastTransitionTime'] === 'string' ? before['lastTransitionTime'] : now;
  return { type, status: text, lastProbeTime: null, lastTransitionTime: since, ...extra };
}

function conditionsOf(status: JsonObject): JsonObject[] {
  return (Array.isArray(status['conditions']) ? status['conditions'] : []).filter(isObject);
}

/** The scheduler's binding: the node, and the PodScheduled condition (pods/binding). */
export function boundPod(manifest: JsonObject, nodeName: string, now: string): JsonObject {
  const out = structuredClone(manifest);
  out['spec'] = { ...mapAt(out, 'spec'), nodeName };
  const status = mapAt(out, 'status');
  const others = conditionsOf(status).filter((c) => c['type'] !== 'PodScheduled');
  out['status'] = { ...status, phase: status['phase'] ?? 'Pending', conditions: [...others, condition('PodScheduled', true, now, conditionsOf(status))] };
  return out;
}

/** Container names, in order: the containers kubectl counts in READY. */
function containerNames(manifest: JsonObject): { name: string; image: string }[] {
  const spec = mapAt(manifest, 'spec');
  return (Array.isArray(spec['containers']) ? spec['containers'] : []).filter(isObject).map((c) => ({ name: String(c['name'] ?? ''), image: String(c['image'] ?? '') }));
}

/**
 * The kubelet's status of a pod it started: Running, its addresses and its node's, the
 * conditions (Ready as kpsim decided: true unless kpsim.io/ready says "false"), one running
 * status per container. Conditions that keep their status keep their transition time.
 */
export function runningPodStatus(manifest: JsonObject, pod: Pod, node: Node | undefined, now: string): JsonObject {
  const previous = mapAt(manifest, 'status');
  const before = conditionsOf(previous);
  const containers = containerNames(manifest);
  const hostIPs = node ? nodeIPs(node).slice(0, 2) : [];
  const notReady: JsonObject = pod.ready ? {} : { reason: 'ContainersNotReady', message: `containers with unready status: [${containers.map((c) => c.name).join(' ')}]` };
  return {
    phase: 'Running',
    conditions: [
      condition('PodReadyToStartContainers', true, now, before),
      condition('Initialized', true, now, before),
      condition('Ready', pod.ready, now, before, notReady),
      condition('ContainersReady', pod.ready, now, before, notReady),
      condition('PodScheduled', true, now, before),
    ],
    ...(hostIPs.length > 0 ? { hostIP: hostIPs[0]!, hostIPs: hostIPs.map((ip) => ({ ip })) } : {}),
    podIP: pod.podIPs[0]!,
    podIPs: pod.podIPs.map((ip) => ({ ip })),
    startTime: typeof previous['startTime'] === 'string' ? previous['startTime'] : now,
    containerStatuses: containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      containerID: '',
      ready: pod.ready,
      started: true,
      restartCount: 0,
      state: { running: { startedAt: now } },
      lastState: {},
    })),
    qosClass: 'BestEffort',
  };
}

/**
 * A node --allocate made up, as its kubelet registers it: the labels, the pod CIDRs node IPAM
 * gave it, its addresses, Ready, and room for the kubelet's default 110 pods.
 */
export function nodeManifest(node: Node, now: string): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node.name, labels: { ...node.labels } },
    spec: node.podCIDRs.length > 0 ? { podCIDR: node.podCIDRs[0]!, podCIDRs: [...node.podCIDRs] } : {},
    status: {
      addresses: node.addresses.map((a) => ({ type: a.type, address: a.address })),
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
      allocatable: { pods: String(node.allocatablePods ?? 110) },
      capacity: { pods: String(node.allocatablePods ?? 110) },
      nodeInfo: { kubeletVersion: KUBELET_VERSION, kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64', osImage: '', kernelVersion: '', containerRuntimeVersion: '', machineID: '', systemUUID: '', bootID: '' },
    },
  };
}

/** A stored Node with the pod CIDRs node IPAM gave it. */
export function nodeWithPodCIDRs(manifest: JsonObject, podCIDRs: readonly string[]): JsonObject {
  const out = structuredClone(manifest);
  out['spec'] = { ...mapAt(out, 'spec'), podCIDR: podCIDRs[0] ?? '', podCIDRs: [...podCIDRs] };
  return out;
}
