/**
 * `kpsim compare` end to end on the bundled example cluster with tiny runs: the rows, the JSON
 * shape, the counts adding up, the text report, and usage errors naming their flag. Never speed.
 */
import { test } from 'node:test';
import { registerCompare } from '../../src/cli/compare.js';
import { runCompare } from '../../src/load/compare.js';
import { formatCompareReport } from '../../src/load/compare-format.js';
import type { CompareReport } from '../../src/load/compare-report.js';
import { parseTargetFlag } from '../../src/load/target.js';
import { loadCluster } from '../../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import { runCli, runInProcess } from '../load/cli-harness.js';

const cluster = await loadCluster('rules/example');
const node = resolveNode(cluster);
const view = { cluster, node, states: buildProxierStates(cluster, node) };
const STREAM = 300;
const tiny = { connections: 2, durationSeconds: 0.5, warmupSeconds: 0, streamConnections: STREAM, ports: 'ephemeral' as const };

const ROW_KEYS = [
  'label', 'mode', 'scheduler', 'measured', 'listener', 'requests', 'requestsPerSecond', 'relativeToDirect', 'latency', 'addedLatencyMs',
  'errors', 'endpoints', 'requestSpread', 'connectionSpread', 'refusedConnections', 'decision',
].sort();

function keysOf(value: unknown): string[] {
  return Object.keys(value as object).sort();
}

