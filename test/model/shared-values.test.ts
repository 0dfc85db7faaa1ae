/**
 * A loaded cluster shares equal labels, owner references, container ports, node selectors and
 * endpoint conditions among its objects (model/shared-values.ts). Sharing must never change what
 * is read: every object decoded in one load, with sharing, equals the same object decoded alone,
 * without it, field for field, also when two objects differ in one field only (a key that left
 * a field out would hand one object the other's value).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeManifest } from '../../src/manifest/decode.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import type { Json } from '../../src/model/fields.js';
import { SharedValues, sharedConditions } from '../../src/model/shared-values.js';
import type { OwnerReference } from '../../src/model/types.js';

const basePod = (name: string): { [key: string]: Json } => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace: 'shop',
    uid: `uid-${name}`,
    creationTimestamp: '2026-01-10T07:44:37Z',
    labels: { app: 'web', 'pod-template-hash': 'abc' },
    annotations: { note: 'x' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', controller: true, uid: 'rs-1' }],
  },
  spec: {
    nodeName: 'node-1',
    nodeSelector: { disk: 'ssd' },
    containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }],
  },
  status: { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }], conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-01-10T08:00:00Z' }] },
});

type Doc = ReturnType<typeof basePod>;
const edit = (name: string, change: (pod: Doc) => void): Doc => {
  const pod = structuredClone(basePod(name));
  change(pod);
  return pod;
};
const meta = (pod: Doc): { [key: string]: Json } => pod['metadata'] as { [key: string]: Json };
const spec = (pod: Doc): { [key: string]: Json } => pod['spec'] as { [key: string]: Json };
const owner = (pod: Doc): { [key: string]: Json } => (meta(pod)['ownerReferences'] as { [key: string]: Json }[])[0]!;
const port = (pod: Doc): { [key: string]: Json } => ((spec(pod)['containers'] as { [key: string]: Json }[])[0]!['ports'] as { [key: string]: Json }[])[0]!;

/** Pods that each differ from the first in one shared field. */
const PODS: readonly Doc[] = [
  basePod('a'),
  basePod('same-as-a'),
  edit('label-value', (p) => (meta(p)['labels'] = { app: 'web', 'pod-template-hash': 'abd' })),
  edit('label-key', (p) => (meta(p)['labels'] = { app: 'web', 'pod-template-hasx': 'abc' })),
  edit('label-order', (p) => (meta(p)['labels'] = { 'pod-template-hash': 'abc', app: 'web' })),
  edit('no-annotations', (p) => delete meta(p)['annotations']),
  edit('owner-api-version', (p) => (owner(p)['apiVersion'] = 'apps/v2')),
  edit('owner-kind', (p) => (owner(p)['kind'] = 'StatefulSet')),
  edit('owner-name', (p) => (owner(p)['name'] = 'web-abd')),
  edit('owner-controller', (p) => (owner(p)['controller'] = false)),
  edit('owner-uid', (p) => (owner(p)['uid'] = 'rs-2')),
  edit('owner-no-uid', (p) => delete owner(p)['uid']),
  edit('port-name', (p) => (port(p)['name'] = 'web')),
  edit('port-number', (p) => (port(p)['containerPort'] = 8081)),
  edit('port-protocol', (p) => (port(p)['protocol'] = 'UDP')),
  edit('node-selector', (p) => (spec(p)['nodeSelector'] = { disk: 'hdd' })),
  edit('second-port', (p) => ((spec(p)['containers'] as Json[]).push({ name: 'side', ports: [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' }] }))),
  edit('tolerated', (p) => (spec(p)['tolerations'] = [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }])),
  // Addresses as written but not in normal form are read normalised; in normal form, as written.
  edit('ipv6-as-written', (p) => (p['status'] = { ...(p['status'] as object), podIP: 'FD00:0:0::0A', podIPs: [{ ip: 'FD00:0:0::0A' }] })),
  edit('ipv6-normal', (p) => (p['status'] = { ...(p['status'] as object), podIP: 'fd00::a', podIPs: [{ ip: 'fd00::a' }, { ip: '10.244.1.5' }] })),
];

/** Endpoints with every condition triple that matters: each flag true, false or unset. */
const CONDITION_VALUES: readonly (boolean | undefined)[] = [true, false, undefined];
const endpoints: Json[] = [];
for (const ready of CONDITION_VALUES) {
  for (const serving of CONDITION_VALUES) {
    for (const terminating of CONDITION_VALUES) {
      const conditions: { [key: string]: Json } = {};
      if (ready !== undefined) conditions['ready'] = ready;
      if (serving !== undefined) conditions['serving'] = serving;
      if (terminating !== undefined) conditions['terminating'] = terminating;
      endpoints.push({ addresses: [`10.244.2.${endpoints.length + 1}`], conditions, nodeName: 'node-1', zone: 'a', targetRef: { kind: 'Pod', namespace: 'shop', name: `p${endpoints.length}` } });
    }
  }
}
const SLICE: Json = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints,
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
};

const list = (items: Json[]): string => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

test('every pod and endpoint decoded in one load (shared values) equals itself decoded alone, field for field', () => {
  const cluster = clusterFromManifests([{ file: 'all.json', text: list([...PODS, SLICE]) }]);
  for (const doc of PODS) {
    const name = meta(doc)['name'] as string;
    const alone = decodeManifest(list([doc]), 'all.json').pods[0]!;
    const loaded = cluster.pods!.find((p) => p.name === name)!;
    assert.deepStrictEqual(loaded, alone, `pod ${name}: the shared form differs from the pod read alone`);
    assert.equal(Object.keys(loaded.labels).join(','), Object.keys(alone.labels).join(','), `pod ${name}: label order`);
  }
  assert.deepEqual(cluster.pods!.find((p) => p.name === 'ipv6-as-written')!.podIPs, ['fd00::a']);
  assert.deepEqual(cluster.pods!.find((p) => p.name === 'ipv6-normal')!.podIPs, ['fd00::a', '10.244.1.5']);
  const aloneSlice = decodeManifest(list([SLICE]), 'all.json').endpointSlices[0]!;
  const loadedSlice = cluster.endpointSlices.find((s) => s.name === 'web-1')!;
  assert.equal(loadedSlice.endpoints.length, 27);
  loadedSlice.endpoints.forEach((ep, i) => {
    assert.deepStrictEqual(ep, aloneSlice.endpoints[i], `endpoint ${i}: conditions ${JSON.stringify((endpoints[i] as { conditions: Json }).conditions)}`);
    assert.deepStrictEqual(Object.keys(ep.conditions), Object.keys((endpoints[i] as { conditions: object }).conditions), `endpoint ${i}: an unset condition must stay unset`);
  });
});

test('equal values are one frozen object; different ones are not', () => {
  const cluster = clusterFromManifests([{ file: 'all.json', text: list([...PODS, SLICE]) }]);
  const pod = (name: string) => cluster.pods!.find((p) => p.name === name)!;
  const [a, same] = [pod('a'), pod('same-as-a')];
  const cases = [
    { what: 'labels', get: (p: typeof a) => p.labels, differs: 'label-value' },
    { what: 'annotations', get: (p: typeof a) => p.annotations, differs: 'no-annotations' },
    { what: 'owner reference', get: (p: typeof a) => p.ownerReferences[0], differs: 'owner-uid' },
    { what: 'container port', get: (p: typeof a) => p.spec.ports[0], differs: 'port-number' },
    { what: 'node selector', get: (p: typeof a) => p.spec.nodeSelector, differs: 'node-selector' },
    { what: 'tolerations (none)', get: (p: typeof a) => p.spec.tolerations, differs: 'tolerated' },
    { what: 'container port list', get: (p: typeof a) => p.spec.ports, differs: 'second-port' },
  ];
  for (const { what, get, differs } of cases) {
    assert.equal(get(a), get(same), `${what}: two pods with equal ones should share one object`);
    assert.ok(Object.isFrozen(get(a)), `${what}: a shared value must be frozen`);
    assert.notEqual(get(a), get(pod(differs)), `${what}: pod ${differs} has other ones`);
  }
  // The pods' own fields are theirs alone (the kubelet's work writes spec.nodeName).
  assert.notEqual(a.spec, same.spec);
  assert.ok(!Object.isFrozen(a.spec));
  const eps = cluster.endpointSlices.find((s) => s.name === 'web-1')!.endpoints;
  assert.equal(new Set(eps.map((e) => e.conditions)).size, 27, 'one conditions object per distinct triple');
});

test('sharedConditions and SharedValues keep every field and its absence', () => {
  const shared = new SharedValues();
  assert.deepStrictEqual(sharedConditions({ ready: true }), { ready: true });
  assert.equal(sharedConditions({ ready: true }), sharedConditions({ ready: true }));
  assert.notEqual(sharedConditions({ ready: true }), sharedConditions({ ready: true, serving: true }));
  assert.deepStrictEqual(shared.ownerReference({ apiVersion: 'v1', kind: 'X', name: 'n', controller: false }), { apiVersion: 'v1', kind: 'X', name: 'n', controller: false });
  assert.notEqual(shared.ownerReference({ apiVersion: 'v1', kind: 'X', name: 'n', controller: false }), shared.ownerReference({ apiVersion: 'v1', kind: 'X', name: 'n', controller: false, uid: '' }));
  assert.notEqual(shared.stringMap({ a: 'b\0c' }), shared.stringMap({ 'a\0b': 'c' }), 'keys and values that run into each other');
});

test('owner references: equal ones are one object and different ones are not, however many share a name', () => {
  const shared = new SharedValues();
  // Owners of one name: more uids than are compared one by one, some without a uid, some differing in another field only.
  const refs: OwnerReference[] = [];
  for (let i = 0; i < 40; i++) refs.push({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', controller: true, uid: `rs-${i}` });
  refs.push({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', controller: true });
  refs.push({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', controller: false, uid: 'rs-3' });
  refs.push({ apiVersion: 'apps/v2', kind: 'ReplicaSet', name: 'web-abc', controller: true, uid: 'rs-30' });
  refs.push({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web-abc', controller: true, uid: 'rs-30' });
  refs.push({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abd', controller: true, uid: 'rs-30' });
  refs.push({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', controller: true, uid: '' });
  const key = (r: OwnerReference): string => JSON.stringify([r.apiVersion, r.kind, r.name, r.controller, r.uid ?? null]);
  const first = new Map<string, OwnerReference>();
  // Each reference three times, in an order that mixes them: a copy must find the first every time.
  const order = [...refs, ...[...refs].reverse(), ...refs.filter((_, i) => i % 3 === 0), ...refs];
  for (const ref of order) {
    const got = shared.ownerReference({ ...ref });
    assert.deepStrictEqual(got, ref, `${key(ref)}: what was shared differs from it`);
    const seen = first.get(key(ref));
    if (seen === undefined) {
      for (const [other, value] of first) assert.notEqual(got, value, `${key(ref)} was handed ${other}'s object`);
      first.set(key(ref), got);
    } else {
      assert.equal(got, seen, `${key(ref)}: an equal reference got another object`);
    }
  }
  assert.equal(first.size, refs.length);
});
