/**
 * The PATCH bodies: strategic merge (what kubectl apply, edit and patch send, directives
 * included, as apimachinery's strategicpatch merges them for these kinds' fields), JSON merge
 * patch (RFC 7386's own examples) and JSON patch (RFC 6902).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyConfiguration, jsonPatch, mergePatch, strategicMergePatch } from '../../../src/api/kube/patch.js';
import { NODES, SERVICES } from '../../../src/api/kube/resources.js';
import { isStatusError } from '../../../src/api/kube/status.js';
import type { Json, JsonObject } from '../../../src/model/fields.js';

const web: JsonObject = {
  metadata: { name: 'web', labels: { app: 'web', tier: 'x' }, finalizers: ['a'] },
  spec: {
    type: 'NodePort',
    selector: { app: 'web' },
    externalIPs: ['192.0.2.1', '192.0.2.2'],
    ports: [
      { name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' },
      { name: 'https', port: 443, targetPort: 8443, nodePort: 30443, protocol: 'TCP' },
    ],
  },
};

interface StrategicCase {
  name: string;
  patch: Json;
  /** Paths of the result to compare, with what they should hold. */
  want: Record<string, Json | undefined>;
}

function at(obj: Json, path: string): Json | undefined {
  let value: Json | undefined = obj;
  for (const key of path.split('.')) value = value !== null && typeof value === 'object' && !Array.isArray(value) ? value[key] : Array.isArray(value) ? value[Number(key)] : undefined;
  return value;
}

const strategicCases: StrategicCase[] = [
  {
    name: 'ports merge on their key: one changes, the other stays',
    patch: { spec: { ports: [{ port: 80, targetPort: 9090 }] } },
    want: { 'spec.ports': [{ name: 'http', port: 80, targetPort: 9090, nodePort: 30080, protocol: 'TCP' }, { name: 'https', port: 443, targetPort: 8443, nodePort: 30443, protocol: 'TCP' }] },
  },
  {
    name: "kubectl apply's 3-way patch: $setElementOrder and $patch: delete",
    patch: { spec: { ports: [{ $patch: 'delete', port: 80 }, { port: 8080, name: 'alt' }], '$setElementOrder/ports': [{ port: 8080 }, { port: 443 }] } },
    want: { 'spec.ports': [{ port: 8080, name: 'alt' }, { name: 'https', port: 443, targetPort: 8443, nodePort: 30443, protocol: 'TCP' }] },
  },
  {
    name: 'lists without a strategy are replaced whole',
    patch: { spec: { externalIPs: ['192.0.2.9'] } },
    want: { 'spec.externalIPs': ['192.0.2.9'] },
  },
  {
    name: 'null deletes a key, maps merge',
    patch: { metadata: { labels: { tier: null, new: 'yes' } } },
    want: { 'metadata.labels': { app: 'web', new: 'yes' } },
  },
  {
    name: '$patch: replace on a map replaces it',
    patch: { spec: { selector: { $patch: 'replace', only: 'this' } } },
    want: { 'spec.selector': { only: 'this' } },
  },
  {
    name: '$patch: replace in a merging list replaces the list',
    patch: { spec: { ports: [{ $patch: 'replace' }, { port: 1, name: 'one' }] } },
    want: { 'spec.ports': [{ port: 1, name: 'one' }] },
  },
  {
    name: 'finalizers are a set: the patch adds, $deleteFromPrimitiveList removes',
    patch: { metadata: { finalizers: ['b'], '$deleteFromPrimitiveList/finalizers': ['a'] } },
    want: { 'metadata.finalizers': ['b'] },
  },
  {
    name: '$retainKeys drops the keys it does not list',
    patch: { spec: { $retainKeys: ['type', 'ports', 'selector'], type: 'ClusterIP' } },
    want: { 'spec.type': 'ClusterIP', 'spec.externalIPs': undefined, 'spec.ports.0.port': 80 },
  },
];

