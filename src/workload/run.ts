/**
 * What a cluster's control plane and kubelets do with workloads before there are endpoints
 * (--allocate), as one pure pass over the input:
 *
 * 1. nodes: when the input has none, create them; give every node without one a pod CIDR;
 * 2. controllers, workload by workload in input order: a Deployment makes a ReplicaSet (unless
 *    the input has its ReplicaSets), a ReplicaSet makes pods up to its replicas, a StatefulSet
 *    makes the pods of its ordinals (one at a time while the last is not Ready, with the
 *    OrderedReady policy), a DaemonSet one pod on every node it may run on. Pods that exist are
 *    counted first: those a controller owns, and orphans its selector matches (adopted);
 * 3. the scheduler places every pod without a node (pods given bare first, then each
 *    workload's new pods together, spread over the nodes);
 * 4. the kubelets start them: an address per pod CIDR of the node, phase Running, Ready unless
 *    the annotation kpsim.io/ready says "false".
 *
 * Names are the controllers' (ReplicaSet name-hash, pods name-xxxxx, StatefulSet name-0), their
 * random parts drawn from a stable hash (util/generated-names.ts), so the same input always
 * gives the same cluster. Not modelled: rollouts (a Deployment's one ReplicaSet holds all its
 * replicas), Jobs and CronJobs, ReplicationControllers.
 *
 * A live cluster (`live`, kpsim serve) runs the same pass on every change, and the controllers
 * then also take away: a Deployment scales its current ReplicaSet (the one whose template is its
 * own) to its replicas and the others to 0, making a new one when its template changed (the end
 * of a rollout, at once); a ReplicaSet with more pods than replicas deletes the surplus in the
 * ReplicaSet controller's order (scale-down.ts); a StatefulSet deletes the pods of ordinals past
 * its replicas, the highest first; a DaemonSet deletes its pods on nodes it may not run on, and
 * all but the oldest where it has several. Nodes are never created, names once used are not
 * drawn again, and the kubelets' address ranges go on from where they were (pod-ipam.ts).
 */
import type { KpsimError } from '../errors.js';
import { generateNamePrefix } from '../model/fields.js';
import { matchesSelector } from '../model/label-selector.js';
import type { Node, Pod, Warning, Workload } from '../model/types.js';
import { GeneratedNames } from '../util/generated-names.js';
import { type Cidr, parseCIDR } from '../util/ip.js';
import { DEFAULT_CLUSTER_CIDR, DEFAULT_NODE_COUNT, assignPodCIDRs, createNodes } from './node-pool.js';
import { PodAddressPool } from './pod-ipam.js';
import { controllerReferences, daemonSetPodLabels, podFromTemplate, readyByAnnotation, replicaSetOf, statefulSetPodLabels } from './pods.js';
import { podsToDelete } from './scale-down.js';
import { Scheduler, daemonSetTolerations, nodeFitFailure, unschedulableMessage } from './scheduler.js';

export interface WorkloadControllerInput {
  nodes: readonly Node[];
  pods: readonly Pod[];
  workloads: readonly Workload[];
}

export interface WorkloadControllerOptions {
  /** How many nodes to create when the input has none (--nodes; default 3). */
  nodeCount?: number;
  /** The cluster's pod CIDRs, one per family (--cluster-cidr, else kube-proxy's clusterCIDR; default 10.244.0.0/16). */
  clusterCIDRs?: readonly string[];
  /** Mixed into the hash that stands for the API server's random name suffixes. */
  seed?: number;
  /** Run as a live cluster's controllers do (see the module comment). */
  live?: LiveOptions;
}

export interface LiveOptions {
  /** The clock (ms since the epoch): the ReplicaSet controller compares pods' ages on a logarithmic scale. */
  now: number;
  /** Pod names given out before (to pods deleted since): a new pod never gets one. */
  usedNames?: Iterable<{ namespace: string; name: string }>;
  /** The kubelets' address ranges, kept from one pass to the next. */
  addresses?: PodAddressPool;
}

