/**
 * The proxy's behaviour over real sockets on loopback, with real fastify backends (raw TCP
 * servers where a test needs byte-level control): scheduling, session affinity, REJECT and
 * DROP, half-close, backpressure and the idle timeout. Every test ends with the open handles
 * back where they were.
 */
import assert from 'node:assert/strict';
import { type Server, type Socket, createServer } from 'node:net';
import { type TestContext, test } from 'node:test';
import type { HostPort, VirtualKind } from '../../src/proxy/address-map.js';
import { startCluster, type RunningCluster, type StartClusterOptions } from '../../src/proxy/cluster.js';
import { startProxy } from '../../src/proxy/proxy.js';
import { type Manifest, fixtureState } from '../helpers/cluster-builders.js';
import {
  assertHandlesBack, connect, connectAndWaitForEnd, eventually, handleCounts, httpGet, rawServer, readToEnd, sleep, stateOf, webService,
} from './helpers.js';

/** Start backends and proxy for the manifests on ephemeral ports, run `body`, close, check handles. */
async function withCluster(manifests: Manifest[], options: StartClusterOptions, body: (cluster: RunningCluster) => Promise<void>): Promise<void> {
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf(manifests), { ports: 'ephemeral', ...options });
  try {
    await body(cluster);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
}

function target(cluster: RunningCluster, kind: VirtualKind = 'ClusterIP', address = '172.30.0.41', port = 80): HostPort {
  const entry = cluster.map.lookup({ kind, address, port });
  assert.ok(entry, `no ${kind} ${address}:${port} in\n${cluster.map.render()}`);
  return entry.loopback;
}

test('rr sends consecutive connections round the endpoints in turn', async (t: TestContext) => {
  t.plan(4);
  await withCluster(webService({ endpoints: ['10.180.0.1', '10.180.0.2', '10.180.0.3'] }), {}, async (cluster) => {
    const pods: string[] = [];
    for (let i = 0; i < 6; i++) pods.push((await httpGet(target(cluster))).pod);
    t.assert.strictEqual(new Set(pods.slice(0, 3)).size, 3, `first three differ: ${pods}`);
    t.assert.deepStrictEqual(pods.slice(3), pods.slice(0, 3), `then the same cycle: ${pods}`);
    await eventually(() => cluster.proxy.stats().active === 0);
    const stats = cluster.proxy.stats();
    t.assert.deepStrictEqual(stats.endpoints.map((e) => e.connections), [2, 2, 2]);
    t.assert.strictEqual(stats.listeners.find((l) => l.kind === 'ClusterIP')?.forwarded, 6);
  });
});

test('lc sends new connections to the idle endpoint while the other holds one open', async (t: TestContext) => {
  t.plan(3);
  await withCluster(webService(), { scheduler: 'lc' }, async (cluster) => {
    const held = await connect(target(cluster));
    t.assert.ok(await eventually(() => cluster.proxy.stats().endpoints.some((e) => e.active === 1)), 'the held connection reached an endpoint');
    const busy = cluster.proxy.stats().endpoints.find((e) => e.active === 1)!.endpoint;
    const served: string[] = [];
    for (let i = 0; i < 4; i++) {
      served.push((await httpGet(target(cluster))).endpoint);
      // lc reads live counts: let the proxy see each finished connection close before the next.
      await eventually(() => cluster.proxy.stats().active === 1);
    }
    t.assert.ok(served.every((ep) => ep !== busy), `all four avoided the busy ${busy}: ${served}`);
    held.destroy();
    await eventually(() => cluster.proxy.stats().active === 0);
    const after = (await httpGet(target(cluster))).endpoint;
    t.assert.strictEqual(after, busy, 'once idle again, the first dest in list order wins the tie');
  });
});

test('rr does not look at load: with one endpoint busy it still alternates', async (t: TestContext) => {
  t.plan(1);
  await withCluster(webService(), { scheduler: 'rr' }, async (cluster) => {
    const held = await connect(target(cluster));
    const served: string[] = [];
    for (let i = 0; i < 4; i++) served.push((await httpGet(target(cluster))).endpoint);
    t.assert.strictEqual(new Set(served).size, 2, `both endpoints served: ${served}`);
    held.destroy();
  });
});

