/**
 * The backend pods: real fastify servers on loopback answering with who they are, padded
 * payloads, delays, and the failure schedules (500s, destroyed connections, refusing, killing).
 */
import http from 'node:http';
import { type TestContext, test } from 'node:test';
import { type BackendOptions, type Backends, responseBody, startBackends } from '../../src/proxy/backends.js';
import { assertHandlesBack, eventually, handleCounts, httpGet, type HttpAnswer, stateOf, webService } from './helpers.js';

const EP1 = '10.180.0.1:8080';
const EP2 = '10.180.0.2:8080';

async function withBackends(options: BackendOptions, body: (backends: Backends) => Promise<void>): Promise<void> {
  const baseline = handleCounts();
  const backends = await startBackends(stateOf(webService()), { ports: 'ephemeral', ...options });
  try {
    await body(backends);
  } finally {
    await backends.close();
  }
  await assertHandlesBack(baseline);
}

/** `count` requests on one keep-alive connection; a failed one is reported by its error code. */
async function requestsOnOneConnection(backends: Backends, endpoint: string, count: number): Promise<(HttpAnswer | string)[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const target = backends.address(endpoint)!;
  const out: (HttpAnswer | string)[] = [];
  try {
    for (let i = 0; i < count; i++) {
      out.push(await new Promise<HttpAnswer | string>((resolve) => {
        http.get({ host: target.address, port: target.port, agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => { body += c.toString(); });
          res.on('end', () => resolve({
            status: res.statusCode ?? 0,
            pod: String(res.headers['x-kpsim-pod']),
            endpoint: String(res.headers['x-kpsim-endpoint']),
            connection: String(res.headers['x-kpsim-connection']),
            body,
          }));
        }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      }));
    }
  } finally {
    agent.destroy();
  }
  return out;
}

test('each backend answers with its pod, endpoint and connection id, in headers and JSON', async (t: TestContext) => {
  t.plan(5);
  await withBackends({}, async (backends) => {
    const [first, second] = await requestsOnOneConnection(backends, EP2, 2) as HttpAnswer[];
    t.assert.deepStrictEqual([first!.status, first!.pod, first!.endpoint, first!.connection], [200, 'web-1', EP2, '1']);
    t.assert.deepStrictEqual(JSON.parse(first!.body), { pod: 'web-1', endpoint: EP2, connection: 1, status: 200 });
    t.assert.strictEqual(second!.connection, '1', 'keep-alive: the same connection');
    const fresh = await httpGet(backends.address(EP2)!);
    t.assert.strictEqual(fresh.connection, '2', 'a new connection, a new id');
    t.assert.deepStrictEqual(backends.stats().map((b) => [b.endpoint, b.requests, b.connections]), [[EP1, 0, 0], [EP2, 3, 2]]);
  });
});

test('the payload is padded to the requested size', async (t: TestContext) => {
  t.plan(3);
  await withBackends({ payloadBytes: 4096 }, async (backends) => {
    const answer = await httpGet(backends.address(EP1)!);
    t.assert.strictEqual(Buffer.byteLength(answer.body), 4096);
    t.assert.strictEqual((JSON.parse(answer.body) as { pod: string }).pod, 'web-0');
  });
  t.assert.strictEqual(responseBody('p', 'e', 1, 200, 10).toString(), '{"pod":"p","endpoint":"e","connection":1,"status":200}', 'smaller than the bare JSON: unpadded');
});

test('failEvery answers every Nth request with a 500', async (t: TestContext) => {
  t.plan(2);
  await withBackends({ faults: { failEvery: 3 } }, async (backends) => {
    const answers = await requestsOnOneConnection(backends, EP1, 7) as HttpAnswer[];
    t.assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 500, 200, 200, 500, 200]);
    t.assert.strictEqual(backends.stats()[0]!.failed, 2);
  });
});

