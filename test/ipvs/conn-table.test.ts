/**
 * The connection table: TCP state changes move a dest between its active and inactive counters
 * (ip_vs_proto_tcp.c set_tcp_state with tcp_state_active_table), timers expire connections with
 * the default timeouts, UDP stays inactive, and persistence templates are held by the
 * connections they control (ip_vs_conn_expire's 60 s delay).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnTable, nextTcpState, tcpStates, type Connection, type TcpState } from '../../src/ipvs/conn-table.js';
import { createScheduler } from '../../src/ipvs/virtual-service.js';
import { addrOf, rows, serviceWith } from './schedulers/fixtures.js';

function counters(table: ConnTable): [number, number][] {
  return table.virtualService.dests().map((d) => [d.activeConns, d.inactConns]);
}

test('the TCP state table: a few rows read off ip_vs_proto_tcp.c', () => {
  const rowsOf: [TcpState, 'input' | 'output', 'syn' | 'fin' | 'ack' | 'rst', TcpState][] = [
    ['NONE', 'input', 'syn', 'SYN_RECV'],
    ['SYN_RECV', 'output', 'syn', 'SYN_RECV'],
    ['SYN_RECV', 'input', 'ack', 'ESTABLISHED'],
    ['NONE', 'input', 'ack', 'ESTABLISHED'],
    ['ESTABLISHED', 'input', 'fin', 'CLOSE_WAIT'],
    ['CLOSE_WAIT', 'output', 'fin', 'TIME_WAIT'],
    ['ESTABLISHED', 'output', 'fin', 'FIN_WAIT'],
    ['FIN_WAIT', 'input', 'fin', 'TIME_WAIT'],
    ['ESTABLISHED', 'input', 'rst', 'CLOSE'],
    ['SYN_RECV', 'input', 'rst', 'SYN_RECV'],
    ['TIME_WAIT', 'input', 'syn', 'SYN_RECV'],
    ['LAST_ACK', 'input', 'ack', 'CLOSE'],
  ];
  for (const [from, direction, flag, to] of rowsOf) assert.equal(nextTcpState(from, direction, { [flag]: true }), to, `${from} ${direction} ${flag}`);
  // RST beats SYN beats FIN beats ACK; no flag at all means CLOSE.
  assert.equal(nextTcpState('ESTABLISHED', 'input', { syn: true, rst: true }), 'CLOSE');
  assert.equal(nextTcpState('NONE', 'input', { syn: true, fin: true }), 'SYN_RECV');
  assert.equal(nextTcpState('ESTABLISHED', 'input', {}), 'CLOSE');
  assert.equal(tcpStates.length, 11);
});

interface Scenario {
  name: string;
  /** Each step runs on the table and the connection; expected [state, active, inactive] after it. */
  steps: { do: (t: ConnTable, c: Connection) => Connection | undefined | void; want: [string, number, number] }[];
}

