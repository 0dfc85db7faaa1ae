/**
 * What a cluster's controllers would have written for the objects kpsim serve starts from, as
 * objects to store beside them: the cluster the files make (manifest/load.ts: with --allocate
 * the nodes, ReplicaSets and running pods; always the EndpointSlices of Services with
 * selectors) turned back into manifests. So `kpsim serve -f app/ --allocate` starts with the
 * pods and slices `kpsim compile -f app/ --allocate` compiles, and the live controllers
 * (controllers.ts) go on from there.
 */
import { endpointSliceManifest } from '../../controller/slice-manifest.js';
import type { JsonObject } from '../../model/fields.js';
import { isObject } from '../../model/fields.js';
import type { Cluster, EndpointSlice, Node, Pod } from '../../model/types.js';
import { type OwnerObject, boundPod, nodeManifest, nodeWithPodCIDRs, podManifest, replicaSetManifest, runningPodStatus } from '../../workload/manifests.js';
import { DEPLOYMENTS, ENDPOINT_SLICES, NODES, PODS, REPLICA_SETS, type ResourceType, SERVICES, WORKLOAD_RESOURCES, apiVersionOf } from './resources.js';

export type StoredLookup = (type: ResourceType, namespace: string, name: string) => JsonObject | undefined;

export interface DerivedObject {
  type: ResourceType;
  object: JsonObject;
}

function uidOf(obj: JsonObject | undefined): string {
  const meta = obj && isObject(obj['metadata']) ? obj['metadata'] : {};
  return typeof meta['uid'] === 'string' ? meta['uid'] : '';
}

function ownerObject(type: ResourceType, obj: JsonObject, name: string): OwnerObject {
  return { apiVersion: apiVersionOf(type), kind: type.kind, name, uid: uidOf(obj) };
}

function sameList(a: readonly string[], b: unknown): boolean {
  return Array.isArray(b) && a.length === b.length && a.every((x, i) => b[i] === x);
}

/**
 * The objects to add (or, for a stored Node or Pod the control plane completed, to put in its
 * place): nodes, ReplicaSets, pods, then slices. `newUID` gives the new objects their uids, so
 * what they own can name them.
 */
export function derivedObjects(cluster: Cluster, stored: StoredLookup, now: string, newUID: () => string): DerivedObject[] {
  const out: DerivedObject[] = [];
  const add = (type: ResourceType, object: JsonObject): JsonObject => {
    const meta = isObject(object['metadata']) ? object['metadata'] : {};
    meta['uid'] ??= newUID();
    object['metadata'] = meta;
    out.push({ type, object });
    return object;
  };
  const nodes = new Map<string, Node>(cluster.nodes.map((n) => [n.name, n]));
  for (const node of cluster.nodes) {
    const given = stored(NODES, '', node.name);
    if (!given) add(NODES, nodeManifest(node, now));
    else if (node.podCIDRs.length > 0 && !sameList(node.podCIDRs, isObject(given['spec']) ? given['spec']['podCIDRs'] : undefined)) add(NODES, nodeWithPodCIDRs(given, node.podCIDRs));
  }
  const made = new Map<string, JsonObject>();
  for (const w of cluster.workloads ?? []) {
    if (!w.generated || w.kind !== 'ReplicaSet') continue;
    const ref = w.ownerReferences.find((o) => o.controller && o.kind === 'Deployment');
    const deployment = ref ? stored(DEPLOYMENTS, w.namespace, ref.name) : undefined;
    if (!ref || !deployment) continue;
    made.set(`ReplicaSet\0${w.namespace}\0${w.name}`, add(REPLICA_SETS, replicaSetManifest(deployment, w, ownerObject(DEPLOYMENTS, deployment, ref.name), 1)));
  }
  for (const pod of cluster.pods ?? []) {
    if (!pod.generated) continue;
    const manifest = podManifestFor(pod, stored, made);
    if (!manifest) continue;
    let object = pod.spec.nodeName !== '' ? boundPod(manifest, pod.spec.nodeName, now) : manifest;
    if (pod.podIPs.length > 0) object = { ...object, status: runningPodStatus(object, pod, nodes.get(pod.spec.nodeName), now) };
    add(PODS, object);
  }
  const podUIDs = new Map<string, string>();
  for (const { type, object } of out) if (type === PODS) podUIDs.set(`${String((object['metadata'] as JsonObject)['namespace'])}/${String((object['metadata'] as JsonObject)['name'])}`, uidOf(object));
  const podUID = (namespace: string, name: string): string | undefined => podUIDs.get(`${namespace}/${name}`) ?? (uidOf(stored(PODS, namespace, name)) || undefined);
  for (const slice of derivedSlices(cluster, stored)) {
    const service = stored(SERVICES, slice.namespace, slice.serviceName);
    if (service) add(ENDPOINT_SLICES, endpointSliceManifest(slice, { name: slice.serviceName, uid: uidOf(service) }, podUID));
  }
  return out;
}

/** The slices the control plane derived: those not stored already (given ones are). */
function derivedSlices(cluster: Cluster, stored: StoredLookup): EndpointSlice[] {
  return cluster.endpointSlices.filter((s) => !stored(ENDPOINT_SLICES, s.namespace, s.name) && s.labels['endpointslice.kubernetes.io/managed-by'] === 'endpointslice-controller.k8s.io');
}

/** A pod the control plane made or completed, as a manifest: the stored one, or one from its controller's template. */
function podManifestFor(pod: Pod, stored: StoredLookup, made: ReadonlyMap<string, JsonObject>): JsonObject | undefined {
  const given = stored(PODS, pod.namespace, pod.name);
  if (given) return given;
  const ref = pod.ownerReferences.find((o) => o.controller);
  if (!ref) return undefined;
  const type = WORKLOAD_RESOURCES.find((r) => r.kind === ref.kind);
  const owner = type ? (stored(type, pod.namespace, ref.name) ?? made.get(`${ref.kind}\0${pod.namespace}\0${ref.name}`)) : undefined;
  if (!type || !owner) return undefined;
  const spec = isObject(owner['spec']) ? owner['spec'] : {};
  const template = isObject(spec['template']) ? spec['template'] : {};
  return podManifest(pod, template, ownerObject(type, owner, ref.name));
}
