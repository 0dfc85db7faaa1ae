/**
 * The controllers inside `kpsim serve`: kube-controller-manager's workload and EndpointSlice
 * controllers, the scheduler, the kubelets and the garbage collector, run on the store as the
 * objects change (the loop pod created -> scheduled -> running -> endpoints -> kube-proxy rules).
 *
 * A change someone else writes (kubectl, client-node, an in-process writer) schedules a pass;
 * changes arriving together share one. A pass
 *
 * 1. collects garbage: what a deleted object owned (by uid: a Deployment's ReplicaSets, their
 *    pods, a Service's EndpointSlices), and the pods of a deleted Node (the pod garbage collector);
 * 2. when pods, workloads or nodes changed, runs the workload controllers, the scheduler and the
 *    kubelets (workload/run.ts, live) over the whole store and writes what they decided:
 *    ReplicaSets made or rescaled, pods deleted, created (Pending), bound to their node, and
 *    reported Running with their addresses, then each workload's status;
 * 3. reconciles the EndpointSlices of every Service whose own object, pods, slices or nodes
 *    changed (controller/endpoint-slice-reconciler.ts): only the slices labelled
 *    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io are the
 *    controller's; slices others write stay theirs, beside the controller's, as on a real cluster.
 *
 * Every write goes through the store's normal path (admission, --data-dir, watches), marked with
 * the controllers' actor so the loop does not wake itself. A pass that finds nothing to change
 * writes nothing. Services whose slices the starting objects gave without the pods behind them
 * (a dump of a live cluster, rules/example) keep those slices: the controller leaves such a
 * Service alone until its slices are gone, as `kpsim compile` uses given slices.
 */
import { PodIndex } from '../../controller/endpoint-slice-controller.js';
import { type ExistingSlice, type ReconcileContext, reconcileEndpointSlices } from '../../controller/endpoint-slice-reconciler.js';
import { CONTROLLER_NAME, MANAGED_BY_LABEL } from '../../controller/slice-meta.js';
import { endpointSliceManifest } from '../../controller/slice-manifest.js';
import { cpuRatiosByZone } from '../../controller/topology-hints.js';
import { SERVICE_NAME_LABEL } from '../../model/endpoint-slice.js';
import { type Json, type JsonObject, isObject } from '../../model/fields.js';
import { matchesMap } from '../../model/label-selector.js';
import type { EndpointSlice, Node, Pod, Service, Warning, Workload } from '../../model/types.js';
import { GeneratedNames } from '../../util/generated-names.js';
import { type OwnerObject, boundPod, nodeWithPodCIDRs, podManifest, replicaSetAnnotations, replicaSetManifest, runningPodStatus } from '../../workload/manifests.js';
import { DEFAULT_CLUSTER_CIDR } from '../../workload/node-pool.js';
import { PodAddressPool } from '../../workload/pod-ipam.js';
import { runWorkloadControllers } from '../../workload/run.js';
import { daemonSetTolerations, nodeFitFailure } from '../../workload/scheduler.js';
import { daemonSetStatus, deploymentStatus, replicaSetStatus, statefulSetStatus } from '../../workload/status.js';
import {
  DAEMON_SETS,
  DEPLOYMENTS,
  ENDPOINT_SLICES,
  NODES,
  PODS,
  REPLICA_SETS,
  type ResourceType,
  SERVICES,
  STATEFUL_SETS,
  WORKLOAD_RESOURCES,
  apiVersionOf,
} from './resources.js';
import { isStatusError } from './status.js';
import type { KubeStore, StoreEvent, WriteOptions } from './store.js';

/** The actor on the controllers' writes (StoreEvent.actor). */
export const CONTROLLERS_ACTOR = 'kube-controller-manager';

/** Warnings remembered as said; past this many the memory starts again (a warning may then be said again). */
const MAX_REPORTED = 10_000;

