/**
 * The Kubernetes API over real HTTP, request by request: discovery in both forms, OpenAPI,
 * lists with selectors and pages, Status errors for every failure kind (400 malformed or
 * alias-bomb bodies, 401, 404, 405, 409, 410, 413, 415, 422, 504), write semantics the API
 * server has (allocation, kept ClusterIPs, status subresource, implicit namespaces, dry run),
 * and watches (replay from a resourceVersion, 410 as an ERROR event, bookmarks, selector
 * transitions).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AGGREGATED_CONTENT_TYPE } from '../../../src/api/kube/discovery.js';
import { SERVICES } from '../../../src/api/kube/resources.js';
import { aliasBomb } from '../../helpers/bad-inputs.js';
import { type StartedApi, startKubeApi, watchLines } from '../../helpers/kube-api.js';

interface Reply {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
  text: string;
  headers: Headers;
}

async function call(api: StartedApi, method: string, path: string, body?: string | object, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${api.url}${path}`, init);
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: left empty, the text is there
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: parsed, text, headers: res.headers };
}

const svcBody = (name: string, spec: Record<string, unknown>, namespace = 'default'): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec });

describe('discovery and OpenAPI', () => {
  let api: StartedApi;
  before(async () => (api = await startKubeApi({ files: ['rules/example'] })));
  after(() => api.close());

  test('aggregated discovery carries the exact content type and short names', async () => {
    const got = await call(api, 'GET', '/api', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' });
    assert.equal(got.contentType, AGGREGATED_CONTENT_TYPE);
    const items = got.body['items'] as { versions: { resources: { resource: string; shortNames?: string[] }[] }[] }[];
    const services = items[0]!.versions[0]!.resources.find((r) => r.resource === 'services');
    assert.deepEqual(services?.shortNames, ['svc']);
    const apis = await call(api, 'GET', '/apis', undefined, { accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' });
    assert.deepEqual((apis.body['items'] as { metadata: { name: string } }[]).map((i) => i.metadata.name), ['apps', 'discovery.k8s.io', 'networking.k8s.io']);
    const apps = (apis.body['items'] as { versions: { resources: { resource: string; shortNames?: string[]; subresources?: { subresource: string; responseKind: { group: string; kind: string } }[] }[] }[] }[])[0]!.versions[0]!.resources;
    assert.deepEqual(apps.map((r) => r.resource), ['daemonsets', 'deployments', 'replicasets', 'statefulsets']);
    const deployments = apps.find((r) => r.resource === 'deployments');
    assert.deepEqual(deployments?.shortNames, ['deploy']);
    assert.deepEqual(deployments?.subresources?.map((s) => `${s.subresource} ${s.responseKind.group}/${s.responseKind.kind}`), ['scale autoscaling/Scale', 'status apps/Deployment'], 'kubectl scale finds the scale subresource');
  });

  test('legacy discovery: versions, groups and resource lists', async () => {
    assert.deepEqual((await call(api, 'GET', '/api')).body['versions'], ['v1']);
    const groups = (await call(api, 'GET', '/apis')).body['groups'] as { name: string }[];
    assert.deepEqual(groups.map((g) => g.name), ['apps', 'discovery.k8s.io', 'networking.k8s.io']);
    const core = (await call(api, 'GET', '/api/v1')).body['resources'] as { name: string; namespaced: boolean; shortNames?: string[] }[];
    assert.deepEqual(core.map((r) => `${r.name}${r.namespaced ? '' : ' (cluster)'}${r.shortNames ? ` ${r.shortNames.join(',')}` : ''}`), [
      'namespaces (cluster) ns',
      'namespaces/status (cluster)',
      'pods po',
      'pods/status',
      'services svc',
      'services/status',
      'endpoints ep',
      'nodes (cluster) no',
      'nodes/status (cluster)',
    ]);
    const apps = (await call(api, 'GET', '/apis/apps/v1')).body['resources'] as { name: string; kind: string; group?: string }[];
    assert.deepEqual(apps.map((r) => `${r.name} ${r.group ? `${r.group}/` : ''}${r.kind}`), [
      'daemonsets DaemonSet',
      'daemonsets/status DaemonSet',
      'deployments Deployment',
      'deployments/scale autoscaling/Scale',
      'deployments/status Deployment',
      'replicasets ReplicaSet',
      'replicasets/scale autoscaling/Scale',
      'replicasets/status ReplicaSet',
      'statefulsets StatefulSet',
      'statefulsets/scale autoscaling/Scale',
      'statefulsets/status StatefulSet',
    ]);
    assert.equal(((await call(api, 'GET', '/apis/discovery.k8s.io/v1')).body['resources'] as { name: string }[])[0]!.name, 'endpointslices');
  });

  test('OpenAPI v3: a root, and PATCH operations with fieldValidation', async () => {
    const root = (await call(api, 'GET', '/openapi/v3')).body['paths'] as Record<string, { serverRelativeURL: string }>;
    const doc = await call(api, 'GET', root['api/v1']!.serverRelativeURL);
    const paths = doc.body['paths'] as Record<string, { patch: { parameters: { name: string }[]; 'x-kubernetes-group-version-kind': { kind: string } } }>;
    const item = paths['/api/v1/namespaces/{namespace}/services/{name}']!;
    assert.equal(item.patch['x-kubernetes-group-version-kind'].kind, 'Service');
    assert.ok(item.patch.parameters.some((p) => p.name === 'fieldValidation'));
    assert.equal((await call(api, 'GET', '/openapi/v2')).status, 404);
  });
});

describe('lists, errors and writes', () => {
  let api: StartedApi;
  before(async () => (api = await startKubeApi({ files: ['rules/example'], bodyLimitBytes: 64 * 1024 })));
  after(() => api.close());

  test('lists: selectors, a namespace, pages with continue tokens', async () => {
    const all = await call(api, 'GET', '/api/v1/services');
    const names = (all.body['items'] as { metadata: { namespace: string; name: string } }[]).map((i) => `${i.metadata.namespace}/${i.metadata.name}`);
    assert.deepEqual(names, [...names].sort(), 'key order');
    assert.equal(all.body['kind'], 'ServiceList');
    assert.match(String((all.body['metadata'] as { resourceVersion: string }).resourceVersion), /^\d+$/);
    const ns = await call(api, 'GET', '/api/v1/namespaces/kube-system/services');
    assert.deepEqual((ns.body['items'] as { metadata: { name: string } }[]).map((i) => i.metadata.name), ['kube-dns']);
    const byField = await call(api, 'GET', '/api/v1/services?fieldSelector=spec.type%3DNodePort');
    assert.deepEqual((byField.body['items'] as { metadata: { name: string } }[]).map((i) => i.metadata.name), ['web']);
    const slices = await call(api, 'GET', '/apis/discovery.k8s.io/v1/endpointslices?labelSelector=kubernetes.io%2Fservice-name%20in%20(web,shop)');
    assert.deepEqual((slices.body['items'] as { metadata: { name: string } }[]).map((i) => i.metadata.name), ['shop-q8w3e', 'web-x7k2p']);
    const pages: string[] = [];
    let cont = '';
    for (let i = 0; i < 10; i++) {
      const page = await call(api, 'GET', `/api/v1/services?limit=4${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      pages.push(...(page.body['items'] as { metadata: { namespace: string; name: string } }[]).map((x) => `${x.metadata.namespace}/${x.metadata.name}`));
      cont = String((page.body['metadata'] as { continue?: string }).continue ?? '');
      if (!cont) break;
    }
    assert.deepEqual(pages, names, 'pages of 4 give the whole list once');
  });

  const errorCases: { name: string; method: string; path: string; body?: string | object; headers?: Record<string, string>; code: number; reason: string; message?: RegExp }[] = [
    { name: 'an unknown path', method: 'GET', path: '/api/v1/configmaps', code: 404, reason: 'NotFound', message: /the server could not find the requested resource/ },
    { name: 'a missing object', method: 'GET', path: '/api/v1/namespaces/default/services/nope', code: 404, reason: 'NotFound', message: /^services "nope" not found$/ },
    { name: 'a missing slice names the group', method: 'GET', path: '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/nope', code: 404, reason: 'NotFound', message: /^endpointslices\.discovery\.k8s\.io "nope" not found$/ },
    { name: 'creating what exists', method: 'POST', path: '/api/v1/namespaces/default/services', body: svbodyJSON('web'), code: 409, reason: 'AlreadyExists', message: /^services "web" already exists$/ },
    { name: 'a stale resourceVersion', method: 'PUT', path: '/api/v1/namespaces/default/services/web', body: { ...svcBody('web', { clusterIP: '10.96.100.20', ports: [{ port: 80, protocol: 'TCP' }] }), metadata: { name: 'web', namespace: 'default', resourceVersion: '1' } }, code: 409, reason: 'Conflict', message: /the object has been modified/ },
    { name: 'malformed JSON', method: 'POST', path: '/api/v1/namespaces/default/services', body: '{"kind": ', code: 400, reason: 'BadRequest', message: /not valid JSON/ },
    { name: 'malformed YAML', method: 'POST', path: '/api/v1/namespaces/default/services', body: 'kind: Service\nmetadata: {name: x\n', headers: { 'content-type': 'application/yaml' }, code: 400, reason: 'BadRequest', message: /request body: line \d+ column \d+: not valid YAML/ },
    { name: 'a YAML alias bomb', method: 'POST', path: '/api/v1/namespaces/default/services', body: aliasBomb, headers: { 'content-type': 'application/yaml' }, code: 400, reason: 'BadRequest', message: /request body: not accepted: its aliases expand to more than 100 copies/ },
    { name: 'a body over the limit', method: 'POST', path: '/api/v1/namespaces/default/services', body: `{"pad":"${'x'.repeat(70 * 1024)}"}`, code: 413, reason: 'RequestEntityTooLarge', message: /limit is 65536/ },
    { name: 'a patch of an unknown type', method: 'PATCH', path: '/api/v1/namespaces/default/services/web', body: '{}', headers: { 'content-type': 'text/plain' }, code: 415, reason: 'UnsupportedMediaType' },
    { name: 'a method the path does not take', method: 'POST', path: '/api/v1/namespaces/default/services/web', body: '{}', code: 405, reason: 'MethodNotAllowed' },
    { name: 'a bad label selector', method: 'GET', path: '/api/v1/services?labelSelector=a%20b%3Dc', code: 400, reason: 'BadRequest', message: /unable to parse requirement/ },
    { name: 'a resourceVersion from the future', method: 'GET', path: '/api/v1/services?resourceVersion=999999', code: 504, reason: 'Timeout', message: /Too large resource version/ },
    { name: 'an exact list at an old resourceVersion', method: 'GET', path: '/api/v1/services?resourceVersion=1&resourceVersionMatch=Exact', code: 410, reason: 'Expired' },
    { name: 'the body names another namespace', method: 'POST', path: '/api/v1/namespaces/kube-system/services', body: svbodyJSON('x'), code: 400, reason: 'BadRequest', message: /namespace of the provided object does not match/ },
    { name: 'deleting the default namespace', method: 'DELETE', path: '/api/v1/namespaces/default', code: 403, reason: 'Forbidden', message: /this namespace may not be deleted/ },
    { name: 'an apply without a field manager', method: 'PATCH', path: '/api/v1/namespaces/default/services/web', body: '{}', headers: { 'content-type': 'application/apply-patch+yaml' }, code: 400, reason: 'BadRequest', message: /fieldManager: Required value/ },
  ];

  function svbodyJSON(name: string): Record<string, unknown> {
    return svcBody(name, { clusterIP: '10.96.1.1', ports: [{ port: 80, protocol: 'TCP' }] });
  }

  for (const c of errorCases) {
    test(`Status ${c.code} ${c.reason}: ${c.name}`, async () => {
      const got = await call(api, c.method, c.path, c.body, c.headers);
      assert.equal(got.status, c.code, got.text);
      assert.equal(got.body['kind'], 'Status', got.text);
      assert.deepEqual([got.body['code'], got.body['reason'], got.body['status']], [c.code, c.reason, 'Failure'], got.text);
      if (c.message) assert.match(String(got.body['message']), c.message);
    });
  }

  test('422 Invalid: kpsim\'s words, one cause per field, nothing stored', async () => {
    const got = await call(api, 'POST', '/api/v1/namespaces/default/services', svcBody('bad', { clusterIP: '10.96.0.300', ports: [{ port: 70000, protocol: 'TCP' }] }));
    assert.equal(got.status, 422, got.text);
    assert.equal(got.body['message'], 'Service "bad" is invalid: [spec.clusterIP: "10.96.0.300" is not an IP address, spec.ports[0].port: 70000 is not a port]');
    assert.deepEqual((got.body['details'] as { kind: string; causes: unknown[] }).causes, [
      { reason: 'FieldValueInvalid', message: '"10.96.0.300" is not an IP address', field: 'spec.clusterIP' },
      { reason: 'FieldValueInvalid', message: '70000 is not a port', field: 'spec.ports[0].port' },
    ]);
    assert.equal((await call(api, 'GET', '/api/v1/namespaces/default/services/bad')).status, 404);
    const dup = await call(api, 'POST', '/api/v1/namespaces/default/services', svcBody('dup', { clusterIP: '10.96.100.20', ports: [{ port: 80 }] }));
    assert.equal(dup.status, 422, dup.text);
    assert.match(String(dup.body['message']), /spec.clusterIPs\[0\]: ClusterIP 10.96.100.20 is already used by Service default\/web/);
  });

  test('create allocates and defaults as the API server does; an update keeps the ClusterIP and may not change it', async () => {
    const created = await call(api, 'POST', '/api/v1/namespaces/team-b/services', svcBody('fresh', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] }, 'team-b'));
    assert.equal(created.status, 201, created.text);
    const spec = created.body['spec'] as { clusterIP: string; clusterIPs: string[]; ipFamilies: string[]; ports: { protocol: string; targetPort: number; nodePort: number }[]; healthCheckNodePort: number; sessionAffinity: string };
    assert.match(spec.clusterIP, /^10\./);
    assert.deepEqual([spec.clusterIPs, spec.ipFamilies, spec.ports[0]!.protocol, spec.ports[0]!.targetPort, spec.sessionAffinity], [[spec.clusterIP], ['IPv4'], 'TCP', 80, 'None']);
    assert.ok(spec.ports[0]!.nodePort >= 30000 && spec.healthCheckNodePort >= 30000, JSON.stringify(spec));
    const ns = await call(api, 'GET', '/api/v1/namespaces/team-b');
    assert.equal(ns.status, 200, 'the namespace was created with its first object');

    const put = await call(api, 'PUT', '/api/v1/namespaces/team-b/services/fresh', svcBody('fresh', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 81 }] }, 'team-b'));
    assert.equal(put.status, 200, put.text);
    const after = put.body['spec'] as typeof spec;
    assert.deepEqual([after.clusterIP, after.ports[0]!.nodePort, after.healthCheckNodePort, after.ports[0]!.targetPort], [spec.clusterIP, spec.ports[0]!.nodePort, spec.healthCheckNodePort, 81]);
    const moved = await call(api, 'PUT', '/api/v1/namespaces/team-b/services/fresh', svcBody('fresh', { clusterIP: '10.96.9.9', ports: [{ port: 80 }] }, 'team-b'));
    assert.equal(moved.status, 422, moved.text);
    assert.match(String(moved.body['message']), /spec.clusterIP: "10.96.9.9" may not change once set/);
  });

  test("a Service's status is set through /status only; dry runs store nothing", async () => {
    const ingress = { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } };
    const created = await call(api, 'POST', '/api/v1/namespaces/default/services', { ...svcBody('lb', { type: 'LoadBalancer', ports: [{ port: 80 }] }), status: ingress });
    assert.deepEqual(created.body['status'], { loadBalancer: {} }, 'status is dropped on create');
    const status = await call(api, 'PATCH', '/api/v1/namespaces/default/services/lb/status', { status: ingress }, { 'content-type': 'application/merge-patch+json' });
    assert.deepEqual(status.body['status'], ingress, status.text);
    const main = await call(api, 'PATCH', '/api/v1/namespaces/default/services/lb', { status: { loadBalancer: {} }, metadata: { labels: { x: 'y' } } }, { 'content-type': 'application/merge-patch+json' });
    assert.deepEqual(main.body['status'], ingress, 'the main resource keeps the status');
    const trace = await call(api, 'POST', '/v1/trace', { src: '203.0.113.9', dst: '198.51.100.7', dport: 80 });
    assert.notEqual(trace.body['verdict'], 'NONE', `the live cluster has the load-balancer IP: ${trace.text}`);

    const rv = api.store.resourceVersion;
    const dry = await call(api, 'POST', '/api/v1/namespaces/default/services?dryRun=All', svcBody('dry', { ports: [{ port: 80 }] }));
    assert.equal(dry.status, 201, dry.text);
    assert.equal((await call(api, 'GET', '/api/v1/namespaces/default/services/dry')).status, 404);
    assert.equal(api.store.resourceVersion, rv, 'no resourceVersion was used');
  });

  test('a namespace delete takes its objects with it', async () => {
    await call(api, 'POST', '/api/v1/namespaces/doomed/services', svcBody('a', { ports: [{ port: 80 }] }, 'doomed'));
    const deleted = await call(api, 'DELETE', '/api/v1/namespaces/doomed', { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' });
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(await call(api, 'GET', '/api/v1/namespaces/doomed/services').then((r) => r.body['items']), []);
  });

  test('a delete with a stale precondition is a 409 and deletes nothing', async () => {
    const got = await call(api, 'DELETE', '/api/v1/namespaces/default/services/web', { preconditions: { resourceVersion: '1' } });
    assert.equal(got.status, 409, got.text);
    assert.equal((await call(api, 'GET', '/api/v1/namespaces/default/services/web')).status, 200);
  });
});

describe('authentication', () => {
  let api: StartedApi;
  before(async () => (api = await startKubeApi({ files: ['rules/example'], token: 'sesame' })));
  after(() => api.close());

  const cases: { name: string; path: string; auth?: string; code: number }[] = [
    { name: 'no token', path: '/api/v1/services', code: 401 },
    { name: 'a wrong token', path: '/api/v1/services', auth: 'Bearer open', code: 401 },
    { name: 'the JSON API needs it too', path: '/v1/cluster', code: 401 },
    { name: 'the right token', path: '/api/v1/services', auth: 'Bearer sesame', code: 200 },
    { name: '/version is open, as the public-info-viewer role makes it', path: '/version', code: 200 },
  ];
  for (const c of cases) {
    test(`${c.code}: ${c.name}`, async () => {
      const got = await call(api, 'GET', c.path, undefined, c.auth ? { authorization: c.auth } : {});
      assert.equal(got.status, c.code, got.text);
      if (c.code === 401) assert.deepEqual([got.body['kind'], got.body['reason']], ['Status', 'Unauthorized']);
    });
  }
});

describe('watches', () => {
  let api: StartedApi;
  before(async () => (api = await startKubeApi({ files: ['rules/example'], historyLimit: 5, bookmarkIntervalMs: 200 })));
  after(() => api.close());

  test('from "0": an ADDED per object, then changes as they commit', async () => {
    const count = api.store.list(SERVICES).length;
    const watch = watchLines(api, '/api/v1/services?watch=1&resourceVersion=0', count + 1);
    await new Promise((r) => setTimeout(r, 200));
    await api.store.patch(SERVICES, 'default', 'web', 'merge', { metadata: { labels: { seen: 'yes' } } });
    const lines = await watch.lines;
    assert.deepEqual(lines.slice(0, count).map((l) => l.type), Array(count).fill('ADDED'));
    assert.equal(lines[count]!.type, 'MODIFIED');
    assert.equal((lines[count]!.object['metadata'] as { labels: Record<string, string> }).labels['seen'], 'yes');
  });

  test('from N: only what happened after N; a selector turns changes into ADDED and DELETED', async () => {
    const rv = api.store.resourceVersion;
    await api.store.patch(SERVICES, 'default', 'api', 'merge', { metadata: { labels: { watched: 'yes' } } });
    await api.store.patch(SERVICES, 'default', 'api', 'merge', { metadata: { labels: { watched: 'no' } } });
    const lines = await watchLines(api, `/api/v1/namespaces/default/services?watch=true&resourceVersion=${rv}&labelSelector=watched%3Dyes`, 2).lines;
    assert.deepEqual(lines.map((l) => `${l.type} ${(l.object['metadata'] as { name: string }).name}`), ['ADDED api', 'DELETED api']);
  });

  test('a compacted resourceVersion is an ERROR event with a 410 Expired Status', async () => {
    for (let i = 0; i < 12; i++) await api.store.patch(SERVICES, 'default', 'web', 'merge', { metadata: { annotations: { n: String(i) } } });
    const lines = await watchLines(api, '/api/v1/services?watch=1&resourceVersion=2', 1).lines;
    assert.equal(lines[0]!.type, 'ERROR');
    assert.deepEqual([lines[0]!.object['code'], lines[0]!.object['reason']], [410, 'Expired']);
    assert.match(String(lines[0]!.object['message']), /^too old resource version: 2 \(\d+\)$/);
  });

  test('bookmarks when allowed, the initial-events-end bookmark, and one at the timeout', async () => {
    const lines = await watchLines(api, '/api/v1/nodes?watch=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1', 100).lines;
    const types = lines.map((l) => l.type);
    assert.deepEqual(types.slice(0, 3), ['ADDED', 'ADDED', 'BOOKMARK'], types.join(' '));
    assert.deepEqual((lines[2]!.object['metadata'] as { annotations: Record<string, string> }).annotations, { 'k8s.io/initial-events-end': 'true' });
    assert.ok(types.slice(3).every((t) => t === 'BOOKMARK') && types.length >= 4, `periodic and final bookmarks: ${types.join(' ')}`);
    assert.deepEqual(Object.keys(lines[lines.length - 1]!.object['metadata'] as object), ['resourceVersion']);
  });
});
