/**
 * The churn scenario's request loop: a failed request is counted under the endpoint its
 * connection had answered from, and a new connection's first request that was on the wire at
 * an inFlight() snapshot under UNANSWERED_AT_SNAPSHOT (its pod is unknown), not as a failure on
 * a new connection. Against a real HTTP server on loopback that holds the first request and then
 * resets its connection, as a killed pod does.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { RequestLoop, UNANSWERED_AT_SNAPSHOT } from '../../src/load/request-loop.js';

const cases = [
  { name: 'snapshot taken while the first request is on the wire', snapshot: true, expectedKey: UNANSWERED_AT_SNAPSHOT },
  { name: 'no snapshot: a failure on a new connection', snapshot: false, expectedKey: '' },
];

for (const c of cases) {
  test(`request loop attribution: ${c.name}`, { timeout: 20_000 }, async () => {
    const sockets = new Set<Socket>();
    let requests = 0;
    let held: (() => void) | undefined;
    const heldSeen = new Promise<void>((resolve) => { held = resolve; });
    const server = http.createServer((_req, res) => {
      requests++;
      // The first request is held (on the wire), then its connection is reset; later ones are answered.
      if (requests === 1) {
        held!();
        return;
      }
      res.setHeader('x-kpsim-endpoint', '10.244.0.1:8080');
      res.end('ok');
    });
    server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const failures: { on: string; error: string }[] = [];
    const loop = new RequestLoop({ host: '127.0.0.1', port, clients: 1, requestsPerConnection: 100, maxRequests: 3, onFailed: (f) => failures.push(f) });
    try {
      loop.phase = 'p';
      loop.start();
      await heldSeen;
      if (c.snapshot) assert.equal(loop.inFlight().unknown, 1, 'the held request is on the wire on a connection that has not answered');
      for (const s of sockets) s.resetAndDestroy();
      await loop.finished('p', 3);
      const counts = loop.counts('p');
      const detail = JSON.stringify({ failures, failedOn: [...counts.failedOn], byEndpoint: [...counts.byEndpoint] });
      assert.equal(counts.failed, 1, detail);
      assert.deepEqual([...counts.failedOn], [[c.expectedKey, 1]], detail);
      assert.equal(counts.byEndpoint.get('10.244.0.1:8080'), 2, detail);
    } finally {
      await loop.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
}
