import { test } from 'node:test';
import { spreadOf } from '../../src/load/spread.js';

const spreadCases: { name: string; counts: number[]; maxOverMean: number; chiSquare: number; pValue: (p: number | null) => boolean }[] = [
  { name: 'perfectly even', counts: [10, 10, 10], maxOverMean: 1, chiSquare: 0, pValue: (p) => p === 1 },
  { name: '30/20/10 is uneven at the 1% level (chi-square 10, 2 df: p = e^-5)', counts: [30, 20, 10], maxOverMean: 1.5, chiSquare: 10, pValue: (p) => p !== null && Math.abs(p - Math.exp(-5)) < 1e-9 },
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
