/**
 * The workload controllers as a live cluster runs them (runWorkloadControllers with `live`, what
 * kpsim serve's controllers call on every change): scale-down deletes the surplus in the
 * ReplicaSet controller's order, a Deployment whose template changed gets a new ReplicaSet and
 * scales the old one to 0, a StatefulSet loses its highest ordinals, a DaemonSet leaves nodes
 * it may no longer run on, names once used are not drawn again, addresses go on from the last
 * one given, and no nodes are made up. The files' pass (no `live`) keeps its behaviour.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { clusterFromManifests } from '../../src/manifest/load.js';
import type { Cluster, Pod, Workload } from '../../src/model/types.js';
import { PodAddressPool } from '../../src/workload/pod-ipam.js';
import { type LiveOptions, runWorkloadControllers } from '../../src/workload/run.js';

type Manifest = Record<string, unknown>;
const NOW = Date.parse('2026-01-01T12:00:00Z');

function workload(kind: string, name: string, replicas: number | undefined, image = 'app:1'): Manifest {
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name, namespace: 'default' },
    spec: {
      ...(replicas !== undefined ? { replicas } : {}),
      ...(kind === 'StatefulSet' ? { serviceName: name } : {}),
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } },
    },
  };
}

/** A cluster laid out by --allocate (3 nodes), as kpsim serve starts from it. */
function allocated(manifests: Manifest[]): Cluster {
  return clusterFromManifests([{ file: 'app.yaml', text: manifests.map((m) => stringify(m)).join('---\n') }], { allocate: true });
}

function live(cluster: Cluster, workloads: Workload[], options: Partial<LiveOptions> = {}): ReturnType<typeof runWorkloadControllers> {
  return runWorkloadControllers({ nodes: cluster.nodes, pods: cluster.pods ?? [], workloads }, { clusterCIDRs: ['10.244.0.0/16'], live: { now: NOW, ...options } });
}

const names = (pods: readonly Pod[]): string[] => pods.map((p) => p.name).sort();

test('live: fed its own result, the pass changes nothing', () => {
  const cluster = allocated([workload('Deployment', 'web', 3), workload('StatefulSet', 'db', 2), workload('DaemonSet', 'agent', undefined)]);
  const result = live(cluster, cluster.workloads ?? []);
  assert.deepEqual(names(result.pods), names(cluster.pods ?? []));
  assert.deepEqual(result.deletedPods, []);
  assert.deepEqual(result.workloads.map((w) => `${w.kind} ${w.name} ${w.replicas}`), (cluster.workloads ?? []).map((w) => `${w.kind} ${w.name} ${w.replicas}`));
});

test('live: a ReplicaSet scaled from 5 to 2 deletes 3 pods, the doubled-up ones first; the files only warn', () => {
  const cluster = allocated([workload('Deployment', 'web', 5)]);
  const rs = (cluster.workloads ?? []).find((w) => w.kind === 'ReplicaSet')!;
  const scaled = (cluster.workloads ?? []).map((w) => (w.kind === 'Deployment' ? { ...w, replicas: 2 } : w));
  const result = live(cluster, scaled);
  assert.equal(result.deletedPods.length, 3);
  assert.equal(result.pods.length, 2);
  assert.equal(result.workloads.find((w) => w.name === rs.name)?.replicas, 2, 'the Deployment scaled its ReplicaSet');
  const perNode = new Map<string, number>();
  for (const p of cluster.pods ?? []) perNode.set(p.spec.nodeName, (perNode.get(p.spec.nodeName) ?? 0) + 1);
  const left = new Set(result.pods.map((p) => p.spec.nodeName));
  assert.equal(left.size, 2, `the two left are on two nodes: the doubled-up pods went first (${[...perNode].join(' ')})`);
  const files = runWorkloadControllers({ nodes: cluster.nodes, pods: cluster.pods ?? [], workloads: [{ ...rs, replicas: 2 }] }, { clusterCIDRs: ['10.244.0.0/16'] });
  assert.deepEqual(files.deletedPods, []);
  assert.match(files.warnings.map((w) => w.message).join('\n'), /kpsim deletes none/);
});

