/**
 * A small kube-scheduler: which nodes a pod may run on, and which one it gets.
 *
 * Modelled (filters): spec.nodeSelector, required node affinity (nodeSelectorTerms with
 * matchExpressions and matchFields), taints with effect NoSchedule or NoExecute against the
 * pod's tolerations, cordoned nodes (spec.unschedulable), nodes whose Ready condition is False
 * (the node lifecycle controller's not-ready taint), and the node's pod capacity
 * (status.allocatable.pods, else the kubelet's default of 110).
 *
 * Scoring is simple spreading: a workload's pods go to the eligible node with the fewest of
 * that workload's pods, then the fewest pods in all, then the first in node order. Not
 * modelled: CPU and memory requests and capacity, pod affinity and anti-affinity, topology
 * spread constraints (the scheduler's default ones spread over zones too), preferred node
 * affinity, PreferNoSchedule taints, priorities and preemption, scheduling gates.
 */
import { Heap } from 'heap-js';
import { matchesMap, matchesNodeSelectorTerms } from '../model/label-selector.js';
import type { Node, PodSpec, Taint, Toleration } from '../model/types.js';

/** The kubelet's default --max-pods, what status.allocatable.pods says when the manifest does not. */
export const DEFAULT_MAX_PODS = 110;

/**
 * The tolerations the DaemonSet controller adds to its pods (pkg/controller/daemon/util), so a
 * DaemonSet runs on nodes that are not ready, under pressure or cordoned.
 */
const DAEMONSET_TOLERATIONS: readonly Toleration[] = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', value: '', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', value: '', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', value: '', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', value: '', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', value: '', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', value: '', effect: 'NoSchedule' },
];
const NETWORK_UNAVAILABLE: Toleration = { key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', value: '', effect: 'NoSchedule' };

/** Why a node does not fit, in the scheduler's words ("node(s) didn't match Pod's node affinity/selector"). */
export type FitFailure = string;

/** The tolerations a DaemonSet's pods carry: the template's plus the controller's. */
export function daemonSetTolerations(spec: PodSpec): Toleration[] {
  return [...spec.tolerations, ...DAEMONSET_TOLERATIONS, ...(spec.hostNetwork ? [NETWORK_UNAVAILABLE] : [])];
}

/** v1.Toleration.ToleratesTaint. */
export function tolerates(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect !== '' && toleration.effect !== taint.effect) return false;
  if (toleration.key !== '' && toleration.key !== taint.key) return false;
  return toleration.operator === 'Exists' || toleration.value === taint.value;
}

/** The taints the scheduler sees on a node: its own, plus those the node controllers add for cordoned and not-ready nodes. */
function effectiveTaints(node: Node): Taint[] {
  const taints = [...(node.taints ?? [])];
  if (node.unschedulable) taints.push({ key: 'node.kubernetes.io/unschedulable', value: '', effect: 'NoSchedule' });
  if (node.ready === false) taints.push({ key: 'node.kubernetes.io/not-ready', value: '', effect: 'NoSchedule' });
  return taints;
}

/** The first filter the node fails for a pod with `spec` and `tolerations`; undefined when it fits (capacity aside). */
export function nodeFitFailure(spec: PodSpec, tolerations: readonly Toleration[], node: Node): FitFailure | undefined {
  if (!matchesMap(spec.nodeSelector, node.labels)) return "node(s) didn't match Pod's node affinity/selector";
  if (spec.requiredNodeAffinity !== undefined && !matchesNodeSelectorTerms(spec.requiredNodeAffinity, node.name, node.labels)) {
    return "node(s) didn't match Pod's node affinity/selector";
  }
  for (const taint of effectiveTaints(node)) {
    if (taint.effect === 'PreferNoSchedule') continue;
    if (!tolerations.some((t) => tolerates(t, taint))) {
      if (taint.key === 'node.kubernetes.io/unschedulable') return 'node(s) were unschedulable';
      return `node(s) had untolerated taint {${taint.key}: ${taint.value}}`;
    }
  }
  return undefined;
}

