/**
 * The load runner against real servers on loopback: runs that check what was counted (responses
 * per endpoint from the headers, errors by kind, connections per request), never speed. Where a
 * test needs responses it asks for a number of them (`amount`), not for a time, so a slow or
 * loaded machine gives the same counts; runs against servers that never answer are bounded in
 * time, and what they check is ordered by the timers themselves (a request's timeout falls due
 * before the run's end), not by how much fits into a second.
 */
import { test } from 'node:test';
import { runLoad } from '../../src/load/runner.js';
import { runLoadInWorker } from '../../src/load/worker-runner.js';
import type { LoadRunResult } from '../../src/load/types.js';
import { closedPort, startCountingBackend, startRawServer } from './fixtures.js';

const CONNECTIONS = 4;
/** Responses asked of each healthy run: several per connection. */
const AMOUNT = 12 * CONNECTIONS;

function attributed(result: LoadRunResult): number {
  return result.endpoints.reduce((sum, e) => sum + e.requests, 0);
}

for (const thread of ['main', 'worker'] as const) {
  test(`requests are counted per endpoint from the response headers (${thread} thread)`, async (t) => {
    t.plan(5);
    const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'] });
    t.after(() => backend.close());
    const run = thread === 'main' ? runLoad : runLoadInWorker;
    const result = await run({ url: backend.url, connections: CONNECTIONS, durationSeconds: 60, amount: AMOUNT });
    t.assert.equal(result.responses, AMOUNT, 'the responses asked for');
    t.assert.equal(attributed(result) + result.unattributed, result.responses, 'per-endpoint counts add up to the responses');
    t.assert.equal(result.unattributed, 0);
    t.assert.deepEqual(result.endpoints.map((e) => [e.endpoint, e.pod]), [
      ['10.0.0.1:80', 'pod-10.0.0.1:80'], ['10.0.0.2:80', 'pod-10.0.0.2:80'], ['10.0.0.3:80', 'pod-10.0.0.3:80'],
    ]);
    // The client saw what the server answered, less what was still in flight when the run stopped.
    const mismatched = result.endpoints.filter((e) => {
      const answered = backend.answered.get(e.endpoint) ?? 0;
      return e.requests > answered || e.requests < answered - CONNECTIONS;
    });
    t.assert.deepEqual(mismatched, [], `server answered ${JSON.stringify([...backend.answered])}`);
  });
}

test('responses without kpsim headers are unattributed, not guessed', async (t) => {
  t.plan(3);
  const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80', ''] });
  t.after(() => backend.close());
  const result = await runLoad({ url: backend.url, connections: 1, durationSeconds: 60, amount: 20 });
  t.assert.equal(attributed(result) + result.unattributed, result.responses);
  t.assert.equal(result.responses, 20);
  t.assert.deepEqual([attributed(result), result.unattributed], [10, 10], 'alternating, one connection: half each');
});

test('non-2xx responses are counted as errors and by status class', async (t) => {
  t.plan(4);
  const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80'], status: (n) => (n % 3 === 2 ? 503 : 200) });
  t.after(() => backend.close());
  const result = await runLoad({ url: backend.url, connections: 1, durationSeconds: 60, amount: 30 });
  t.assert.equal(result.statusClasses['5xx'], 10, 'every third of 30');
  t.assert.equal(result.errors.non2xx, result.statusClasses['5xx']);
  t.assert.equal(result.statusClasses['2xx'] + result.statusClasses['5xx'], result.responses);
  t.assert.equal(result.errors.total, result.errors.non2xx);
});

test('without keep-alive every request opens its own connection', async (t) => {
  t.plan(4);
  const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80'] });
  t.after(() => backend.close());
  // autocannon ends this run once it has counted AMOUNT requests, the one it drops at each
  // reconnect included: it cannot end before answers came back, however slow the machine.
  const result = await runLoad({ url: backend.url, connections: CONNECTIONS, durationSeconds: 60, keepAlive: false, amount: AMOUNT });
  t.assert.equal(result.responses > 0, true, `${result.responses} responses`);
  t.assert.equal(backend.connections() >= result.responses, true, `${backend.connections()} connections for ${result.responses} responses`);
  t.assert.equal(backend.connections() <= result.responses + 2 * CONNECTIONS, true, `${backend.connections()} connections for ${result.responses} responses`);
  t.assert.equal(result.errors.total, 0, JSON.stringify(result.errors));
});

