/**
 * UDP through the userspace proxy, as kube-proxy's userspace mode proxied it: an association per
 * client address and port toward the endpoint the scheduler picked, replies from the service
 * address, associations ended by their idle timeout or by an unreachable backend. Real datagrams
 * on loopback to real backend pods; every test ends with the open handles (UDP sockets
 * included) back where they were. Timeouts are waited for by their effect, never by the clock.
 */
import dgram from 'node:dgram';
import { type TestContext, test } from 'node:test';
import type { HostPort } from '../../src/proxy/address-map.js';
import { startCluster, type RunningCluster, type StartClusterOptions } from '../../src/proxy/cluster.js';
import { dnsTxtStrings } from '../../src/proxy/udp-reply.js';
import type { Manifest } from '../helpers/cluster-builders.js';
import { assertHandlesBack, eventually, handleCounts, stateOf, udpClient, udpService } from './helpers.js';

async function withUdpCluster(manifests: Manifest[], options: StartClusterOptions, body: (cluster: RunningCluster, front: HostPort) => Promise<void>): Promise<void> {
  const baseline = handleCounts();
  const cluster = await startCluster(stateOf(manifests), { ports: 'ephemeral', ...options });
  try {
    const entry = cluster.map.lookup({ address: '172.30.0.10', port: 53, protocol: 'UDP' });
    if (entry === undefined || !entry.proxied) throw new Error(`no UDP listener in\n${cluster.map.render()}`);
    await body(cluster, entry.loopback);
  } finally {
    await cluster.close();
  }
  await assertHandlesBack(baseline);
}

const THREE = ['10.180.0.1', '10.180.0.2', '10.180.0.3'];

function udpListenerStats(cluster: RunningCluster) {
  return cluster.proxy.stats().listeners.find((l) => l.protocol === 'UDP' && l.kind === 'ClusterIP')!;
}

test('UDP rr: each new client is an association to the next endpoint; replies come from the service address', async (t: TestContext) => {
  t.plan(5);
  await withUdpCluster(udpService({ endpoints: THREE }), {}, async (cluster, front) => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => udpClient(front)));
    const answers = [];
    for (const [i, client] of clients.entries()) answers.push(await client.ask(`q${i}`));
    const endpoints = answers.map((a) => a.identity?.endpoint);
    t.assert.strictEqual(new Set(endpoints.slice(0, 3)).size, 3, `the first three clients reach three endpoints: ${endpoints}`);
    t.assert.deepStrictEqual(endpoints.slice(3), endpoints.slice(0, 3), `then the same cycle: ${endpoints}`);
    t.assert.ok(answers.every((a) => a.from?.address === front.address && a.from.port === front.port), 'every reply comes from the service address');
    const again = await Promise.all(clients.map((c, i) => c.ask(`again${i}`)));
    t.assert.deepStrictEqual(again.map((a) => a.identity?.endpoint), endpoints, 'a client keeps its association, so its endpoint');
    const stats = udpListenerStats(cluster);
    t.assert.deepStrictEqual([stats.accepted, stats.forwarded, stats.active, stats.datagramsIn, stats.datagramsOut], [6, 6, 6, 12, 12]);
    await Promise.all(clients.map((c) => c.close()));
  });
});

test('UDP idle timeout: a silent association closes, and the client\'s next datagram opens a new one', async (t: TestContext) => {
  t.plan(4);
  await withUdpCluster(udpService(), { udpIdleTimeoutMs: 60 }, async (cluster, front) => {
    const client = await udpClient(front);
    const first = await client.ask('one');
    t.assert.ok(first.identity, 'answered');
    t.assert.ok(await eventually(() => udpListenerStats(cluster).active === 0), 'the association closed once silent');
    t.assert.strictEqual(udpListenerStats(cluster).idleTimeouts, 1);
    const second = await client.ask('two');
    t.assert.notStrictEqual(second.identity?.endpoint, first.identity?.endpoint, 'a new association: rr moved on to the other endpoint');
    await client.close();
  });
});

