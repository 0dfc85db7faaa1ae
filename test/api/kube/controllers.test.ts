/**
 * The controllers inside kpsim serve, driven by plain HTTP requests to the Kubernetes API in
 * this process: a Deployment and its Service become pods that are created, scheduled and
 * started, then EndpointSlices, then kube-proxy's rules (GET /v1/trace answers from them the
 * moment the write is answered); scaling keeps the slice's name; a watch sees every step; the
 * garbage collector follows deletions; a pass that has nothing to change writes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONTROLLERS_ACTOR } from '../../../src/api/kube/controllers.js';
import { DEPLOYMENTS, SERVICES } from '../../../src/api/kube/resources.js';
import { type StartedApi, startKubeApi, watchLines } from '../../helpers/kube-api.js';

interface Obj {
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; ownerReferences?: { kind: string; name: string; uid: string }[] };
  spec?: Record<string, unknown> & { nodeName?: string };
  status?: Record<string, unknown> & { podIP?: string; phase?: string; conditions?: { type: string; status: string }[] };
}

interface Slice extends Obj {
  endpoints?: { addresses: string[]; conditions: { ready?: boolean; serving?: boolean; terminating?: boolean }; targetRef?: { name: string }; hostname?: string; nodeName?: string }[];
  ports?: { port: number }[];
}

async function call(api: StartedApi, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api.url}${path}`, { method, headers: body !== undefined ? { 'content-type': contentType } : {}, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function list<T extends Obj>(api: StartedApi, path: string): Promise<T[]> {
  const got = await call(api, 'GET', path);
  assert.equal(got.status, 200, JSON.stringify(got.body));
  return got.body['items'] as T[];
}

async function trace(api: StartedApi, dst: string): Promise<{ verdict: string; endpoints: string[] }> {
  return (await call(api, 'POST', '/v1/trace', { src: '10.244.0.200', dst, dport: 80 })).body as { verdict: string; endpoints: string[] };
}

interface WorkloadManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown> & { template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> } };
}

function deployment(name: string, replicas: number, extra: Record<string, unknown> = {}): WorkloadManifest {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1', ports: [{ containerPort: 8080 }] }], ...extra } },
    },
  };
}

function service(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }], ...extra } };
}

const sliceOf = (name: string): string => `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${name}`;

function endpointsOf(slices: readonly Slice[]): string[] {
  return slices.flatMap((s) => (s.endpoints ?? []).filter((e) => e.conditions.ready === true).map((e) => `${e.addresses[0]}:${s.ports?.[0]?.port ?? ''}`)).sort();
}

/** The events of a watch as they arrive (the objects typed as these tests read them). */
function watch(api: StartedApi, path: string): { events: { type: string; object: Obj }[]; close: () => void } {
  const stream = watchLines(api, path);
  return { events: stream.events as unknown as { type: string; object: Obj }[], close: stream.abort };
}