const lifecycles: Scenario[] = [
  {
    name: 'handshake, client close, TIME_WAIT for 120 s',
    steps: [
      { do: () => undefined, want: ['SYN_RECV', 1, 0] },
      { do: (t, c) => t.establish(c), want: ['ESTABLISHED', 1, 0] },
      { do: (t, c) => t.closeFromClient(c), want: ['TIME_WAIT', 0, 1] },
      { do: (t) => t.advance(119.5), want: ['TIME_WAIT', 0, 1] },
      { do: (t) => t.advance(0.5), want: ['gone', 0, 0] },
    ],
  },
  {
    name: 'server closes first: FIN_WAIT, then TIME_WAIT',
    steps: [
      { do: (t, c) => t.establish(c), want: ['ESTABLISHED', 1, 0] },
      { do: (t, c) => t.packet(c, 'output', { fin: true, ack: true }), want: ['FIN_WAIT', 0, 1] },
      { do: (t, c) => t.packet(c, 'input', { fin: true, ack: true }), want: ['TIME_WAIT', 0, 1] },
    ],
  },
  {
    name: 'a reset: CLOSE for 10 s',
    steps: [
      { do: (t, c) => t.establish(c), want: ['ESTABLISHED', 1, 0] },
      { do: (t, c) => t.packet(c, 'input', { rst: true }), want: ['CLOSE', 0, 1] },
      { do: (t) => t.advance(9), want: ['CLOSE', 0, 1] },
      { do: (t) => t.advance(1), want: ['gone', 0, 0] },
    ],
  },
  {
    name: 'a SYN never answered: SYN_RECV counts active until its 60 s run out',
    steps: [
      { do: (t) => t.advance(59), want: ['SYN_RECV', 1, 0] },
      { do: (t) => t.advance(1), want: ['gone', 0, 0] },
    ],
  },
  {
    name: 'an idle ESTABLISHED connection expires after 900 s; any packet re-arms it',
    steps: [
      { do: (t, c) => t.establish(c), want: ['ESTABLISHED', 1, 0] },
      { do: (t) => t.advance(800), want: ['ESTABLISHED', 1, 0] },
      { do: (t, c) => t.packet(c, 'input', { ack: true }), want: ['ESTABLISHED', 1, 0] },
      { do: (t) => t.advance(899), want: ['ESTABLISHED', 1, 0] },
      { do: (t) => t.advance(1), want: ['gone', 0, 0] },
    ],
  },
];

for (const scenario of lifecycles) {
  test(`tcp: ${scenario.name}`, () => {
    const table = new ConnTable(serviceWith('rr', rows('A1')));
    let conn = table.open('10.1.0.1:40000')!;
    assert.ok(conn);
    scenario.steps.forEach((step, i) => {
      const after = step.do(table, conn);
      if (after) conn = after;
      const live = table.connections().find((c) => c.id === conn.id);
      const [active, inactive] = counters(table)[0]!;
      assert.deepEqual([live?.state ?? 'gone', active, inactive], step.want, `after step ${i}`);
    });
  });
}

test('udp: always inactive, 300 s re-armed by every datagram', () => {
  const table = new ConnTable(serviceWith('rr', rows('A1'), { protocol: 'udp' }));
  const conn = table.open('10.1.0.1:5353')!;
  assert.equal(conn.state, 'UDP');
  assert.deepEqual(counters(table), [[0, 1]]);
  table.advance(299);
  table.packet(conn, 'output');
  table.advance(299);
  assert.deepEqual(counters(table), [[0, 1]]);
  table.advance(1);
  assert.deepEqual(counters(table), [[0, 0]]);
});

test('lc sees the counters the connection table keeps', () => {
  const table = new ConnTable(serviceWith('lc', rows('A1 B1')));
  const first = table.open('10.1.0.1:1')!;
  assert.equal(first.addr, addrOf('B'));
  assert.equal(table.open('10.1.0.1:2')!.addr, addrOf('A'));
  // B's connection closes: TIME_WAIT is inactive, 1 < 256, so B is cheaper than A.
  table.closeFromClient(table.establish(first)!);
  assert.equal(table.open('10.1.0.1:3')!.addr, addrOf('B'));
});

test('timeouts can be set per state (ipvsadm --set)', () => {
  const table = new ConnTable(serviceWith('rr', rows('A1')), { tcpTimeoutsSeconds: { ESTABLISHED: 30 } });
  table.establish(table.open('10.1.0.1:1')!);
  table.advance(30);
  assert.deepEqual(counters(table), [[0, 0]]);
  assert.throws(() => new ConnTable(createScheduler('rr'), { udpTimeoutSeconds: 0 }), /seconds/);
});

