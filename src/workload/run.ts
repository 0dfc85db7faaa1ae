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
 * replicas), deleting surplus pods, scale-down, Jobs and CronJobs, ReplicationControllers.
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
}

export function runWorkloadControllers(input: WorkloadControllerInput, options: WorkloadControllerOptions = {}): WorkloadControllerResult {
  const clusterCIDRs = (options.clusterCIDRs ?? [DEFAULT_CLUSTER_CIDR]).map((c) => parseCIDR(c)).filter((c): c is Cidr => c !== undefined);
  const warnings: Warning[] = [];
  let nodes = [...input.nodes];
  const createdNodes = nodes.length === 0;
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
  if (assignment.problems.length > 0) return { nodes, pods: [...input.pods], workloads: [...input.workloads], createdNodes, warnings, problems: assignment.problems };

  const run = new WorkloadPass(nodes, input.pods, input.workloads, options.seed ?? 0);
  run.scheduleBarePods();
  for (const workload of input.workloads) run.reconcile(workload);
  run.startPods();
  return { nodes, pods: run.pods, workloads: run.workloads, createdNodes, warnings: [...warnings, ...run.warnings], problems: [] };
}

function describeNode(node: Node): string {
  return `${node.name} ${node.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address).join(',')} pods ${node.podCIDRs.join(',')}`;
}

function ownerKey(kind: string, namespace: string, name: string): string {
  return `${kind}\0${namespace}\0${name}`;
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

  constructor(
    private readonly nodes: readonly Node[],
    inputPods: readonly Pod[],
    inputWorkloads: readonly Workload[],
    seed: number,
  ) {
    this.pods = [...inputPods];
    this.names = new GeneratedNames(seed);
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
      if (w.kind === 'ReplicaSet' && controller) this.deploymentsWithReplicaSets.add(ownerKey('Deployment', w.namespace, controller.name));
    }
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
    this.workloads.push(workload);
    switch (workload.kind) {
      case 'Deployment': {
        if (this.deploymentsWithReplicaSets.has(ownerKey('Deployment', workload.namespace, workload.name))) return;
        const replicaSet = replicaSetOf(workload);
        this.workloads.push(replicaSet);
        this.reconcileReplicaSet(replicaSet);
        return;
      }
      case 'ReplicaSet':
        return this.reconcileReplicaSet(workload);
      case 'StatefulSet':
        return this.reconcileStatefulSet(workload);
      case 'DaemonSet':
        return this.reconcileDaemonSet(workload);
    }
  }

  private reconcileReplicaSet(set: Workload): void {
    const mine = this.claim(set).filter((k) => !isTerminal(this.pods[k]!) && !this.pods[k]!.terminating);
    if (mine.length > set.replicas) this.warnSurplus(set, mine.length);
    const created: Pod[] = [];
    const prefix = generateNamePrefix(set.name);
    const owners = controllerReferences(set);
    for (let i = 0; i < set.replicas - mine.length; i++) {
      created.push(podFromTemplate(set, this.names.generate(set.namespace, prefix, set.name, i), owners));
    }
    this.schedule(set, created, mine);
  }

  private reconcileStatefulSet(set: Workload): void {
    const mine = this.claim(set);
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
    const onNodes = new Set(this.claim(set).map((k) => this.pods[k]!.spec.nodeName));
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
    const pool = new PodAddressPool(new Set(this.pods.flatMap((p) => p.podIPs)));
    const failed = new Map<string, string[]>();
    this.pods.forEach((pod, k) => {
      if (pod.podIPs.length > 0 || pod.spec.nodeName === '' || isTerminal(pod)) return;
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