export interface WorkloadControllerResult {
  /** The nodes: as given (those without pod CIDRs now with them), or the ones created. */
  nodes: Node[];
  /** The pods given (those kpsim placed or started replaced by their new state), then the new ones. */
  pods: Pod[];
  /** The workloads given, each Deployment followed by the ReplicaSet it made. */
  workloads: Workload[];
  /** Whether the nodes were created (the input had none). */
  createdNodes: boolean;
  warnings: Warning[];
  /** Allocation failures (no pod CIDR left): the caller reports them all and applies nothing. */
  problems: KpsimError[];
  /** Live only: the pods the controllers delete (they are not in `pods`). */
  deletedPods: Pod[];
}

export function runWorkloadControllers(input: WorkloadControllerInput, options: WorkloadControllerOptions = {}): WorkloadControllerResult {
  const clusterCIDRs = (options.clusterCIDRs ?? [DEFAULT_CLUSTER_CIDR]).map((c) => parseCIDR(c)).filter((c): c is Cidr => c !== undefined);
  const warnings: Warning[] = [];
  let nodes = [...input.nodes];
  const createdNodes = nodes.length === 0 && options.live === undefined;
  if (createdNodes) {
    // Nodes the given pods name are created too, so they keep their place.
    const named = [...new Set(input.pods.map((p) => p.spec.nodeName).filter((n) => n !== ''))];
    nodes = createNodes(options.nodeCount ?? DEFAULT_NODE_COUNT, clusterCIDRs, named);
  }
  const assignment = assignPodCIDRs(nodes, clusterCIDRs);
  nodes = assignment.nodes;
  if (createdNodes) {
    warnings.push({ message: `the input has no Node objects: --allocate created ${nodes.length} (${nodes.slice(0, 5).map(describeNode).join('; ')}${nodes.length > 5 ? '; ...' : ''}) with pod CIDRs from ${clusterCIDRs.map((c) => c.text).join(',')} (--nodes N, --cluster-cidr)` });
  } else {
    for (const { node, podCIDRs } of assignment.assigned) {
      const n = nodes.find((x) => x.name === node)!;
      warnings.push({ file: n.origin.file, object: n.origin.object, path: 'spec.podCIDRs', message: `not set: --allocate gave it ${podCIDRs.join(',')} from the cluster CIDR, as kube-controller-manager's node IPAM does` });
    }
  }
  if (assignment.problems.length > 0) return { nodes, pods: [...input.pods], workloads: [...input.workloads], createdNodes, warnings, problems: assignment.problems, deletedPods: [] };

  const run = new WorkloadPass(nodes, input.pods, input.workloads, options.seed ?? 0, options.live);
  run.scheduleBarePods();
  for (const workload of input.workloads) run.reconcile(workload);
  run.startPods();
  const deletedPods = run.deletedPods();
  return { nodes, pods: run.livePods(), workloads: run.workloads, createdNodes, warnings: [...warnings, ...run.warnings], problems: [], deletedPods };
}

function describeNode(node: Node): string {
  return `${node.name} ${node.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address).join(',')} pods ${node.podCIDRs.join(',')}`;
}

function ownerKey(kind: string, namespace: string, name: string): string {
  return `${kind}\0${namespace}\0${name}`;
}

/** Older first; an object without a creation time (not stored yet) after those with one. */
function compareCreation(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return Date.parse(a) - Date.parse(b);
}

function isTerminal(pod: Pod): boolean {
  return pod.phase === 'Succeeded' || pod.phase === 'Failed';
}

/** The controllers' shared state during one pass: the pods so far, who owns them, the scheduler. */
class WorkloadPass {
  readonly pods: Pod[];
  readonly workloads: Workload[] = [];
  readonly warnings: Warning[] = [];
  private readonly names: GeneratedNames;
  private readonly scheduler: Scheduler;
  private readonly nodeIndex: Map<string, number>;
  /** Input pods by their controller ("ReplicaSet\0ns\0name" → pod indices). */
  private readonly owned = new Map<string, number[]>();
  /** Input pods without a controller, by namespace: a workload whose selector matches adopts them. */
  private readonly orphans = new Map<string, number[]>();
  private readonly claimed = new Set<number>();
  /** The workloads of the input ("Kind\0ns\0name"): their pods are placed in their pass. */
  private readonly controllers = new Set<string>();
  /** Deployments whose ReplicaSets are in the input. */
  private readonly deploymentsWithReplicaSets = new Set<string>();
  /** Live: a Deployment's ReplicaSets, by the Deployment ("Deployment\0ns\0name"). */
  private readonly replicaSetsOf = new Map<string, Workload[]>();
  /** Live: the replicas a Deployment gives each of its ReplicaSets ("ReplicaSet\0ns\0name"). */
  private readonly replicasFor = new Map<string, number>();
  /** Live: indices of the pods deleted in this pass. */
  private readonly deleted = new Set<number>();