/** Waits (bounded) until `ready` holds: watch lines arrive on their own socket. */
async function until(what: string, ready: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a Deployment and its Service written through the API', () => {
  let api: StartedApi;
  let clusterIP: string;
  let pods: { events: { type: string; object: Obj }[]; close: () => void };
  let slices: { events: { type: string; object: Obj }[]; close: () => void };
  before(async () => {
    // --allocate with no objects: three nodes, as kpsim lays out a cluster.
    api = await startKubeApi({ seedOptions: { allocate: true }, controllers: true });
    pods = watch(api, `/api/v1/namespaces/default/pods?watch=1&resourceVersion=${api.store.resourceVersion}`);
    slices = watch(api, `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?watch=1&resourceVersion=${api.store.resourceVersion}`);
  });
  after(async () => {
    pods.close();
    slices.close();
    await api.close();
  });

  test('3 replicas: pods created, scheduled, running; one slice with 3 ready endpoints; a DNAT to the 3', async () => {
    assert.equal((await call(api, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment('web', 3))).status, 201);
    const created = await call(api, 'POST', '/api/v1/namespaces/default/services', service('web'));
    assert.equal(created.status, 201, JSON.stringify(created.body));
    clusterIP = (created.body['spec'] as { clusterIP: string }).clusterIP;
    // No waiting: the controllers ran before the write was answered.
    const running = await list(api, '/api/v1/namespaces/default/pods');
    assert.equal(running.length, 3, JSON.stringify(running.map((p) => p.metadata.name)));
    for (const pod of running) {
      assert.match(pod.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/, 'named as the ReplicaSet controller names them');
      assert.equal(pod.status?.phase, 'Running');
      assert.ok(pod.spec?.nodeName, `${pod.metadata.name} is scheduled`);
      assert.equal(pod.metadata.ownerReferences?.[0]?.kind, 'ReplicaSet');
    }
    assert.equal(new Set(running.map((p) => p.spec?.nodeName)).size, 3, 'spread over the three nodes');
    const got = await list<Slice>(api, sliceOf('web'));
    assert.equal(got.length, 1);
    const addresses = running.map((p) => `${p.status!.podIP}:8080`).sort();
    assert.deepEqual(endpointsOf(got), addresses);
    const traced = await trace(api, clusterIP);
    assert.equal(traced.verdict, 'DNAT');
    assert.deepEqual([...traced.endpoints].sort(), addresses);
    const deploy = (await call(api, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')).body as unknown as Obj;
    assert.deepEqual([deploy.status?.['replicas'], deploy.status?.['readyReplicas'], deploy.status?.['updatedReplicas']], [3, 3, 3], JSON.stringify(deploy.status));
  });

  test('a watch sees each pod created (Pending), bound to its node, then Running; the slice added', async () => {
    await until('3 running pods on the watch', () => pods.events.filter((e) => e.object.status?.phase === 'Running').length >= 3);
    const byPod = new Map<string, string[]>();
    for (const e of pods.events) {
      const step = e.type === 'ADDED' ? `ADDED ${e.object.status?.phase ?? ''}${e.object.spec?.nodeName ? ' bound' : ''}` : `${e.type} ${e.object.status?.phase ?? ''}${e.object.spec?.nodeName ? ' bound' : ''}${e.object.status?.podIP ? ' ip' : ''}`;
      byPod.set(e.object.metadata.name, [...(byPod.get(e.object.metadata.name) ?? []), step]);
    }
    assert.equal(byPod.size, 3);
    for (const [name, steps] of byPod) assert.deepEqual(steps, ['ADDED Pending', 'MODIFIED Pending bound', 'MODIFIED Running bound ip'], name);
    await until('the slice on the watch', () => slices.events.length >= 1);
    assert.equal(slices.events[0]!.type, 'ADDED');
    assert.equal((slices.events[0]!.object as Slice).endpoints?.length, 3);
  });

  test('scale to 5 then 2: the same slice follows, and the rules with it at once', async () => {
    const [before] = await list<Slice>(api, sliceOf('web'));
    for (const replicas of [5, 2]) {
      const scaled = await call(api, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', { spec: { replicas } }, 'application/merge-patch+json');
      assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
      assert.equal((scaled.body['spec'] as { replicas: number }).replicas, replicas);
      const running = (await list(api, '/api/v1/namespaces/default/pods')).filter((p) => p.status?.phase === 'Running');
      assert.equal(running.length, replicas);
      const after = await list<Slice>(api, sliceOf('web'));
      assert.deepEqual(after.map((s) => s.metadata.name), [before!.metadata.name], 'the controller updates its slice in place: the name stays');
      assert.deepEqual(endpointsOf(after), running.map((p) => `${p.status!.podIP}:8080`).sort());
      assert.deepEqual([...(await trace(api, clusterIP)).endpoints].sort(), endpointsOf(after));
    }
    const modified = slices.events.filter((e) => e.type === 'MODIFIED' && e.object.metadata.name === before!.metadata.name);
    assert.ok(modified.length >= 2, 'the watch saw the slice change');
  });

  test('nothing to change, nothing written: a write that changes no endpoints wakes the controllers, which write nothing', async () => {
    await api.controllers!.idle();
    const { passes, writes } = api.controllers!.stats;
    const rv = api.store.resourceVersion;
    await api.store.patch(SERVICES, 'default', 'web', 'merge', { metadata: { annotations: { note: 'no endpoint changes' } } });
    await api.store.patch(DEPLOYMENTS, 'default', 'web', 'merge', { spec: { replicas: 2 } });
    await api.controllers!.idle();
    assert.ok(api.controllers!.stats.passes > passes, 'a pass ran');
    assert.equal(api.controllers!.stats.writes, writes, 'and wrote nothing');
    const events = api.store.eventsAfter(rv)!;
    assert.deepEqual(events.map((e) => `${e.type} ${e.resource.kind}`), ['MODIFIED Service'], 'the only event is the annotation (the same replicas is no change)');
    assert.equal(events.filter((e) => e.actor === CONTROLLERS_ACTOR).length, 0);
  });

  test('a pod deleted: its ReplicaSet makes another, with a new name and address', async () => {
    const before = await list(api, '/api/v1/namespaces/default/pods');
    const victim = before[0]!;
    assert.equal((await call(api, 'DELETE', `/api/v1/namespaces/default/pods/${victim.metadata.name}`)).status, 200);
    const after = await list(api, '/api/v1/namespaces/default/pods');
    assert.equal(after.length, before.length);
    const fresh = after.find((p) => !before.some((b) => b.metadata.name === p.metadata.name));
    assert.ok(fresh, JSON.stringify(after.map((p) => p.metadata.name)));
    assert.notEqual(fresh.metadata.name, victim.metadata.name);
    assert.notEqual(fresh.status?.podIP, victim.status?.podIP, 'host-local IPAM goes on from its last address');
    assert.ok(!before.some((b) => b.status?.podIP === fresh.status?.podIP));
    assert.ok(endpointsOf(await list<Slice>(api, sliceOf('web'))).includes(`${fresh.status!.podIP}:8080`));
  });

  test('a pod marked not ready through /status leaves the ready endpoints; the trace excludes it', async () => {
    const [pod] = await list(api, '/api/v1/namespaces/default/pods');
    const patched = await call(api, 'PATCH', `/api/v1/namespaces/default/pods/${pod!.metadata.name}/status`, { status: { conditions: [{ type: 'Ready', status: 'False' }] } }, 'application/strategic-merge-patch+json');
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const [slice] = await list<Slice>(api, sliceOf('web'));
    const endpoint = slice!.endpoints!.find((e) => e.targetRef?.name === pod!.metadata.name);
    assert.deepEqual(endpoint?.conditions, { ready: false, serving: false, terminating: false });
    const traced = await trace(api, clusterIP);
    assert.ok(!traced.endpoints.includes(`${pod!.status!.podIP}:8080`), JSON.stringify(traced));
    assert.equal(traced.endpoints.length, 1);
    const deploy = (await call(api, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')).body as unknown as Obj;
    assert.equal(deploy.status?.['readyReplicas'], 1, 'the Deployment counts one Ready pod');
  });

  test('the Deployment deleted: the garbage collector takes its ReplicaSet and pods; the Service keeps a placeholder slice and REJECTs', async () => {
    const [slice] = await list<Slice>(api, sliceOf('web'));
    assert.equal((await call(api, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/web', { propagationPolicy: 'Background' })).status, 200);
    assert.deepEqual(await list(api, '/apis/apps/v1/namespaces/default/replicasets'), []);
    assert.deepEqual(await list(api, '/api/v1/namespaces/default/pods'), []);
    const after = await list<Slice>(api, sliceOf('web'));
    assert.deepEqual(after.map((s) => [s.metadata.name, s.endpoints ?? [], s.ports ?? []]), [[slice!.metadata.name, [], []]], 'the slice kept as the placeholder');
    assert.equal((await trace(api, clusterIP)).verdict, 'REJECT');
  });
});

describe('workloads of every kind, on three nodes', () => {
  let api: StartedApi;
  before(async () => (api = await startKubeApi({ seedOptions: { allocate: true }, controllers: true })));
  after(() => api.close());

  test('a StatefulSet: pods name-0, -1, -2 in order, each endpoint with its hostname behind a headless Service', async () => {
    const headless = service('db', { clusterIP: 'None', ports: [{ port: 5432 }] });
    assert.equal((await call(api, 'POST', '/api/v1/namespaces/default/services', headless)).status, 201);
    const set: WorkloadManifest = { ...deployment('db', 3), kind: 'StatefulSet' };
    set.spec['serviceName'] = 'db';
    const created = await call(api, 'POST', '/apis/apps/v1/namespaces/default/statefulsets', set);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const pods = (await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Ddb')).map((p) => [p.metadata.name, p.spec?.['hostname'], p.spec?.['subdomain'], p.status?.phase]);
    assert.deepEqual(pods, [0, 1, 2].map((i) => [`db-${i}`, `db-${i}`, 'db', 'Running']));
    const slices = await list<Slice>(api, sliceOf('db'));
    assert.deepEqual(slices.flatMap((s) => s.endpoints ?? []).map((e) => e.hostname).sort(), ['db-0', 'db-1', 'db-2']);
    const scaled = await call(api, 'PATCH', '/apis/apps/v1/namespaces/default/statefulsets/db/scale', { spec: { replicas: 1 } }, 'application/merge-patch+json');
    assert.equal(scaled.status, 200);
    assert.deepEqual((await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Ddb')).map((p) => p.metadata.name), ['db-0'], 'scale-down takes the highest ordinals');
  });

  test('a DaemonSet: one pod on each of the 3 nodes; its status counts them', async () => {
    const ds: WorkloadManifest = { ...deployment('agent', 1), kind: 'DaemonSet' };
    delete ds.spec['replicas'];
    assert.equal((await call(api, 'POST', '/apis/apps/v1/namespaces/default/daemonsets', ds)).status, 201);
    const pods = await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Dagent');
    const nodes = (await list(api, '/api/v1/nodes')).map((n) => n.metadata.name).sort();
    assert.equal(nodes.length, 3);
    assert.deepEqual(pods.map((p) => p.spec?.nodeName).sort(), nodes);
    assert.ok(pods.every((p) => p.status?.phase === 'Running'));
    const status = ((await call(api, 'GET', '/apis/apps/v1/namespaces/default/daemonsets/agent')).body as unknown as Obj).status!;
    assert.deepEqual([status['desiredNumberScheduled'], status['currentNumberScheduled'], status['numberReady']], [3, 3, 3], JSON.stringify(status));
  });

  test('a Node deleted: the pod garbage collector takes its pods, and a ReplicaSet places its pod elsewhere', async () => {
    assert.equal((await call(api, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment('api', 3))).status, 201);
    const before = await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Dapi');
    const gone = before[0]!.spec!.nodeName!;
    assert.equal((await call(api, 'DELETE', `/api/v1/nodes/${gone}`)).status, 200);
    const after = await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Dapi');
    assert.equal(after.length, 3);
    assert.ok(after.every((p) => p.spec?.nodeName !== gone && p.status?.phase === 'Running'), JSON.stringify(after.map((p) => [p.metadata.name, p.spec?.nodeName])));
    const agents = await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Dagent');
    assert.equal(agents.length, 2, 'the DaemonSet runs on the two nodes left');
  });

  test('a bare Pod (kubectl run): defaulted, scheduled by the scheduler, started by the kubelet', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'solo', labels: { run: 'solo' } }, spec: { containers: [{ name: 'solo', image: 'busybox' }] } };
    const created = await call(api, 'POST', '/api/v1/namespaces/default/pods', pod);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual([(created.body['status'] as { phase: string }).phase, (created.body['spec'] as { restartPolicy: string }).restartPolicy], ['Pending', 'Always'], 'the API server answers the pod as created: Pending, defaulted');
    const got = (await call(api, 'GET', '/api/v1/namespaces/default/pods/solo')).body as unknown as Obj;
    assert.equal(got.status?.phase, 'Running');
    assert.ok(got.spec?.nodeName && got.status?.podIP, JSON.stringify(got));
    assert.deepEqual(got.status?.conditions?.map((c) => `${c.type}=${c.status}`), ['PodReadyToStartContainers=True', 'Initialized=True', 'Ready=True', 'ContainersReady=True', 'PodScheduled=True']);
  });

  test('a workload the API server refuses: 422 in its words, nothing stored', async () => {
    const bad = deployment('bad', 1);
    bad.spec.template.metadata.labels = { app: 'other' };
    const got = await call(api, 'POST', '/apis/apps/v1/namespaces/default/deployments', bad);
    assert.equal(got.status, 422);
    assert.equal(got.body['message'], 'Deployment "bad" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`');
    assert.equal((await call(api, 'GET', '/apis/apps/v1/namespaces/default/deployments/bad')).status, 404);
  });
});

describe('a write the API server refuses the controllers', () => {
  test('said once, not retried: a StatefulSet whose pod names would be too long', async () => {
    const said: string[] = [];
    const api = await startKubeApi({ seedOptions: { allocate: true }, controllers: { onWarning: (w) => said.push(w.message) } });
    try {
      const name = `db${'x'.repeat(250)}`; // 252 characters: a valid name, but name-0 is longer than 253
      const set: WorkloadManifest = { ...deployment(name, 2), kind: 'StatefulSet' };
      set.spec.template.metadata.labels = { app: name.slice(0, 63) };
      set.spec['selector'] = { matchLabels: { app: name.slice(0, 63) } };
      assert.equal((await call(api, 'POST', '/apis/apps/v1/namespaces/default/statefulsets', set)).status, 201);
      await api.controllers!.idle();
      const { passes, refused } = api.controllers!.stats;
      assert.ok(refused >= 1, 'the pod was refused');
      const refusals = said.filter((m) => m.includes('refused'));
      assert.equal(refusals.length, 2, `one for each of the two pods: ${said.join('\n')}`);
      assert.match(refusals[0]!, /Pod ".*-0" is invalid: metadata\.name/);
      await new Promise((r) => setTimeout(r, 100));
      await api.controllers!.idle();
      assert.deepEqual([api.controllers!.stats.passes, api.controllers!.stats.refused], [passes, refused], 'no pass after the refusal: nothing retries by itself');
    } finally {
      await api.close();
    }
  });
});

describe('a Deployment seeded with --allocate (rules/nginx-deployment)', () => {
  test('a new template right after the start: a new ReplicaSet, the old one at 0, new pods on new addresses, the slice kept', async () => {
    const api = await startKubeApi({ files: ['rules/nginx-deployment'], seedOptions: { allocate: true }, controllers: true });
    try {
      const before = await list(api, '/api/v1/namespaces/default/pods');
      const [slice] = await list<Slice>(api, sliceOf('nginx-service'));
      const [oldSet] = await list(api, '/apis/apps/v1/namespaces/default/replicasets');
      const patch = { spec: { template: { spec: { containers: [{ name: 'nginx', image: 'nginx:1.25' }] } } } };
      assert.equal((await call(api, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/nginx', patch, 'application/strategic-merge-patch+json')).status, 200);
      const sets = (await list(api, '/apis/apps/v1/namespaces/default/replicasets')).map((rs) => [rs.metadata.name, rs.spec?.['replicas']]);
      assert.equal(sets.length, 2, JSON.stringify(sets));
      assert.deepEqual(sets.find(([name]) => name === oldSet!.metadata.name), [oldSet!.metadata.name, 0]);
      const after = await list(api, '/api/v1/namespaces/default/pods');
      assert.equal(after.length, 3);
      assert.ok(after.every((p) => p.metadata.ownerReferences?.[0]?.name !== oldSet!.metadata.name && p.status?.phase === 'Running'));
      const oldIPs = new Set(before.map((p) => p.status?.podIP));
      assert.ok(after.every((p) => !oldIPs.has(p.status?.podIP)), `host-local goes on after the seeded pods' addresses: ${after.map((p) => p.status?.podIP).join(' ')}`);
      const slices = await list<Slice>(api, sliceOf('nginx-service'));
      assert.deepEqual(slices.map((s) => s.metadata.name), [slice!.metadata.name]);
      assert.deepEqual(endpointsOf(slices), after.map((p) => `${p.status!.podIP}:8080`).sort());
    } finally {
      await api.close();
    }
  });
});

describe('EndpointSlices given with the starting objects', () => {
  test('rules/example: the web Service keeps its given slices while its Deployment runs pods', async () => {
    const api = await startKubeApi({ files: ['rules/example'], controllers: true });
    try {
      const pods = await list(api, '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb');
      assert.equal(pods.length, 3, 'the Deployment runs its pods');
      const slices = await list<Slice>(api, sliceOf('web'));
      assert.deepEqual(slices.map((s) => s.metadata.name), ['web-x7k2p'], 'no slice of the controller beside the given one');
      const traced = (await call(api, 'POST', '/v1/trace', { src: '10.244.1.20', dst: '10.96.100.20', dport: 80 })).body as { endpoints: string[] };
      assert.deepEqual(traced.endpoints, ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']);
    } finally {
      await api.close();
    }
  });
});