export interface ControllerOptions {
  /** The pod network node IPAM hands out pod CIDRs from (--cluster-cidr, else kube-proxy's clusterCIDR; default 10.244.0.0/16). */
  clusterCIDRs?: readonly string[];
  /** Mixed into the hashes that stand for random name suffixes (default 0), as for the files. */
  seed?: number;
  /** kube-controller-manager --max-endpoints-per-slice (default 100). */
  maxEndpointsPerSlice?: number;
  /** The PreferSameTrafficDistribution feature gate (default on). */
  preferSameTrafficDistribution?: boolean;
  /** Clock for timestamps and the ReplicaSet controller's ages. */
  now?: () => Date;
  /** Called once for each warning the controllers give (a pod that cannot be scheduled, ...), when it first appears. */
  onWarning?: (warning: Warning) => void;
}

export interface ControllerStats {
  /** Passes run. */
  passes: number;
  /** Objects the controllers created, updated or deleted. */
  writes: number;
  /** Writes the store refused (a conflict with another writer); the pass is run again. */
  refused: number;
}

interface Entry {
  object: JsonObject;
  name: string;
  namespace: string;
  uid: string;
}

function meta(obj: JsonObject): JsonObject {
  return isObject(obj['metadata']) ? obj['metadata'] : {};
}

function entryOf(object: JsonObject): Entry {
  const m = meta(object);
  return { object, name: String(m['name'] ?? ''), namespace: String(m['namespace'] ?? ''), uid: String(m['uid'] ?? '') };
}

function ownerUIDs(obj: JsonObject): string[] {
  const refs = meta(obj)['ownerReferences'];
  return (Array.isArray(refs) ? refs : []).filter(isObject).map((r) => String(r['uid'] ?? ''));
}

function labelsOf(obj: JsonObject | undefined): Record<string, string> {
  const labels = obj ? meta(obj)['labels'] : undefined;
  const out: Record<string, string> = {};
  if (isObject(labels)) for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
  return out;
}

