/**
 * `kpsim load` end to end on the bundled example cluster, with 1-second runs: the JSON shape, the
 * counts adding up, and the usage errors naming their flag. Never speed.
 */
import { test } from 'node:test';
import { registerLoad } from '../../src/cli/load.js';
import { runLoadTest } from '../../src/load/load-test.js';
import type { LoadReport } from '../../src/load/report.js';
import { parseNodePortFlag, parseTargetFlag } from '../../src/load/target.js';
import { loadCluster } from '../../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import { runCli, runInProcess } from '../load/cli-harness.js';
import { startCountingBackend } from '../load/fixtures.js';

const cluster = await loadCluster('rules/example');
const view = { cluster, states: buildProxierStates(cluster, resolveNode(cluster)) };

/** The documented keys of each level of kpsim.load/v1. */
const SHAPE = {
  top: ['schema', 'target', 'mode', 'scheduler', 'settings', 'elapsedSeconds', 'requests', 'latency', 'errors', 'endpoints', 'unattributedRequests', 'spread', 'notes'],
  target: ['spec', 'service', 'via', 'address', 'listener'],
  settings: ['connections', 'durationSeconds', 'pipelining', 'keepAlive', 'loadGenerator'],
  requests: ['total', 'perSecond', 'statusClasses'],
  latency: ['count', 'meanMs', 'p50Ms', 'p90Ms', 'p99Ms', 'maxMs'],
  errors: ['non2xx', 'timeouts', 'resets', 'refused', 'other', 'total'],
  endpoint: ['endpoint', 'pod', 'requests', 'requestShare', 'connections', 'connectionShare'],
  spread: ['endpoints', 'total', 'maxOverMean', 'chiSquare', 'degreesOfFreedom', 'pValue'],
};

function keysOf(value: unknown): string[] {
  return Object.keys(value as object).sort();
}

function sum(report: LoadReport, field: 'requests' | 'connections'): number {
  return report.endpoints.reduce((total, e) => total + e[field], 0);
}

