/**
 * `kpsim up` as a user runs it: a real process that serves the example cluster on loopback
 * until it gets SIGINT or SIGTERM, then prints its counters and exits 0; bad flags exit 2 and
 * bad input exits 1, with one line on stderr.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { repoRoot } from '../helpers/cluster-builders.js';
import { cliEntry } from '../helpers/run-cli.js';

const mainScript = cliEntry();
const example = join(repoRoot(), 'rules', 'example');

/** The CLI in a child process (under tsx when the tests run from source). */
function kpsim(args: readonly string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [...process.execArgv, mainScript, ...args], { stdio: 'pipe' });
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function finished(child: ChildProcessWithoutNullStreams): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Resolves with stdout so far once it contains `marker`. */
function outputUntil(child: ChildProcessWithoutNullStreams, marker: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes(marker)) {
        child.stdout.removeListener('data', onData);
        resolve(out);
      }
    };
    child.stdout.on('data', onData);
    child.once('close', (code) => reject(new Error(`kpsim exited with ${code} before printing ${JSON.stringify(marker)}: ${out}`)));
  });
}

function get(host: string, port: number): Promise<{ status: number; pod: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host, port, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, pod: String(res.headers['x-kpsim-pod']) }));
    }).on('error', reject);
  });
}

interface UpEvent {
  event: 'up';
  scheduler: string;
  map: { entries: { kind: string; virtual: { address: string; port: number }; loopback: { address: string; port: number } }[] };
}

interface DownEvent {
  event: 'down';
  signal: string;
  stats: { proxy: { endpoints: { endpoint: string; connections: number }[] }; backends: { requests: number }[] };
}

test('up --json: serves the example cluster, then on SIGINT closes and reports the counters', async (t: TestContext) => {
  t.plan(6);
  const child = kpsim(['up', '-f', example, '--ephemeral-ports', '--json', '-q']);
  const done = finished(child);
  const firstLine = (await outputUntil(child, '\n')).split('\n')[0]!;
  const up = JSON.parse(firstLine) as UpEvent;
  t.assert.strictEqual(up.scheduler, 'rr', 'the example config says rr');
  const web = up.map.entries.find((e) => e.kind === 'ClusterIP' && e.virtual.address === '10.96.100.20' && e.virtual.port === 80)!;
  const answers = [await get(web.loopback.address, web.loopback.port), await get(web.loopback.address, web.loopback.port)];
  t.assert.deepStrictEqual(answers.map((a) => a.status), [200, 200]);
  t.assert.ok(answers.every((a) => a.pod.startsWith('web-')), JSON.stringify(answers));
  child.kill('SIGINT');
  const { code, stdout } = await done;
  t.assert.strictEqual(code, 0);
  const down = JSON.parse(stdout.trim().split('\n').at(-1)!) as DownEvent;
  t.assert.strictEqual(down.signal, 'SIGINT');
  t.assert.strictEqual(down.stats.proxy.endpoints.reduce((n, e) => n + e.connections, 0), 2);
});

test('up: prints the address map and, on SIGTERM, the per-endpoint counters', async (t: TestContext) => {
  t.plan(4);
  const child = kpsim(['up', '-f', example, '--ephemeral-ports', '--scheduler', 'lc', '-q']);
  const done = finished(child);
  const map = await outputUntil(child, 'Ctrl-C to stop');
  t.assert.match(map, /^ClusterIP +10\.96\.100\.20:80 +-> +127\.10\.0\.\d+:\d+ .*default\/web:http$/m);
  t.assert.match(map, /^Backend +10\.244\.0\.5:8080 +-> +127\.1\.0\.\d+:\d+ .*web-5d8f7c9b6-abcde$/m);
  child.kill('SIGTERM');
  const { code, stdout } = await done;
  t.assert.strictEqual(code, 0);
  t.assert.match(stdout, /SIGTERM: closed; counters:\n\nENDPOINT +POD +CONNS/);
});