function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export class Controllers {
  private readonly options: ControllerOptions;
  private readonly now: () => Date;
  private readonly addresses = new PodAddressPool();
  /** Every pod name seen ("ns/name"): a new pod never gets the name of one deleted before it. */
  private readonly usedPodNames = new Set<string>();
  /** uids of Services whose slices were given without their pods: left alone while they have slices. */
  private readonly frozen = new Set<string>();
  private readonly deletedOwners = new Set<string>();
  private readonly deletedNodes = new Set<string>();
  private readonly dirtyServices = new Set<string>();
  private allServicesDirty = true;
  private workloadsDirty = true;
  /** Warnings already handed to onWarning. */
  private readonly reported = new Set<string>();
  private currentWarnings: Warning[] = [];
  private unsubscribe: (() => void) | undefined;
  private queue: Promise<void> = Promise.resolve();
  private pending = false;
  private stopped = false;
  private failure: unknown;
  readonly stats: ControllerStats = { passes: 0, writes: 0, refused: 0 };

  constructor(
    private readonly store: KubeStore,
    options: ControllerOptions = {},
  ) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
  }

  /** Subscribes to the store and runs the first pass (the starting objects' statuses, anything the seed left to do). */
  start(): Promise<void> {
    this.freezeGivenSlices();
    // The kubelets' address ranges go on after the addresses the pods have (host-local's last_reserved_ip).
    const ipsOnNode = new Map<string, string[]>();
    for (const { object, decoded } of this.store.listDecoded(PODS)) {
      this.usedPodNames.add(`${entryOf(object).namespace}/${entryOf(object).name}`);
      for (const pod of decoded.pods) {
        const ips = ipsOnNode.get(pod.spec.nodeName);
        if (ips) ips.push(...pod.podIPs);
        else ipsOnNode.set(pod.spec.nodeName, [...pod.podIPs]);
      }
    }
    for (const { decoded } of this.store.listDecoded(NODES)) for (const node of decoded.nodes) this.addresses.resumeAfter(node, ipsOnNode.get(node.name) ?? []);
    this.unsubscribe = this.store.onChange((event) => this.observe(event));
    this.schedule();
    return this.idle();
  }

  /** Stops reacting to changes (a pass under way finishes its current write). */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
  }

  /** Resolves when no pass is waiting or running; rejects with what broke a pass (a bug). */
  async idle(): Promise<void> {
    for (;;) {
      const current = this.queue;
      await current;
      if (this.failure !== undefined) throw this.failure;
      if (current === this.queue && !this.pending) return;
    }
  }

  /** What the last pass warned about (unschedulable pods, address ranges full, ...). */
  warnings(): readonly Warning[] {
    return this.currentWarnings;
  }

  private schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = true;
    this.queue = this.queue.then(async () => {
      this.pending = false;
      if (this.stopped) return;
      try {
        await this.pass();
      } catch (e) {
        this.failure = e;
        this.options.onWarning?.({ message: `the controllers stopped on a change (a bug in kpsim: please report it): ${e instanceof Error ? e.message : String(e)}` });
      }
    });
  }

  /** A committed change: what it makes dirty; someone else's change schedules a pass. */
  private observe(event: StoreEvent): void {
    if (event.actor === CONTROLLERS_ACTOR) return;
    const { resource, object, previous } = event;
    const entry = entryOf(object);
    if (event.type === 'DELETED' && entry.uid !== '') this.deletedOwners.add(entry.uid);
    if (resource === PODS) {
      this.workloadsDirty = true;
      this.usedPodNames.add(`${entry.namespace}/${entry.name}`);
      this.markServicesOf(entry.namespace, [labelsOf(object), labelsOf(previous)]);
    } else if (WORKLOAD_RESOURCES.includes(resource)) {
      this.workloadsDirty = true;
    } else if (resource === NODES) {
      this.workloadsDirty = true;
      this.allServicesDirty = true;
      if (event.type === 'DELETED') this.deletedNodes.add(entry.name);
    } else if (resource === SERVICES) {
      this.dirtyServices.add(`${entry.namespace}/${entry.name}`);
    } else if (resource === ENDPOINT_SLICES) {
      for (const labels of [labelsOf(object), labelsOf(previous)]) {
        const service = labels[SERVICE_NAME_LABEL];
        if (service !== undefined) this.dirtyServices.add(`${entry.namespace}/${service}`);
      }
    } else {
      return;
    }
    this.schedule();
  }

  /** The Services of a namespace whose selectors match any of the label sets (a pod's old and new labels). */
  private markServicesOf(namespace: string, labelSets: Record<string, string>[]): void {
    for (const { decoded } of this.store.listDecoded(SERVICES, namespace)) {
      const service = decoded.services[0];
      if (service?.selector && labelSets.some((labels) => matchesMap(service.selector!, labels))) this.dirtyServices.add(`${service.namespace}/${service.name}`);
    }
  }

  /**
   * The starting objects' Services whose slices were given rather than written by the controller
   * for the pods here: slices not labelled as the controller's, or listing pods the store does
   * not hold. `kpsim compile` uses such slices as given; so does the live cluster.
   */
  private freezeGivenSlices(): void {
    const pods = new Set(this.store.listDecoded(PODS).map(({ object }) => `${entryOf(object).namespace}/${entryOf(object).name}`));
    const slicesOf = new Map<string, JsonObject[]>();
    for (const { object } of this.store.listDecoded(ENDPOINT_SLICES)) {
      const service = labelsOf(object)[SERVICE_NAME_LABEL];
      if (service === undefined) continue;
      const key = `${entryOf(object).namespace}/${service}`;
      const list = slicesOf.get(key);
      if (list) list.push(object);
      else slicesOf.set(key, [object]);
    }
    for (const { object } of this.store.listDecoded(SERVICES)) {
      const entry = entryOf(object);
      const slices = slicesOf.get(`${entry.namespace}/${entry.name}`) ?? [];
      if (slices.length === 0) continue;
      const managed = slices.filter((s) => labelsOf(s)[MANAGED_BY_LABEL] === CONTROLLER_NAME);
      const listsMissingPods = managed.some((s) =>
        (Array.isArray(s['endpoints']) ? s['endpoints'] : []).some((e) => {
          const ref = isObject(e) && isObject(e['targetRef']) ? e['targetRef'] : undefined;
          return ref === undefined || ref['kind'] !== 'Pod' || !pods.has(`${String(ref['namespace'] ?? entry.namespace)}/${String(ref['name'] ?? '')}`);
        }),
      );
      if (managed.length === 0 || listsMissingPods) this.frozen.add(entry.uid);
    }
  }

  private async pass(): Promise<void> {
    this.stats.passes++;
    const now = this.now();
    const warnings: Warning[] = [];
    await this.collectGarbage();
    if (this.workloadsDirty) {
      // One run reaches the fixed point (fed its own result, the pass makes no change); a write
      // the store refused marks the workloads dirty again and schedules another pass.
      this.workloadsDirty = false;
      await this.syncWorkloads(now, warnings);
    }
    await this.syncSlices(warnings);
    this.report(warnings);
  }

  /** Keeps the pass's warnings and hands on those never given before (each is said once). */
  private report(warnings: Warning[], ofThePass = true): void {
    if (ofThePass) this.currentWarnings = warnings;
    for (const w of warnings) {
      const text = [w.file, w.object, w.path, w.message].filter((p) => p !== undefined).join(': ');
      if (this.reported.has(text)) continue;
      if (this.reported.size >= MAX_REPORTED) this.reported.clear();
      this.reported.add(text);
      this.options.onWarning?.(w);
    }
  }

  /**
   * One write of the controllers; false when the store refused it. Refused because another writer
   * got there first (409, or 404 for an object deleted meanwhile), the pass runs again on the new
   * state; refused for what it is (a pod the API server would not take from a template), the
   * controllers say so once and do not retry, so a refusal never turns into a stream of writes.
   */
  private async write(action: (options: WriteOptions) => Promise<unknown>): Promise<boolean> {
    try {
      await action({ actor: CONTROLLERS_ACTOR, source: '(controllers)' });
      this.stats.writes++;
      return true;
    } catch (e) {
      if (!isStatusError(e) || e.status.code >= 500) throw e;
      this.stats.refused++;
      if (e.status.code === 409 || e.status.code === 404) {
        this.workloadsDirty = true;
        this.allServicesDirty = true;
        this.schedule();
      } else {
        this.report([{ message: `the controllers' write was refused: ${e.status.message}` }], false);
      }
      return false;
    }
  }

  /** The garbage collector (dependents of deleted owners, background propagation) and the pod garbage collector (pods of deleted nodes). */
  private async collectGarbage(): Promise<void> {
    while (this.deletedOwners.size > 0 || this.deletedNodes.size > 0) {
      const owners = new Set(this.deletedOwners);
      const nodes = new Set(this.deletedNodes);
      this.deletedOwners.clear();
      this.deletedNodes.clear();
      for (const type of [REPLICA_SETS, PODS, ENDPOINT_SLICES]) {
        for (const { object, decoded } of this.store.listDecoded(type)) {
          const onGoneNode = type === PODS && nodes.has(decoded.pods[0]?.spec.nodeName ?? '');
          if (!onGoneNode && !ownerUIDs(object).some((uid) => owners.has(uid))) continue;
          const entry = entryOf(object);
          if (await this.write((o) => this.store.delete(type, entry.namespace, entry.name, { uid: entry.uid }, o))) {
            this.deletedOwners.add(entry.uid);
            if (type === PODS) this.markServicesOf(entry.namespace, [labelsOf(object)]);
            if (type !== ENDPOINT_SLICES) this.workloadsDirty = true;
            else this.dirtyServices.add(`${entry.namespace}/${labelsOf(object)[SERVICE_NAME_LABEL] ?? ''}`);
          }
        }
      }
      for (const uid of owners) this.frozen.delete(uid);
    }
  }

  private clusterCIDRs(): readonly string[] {
    const config = this.store.proxyConfig();
    return this.options.clusterCIDRs ?? (config && config.clusterCIDRs.length > 0 ? config.clusterCIDRs : [DEFAULT_CLUSTER_CIDR]);
  }

  /** One run of the workload controllers over the store. */
  private async syncWorkloads(now: Date, warnings: Warning[]): Promise<void> {
    const nodeEntries = this.store.listDecoded(NODES);
    const nodes = nodeEntries.flatMap(({ decoded }) => decoded.nodes);
    const storedPods = new Map<string, { object: JsonObject; pod: Pod }>();
    for (const { object, decoded } of this.store.listDecoded(PODS)) {
      const pod = decoded.pods[0];
      if (pod) storedPods.set(`${pod.namespace}/${pod.name}`, { object, pod });
    }
    const workloads = WORKLOAD_RESOURCES.flatMap((type) => this.store.listDecoded(type).flatMap(({ decoded }) => decoded.workloads));
    const result = runWorkloadControllers(
      { nodes, pods: [...storedPods.values()].map((p) => p.pod), workloads },
      {
        clusterCIDRs: this.clusterCIDRs(),
        ...(this.options.seed !== undefined ? { seed: this.options.seed } : {}),
        live: { now: now.getTime(), usedNames: [...this.usedPodNames].map((k) => ({ namespace: k.slice(0, k.indexOf('/')), name: k.slice(k.indexOf('/') + 1) })), addresses: this.addresses },
      },
    );
    warnings.push(...result.warnings, ...result.problems.map((p) => ({ ...(p.file !== undefined ? { file: p.file } : {}), ...(p.object !== undefined ? { object: p.object } : {}), message: p.detail })));
    if (result.problems.length > 0) return;
    const time = rfc3339(now);

    // Node IPAM.
    const storedNodes = new Map(nodeEntries.map((e) => [e.decoded.nodes[0]?.name ?? '', e]));
    for (const node of result.nodes) {
      const stored = storedNodes.get(node.name);
      const spec = stored && isObject(stored.object['spec']) ? stored.object['spec'] : {};
      if (stored && node.podCIDRs.length > 0 && !sameJson(spec['podCIDRs'], node.podCIDRs)) {
        await this.write((o) => this.store.update(NODES, '', node.name, nodeWithPodCIDRs(stored.object, node.podCIDRs), o));
      }
    }
    // The Deployment controller: ReplicaSets made or rescaled.
    for (const rs of result.workloads) {
      if (rs.kind !== 'ReplicaSet') continue;
      const stored = this.store.get(REPLICA_SETS, rs.namespace, rs.name);
      const ref = rs.ownerReferences.find((o) => o.controller && o.kind === 'Deployment');
      const deployment = ref ? this.store.get(DEPLOYMENTS, rs.namespace, ref.name) : undefined;
      if (!stored && deployment && rs.generated) {
        await this.write((o) => this.store.create(REPLICA_SETS, rs.namespace, replicaSetManifest(deployment, rs, this.ownerOf(DEPLOYMENTS, deployment), this.nextRevision(rs.namespace, entryOf(deployment).uid)), o));
      } else if (stored && deployment && (stored['spec'] as JsonObject | undefined)?.['replicas'] !== rs.replicas) {
        const revision = Number(meta(stored)['annotations'] && (meta(stored)['annotations'] as JsonObject)['deployment.kubernetes.io/revision']) || 1;
        const next: JsonObject = { ...stored, metadata: { ...meta(stored), annotations: { ...(isObject(meta(stored)['annotations']) ? (meta(stored)['annotations'] as JsonObject) : {}), ...replicaSetAnnotations(deployment, rs.replicas, revision) } }, spec: { ...(stored['spec'] as JsonObject), replicas: rs.replicas } };
        await this.write((o) => this.store.update(REPLICA_SETS, rs.namespace, rs.name, next, o));
      }
    }
    // Pods deleted (scale-down), created, bound, started.
    for (const pod of result.deletedPods) {
      const uid = storedPods.get(`${pod.namespace}/${pod.name}`)?.pod.uid;
      await this.write((o) => this.store.delete(PODS, pod.namespace, pod.name, uid !== undefined ? { uid } : {}, o));
    }
    const created: Pod[] = [];
    for (const pod of result.pods) {
      if (storedPods.has(`${pod.namespace}/${pod.name}`)) continue;
      const owner = this.templateOwner(pod);
      if (!owner) continue;
      this.usedPodNames.add(`${pod.namespace}/${pod.name}`);
      if (await this.write((o) => this.store.create(PODS, pod.namespace, podManifest(pod, owner.template, owner.ref), o))) created.push(pod);
    }
    const placed = [...created, ...result.pods.filter((p) => storedPods.has(`${p.namespace}/${p.name}`))];
    for (const pod of placed) {
      const before = storedPods.get(`${pod.namespace}/${pod.name}`)?.pod;
      if (pod.spec.nodeName === '' || (before && before.spec.nodeName !== '')) continue;
      const current = this.store.get(PODS, pod.namespace, pod.name);
      if (current) await this.write((o) => this.store.update(PODS, pod.namespace, pod.name, boundPod(current, pod.spec.nodeName, time), o));
    }
    const nodesByName = new Map(result.nodes.map((n) => [n.name, n]));
    for (const pod of placed) {
      const before = storedPods.get(`${pod.namespace}/${pod.name}`)?.pod;
      if (pod.podIPs.length === 0 || (before && before.podIPs.length > 0)) continue;
      const current = this.store.get(PODS, pod.namespace, pod.name);
      if (current) await this.write((o) => this.store.update(PODS, pod.namespace, pod.name, { ...current, status: runningPodStatus(current, pod, nodesByName.get(pod.spec.nodeName), time) }, { ...o, subresource: 'status' }));
      if (current) this.markServicesOf(pod.namespace, [pod.labels]);
    }
    for (const pod of result.deletedPods) this.markServicesOf(pod.namespace, [pod.labels]);
    await this.syncStatuses(result.workloads, result.pods, result.nodes, time);
  }

  private ownerOf(type: ResourceType, obj: JsonObject): OwnerObject {
    const entry = entryOf(obj);
    return { apiVersion: apiVersionOf(type), kind: type.kind, name: entry.name, uid: entry.uid };
  }

  /** The revision a Deployment's next ReplicaSet gets: one more than the highest of those it has. */
  private nextRevision(namespace: string, deploymentUID: string): number {
    let highest = 0;
    for (const object of this.store.list(REPLICA_SETS, namespace)) {
      if (!ownerUIDs(object).includes(deploymentUID)) continue;
      const annotations = meta(object)['annotations'];
      const revision = isObject(annotations) ? Number(annotations['deployment.kubernetes.io/revision']) : 0;
      if (Number.isInteger(revision)) highest = Math.max(highest, revision);
    }
    return highest + 1;
  }

  /** The stored workload a new pod comes from, with its template. */
  private templateOwner(pod: Pod): { template: JsonObject; ref: OwnerObject } | undefined {
    const ref = pod.ownerReferences.find((o) => o.controller);
    const type = ref ? WORKLOAD_RESOURCES.find((r) => r.kind === ref.kind) : undefined;
    const owner = ref && type ? this.store.get(type, pod.namespace, ref.name) : undefined;
    if (!owner || !type) return undefined;
    const spec = isObject(owner['spec']) ? owner['spec'] : {};
    return { template: isObject(spec['template']) ? spec['template'] : {}, ref: this.ownerOf(type, owner) };
  }

  /** Each workload's status, written when it changed. */
  private async syncStatuses(workloads: readonly Workload[], pods: readonly Pod[], nodes: readonly Node[], now: string): Promise<void> {
    const byOwner = new Map<string, Pod[]>();
    for (const pod of pods) {
      if (pod.phase === 'Succeeded' || pod.phase === 'Failed' || pod.terminating) continue;
      const ref = pod.ownerReferences.find((o) => o.controller);
      if (!ref) continue;
      const key = `${ref.kind}\0${pod.namespace}\0${ref.name}`;
      const list = byOwner.get(key);
      if (list) list.push(pod);
      else byOwner.set(key, [pod]);
    }
    const podsOf = (w: Workload): Pod[] => byOwner.get(`${w.kind}\0${w.namespace}\0${w.name}`) ?? [];
    const replicaSetsOf = new Map<string, Workload[]>();
    for (const rs of workloads) {
      const ref = rs.kind === 'ReplicaSet' ? rs.ownerReferences.find((o) => o.controller && o.kind === 'Deployment') : undefined;
      if (!ref) continue;
      const key = `${rs.namespace}/${ref.name}`;
      const list = replicaSetsOf.get(key);
      if (list) list.push(rs);
      else replicaSetsOf.set(key, [rs]);
    }
    for (const w of workloads) {
      const type = WORKLOAD_RESOURCES.find((r) => r.kind === w.kind)!;
      const stored = this.store.get(type, w.namespace, w.name);
      if (!stored) continue;
      const generation = typeof meta(stored)['generation'] === 'number' ? (meta(stored)['generation'] as number) : 1;
      let status: JsonObject;
      if (type === REPLICA_SETS) status = replicaSetStatus(podsOf(w), generation);
      else if (type === STATEFUL_SETS) status = statefulSetStatus(w, podsOf(w), generation);
      else if (type === DAEMON_SETS) {
        const tolerations = daemonSetTolerations(w.template.spec);
        const fits = new Set(nodes.filter((n) => nodeFitFailure(w.template.spec, tolerations, n) === undefined).map((n) => n.name));
        const mine = podsOf(w);
        status = daemonSetStatus(mine, fits.size, mine.filter((p) => p.spec.nodeName !== '' && !fits.has(p.spec.nodeName)).length, generation);
      } else {
        const replicaSets = replicaSetsOf.get(`${w.namespace}/${w.name}`) ?? [];
        const base = w.template.baseHash ?? w.template.hash;
        const current = replicaSets.find((rs) => rs.replicas > 0 && (rs.template.baseHash ?? rs.template.hash) === base) ?? replicaSets.find((rs) => (rs.template.baseHash ?? rs.template.hash) === base);
        status = deploymentStatus(w, stored, current?.name, current ? podsOf(current) : [], replicaSets.flatMap(podsOf), generation, now);
      }
      if (sameJson(stored['status'], status)) continue;
      await this.write((o) => this.store.update(type, w.namespace, w.name, { ...stored, status }, { ...o, subresource: 'status' }));
    }
  }

  /**
   * The EndpointSlice controller, for the Services marked dirty (all of them after a Node
   * changed). Only the namespaces of those Services are read: a write to one Service costs what
   * its namespace holds, not what the cluster holds.
   */
  private async syncSlices(warnings: Warning[]): Promise<void> {
    const all = this.allServicesDirty;
    const dirty = [...this.dirtyServices].sort();
    this.allServicesDirty = false;
    this.dirtyServices.clear();
    const candidates = all
      ? this.store.listDecoded(SERVICES)
      : dirty.flatMap((key) => {
          const found = this.store.getDecoded(SERVICES, key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1));
          return found ? [found] : [];
        });
    const todo = candidates
      .map(({ object, decoded }) => ({ entry: entryOf(object), service: decoded.services[0] }))
      .filter((t): t is { entry: Entry; service: Service } => t.service !== undefined && t.service.type !== 'ExternalName' && t.service.selector !== undefined);
    if (todo.length === 0) return;
    const namespaces = all ? [undefined] : [...new Set(todo.map((t) => t.entry.namespace))];
    const podEntries = namespaces.flatMap((ns) => this.store.listDecoded(PODS, ns));
    const podUIDs = new Map(podEntries.map(({ object }) => [`${entryOf(object).namespace}/${entryOf(object).name}`, entryOf(object).uid]));
    const index = new PodIndex(podEntries.flatMap(({ decoded }) => decoded.pods));
    const nodes = this.store.listDecoded(NODES).flatMap(({ decoded }) => decoded.nodes);
    const names = new GeneratedNames(this.options.seed ?? 0);
    const slicesOf = new Map<string, { object: JsonObject; decoded: { endpointSlices: EndpointSlice[] } }[]>();
    for (const slice of namespaces.flatMap((ns) => this.store.listDecoded(ENDPOINT_SLICES, ns))) {
      const { namespace, name } = entryOf(slice.object);
      names.reserve(namespace, name);
      const key = `${namespace}/${labelsOf(slice.object)[SERVICE_NAME_LABEL] ?? ''}`;
      const list = slicesOf.get(key);
      if (list) list.push(slice);
      else slicesOf.set(key, [slice]);
    }
    let ratios: Map<string, number> | undefined | null = null;
    const context: ReconcileContext = {
      nodesByName: new Map(nodes.map((n) => [n.name, n])),
      cpuRatios: () => (ratios === null ? (ratios = cpuRatiosByZone(nodes)) : ratios),
      names,
      maxEndpointsPerSlice: this.options.maxEndpointsPerSlice ?? 100,
      preferSameTrafficDistribution: this.options.preferSameTrafficDistribution ?? this.store.proxyConfig()?.featureGates['PreferSameTrafficDistribution'] ?? true,
    };
    for (const { entry, service } of todo) {
      const mine = slicesOf.get(`${entry.namespace}/${entry.name}`) ?? [];
      if (this.frozen.has(entry.uid)) {
        if (mine.length > 0) continue;
        this.frozen.delete(entry.uid);
      }
      const existing: (ExistingSlice & { object: JsonObject })[] = mine
        .filter(({ object }) => labelsOf(object)[MANAGED_BY_LABEL] === CONTROLLER_NAME)
        .flatMap(({ object, decoded }) => decoded.endpointSlices.map((slice) => ({ slice, object, ownedByService: ownerUIDs(object).includes(entry.uid) })));
      const changes = reconcileEndpointSlices(service, index.select(service.namespace, service.selector!), existing, context);
      await this.writeSlices(service, entry, changes, existing, (namespace, name) => podUIDs.get(`${namespace}/${name}`));
      warnings.push(...sliceWarnings(service, changes.podsOnUnknownNodes.length));
    }
  }

  private async writeSlices(
    service: Service,
    entry: Entry,
    changes: ReturnType<typeof reconcileEndpointSlices>,
    existing: readonly (ExistingSlice & { object: JsonObject })[],
    podUID: (namespace: string, name: string) => string | undefined,
  ): Promise<void> {
    const owner = { name: service.name, uid: entry.uid };
    const storedByName = new Map(existing.map((e) => [e.slice.name, e.object]));
    for (const slice of changes.create) await this.write((o) => this.store.create(ENDPOINT_SLICES, slice.namespace, endpointSliceManifest(slice, owner, podUID), o));
    for (const slice of changes.update) {
      const stored = storedByName.get(slice.name);
      if (stored) await this.write((o) => this.store.update(ENDPOINT_SLICES, slice.namespace, slice.name, endpointSliceManifest(slice, owner, podUID, stored), o));
    }
    for (const slice of changes.delete) {
      const uid = entryOf(storedByName.get(slice.name) ?? {}).uid;
      await this.write((o) => this.store.delete(ENDPOINT_SLICES, slice.namespace, slice.name, uid !== '' ? { uid } : {}, o));
    }
  }
}

function sliceWarnings(service: Service, podsOnUnknownNodes: number): Warning[] {
  if (podsOnUnknownNodes === 0) return [];
  return [{ file: service.origin.file, object: service.origin.object, message: `${podsOnUnknownNodes} of its pods run on nodes the cluster does not have: they are left out of its EndpointSlices` }];
}