test('session affinity: the same client IP sticks to its endpoint until the timeout', async (t: TestContext) => {
  t.plan(6);
  let seconds = 0;
  const manifests = webService({ mutate: (s) => { s.spec.sessionAffinity = 'ClientIP'; s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10 } }; } });
  await withCluster(manifests, { now: () => seconds }, async (cluster) => {
    const from = (client: string): Promise<string> => httpGet(target(cluster), { localAddress: client }).then((a) => a.pod);
    const idle = (): Promise<boolean> => eventually(() => cluster.proxy.stats().active === 0);
    const a1 = await from('127.0.0.2');
    const b1 = await from('127.0.0.3');
    t.assert.notStrictEqual(a1, b1, 'rr gives the second client the other endpoint');
    t.assert.deepStrictEqual([await from('127.0.0.2'), await from('127.0.0.2'), await from('127.0.0.3')], [a1, a1, b1], 'each client sticks');
    await idle();
    seconds = 9;
    t.assert.strictEqual(await from('127.0.0.2'), a1, 'still inside the timeout (each connection re-arms it)');
    const c1 = await from('127.0.0.4');
    t.assert.strictEqual(c1, a1, 'a new client takes the next endpoint in rr order');
    await idle();
    seconds = 20;
    t.assert.strictEqual(await from('127.0.0.2'), b1, 'after 10 s without a connection the affinity is gone: rr moves on');
    t.assert.strictEqual(await from('127.0.0.2'), b1, 'and the client sticks to its new endpoint');
  });
});

test('a service with no endpoints answers with a reset (REJECT)', async (t: TestContext) => {
  t.plan(3);
  await withCluster(webService({ endpoints: [] }), {}, async (cluster) => {
    const end = await connectAndWaitForEnd(target(cluster));
    t.assert.strictEqual(end.how, 'reset');
    const listener = cluster.proxy.stats().listeners.find((l) => l.kind === 'ClusterIP')!;
    t.assert.strictEqual(listener.rejected, 1);
    t.assert.strictEqual(listener.verdict, 'reject');
  });
});

test('externalTrafficPolicy Local without a local endpoint: the NodePort closes at once (DROP), the ClusterIP still forwards', async (t: TestContext) => {
  t.plan(5);
  const manifests = webService({
    remote: ['10.180.0.1', '10.180.0.2'],
    mutate: (s) => { s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.ports![0]!.nodePort = 30080; },
  });
  await withCluster(manifests, {}, async (cluster) => {
    const end = await connectAndWaitForEnd(target(cluster, 'NodePort', '192.168.0.2', 30080));
    t.assert.strictEqual(end.how, 'end', 'closed, not reset');
    t.assert.strictEqual(end.data.length, 0);
    const nodePort = cluster.proxy.stats().listeners.find((l) => l.kind === 'NodePort' && l.virtual.address === '192.168.0.2')!;
    t.assert.deepStrictEqual([nodePort.verdict, nodePort.dropped], ['drop', 1]);
    t.assert.strictEqual((await httpGet(target(cluster))).status, 200, 'ClusterIP traffic uses the cluster endpoints');
    t.assert.strictEqual(cluster.proxy.reasonOf(nodePort.key), 'ns1/web:p80 has no local endpoints (externalTrafficPolicy Local)');
  });
});

test('externalTrafficPolicy Local with a local endpoint: the NodePort reaches only that one', async (t: TestContext) => {
  t.plan(1);
  const manifests = webService({
    remote: ['10.180.0.2'],
    mutate: (s) => { s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.ports![0]!.nodePort = 30080; },
  });
  await withCluster(manifests, {}, async (cluster) => {
    const served = new Set<string>();
    for (let i = 0; i < 4; i++) served.add((await httpGet(target(cluster, 'NodePort', '192.168.0.2', 30080))).endpoint);
    t.assert.deepStrictEqual([...served], ['10.180.0.1:8080']);
  });
});

/** A proxy in front of raw TCP servers, one per endpoint of the service. */
async function withRawBackends(
  onSocket: (socket: Socket) => void,
  options: { endpoints?: string[]; idleTimeoutMs?: number },
  body: (front: HostPort, proxy: Awaited<ReturnType<typeof startProxy>>) => Promise<void>,
): Promise<void> {
  const baseline = handleCounts();
  const endpoints = options.endpoints ?? ['10.180.0.1'];
  const servers = await Promise.all(endpoints.map((_, i) => rawServer(`127.2.0.${i + 1}`, onSocket, { allowHalfOpen: true })));
  const byEndpoint = new Map(endpoints.map((ip, i) => [`${ip}:8080`, servers[i]!.address]));
  const proxy = await startProxy(stateOf(webService({ endpoints })), {
    ports: 'ephemeral',
    backendAddress: (endpoint) => byEndpoint.get(endpoint),
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
  });
  try {
    await body(proxy.map.lookup({ address: '172.30.0.41', port: 80 })!.loopback, proxy);
  } finally {
    await proxy.close();
    await Promise.all(servers.map((s) => s.close()));
  }
  await assertHandlesBack(baseline);
}

