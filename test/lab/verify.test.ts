/**
 * The differential check's judgement (pure), on tries made up from what a kernel could report:
 * agreement passes, and each way the kernel can disagree with the trace is caught with its
 * evidence (an endpoint outside the set, a skewed spread, an endpoint never chosen, masquerade,
 * a different rule path, REJECT where a DNAT was predicted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type FlowCase, predictedCategories, triesFor } from '../../src/lab/flows.js';
import { kernelMode } from '../../src/lab/kernel-modes.js';
import type { ConntrackEntry, TraceEvent, TracedPacket } from '../../src/lab/kernel-text.js';
import { compileForLab } from '../../src/lab/lab.js';
import type { ProbeTry } from '../../src/lab/probe.js';
import { LOST_RECORD, PathIndex, kernelCategory, lostRecordLimit, verifyCase } from '../../src/lab/verify.js';
import { loadCluster } from '../../src/manifest/load.js';
import { driverOf } from '../../src/node/modes.js';
import type { Hop } from '../../src/trace/types.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

const CLIENT = '100.64.0.16';
const WEB = { dst: '10.96.100.20', dport: 80 };

async function setup(): Promise<{ c: FlowCase; tracer: ReturnType<ReturnType<typeof driverOf>['tracer']>; index: PathIndex; hopsTo: (endpoint: string) => readonly Hop[] }> {
  const cluster = await loadCluster(['rules/example']);
  const node = resolveNode(cluster);
  const states = buildProxierStates(cluster, node).filter((s) => s.family === 4);
  // The lab's own compile (not loaded: no kernel here), so the rule places are what a lab loads.
  const ruleset = compileForLab({ node, states }, 'iptables')[0];
  const kernel = kernelMode('iptables');
  const rendered = kernel.renderedRules(ruleset!);
  // A kernel listing: handles 1..n in each chain, texts as rendered.
  const handles = new Map([...rendered].map(([chain, rules]) => [chain, rules.map((_, i) => i + 1)]));
  const index = new PathIndex(kernel, [ruleset!], handles, rendered);
  const tracer = driverOf(ruleset!.compiled).tracer(ruleset!.compiled);
  const predicted = tracer.trace({ proto: 'tcp', src: CLIENT, ...WEB });
  const categories = predictedCategories(predicted);
  const tries = triesFor(Math.min(...categories.values()), categories.size, 1e-6, 2000);
  const c: FlowCase = {
    name: 'web external', kind: 'external', spn: 'default/web:http', family: 4, proto: 'tcp', ...WEB, fromNode: false,
    sources: [CLIENT], triesPerSource: tries, tracedPerSource: 3, tracedSources: 1, sequential: false, coverage: true, timeoutMs: 2000, predicted,
  };
  const hopsTo = (endpoint: string): readonly Hop[] => {
    for (let seed = 1; seed < 500; seed++) {
      const sample = tracer.trace({ proto: 'tcp', src: CLIENT, ...WEB }, { seed }).sample!;
      if (sample.endpoint === endpoint) return sample.hops;
    }
    throw new Error(`no walk to ${endpoint}`);
  };
  return { c, tracer, index, hopsTo };
}

function makeTry(index: PathIndex, hops: readonly Hop[] | undefined, endpoint: string, n: number, opts: { masquerade?: boolean; traced?: boolean } = {}): ProbeTry & { src: string } {
  const [ip, port] = endpoint.split(':');
  const conntrack: ConntrackEntry = {
    key: { proto: 'tcp', src: CLIENT, sport: 30000 + n, ...WEB },
    replySource: { ip: ip!, port: Number(port) },
    replyDestination: opts.masquerade === false ? { ip: CLIENT, port: 30000 + n } : { ip: '10.244.0.1', port: 30000 + n },
  };
  let trace: TracedPacket | undefined;
  if (opts.traced && hops !== undefined) {
    // Each hop as the kernel would trace it: its chain and its handle (here, its place).
    const events: TraceEvent[] = hops.filter((h) => h.table !== '').map((h) => ({
      table: `ip ${h.table}`, chain: h.chain, kind: 'rule', verdict: 'continue', text: '', handle: Number(/#(\d+)$/.exec(index.hop(h, 4).key)![1]),
    }));
    trace = { id: String(n), key: conntrack.key, events };
  }
  return { flow: 0, order: n, sport: 30000 + n, traced: trace !== undefined, outcome: 'connected', conntrack, ...(trace ? { trace } : {}), src: CLIENT };
}

const ENDPOINTS = ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'];

test('a kernel that does what the trace says passes', async () => {
  const { c, tracer, index, hopsTo } = await setup();
  const tries = Array.from({ length: c.triesPerSource }, (_, n) => makeTry(index, hopsTo(ENDPOINTS[n % 3]!), ENDPOINTS[n % 3]!, n, { traced: n < 3 }));
  const report = verifyCase(c, tries, tracer, index, { alpha: 1e-6, servers: true });
  assert.deepEqual(report.problems, []);
  assert.equal(report.paths.length, 3);
  assert.ok(report.paths.every((p) => p.firstDifference === -1 && p.kernel.length > 5));
  assert.ok(report.chiSquare !== undefined && report.chiSquare.pValue > 0.5, JSON.stringify(report.chiSquare));
});

const disagreements: { name: string; tries: (s: Awaited<ReturnType<typeof setup>>) => (ProbeTry & { src: string })[]; want: RegExp }[] = [
  {
    name: 'an endpoint the trace does not predict',
    tries: ({ c, index }) => Array.from({ length: c.triesPerSource }, (_, n) => makeTry(index, undefined, n === 0 ? '10.244.0.8:8443' : ENDPOINTS[n % 3]!, n)),
    want: /the kernel DNATed it to 10\.244\.0\.8:8443 and masqueraded it.*kpsim predicts 10\.244\.0\.5:8080, 10\.244\.1\.6:8080, 10\.244\.1\.7:8080/,
  },
  {
    name: 'a skewed spread',
    tries: ({ index }) => Array.from({ length: 300 }, (_, n) => makeTry(index, undefined, ENDPOINTS[n % 10 < 8 ? 0 : 1 + (n % 2)]!, n)),
    want: /do not follow kpsim's probabilities: chi-square .* p=.* < alpha 1e-6/,
  },
  {
    name: 'an endpoint never chosen',
    tries: ({ c, index }) => Array.from({ length: c.triesPerSource }, (_, n) => makeTry(index, undefined, ENDPOINTS[n % 2]!, n)),
    want: /kpsim predicts 10\.244\.1\.7:8080 with p=0\.3333, the kernel never chose it/,
  },
  {
    name: 'no masquerade where the trace masquerades',
    tries: ({ c, index }) => Array.from({ length: c.triesPerSource }, (_, n) => makeTry(index, undefined, ENDPOINTS[n % 3]!, n, { masquerade: n !== 5 })),
    want: /port 30005 to 10\.244\.1\.7:8080: the kernel did not masquerade it; kpsim predicts masquerade=true/,
  },
  {
    name: 'a different rule path',
    tries: ({ c, index, hopsTo }) => Array.from({ length: c.triesPerSource }, (_, n) => {
      const t = makeTry(index, hopsTo(ENDPOINTS[n % 3]!), ENDPOINTS[n % 3]!, n, { traced: n === 0 });
      if (n !== 0) return t;
      const events = [...t.trace!.events];
      events.splice(2, 1); // the kernel skipped the KUBE-MARK-MASQ jump
      return { ...t, trace: { ...t.trace!, events } };
    }),
    want: /path to 10\.244\.0\.5:8080 from 100\.64\.0\.16 differs at step 3:\n[\s\S]*>> {2}3 kernel: ip nat KUBE-MARK-MASQ #1/,
  },
  {
    name: 'REJECT where a DNAT is predicted',
    tries: ({ c, index }) => Array.from({ length: c.triesPerSource }, (_, n) => {
      const t = makeTry(index, undefined, ENDPOINTS[n % 3]!, n);
      return n === 0 ? { flow: 0, order: 0, sport: 30000, traced: false, outcome: 'refused' as const, src: CLIENT } : t;
    }),
    want: /port 30000: the kernel rejected it, the client saw refused; kpsim predicts/,
  },
];

for (const d of disagreements) {
  test(`a disagreement is caught: ${d.name}`, async () => {
    const s = await setup();
    const report = verifyCase(s.c, d.tries(s), s.tracer, s.index, { alpha: 1e-6, servers: true });
    assert.ok(report.problems.some((p) => d.want.test(p)), `want ${d.want}; problems:\n${report.problems.join('\n')}`);
  });
}

test('what a try came to, from conntrack, the trace and the client', async () => {
  const { index } = await setup();
  const base = { flow: 0, order: 0, sport: 10000, traced: false };
  const entry = (dnat: boolean): ConntrackEntry => ({
    key: { proto: 'tcp', src: CLIENT, sport: 10000, ...WEB },
    replySource: dnat ? { ip: '10.244.0.5', port: 8080 } : { ip: WEB.dst, port: WEB.dport },
    replyDestination: { ip: CLIENT, port: 10000 },
  });
  const cases: { name: string; t: ProbeTry; want: string }[] = [
    { name: 'DNAT in conntrack', t: { ...base, outcome: 'connected', conntrack: entry(true) }, want: '10.244.0.5:8080' },
    { name: 'no NAT', t: { ...base, outcome: 'connected', conntrack: entry(false) }, want: 'NONE' },
    { name: 'refused, no connection', t: { ...base, outcome: 'refused' }, want: 'REJECT' },
    { name: 'timed out, no connection', t: { ...base, outcome: 'timeout' }, want: 'DROP' },
    { name: 'connected, no entry, no trace: a lost record, not REJECT|DROP', t: { ...base, outcome: 'connected' }, want: LOST_RECORD },
    {
      name: 'connected, traced, no entry: a lost record', want: LOST_RECORD,
      t: { ...base, outcome: 'connected', traced: true, trace: { id: '1', key: undefined, events: [{ table: 'ip nat', chain: 'KUBE-SERVICES', kind: 'rule', verdict: 'jump KUBE-SVC-X', text: 'jump KUBE-SVC-X' }] } },
    },
    { name: 'an entry the kernel evicted, heard from its destroy event', t: { ...base, outcome: 'connected', conntrack: entry(true), evicted: true }, want: '10.244.0.5:8080' },
    { name: 'a datagram, nothing recorded', t: { ...base, outcome: 'sent' }, want: 'REJECT|DROP' },
    { name: 'refused by the node\'s own rules', t: { ...base, outcome: 'denied' }, want: 'REJECT|DROP' },
    { name: 'confirmed, then refused, untraced', t: { ...base, outcome: 'refused', conntrack: entry(false) }, want: 'NONE|REJECT' },
    {
      name: 'a traced drop decides', want: 'DROP',
      t: { ...base, outcome: 'sent', trace: { id: '1', key: undefined, events: [{ table: 'ip filter', chain: 'KUBE-SERVICES', kind: 'rule', verdict: 'drop', text: 'drop' }] } },
    },
  ];
  for (const c of cases) assert.equal(kernelCategory(c.t, index), c.want, c.name);
});

test('lost records a case may leave out: 1% of its tries, at least one, at most three', () => {
  const cases: [tries: number, limit: number][] = [[3, 1], [37, 1], [199, 1], [200, 2], [328, 3], [2000, 3]];
  for (const [tries, limit] of cases) assert.equal(lostRecordLimit(tries), limit, `${tries} tries`);
});

test('a try that connected with no record is left out and counted; a refused or timed-out one is still judged; too many lost fail', async () => {
  const s = await setup();
  const { c, index } = s;
  const lostTry = (n: number): ProbeTry & { src: string } => ({ flow: 0, order: n, sport: 30000 + n, traced: false, outcome: 'connected', src: CLIENT });
  const cases: { name: string; change: (n: number) => (ProbeTry & { src: string }) | undefined; want: { excluded: number; lost: number; evicted: number }; problem?: RegExp }[] = [
    { name: 'one lost record', change: (n) => (n === 4 ? lostTry(n) : undefined), want: { excluded: 1, lost: 1, evicted: 0 } },
    {
      name: 'a REJECT where a DNAT is predicted (refused, no entry)', want: { excluded: 0, lost: 0, evicted: 0 },
      change: (n) => (n === 4 ? { ...lostTry(n), outcome: 'refused' } : undefined), problem: /port 30004: the kernel rejected it, the client saw refused; kpsim predicts/,
    },
    {
      name: 'a DROP where a DNAT is predicted (timed out, no entry)', want: { excluded: 0, lost: 0, evicted: 0 },
      change: (n) => (n === 4 ? { ...lostTry(n), outcome: 'timeout' } : undefined), problem: /port 30004: the kernel dropped it, the client saw timeout; kpsim predicts/,
    },
    {
      name: 'more lost records than the limit', want: { excluded: 2, lost: 2, evicted: 0 },
      change: (n) => (n === 4 || n === 9 ? lostTry(n) : undefined), problem: new RegExp(`^2 of ${c.triesPerSource} tries connected, yet the kernel kept no record of them .*more than the 1 a case may leave out`),
    },
    {
      name: 'an evicted entry, heard: judged like any', want: { excluded: 0, lost: 0, evicted: 1 },
      change: (n) => (n === 4 ? { ...makeTry(index, undefined, ENDPOINTS[n % 3]!, n), evicted: true } : undefined),
    },
  ];
  for (const k of cases) {
    const tries = Array.from({ length: c.triesPerSource }, (_, n) => k.change(n) ?? makeTry(index, undefined, ENDPOINTS[n % 3]!, n));
    const report = verifyCase(c, tries, s.tracer, index, { alpha: 1e-6, servers: true });
    assert.deepEqual({ excluded: report.excluded, lost: report.lost, evicted: report.evicted }, k.want, `${k.name}: ${JSON.stringify(report.kernel)}`);
    if (k.problem === undefined) assert.deepEqual(report.problems, [], k.name);
    else assert.ok(report.problems.some((p) => k.problem!.test(p)), `${k.name}: want ${k.problem}; problems:\n${report.problems.join('\n')}`);
    assert.ok(!Object.keys(report.kernel).includes('REJECT|DROP') && !Object.keys(report.kernel).includes(LOST_RECORD), `${k.name}: ${JSON.stringify(report.kernel)}`);
  }
});

test('tries per case: enough that a miss is rarer than 1e-6 and 5 are expected per endpoint', () => {
  assert.equal(triesFor(1, 1, 1e-6, 2000), 3);
  assert.equal(triesFor(1 / 3, 3, 1e-6, 2000), 37);
  assert.equal(triesFor(0.05, 20, 1e-6, 2000), 328);
  assert.equal(triesFor(0.001, 1000, 1e-6, 2000), 2000, 'capped');
});
