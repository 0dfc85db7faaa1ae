/**
 * Which pods a ReplicaSet deletes first, rule by rule of the ReplicaSet controller's
 * ActivePodsWithRanks (kubernetes pkg/controller/controller_utils_test.go
 * TestSortingActivePodsWithRanks is the reference): each case has two pods that differ in one
 * respect, and the one that must go first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from '../../src/model/types.js';
import { podsToDelete } from '../../src/workload/scale-down.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (seconds: number): string => new Date(NOW - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function pod(name: string, mutate: Partial<Pod> & { node?: string } = {}): Pod {
  const { node, ...rest } = mutate;
  return {
    kind: 'Pod',
    origin: { file: 'test', object: `Pod default/${name}` },
    namespace: 'default',
    name,
    labels: { app: 'web' },
    annotations: {},
    ownerReferences: [],
    spec: { nodeName: node ?? 'node-1', hostname: '', subdomain: '', hostNetwork: false, nodeSelector: {}, tolerations: [], ports: [], unmodelled: [] },
    podIPs: ['10.244.0.2'],
    phase: 'Running',
    ready: true,
    terminating: false,
    creationTimestamp: ago(3600),
    readySince: ago(3600),
    ...rest,
  };
}

interface Case {
  name: string;
  /** The pod that goes first, then the other. */
  first: Pod;
  second: Pod;
  /** Pods the ranks count (both pods' ReplicaSet siblings); the two by default. */
  related?: Pod[];
}

const cases: Case[] = [
  { name: '1. unassigned before assigned', first: pod('b', { node: '' }), second: pod('a') },
  { name: '2. Pending before Running', first: pod('b', { phase: 'Pending' }), second: pod('a') },
  { name: '2. Unknown before Running', first: pod('b', { phase: 'Unknown' }), second: pod('a') },
  { name: '3. not Ready before Ready', first: pod('b', { ready: false }), second: pod('a') },
  { name: '4. a lower pod-deletion-cost first', first: pod('b', { annotations: { 'controller.kubernetes.io/pod-deletion-cost': '-5' } }), second: pod('a', { annotations: { 'controller.kubernetes.io/pod-deletion-cost': '10' } }) },
  {
    name: '5. doubled up (more related pods on its node) first',
    first: pod('b', { node: 'node-2' }),
    second: pod('a', { node: 'node-1' }),
    related: [pod('b', { node: 'node-2' }), pod('c', { node: 'node-2' }), pod('a', { node: 'node-1' })],
  },
  { name: '6. Ready more recently first (an hour against a minute: other powers of two)', first: pod('b', { readySince: ago(60) }), second: pod('a', { readySince: ago(3600) }) },
  { name: '6. Ready in the same power of two: by name (Go: by UID)', first: pod('a', { readySince: ago(3000) }), second: pod('b', { readySince: ago(3100) }) },
  { name: '7. more restarts first', first: pod('b', { restarts: 3 }), second: pod('a', { restarts: 1 }) },
  { name: '8. created more recently first', first: pod('b', { creationTimestamp: ago(10) }), second: pod('a', { creationTimestamp: ago(10_000) }) },
  { name: '8. no creation time before one', first: pod('b', { creationTimestamp: undefined as unknown as string }), second: pod('a') },
  { name: 'all equal: by name', first: pod('a'), second: pod('b') },
];

for (const c of cases) {
  test(`scale-down order: ${c.name}`, () => {
    for (const pods of [[c.first, c.second], [c.second, c.first]]) {
      const got = podsToDelete(pods, c.related ?? pods, 1, NOW);
      assert.deepEqual(got.map((p) => p.name), [c.first.name], `from ${pods.map((p) => p.name).join(', ')}`);
    }
  });
}

test('scale-down order: the earlier rules win over the later ones', () => {
  const notReadyOld = pod('old-not-ready', { ready: false, creationTimestamp: ago(100_000) });
  const readyNew = pod('new-ready', { creationTimestamp: ago(5) });
  const unassigned = pod('unassigned', { node: '', phase: 'Pending', ready: false });
  const got = podsToDelete([readyNew, notReadyOld, unassigned], [readyNew, notReadyOld, unassigned], 2, NOW);
  assert.deepEqual(got.map((p) => p.name), ['unassigned', 'old-not-ready']);
});

test('scale-down: none for 0, every pod (unsorted, as Go skips the sort) when asked for all of them', () => {
  const pods = [pod('a'), pod('b')];
  assert.deepEqual(podsToDelete(pods, pods, 0, NOW), []);
  assert.deepEqual(podsToDelete(pods, pods, 5, NOW).map((p) => p.name), ['a', 'b']);
});