test('half-close, client first: the client\'s FIN reaches the backend, which can still answer', async (t: TestContext) => {
  t.plan(2);
  let backendSaw = '';
  await withRawBackends((socket) => {
    socket.on('data', (c: Buffer) => { backendSaw += c.toString(); });
    socket.on('end', () => socket.end(`got ${JSON.stringify(backendSaw)}, bye`));
  }, {}, async (front) => {
    const client = await connect(front, { allowHalfOpen: true });
    client.end('hello');
    const end = await readToEnd(client);
    t.assert.strictEqual(end.data.toString(), 'got "hello", bye');
    t.assert.strictEqual(end.how, 'end');
  });
});

test('half-close, backend first: its FIN reaches the client, which can still send', async (t: TestContext) => {
  t.plan(3);
  let backendGot = '';
  let backendSawEnd = false;
  await withRawBackends((socket) => {
    socket.on('data', (c: Buffer) => { backendGot += c.toString(); });
    socket.on('end', () => { backendSawEnd = true; });
    socket.end('ready');
  }, {}, async (front, proxy) => {
    const client = await connect(front, { allowHalfOpen: true });
    let clientGot = '';
    client.on('data', (c: Buffer) => { clientGot += c.toString(); });
    await new Promise<void>((resolve) => client.once('end', resolve));
    t.assert.strictEqual(clientGot, 'ready');
    client.end('after your FIN');
    await new Promise((resolve) => client.once('close', resolve));
    t.assert.ok(await eventually(() => backendSawEnd), 'the backend saw the client\'s FIN');
    t.assert.strictEqual(backendGot, 'after your FIN');
    await eventually(() => proxy.stats().active === 0);
  });
});

// The proxy passes a FIN on as soon as it reads it, and closes both sides once the other FIN has
// arrived too and nothing is left to write: whichever way the two FINs meet, no byte sent before
// either may be lost and neither side may see a reset.
for (const { name, backendWaits } of [
  { name: 'at once (both send and close as soon as connected)', backendWaits: false },
  { name: 'client first, the backend answering its FIN with its own', backendWaits: true },
]) {
  test(`FINs from both sides ${name}: 20 connections each get the other side's bytes and a clean end`, async (t: TestContext) => {
    t.plan(4);
    const COUNT = 20;
    const backendEnds: { got: string; how: string }[] = [];
    await withRawBackends((socket) => {
      let got = '';
      let how = 'close';
      socket.on('data', (c: Buffer) => { got += c.toString(); });
      socket.on('end', () => { how = 'end'; if (backendWaits) socket.end(`to ${got}`); });
      socket.on('error', (err: NodeJS.ErrnoException) => { how = err.code ?? err.message; });
      socket.on('close', () => backendEnds.push({ got, how }));
      if (!backendWaits) socket.end('from backend');
    }, {}, async (front, proxy) => {
      const ends = await Promise.all(Array.from({ length: COUNT }, async (_, i) => {
        const client = await connect(front, { allowHalfOpen: true });
        const end = readToEnd(client);
        client.end(`client ${i}`);
        return { i, ...(await end) };
      }));
      const expected = (i: number): string => (backendWaits ? `to client ${i}` : 'from backend');
      t.assert.deepStrictEqual(ends.filter((e) => e.how !== 'end' || e.data.toString() !== expected(e.i)).map((e) => `${e.i}: ${e.how} ${JSON.stringify(e.data.toString())}`), [], 'clients with a reset or missing bytes');
      t.assert.ok(await eventually(() => backendEnds.length === COUNT), `the backend saw ${backendEnds.length} of ${COUNT} connections close`);
      t.assert.deepStrictEqual(backendEnds.filter((e) => e.how !== 'end' || !/^client \d+$/.test(e.got)), [], 'backend sockets with a reset or missing bytes');
      await eventually(() => proxy.stats().active === 0);
      const stats = proxy.stats();
      t.assert.deepStrictEqual({ active: stats.active, errors: stats.endpoints.map((e) => e.errors), clientResets: stats.listeners.reduce((n, l) => n + l.clientResets, 0) },
        { active: 0, errors: [{ refused: 0, timeout: 0, reset: 0, other: 0 }], clientResets: 0 });
    });
  });
}