test('persistence: a template that still controls connections is put off by 60 s at a time', () => {
  // Template timeout 10 s. The connection opened at 0 closes at 5 and leaves TIME_WAIT at 125.
  // The template's timer fires at 10 (1 controlled: put off to 70, timeout now 60), at 70 (put
  // off to 130) and at 130, when nothing is controlled any more: it expires then.
  const expiresAt = (checkAt: number): number | undefined => {
    const vs = serviceWith('rr', rows('A1 B1'), { persistence: { timeoutSeconds: 10 } });
    const table = new ConnTable(vs);
    const conn = table.establish(table.open('10.1.0.1:1000')!)!;
    table.advance(5);
    table.closeFromClient(conn);
    table.advance(checkAt - 5);
    return vs.templates()[0]?.expiresAt;
  };
  assert.equal(expiresAt(30), 70);
  assert.equal(expiresAt(125), 130);
  assert.equal(expiresAt(129), 130);
  assert.equal(expiresAt(130), undefined);
});

test('persistence: a new connection through a delayed template re-arms it with 60 s, not the service timeout', () => {
  const vs = serviceWith('rr', rows('A1 B1'), { persistence: { timeoutSeconds: 10 } });
  const table = new ConnTable(vs);
  const first = table.establish(table.open('10.1.0.1:1000')!)!;
  assert.equal(first.addr, addrOf('B'));
  table.advance(30);
  const second = table.open('10.1.0.1:2000')!;
  assert.equal(second.addr, addrOf('B'), 'same dest: the template outlived its 10 s');
  assert.deepEqual(vs.templates().map((t) => [t.expiresAt, t.controls]), [[90, 2]]);
  assert.ok(second.persistent);
});

test('persistence: without controlled connections the template goes at its own timeout', () => {
  const vs = serviceWith('rr', rows('A1 B1'), { persistence: { timeoutSeconds: 10 } });
  const table = new ConnTable(vs, { tcpTimeoutsSeconds: { SYN_RECV: 2 } });
  assert.equal(table.open('10.1.0.1:1')!.addr, addrOf('B'));
  table.advance(10);
  assert.deepEqual(vs.templates(), []);
  assert.equal(table.open('10.1.0.1:2')!.addr, addrOf('A'));
});

test('expire_nodest_conn: a packet for a connection whose dest was deleted expires it', () => {
  for (const expireNodestConn of [false, true]) {
    const vs = serviceWith('rr', rows('A1 B1'));
    const table = new ConnTable(vs, { expireNodestConn });
    const conn = table.establish(table.open('10.1.0.1:1')!)!;
    vs.removeDest(conn.addr);
    const after = table.packet(conn, 'input', { ack: true });
    assert.equal(after === undefined, expireNodestConn);
    // Re-adding the dest shows what it still holds: the connection only when it was kept.
    vs.addDest({ addr: conn.addr, weight: 1 });
    assert.deepEqual(vs.dests()[0], { addr: conn.addr, weight: 1, activeConns: expireNodestConn ? 0 : 1, inactConns: 0 });
  }
});

test('no dest available: open refuses and nothing is counted', () => {
  const table = new ConnTable(serviceWith('rr', rows('A0')));
  assert.equal(table.open('10.1.0.1:1'), undefined);
  assert.deepEqual(table.connections(), []);
  assert.deepEqual(counters(table), [[0, 0]]);
});

test('a service with an injected clock: expireDue fires what fell due', () => {
  let now = 0;
  const table = new ConnTable(serviceWith('rr', rows('A1'), { now: () => now }));
  table.packet(table.establish(table.open('10.1.0.1:1')!)!, 'input', { rst: true });
  now = 9;
  table.expireDue();
  assert.deepEqual(counters(table), [[0, 1]]);
  now = 10;
  table.expireDue();
  assert.deepEqual(counters(table), [[0, 0]]);
});

test('SCTP services are refused: their state machine is not modelled', () => {
  assert.throws(() => new ConnTable(createScheduler('rr', { protocol: 'sctp' })), (e: unknown) => (e as { code?: string }).code === 'KPSIM_ERR_USAGE_BAD_FLAG');
});