test('load through a ClusterIP: the JSON shape, and the shares add up to the request count', async (t) => {
  t.plan(13);
  const report = await runLoadTest(view, { target: parseTargetFlag('svc/web'), connections: 3, durationSeconds: 1, ports: 'ephemeral' });
  const json = JSON.parse(JSON.stringify(report)) as LoadReport;
  t.assert.deepEqual(keysOf(json), [...SHAPE.top].sort());
  t.assert.deepEqual(keysOf(json.target), [...SHAPE.target].sort());
  t.assert.deepEqual(keysOf(json.settings), [...SHAPE.settings].sort());
  t.assert.deepEqual(keysOf(json.requests), [...SHAPE.requests].sort());
  t.assert.deepEqual(keysOf(json.latency), [...SHAPE.latency].sort());
  t.assert.deepEqual(keysOf(json.errors), [...SHAPE.errors].sort());
  t.assert.deepEqual(json.endpoints.map(keysOf), json.endpoints.map(() => [...SHAPE.endpoint].sort()));
  t.assert.deepEqual([keysOf(json.spread.requests), keysOf(json.spread.connections)], [[...SHAPE.spread].sort(), [...SHAPE.spread].sort()]);
  t.assert.deepEqual(
    { schema: json.schema, mode: json.mode, scheduler: json.scheduler, service: json.target.service, via: json.target.via, address: json.target.address },
    { schema: 'kpsim.load/v1', mode: 'userspace', scheduler: 'rr', service: 'default/web:http', via: 'ClusterIP', address: '10.96.100.20:80' },
  );
  t.assert.deepEqual(json.endpoints.map((e) => e.endpoint), ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']);
  t.assert.equal(sum(json, 'requests') + json.unattributedRequests, json.requests.total, 'per-endpoint requests add up to the total');
  // Keep-alive: each of the 3 client connections is one proxied connection, one per endpoint under rr.
  t.assert.deepEqual(json.endpoints.map((e) => e.connections), [1, 1, 1]);
  t.assert.equal(json.errors.total, 0, JSON.stringify(json.errors));
});

test('load through a NodePort without keep-alive: one proxied connection per request', async (t) => {
  t.plan(5);
  const report = await runLoadTest(view, { target: parseNodePortFlag('node-a:30080'), connections: 2, durationSeconds: 1, keepAlive: false, scheduler: 'lc', ports: 'ephemeral' });
  t.assert.deepEqual([report.target.via, report.target.address, report.scheduler], ['NodePort', '192.168.0.2:30080', 'lc']);
  t.assert.equal(report.requests.total > 0, true);
  t.assert.equal(sum(report, 'requests') + report.unattributedRequests, report.requests.total);
  const connections = sum(report, 'connections');
  // Each response came over its own connection; a connection still open at the end has no response yet.
  t.assert.equal(connections >= report.requests.total && connections <= report.requests.total + 2 * 2, true, `${connections} connections, ${report.requests.total} responses`);
  // lc with two clients: a closed connection leaves the counters at once, so lc keeps using the
  // first two dests in list order (ties go to the first); how often a third is reached depends on
  // how long connections linger, so only the two are asserted.
  t.assert.equal(report.endpoints.filter((e) => e.connections > 0).length >= 2, true, JSON.stringify(report.endpoints));
});

test('a service with no endpoints: every connection is reset, and the report says why', async (t) => {
  t.plan(3);
  const report = await runLoadTest(view, { target: parseTargetFlag('svc/empty'), connections: 1, durationSeconds: 1, ports: 'ephemeral' });
  t.assert.equal(report.requests.total, 0);
  t.assert.equal(report.errors.resets > 0, true, JSON.stringify(report.errors));
  t.assert.deepEqual(report.notes, ['the proxy will reject every connection: default/empty:http has no endpoints']);
});

test('kpsim load --json prints the report', async (t) => {
  t.plan(3);
  const out = await runCli(['load', '-f', 'rules/example', '-q', '--target', 'svc/web:http', '--connections', '2', '--duration', '0.5', '--json']);
  t.assert.equal(out.exitCode, 0, out.stderr);
  const report = JSON.parse(out.stdout) as LoadReport;
  t.assert.equal(report.schema, 'kpsim.load/v1');
  t.assert.equal(sum(report, 'requests') + report.unattributedRequests, report.requests.total);
});

const usageCases: { name: string; args: string[]; flag: string; also?: RegExp }[] = [
  { name: 'no target', args: [], flag: '--target' },
  { name: 'both targets', args: ['--target', 'svc/web', '--nodeport', 'node-a:30080'], flag: '--target' },
  { name: 'malformed target', args: ['--target', 'web'], flag: '--target' },
  { name: 'malformed node port', args: ['--nodeport', 'node-a'], flag: '--nodeport' },
  { name: 'iptables mode is simulated, not loaded', args: ['--target', 'svc/web', '--mode', 'iptables'], flag: '--mode', also: /kpsim simulate.*kpsim compare/ },
  { name: 'ipvs mode is simulated, not loaded', args: ['--target', 'svc/web', '--mode', 'ipvs'], flag: '--mode', also: /not load-tested with real bytes/ },
  { name: 'unknown mode', args: ['--target', 'svc/web', '--mode', 'ebpf'], flag: '--mode' },
  { name: 'unknown scheduler', args: ['--target', 'svc/web', '--scheduler', 'fastest'], flag: '--scheduler' },
  { name: 'zero connections', args: ['--target', 'svc/web', '--connections', '0'], flag: '--connections' },
  { name: 'connections not a number', args: ['--target', 'svc/web', '--connections', 'ten'], flag: '--connections' },
  { name: 'duration not a number', args: ['--target', 'svc/web', '--duration', '5s'], flag: '--duration' },
  { name: 'negative duration', args: ['--target', 'svc/web', '--duration', '-1'], flag: '--duration' },
  { name: 'zero pipelining', args: ['--target', 'svc/web', '--pipelining', '0'], flag: '--pipelining' },
  { name: 'pipelining without keep-alive', args: ['--target', 'svc/web', '--pipelining', '4', '--no-keepalive'], flag: '--pipelining' },
];

for (const c of usageCases) {
  test(`usage error exits 2 naming the flag: ${c.name}`, async (t) => {
    t.plan(2);
    const out = await runInProcess(registerLoad, ['load', '-f', 'rules/example', '-q', ...c.args]);
    t.assert.equal(out.exitCode, 2, out.stderr);
    t.assert.match(out.stderr, new RegExp(`^kpsim: ${c.flag}: ${c.also ? `.*${c.also.source}` : ''}`), out.stderr);
  });
}

test('an unknown service exits 1, naming it and listing the services', async (t) => {
  t.plan(2);
  const out = await runInProcess(registerLoad, ['load', '-f', 'rules/example', '-q', '--target', 'svc/nope']);
  t.assert.equal(out.exitCode, 1, out.stderr);
  t.assert.match(out.stderr, /^kpsim: service nope does not exist in any namespace; services: default\/api, .*default\/web, kube-system\/kube-dns\n$/);
});

test('the real CLI: exit 2 for a bad flag, exit 1 for an unknown target', async (t) => {
  t.plan(4);
  const bad = await runCli(['load', '-f', 'rules/example', '-q', '--target', 'svc/web', '--connections', 'many']);
  t.assert.equal(bad.exitCode, 2, bad.stderr);
  t.assert.match(bad.stderr, /^kpsim: --connections: /);
  const missing = await runCli(['load', '-f', 'rules/example', '-q', '--nodeport', 'node-a:30999']);
  t.assert.equal(missing.exitCode, 1, missing.stderr);
  t.assert.match(missing.stderr, /^kpsim: node port 30999 is not a TCP node port of any IPv4 service; node ports: /);
});

test('load --proto udp through the DNS ClusterIP: datagrams counted, every one answered, spread over both pods', async (t) => {
  t.plan(6);
  const report = await runLoadTest(view, {
    target: parseTargetFlag('svc/kube-system/kube-dns'), protocol: 'UDP', connections: 4, durationSeconds: 30, rate: 2000, requests: 400, ports: 'ephemeral',
  });
  t.assert.deepEqual([report.target.service, report.target.address, report.settings.protocol, report.settings.rate], ['kube-system/kube-dns:dns', '10.96.0.10:53', 'UDP', 2000]);
  t.assert.deepEqual(report.datagrams, { sent: 400, answered: 400, lost: 0, late: 0 });
  t.assert.equal(report.requests.total, 400);
  t.assert.deepEqual(report.endpoints.map((e) => [e.endpoint, e.requests, e.connections]), [['10.244.0.2:53', 200, 2], ['10.244.1.3:53', 200, 2]], 'rr: 4 client sockets, 4 associations, 2 per pod; each socket\'s datagrams follow it');
  t.assert.equal(sum(report, 'requests') + report.unattributedRequests, report.requests.total);
  t.assert.equal(report.errors.total, 0, JSON.stringify(report.errors));
});

test('load --backend: your own server takes its endpoint\'s connections, without kpsim headers (unattributed)', async (t) => {
  t.plan(4);
  const mine = await startCountingBackend({ endpoints: [''] });
  t.after(() => mine.close());
  const report = await runLoadTest(view, {
    target: parseTargetFlag('svc/web'), connections: 3, durationSeconds: 1, ports: 'ephemeral',
    userBackends: new Map([['10.244.0.5:8080', { address: '127.0.0.1', port: mine.port }]]),
  });
  const byEndpoint = new Map(report.endpoints.map((e) => [e.endpoint, e]));
  t.assert.equal(byEndpoint.get('10.244.0.5:8080')?.connections, 1, 'rr gave your server one of the three connections');
  const served = mine.answered.get('') ?? 0;
  t.assert.equal(report.unattributedRequests <= served && served <= report.unattributedRequests + 1, true, `its ${served} answers name no endpoint: ${report.unattributedRequests} unattributed`);
  t.assert.equal(report.unattributedRequests > 0 && report.requests.total > report.unattributedRequests, true, JSON.stringify(report.requests));
  t.assert.match(report.notes.join('\n'), /your own servers \(--backend\)/);
});

test('load --no-pods: every endpoint is unreachable, so every dial is refused and every connection reset', async (t) => {
  t.plan(3);
  const report = await runLoadTest(view, { target: parseTargetFlag('svc/web'), connections: 1, durationSeconds: 0.5, ports: 'ephemeral', pods: false });
  t.assert.equal(report.requests.total, 0);
  t.assert.equal(report.errors.resets > 0, true, JSON.stringify(report.errors));
  t.assert.deepEqual(report.endpoints.map((e) => e.connections), [0, 0, 0], 'no connection reached an endpoint');
});

test('load --workers 2: the proxy on two threads places every connection once, as one round robin', async (t) => {
  t.plan(3);
  const report = await runLoadTest(view, { target: parseTargetFlag('svc/web'), connections: 6, durationSeconds: 1, ports: 'ephemeral', workers: 2 });
  t.assert.equal(report.settings.workers, 2);
  t.assert.deepEqual(report.endpoints.map((e) => e.connections), [2, 2, 2], 'keep-alive: the six client connections, rr over both workers');
  t.assert.equal(report.errors.total, 0, JSON.stringify(report.errors));
});

test('kpsim load --proto udp --json, and the node flags\' usage errors', async (t) => {
  t.plan(7);
  const out = await runCli(['load', '-f', 'rules/example', '-q', '--target', 'svc/kube-system/kube-dns', '--proto', 'udp', '--connections', '2', '--requests', '50', '--rate', '500', '--duration', '20', '--json']);
  t.assert.equal(out.exitCode, 0, out.stderr);
  const report = JSON.parse(out.stdout) as LoadReport;
  t.assert.deepEqual(report.datagrams, { sent: 50, answered: 50, lost: 0, late: 0 });
  for (const [args, flag] of [[['--backend', '10.244.0.5:8080=192.0.2.1:80'], '--backend'], [['--udp-timeout', '0s'], '--udp-timeout'], [['--proto', 'sctp'], '--proto'], [['--workers', '0'], '--workers'], [['--workers', '65'], '--workers']] as const) {
    const bad = await runInProcess(registerLoad, ['load', '-f', 'rules/example', '-q', '--target', 'svc/web', ...args]);
    t.assert.match(`${bad.exitCode} ${bad.stderr}`, new RegExp(`^2 kpsim: ${flag}: `), bad.stderr);
  }
});
