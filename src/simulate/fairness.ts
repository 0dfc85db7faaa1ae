/**
 * How evenly connections were spread, against the share each backend should get: max/mean, and
 * Pearson's chi-square goodness-of-fit test with its p-value (the chance of a spread at least
 * this uneven if the picks really followed the expected shares). A p-value near 0 says "not the
 * expected distribution"; round robin, being more even than chance, gives p-values near 1.
 *
 * The p-value is the upper regularized incomplete gamma function Q(df/2, x/2), computed with the
 * series for P below a+1 and Lentz's continued fraction for Q above (as in Numerical Recipes,
 * written from the formulas), and ln Γ by the Lanczos approximation (g = 7, n = 9).
 */

const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const EPSILON = 1e-15;
const MAX_ITERATIONS = 10_000;
/** Below this, Lentz's method replaces a zero denominator. */
const TINY = 1e-300;

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new Error(`logGamma: ${x} is not > 0`);
  if (x < 0.5) {
    // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  const z = x - 1;
  let sum = LANCZOS_COEFFICIENTS[0]!;
  for (let i = 1; i < LANCZOS_G + 2; i++) sum += LANCZOS_COEFFICIENTS[i]! / (z + i);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** P(a, x) = γ(a, x) / Γ(a), the lower regularized incomplete gamma function. */
export function regularizedGammaP(a: number, x: number): number {
  checkGammaArguments(a, x);
  if (x === 0) return 0;
  return x < a + 1 ? gammaSeries(a, x) : 1 - gammaContinuedFraction(a, x);
}

/** Q(a, x) = 1 - P(a, x), computed directly where P is near 1 so small tails keep their digits. */
export function regularizedGammaQ(a: number, x: number): number {
  checkGammaArguments(a, x);
  if (x === 0) return 1;
  return x < a + 1 ? 1 - gammaSeries(a, x) : gammaContinuedFraction(a, x);
}

function checkGammaArguments(a: number, x: number): void {
  if (!(a > 0) || !(x >= 0)) throw new Error(`incomplete gamma: need a > 0 and x >= 0, got a=${a}, x=${x}`);
}

/** P(a, x) by its series: e^-x x^a / Γ(a+1) · Σ x^n / ((a+1)…(a+n)). */
function gammaSeries(a: number, x: number): number {
  let term = 1 / a;
  let sum = term;
  for (let n = 1; n < MAX_ITERATIONS; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPSILON) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

/** Q(a, x) by its continued fraction, evaluated with the modified Lentz method. */
function gammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPSILON) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** The chi-square distribution's upper tail: P(X >= statistic) with `df` degrees of freedom. */
export function chiSquarePValue(statistic: number, df: number): number {
  if (df <= 0) return 1;
  if (!(statistic >= 0)) throw new Error(`chiSquarePValue: ${statistic} is not >= 0`);
  return regularizedGammaQ(df / 2, statistic / 2);
}

export interface ChiSquareResult {
  /** Σ (observed - expected)² / expected over the categories expected to get something. */
  readonly statistic: number;
  /** Categories with an expected count above 0, minus one. */
  readonly degreesOfFreedom: number;
  readonly pValue: number;
}

/**
 * Pearson's goodness-of-fit test of counts against expected shares (any positive scale; they are
 * normalised). A count where nothing was expected makes the fit impossible: p = 0.
 */
export function chiSquareTest(observed: readonly number[], expectedShares: readonly number[]): ChiSquareResult {
  if (observed.length !== expectedShares.length) throw new Error('chiSquareTest: one expected share per observed count');
  const total = observed.reduce((s, n) => s + n, 0);
  const shareSum = expectedShares.reduce((s, p) => s + p, 0);
  let statistic = 0;
  let categories = 0;
  let impossible = false;
  observed.forEach((count, i) => {
    const expected = shareSum > 0 ? (total * expectedShares[i]!) / shareSum : 0;
    if (expected > 0) {
      categories++;
      statistic += (count - expected) ** 2 / expected;
    } else if (count > 0) {
      impossible = true;
    }
  });
  const degreesOfFreedom = Math.max(0, categories - 1);
  if (impossible) return { statistic: Infinity, degreesOfFreedom, pValue: 0 };
  return { statistic, degreesOfFreedom, pValue: total === 0 ? 1 : chiSquarePValue(statistic, degreesOfFreedom) };
}

/** The largest count over the mean count (1 is perfectly even); 0 when there are none. */
export function maxOverMean(counts: readonly number[]): number {
  if (counts.length === 0) return 0;
  const total = counts.reduce((s, n) => s + n, 0);
  if (total === 0) return 0;
  return Math.max(...counts) / (total / counts.length);
}