/** "0/3 nodes are available: 1 node(s) were unschedulable, 2 Too many pods.", as the scheduler reports an unschedulable pod. */
export function unschedulableMessage(nodeCount: number, failures: readonly FitFailure[]): string {
  const counts = new Map<string, number>();
  for (const f of failures) counts.set(f, (counts.get(f) ?? 0) + 1);
  const reasons = [...counts].map(([reason, n]) => `${n} ${reason}`).sort();
  return `0/${nodeCount} nodes are available${reasons.length > 0 ? `: ${reasons.join(', ')}` : ''}.`;
}

interface Entry {
  readonly index: number;
  readonly pods: number;
}

/**
 * Places pods on nodes and keeps count. Candidate nodes of each distinct set of constraints are
 * found once and kept in a heap by (pods, node order); counts only grow, so an entry whose count
 * is out of date is put back with the right one when it surfaces.
 */
export class Scheduler {
  private readonly podCounts: number[];
  private readonly capacity: number[];
  private readonly heaps = new Map<string, { heap: Heap<Entry>; failures: FitFailure[] }>();

  constructor(readonly nodes: readonly Node[]) {
    this.podCounts = nodes.map(() => 0);
    this.capacity = nodes.map((n) => n.allocatablePods ?? DEFAULT_MAX_PODS);
  }

  /** Counts a pod already on a node (given in the input, or placed by the DaemonSet controller). */
  count(nodeIndex: number): void {
    this.podCounts[nodeIndex]!++;
  }

  /**
   * Places `n` pods of one workload that share `spec`: the node index of each (undefined when
   * none fits), spreading over the nodes as the type comment says. `existing` holds the nodes
   * where the workload already has pods.
   */
  place(spec: PodSpec, n: number, existing: readonly number[] = []): { nodes: (number | undefined)[]; reason?: string } {
    const candidates = this.candidatesFor(spec);
    const owned = new Map<number, number>();
    for (const i of existing) owned.set(i, (owned.get(i) ?? 0) + 1);
    const placed: (number | undefined)[] = [];
    const stash: number[] = [];
    let level = 0;
    while (placed.length < n) {
      const entry = candidates.heap.pop();
      if (!entry) {
        if (stash.length === 0) break;
        level++;
        for (const i of stash.splice(0)) candidates.heap.push({ index: i, pods: this.podCounts[i]! });
        continue;
      }
      const i = entry.index;
      if (entry.pods !== this.podCounts[i]) {
        candidates.heap.push({ index: i, pods: this.podCounts[i]! });
        continue;
      }
      if (this.podCounts[i]! >= this.capacity[i]!) continue; // full for good: counts only grow
      if ((owned.get(i) ?? 0) > level) {
        stash.push(i);
        continue;
      }
      this.podCounts[i]!++;
      owned.set(i, (owned.get(i) ?? 0) + 1);
      placed.push(i);
      stash.push(i);
    }
    for (const i of stash) candidates.heap.push({ index: i, pods: this.podCounts[i]! });
    if (placed.length === n) return { nodes: placed };
    const failures = candidates.failures.map((f, i) => f || (this.podCounts[i]! >= this.capacity[i]! ? 'Too many pods' : '')).filter((f) => f !== '');
    return { nodes: [...placed, ...new Array<undefined>(n - placed.length).fill(undefined)], reason: unschedulableMessage(this.nodes.length, failures) };
  }

  private candidatesFor(spec: PodSpec): { heap: Heap<Entry>; failures: FitFailure[] } {
    const key = JSON.stringify([spec.nodeSelector, spec.requiredNodeAffinity ?? null, spec.tolerations]);
    let found = this.heaps.get(key);
    if (!found) {
      const heap = new Heap<Entry>((a, b) => a.pods - b.pods || a.index - b.index);
      const failures: FitFailure[] = [];
      this.nodes.forEach((node, i) => {
        const failure = nodeFitFailure(spec, spec.tolerations, node);
        failures.push(failure ?? '');
        if (failure === undefined) heap.push({ index: i, pods: this.podCounts[i]! });
      });
      found = { heap, failures };
      this.heaps.set(key, found);
    }
    return found;
  }
}
