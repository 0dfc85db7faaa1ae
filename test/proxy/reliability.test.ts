/**
 * The proxy under trouble: a backend that dies mid-request, one that refuses connections, one
 * that never completes a handshake, an endpoint removed under load, and 5000 connections open
 * at once. The proxy stays up, counts each failure against its endpoint, loses no completed
 * request, and leaves no socket, server or timer behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { type TestContext, test } from 'node:test';
import type { HostPort } from '../../src/proxy/address-map.js';
import { startBackends } from '../../src/proxy/backends.js';
import { startCluster, type RunningCluster } from '../../src/proxy/cluster.js';
import { startProxy } from '../../src/proxy/proxy.js';
import { assertHandlesBack, eventually, handleCounts, httpGet, stateOf, stuckServer, webService } from './helpers.js';

function clusterIP(cluster: { map: RunningCluster['map'] }): HostPort {
  return cluster.map.lookup({ kind: 'ClusterIP', address: '172.30.0.41', port: 80 })!.loopback;
}

test('a backend killed mid-request: the client sees the connection reset, the error is counted, the proxy goes on', async (t: TestContext) => {
  t.plan(6);
  const baseline = handleCounts();
  // The backends' answer delay runs on a mocked clock, moved by hand: the first request is surely
  // still in flight when the test kills its backend, however slow the machine.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const cluster = await startCluster(stateOf(webService()), { ports: 'ephemeral', delayMs: 300 });
  try {
    const front = clusterIP(cluster);
    const inFlight = httpGet(front).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code ?? err.message);
    t.assert.ok(await eventually(() => cluster.backends.stats().some((b) => b.requests === 1)), 'the request reached a backend');
    const victim = cluster.backends.stats().find((b) => b.requests === 1)!.endpoint;
    await cluster.backends.kill(victim);
    t.assert.strictEqual(await inFlight, 'ECONNRESET', 'the reset reaches the client');
    await eventually(() => cluster.proxy.stats().active === 0);
    const victimStats = cluster.proxy.stats().endpoints.find((e) => e.endpoint === victim)!;
    t.assert.strictEqual(victimStats.errors.reset, 1, JSON.stringify(victimStats));
    // The dead pod no longer listens: new connections meet a refusal and are retried elsewhere.
    // Each answer waits for the mocked clock: moved on once a backend has the request.
    const handled = (): number => cluster.backends.stats().reduce((n, b) => n + b.requests, 0);
    const answered = async (): Promise<Awaited<ReturnType<typeof httpGet>>> => {
      const before = handled();
      const answer = httpGet(front);
      assert.ok(await eventually(() => handled() === before + 1), 'the request reached a backend');
      t.mock.timers.tick(300);
      return answer;
    };
    const after = [await answered(), await answered(), await answered()];
    t.assert.deepStrictEqual(after.map((a) => a.status), [200, 200, 200]);
    t.assert.ok(after.every((a) => a.endpoint !== victim), 'none was served by the dead pod');
    t.assert.ok(cluster.proxy.stats().endpoints.find((e) => e.endpoint === victim)!.errors.refused >= 1, 'its refusals are counted');
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
});

test('a backend refusing connections: each dial to it is retried on another endpoint and succeeds', async (t: TestContext) => {
  t.plan(5);
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf(webService({ endpoints: ['10.180.0.1', '10.180.0.2', '10.180.0.3'] })), { ports: 'ephemeral' });
  try {
    await cluster.backends.refuse('10.180.0.2:8080');
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await httpGet(clusterIP(cluster)));
    t.assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
    t.assert.ok(answers.every((a) => a.endpoint !== '10.180.0.2:8080'));
    const stats = cluster.proxy.stats();
    const refused = stats.endpoints.find((e) => e.endpoint === '10.180.0.2:8080')!;
    // rr order is C, B, A (the last added is first); each retry moves the cursor on to A, so
    // B comes up every other connection.
    t.assert.strictEqual(refused.errors.refused, 3, 'rr reached it on every other connection');
    t.assert.strictEqual(refused.connections, 0);
    t.assert.strictEqual(stats.listeners.find((l) => l.kind === 'ClusterIP')!.retries, 3);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
});

test('a backend that never completes the handshake: the dial times out and is retried elsewhere', async (t: TestContext) => {
  t.plan(4);
  const baseline = handleCounts();
  const state = stateOf(webService());
  const stuck = await stuckServer('127.3.0.1');
  const backends = await startBackends(state, { ports: 'ephemeral' });
  const proxy = await startProxy(state, {
    ports: 'ephemeral',
    dialTimeoutsMs: [200, 400, 800],
    backendAddress: (endpoint) => (endpoint === '10.180.0.1:8080' ? stuck.address : backends.address(endpoint)),
  });
  try {
    const front = proxy.map.lookup({ address: '172.30.0.41', port: 80 })!.loopback;
    const answers = [await httpGet(front), await httpGet(front)];
    t.assert.deepStrictEqual(answers.map((a) => [a.status, a.endpoint]), [[200, '10.180.0.2:8080'], [200, '10.180.0.2:8080']]);
    const stats = proxy.stats();
    t.assert.strictEqual(stats.endpoints.find((e) => e.endpoint === '10.180.0.1:8080')!.errors.timeout, 1, 'rr tried the stuck one once');
    t.assert.strictEqual(stats.listeners.find((l) => l.kind === 'ClusterIP')!.retries, 1);
    t.assert.strictEqual(stats.listeners.find((l) => l.kind === 'ClusterIP')!.failed, 0);
  } finally {
    await proxy.close();
    await backends.close();
    await stuck.close();
  }
  await assertHandlesBack(baseline);
});

test('every dial failing: the client gets a reset once the attempts run out', async (t: TestContext) => {
  t.plan(3);
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf(webService()), { ports: 'ephemeral', dialTimeoutsMs: [100, 100, 100] });
  try {
    await cluster.backends.refuse('10.180.0.1:8080');
    await cluster.backends.refuse('10.180.0.2:8080');
    const outcome = await httpGet(clusterIP(cluster)).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code);
    t.assert.strictEqual(outcome, 'ECONNRESET');
    const stats = cluster.proxy.stats();
    t.assert.deepStrictEqual(stats.endpoints.map((e) => e.errors.refused).sort(), [1, 2], 'three attempts, alternating endpoints');
    t.assert.strictEqual(stats.listeners.find((l) => l.kind === 'ClusterIP')!.failed, 1);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
});

test('an endpoint removed under load: no request lost, new connections avoid it, open ones finish', async (t: TestContext) => {
  t.plan(7);
  const baseline = handleCounts();
  const manifests = webService({ endpoints: ['10.180.0.1', '10.180.0.2', '10.180.0.3'] });
  const cluster = await startCluster(stateOf(manifests), { ports: 'ephemeral', delayMs: 5 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 12 });
  try {
    const front = clusterIP(cluster);
    const removed = '10.180.0.2:8080';
    let stop = false;
    let issued = 0;
    let ok = 0;
    const failures: string[] = [];
    const servedByRemovedAfter: number[] = [];
    let removedAt = -1;
    const worker = async (): Promise<void> => {
      while (!stop) {
        issued++;
        try {
          const a = await keepAliveGet(front, agent);
          if (a.status === 200) ok++;
          else failures.push(`status ${a.status}`);
          if (removedAt >= 0 && a.endpoint === removed) servedByRemovedAfter.push(issued);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 24 }, worker);
    // Under way: the agent has opened all its keep-alive connections (rr spreads them over the
    // three endpoints), so from here on it only reuses them.
    const opened = (): number => cluster.proxy.stats().endpoints.reduce((n, e) => n + e.connections, 0);
    t.assert.ok(await eventually(() => opened() >= 12 && cluster.proxy.stats().endpoints.find((e) => e.endpoint === removed)!.active > 0), `the load is on every endpoint (${opened()} connections)`);
    const connectionsBefore = cluster.proxy.stats().endpoints.find((e) => e.endpoint === removed)!.connections;
    removedAt = issued;
    const without = stateOf(webService({ endpoints: ['10.180.0.1', '10.180.0.3'] }));
    const change = await cluster.updateState(without);
    t.assert.ok(change.removed.includes(`ClusterIP 172.30.0.41:80/TCP: ${removed}`), JSON.stringify(change));
    // New connections, on top of the keep-alive load.
    const fresh = [];
    for (let i = 0; i < 6; i++) fresh.push(await httpGet(front));
    // Keep the load going until the removed endpoint's open connections have served requests
    // issued after the removal (and a good many requests in all), however long that takes here.
    const servedAfter = await eventually(() => servedByRemovedAfter.length > 0 && issued > removedAt + 100);
    stop = true;
    await Promise.all(workers);
    const stats = cluster.proxy.stats().endpoints.find((e) => e.endpoint === removed)!;
    t.assert.deepStrictEqual(failures, [], 'no request failed');
    t.assert.strictEqual(ok, issued, 'every request issued was answered');
    t.assert.ok(fresh.every((a) => a.endpoint !== removed), `new connections avoid it: ${fresh.map((a) => a.endpoint)}`);
    t.assert.strictEqual(stats.connections, connectionsBefore, 'no new connection reached it after the removal');
    t.assert.ok(stats.draining && servedAfter, `its open keep-alive connections went on being served (${servedByRemovedAfter.length} requests)`);
  } finally {
    agent.destroy();
    await cluster.close();
  }
  await assertHandlesBack(baseline);
});

function keepAliveGet(target: HostPort, agent: http.Agent): Promise<{ status: number; endpoint: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: target.address, port: target.port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, endpoint: String(res.headers['x-kpsim-endpoint'] ?? '') }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * The clients of the 5000-connection test, in a child process: a process has 20000 file
 * descriptors here, and the proxy (two per connection) and the backends (one) need 15000.
 * It opens N connections in batches, sends one request on each, and once every answer is in
 * prints a JSON line and holds all connections open until its stdin closes.
 */
