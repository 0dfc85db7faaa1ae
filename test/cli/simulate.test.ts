/**
 * `kpsim simulate`: the core run directly (runSimulation) on the bundled example cluster, and the
 * command through the CLI for the exit-code contract. What is checked follows from the modes'
 * definitions, not from kpsim's own output: every connection is counted once; rr over n equal
 * dests gives exactly connections/n each; lc keeps open connections level; a draining weight-0
 * dest is expected to get nothing and gets nothing; affinity keeps a client on its endpoint.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type SimulationOptions, type SimulationReport, formatSimulationReport, runSimulation, simulationOptions, workload,
} from '../../src/cli/simulate.js';
import { isKpsimError } from '../../src/errors.js';
import { loadCluster } from '../../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import { runCli } from '../helpers/run-cli.js';

const cluster = await loadCluster('rules/example');
const node = resolveNode(cluster);
const states = buildProxierStates(cluster, node);
const view = { node, states };

function options(overrides: Partial<SimulationOptions> = {}): SimulationOptions {
  return { modes: ['iptables', 'ipvs'], schedulers: ['rr'], connections: 3000, durationSeconds: 60, keepalive: false, seed: 7, ...overrides };
}

function run(report: SimulationReport, mode: string, scheduler: string) {
  const found = report.runs.find((r) => r.mode === mode && r.scheduler === scheduler);
  assert.ok(found, `no ${mode} ${scheduler} run`);
  return found;
}

test('without --target: the first service port (by name) with endpoints, and the report says so', () => {
  const report = runSimulation(view, options({ connections: 200 }));
  assert.equal(report.target.servicePort, 'default/api:grpc');
  assert.equal(report.target.chosenBy, 'first-with-endpoints');
  assert.match(formatSimulationReport(report), /the first service port with endpoints; choose another with --target/);
});

test('every connection is counted once, in every run', () => {
  const report = runSimulation(view, options({ target: 'svc/web', schedulers: ['rr', 'lc', 'sh', 'mh', 'twos'] }));
  assert.equal(report.runs.length, 6);
  for (const r of report.runs) {
    const received = r.endpoints.reduce((s, e) => s + e.received, 0);
    assert.equal(received + r.refused, 3000, `${r.mode} ${r.scheduler}`);
    assert.equal(r.refused, 0);
  }
});

test('rr gives exactly connections/n to n equal dests: chi-square 0, p = 1', () => {
  const r = run(runSimulation(view, options({ target: 'svc/web', modes: ['ipvs'] })), 'ipvs', 'rr');
  assert.deepEqual(r.endpoints.map((e) => [e.endpoint, e.received, e.expectedShare]), [
    ['10.244.0.5:8080', 1000, 1 / 3], ['10.244.1.6:8080', 1000, 1 / 3], ['10.244.1.7:8080', 1000, 1 / 3],
  ]);
  assert.equal(r.fairness.chiSquare.statistic, 0);
  assert.equal(r.fairness.chiSquare.pValue, 1);
  assert.equal(r.fairness.receivedMaxOverMean, 1);
});

test('iptables: the rules\' probabilities are the expected shares, and a random spread fits them', () => {
  const r = run(runSimulation(view, options({ target: 'svc/web', modes: ['iptables'], connections: 6000 })), 'iptables', 'random');
  for (const e of r.endpoints) assert.ok(Math.abs(e.expectedShare - 1 / 3) < 1e-9, `${e.endpoint} expects ${e.expectedShare}`);
  // Not a statement about speed: a seeded random draw that fits its own distribution.
  assert.ok(r.fairness.chiSquare.pValue > 0.001, `p = ${r.fairness.chiSquare.pValue}`);
  assert.ok(r.fairness.receivedMaxOverMean > 1, 'a random spread is never exactly even here');
});

test('long-lived connections: lc keeps the open connections level, random does not do better', () => {
  const report = runSimulation(view, options({ target: 'svc/web', schedulers: ['lc'], keepalive: true, connections: 3000 }));
  const lc = run(report, 'ipvs', 'lc');
  const random = run(report, 'iptables', 'random');
  const open = lc.endpoints.map((e) => e.active);
  assert.ok(Math.max(...open) - Math.min(...open) <= 1, `lc open connections: ${open.join(', ')}`);
  assert.ok(random.fairness.activeMaxOverMean >= lc.fairness.activeMaxOverMean);
  assert.equal(report.workload.meanLifetimeSeconds, 60);
});

test('a draining weight-0 dest expects nothing and receives nothing (shop\'s terminating endpoint)', () => {
  const r = run(runSimulation(view, options({ target: 'svc/shop', modes: ['ipvs'], schedulers: ['rr', 'wlc'] })), 'ipvs', 'rr');
  const draining = r.endpoints.find((e) => e.endpoint === '10.244.1.10:8443');
  assert.ok(draining);
  assert.equal(draining.expectedShare, 0);
  assert.equal(draining.received, 0);
  assert.ok(Number.isFinite(r.fairness.chiSquare.statistic));
});

test('UDP service ports replay through IPVS too (every UDP flow stays inactive)', () => {
  const r = run(runSimulation(view, options({ target: 'svc/kube-system/kube-dns:dns', modes: ['ipvs'] })), 'ipvs', 'rr');
  assert.deepEqual(r.endpoints.map((e) => e.received), [1500, 1500]);
  assert.ok(r.endpoints.every((e) => e.active === 0));
});

test('the workload is the same for the same seed and differs for another', () => {
  const state = states[0]!;
  const a = workload(state, { connections: 50, durationSeconds: 10, keepalive: false, seed: 3 });
  assert.deepEqual(workload(state, { connections: 50, durationSeconds: 10, keepalive: false, seed: 3 }), a);
  assert.notDeepEqual(workload(state, { connections: 50, durationSeconds: 10, keepalive: false, seed: 4 }), a);
  for (const e of a) {
    assert.ok(e.kind === 'open' && e.at >= 0 && e.at < 10);
    assert.match(e.client, /^100\.64\.\d+\.\d+:\d+$/);
  }
});

test('the JSON report keeps its documented keys', () => {
  const report = JSON.parse(JSON.stringify(runSimulation(view, options({ connections: 100, target: 'svc/web' })))) as Record<string, unknown>;
  assert.deepEqual(Object.keys(report).sort(), ['runs', 'schema', 'target', 'workload']);
  assert.equal(report['schema'], 'kpsim.simulate/v1');
  const first = (report['runs'] as Record<string, unknown>[])[0]!;
  assert.deepEqual(Object.keys(first).sort(), ['affinity', 'endpoints', 'fairness', 'mode', 'refused', 'scheduler']);
  assert.deepEqual(Object.keys(first['fairness'] as object).sort(), ['activeMaxOverMean', 'chiSquare', 'receivedMaxOverMean']);
});

const usageCases: { flags: Record<string, string>; flag: string }[] = [
  { flags: { connections: '0' }, flag: '--connections' },
  { flags: { connections: 'many' }, flag: '--connections' },
  { flags: { duration: '0' }, flag: '--duration' },
  { flags: { mode: 'iptables,bpf' }, flag: '--mode' },
  { flags: { scheduler: 'rr,fancy' }, flag: '--scheduler' },
  { flags: { seed: '-1' }, flag: '--seed' },
  { flags: { target: 'web' }, flag: '--target' },
];
for (const c of usageCases) {
  test(`usage error naming ${c.flag}: ${JSON.stringify(c.flags)}`, () => {
    let caught: unknown;
    try {
      simulationOptions(c.flags, { cluster });
    } catch (e) {
      caught = e;
    }
    assert.ok(isKpsimError(caught), String(caught));
    assert.equal(caught.code, 'KPSIM_ERR_USAGE_BAD_FLAG');
    assert.ok(caught.message.startsWith(`${c.flag}: `), caught.message);
  });
}

test('the command: exit 0 with a report, exit 2 naming the flag on bad usage', () => {
  const ok = runCli(['simulate', '-f', 'rules/example', '-q', '--connections', '300', '--target', 'svc/web', '--scheduler', 'rr,lc']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^target: default\/web:http TCP 10\.96\.100\.20:80$/m);
  assert.match(ok.stdout, /^iptables \(random\)/m);
  assert.match(ok.stdout, /^ipvs lc/m);
  assert.match(ok.stdout, /^nftables \(random\)/m);
  assert.equal(ok.stdout.match(/fairness: received max\/mean/g)?.length, 4, 'iptables, ipvs rr, ipvs lc, nftables');
  const bad = runCli(['simulate', '-f', 'rules/example', '-q', '--scheduler', 'fancy']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--scheduler: unknown scheduler "fancy": valid schedulers are rr, wrr/);
  const json = runCli(['simulate', '-f', 'rules/example', '-q', '--connections', '50', '--json']);
  assert.equal(json.status, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as { schema: string }).schema, 'kpsim.simulate/v1');
});
