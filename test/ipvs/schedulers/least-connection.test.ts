/**
 * lc, wlc, sed and nq pick sequences, derived from ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c and
 * ip_vs_nq.c with overhead = (activeconns << 8) + inactconns. `connect` binds each pick as an
 * active connection, so the counters move between picks. Dests added A, B, C sit in list order
 * C B A; the first dest in list order wins every tie.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run, serviceWith, type DestRow, type Step } from './fixtures.js';

interface Case {
  name: string;
  scheduler: string;
  dests: DestRow[];
  steps: Step[];
  want: string;
}

const d = (name: string, weight: number, active = 0, inactive = 0): DestRow => ({ name, weight, active, inactive });

const cases: Case[] = [
  // lc
  { name: 'ties go to the front of the list', scheduler: 'lc', dests: [d('A', 1), d('B', 1), d('C', 1)], steps: [{ connect: 6 }], want: 'C B A C B A' },
  { name: 'weight size is ignored', scheduler: 'lc', dests: [d('A', 1), d('B', 5)], steps: [{ connect: 4 }], want: 'B A B A' },
  { name: 'weight 0 is skipped even when idle', scheduler: 'lc', dests: [d('A', 1, 3), d('B', 0)], steps: [{ pick: 2 }], want: 'A A' },
  { name: '1 active = 256 inactive: a tie, front wins', scheduler: 'lc', dests: [d('A', 1, 1), d('B', 1, 0, 256)], steps: [{ pick: 1 }], want: 'B' },
  { name: '1 active = 256 inactive: a tie, front wins (other order)', scheduler: 'lc', dests: [d('B', 1, 0, 256), d('A', 1, 1)], steps: [{ pick: 1 }], want: 'A' },
  { name: '257 inactive cost more than 1 active', scheduler: 'lc', dests: [d('A', 1, 1), d('B', 1, 0, 257)], steps: [{ pick: 1 }], want: 'A' },
  { name: '255 inactive cost less than 1 active', scheduler: 'lc', dests: [d('B', 1, 0, 255), d('A', 1, 1)], steps: [{ pick: 1 }], want: 'B' },
  {
    name: 'closing a connection (active to inactive) makes the dest cheaper',
    scheduler: 'lc', dests: [d('A', 1, 1), d('B', 1, 1)], steps: [{ pick: 1 }, { close: 'A' }, { pick: 1 }], want: 'B | A',
  },
  { name: 'all weights 0: no destination', scheduler: 'lc', dests: [d('A', 0), d('B', 0)], steps: [{ pick: 1 }], want: '-' },

  // wlc: overhead(least) * weight(d) > overhead(d) * weight(least) replaces.
  // B3 front: B A(0) tie -> B; B=256: 256*1 > 0*3 -> A; A=256: B 256*1 vs 256*3 -> B; B=512: 512 > 768? no -> B;
  // B=768: 768 > 768? no -> B; B=1024: 1024 > 768 -> A.
  { name: 'weights 1 and 3', scheduler: 'wlc', dests: [d('A', 1), d('B', 3)], steps: [{ connect: 6 }], want: 'B A B B B A' },
  { name: 'a weight-0 dest at the front is not the first candidate', scheduler: 'wlc', dests: [d('A', 1, 5), d('B', 0)], steps: [{ pick: 1 }], want: 'A' },
  { name: 'a weight-0 dest later in the list never wins', scheduler: 'wlc', dests: [d('B', 0), d('A', 1, 5)], steps: [{ pick: 1 }], want: 'A' },
  { name: 'inactive connections count (512 inactive at weight 2 = 1 active at weight 1)', scheduler: 'wlc', dests: [d('A', 1, 1), d('B', 2, 0, 512)], steps: [{ pick: 1 }], want: 'B' },
  { name: 'one more inactive tips it', scheduler: 'wlc', dests: [d('A', 1, 1), d('B', 2, 0, 513)], steps: [{ pick: 1 }], want: 'A' },

  // sed: (active + 1) / weight, inactive ignored. B2 front.
  // B 1/2 vs A 1/1 -> B; B 2/2 vs 1 -> tie B; B 3/2 vs 1 -> A; B 3/2 vs A 2 -> B; B 4/2 vs 2 -> tie B; B 5/2 vs 2 -> A.
  { name: 'weights 1 and 2', scheduler: 'sed', dests: [d('A', 1), d('B', 2)], steps: [{ connect: 6 }], want: 'B B A B B A' },
  { name: 'inactive connections are ignored', scheduler: 'sed', dests: [d('A', 1), d('B', 1, 0, 1000)], steps: [{ pick: 1 }], want: 'B' },
  { name: 'weight 0 never wins', scheduler: 'sed', dests: [d('A', 1, 9), d('B', 0)], steps: [{ pick: 1 }], want: 'A' },

  // nq: the first idle dest (active 0) at once, else sed.
  // B idle -> B; A idle -> A; B 2/2 vs A 2/1 -> B; B 3/2 vs 2 -> B; B 4/2 vs 2 -> tie B; B 5/2 vs 2 -> A.
  { name: 'idle dests first, then sed', scheduler: 'nq', dests: [d('A', 1), d('B', 2)], steps: [{ connect: 6 }], want: 'B A B B B A' },
  { name: 'an idle dest wins whatever its weight and inactive count', scheduler: 'nq', dests: [d('A', 1, 0, 1000), d('B', 100, 1)], steps: [{ pick: 1 }], want: 'A' },
  { name: 'the first idle dest in list order', scheduler: 'nq', dests: [d('A', 1), d('B', 1, 1), d('C', 1)], steps: [{ pick: 1 }], want: 'C' },
  { name: 'weight 0 is skipped even when idle', scheduler: 'nq', dests: [d('A', 1, 2), d('B', 0)], steps: [{ pick: 1 }], want: 'A' },
];

for (const c of cases) {
  test(`${c.scheduler}: ${c.name}`, () => {
    const got = run(serviceWith(c.scheduler, c.dests), c.steps);
    const described = c.dests.map((r) => `${r.name}(w${r.weight} a${r.active ?? 0} i${r.inactive ?? 0})`).join(' ');
    assert.equal(got, c.want, `dests added ${described}`);
  });
}

test('lc: an OVERLOAD dest is skipped and comes back under the lower threshold', () => {
  // A: -x 2 -y 1. Two connections make it OVERLOAD; expiring one leaves total 1, not < 1, still
  // OVERLOAD; expiring the second (total 0 < 1) clears it.
  const vs = serviceWith('lc', [{ name: 'B', weight: 1, active: 5 }]);
  vs.addDest({ addr: '10.0.0.1:80', weight: 1, upperThreshold: 2, lowerThreshold: 1 });
  const got = run(vs, [{ connect: 3 }, { expire: ['A', 'active'] }, { pick: 1 }, { expire: ['A', 'active'] }, { pick: 1 }]);
  assert.equal(got, 'A A B | B | A');
});
