/**
 * The proxy on worker threads, over real sockets: connections spread over the workers by the
 * kernel, and one scheduler state across them (the log is checked operation by operation in
 * replicas.test.ts): rr's counts are one round robin's, lc counts every worker's connections,
 * endpoint changes reach every worker, and closing leaves no thread, socket or timer behind.
 */
import { type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import type { HostPort } from '../../src/proxy/address-map.js';
import { type RunningCluster, type StartClusterOptions, startCluster } from '../../src/proxy/cluster.js';
import type { Manifest } from '../helpers/cluster-builders.js';
import { assertHandlesBack, connect, eventually, handleCounts, httpGet, stateOf, udpClient, udpService, webService } from './helpers.js';

const THREE = ['10.180.0.1', '10.180.0.2', '10.180.0.3'];

async function withWorkers(manifests: Manifest[], options: StartClusterOptions, body: (cluster: RunningCluster, front: HostPort) => Promise<void>): Promise<void> {
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf(manifests), { ports: 'ephemeral', workers: 2, ...options });
  try {
    await body(cluster, cluster.map.lookup({ address: '172.30.0.41', port: 80 })!.loopback);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
}

/** The proxy's counters once the workers have reported. */
async function stats(cluster: RunningCluster): Promise<ReturnType<RunningCluster['stats']>['proxy']> {
  await cluster.proxy.refreshStats();
  return cluster.stats().proxy;
}

/** Wait until the workers report `n` open connections. */
async function untilActive(cluster: RunningCluster, n: number): Promise<boolean> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if ((await stats(cluster)).active === n) return true;
  }
  return false;
}

test('workers, rr: connections held open at once are one round robin over both workers', async (t: TestContext) => {
  t.plan(4);
  await withWorkers(webService({ endpoints: THREE }), {}, async (cluster, front) => {
    const held: Socket[] = [];
    // In waves, so that both workers' loops are woken while others are still busy accepting.
    for (let wave = 0; wave < 6; wave++) held.push(...await Promise.all(Array.from({ length: 10 }, () => connect(front))));
    t.assert.ok(await untilActive(cluster, 60), 'the workers hold all 60');
    const s = await stats(cluster);
    const perWorker = s.workers!.map((w) => w.accepted);
    t.assert.deepStrictEqual(s.endpoints.map((e) => e.active), [20, 20, 20], `rr over all connections, whichever worker took them (workers accepted ${perWorker})`);
    t.assert.strictEqual(perWorker.reduce((a, b) => a + b, 0), 60);
    const sequential: string[] = [];
    for (const h of held) h.destroy();
    t.assert.ok(await untilActive(cluster, 0));
    for (let i = 0; i < 6; i++) sequential.push((await httpGet(front)).endpoint);
    t.diagnostic(`then one at a time: ${sequential.join(' ')}; workers accepted ${(await stats(cluster)).workers!.map((w) => w.accepted)}`);
  });
});

/** A keep-alive HTTP connection that has been answered once: the socket and the endpoint that answered. */
async function heldRequest(front: HostPort): Promise<{ socket: Socket; endpoint: string }> {
  const socket = await connect(front);
  const endpoint = await new Promise<string>((resolve, reject) => {
    let seen = '';
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      const m = /x-kpsim-endpoint: (\S+)/i.exec(seen);
      if (m && seen.includes('\r\n\r\n')) resolve(m[1]!);
    });
    socket.once('error', reject);
    socket.write('GET / HTTP/1.1\r\nHost: kpsim\r\n\r\n');
  });
  return { socket, endpoint };
}

test('workers, lc: every worker\'s open connections count; a freed endpoint takes the next ones', async (t: TestContext) => {
  t.plan(5);
  await withWorkers(webService({ endpoints: THREE }), { scheduler: 'lc' }, async (cluster, front) => {
    const held: { socket: Socket; endpoint: string }[] = [];
    for (let i = 0; i < 9; i++) held.push(await heldRequest(front));
    t.assert.ok(await untilActive(cluster, 9), 'all nine counted');
    const s = await stats(cluster);
    t.assert.deepStrictEqual(s.endpoints.map((e) => e.active), [3, 3, 3], `lc levelled them (workers accepted ${s.workers!.map((w) => w.accepted)})`);
    // Free one endpoint: the next three connections, whichever worker takes them, all go to it.
    const freed = held[0]!.endpoint;
    for (const h of held.filter((x) => x.endpoint === freed)) h.socket.destroy();
    t.assert.ok(await untilActive(cluster, 6));
    const next = [];
    for (let i = 0; i < 3; i++) next.push(await heldRequest(front));
    t.assert.deepStrictEqual(next.map((n) => n.endpoint), [freed, freed, freed], `workers accepted ${(await stats(cluster)).workers!.map((w) => w.accepted)}`);
    t.assert.deepStrictEqual((await stats(cluster)).endpoints.map((e) => e.active), [3, 3, 3]);
    for (const h of [...held, ...next]) h.socket.destroy();
  });
});

test('workers: an endpoint removed is avoided by every worker; open connections to it finish', async (t: TestContext) => {
  t.plan(3);
  await withWorkers(webService({ endpoints: THREE }), {}, async (cluster, front) => {
    const removed = '10.180.0.2:8080';
    t.assert.strictEqual(cluster.proxy.removeEndpoint(removed), 1);
    const served: string[] = [];
    const clients = await Promise.all(Array.from({ length: 12 }, () => httpGet(front)));
    for (const c of clients) served.push(c.endpoint);
    t.assert.ok(served.every((e) => e !== removed), `no worker sent it a connection: ${served}`);
    const s = await stats(cluster);
    t.assert.deepStrictEqual([s.endpoints.find((e) => e.endpoint === removed)?.connections, s.endpoints.find((e) => e.endpoint === removed)?.draining], [0, true]);
  });
});

test('workers: UDP stays on the main thread and is served there', async (t: TestContext) => {
  t.plan(2);
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf([...webService({ endpoints: THREE }), ...udpService({ endpoints: THREE })]), { ports: 'ephemeral', workers: 2 });
  try {
    const front = cluster.map.lookup({ address: '172.30.0.10', port: 53, protocol: 'UDP' })!.loopback;
    const client = await udpClient(front);
    const answer = await client.ask('hello');
    await client.close();
    t.assert.ok(answer.identity?.endpoint.endsWith(':5353'), JSON.stringify(answer));
    t.assert.ok(await eventually(() => cluster.stats().proxy.listeners.some((l) => l.protocol === 'UDP' && l.datagramsIn === 1)));
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
});
