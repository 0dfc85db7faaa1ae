import { test } from 'node:test';
import { chiSquarePValue, spreadOf } from '../../src/load/spread.js';

// Critical values from the chi-square table: P(X >= x) for k degrees of freedom.
const pValueCases: { x: number; k: number; want: number }[] = [
  { x: 3.841459, k: 1, want: 0.05 },
  { x: 6.634897, k: 1, want: 0.01 },
  { x: 5.991465, k: 2, want: 0.05 },
  { x: 13.276704, k: 4, want: 0.01 },
  { x: 18.307038, k: 10, want: 0.05 },
  { x: 0.1025866, k: 2, want: 0.95 },
  { x: 124.342113, k: 100, want: 0.05 },
  { x: 2, k: 2, want: Math.exp(-1) },
  { x: 0, k: 3, want: 1 },
];

for (const c of pValueCases) {
  test(`chi-square p-value of ${c.x} with ${c.k} df is ${c.want.toFixed(4)}`, (t) => {
    t.plan(1);
    const got = chiSquarePValue(c.x, c.k);
    t.assert.equal(Math.abs(got - c.want) < 1e-6, true, `got ${got}`);
  });
}

const spreadCases: { name: string; counts: number[]; maxOverMean: number; chiSquare: number; pValue: (p: number | null) => boolean }[] = [
  { name: 'perfectly even', counts: [10, 10, 10], maxOverMean: 1, chiSquare: 0, pValue: (p) => p === 1 },
  { name: 'everything on one of three', counts: [30, 0, 0], maxOverMean: 3, chiSquare: 60, pValue: (p) => p !== null && p < 1e-12 },
  { name: 'round-robin remainder (4/3/3) is consistent with even', counts: [4, 3, 3], maxOverMean: 1.2, chiSquare: 0.2, pValue: (p) => p !== null && p > 0.9 },
  { name: 'one endpoint: no test', counts: [7], maxOverMean: 1, chiSquare: 0, pValue: (p) => p === null },
  { name: 'nothing counted: no test', counts: [0, 0], maxOverMean: 0, chiSquare: 0, pValue: (p) => p === null },
];

for (const c of spreadCases) {
  test(`spread: ${c.name}`, (t) => {
    t.plan(3);
    const s = spreadOf(c.counts);
    t.assert.equal(Math.abs(s.maxOverMean - c.maxOverMean) < 1e-9, true, `max/mean ${s.maxOverMean}`);
    t.assert.equal(Math.abs(s.chiSquare - c.chiSquare) < 1e-9, true, `chi-square ${s.chiSquare}`);
    t.assert.equal(c.pValue(s.pValue), true, `p ${String(s.pValue)}`);
  });
}
