import { test } from 'node:test';
import { LatencySamples, percentile, summarizeLatency } from '../../src/load/percentiles.js';

const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

const percentileCases: { name: string; values: number[]; p: number; want: number }[] = [
  { name: 'median of ten is the 5th value (nearest rank)', values: ten, p: 50, want: 5 },
  { name: 'p90 of ten is the 9th value', values: ten, p: 90, want: 9 },
  { name: 'p99 of ten is the largest', values: ten, p: 99, want: 10 },
  { name: 'p0 is the smallest', values: ten, p: 0, want: 1 },
  { name: 'p100 is the largest', values: ten, p: 100, want: 10 },
  { name: 'p99 of 1..100 is 99', values: hundred, p: 99, want: 99 },
  { name: 'p50 of 1..100 is 50', values: hundred, p: 50, want: 50 },
  { name: 'one value is every percentile', values: [0.25], p: 99, want: 0.25 },
  { name: 'no values gives 0', values: [], p: 50, want: 0 },
];

for (const c of percentileCases) {
  test(`percentile: ${c.name}`, (t) => {
    t.plan(1);
    t.assert.equal(percentile(c.values, c.p), c.want);
  });
}

test('percentile outside 0..100 is a bug', (t) => {
  t.plan(2);
  t.assert.throws(() => percentile(ten, 101), /not in 0..100/);
  t.assert.throws(() => percentile(ten, Number.NaN), /not in 0..100/);
});

test('samples grow past their first buffer and come back sorted', (t) => {
  t.plan(3);
  const samples = new LatencySamples();
  for (let i = 10_000; i > 0; i--) samples.add(i / 1000);
  const sorted = samples.sorted();
  t.assert.equal(samples.count, 10_000);
  t.assert.deepEqual([sorted[0], sorted[9_999]], [0.001, 10]);
  t.assert.equal(sorted.every((v, i) => i === 0 || sorted[i - 1]! <= v), true, 'sorted ascending');
});

const summaryCases: { name: string; values: number[]; want: ReturnType<typeof summarizeLatency> }[] = [
  { name: 'empty', values: [], want: { count: 0, meanMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, maxMs: 0 } },
  { name: 'ten values', values: ten, want: { count: 10, meanMs: 5.5, p50Ms: 5, p90Ms: 9, p99Ms: 10, maxMs: 10 } },
  { name: 'a long tail shows in p99 and max, not p50', values: [...Array(98).fill(0.1), 5, 50], want: { count: 100, meanMs: (9.8 + 55) / 100, p50Ms: 0.1, p90Ms: 0.1, p99Ms: 5, maxMs: 50 } },
];

for (const c of summaryCases) {
  test(`summary: ${c.name}`, (t) => {
    t.plan(1);
    const got = summarizeLatency(Float64Array.from(c.values).sort());
    t.assert.deepEqual({ ...got, meanMs: Number(got.meanMs.toFixed(9)) }, { ...c.want, meanMs: Number(c.want.meanMs.toFixed(9)) });
  });
}
