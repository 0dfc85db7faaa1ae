/**
 * How evenly load spread over endpoints: the busiest endpoint's count over the mean (1.0 is
 * perfectly even, n is everything on one of n endpoints) and Pearson's chi-square test against an
 * even spread, whose p-value is the chance of a spread at least this uneven if every endpoint were
 * equally likely. A low p-value (< 0.01) says the spread is not random-even: a sticky scheduler,
 * session affinity, or a skewed picker.
 *
 * kpsim's own small module: the IPVS area had no fairness module when `kpsim compare` was written.
 */

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
  if (endpoints === 0 || total === 0) return { endpoints, total, maxOverMean: 0, chiSquare: 0, degreesOfFreedom: Math.max(0, endpoints - 1), pValue: null };
  const mean = total / endpoints;
  const chiSquare = counts.reduce((sum, c) => sum + (c - mean) ** 2 / mean, 0);
  const degreesOfFreedom = endpoints - 1;
  return {
    endpoints,
    total,
    maxOverMean: Math.max(...counts) / mean,
    chiSquare,
    degreesOfFreedom,
    pValue: degreesOfFreedom === 0 ? null : chiSquarePValue(chiSquare, degreesOfFreedom),
  };
}

/** P(X >= x) for X chi-square with k degrees of freedom: Q(k/2, x/2), the upper regularised gamma. */
export function chiSquarePValue(x: number, k: number): number {
  if (!(k > 0)) throw new Error(`degrees of freedom ${k} must be > 0`);
  if (x <= 0) return 1;
  return upperRegularizedGamma(k / 2, x / 2);
}

const EPSILON = 1e-14;
const MAX_ITERATIONS = 1000;

/**
 * Q(a, x) = 1 - P(a, x): the series for P converges fast below x < a + 1, the continued fraction
 * for Q above it (the classic split, e.g. Numerical Recipes' gammq).
 */
function upperRegularizedGamma(a: number, x: number): number {
  if (x < a + 1) return Math.max(0, 1 - lowerSeries(a, x));
  return Math.min(1, upperContinuedFraction(a, x));
}

function lowerSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < MAX_ITERATIONS; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

/** Lentz's method for the continued fraction of Q(a, x). */
function upperContinuedFraction(a: number, x: number): number {
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** ln Γ(z) by the Lanczos approximation (g = 7, 9 terms), good to about 15 digits for z > 0. */
function logGamma(z: number): number {
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  const w = z - 1;
  let sum = coefficients[0]!;
  for (let i = 1; i < coefficients.length; i++) sum += coefficients[i]! / (w + i);
  const t = w + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (w + 0.5) * Math.log(t) - t + Math.log(sum);
}