test('backpressure: a client that does not read does not make the proxy buffer without bound', async (t: TestContext) => {
  t.plan(4);
  const total = 32 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 7);
  let written = 0;
  await withRawBackends((socket) => {
    const pump = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  }, {}, async (front, proxy) => {
    const client = await connect(front);
    client.pause();
    let maxBuffered = 0;
    for (let i = 0; i < 30; i++) {
      await sleep(20);
      maxBuffered = Math.max(maxBuffered, proxy.bufferedBytes());
    }
    t.assert.ok(written < total, `the backend was held back while the client did not read (wrote ${written} of ${total})`);
    t.assert.ok(maxBuffered < 1024 * 1024, `the proxy held at most ${maxBuffered} bytes`);
    const end = readToEnd(client);
    client.resume();
    const { data, how } = await end;
    t.assert.strictEqual(data.length, total, 'every byte arrived once the client read');
    t.assert.strictEqual(how, 'end');
  });
});

test('idle timeout: a client that sends nothing is closed, and the proxy keeps serving others', async (t: TestContext) => {
  t.plan(5);
  // The idle sweep's clock is driven by hand (its setInterval is mocked): 800 ms of idle timeout
  // is 8 ticks of 100 ms, and between ticks the busy client's bytes have surely gone through,
  // since the test waits for their echo. Nothing depends on how fast this machine is.
  t.mock.timers.enable({ apis: ['setInterval'] });
  const IDLE_MS = 800;
  const TICK_MS = IDLE_MS / 8;
  await withRawBackends((socket) => {
    socket.on('data', (c: Buffer) => socket.write(c));
    socket.on('end', () => socket.end());
  }, { idleTimeoutMs: IDLE_MS }, async (front, proxy) => {
    const silent = await connect(front);
    let silentClosed = false;
    const silentEnd = readToEnd(silent).then((end) => { silentClosed = true; return end; });
    const chatty = await connect(front);
    let echoed = '';
    chatty.on('data', (c: Buffer) => { echoed += c.toString(); });
    t.assert.ok(await eventually(() => proxy.stats().endpoints.reduce((n, e) => n + e.active, 0) === 2), 'both connections reached the backend');
    // 12 ticks: past the silent one's timeout (it closes between 8 and 9 ticks after its last
    // byte); the chatty one moves a byte in every tick, so it never goes 8 ticks still.
    for (let i = 0; i < 12; i++) {
      chatty.write(`${i % 10}`);
      assert.ok(await eventually(() => echoed.length === i + 1), `echo ${i}`);
      // After 8 ticks (a full timeout, to the tick) the silent one is still open: closing it now
      // would be early. (Its FIN would have come back with the echo just awaited.)
      if (i === 8) assert.equal(silentClosed, false, 'the silent client was closed before its timeout ran out');
      t.mock.timers.tick(TICK_MS);
    }
    assert.ok(await eventually(() => silentClosed), 'the silent client was closed after 9 ticks');
    const end = await silentEnd;
    t.assert.strictEqual(end.how, 'end', 'the silent client was closed with a FIN');
    t.assert.strictEqual(echoed, '012345678901', 'the busy client, active throughout, kept its connection');
    t.assert.strictEqual(chatty.destroyed, false);
    chatty.destroy();
    await eventually(() => proxy.stats().active === 0);
    t.assert.strictEqual(proxy.stats().listeners.find((l) => l.kind === 'ClusterIP')?.idleTimeouts, 1);
  });
});

test('removeEndpoint drains: its open connection keeps working, new connections go elsewhere', async (t: TestContext) => {
  t.plan(5);
  await withRawBackends((socket) => {
    socket.on('data', (c: Buffer) => socket.write(c));
    socket.on('end', () => socket.end());
  }, { endpoints: ['10.180.0.1', '10.180.0.2'] }, async (front, proxy) => {
    const held = await connect(front);
    t.assert.ok(await eventually(() => proxy.stats().endpoints.some((e) => e.active === 1)));
    const busy = proxy.stats().endpoints.find((e) => e.active === 1)!.endpoint;
    t.assert.strictEqual(proxy.removeEndpoint(busy), 1, 'one listener (the ClusterIP) had it');
    const echoed = new Promise<string>((resolve) => held.once('data', (c: Buffer) => resolve(c.toString())));
    held.write('still here');
    t.assert.strictEqual(await echoed, 'still here', 'the open connection still reaches the removed endpoint');
    for (let i = 0; i < 3; i++) (await connect(front)).destroy();
    await eventually(() => proxy.stats().active === 1);
    const stats = proxy.stats().endpoints.find((e) => e.endpoint === busy)!;
    t.assert.deepStrictEqual([stats.connections, stats.draining], [1, true], 'no new connection reached it');
    held.end();
    t.assert.ok(await eventually(() => proxy.stats().active === 0), 'the drained connection finishes');
  });
});

