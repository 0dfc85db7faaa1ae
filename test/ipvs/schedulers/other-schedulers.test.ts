/**
 * lblc, lblcr, fo, ovf and twos, derived from ip_vs_lblc.c, ip_vs_lblcr.c, ip_vs_fo.c,
 * ip_vs_ovf.c and ip_vs_twos.c. Dests added A, B, C sit in list order C B A.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addrOf, rows, run, serviceWith, type DestRow, type Step } from './fixtures.js';

const VIP = '10.96.0.10:80';
const d = (name: string, weight: number, active = 0, inactive = 0): DestRow => ({ name, weight, active, inactive });

const cases: { name: string; scheduler: string; dests: DestRow[]; steps: Step[]; want: string }[] = [
  // lblc: cache VIP -> dest; the cached dest stays unless weight 0 or (active > weight and some
  // dest has active * 2 < weight). connect 1: wlc picks B (front, tie), cached. connect 2: B has
  // 1 active, not > 1: B. connect 3: B has 2 > 1 and A has 0 * 2 < 1: wlc picks A, cached.
  // Then A: 1 > 1 no; 2 > 1 but nobody has active * 2 < weight: A keeps everything.
  { name: 'one address sticks to one dest until it is overloaded', scheduler: 'lblc', dests: [d('A', 1), d('B', 1)], steps: [{ connect: 6 }], want: 'B B A A A A' },
  {
    name: 'a cached dest quiesced to weight 0 is replaced by the wlc pick',
    scheduler: 'lblc', dests: [d('A', 1), d('B', 1)], steps: [{ connect: 1 }, { weight: ['B', 0] }, { pick: 2 }], want: 'B | A A',
  },
  {
    name: 'a cached dest that was deleted is replaced',
    scheduler: 'lblc', dests: [d('A', 1), d('B', 1), d('C', 1)], steps: [{ connect: 1 }, { remove: 'C' }, { pick: 1 }], want: 'C | B',
  },
  // lblcr: the set starts {B}; at connect 3 B is overloaded, wlc adds A: set {A, B}. Then the
  // set's weighted least member: A (256 < 512), A again (tie 512/512, A is newer in the set), ...
  { name: 'the set grows when its least member is overloaded', scheduler: 'lblcr', dests: [d('A', 1), d('B', 1)], steps: [{ connect: 5 }], want: 'B B A A A' },
  // fo: highest weight, first in list order on ties, weight 0 never.
  { name: 'highest weight wins, first in list order on a tie', scheduler: 'fo', dests: rows('A1 B3 C3'), steps: [{ connect: 3 }], want: 'C C C' },
  { name: 'quiescing the heaviest fails over to the next', scheduler: 'fo', dests: rows('A1 B3 C2'), steps: [{ pick: 1 }, { weight: ['B', 0] }, { pick: 1 }], want: 'B | C' },
  { name: 'all weight 0: no destination', scheduler: 'fo', dests: rows('A0'), steps: [{ pick: 1 }], want: '-' },
  // ovf: heaviest until its active count exceeds its weight. C2 then B1 (C has 3 > 2 active).
  { name: 'connections overflow once active exceeds the weight', scheduler: 'ovf', dests: rows('A1 B1 C2'), steps: [{ connect: 6 }], want: 'C C C B B A' },
  { name: 'inactive connections do not count', scheduler: 'ovf', dests: [d('A', 1), d('B', 2, 0, 50)], steps: [{ pick: 1 }], want: 'B' },
];

for (const c of cases) {
  test(`${c.scheduler}: ${c.name}`, () => {
    assert.equal(run(serviceWith(c.scheduler, c.dests, { address: VIP }), c.steps), c.want);
  });
}

test('lblc: the cache entry is dropped by the first full check (every 30 min) 24 h after its last use', () => {
  // B is cached at t=0 and gets one active connection; wlc alone would now pick A.
  // The full checks run at 1800 s, 3600 s, ...; the one at 86400 s (lastUse + 24 h) drops it.
  const atTime = (seconds: number): string => {
    const vs = serviceWith('lblc', rows('A1 B1'), { address: VIP });
    const got = run(vs, [{ connect: 1 }, { advance: seconds }, { pick: 1 }]);
    return got.split(' | ')[1]!;
  };
  assert.equal(atTime(86399), 'B');
  assert.equal(atTime(86400), 'A');
});

test('lblcr: a set unchanged for more than 24 h drops its most loaded member', () => {
  // Set {A, B} after three connects (B B A), last changed at t=0; A holds 1 active, B 2.
  // The entry is used every 20 min, so the 30-minute full check never drops it. At the pick at
  // `lastPickAt` the set's least member is A either way; past lastmod + 24 h that pick also drops
  // B (the most loaded). Then B's connections end: B would be the set's least member (0 active)
  // if it were still in the set.
  const afterIdle = (lastPickAt: number): string => {
    const vs = serviceWith('lblcr', rows('A1 B1'), { address: VIP });
    assert.equal(run(vs, [{ connect: 3 }]), 'B B A');
    for (let t = 1200; t < lastPickAt; t += 1200) {
      vs.advance(1200);
      assert.equal(vs.pick(), addrOf('A'), `t=${t}`);
    }
    vs.advance(lastPickAt - vs.now());
    assert.equal(vs.pick(), addrOf('A'));
    vs.expire(addrOf('B'), 'active');
    vs.expire(addrOf('B'), 'active');
    return run(vs, [{ pick: 1 }]);
  };
  assert.equal(afterIdle(86400), 'B');
  assert.equal(afterIdle(86401), 'A');
});

/** rng values that make prandom_u32() % total come out as the given numbers, in order. */
function scripted(...draws: number[]): () => number {
  let i = 0;
  return () => draws[i++]! / 2 ** 32;
}

test('twos: two weighted random choices, the less loaded per weight wins', () => {
  // List C3 B2 A1, total = 6 + 1 = 7. r = 0 -> C (0 - 3 <= 0); r = 5 -> B (5 - 3 - 2 <= 0);
  // r = 6 -> A (6 - 3 - 2 - 1 <= 0).
  const table: { draws: [number, number]; active: [number, number, number]; want: string }[] = [
    { draws: [0, 5], active: [0, 0, 0], want: 'C' }, // 2 * 0 > 3 * 0 is false: choice 1
    { draws: [0, 5], active: [0, 0, 1], want: 'B' }, // C has 256 overhead: 2 * 256 > 3 * 0
    { draws: [6, 0], active: [0, 0, 0], want: 'A' },
    { draws: [3, 4], active: [0, 0, 0], want: 'C' }, // both land on C
    { draws: [6, 5], active: [1, 1, 0], want: 'B' }, // 2 * 256 > 1 * 256: B per weight is lighter
  ];
  for (const row of table) {
    const vs = serviceWith('twos', [d('A', 1, row.active[0]), d('B', 2, row.active[1]), d('C', 3, row.active[2])], { rng: scripted(...row.draws) });
    assert.equal(vs.pick(), addrOf(row.want), JSON.stringify(row));
  }
});

test('twos: weight-0 dests are left out of the draw and the walk', () => {
  // List C0 B1 A1: total = 2 + 1 = 3; r = 1 -> B, r = 2 -> A.
  const vs = serviceWith('twos', rows('A1 B1 C0'), { rng: scripted(1, 2) });
  assert.equal(vs.pick(), addrOf('B'));
  assert.equal(serviceWith('twos', rows('A0'), { rng: scripted(0, 0) }).pick(), undefined);
});