const MANY_CLIENTS = `
import net from 'node:net';
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const sockets = [];
let answered = 0, errors = 0;
const request = 'GET / HTTP/1.1\\r\\nHost: kpsim\\r\\n\\r\\n';
function open() {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    sockets.push(s);
    let seen = '';
    s.on('error', () => { errors++; resolve(); });
    s.once('connect', () => s.write(request));
    s.on('data', (d) => {
      seen += d.toString('latin1');
      if (seen.startsWith('HTTP/1.1 200') && seen.includes('"status":200}')) { answered++; seen = ''; resolve(); }
    });
  });
}
for (let i = 0; i < total; i += 500) {
  const batch = [];
  for (let j = i; j < Math.min(total, i + 500); j++) batch.push(open());
  await Promise.all(batch);
}
process.stdout.write(JSON.stringify({ answered, errors, open: sockets.filter((s) => !s.destroyed).length }) + '\\n');
process.stdin.on('data', () => {});
process.stdin.on('end', () => { for (const s of sockets) s.destroy(); });
`;

test('5000 concurrent connections: all answered and held open at once, then all released', async (t: TestContext) => {
  t.plan(5);
  const total = 5000;
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf(webService({ endpoints: ['10.180.0.1', '10.180.0.2', '10.180.0.3'] })), { ports: 'ephemeral' });
  try {
    const front = clusterIP(cluster);
    const child = spawn(process.execPath, ['--input-type=module', '-e', MANY_CLIENTS, front.address, String(front.port), String(total)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child.once('exit', (code) => reject(new Error(`client process exited with ${code} before reporting`)));
    });
    const report = JSON.parse(line) as { answered: number; errors: number; open: number };
    t.assert.deepStrictEqual(report, { answered: total, errors: 0, open: total });
    const stats = cluster.proxy.stats();
    t.assert.strictEqual(stats.active, total, 'the proxy holds every connection at once');
    t.assert.deepStrictEqual(stats.endpoints.map((e) => e.active).sort((a, b) => b - a), [1667, 1667, 1666], 'rr spread them evenly');
    child.stdin.end();
    await exited;
    t.assert.ok(await eventually(() => cluster.proxy.stats().active === 0, 10_000), 'every connection released');
    t.assert.strictEqual(cluster.proxy.stats().listeners.find((l) => l.kind === 'ClusterIP')!.failed, 0);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline, 10_000);
});
