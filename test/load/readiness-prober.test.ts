/**
 * The churn scenario's tcpSocket probe, against real sockets on loopback: a pod that accepts is
 * ready even when this process stalled past the probe's timeout while the connect completed (the
 * timeout is judged after the loop turn's I/O), one that refuses is not, one not started is not.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { tcpProbe } from '../../src/load/readiness-prober.js';

/** Block this thread, as a loaded machine or a long GC does. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const TIMEOUT_MS = 100;

const cases: { name: string; listening: boolean; started: boolean; stallMs: number; want: boolean }[] = [
  { name: 'accepting: ready', listening: true, started: true, stallMs: 0, want: true },
  { name: 'accepting, the prober stalled past its timeout meanwhile: still ready', listening: true, started: true, stallMs: 300, want: true },
  { name: 'refusing: not ready', listening: false, started: true, stallMs: 0, want: false },
  { name: 'refusing, after a stall: not ready', listening: false, started: true, stallMs: 300, want: false },
  { name: 'not started: not ready', listening: false, started: false, stallMs: 0, want: false },
];

for (const c of cases) {
  test(`tcp probe: ${c.name}`, { timeout: 10_000 }, async () => {
    const server = net.createServer((s) => s.destroy());
    let port: number;
    if (c.listening) {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    } else {
      port = await freePort();
    }
    try {
      const result = tcpProbe(c.started ? { address: '127.0.0.1', port } : undefined, TIMEOUT_MS);
      // net.connect issues the connect on the next tick; stall after this turn's poll (from
      // setImmediate), so that the next turn finds both the timeout due and the connect done.
      await new Promise((resolve) => setImmediate(resolve));
      if (c.stallMs > 0) stall(c.stallMs);
      assert.equal(await result, c.want);
    } finally {
      if (c.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
}