test('compare on the default target: every row, in order, with counts that add up', async (t) => {
  const progress: string[] = [];
  const report = await runCompare(view, { ...tiny, schedulers: ['rr', 'lc'], onProgress: (line) => progress.push(line) });
  const json = JSON.parse(JSON.stringify(report)) as CompareReport;
  const measured = json.rows.filter((r) => r.measured);
  const simulated = json.rows.filter((r) => !r.measured);
  t.plan(14);
  t.assert.deepEqual(keysOf(json), ['baseline', 'notes', 'rows', 'schema', 'settings', 'stream', 'target']);
  t.assert.deepEqual({ schema: json.schema, service: json.target.service, via: json.target.via, address: json.target.address }, { schema: 'kpsim.compare/v1', service: 'default/web:http', via: 'ClusterIP', address: '10.96.100.20:80' });
  t.assert.deepEqual(json.rows.map((r) => r.label), ['direct', 'userspace rr', 'userspace lc', 'iptables', 'ipvs rr', 'ipvs lc', 'nftables']);
  t.assert.deepEqual(json.rows.map(keysOf), json.rows.map(() => ROW_KEYS));
  t.assert.equal(json.baseline.endpoint, '10.244.0.5:8080');
  t.assert.deepEqual(json.rows[0]!.endpoints.map((e) => [e.endpoint, e.requests]), [['10.244.0.5:8080', json.rows[0]!.requests]], 'direct: one backend takes every request');
  t.assert.equal(json.rows[0]!.relativeToDirect, 1);
  t.assert.deepEqual(measured.map((r) => r.endpoints.reduce((sum, e) => sum + (e.requests ?? 0), 0)), measured.map((r) => r.requests), 'per-endpoint requests add up to each row\'s requests');
  t.assert.deepEqual(measured.slice(1).map((r) => r.endpoints.reduce((sum, e) => sum + e.connections, 0)), [2, 2], 'keep-alive: the proxy placed the 2 client connections');
  t.assert.deepEqual(simulated.map((r) => r.endpoints.reduce((sum, e) => sum + e.connections, 0) + (r.refusedConnections ?? 0)), [STREAM, STREAM, STREAM, STREAM], 'each simulated row placed the whole stream');
  t.assert.deepEqual(simulated.map((r) => [r.requestsPerSecond, r.latency, r.errors]), simulated.map(() => [null, null, null]), 'simulated rows move no bytes');
  t.assert.deepEqual(json.rows.filter((r) => r.mode !== 'direct').map((r) => r.endpoints.map((e) => e.endpoint)), json.rows.slice(1).map(() => ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']));
  t.assert.equal(progress.length >= 6 && progress[0]!.startsWith('[1/7] direct to 10.244.0.5:8080'), true, progress.join('\n'));
  t.assert.match(json.notes[0]!, /target svc\/default\/web:http chosen as the service port with the most endpoints \(3\)/);
});

test('the text report shows every mode in one table, then the endpoints', async (t) => {
  const report = await runCompare(view, { ...tiny, target: parseTargetFlag('svc/api'), schedulers: ['rr'], loadThread: 'main' });
  const text = formatCompareReport(report);
  const want = [
    'kpsim compare: default/api:grpc via ClusterIP 10.96.30.40:9000', 'direct: straight to 10.244.0.11:9000 (api-7f6e5d4c3-efghi)',
    'sim: 300 new connections from 192.168.0.2, 2 open at a time', 'Connections per endpoint', 'ClientIP session affinity',
  ];
  t.plan(want.length + 3);
  for (const w of want) t.assert.equal(text.includes(w), true, `missing ${JSON.stringify(w)} in:\n${text}`);
  const table = text.split('\n').filter((line) => /^  (direct|userspace|iptables|ipvs|nftables) /.test(line)).map((line) => line.trim().split(/\s{2,}/).slice(0, 2));
  t.assert.deepEqual(table, [['direct', 'real'], ['userspace rr', 'real'], ['iptables', 'sim'], ['ipvs rr', 'sim'], ['nftables', 'sim']], text);
  t.assert.match(text, /\n  10\.244\.1\.12:9000 +api-7f6e5d4c3-jklmn +[0-9]+\/[0-9]+ +(0|300) +(0|300) +(0|300)\n/, text);
  // Affinity and one client address: every mode keeps a single endpoint.
  t.assert.deepEqual(report.rows.filter((r) => r.mode !== 'direct').map((r) => r.endpoints.filter((e) => e.connections > 0).length), [1, 1, 1, 1]);
});

test('kpsim compare --json prints the report', async (t) => {
  t.plan(3);
  const out = await runCli(['compare', '-f', 'rules/example', '-q', '--target', 'svc/web', '--schedulers', 'rr', '--connections', '1', '--duration', '0.3', '--json']);
  t.assert.equal(out.exitCode, 0, out.stderr);
  t.assert.equal((JSON.parse(out.stdout) as CompareReport).schema, 'kpsim.compare/v1');
  t.assert.match(out.stderr, /^compare \[1\/5\] direct to /m);
});

test('compare --proto udp: UDP rows for the DNS service, every datagram answered, and its simulated rows', async (t) => {
  t.plan(5);
  const report = await runCompare(view, { ...tiny, protocol: 'UDP', rate: 400, schedulers: ['rr'] });
  t.assert.deepEqual([report.target.service, report.target.address, report.settings.protocol], ['kube-system/kube-dns:dns', '10.96.0.10:53', 'UDP']);
  t.assert.deepEqual(report.rows.map((r) => r.label), ['direct', 'userspace rr', 'iptables', 'ipvs rr', 'nftables']);
  const measured = report.rows.filter((r) => r.measured);
  t.assert.deepEqual(measured.map((r) => r.errors?.total), [0, 0], 'no datagram lost');
  t.assert.deepEqual(report.rows[1]!.endpoints.map((e) => [e.endpoint, e.connections]), [['10.244.0.2:53', 1], ['10.244.1.3:53', 1]], 'two client sockets, two associations, one per pod');
  t.assert.deepEqual(report.rows.filter((r) => !r.measured).map((r) => r.endpoints.reduce((sum, e) => sum + e.connections, 0)), [STREAM, STREAM, STREAM]);
});

test('compare --no-pods with a --backend: the direct row goes to your server', async (t) => {
  t.plan(2);
  const { startCountingBackend } = await import('../load/fixtures.js');
  const mine = await startCountingBackend({ endpoints: ['10.244.1.6:8080'] });
  t.after(() => mine.close());
  const report = await runCompare(view, { ...tiny, target: parseTargetFlag('svc/web'), schedulers: ['rr'], pods: false, userBackends: new Map([['10.244.1.6:8080', { address: '127.0.0.1', port: mine.port }]]) });
  t.assert.deepEqual([report.baseline.endpoint, report.baseline.listener], ['10.244.1.6:8080', `127.0.0.1:${mine.port}`]);
  t.assert.equal(report.rows[1]!.errors!.total, 0, 'the proxy retried the dead endpoints on your server: no client saw an error');
});

const usageCases: { name: string; args: string[]; flag: string }[] = [
  { name: 'unknown scheduler', args: ['--schedulers', 'rr,fastest'], flag: '--schedulers' },
  { name: 'empty scheduler list', args: ['--schedulers', ','], flag: '--schedulers' },
  { name: 'a scheduler twice', args: ['--schedulers', 'rr,rr'], flag: '--schedulers' },
  { name: 'zero connections', args: ['--connections', '0'], flag: '--connections' },
  { name: 'duration not a number', args: ['--duration', 'long'], flag: '--duration' },
  { name: 'malformed target', args: ['--target', 'node-a:30080'], flag: '--target' },
  { name: 'unknown protocol', args: ['--proto', 'icmp'], flag: '--proto' },
  { name: 'a backend that is not an endpoint', args: ['--backend', '10.9.9.9:80=127.0.0.1:80'], flag: '--backend' },
];

for (const c of usageCases) {
  test(`usage error exits 2 naming the flag: ${c.name}`, async (t) => {
    t.plan(2);
    const out = await runInProcess(registerCompare, ['compare', '-f', 'rules/example', '-q', ...c.args]);
    t.assert.equal(out.exitCode, 2, out.stderr);
    t.assert.match(out.stderr, new RegExp(`^kpsim: ${c.flag}: `));
  });
}

const inputCases: { name: string; args: string[]; want: RegExp }[] = [
  { name: 'an unknown service', args: ['--target', 'svc/nope'], want: /^kpsim: service nope does not exist in any namespace; services: / },
  { name: 'a service with no endpoints', args: ['--target', 'svc/empty'], want: /^kpsim: nothing to compare: default\/empty:http has no endpoints\n$/ },
];

for (const c of inputCases) {
  test(`bad input exits 1: ${c.name}`, async (t) => {
    t.plan(2);
    const out = await runInProcess(registerCompare, ['compare', '-f', 'rules/example', '-q', ...c.args]);
    t.assert.equal(out.exitCode, 1, out.stderr);
    t.assert.match(out.stderr, c.want);
  });
}
