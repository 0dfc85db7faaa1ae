/**
 * How evenly load spread over endpoints, for the load and compare reports: the busiest endpoint's
 * count over the mean (1.0 is perfectly even, n is everything on one of n endpoints) and Pearson's
 * chi-square test against an even spread (src/ipvs/fairness.ts), whose p-value is the chance of a
 * spread at least this uneven if every endpoint were equally likely. A low p-value (< 0.01) says
 * the spread is not random-even: a sticky scheduler, session affinity, or a skewed picker.
 */
import { chiSquareTest, maxOverMean } from '../simulate/fairness.js';

export interface Spread {
  /** Endpoints counted, including those that got nothing. */
  endpoints: number;
  total: number;
  /** max / mean; 0 when nothing was counted. */
  maxOverMean: number;
  chiSquare: number;
  degreesOfFreedom: number;
  /** null when the test does not apply (fewer than 2 endpoints or nothing counted). */
  pValue: number | null;
}

export function spreadOf(counts: readonly number[]): Spread {
  const total = counts.reduce((a, b) => a + b, 0);
  const endpoints = counts.length;
  const degreesOfFreedom = Math.max(0, endpoints - 1);
  if (endpoints === 0 || total === 0) return { endpoints, total, maxOverMean: 0, chiSquare: 0, degreesOfFreedom, pValue: null };
  const test = chiSquareTest(counts, counts.map(() => 1));
  return {
    endpoints,
    total,
    maxOverMean: maxOverMean(counts),
    chiSquare: test.statistic,
    degreesOfFreedom,
    pValue: degreesOfFreedom === 0 ? null : test.pValue,
  };
}
