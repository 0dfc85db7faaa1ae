/**
 * The fairness statistics against known values: chi-square critical values from the tables
 * (p = 0.05 and 0.01), closed forms (Q(1, x) = e^-x, P(1/2, x) = erf(√x), the df=1 tail
 * erfc(√(x/2))), ln Γ at known points, and a few tail values as SciPy 1.17 computes them
 * (scipy.stats.chi2.sf, scipy.special.gammainc/gammaincc).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chiSquarePValue, chiSquareTest, logGamma, maxOverMean, regularizedGammaP, regularizedGammaQ,
} from '../../src/simulate/fairness.js';

function close(actual: number, expected: number, relative: number, what: string): void {
  const error = Math.abs(actual - expected) / Math.max(Math.abs(expected), Number.MIN_VALUE);
  assert.ok(error <= relative, `${what}: got ${actual}, want ${expected} (relative error ${error})`);
}

const pValueCases: { statistic: number; df: number; want: number; why: string }[] = [
  { statistic: 3.841458820694124, df: 1, want: 0.05, why: 'the 5% critical value, 1 df' },
  { statistic: 5.991464547107979, df: 2, want: 0.05, why: 'the 5% critical value, 2 df (p = e^(-x/2))' },
  { statistic: 18.307038053275146, df: 10, want: 0.05, why: 'the 5% critical value, 10 df' },
  { statistic: 23.209251158954356, df: 10, want: 0.01, why: 'the 1% critical value, 10 df' },
  { statistic: 124.342, df: 100, want: 0.05000071576997178, why: 'scipy chi2.sf(124.342, 100)' },
  { statistic: 2.5, df: 3, want: 0.4752910833430205, why: 'scipy chi2.sf(2.5, 3)' },
  { statistic: 0.5, df: 1, want: 0.47950012218695337, why: 'scipy chi2.sf(0.5, 1)' },
  { statistic: 1000, df: 900, want: 0.010994608942135844, why: 'scipy chi2.sf(1000, 900): many categories' },
  { statistic: 30, df: 1, want: 4.320463057827492e-8, why: 'erfc(√15): a small tail keeps its digits' },
  { statistic: 100, df: 1, want: 1.5239706048320995e-23, why: 'erfc(√50): a tiny tail' },
];
for (const c of pValueCases) {
  test(`chi-square p-value: ${c.why}`, () => close(chiSquarePValue(c.statistic, c.df), c.want, 1e-9, `p(${c.statistic}, ${c.df})`));
}

test('chi-square p-value: a statistic of 0 gives 1, and so does 0 degrees of freedom', () => {
  assert.equal(chiSquarePValue(0, 3), 1);
  assert.equal(chiSquarePValue(12, 0), 1);
});

const gammaCases: { name: string; got: () => number; want: number }[] = [
  { name: 'Q(1, 2.5) = e^-2.5', got: () => regularizedGammaQ(1, 2.5), want: 0.0820849986238988 },
  { name: 'P(1/2, 1) = erf(1)', got: () => regularizedGammaP(0.5, 1), want: 0.8427007929497149 },
  { name: 'P(3.5, 2) (series side)', got: () => regularizedGammaP(3.5, 2), want: 0.22022259152428406 },
  { name: 'Q(7.5, 12) (continued-fraction side)', got: () => regularizedGammaQ(7.5, 12), want: 0.06509348639883054 },
  { name: 'ln Γ(1/2) = ln √π', got: () => logGamma(0.5), want: 0.5723649429247004 },
  { name: 'ln Γ(10) = ln 9!', got: () => logGamma(10), want: 12.801827480081467 },
  { name: 'ln Γ(100)', got: () => logGamma(100), want: 359.1342053695754 },
  { name: 'ln Γ(0.1) (reflection)', got: () => logGamma(0.1), want: 2.2527126517342055 },
];
for (const c of gammaCases) {
  test(`incomplete gamma: ${c.name}`, () => close(c.got(), c.want, 1e-12, c.name));
}

test('P + Q = 1 on both sides of a + 1', () => {
  for (const [a, x] of [[2, 0.5], [2, 10], [50, 49], [50, 60], [0.5, 0.01]] as const) {
    close(regularizedGammaP(a, x) + regularizedGammaQ(a, x), 1, 1e-13, `P+Q at a=${a}, x=${x}`);
  }
});

const testCases: { name: string; observed: number[]; expected: number[]; want: { statistic: number; df: number; p: number } }[] = [
  { name: 'a perfectly even spread', observed: [10, 10, 10], expected: [1, 1, 1], want: { statistic: 0, df: 2, p: 1 } },
  { name: 'all on one of two', observed: [30, 0], expected: [0.5, 0.5], want: { statistic: 30, df: 1, p: 4.320463057827492e-8 } },
  // Expected 15 and 45 of 60: (20-15)²/15 + (40-45)²/45 = 25/15 + 25/45 = 2.2222…
  { name: 'weight-proportional shares (1:3)', observed: [20, 40], expected: [1, 3], want: { statistic: 20 / 9, df: 1, p: 0.13603712811414423 } },
  // A draining dest (share 0) that got nothing is left out of the degrees of freedom.
  { name: 'a category expected to get nothing, and getting nothing', observed: [5, 5, 0], expected: [1, 1, 0], want: { statistic: 0, df: 1, p: 1 } },
];
for (const c of testCases) {
  test(`chi-square test: ${c.name}`, () => {
    const got = chiSquareTest(c.observed, c.expected);
    close(got.statistic + 1, c.want.statistic + 1, 1e-12, 'statistic');
    assert.equal(got.degreesOfFreedom, c.want.df);
    close(got.pValue, c.want.p, 1e-9, 'p-value');
  });
}

test('chi-square test: a count where nothing was expected makes the fit impossible (p = 0)', () => {
  const got = chiSquareTest([5, 5, 1], [1, 1, 0]);
  assert.equal(got.pValue, 0);
  assert.equal(got.statistic, Infinity);
});

test('max/mean: 1 when even, the peak over the mean otherwise', () => {
  assert.equal(maxOverMean([4, 4, 4]), 1);
  assert.equal(maxOverMean([1, 2, 3]), 1.5);
  assert.equal(maxOverMean([0, 0]), 0);
  assert.equal(maxOverMean([]), 0);
});
