/**
 * The EndpointSlice controller's reconciler against slices it wrote before, as
 * staging/src/k8s.io/endpointslice/reconciler_test.go checks it: an endpoint that stays keeps its
 * slice, slices are updated in place and keep their names, new endpoints fill the slices being
 * updated before new ones are made, a slice to create takes the place of one to delete, the
 * placeholder stays, slices of an older Service of the name go, nothing changes when nothing did.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { deriveEndpointSlices } from '../../src/controller/endpoint-slice-controller.js';
import { type ExistingSlice, type ReconcileContext, type SliceChanges, reconcileEndpointSlices } from '../../src/controller/endpoint-slice-reconciler.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import type { Cluster, EndpointSlice, Pod, Service } from '../../src/model/types.js';
import { GeneratedNames } from '../../src/util/generated-names.js';

type Manifest = Record<string, unknown>;

function podManifest(i: number, extra: { ready?: boolean; node?: string } = {}): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `web-${i}`, namespace: 'default', labels: { app: 'web' } },
    spec: { nodeName: extra.node ?? 'node-1', containers: [{ name: 'web', ports: [{ containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: `10.244.0.${i + 10}`, conditions: [{ type: 'Ready', status: extra.ready === false ? 'False' : 'True' }] },
  };
}

function clusterOf(pods: Manifest[], service: Manifest = {}): Cluster {
  const docs: Manifest[] = [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], ...service } },
    ...pods,
  ];
  return clusterFromManifests([{ file: 'test.yaml', text: docs.map((d) => stringify(d)).join('---\n') }]);
}

function contextOf(cluster: Cluster, existing: readonly EndpointSlice[], max = 100): ReconcileContext {
  const names = new GeneratedNames(0);
  for (const s of existing) names.reserve(s.namespace, s.name);
  return { nodesByName: new Map(cluster.nodes.map((n) => [n.name, n])), cpuRatios: () => undefined, names, maxEndpointsPerSlice: max, preferSameTrafficDistribution: true };
}

function reconcile(cluster: Cluster, existing: readonly EndpointSlice[], max = 100, owned = true): SliceChanges {
  const service = cluster.services[0] as Service;
  return reconcileEndpointSlices(service, (cluster.pods ?? []) as Pod[], existing.map((slice): ExistingSlice => ({ slice, ownedByService: owned })), contextOf(cluster, existing, max));
}

/** The slices after applying the changes to the existing ones. */
function apply(existing: readonly EndpointSlice[], changes: SliceChanges): EndpointSlice[] {
  const gone = new Set([...changes.delete, ...changes.update].map((s) => s.name));
  return [...existing.filter((s) => !gone.has(s.name)), ...changes.update, ...changes.create].sort((a, b) => (a.name < b.name ? -1 : 1));
}

function summary(changes: SliceChanges): string {
  const names = (list: readonly EndpointSlice[]): string => list.map((s) => `${s.name}(${s.endpoints.length})`).join(',');
  return `create [${names(changes.create)}] update [${names(changes.update)}] delete [${names(changes.delete)}] unchanged [${names(changes.unchanged)}]`;
}

function addresses(slices: readonly EndpointSlice[]): string[] {
  return slices.flatMap((s) => s.endpoints.map((e) => `${e.addresses[0]}${e.conditions.ready ? '' : ' not-ready'}`)).sort();
}

const first = (pods: Manifest[], service: Manifest = {}): { cluster: Cluster; slices: EndpointSlice[] } => {
  const cluster = clusterOf(pods, service);
  return { cluster, slices: cluster.endpointSlices };
};

test('reconciler: with no slices before, it writes what deriveEndpointSlices derives', () => {
  const cluster = clusterOf([0, 1, 2].map((i) => podManifest(i)));
  const changes = reconcile(cluster, []);
  const derived = deriveEndpointSlices({ services: cluster.services, pods: cluster.pods ?? [], nodes: cluster.nodes });
  assert.deepEqual(changes.create, derived.slices);
  assert.deepEqual([changes.update, changes.delete, changes.unchanged], [[], [], []]);
});