for (const c of strategicCases) {
  test(`strategic merge: ${c.name}`, () => {
    const got = strategicMergePatch(SERVICES, web, c.patch);
    for (const [path, value] of Object.entries(c.want)) assert.deepEqual(at(got, path), value, `${path} in ${JSON.stringify(got)}`);
    assert.deepEqual(at(web, 'spec.ports.0.targetPort'), 8080, 'the original is left alone');
  });
}

test('strategic merge: node addresses merge on their type, pod CIDRs are a set', () => {
  const node: JsonObject = { metadata: { name: 'n' }, spec: { podCIDRs: ['10.244.0.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }, { type: 'Hostname', address: 'n' }] } };
  const got = strategicMergePatch(NODES, node, { spec: { podCIDRs: ['fd00::/64'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.9' }] } });
  assert.deepEqual(at(got, 'spec.podCIDRs'), ['10.244.0.0/24', 'fd00::/64']);
  assert.deepEqual(at(got, 'status.addresses'), [{ type: 'InternalIP', address: '192.168.0.9' }, { type: 'Hostname', address: 'n' }]);
});

test('strategic merge: an element without its merge key is a 400', () => {
  assert.throws(() => strategicMergePatch(SERVICES, web, { spec: { ports: [{ targetPort: 1 }] } }), (e: unknown) => isStatusError(e) && e.status.code === 400 && /merge key "port"/.test(e.message));
});

// RFC 7386 appendix A, a selection.
const mergeCases: { target: Json; patch: Json; want: Json }[] = [
  { target: { a: 'b' }, patch: { a: 'c' }, want: { a: 'c' } },
  { target: { a: 'b' }, patch: { b: 'c' }, want: { a: 'b', b: 'c' } },
  { target: { a: 'b' }, patch: { a: null }, want: {} },
  { target: { a: ['b'] }, patch: { a: 'c' }, want: { a: 'c' } },
  { target: { a: { b: 'c' } }, patch: { a: { b: 'd', c: null } }, want: { a: { b: 'd' } } },
  { target: { a: [{ b: 'c' }] }, patch: { a: [1] }, want: { a: [1] } },
  { target: ['a', 'b'], patch: ['c', 'd'], want: ['c', 'd'] },
  { target: {}, patch: { a: { bb: { ccc: null } } }, want: { a: { bb: {} } } },
];
for (const [i, c] of mergeCases.entries()) {
  test(`JSON merge patch: RFC 7386 example ${i + 1}`, () => assert.deepEqual(mergePatch(c.target, c.patch), c.want));
}

test('JSON patch: operations apply; a bad body is a 400 and a failed operation a 422', () => {
  assert.deepEqual(at(jsonPatch(web, [{ op: 'replace', path: '/spec/ports/0/port', value: 81 }, { op: 'remove', path: '/spec/externalIPs' }]), 'spec.ports.0.port'), 81);
  assert.throws(() => jsonPatch(web, { op: 'replace' }), (e: unknown) => isStatusError(e) && e.status.code === 400);
  assert.throws(() => jsonPatch(web, [{ op: 'frobnicate', path: '/a' }]), (e: unknown) => isStatusError(e) && e.status.code === 400);
  assert.throws(() => jsonPatch(web, [{ op: 'test', path: '/spec/type', value: 'ClusterIP' }]), (e: unknown) => isStatusError(e) && e.status.code === 422);
  assert.throws(() => jsonPatch(web, [{ op: 'replace', path: '/spec/nope/x', value: 1 }]), (e: unknown) => isStatusError(e) && e.status.code === 422);
});

test('apply: creates from the configuration, else merges it into the live object', () => {
  assert.deepEqual(applyConfiguration(SERVICES, undefined, { metadata: { name: 'a' } }), { metadata: { name: 'a' } });
  assert.deepEqual(at(applyConfiguration(SERVICES, web, { spec: { ports: [{ port: 443, targetPort: 9443 }] } }), 'spec.ports.1.targetPort'), 9443);
});