test('UDP: an endpoint removed while associations are open keeps them until they go idle; new clients go elsewhere', async (t: TestContext) => {
  t.plan(5);
  await withUdpCluster(udpService({ endpoints: THREE }), { udpIdleTimeoutMs: 200 }, async (cluster, front) => {
    const held = await udpClient(front);
    const removed = (await held.ask('first')).identity!.endpoint;
    t.assert.strictEqual(cluster.proxy.removeEndpoint(removed), 1, 'the UDP listener had it');
    const still = await held.ask('still');
    t.assert.strictEqual(still.identity?.endpoint, removed, 'the open association still reaches the removed endpoint');
    const others = [];
    for (let i = 0; i < 4; i++) {
      const c = await udpClient(front);
      others.push((await c.ask(`new${i}`)).identity?.endpoint);
      await c.close();
    }
    t.assert.ok(others.every((e) => e !== removed), `new clients avoid it: ${others}`);
    t.assert.ok(await eventually(() => udpListenerStats(cluster).active === 0), 'every association ends by its idle timeout');
    const after = await held.ask('after');
    t.assert.ok(after.identity !== undefined && after.identity.endpoint !== removed, `once idle, the held client moves too: ${after.identity?.endpoint}`);
    await held.close();
  });
});

test('UDP to a dead backend: the datagram is lost, the association ends on the port-unreachable, the next client reaches a live pod', async (t: TestContext) => {
  t.plan(5);
  const [dead, live] = ['10.180.0.1:5353', '10.180.0.2:5353'];
  // No pod for `dead` (pods: false): nothing listens at its loopback address. `live` is a user
  // backend: the responder of a pod started by another cluster.
  await withUdpCluster(udpService({ endpoints: ['10.180.0.2'] }), {}, async (podCluster) => {
    const responder = podCluster.backends.udpAddress(live)!;
    await withUdpCluster(udpService({ endpoints: ['10.180.0.1', '10.180.0.2'] }), { pods: false, userBackends: new Map([[live, responder]]), udpIdleTimeoutMs: 60_000 }, async (cluster, front) => {
      const clients = await Promise.all([udpClient(front), udpClient(front), udpClient(front)]);
      try {
        // rr starts at the front of the dest list: the endpoint added last, the higher address.
        t.assert.strictEqual((await clients[0]!.ask('first')).identity?.endpoint, live);
        t.assert.strictEqual((await clients[1]!.ask('to-the-dead', 300)).identity, undefined, 'no reply from the dead endpoint');
        const deadStats = (): number => cluster.proxy.stats().endpoints.find((e) => e.endpoint === dead)!.errors.refused;
        t.assert.ok(await eventually(() => deadStats() >= 1), 'the refusal is counted on the endpoint');
        t.assert.ok(await eventually(() => udpListenerStats(cluster).active === 1), 'and that association ended (the first one is still open)');
        t.assert.strictEqual((await clients[2]!.ask('third')).identity?.endpoint, live);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });
  });
});

test('UDP to a service without endpoints: datagrams are dropped and counted as rejected', async (t: TestContext) => {
  t.plan(2);
  await withUdpCluster(udpService({ endpoints: [] }), {}, async (cluster, front) => {
    const client = await udpClient(front);
    t.assert.strictEqual((await client.ask('anyone?', 200)).identity, undefined);
    t.assert.deepStrictEqual([udpListenerStats(cluster).rejected, udpListenerStats(cluster).verdict], [1, 'reject']);
    await client.close();
  });
});

test('UDP with ClientIP affinity: every association from one client address goes to one endpoint', async (t: TestContext) => {
  t.plan(1);
  const manifests = udpService({ endpoints: THREE, mutate: (s) => { s.spec.sessionAffinity = 'ClientIP'; } });
  await withUdpCluster(manifests, {}, async (_cluster, front) => {
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 5; i++) {
      const c = await udpClient(front);
      seen.add((await c.ask(`a${i}`)).identity?.endpoint);
      await c.close();
    }
    t.assert.strictEqual(seen.size, 1, `one endpoint for 127.0.0.1: ${[...seen]}`);
  });
});

test('UDP: a DNS query through the proxy is answered by the pod with a TXT record naming it', async (t: TestContext) => {
  t.plan(2);
  await withUdpCluster(udpService({ endpoints: ['10.180.0.1'] }), {}, async (_cluster, front) => {
    const socket = dgram.createSocket('udp4');
    // id 0x1234, RD, one question: "web.ns1.svc" TXT IN.
    const query = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, ...Buffer.from('web'), 3, ...Buffer.from('ns1'), 3, ...Buffer.from('svc'), 0, 0, 16, 0, 1]);
    const reply = await new Promise<Buffer>((resolve) => {
      socket.once('message', resolve);
      socket.send(query, front.port, front.address);
    });
    socket.close();
    t.assert.strictEqual(reply.readUInt16BE(0), 0x1234, 'the query id');
    t.assert.deepStrictEqual(dnsTxtStrings(reply), ['pod=dns-0', 'endpoint=10.180.0.1:5353']);
  });
});