const scenarios: { name: string; before: Manifest[]; after: Manifest[]; max?: number; expect: (before: EndpointSlice[], c: SliceChanges) => void }[] = [
  {
    name: 'nothing changed: every slice unchanged, nothing to write',
    before: [0, 1, 2].map((i) => podManifest(i)),
    after: [0, 1, 2].map((i) => podManifest(i)),
    expect: (before, c) => {
      assert.deepEqual([c.create, c.update, c.delete], [[], [], []], summary(c));
      assert.deepEqual(c.unchanged.map((s) => s.name), before.map((s) => s.name));
    },
  },
  {
    name: 'scaled up within the slice: the slice is updated in place, its name kept',
    before: [0, 1, 2].map((i) => podManifest(i)),
    after: [0, 1, 2, 3, 4].map((i) => podManifest(i)),
    expect: (before, c) => {
      assert.equal(summary(c), `create [] update [${before[0]!.name}(5)] delete [] unchanged []`);
      assert.deepEqual(c.update[0]!.endpoints.slice(0, 3), before[0]!.endpoints, 'the endpoints that stay keep their places');
    },
  },
  {
    name: 'scaled down: the slice is updated in place',
    before: [0, 1, 2, 3, 4].map((i) => podManifest(i)),
    after: [1, 3].map((i) => podManifest(i)),
    expect: (before, c) => assert.equal(summary(c), `create [] update [${before[0]!.name}(2)] delete [] unchanged []`),
  },
  {
    name: 'a pod not Ready: its endpoint is updated in place',
    before: [0, 1].map((i) => podManifest(i)),
    after: [podManifest(0, { ready: false }), podManifest(1)],
    expect: (before, c) => {
      assert.equal(summary(c), `create [] update [${before[0]!.name}(2)] delete [] unchanged []`);
      assert.deepEqual(addresses(c.update), ['10.244.0.10 not-ready', '10.244.0.11']);
    },
  },
  {
    name: 'every pod gone: the slice becomes the placeholder under its own name (a create turned into an update)',
    before: [0, 1].map((i) => podManifest(i)),
    after: [],
    expect: (before, c) => {
      assert.equal(summary(c), `create [] update [${before[0]!.name}(0)] delete [] unchanged []`);
      assert.deepEqual(c.update[0]!.ports, []);
    },
  },
  {
    name: 'the placeholder stays when there is still nothing to list',
    before: [],
    after: [],
    expect: (before, c) => assert.equal(summary(c), `create [] update [] delete [] unchanged [${before[0]!.name}(0)]`),
  },
  {
    name: 'max 2 per slice, one pod of the first slice gone and two new: the slice being updated is filled first, then a new one',
    before: [0, 1, 2, 3, 4].map((i) => podManifest(i)),
    after: [1, 2, 3, 4, 5, 6].map((i) => podManifest(i)),
    max: 2,
    expect: (before, c) => {
      assert.equal(before.length, 3, 'two full slices and one with one endpoint');
      // The first slice (web-0, web-1) loses web-0 and is topped up with web-5; web-6 fits the unchanged slice of one.
      assert.equal(summary(c), `create [] update [${before[0]!.name}(2),${before[2]!.name}(2)] delete [] unchanged [${before[1]!.name}(2)]`);
      assert.deepEqual(addresses(apply(before, c)), [1, 2, 3, 4, 5, 6].map((i) => `10.244.0.${i + 10}`));
    },
  },
];

for (const s of scenarios) {
  test(`reconciler: ${s.name}`, () => {
    const { slices: before } = first(s.before);
    const derivedWithMax = s.max !== undefined ? reconcile(clusterOf(s.before), [], s.max).create : before;
    const cluster = clusterOf(s.after);
    const changes = reconcile(cluster, derivedWithMax, s.max ?? 100);
    s.expect(derivedWithMax, changes);
    const again = reconcile(cluster, apply(derivedWithMax, changes), s.max ?? 100);
    assert.deepEqual([again.create, again.update, again.delete], [[], [], []], `fed its own writes, it has nothing more to do: ${summary(again)}`);
  });
}

test('reconciler: slices of an older Service of the same name (another uid) go, and new ones are made', () => {
  const { slices: before } = first([0, 1].map((i) => podManifest(i)));
  const cluster = clusterOf([0, 1].map((i) => podManifest(i)));
  const c = reconcile(cluster, before, 100, false);
  assert.equal(c.delete.map((s) => s.name).join(), before[0]!.name);
  assert.equal(c.create.length, 1);
  assert.notEqual(c.create[0]!.name, before[0]!.name, 'a slice not owned by this Service is not taken over');
});

test('reconciler: an address type the Service no longer has: its slices go', () => {
  const { slices: before } = first([0, 1].map((i) => podManifest(i)));
  const cluster = clusterOf([0, 1].map((i) => podManifest(i)), { clusterIP: 'fd00::10', ipFamilies: ['IPv6'] });
  const c = reconcile(cluster, before);
  assert.deepEqual(c.delete.map((s) => s.addressType), ['IPv4']);
  assert.deepEqual(c.create.map((s) => [s.addressType, s.endpoints.length]), [['IPv6', 0]], 'the pods have no IPv6 address: an IPv6 placeholder');
});

test('reconciler: hints asked for later: the unchanged slices are updated with them', () => {
  const { slices: before } = first([0, 1].map((i) => podManifest(i)));
  const cluster = clusterOf([0, 1].map((i) => podManifest(i)), { trafficDistribution: 'PreferClose' });
  const zoned = { ...cluster, nodes: cluster.nodes.map((n) => ({ ...n, labels: { ...n.labels, 'topology.kubernetes.io/zone': 'zone-a' } })) };
  const c = reconcile(zoned, before);
  assert.equal(summary(c), `create [] update [${before[0]!.name}(2)] delete [] unchanged []`);
  assert.deepEqual(c.update[0]!.endpoints.map((e) => e.hints?.forZones), [['zone-a'], ['zone-a']]);
  assert.equal(before[0]!.endpoints[0]!.hints, undefined, 'the slice given is not changed');
});
