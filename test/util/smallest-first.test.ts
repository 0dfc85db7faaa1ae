/**
 * mapSmallestFirst calls its function in ascending order of size (ties in the items' order) and
 * gives the results in the items' order, as items.map would.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapSmallestFirst } from '../../src/util/smallest-first.js';

const CASES: readonly { name: string; sizes: readonly number[]; calls: readonly number[] }[] = [
  { name: 'no items', sizes: [], calls: [] },
  { name: 'one item', sizes: [7], calls: [0] },
  { name: 'IPv4 large, IPv6 small', sizes: [10_000, 1_000], calls: [1, 0] },
  { name: 'IPv4 small, IPv6 large', sizes: [3, 900], calls: [0, 1] },
  { name: 'same size: items in order', sizes: [5, 5], calls: [0, 1] },
  { name: 'empty family first', sizes: [12, 0], calls: [1, 0] },
  { name: 'several, with ties', sizes: [4, 1, 4, 0, 1], calls: [3, 1, 4, 0, 2] },
];

for (const { name, sizes, calls } of CASES) {
  test(`mapSmallestFirst: ${name}`, () => {
    const items = sizes.map((size, i) => ({ i, size }));
    const called: number[] = [];
    const results = mapSmallestFirst(items, (item) => item.size, (item, index) => {
      assert.equal(index, item.i, `fn got index ${index} for item ${item.i}`);
      called.push(item.i);
      return `result ${item.i}`;
    });
    assert.deepEqual(called, calls, `call order for sizes ${JSON.stringify(sizes)}`);
    assert.deepEqual(results, items.map((item) => `result ${item.i}`), `results for sizes ${JSON.stringify(sizes)}`);
    assert.equal(Object.keys(results).length, items.length, 'every result is set (no holes)');
  });
}
