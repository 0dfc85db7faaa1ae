/**
 * The replay simulator on an IPVS virtual service (through its connection table); expectations
 * follow the TCP timeouts (TIME_WAIT 120 s, ESTABLISHED 900 s) and rr's list order. The iptables
 * mode's picker (the rules walked) has its own tests: rule-walk-picker.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipvsPicker } from '../../src/simulate/picker.js';
import { replayConnections, type ConnectionEvent } from '../../src/simulate/replay.js';
import { nameOf, rows, serviceWith } from '../ipvs/schedulers/fixtures.js';

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