test('live: a Deployment whose template changed gets a new ReplicaSet with all the replicas; the old one goes to 0 and loses its pods', () => {
  const cluster = allocated([workload('Deployment', 'web', 3)]);
  const old = (cluster.workloads ?? []).find((w) => w.kind === 'ReplicaSet')!;
  const changed = allocated([workload('Deployment', 'web', 3, 'app:2')]).workloads!.find((w) => w.kind === 'Deployment')!;
  const result = live(cluster, [changed, old]);
  const replicaSets = result.workloads.filter((w) => w.kind === 'ReplicaSet').map((w) => `${w.name} ${w.replicas}`);
  assert.equal(replicaSets.length, 2, replicaSets.join('\n'));
  assert.ok(replicaSets.includes(`${old.name} 0`), replicaSets.join('\n'));
  const fresh = result.workloads.find((w) => w.kind === 'ReplicaSet' && w.name !== old.name)!;
  assert.equal(fresh.replicas, 3);
  assert.deepEqual(names(result.deletedPods), names(cluster.pods ?? []));
  assert.equal(result.pods.filter((p) => p.ownerReferences[0]?.name === fresh.name && p.podIPs.length > 0).length, 3);
});

test('live: a StatefulSet scaled from 3 to 1 deletes db-2 then db-1', () => {
  const cluster = allocated([workload('StatefulSet', 'db', 3)]);
  const result = live(cluster, (cluster.workloads ?? []).map((w) => ({ ...w, replicas: 1 })));
  assert.deepEqual(result.deletedPods.map((p) => p.name), ['db-2', 'db-1']);
  assert.deepEqual(names(result.pods), ['db-0']);
});

test('live: a DaemonSet leaves a node tainted against it; it makes up no nodes', () => {
  const cluster = allocated([workload('DaemonSet', 'agent', undefined)]);
  const tainted = cluster.nodes.map((n, i) => (i === 0 ? { ...n, taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' as const }] } : n));
  const result = runWorkloadControllers({ nodes: tainted, pods: cluster.pods ?? [], workloads: cluster.workloads ?? [] }, { live: { now: NOW } });
  assert.deepEqual(result.deletedPods.map((p) => p.spec.nodeName), [tainted[0]!.name]);
  const none = runWorkloadControllers({ nodes: [], pods: [], workloads: cluster.workloads ?? [] }, { live: { now: NOW } });
  assert.deepEqual([none.nodes, none.createdNodes], [[], false], 'a live cluster without nodes has none');
});

test('live: a replacement pod gets neither a name used before nor the address just freed', () => {
  const cluster = allocated([workload('Deployment', 'web', 3)]);
  const [victim, ...rest] = cluster.pods ?? [];
  const addresses = new PodAddressPool();
  // The kubelets gave the three their addresses; the pool went past them.
  addresses.use(new Set());
  const warm = runWorkloadControllers({ nodes: cluster.nodes, pods: (cluster.pods ?? []).map((p) => ({ ...p, podIPs: [] })), workloads: cluster.workloads ?? [] }, { live: { now: NOW, addresses } });
  assert.deepEqual(warm.pods.map((p) => p.podIPs[0]).sort(), (cluster.pods ?? []).map((p) => p.podIPs[0]).sort(), 'the same addresses the files gave');
  const result = live(cluster, cluster.workloads ?? [], { usedNames: [{ namespace: 'default', name: victim!.name }], addresses });
  const replaced = live({ ...cluster, pods: rest }, cluster.workloads ?? [], { usedNames: [{ namespace: 'default', name: victim!.name }], addresses });
  assert.deepEqual(result.deletedPods, []);
  const fresh = replaced.pods.find((p) => !rest.includes(p))!;
  assert.ok(fresh, names(replaced.pods).join(' '));
  assert.notEqual(fresh.name, victim!.name);
  assert.notEqual(fresh.podIPs[0], victim!.podIPs[0], 'host-local goes on from the last address it gave');
  const again = live({ ...cluster, pods: rest }, cluster.workloads ?? []);
  assert.equal(again.pods.find((p) => !rest.includes(p))!.podIPs[0], victim!.podIPs[0], 'a fresh pool starts from the lowest free address (the files)');
});
