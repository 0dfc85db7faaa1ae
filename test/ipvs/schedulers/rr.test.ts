/**
 * rr pick sequences, derived from ip_vs_rr.c: scan after the cursor to the end, wrap, scan up to
 * and including the cursor; weight 0 and OVERLOAD skipped; deleting the cursor's dest moves the
 * cursor to its predecessor. Dests added A, B, C sit in list order C B A.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rows, run, serviceWith, type DestRow, type Step } from './fixtures.js';

const cases: { name: string; dests: DestRow[]; steps: Step[]; want: string }[] = [
  { name: 'equal weights go round in list order (front first)', dests: rows('A1 B1 C1'), steps: [{ pick: 7 }], want: 'C B A C B A C' },
  { name: 'weight size is ignored (5 and 1 alternate)', dests: rows('A5 B1'), steps: [{ pick: 4 }], want: 'B A B A' },
  { name: 'a weight-0 dest is skipped', dests: rows('A1 B0 C1'), steps: [{ pick: 4 }], want: 'C A C A' },
  { name: 'all weights 0: no destination', dests: rows('A0 B0'), steps: [{ pick: 2 }], want: '- -' },
  { name: 'empty service: no destination', dests: [], steps: [{ pick: 1 }], want: '-' },
  {
    name: 'a dest added at the front is reached after the wrap; the cursor stays',
    dests: rows('A1 B1'), steps: [{ pick: 1 }, { add: { name: 'C', weight: 1 } }, { pick: 4 }], want: 'B | A C B A',
  },
  {
    name: 'deleting the cursor dest resumes at the dest that followed it',
    dests: rows('A1 B1 C1'), steps: [{ pick: 2 }, { remove: 'B' }, { pick: 3 }], want: 'C B | A C A',
  },
  {
    name: 'deleting another dest leaves the cursor',
    dests: rows('A1 B1 C1'), steps: [{ pick: 1 }, { remove: 'A' }, { pick: 3 }], want: 'C | B C B',
  },
  {
    name: 'deleting the front dest while the cursor is on it resumes from the head',
    dests: rows('A1 B1 C1'), steps: [{ pick: 1 }, { remove: 'C' }, { pick: 3 }], want: 'C | B A B',
  },
  {
    name: 'the cursor dest quiesced mid-sequence is skipped',
    dests: rows('A1 B1 C1'), steps: [{ pick: 1 }, { weight: ['C', 0] }, { pick: 3 }], want: 'C | B A B',
  },
  {
    name: 'the cursor itself is checked last, so a lone available dest repeats',
    dests: rows('A1 B1 C1'), steps: [{ pick: 1 }, { weight: ['B', 0] }, { weight: ['A', 0] }, { pick: 2 }], want: 'C | C C',
  },
  {
    name: 'a weight change does not move the rr cursor (rr has no upd hook)',
    dests: rows('A1 B1 C1'), steps: [{ pick: 2 }, { weight: ['C', 7] }, { pick: 2 }], want: 'C B | A C',
  },
];

for (const c of cases) {
  test(`rr: ${c.name}`, () => {
    const got = run(serviceWith('rr', c.dests), c.steps);
    assert.equal(got, c.want, `dests added ${c.dests.map((d) => `${d.name}${d.weight}`).join(' ')}`);
  });
}

test('rr: an OVERLOAD dest (upper threshold reached) is skipped until it drops below 3/4 of it', () => {
  // A has -x 1: its first connection makes it OVERLOAD; expiring it clears the flag (0 * 4 < 1 * 3).
  const vs = serviceWith('rr', [{ name: 'A', weight: 1, upper: 1 }, { name: 'B', weight: 1 }]);
  const got = run(vs, [{ connect: 4 }, { expire: ['A', 'active'] }, { pick: 1 }]);
  assert.equal(got, 'B A B B | A');
});
