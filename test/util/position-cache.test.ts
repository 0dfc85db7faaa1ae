/**
 * withLast, what every per-port list of a few variants is kept with (position-cache.ts): the
 * items in order with the new one last, the oldest dropped beyond the limit, in a new list of
 * exactly that length; the list handed in is left as it was.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PositionCache, withLast } from '../../src/util/position-cache.js';

const CASES: readonly { name: string; list: readonly number[]; item: number; kept: number; want: readonly number[] }[] = [
  { name: 'empty', list: [], item: 1, kept: 4, want: [1] },
  { name: 'room left', list: [1, 2], item: 3, kept: 4, want: [1, 2, 3] },
  { name: 'one short of the limit', list: [1, 2, 3], item: 4, kept: 4, want: [1, 2, 3, 4] },
  { name: 'at the limit: the oldest goes', list: [1, 2, 3, 4], item: 5, kept: 4, want: [2, 3, 4, 5] },
  { name: 'a limit of one', list: [7], item: 8, kept: 1, want: [8] },
];

for (const c of CASES) {
  test(`withLast, ${c.name}: [${c.list.join(', ')}] + ${c.item} (kept ${c.kept}) is [${c.want.join(', ')}]`, () => {
    const before = [...c.list];
    const got = withLast(c.list, c.item, c.kept);
    assert.deepEqual(got, c.want);
    assert.notEqual(got, c.list, 'a new list, not the one handed in');
    assert.deepEqual(c.list, before, 'the list handed in is unchanged');
  });
}

test('PositionCache keeps a few shareable variants per position, the oldest dropped first', () => {
  const cache = new PositionCache<{ id: number }, number>(2);
  const keys = [{ id: 0 }, { id: 1 }, { id: 2 }];
  const own = { id: 9 };
  keys.forEach((key, i) => cache.set(0, key, i, true));
  cache.set(0, own, 9, false);
  const got = [...keys, own].map((key) => cache.get(0, key));
  assert.deepEqual(got, [undefined, 1, 2, undefined], `values of keys 0, 1, 2 and a node's own key: ${got.join(', ')}`);
});

// A position holds its one value alone until a second comes: each step's values must read back
// the same either way.
const STEPS: readonly { name: string; sets: readonly [key: number, value: number, shareable: boolean][]; want: readonly (number | undefined)[] }[] = [
  { name: 'nothing kept', sets: [], want: [undefined, undefined, undefined] },
  { name: 'one value', sets: [[0, 10, true]], want: [10, undefined, undefined] },
  { name: 'a node\'s own key alone is kept', sets: [[1, 11, false]], want: [undefined, 11, undefined] },
  { name: 'a second key, after one kept alone', sets: [[0, 10, true], [1, 11, true]], want: [10, 11, undefined] },
  { name: 'a node\'s own key after one kept: not kept', sets: [[0, 10, true], [1, 11, false]], want: [10, undefined, undefined] },
  { name: 'the one key set again', sets: [[0, 10, true], [0, 20, false]], want: [20, undefined, undefined] },
  { name: 'a key of two set again', sets: [[0, 10, true], [1, 11, true], [1, 21, true]], want: [10, 21, undefined] },
  { name: 'three keys, two kept', sets: [[0, 10, true], [1, 11, true], [2, 12, true]], want: [undefined, 11, 12] },
];

for (const c of STEPS) {
  test(`PositionCache, ${c.name}`, () => {
    const cache = new PositionCache<{ id: number }, number>(2);
    const keys = [{ id: 0 }, { id: 1 }, { id: 2 }];
    for (const [key, value, shareable] of c.sets) cache.set(3, keys[key]!, value, shareable);
    assert.deepEqual(keys.map((key) => cache.get(3, key)), c.want);
    assert.equal(cache.get(2, keys[0]!), undefined, 'another position holds nothing');
  });
}
