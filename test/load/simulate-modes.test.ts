import { test } from 'node:test';
import { chooseEndpoints } from '../../src/proxy/index.js';
import { loadCluster } from '../../src/manifest/load.js';
import { compareStream, simulatedRows, type StreamShape } from '../../src/load/simulate-modes.js';
import { rulesCheckedOnPath } from '../../src/node/rules-checked.js';
import type { CompareRow } from '../../src/load/compare-report.js';
import { parseNodePortFlag, parseTargetFlag, resolveTarget } from '../../src/load/target.js';
import type { Hop } from '../../src/trace/types.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

const cluster = await loadCluster('rules/example');
const node = resolveNode(cluster);
const states = buildProxierStates(cluster, node);
const shape: StreamShape = { connections: 600, concurrent: 10, clientIP: '192.168.0.2', intervalSeconds: 0.001 };

function targetOf(spec: string) {
  const target = resolveTarget(cluster, states, spec.startsWith('svc/') ? parseTargetFlag(spec) : parseNodePortFlag(spec));
  const verdict = chooseEndpoints(target.servicePort, target.via);
  const candidates = verdict.action === 'forward' ? verdict.endpoints.map((e) => ({ endpoint: e.endpoint, pod: e.podName ?? '' })) : [];
  return { target, candidates };
}

test('the stream: one client, ephemeral ports in turn, a fixed number open at a time', (t) => {
  t.plan(3);
  const events = compareStream({ connections: 3, concurrent: 2, clientIP: '10.0.0.1', intervalSeconds: 0.5 });
  t.assert.deepEqual(events, [
    { kind: 'open', at: 0, client: '10.0.0.1:32768', durationSeconds: 1 },
    { kind: 'open', at: 0.5, client: '10.0.0.1:32769', durationSeconds: 1 },
    { kind: 'open', at: 1, client: '10.0.0.1:32770', durationSeconds: 1 },
  ]);
  const wrapped = compareStream({ ...shape, connections: 28233 });
  t.assert.deepEqual([wrapped[28231]!.client, wrapped[28232]!.client], ['192.168.0.2:60999', '192.168.0.2:32768'], 'ports wrap around the range');
  t.assert.deepEqual(compareStream({ ...shape, clientIP: 'fd00::1', connections: 1 })[0], { kind: 'open', at: 0, client: '[fd00::1]:32768', durationSeconds: 0.01 });
});

const hop = (table: string, chain: string, rule: string, depth: number): Hop => ({ table, chain, rule, target: '', depth });
const positions = new Map([
  ['nat KUBE-SERVICES -A KUBE-SERVICES a', 1],
  ['nat KUBE-SERVICES -A KUBE-SERVICES b', 7],
  ['nat KUBE-SVC-X -A KUBE-SVC-X mark', 1],
  ['nat KUBE-SVC-X -A KUBE-SVC-X ep2', 3],
  ['nat KUBE-MARK-MASQ -A KUBE-MARK-MASQ m', 1],
  ['nat KUBE-SEP-2 -A KUBE-SEP-2 dnat', 2],
]);

const pathCases: { name: string; hops: Hop[]; want: number }[] = [
  { name: 'an assumed jump counts one', hops: [hop('nat', 'OUTPUT', '-A OUTPUT -j KUBE-SERVICES', 0)], want: 1 },
  {
    name: 'the rules before each match count, per chain visit, returns included',
    hops: [
      hop('nat', 'OUTPUT', '-A OUTPUT -j KUBE-SERVICES', 0),
      hop('nat', 'KUBE-SERVICES', '-A KUBE-SERVICES b', 1),
      hop('nat', 'KUBE-SVC-X', '-A KUBE-SVC-X mark', 2),
      hop('nat', 'KUBE-MARK-MASQ', '-A KUBE-MARK-MASQ m', 3),
      hop('nat', 'KUBE-SVC-X', '-A KUBE-SVC-X ep2', 2),
      hop('nat', 'KUBE-SEP-2', '-A KUBE-SEP-2 dnat', 3),
    ],
    // 1 (assumed) + 7 + 1 + 1 + (3 - 1) + 2
    want: 14,
  },
  { name: 'no hops, no rules', hops: [], want: 0 },
];