test('up --no-pods --backend: no pod runs, your server takes the service\'s connections (the dead endpoints\' dials are retried)', async (t: TestContext) => {
  t.plan(5);
  const mine = http.createServer((_req, res) => res.end('mine\n'));
  await new Promise<void>((resolve) => mine.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => mine.close(() => resolve())));
  const port = (mine.address() as { port: number }).port;
  const child = kpsim(['up', '-f', example, '--ephemeral-ports', '--json', '-q', '--no-pods', '--backend', `10.244.1.7:8080=127.0.0.1:${port}`]);
  const done = finished(child);
  const up = JSON.parse((await outputUntil(child, '\n')).split('\n')[0]!) as UpEvent & { map: { backends: { endpoint: string; server: string; loopback: { port: number } }[] } };
  const servers = new Map(up.map.backends.map((b) => [b.endpoint, b.server]));
  t.assert.deepStrictEqual([servers.get('10.244.1.7:8080'), servers.get('10.244.0.5:8080')], ['user', 'none']);
  const web = up.map.entries.find((e) => e.kind === 'ClusterIP' && e.virtual.address === '10.96.100.20' && e.virtual.port === 80)!;
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await get(web.loopback.address, web.loopback.port));
  t.assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200], 'every connection reached your server');
  child.kill('SIGINT');
  const { code, stdout } = await done;
  t.assert.strictEqual(code, 0);
  const down = JSON.parse(stdout.trim().split('\n').at(-1)!) as { stats: { proxy: { endpoints: { endpoint: string; connections: number; errors: { refused: number } }[] } } };
  const byEndpoint = new Map(down.stats.proxy.endpoints.map((e) => [e.endpoint, e]));
  t.assert.strictEqual(byEndpoint.get('10.244.1.7:8080')?.connections, 3);
  t.assert.ok((byEndpoint.get('10.244.0.5:8080')?.errors.refused ?? 0) + (byEndpoint.get('10.244.1.6:8080')?.errors.refused ?? 0) > 0, 'the dead endpoints refused dials');
});

const badRuns: { name: string; args: string[]; code: number; stderr: RegExp }[] = [
  { name: 'an unknown scheduler is a usage error', args: ['up', '-f', example, '--scheduler', 'fastest'], code: 2, stderr: /--scheduler: "fastest" is not an IPVS scheduler: rr, wrr, lc/ },
  { name: 'a negative delay is a usage error', args: ['up', '-f', example, '--delay', '-5'], code: 2, stderr: /--delay: "-5" is not a number >= 0/ },
  { name: 'a payload that is not a whole number is a usage error', args: ['up', '-f', example, '--payload', '1.5'], code: 2, stderr: /--payload: "1.5" is not a whole number/ },
  { name: 'no -f is a usage error', args: ['up'], code: 2, stderr: /no cluster given: -f PATH\.\.\. \(manifests\), or a live cluster/ },
  { name: 'a --backend off loopback is a usage error', args: ['up', '-f', example, '--backend', '10.244.0.5:8080=192.0.2.1:80'], code: 2, stderr: /--backend: "10\.244\.0\.5:8080=192\.0\.2\.1:80": 192\.0\.2\.1:80 is not on loopback/ },
  { name: 'a --udp-timeout of 0 is a usage error', args: ['up', '-f', example, '--udp-timeout', '0'], code: 2, stderr: /--udp-timeout: "0" is not a duration > 0/ },
  { name: 'a manifest that is not there is bad input', args: ['up', '-f', join(example, 'missing.yaml')], code: 1, stderr: /missing\.yaml: cannot read: no such file or folder/ },
];

for (const c of badRuns) {
  test(`up: ${c.name}`, async (t: TestContext) => {
    t.plan(3);
    const { code, stdout, stderr } = await finished(kpsim(c.args));
    t.assert.strictEqual(code, c.code);
    t.assert.match(stderr, c.stderr);
    t.assert.strictEqual(stdout, '');
  });
}

test('up --workers 2 (the installed entry point starts its worker threads): rr goes round all three pods', async (t: TestContext) => {
  t.plan(3);
  const child = kpsim(['up', '-f', example, '--ephemeral-ports', '--json', '--workers', '2', '-q']);
  const done = finished(child);
  const up = JSON.parse((await outputUntil(child, '\n')).split('\n')[0]!) as UpEvent;
  const web = up.map.entries.find((e) => e.kind === 'ClusterIP' && e.virtual.address === '10.96.100.20' && e.virtual.port === 80)!;
  const answers = [];
  for (let i = 0; i < 6; i++) answers.push(await get(web.loopback.address, web.loopback.port));
  t.assert.deepStrictEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
  // One round robin over every worker's connections: each pod twice in six new connections.
  t.assert.deepStrictEqual([...new Set(answers.map((a) => a.pod))].length, 3, JSON.stringify(answers));
  child.kill('SIGINT');
  t.assert.strictEqual((await done).code, 0);
});
