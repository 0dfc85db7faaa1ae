/**
 * The replay simulator on an IPVS virtual service (through its connection table) and on the
 * iptables-style probability picker; expectations follow the TCP timeouts (TIME_WAIT 120 s,
 * ESTABLISHED 900 s), rr's list order, and xt_statistic's 31-bit probability.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipvsPicker, kubeProxyProbabilities, probabilityPicker } from '../../src/ipvs/picker.js';
import { replayConnections, type ConnectionEvent } from '../../src/ipvs/replay.js';
import { seededRng } from '../../src/util/random.js';
import { addrOf, nameOf, rows, serviceWith } from './schedulers/fixtures.js';

const open = (at: number, client: string, extra: Partial<Extract<ConnectionEvent, { kind: 'open' }>> = {}): ConnectionEvent => ({ kind: 'open', at, client, ...extra });

function summary(backends: { addr: string; received: number; activeConns: number; inactConns: number }[]): string[] {
  return backends.map((b) => `${nameOf(b.addr)} got ${b.received}, ${b.activeConns} active, ${b.inactConns} inactive`);
}

test('rr: the pick sequence, and what each backend holds at the end', () => {
  // Six connections 1 s apart, each lasting 10 s. At 12 s the first three (opened at 0, 1, 2)
  // have closed and sit in TIME_WAIT (inactive); the other three are ESTABLISHED (active).
  const events = [0, 1, 2, 3, 4, 5].map((t) => open(t, `10.1.0.${t + 1}:4000`, { durationSeconds: 10 }));
  const report = replayConnections(serviceWith('rr', rows('A1 B1 C1')), events, { endAt: 12 });
  assert.deepEqual(report.picks.map(nameOf), ['C', 'B', 'A', 'C', 'B', 'A']);
  assert.deepEqual(summary(report.backends), ['C got 2, 1 active, 1 inactive', 'B got 2, 1 active, 1 inactive', 'A got 2, 1 active, 1 inactive']);
  assert.deepEqual([report.opened, report.refused, report.closed, report.endAt, report.label], [6, 0, 3, 12, 'ipvs rr']);
});

test('closed connections leave the counters once TIME_WAIT (120 s) is over', () => {
  const events = [open(0, '10.1.0.1:1', { durationSeconds: 5 })];
  const at = (endAt: number): string[] => summary(replayConnections(serviceWith('rr', rows('A1')), events, { endAt }).backends);
  assert.deepEqual(at(124), ['A got 1, 0 active, 1 inactive']);
  assert.deepEqual(at(125), ['A got 1, 0 active, 0 inactive']);
});

test('close events name the connection they end', () => {
  const events: ConnectionEvent[] = [
    open(0, '10.1.0.1:1', { id: 'x' }),
    open(0, '10.1.0.2:1', { id: 'y' }),
    { kind: 'close', at: 3, id: 'y' },
    { kind: 'close', at: 4, id: 'unknown' },
  ];
  const report = replayConnections(serviceWith('rr', rows('A1 B1')), events, { endAt: 10 });
  assert.deepEqual(summary(report.backends), ['B got 1, 1 active, 0 inactive', 'A got 1, 0 active, 1 inactive']);
  assert.equal(report.closed, 1);
});

test('an idle connection times out after 900 s unless keepalives re-arm it', () => {
  const idle = replayConnections(serviceWith('rr', rows('A1')), [open(0, '10.1.0.1:1')], { endAt: 1000 });
  const kept = replayConnections(serviceWith('rr', rows('A1')), [open(0, '10.1.0.1:1', { keepaliveSeconds: 300 })], { endAt: 1000 });
  assert.deepEqual(summary(idle.backends), ['A got 1, 0 active, 0 inactive']);
  assert.deepEqual(summary(kept.backends), ['A got 1, 1 active, 0 inactive']);
});

test('lc: closing connections steer the next picks', () => {
  // t=0: B, A (both now 1 active). t=1: the connection on B closes (TIME_WAIT: overhead 1 < 256).
  // t=2: B (cheaper), t=3: A? B has 1 active + 1 inactive = 257, A 256: A.
  const events = [
    open(0, '10.1.0.1:1', { durationSeconds: 1 }),
    open(0, '10.1.0.2:1'),
    open(2, '10.1.0.3:1'),
    open(3, '10.1.0.4:1'),
  ];
  const report = replayConnections(serviceWith('lc', rows('A1 B1')), events);
  assert.deepEqual(report.picks.map(nameOf), ['B', 'A', 'B', 'A']);
});

test('a service with no available dest refuses connections', () => {
  const report = replayConnections(serviceWith('rr', rows('A0')), [open(0, '10.1.0.1:1'), open(1, '10.1.0.2:1')]);
  assert.deepEqual(report.picks, [null, null]);
  assert.equal(report.refused, 2);
  assert.equal(report.opened, 0);
});

test('persistence through the replay: one client sticks while its template lives', () => {
  const vs = serviceWith('rr', rows('A1 B1'), { persistence: { timeoutSeconds: 60 } });
  const events = [0, 10, 20].map((t) => open(t, `10.1.0.1:${4000 + t}`, { durationSeconds: 1 }));
  events.push(open(21, '10.1.0.2:1'));
  assert.deepEqual(replayConnections(vs, events).picks.map(nameOf), ['B', 'B', 'B', 'A']);
});

test('events are replayed in time order; equal times keep their order', () => {
  const events = [open(5, '10.1.0.5:1'), open(1, '10.1.0.1:1'), open(1, '10.1.0.2:1')];
  const report = replayConnections(ipvsPicker(serviceWith('rr', rows('A1 B1 C1'))), events);
  assert.deepEqual(report.picks.map(nameOf), ['C', 'B', 'A']);
  assert.equal(report.endAt, 5);
});

test('bad events are usage errors', () => {
  for (const event of [open(-1, '10.1.0.1:1'), open(0, '10.1.0.1:1', { durationSeconds: -2 }), open(0, '10.1.0.1:1', { keepaliveSeconds: 0 })]) {
    assert.throws(() => replayConnections(serviceWith('rr', rows('A1')), [event]), (e: unknown) => (e as { code?: string }).code === 'KPSIM_ERR_USAGE_BAD_FLAG');
  }
});

// ---- the iptables-style picker ----

test('kube-proxy probabilities: 1/(n - i), the last rule unconditional', () => {
  assert.deepEqual(kubeProxyProbabilities(['a:1', 'b:1', 'c:1', 'd:1']).map((r) => r.probability), [1 / 4, 1 / 3, 1 / 2, 1]);
});

test('probability picker: rules tried in order, 31-bit fixed-point comparison', () => {
  // 1/3 is stored as lround(2^31 / 3) = 715827883; 1/2 as 1073741824. A draw matches when the
  // 31-bit random number is below the stored value.
  const draws = [715827882, 715827883, 1073741823, 100].map((n) => n / 2 ** 31);
  let i = 0;
  const picker = probabilityPicker(kubeProxyProbabilities([addrOf('A'), addrOf('B'), addrOf('C')]), { rng: () => draws[i++]! });
  const got = [1, 2, 3].map((n) => nameOf(picker.pick(`10.1.0.${n}:1`)?.addr));
  // pick 1: 715827882 < 715827883 -> A. pick 2: 715827883 fails rule 1, 1073741823 < 1073741824 -> B.
  // pick 3: 100 < 715827883 -> A.
  assert.deepEqual(got, ['A', 'B', 'A']);
  let j = 0;
  const second = probabilityPicker(kubeProxyProbabilities([addrOf('A'), addrOf('B'), addrOf('C')]), { rng: () => [0.9, 0.9][j++]! });
  assert.equal(nameOf(second.pick('10.1.0.9:1')?.addr), 'C', 'both statistic rules miss: the last rule catches it');
});

test('probability picker: closed connections count inactive for the conntrack TIME_WAIT linger', () => {
  const picker = probabilityPicker([{ addr: addrOf('A'), probability: 1 }], { rng: seededRng(1) });
  const events = [open(0, '10.1.0.1:1', { durationSeconds: 5 }), open(0, '10.1.0.2:1')];
  const report = replayConnections(picker, events, { endAt: 100 });
  assert.deepEqual(summary(report.backends), ['A got 2, 1 active, 1 inactive']);
  assert.deepEqual(summary(replayConnections(probabilityPicker([{ addr: addrOf('A'), probability: 1 }], { rng: seededRng(1) }), events, { endAt: 125 }).backends),
    ['A got 2, 1 active, 0 inactive']);
});

test('the same stream against both modes: every connection is placed once in each', () => {
  const rng = seededRng(3);
  const events = Array.from({ length: 300 }, (_, i) => open(i * 0.5, `10.3.${i >> 8}.${i & 255}:5000`, { durationSeconds: 1 + Math.floor(rng() * 60) }));
  const addrs = ['A', 'B', 'C', 'D'].map(addrOf);
  const ipvs = replayConnections(serviceWith('rr', rows('A1 B1 C1 D1')), events, { endAt: 200 });
  const iptables = replayConnections(probabilityPicker(kubeProxyProbabilities(addrs), { rng: seededRng(9) }), events, { endAt: 200 });
  for (const report of [ipvs, iptables]) {
    assert.equal(report.picks.length, 300);
    assert.equal(report.backends.reduce((n, b) => n + b.received, 0), 300);
    assert.equal(report.closed, 300, 'every connection lasted at most 61 s and the replay ran to 200 s');
  }
  // rr spreads exactly evenly; the random picker only roughly.
  assert.deepEqual(ipvs.backends.map((b) => b.received), [75, 75, 75, 75]);
  assert.ok(iptables.backends.every((b) => b.received > 40 && b.received < 110), JSON.stringify(iptables.backends));
});
