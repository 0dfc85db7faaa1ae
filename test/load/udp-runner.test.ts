/**
 * The UDP load generator against real UDP responders on loopback: runs bounded by a request count
 * so that every figure checked is a count (sent, answered, lost), never a speed or a time.
 */
import { test } from 'node:test';
import { runLoad } from '../../src/load/runner.js';
import { parseUdpURL } from '../../src/load/udp-runner.js';
import { runLoadInWorker } from '../../src/load/worker-runner.js';
import { closedUdpPort, startUdpResponder } from './fixtures.js';

for (const thread of ['main', 'worker'] as const) {
  test(`UDP: a counted run sends exactly that many datagrams, all answered and attributed (${thread} thread)`, async (t) => {
    t.plan(5);
    const responder = await startUdpResponder({ endpoint: '10.0.0.1:53' });
    t.after(() => responder.close());
    const run = thread === 'main' ? runLoad : runLoadInWorker;
    const result = await run({ url: responder.url, protocol: 'udp', connections: 4, durationSeconds: 30, overallRate: 2000, amount: 300 });
    t.assert.deepEqual(result.datagrams, { sent: 300, answered: 300, lost: 0, late: 0 });
    t.assert.equal(responder.received(), 300);
    t.assert.equal(result.responses, 300);
    t.assert.deepEqual(result.endpoints, [{ endpoint: '10.0.0.1:53', pod: 'pod-10.0.0.1:53', requests: 300 }]);
    t.assert.equal(result.latency.count, 300);
  });
}

test('UDP: datagrams the server never answers are counted lost, and as timeouts', async (t) => {
  t.plan(4);
  const responder = await startUdpResponder({ endpoint: '10.0.0.1:53', dropEvery: 4 });
  t.after(() => responder.close());
  const result = await runLoad({ url: responder.url, protocol: 'udp', connections: 2, durationSeconds: 30, overallRate: 2000, amount: 200, timeoutSeconds: 0.3 });
  t.assert.deepEqual(result.datagrams, { sent: 200, answered: 150, lost: 50, late: 0 });
  t.assert.equal(result.errors.timeouts, 50);
  t.assert.equal(result.errors.total, 50);
  t.assert.equal(result.responses + result.datagrams!.lost, result.datagrams!.sent, 'answered + lost = sent');
});

test('UDP to a port nothing listens on: every datagram is lost and the port-unreachables are counted as refused', async (t) => {
  t.plan(3);
  const port = await closedUdpPort();
  const result = await runLoad({ url: `udp://127.0.0.1:${port}`, protocol: 'udp', connections: 1, durationSeconds: 30, overallRate: 1000, amount: 20, timeoutSeconds: 0.2 });
  t.assert.deepEqual([result.datagrams!.sent, result.datagrams!.answered, result.datagrams!.lost], [20, 0, 20]);
  t.assert.equal(result.errors.refused > 0, true, JSON.stringify(result.errors));
  t.assert.equal(result.responses, 0);
});

test('UDP URLs: udp://IP:PORT only', () => {
  const cases: [string, string | { host: string; port: number }][] = [
    ['udp://127.0.0.1:53', { host: '127.0.0.1', port: 53 }],
    ['udp://[::1]:5353', { host: '::1', port: 5353 }],
    ['http://127.0.0.1:53/', 'not a udp:// address'],
    ['udp://localhost:53', 'not udp://IP:PORT'],
  ];
  for (const [url, want] of cases) {
    if (typeof want === 'string') {
      let message = '';
      try { parseUdpURL(url); } catch (e) { message = (e as Error).message; }
      if (!message.includes(want)) throw new Error(`${url}: expected an error with "${want}", got "${message}"`);
    } else if (JSON.stringify(parseUdpURL(url)) !== JSON.stringify(want)) {
      throw new Error(`${url}: ${JSON.stringify(parseUdpURL(url))}`);
    }
  }
});