test('with keep-alive the connections are reused', async (t) => {
  t.plan(2);
  const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80'] });
  t.after(() => backend.close());
  const result = await runLoad({ url: backend.url, connections: CONNECTIONS, durationSeconds: 60, amount: AMOUNT });
  t.assert.equal(result.responses, AMOUNT, `${AMOUNT} responses, ${AMOUNT / CONNECTIONS} per connection`);
  t.assert.equal(backend.connections(), CONNECTIONS, 'over the first connections only');
});

test('a server that never answers gives timeouts', async (t) => {
  t.plan(3);
  const server = await startRawServer(() => undefined);
  t.after(() => server.close());
  // autocannon's shortest timeout is 1 s: a 2-second run sees each connection time out at least once.
  const result = await runLoad({ url: server.url, connections: 2, durationSeconds: 2, timeoutSeconds: 1 });
  t.assert.equal(result.responses, 0);
  t.assert.equal(result.errors.timeouts > 0, true, JSON.stringify(result.errors));
  t.assert.equal(result.errors.resets + result.errors.refused, 0);
});

test('a server that resets connections gives resets', async (t) => {
  t.plan(2);
  const server = await startRawServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  t.after(() => server.close());
  const result = await runLoad({ url: server.url, connections: 2, durationSeconds: 1 });
  t.assert.equal(result.responses, 0);
  t.assert.equal(result.errors.resets > 0, true, JSON.stringify(result.errors));
});

test('nothing listening gives refused connections', async (t) => {
  t.plan(2);
  const port = await closedPort();
  const result = await runLoad({ url: `http://127.0.0.1:${port}/`, connections: 1, durationSeconds: 1 });
  t.assert.equal(result.responses, 0);
  t.assert.equal(result.errors.refused > 0, true, JSON.stringify(result.errors));
});

test('load goes to loopback only', async (t) => {
  t.plan(2);
  await t.assert.rejects(runLoad({ url: 'http://192.0.2.1/', connections: 1, durationSeconds: 1 }), /loopback only/);
  await t.assert.rejects(runLoadInWorker({ url: 'http://example.com/', connections: 1, durationSeconds: 1 }), /loopback only/);
});

test('progress is reported while the run goes, and last with the final count', async (t) => {
  t.plan(3);
  const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80'] });
  t.after(() => backend.close());
  const seen: { elapsedSeconds: number; responses: number }[] = [];
  const result = await runLoadInWorker({ url: backend.url, connections: 1, durationSeconds: 1 }, (p) => seen.push(p));
  // The progress interval (250 ms) is armed before autocannon's 1 s stop timer, and Node runs due
  // timers in the order they fall due: however late a loaded machine runs them, one report comes
  // before the run can end. Not how many: that is the machine's speed.
  t.assert.equal(seen.length >= 2, true, `a report while running, then the final one: ${JSON.stringify(seen)}`);
  const ordered = seen.every((p, i) => i === 0 || (p.responses >= seen[i - 1]!.responses && p.elapsedSeconds >= seen[i - 1]!.elapsedSeconds));
  t.assert.equal(ordered, true, `counts and times never go back: ${JSON.stringify(seen)}`);
  t.assert.deepEqual(seen[seen.length - 1], { elapsedSeconds: result.elapsedSeconds, responses: result.responses }, 'the last report is the final count');
});

test('a run of a given amount stops there, not at its duration', async (t) => {
  t.plan(2);
  const backend = await startCountingBackend({ endpoints: ['10.0.0.1:80'] });
  t.after(() => backend.close());
  // durationSeconds is long (a bound, should the amount never come): only the amount ends this run.
  const result = await runLoad({ url: backend.url, connections: 2, durationSeconds: 60, amount: 10 });
  t.assert.equal(result.responses, 10);
  t.assert.equal(backend.answered.get('10.0.0.1:80'), 10, 'and no request beyond it was sent');
});