test('IPv6: the ClusterIP is served on ::1 and reaches IPv6 endpoints', async (t: TestContext) => {
  t.plan(2);
  const baseline = handleCounts();
  const manifests = webService({
    clusterIP: 'fd00:30::41',
    endpoints: ['fd00:10::1', 'fd00:10::2'],
    mutate: (s) => { s.spec.ipFamilies = ['IPv6']; },
  });
  for (const m of manifests) if (m.kind === 'EndpointSlice') m.addressType = 'IPv6';
  const cluster = await startCluster(fixtureState(manifests, { family: 6 }), { ports: 'ephemeral' });
  try {
    const front = cluster.map.lookup({ address: 'fd00:30::41', port: 80 })!.loopback;
    t.assert.strictEqual(front.address, '::1');
    const served = [await httpGet(front), await httpGet(front)].map((a) => a.endpoint).sort();
    t.assert.deepStrictEqual(served, ['[fd00:10::1]:8080', '[fd00:10::2]:8080']);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
});

test('a service port already in use on its loopback address falls back to an ephemeral port, and the map says so', async (t: TestContext) => {
  t.plan(4);
  const baseline = handleCounts();
  // A port no other test plans: the ClusterIP is the only one, so it lands on 127.10.0.1.
  const manifests = webService({ mutate: (s) => { s.spec.ports![0]!.port = 18097; } });
  const squatter = await rawServer('127.2.0.9', (s) => s.destroy());
  const occupied = await new Promise<Server>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.10.0.1', port: 18097 }, () => resolve(server));
  });
  const proxy = await startProxy(stateOf(manifests), { backendAddress: () => squatter.address });
  try {
    const entry = proxy.map.lookup({ address: '172.30.0.41', port: 18097 })!;
    t.assert.strictEqual(entry.loopback.address, '127.10.0.1');
    t.assert.notStrictEqual(entry.loopback.port, 18097);
    t.assert.strictEqual(entry.fallback, 'port 18097 is in use');
    t.assert.match(proxy.map.render(), /172\.30\.0\.41:18097 +-> +127\.10\.0\.1:\d+ \(ephemeral: port 18097 is in use\)/);
  } finally {
    await proxy.close();
    await new Promise((resolve) => occupied.close(resolve));
    await squatter.close();
  }
  await assertHandlesBack(baseline);
});

test('updateState adds an endpoint at run time: a backend starts for it and it takes traffic', async (t: TestContext) => {
  t.plan(3);
  await withCluster(webService({ endpoints: ['10.180.0.1'] }), {}, async (cluster) => {
    t.assert.strictEqual((await httpGet(target(cluster))).endpoint, '10.180.0.1:8080');
    const change = await cluster.updateState(stateOf(webService({ endpoints: ['10.180.0.1', '10.180.0.9'] })));
    t.assert.deepStrictEqual(change, { added: ['ClusterIP 172.30.0.41:80/TCP: 10.180.0.9:8080'], removed: [] });
    const served = new Set([(await httpGet(target(cluster))).endpoint, (await httpGet(target(cluster))).endpoint]);
    t.assert.deepStrictEqual([...served].sort(), ['10.180.0.1:8080', '10.180.0.9:8080']);
  });
});

test('close with drainMs: new connections are refused at once, an open one may finish', async (t: TestContext) => {
  t.plan(3);
  await withRawBackends((socket) => {
    socket.on('data', (c: Buffer) => socket.write(c));
    socket.on('end', () => socket.end());
  }, {}, async (front, proxy) => {
    const held = await connect(front);
    await eventually(() => proxy.stats().endpoints.some((e) => e.active === 1));
    const closing = proxy.close({ drainMs: 5000 });
    const refused = await connect(front).then((s) => { s.destroy(); return 'connected'; }, (err: NodeJS.ErrnoException) => err.code);
    t.assert.strictEqual(refused, 'ECONNREFUSED');
    const echoed = new Promise<string>((resolve) => held.once('data', (c: Buffer) => resolve(c.toString())));
    held.write('one more');
    t.assert.strictEqual(await echoed, 'one more', 'the open connection still works while draining');
    held.end();
    await closing;
    t.assert.strictEqual(proxy.stats().active, 0);
  });
});
