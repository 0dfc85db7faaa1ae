/**
 * The `--probability` values of kube-proxy's load-balancing rules: Go's fmt "%0.10f" of 1/n.
 *
 * Go rounds the exact binary value of the float to 10 decimals, ties to even. JavaScript's
 * toFixed breaks ties upwards instead, which differs for 1/2048 = 0.00048828125 exactly (Go
 * writes 0.0004882812), so the value is rounded here from the float's exact bits.
 */

const DECIMALS = 10;
const SCALE = 10n ** BigInt(DECIMALS);

/**
 * Go's strconv.FormatFloat(x, 'f', 10, 64) for a finite, non-negative x.
 *
 * x * 10^10 in floating point is within one unit in the last place of the exact product, 2^-19
 * at most below 10^10: when its fraction is not within FAR_FROM_HALF of one half, the exact
 * product rounds to the same integer, found without BigInt (the first node of a big cluster
 * formats 1/n for n up to its largest port's endpoints, 5,000 of them: 35 ms with BigInt).
 * Nearer a half (a tie such as 1/2048), the float's exact bits decide (formatFixed10Exact).
 */
export function formatFixed10(x: number): string {
  if (!Number.isFinite(x) || x < 0) throw new Error(`formatFixed10: ${x} is not a finite non-negative number`);
  const scaled = x * 1e10;
  if (scaled < 1e10) {
    const floor = Math.floor(scaled);
    const fraction = scaled - floor;
    if (Math.abs(fraction - 0.5) > FAR_FROM_HALF) {
      const rounded = fraction < 0.5 ? floor : floor + 1;
      // rounded <= 10^10: "1.0000000000" for x just below 1, else "0." and ten digits.
      return rounded === 1e10 ? '1.0000000000' : `0.${String(rounded).padStart(DECIMALS, '0')}`;
    }
  }
  return formatFixed10Exact(x);
}

/** Far enough from one half that the float product's error (2^-19 at most, below 10^10) cannot cross it. */
const FAR_FROM_HALF = 2 ** -10;

/** formatFixed10 from the float's exact binary value, with BigInt: for any x (the fast path's check). */
export function formatFixed10Exact(x: number): string {
  if (!Number.isFinite(x) || x < 0) throw new Error(`formatFixed10: ${x} is not a finite non-negative number`);
  const { mantissa, exponent } = exactBinary(x);
  // x = mantissa * 2^exponent; scaled = x * 10^10 as a fraction numerator / denominator.
  let numerator = mantissa * SCALE;
  let denominator = 1n;
  if (exponent >= 0) numerator <<= BigInt(exponent);
  else denominator <<= BigInt(-exponent);
  let quotient = numerator / denominator;
  const twiceRemainder = (numerator % denominator) * 2n;
  if (twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n)) quotient += 1n;
  const digits = quotient.toString().padStart(DECIMALS + 1, '0');
  return `${digits.slice(0, -DECIMALS)}.${digits.slice(-DECIMALS)}`;
}

/** The float as mantissa * 2^exponent, both exact. */
function exactBinary(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const high = view.getUint32(0);
  const low = view.getUint32(4);
  const biasedExponent = (high >>> 20) & 0x7ff;
  const fraction = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  if (biasedExponent === 0) return { mantissa: fraction, exponent: -1074 };
  return { mantissa: fraction | (1n << 52n), exponent: biasedExponent - 1075 };
}

/** kube-proxy's computeProbability(n): the chance that rule i of n remaining rules matches. */
export function computeProbability(n: number): string {
  return formatFixed10(1 / n);
}

/**
 * Probabilities are 1/n for small n over and over; kube-proxy precomputes them for speed and so
 * do we. A cache is a plain array indexed by n.
 */
export class ProbabilityCache {
  private readonly values: string[] = [];
  /**
   * get(n)'s characters as bytes for n from 1 on, ENCODED_WIDTH at ENCODED_WIDTH * n (1/n is
   * "0." and ten digits, or "1.0000000000"), a zero first byte until made: one array, not an
   * array per n (5,000 for a big cluster's largest port, each an ArrayBuffer to the collector).
   */
  #encoded = new Uint8Array(ENCODED_WIDTH * 64);

  /** get(n) as ASCII bytes (a new array). */
  bytes(n: number): Uint8Array {
    const at = this.bytesAt(n);
    return this.#encoded.slice(at, at + ENCODED_WIDTH);
  }

  /**
   * Where get(n)'s ENCODED_WIDTH bytes are in encodedBytes, made when first asked for: for the
   * renderers (line-scratch.ts), which copy them from there. The string is not kept (a text
   * written as bytes reads only these).
   */
  bytesAt(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`probability of 1/${n}: n must be a positive integer`);
    const at = ENCODED_WIDTH * n;
    if (at + ENCODED_WIDTH > this.#encoded.length) {
      const grown = new Uint8Array(Math.max(2 * this.#encoded.length, at + ENCODED_WIDTH));
      grown.set(this.#encoded);
      this.#encoded = grown;
    }
    const encoded = this.#encoded;
    if (encoded[at] === 0) {
      const value = this.values[n] ?? computeProbability(n);
      if (value.length !== ENCODED_WIDTH) throw new Error(`probability of 1/${n} is ${value}, not ${ENCODED_WIDTH} characters`);
      for (let i = 0; i < ENCODED_WIDTH; i++) encoded[at + i] = value.charCodeAt(i);
    }
    return at;
  }

  /** The bytes bytesAt points into (replaced when they grow: read after bytesAt). */
  get encodedBytes(): Uint8Array {
    return this.#encoded;
  }

  get(n: number): string {
    let value = this.values[n];
    if (value === undefined) {
      value = computeProbability(n);
      this.values[n] = value;
    }
    return value;
  }
}

/** The characters of every 1/n with n >= 1 as kube-proxy writes it: "0.1666666667", "1.0000000000". */
export const ENCODED_WIDTH = DECIMALS + 2;