  constructor(
    private readonly nodes: readonly Node[],
    inputPods: readonly Pod[],
    inputWorkloads: readonly Workload[],
    seed: number,
    private readonly live: LiveOptions | undefined,
  ) {
    this.pods = [...inputPods];
    this.names = new GeneratedNames(seed);
    for (const { namespace, name } of live?.usedNames ?? []) this.names.reserve(namespace, name);
    this.scheduler = new Scheduler(nodes);
    this.nodeIndex = new Map(nodes.map((n, i) => [n.name, i]));
    this.pods.forEach((pod, k) => {
      this.names.reserve(pod.namespace, pod.name);
      const node = this.nodeIndex.get(pod.spec.nodeName);
      if (node !== undefined && !isTerminal(pod)) this.scheduler.count(node);
      const controller = pod.ownerReferences.find((o) => o.controller);
      const list = controller ? this.owned : this.orphans;
      const key = controller ? ownerKey(controller.kind, pod.namespace, controller.name) : pod.namespace;
      const indices = list.get(key);
      if (indices) indices.push(k);
      else list.set(key, [k]);
    });
    for (const w of inputWorkloads) {
      this.controllers.add(ownerKey(w.kind, w.namespace, w.name));
      const controller = w.ownerReferences.find((o) => o.controller && o.kind === 'Deployment');
      if (w.kind === 'ReplicaSet' && controller) {
        const key = ownerKey('Deployment', w.namespace, controller.name);
        this.deploymentsWithReplicaSets.add(key);
        const list = this.replicaSetsOf.get(key);
        if (list) list.push(w);
        else this.replicaSetsOf.set(key, [w]);
      }
    }
  }

  /** The pods after the pass: without those deleted. */
  livePods(): Pod[] {
    return this.deleted.size === 0 ? this.pods : this.pods.filter((_, k) => !this.deleted.has(k));
  }

  deletedPods(): Pod[] {
    return [...this.deleted].map((k) => this.pods[k]!); // in the order the controllers delete them
  }

  /** Pods given without a node and without addresses, whose controller is not in the input: the scheduler places them one by one. */
  scheduleBarePods(): void {
    this.pods.forEach((pod, k) => {
      if (!this.isPending(pod)) return;
      const controller = pod.ownerReferences.find((o) => o.controller);
      if (controller && this.controllers.has(ownerKey(controller.kind, pod.namespace, controller.name))) return; // placed in its controller's pass
      this.warnUnmodelled(pod.origin, 'spec', pod.spec.unmodelled);
      const { nodes, reason } = this.scheduler.place(pod.spec, 1);
      if (nodes[0] === undefined) {
        this.warnings.push({ file: pod.origin.file, object: pod.origin.object, message: `cannot be scheduled, so it gets no address: ${reason ?? ''}` });
        return;
      }
      this.pods[k] = { ...pod, spec: { ...pod.spec, nodeName: this.nodes[nodes[0]]!.name }, generated: true };
    });
  }

  reconcile(workload: Workload): void {
    const replicas = this.replicasFor.get(ownerKey(workload.kind, workload.namespace, workload.name));
    const set = replicas !== undefined && replicas !== workload.replicas ? { ...workload, replicas } : workload;
    this.workloads.push(set);
    switch (set.kind) {
      case 'Deployment': {
        const key = ownerKey('Deployment', set.namespace, set.name);
        if (this.live) return this.scaleReplicaSets(set, this.replicaSetsOf.get(key) ?? []);
        if (this.deploymentsWithReplicaSets.has(key)) return;
        const replicaSet = replicaSetOf(set);
        this.workloads.push(replicaSet);
        this.reconcileReplicaSet(replicaSet);
        return;
      }
      case 'ReplicaSet':
        return this.reconcileReplicaSet(set);
      case 'StatefulSet':
        return this.reconcileStatefulSet(workload);
      case 'DaemonSet':
        return this.reconcileDaemonSet(workload);
    }
  }

