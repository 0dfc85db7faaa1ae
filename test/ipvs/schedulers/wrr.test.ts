/**
 * wrr pick sequences, derived by stepping ip_vs_wrr.c's cl/cw/mw/di by hand. Dests added A, B, C
 * sit in list order C B A. Every add/delete/edit resets cl to the head and recomputes di and mw,
 * keeping cw unless it is 0 or above mw (or rounding it onto the di grid when di > 1).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rows, run, serviceWith, type DestRow, type Step } from './fixtures.js';

const cases: { name: string; dests: DestRow[]; steps: Step[]; want: string }[] = [
  {
    // Adding C(2): di 2, mw 1, cw 0 -> 1. B(3): di 1, mw 3, cw 1 kept. A(4): mw 4, cw 1 kept.
    // So the first pass runs at cw = 1 (A B C); then cw wraps to mw = 4 and the 4,3,2,1 cycle runs.
    name: 'dests added one by one: cw does not start at mw (the reference case)',
    dests: rows('C2 B3 A4'), steps: [{ pick: 3 }, { pick: 9 }, { pick: 3 }], want: 'A B C A A B A B C A B C A A B',
  },
  {
    name: 'weights 2 and 4 (di 2): A gets two picks for each of B',
    // A(4): di 4, mw 1, cw 1. B(2): di 2, mw 3, cw (1/2)*2+1 = 1. List B A.
    // cw 1: B, A; wrap: cw 3: A; wrap: cw 1: B, A; wrap: cw 3: A ...
    dests: rows('A4 B2'), steps: [{ pick: 9 }], want: 'B A A B A A B A A',
  },
  {
    name: 'a weight-0 dest is never picked, even at cw = 1',
    dests: rows('A2 B0'), steps: [{ pick: 3 }], want: 'A A A',
  },
  { name: 'all weights 0: mw = 0, no destination', dests: rows('A0 B0'), steps: [{ pick: 2 }], want: '- -' },
  { name: 'empty service: no destination', dests: [], steps: [{ pick: 1 }], want: '-' },
  {
    name: 'an edit resets the cursor to the head (same weight, the upd hook still runs)',
    dests: rows('A1 B1 C1'), steps: [{ pick: 2 }, { weight: ['A', 1] }, { pick: 4 }], want: 'C B | C B A C',
  },
  {
    // A3 B1: di 1, mw 3, cw 1 after the adds. List B A.
    // cw 1: B A; wrap cw 3: A; cw 2: A; cw 1: B A; ...
    name: 'weights 3 and 1',
    dests: rows('A3 B1'), steps: [{ pick: 8 }], want: 'B A A A B A A A',
  },
  {
    // After B A (cw 1), raising B to 5: di 1, mw 5, cw 1 kept (1 <= 5), cursor at head.
    // cw 1: B A; wrap cw 5: B; cw 4: B; cw 3: B; cw 2: B; cw 1: B A ...
    name: 'raising a weight mid-sequence keeps cw and restarts from the head',
    dests: rows('A1 B1'), steps: [{ pick: 2 }, { weight: ['B', 5] }, { pick: 8 }], want: 'B A | B A B B B B B A',
  },
  {
    // A4 B4 (di 4, mw 1, cw 1): B A B A. Lowering A to 2: di 2, mw 3; cw 1 -> (1/2)*2+1 = 1.
    // cw 1: B A; wrap cw 3: B; wrap cw 1: B A; ...
    name: 'lowering a weight: cw rounded onto the new di grid',
    dests: rows('A4 B4'), steps: [{ pick: 2 }, { weight: ['A', 2] }, { pick: 6 }], want: 'B A | B A B B A B',
  },
  {
    // List C B A, cursor at C after one pick; deleting C resets the cursor to the head.
    name: 'a delete resets the cursor to the head',
    dests: rows('A1 B1 C1'), steps: [{ pick: 1 }, { remove: 'B' }, { pick: 3 }], want: 'C | C A C',
  },
];

for (const c of cases) {
  test(`wrr: ${c.name}`, () => {
    const got = run(serviceWith('wrr', c.dests), c.steps);
    assert.equal(got, c.want, `dests added ${c.dests.map((d) => `${d.name}${d.weight}`).join(' ')}`);
  });
}

test('wrr: an OVERLOAD dest is skipped at every cw', () => {
  // A4 (-x 1) B1: di 1, mw 4, cw 1. List B A. connect: cw 1 -> B; A (now OVERLOAD);
  // wrap cw 4: A overloaded, B 1 < 4; cw 3, 2: nothing; cw 1 (last pass): B; ...
  const vs = serviceWith('wrr', [{ name: 'A', weight: 4, upper: 1 }, { name: 'B', weight: 1 }]);
  assert.equal(run(vs, [{ connect: 4 }]), 'B A B B');
});

test('wrr: every dest OVERLOAD fails after a full last pass', () => {
  const vs = serviceWith('wrr', [{ name: 'A', weight: 2, upper: 1 }, { name: 'B', weight: 1, upper: 1 }]);
  assert.equal(run(vs, [{ connect: 3 }]), 'B A -');
});