test('failProbability draws from a seeded source: the same seed fails the same requests', async (t: TestContext) => {
  t.plan(2);
  const runs: number[][] = [];
  for (let i = 0; i < 2; i++) {
    await withBackends({ faults: { failProbability: 0.3 }, seed: 42 }, async (backends) => {
      runs.push((await requestsOnOneConnection(backends, EP1, 40) as HttpAnswer[]).map((a) => a.status));
    });
  }
  t.assert.deepStrictEqual(runs[0], runs[1]);
  const failures = runs[0]!.filter((s) => s === 500).length;
  t.assert.ok(failures > 0 && failures < 40, `${failures} of 40 failed`);
});

test('faultsFor picks out one pod by endpoint or pod name', async (t: TestContext) => {
  t.plan(2);
  await withBackends({ faultsFor: { 'web-1': { failEvery: 1 } } }, async (backends) => {
    t.assert.strictEqual((await httpGet(backends.address(EP1)!)).status, 200);
    t.assert.strictEqual((await httpGet(backends.address(EP2)!)).status, 500);
  });
});

test('closeEvery destroys the connection instead of answering', async (t: TestContext) => {
  t.plan(2);
  await withBackends({ faults: { closeEvery: 2 } }, async (backends) => {
    const answers = await requestsOnOneConnection(backends, EP1, 3);
    t.assert.deepStrictEqual(answers.map((a) => (typeof a === 'string' ? a : a.status)), [200, 'ECONNRESET', 200]);
    t.assert.strictEqual(backends.stats()[0]!.destroyed, 1);
  });
});

test('refuseAfterMs closes the listening socket: new connections are refused, open ones go on', async (t: TestContext) => {
  t.plan(3);
  // The fault's timer is driven by hand: the first request is surely answered before it fires,
  // however slow the machine (the helpers' waits keep the real clock).
  t.mock.timers.enable({ apis: ['setTimeout'] });
  await withBackends({ faults: { refuseAfterMs: 100 } }, async (backends) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const target = backends.address(EP1)!;
    const get = (): Promise<number | string> => new Promise((resolve) => {
      http.get({ host: target.address, port: target.port, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? ''));
    });
    try {
      t.assert.strictEqual(await get(), 200);
      t.mock.timers.tick(100);
      await eventually(() => !backends.stats()[0]!.listening);
      t.assert.strictEqual(await get(), 200, 'the open keep-alive connection still works');
      t.assert.strictEqual(await httpGet(target).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code), 'ECONNREFUSED');
    } finally {
      agent.destroy();
    }
  });
});

test('kill resets open connections and refuses new ones; restore listens again', async (t: TestContext) => {
  t.plan(3);
  // The answer's delay runs on a mocked clock: the first request is surely still unanswered when
  // the test kills its backend, however slow the machine; the last is let through by hand.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  await withBackends({ delayMs: 500 }, async (backends) => {
    const target = backends.address(EP1)!;
    const pending = httpGet(target).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code);
    await eventually(() => backends.stats()[0]!.requests === 1);
    await backends.kill(EP1);
    t.assert.strictEqual(await pending, 'ECONNRESET');
    t.assert.strictEqual(await httpGet(target).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code), 'ECONNREFUSED');
    await backends.restore(EP1);
    const answer = httpGet(target);
    await eventually(() => backends.stats()[0]!.requests === 2);
    t.mock.timers.tick(500);
    t.assert.strictEqual((await answer).status, 200);
  });
});

test('bad options are usage errors naming the field', async (t: TestContext) => {
  t.plan(3);
  const state = stateOf(webService());
  for (const [options, path] of [[{ delayMs: -1 }, 'delayMs'], [{ faults: { failEvery: 0 } }, 'failEvery'], [{ faults: { failProbability: 2 } }, 'failProbability']] as const) {
    await startBackends(state, options).then(
      () => t.assert.fail('started'),
      (err: { code: string; where: { path: string } }) => t.assert.deepStrictEqual([err.code, err.where.path], ['KPSIM_ERR_USAGE_BAD_FLAG', path]),
    );
  }
});
