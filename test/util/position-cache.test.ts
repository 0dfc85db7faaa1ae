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