  /**
   * Live: the Deployment controller at the end of a rollout. The ReplicaSet whose template is the
   * Deployment's (the oldest, if several) gets its replicas, made when there is none; the others
   * go to 0. Their pods follow when each ReplicaSet's turn comes.
   */
  private scaleReplicaSets(deployment: Workload, replicaSets: readonly Workload[]): void {
    const base = deployment.template.baseHash ?? deployment.template.hash;
    const byAge = [...replicaSets].sort((a, b) => compareCreation(a.creationTimestamp, b.creationTimestamp) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const current = byAge.find((rs) => (rs.template.baseHash ?? rs.template.hash) === base);
    for (const rs of replicaSets) this.replicasFor.set(ownerKey('ReplicaSet', rs.namespace, rs.name), rs === current ? deployment.replicas : 0);
    if (current) return;
    const replicaSet = replicaSetOf(deployment);
    this.workloads.push(replicaSet);
    this.reconcileReplicaSet(replicaSet);
  }

  private reconcileReplicaSet(set: Workload): void {
    const mine = this.claim(set).filter((k) => !isTerminal(this.pods[k]!) && !this.pods[k]!.terminating);
    if (mine.length > set.replicas) {
      if (this.live) {
        this.deleteSurplus(set, mine);
        return this.schedule(set, [], mine.filter((k) => !this.deleted.has(k)));
      }
      this.warnSurplus(set, mine.length);
    }
    const created: Pod[] = [];
    const prefix = generateNamePrefix(set.name);
    const owners = controllerReferences(set);
    for (let i = 0; i < set.replicas - mine.length; i++) {
      created.push(podFromTemplate(set, this.names.generate(set.namespace, prefix, set.name, i), owners));
    }
    this.schedule(set, created, mine);
  }

  /** Live: the ReplicaSet controller deletes the pods it needs least (getPodsToDelete), ranked against the pods of its Deployment's other ReplicaSets. */
  private deleteSurplus(set: Workload, mine: readonly number[]): void {
    const deployment = set.ownerReferences.find((o) => o.controller && o.kind === 'Deployment');
    const siblings = deployment ? (this.replicaSetsOf.get(ownerKey('Deployment', set.namespace, deployment.name)) ?? []) : [set];
    const related = siblings.flatMap((rs) => this.owned.get(ownerKey('ReplicaSet', rs.namespace, rs.name)) ?? []);
    const active = [...new Set([...mine, ...related])].map((k) => this.pods[k]!).filter((p) => !isTerminal(p) && !p.terminating);
    const doomed = new Set(podsToDelete(mine.map((k) => this.pods[k]!), active, mine.length - set.replicas, this.live!.now));
    for (const k of mine) if (doomed.has(this.pods[k]!)) this.deleted.add(k);
  }

  private reconcileStatefulSet(set: Workload): void {
    let mine = this.claim(set);
    if (this.live) {
      // Ordinals past the replicas (or before ordinals.start) go, the highest first.
      const ordinalOf = (k: number): number => Number(/-(\d+)$/.exec(this.pods[k]!.name)?.[1] ?? Number.NaN);
      const condemned = mine.filter((k) => this.pods[k]!.name.startsWith(`${set.name}-`) && !(ordinalOf(k) >= set.ordinalsStart && ordinalOf(k) < set.ordinalsStart + set.replicas));
      for (const k of condemned.sort((a, b) => ordinalOf(b) - ordinalOf(a))) this.deleted.add(k);
      mine = mine.filter((k) => !this.deleted.has(k));
    }
    const byName = new Map(mine.map((k) => [this.pods[k]!.name, k]));
    const ordered = set.podManagementPolicy === 'OrderedReady';
    const owners = controllerReferences(set);
    const created: Pod[] = [];
    const end = set.ordinalsStart + set.replicas;
    for (let ordinal = set.ordinalsStart; ordinal < end; ordinal++) {
      const name = `${set.name}-${ordinal}`;
      const k = byName.get(name);
      let ready: boolean;
      if (k !== undefined) {
        const pod = this.pods[k]!;
        ready = pod.podIPs.length > 0 ? pod.ready : readyByAnnotation(pod.annotations);
      } else if (this.names.has(set.namespace, name)) {
        this.warnings.push({ file: set.origin.file, object: set.origin.object, message: `pod ${name} exists but is not this StatefulSet's, so ordinal ${ordinal} is not created` });
        continue;
      } else {
        this.names.reserve(set.namespace, name);
        created.push(podFromTemplate(set, name, owners, statefulSetPodLabels(set, name, ordinal), { hostname: name, subdomain: set.serviceName }));
        ready = readyByAnnotation(set.template.annotations);
      }
      if (ordered && !ready && ordinal < end - 1) {
        this.warnings.push({
          file: set.origin.file,
          object: set.origin.object,
          path: 'spec.podManagementPolicy',
          message: `pod ${name} is not Ready, so OrderedReady creates no pod after it (${ordinal - set.ordinalsStart + 1} of ${set.replicas} ordinals)`,
        });
        break;
      }
    }
    this.schedule(set, created, mine);
  }

  private reconcileDaemonSet(set: Workload): void {
    const tolerations = daemonSetTolerations(set.template.spec);
    const claimed = this.claim(set);
    if (this.live) this.deleteMisplacedDaemons(set, claimed, tolerations);
    const onNodes = new Set(claimed.filter((k) => !this.deleted.has(k)).map((k) => this.pods[k]!.spec.nodeName));
    const failures: string[] = [];
    const prefix = generateNamePrefix(set.name);
    const owners = controllerReferences(set);
    const labels = daemonSetPodLabels(set);
    this.nodes.forEach((node, i) => {
      const failure = nodeFitFailure(set.template.spec, tolerations, node);
      if (failure !== undefined) {
        failures.push(failure);
        return;
      }
      if (onNodes.has(node.name)) return;
      const name = this.names.generate(set.namespace, prefix, `${set.name}\0${node.name}`);
      this.pods.push(podFromTemplate(set, name, owners, labels, { nodeName: node.name, tolerations }));
      this.scheduler.count(i);
    });
    if (failures.length === this.nodes.length) {
      this.warnings.push({ file: set.origin.file, object: set.origin.object, message: `runs on no node: ${unschedulableMessage(this.nodes.length, failures)}` });
    }
  }

  /** Live: a DaemonSet's pods on nodes it may not run on go, and on each node all but the oldest. */
  private deleteMisplacedDaemons(set: Workload, claimed: readonly number[], tolerations: ReturnType<typeof daemonSetTolerations>): void {
    const byNode = new Map<string, number[]>();
    for (const k of claimed) {
      const pod = this.pods[k]!;
      if (pod.spec.nodeName === '' || isTerminal(pod) || pod.terminating) continue;
      const list = byNode.get(pod.spec.nodeName);
      if (list) list.push(k);
      else byNode.set(pod.spec.nodeName, [k]);
    }
    for (const [nodeName, ks] of byNode) {
      const index = this.nodeIndex.get(nodeName);
      // Pods on nodes that are gone are the pod garbage collector's.
      if (index === undefined) continue;
      if (nodeFitFailure(set.template.spec, tolerations, this.nodes[index]!) !== undefined) {
        for (const k of ks) this.deleted.add(k);
        continue;
      }
      const oldestFirst = [...ks].sort((a, b) => compareCreation(this.pods[a]!.creationTimestamp, this.pods[b]!.creationTimestamp) || a - b);
      for (const k of oldestFirst.slice(1)) this.deleted.add(k);
    }
  }

  /** The pods a workload has: those it controls, then orphans its selector matches (adopted, as the controllers do). */
  private claim(workload: Workload): number[] {
    const mine = [...(this.owned.get(ownerKey(workload.kind, workload.namespace, workload.name)) ?? [])];
    for (const k of this.orphans.get(workload.namespace) ?? []) {
      if (this.claimed.has(k) || !matchesSelector(workload.selector, this.pods[k]!.labels)) continue;
      this.claimed.add(k);
      mine.push(k);
    }
    return mine;
  }

  private isPending(pod: Pod): boolean {
    return pod.spec.nodeName === '' && pod.podIPs.length === 0 && !isTerminal(pod) && !pod.terminating;
  }

  /**
   * The scheduler places a workload's pods that have no node (those it had, then the new ones)
   * together, spread over the nodes beside the ones it has pods on.
   */
  private schedule(set: Workload, created: Pod[], existing: readonly number[]): void {
    const pending = existing.filter((k) => this.isPending(this.pods[k]!));
    const total = pending.length + created.length;
    if (total === 0) {
      this.pods.push(...created);
      return;
    }
    this.warnUnmodelled(set.origin, 'spec.template.spec', set.template.spec.unmodelled);
    const existingNodes = existing.map((k) => this.nodeIndex.get(this.pods[k]!.spec.nodeName)).filter((i): i is number => i !== undefined);
    const { nodes, reason } = this.scheduler.place(set.template.spec, total, existingNodes);
    pending.forEach((k, i) => {
      const node = nodes[i];
      const pod = this.pods[k]!;
      if (node !== undefined) this.pods[k] = { ...pod, spec: { ...pod.spec, nodeName: this.nodes[node]!.name }, generated: true };
    });
    created.forEach((pod, i) => {
      const node = nodes[pending.length + i];
      if (node !== undefined) pod.spec.nodeName = this.nodes[node]!.name;
      this.pods.push(pod);
    });
    const unscheduled = nodes.filter((n) => n === undefined).length;
    if (unscheduled > 0) {
      this.warnings.push({ file: set.origin.file, object: set.origin.object, message: `${unscheduled} of its ${total} pods cannot be scheduled, so they get no address: ${reason ?? ''}` });
    }
  }

  /** The kubelets: every placed pod without addresses gets them, runs, and is Ready unless its annotation says not. */
  startPods(): void {
    const inUse = new Set(this.livePods().flatMap((p) => p.podIPs));
    const pool = this.live?.addresses ?? new PodAddressPool(inUse);
    pool.use(inUse);
    const failed = new Map<string, string[]>();
    this.pods.forEach((pod, k) => {
      if (pod.podIPs.length > 0 || pod.spec.nodeName === '' || isTerminal(pod) || this.deleted.has(k)) return;
      const index = this.nodeIndex.get(pod.spec.nodeName);
      const result = index === undefined ? { reason: `node ${pod.spec.nodeName} is not in the cluster` } : pool.allocate(this.nodes[index]!, pod.spec.hostNetwork);
      if ('reason' in result) {
        const list = failed.get(result.reason);
        if (list) list.push(`${pod.namespace}/${pod.name}`);
        else failed.set(result.reason, [`${pod.namespace}/${pod.name}`]);
        return;
      }
      // Pods the controllers made here are kpsim's own to fill in; given ones are copied.
      const started: Pod = pod.generated ? pod : { ...pod, generated: true };
      started.podIPs = result.ips;
      started.phase = 'Running';
      started.ready = readyByAnnotation(pod.annotations);
      this.pods[k] = started;
    });
    for (const [reason, pods] of failed) {
      this.warnings.push({ message: `${pods.length} pod${pods.length === 1 ? '' : 's'} (${pods.slice(0, 3).join(', ')}${pods.length > 3 ? ', ...' : ''}) get no address, so they are not endpoints: ${reason}` });
    }
  }

  private warnSurplus(set: Workload, count: number): void {
    this.warnings.push({ file: set.origin.file, object: set.origin.object, path: 'spec.replicas', message: `has ${count} pods, more than its ${set.replicas} replicas: kpsim deletes none (the controller would delete the surplus)` });
  }

  private warnUnmodelled(origin: { file: string; object: string }, path: string, fields: readonly string[]): void {
    for (const field of fields) {
      this.warnings.push({
        file: origin.file,
        object: origin.object,
        path: `${path}.${field}`,
        message: 'not modelled: kpsim schedules as if it were not set (it reads nodeSelector, required node affinity, taints and tolerations, and spreads a workload over the nodes)',
      });
    }
  }
}
