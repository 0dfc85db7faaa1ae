/**
 * Scheduler shares of a compiled virtual server (what `kpsim trace --mode ipvs` reports as
 * probabilities), worked out from the kernel's schedulers (reference §3):
 * - rr/wrr over one cycle: 1/n, weight/sum;
 * - lc over one cycle from the current counters: the least loaded dests take the next round;
 * - sh: 256 buckets filled round-robin from the list front (weight 0 still takes one);
 * - mh: 4093 slots claimed one per dest per round, so n equal dests get ⌈4093/n⌉ or ⌊4093/n⌋,
 *   the dests at the front of the list getting the extra ones.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveServiceOf } from '../../src/ipvs/live-service.js';
import { pickFor, schedulerShares } from '../../src/ipvs/shares.js';
import { type RealServer, SVC_F_PERSISTENT, SVC_F_SCHED2, realServer, virtualServer } from '../../src/ipvs/table.js';

function dests(...specs: { ip: string; weight?: number; active?: number; quiesced?: boolean }[]): RealServer[] {
  return specs.map((s) => realServer({ ip: s.ip, port: 8080, weight: s.weight ?? 1, activeConns: s.active ?? 0, ...(s.quiesced ? { quiesced: true } : {}) }));
}

const cases: { name: string; scheduler: string; flags?: number; list: RealServer[]; want: { basis: string; shares: Record<string, number>; refused: number; over: number } }[] = [
  {
    name: 'rr: one cycle gives each dest one pick',
    scheduler: 'rr',
    list: dests({ ip: '10.0.0.3' }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' }),
    want: { basis: 'cycle', shares: { '10.0.0.3:8080': 1 / 3, '10.0.0.2:8080': 1 / 3, '10.0.0.1:8080': 1 / 3 }, refused: 0, over: 3 },
  },
  {
    name: 'rr: a draining weight-0 dest gets nothing',
    scheduler: 'rr',
    list: dests({ ip: '10.0.0.3', weight: 0, quiesced: true }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' }),
    want: { basis: 'cycle', shares: { '10.0.0.2:8080': 0.5, '10.0.0.1:8080': 0.5 }, refused: 0, over: 2 },
  },
  {
    name: 'wrr: weight / total over a cycle of sum(weight/gcd)',
    scheduler: 'wrr',
    list: dests({ ip: '10.0.0.2', weight: 6 }, { ip: '10.0.0.1', weight: 2 }),
    want: { basis: 'cycle', shares: { '10.0.0.2:8080': 0.75, '10.0.0.1:8080': 0.25 }, refused: 0, over: 4 },
  },
  {
    // overheads 512, 0, 0 → the 2nd (first in list order among the least); then 512, 256, 0 → the 3rd;
    // then 512, 256, 256 → the 2nd again.
    name: 'lc: the current counters skew the next round towards the idle dests',
    scheduler: 'lc',
    list: dests({ ip: '10.0.0.1', active: 2 }, { ip: '10.0.0.2' }, { ip: '10.0.0.3' }),
    want: { basis: 'cycle', shares: { '10.0.0.2:8080': 2 / 3, '10.0.0.3:8080': 1 / 3 }, refused: 0, over: 3 },
  },
  {
    name: 'sh: 256 buckets round-robin from the front, the first dest gets the odd one',
    scheduler: 'sh',
    list: dests({ ip: '10.0.0.3' }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' }),
    want: { basis: 'buckets', shares: { '10.0.0.3:8080': 86 / 256, '10.0.0.2:8080': 85 / 256, '10.0.0.1:8080': 85 / 256 }, refused: 0, over: 256 },
  },
  {
    name: 'sh without fallback: a weight-0 dest keeps a bucket per round, and lookups there find nothing',
    scheduler: 'sh',
    list: dests({ ip: '10.0.0.3', weight: 0, quiesced: true }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' }),
    want: { basis: 'buckets', shares: { '10.0.0.2:8080': 85 / 256, '10.0.0.1:8080': 85 / 256 }, refused: 86 / 256, over: 256 },
  },
  {
    name: 'mh: one slot per dest per round over 4093 slots',
    scheduler: 'mh',
    flags: SVC_F_SCHED2,
    list: dests({ ip: '10.0.0.3' }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' }),
    want: { basis: 'slots', shares: { '10.0.0.3:8080': 1365 / 4093, '10.0.0.2:8080': 1364 / 4093, '10.0.0.1:8080': 1364 / 4093 }, refused: 0, over: 4093 },
  },
  {
    name: 'mh: a dest quiesced to weight 0 keeps its slots (last_weight), so those lookups fail',
    scheduler: 'mh',
    flags: SVC_F_SCHED2,
    list: dests({ ip: '10.0.0.3', weight: 0, quiesced: true }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' }),
    want: { basis: 'slots', shares: { '10.0.0.2:8080': 1364 / 4093, '10.0.0.1:8080': 1364 / 4093 }, refused: 1365 / 4093, over: 4093 },
  },
];

for (const c of cases) {
  test(`shares: ${c.name}`, () => {
    const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: c.scheduler, flags: c.flags ?? 0, dests: c.list });
    const got = schedulerShares(vs);
    assert.equal(got.basis, c.want.basis);
    assert.equal(got.over, c.want.over);
    assert.deepEqual(Object.keys(got.shares).sort(), Object.keys(c.want.shares).sort());
    for (const [addr, share] of Object.entries(c.want.shares)) assert.ok(Math.abs(got.shares[addr]! - share) < 1e-12, `${addr}: got ${got.shares[addr]}, want ${share}`);
    assert.ok(Math.abs(got.refused - c.want.refused) < 1e-12, `refused: got ${got.refused}, want ${c.want.refused}`);
  });
}

test('shares: persistence does not change a new client\'s share', () => {
  const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeoutSeconds: 10800, dests: dests({ ip: '10.0.0.2' }, { ip: '10.0.0.1' }) });
  assert.deepEqual(schedulerShares(vs).shares, { '10.0.0.2:8080': 0.5, '10.0.0.1:8080': 0.5 });
});

test('pickFor: sh sends a client to the dest of bucket hash_32(addr, 8), buckets dealt from the list front', () => {
  const list = dests({ ip: '10.0.0.3' }, { ip: '10.0.0.2' }, { ip: '10.0.0.1' });
  const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'sh', dests: list });
  for (const client of ['10.244.1.9', '192.168.7.42', '203.0.113.200']) {
    const fold = client.split('.').reduce((v, o) => ((v << 8) | Number(o)) >>> 0, 0);
    const bucket = Math.imul(fold, 0x61c88647) >>> 24;
    assert.equal(pickFor(vs, `${client}:40000`), `${list[bucket % 3]!.ip}:8080`, `client ${client}, bucket ${bucket}`);
  }
});

test('pickFor: rr on a fresh service takes the first dest in list order', () => {
  const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', dests: dests({ ip: '10.0.0.3' }, { ip: '10.0.0.2' }) });
  assert.equal(pickFor(vs, '10.244.0.1:1234'), '10.0.0.3:8080');
});

test('liveServiceOf: rebuilds the kernel list order and quiesces the draining dests by an edit', () => {
  const vs = virtualServer({ protocol: 'TCP', address: '10.96.0.10', port: 80, scheduler: 'rr', dests: dests({ ip: '10.0.0.3', weight: 0, quiesced: true }, { ip: '10.0.0.2' }, { ip: '10.0.0.1', active: 4 }) });
  const live = liveServiceOf(vs);
  assert.deepEqual(live.dests(), [
    { addr: '10.0.0.3:8080', weight: 0, activeConns: 0, inactConns: 0 },
    { addr: '10.0.0.2:8080', weight: 1, activeConns: 0, inactConns: 0 },
    { addr: '10.0.0.1:8080', weight: 1, activeConns: 4, inactConns: 0 },
  ]);
});
