/**
 * Which pods a ReplicaSet deletes when it has too many: the ReplicaSet controller's
 * getPodsToDelete and controller.ActivePodsWithRanks (pkg/controller/replicaset/replica_set.go,
 * pkg/controller/controller_utils.go), with the PodDeletionCost and LogarithmicScaleDown
 * features on (both GA). A pod comes before another, and is deleted first, when, in turn:
 *
 * 1. it is not assigned to a node and the other is;
 * 2. its phase comes first in Pending < Unknown < Running;
 * 3. it is not Ready and the other is;
 * 4. its controller.kubernetes.io/pod-deletion-cost annotation is lower;
 * 5. its node runs more of the related pods (the pods of all its Deployment's ReplicaSets): its rank;
 * 6. both are Ready and it became Ready more recently, compared on a log2 scale of the time since;
 * 7. a container of it restarted more often;
 * 8. it was created more recently, compared on a log2 scale of its age.
 *
 * Go breaks ties in 6 and 8 (the same power of two) by the pods' UIDs, random strings; kpsim by
 * their names, so the same cluster always loses the same pods. Pure: the clock is passed in.
 */
import type { Pod } from '../model/types.js';

/** controller.kubernetes.io/pod-deletion-cost: pods with a lower cost go first. */
export const POD_DELETION_COST_ANNOTATION = 'controller.kubernetes.io/pod-deletion-cost';

const PHASE_ORDER: Readonly<Record<string, number>> = { Pending: 0, Unknown: 1, Running: 2 };

interface Ranked {
  pod: Pod;
  rank: number;
}

/** The `count` pods of `pods` to delete, in the order they go; `related` are the active pods ranks are counted against. */
export function podsToDelete(pods: readonly Pod[], related: readonly Pod[], count: number, now: number): Pod[] {
  if (count <= 0) return [];
  if (count >= pods.length) return [...pods];
  const onNode = new Map<string, number>();
  for (const pod of related) onNode.set(pod.spec.nodeName, (onNode.get(pod.spec.nodeName) ?? 0) + 1);
  const ranked: Ranked[] = pods.map((pod) => ({ pod, rank: onNode.get(pod.spec.nodeName) ?? 0 }));
  return ranked.sort((a, b) => comparePods(a, b, now)).slice(0, count).map((r) => r.pod);
}

function deletionCost(pod: Pod): number {
  const text = pod.annotations[POD_DELETION_COST_ANNOTATION];
  const value = text === undefined ? 0 : Number(text);
  return Number.isInteger(value) ? value : 0;
}

/** Negative when `a` goes before `b` (ActivePodsWithRanks.Less). */
export function comparePods(a: Ranked, b: Ranked, now: number): number {
  const pa = a.pod;
  const pb = b.pod;
  if (pa.spec.nodeName !== pb.spec.nodeName && (pa.spec.nodeName === '' || pb.spec.nodeName === '')) return pa.spec.nodeName === '' ? -1 : 1;
  const phase = (PHASE_ORDER[pa.phase] ?? 0) - (PHASE_ORDER[pb.phase] ?? 0);
  if (phase !== 0) return phase;
  if (pa.ready !== pb.ready) return pa.ready ? 1 : -1;
  const cost = deletionCost(pa) - deletionCost(pb);
  if (cost !== 0) return cost;
  if (a.rank !== b.rank) return b.rank - a.rank;
  if (pa.ready && pb.ready) {
    const ready = newerFirst(pa.readySince, pb.readySince, now);
    if (ready !== 0) return Number.isNaN(ready) ? byName(pa, pb) : ready;
  }
  const restarts = (pb.restarts ?? 0) - (pa.restarts ?? 0);
  if (restarts !== 0) return restarts;
  const created = newerFirst(pa.creationTimestamp, pb.creationTimestamp, now);
  if (created !== 0 && !Number.isNaN(created)) return created;
  return byName(pa, pb);
}

/**
 * Two times compared as the controller does: 0 when they are equal (the next rule decides); a
 * missing time first, else the more recent first on the scale of floor(log2(nanoseconds since));
 * NaN when they fall in the same power of two (the real controller then goes by UID).
 */
function newerFirst(a: string | undefined, b: string | undefined, now: number): number {
  const ta = a === undefined ? Number.NaN : Date.parse(a);
  const tb = b === undefined ? Number.NaN : Date.parse(b);
  if (ta === tb || (Number.isNaN(ta) && Number.isNaN(tb))) return 0;
  if (Number.isNaN(ta)) return -1;
  if (Number.isNaN(tb)) return 1;
  const rank = logRank(now - ta) - logRank(now - tb);
  return rank === 0 ? Number.NaN : rank;
}

function logRank(ms: number): number {
  return ms > 0 ? Math.floor(Math.log2(ms * 1e6)) : -1;
}

function byName(a: Pod, b: Pod): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