for (const c of pathCases) {
  test(`rules checked: ${c.name}`, (t) => {
    t.plan(1);
    t.assert.equal(rulesCheckedOnPath(c.hops, positions), c.want);
  });
}

/** The one row of `mode` (IPVS: with `scheduler`) that compare's simulation makes. */
function rowOf(target: ReturnType<typeof targetOf>['target'], candidates: ReturnType<typeof targetOf>['candidates'], stream: StreamShape, mode: 'iptables' | 'ipvs', scheduler: string | undefined, seed: number): CompareRow {
  const rows = simulatedRows(node, target, candidates, stream, { modes: [mode], schedulers: scheduler === undefined ? ['rr'] : [scheduler], seed });
  if (rows.length !== 1) throw new Error(`${mode}: ${rows.length} rows`);
  return rows[0]!;
}

const simulationCases: { name: string; spec: string; mode: 'iptables' | 'ipvs'; scheduler?: string; check: (counts: number[], refused: number) => boolean }[] = [
  { name: 'iptables spreads a ClusterIP randomly over its three endpoints', spec: 'svc/web', mode: 'iptables', check: (c) => c.length === 3 && c.every((n) => n > 150) },
  { name: 'iptables keeps ClientIP affinity: one endpoint takes everything', spec: 'svc/api', mode: 'iptables', check: (c) => c.filter((n) => n > 0).length === 1 },
  { name: 'ipvs rr takes turns exactly', spec: 'svc/web', mode: 'ipvs', scheduler: 'rr', check: (c) => c.join() === '200,200,200' },
  { name: 'ipvs sh hashes the one client to one endpoint', spec: 'node-a:30080', mode: 'ipvs', scheduler: 'sh', check: (c) => c.filter((n) => n > 0).length === 1 },
  { name: 'ipvs keeps ClientIP affinity with persistence', spec: 'svc/api', mode: 'ipvs', scheduler: 'rr', check: (c) => c.filter((n) => n > 0).length === 1 },
];

for (const c of simulationCases) {
  test(`simulated: ${c.name}`, (t) => {
    t.plan(4);
    const { target, candidates } = targetOf(c.spec);
    const row = rowOf(target, candidates, shape, c.mode, c.scheduler, 1);
    const counts = row.endpoints.map((e) => e.connections);
    t.assert.equal(counts.reduce((a, b) => a + b, 0) + row.refusedConnections!, shape.connections, 'every connection is placed or refused');
    t.assert.equal(c.check(counts, row.refusedConnections!), true, `${row.label}: ${JSON.stringify(row.endpoints)}`);
    t.assert.equal(row.decision!.decisionsPerSecond > 0, true);
    t.assert.equal(row.decision!.rulesPerLookup! > 3, true, JSON.stringify(row.decision));
  });
}

test('simulated ipvs sh with the client hashed to a draining dest refuses (no sh-fallback), as the kernel does', (t) => {
  t.plan(2);
  const { target, candidates } = targetOf('svc/shop');
  const row = rowOf(target, candidates, shape, 'ipvs', 'sh', 1);
  t.assert.equal(row.endpoints.some((e) => e.endpoint === '10.244.1.10:8443'), true, 'the draining dest is listed');
  // Every connection comes from one client address, so all hash to the same (draining) bucket.
  t.assert.equal(row.refusedConnections, shape.connections, JSON.stringify(row.endpoints));
});

test('IPVS mode checks fewer rules per new connection than iptables mode on a ClusterIP', (t) => {
  t.plan(1);
  const { target, candidates } = targetOf('svc/web');
  const iptables = rowOf(target, candidates, shape, 'iptables', undefined, 1).decision!.rulesPerLookup!;
  const ipvs = rowOf(target, candidates, shape, 'ipvs', 'rr', 1).decision!.rulesPerLookup!;
  t.assert.equal(ipvs < iptables, true, `ipvs ${ipvs}, iptables ${iptables}`);
});

test('the same seed gives the same iptables spread', (t) => {
  t.plan(1);
  const { target, candidates } = targetOf('svc/web');
  const counts = (seed: number): number[] => rowOf(target, candidates, { ...shape, connections: 100 }, 'iptables', undefined, seed).endpoints.map((e) => e.connections);
  t.assert.deepEqual(counts(7), counts(7));
});
