/**
 * Latency percentiles. autocannon's own histogram keeps whole milliseconds, which reads every
 * loopback request as 0 ms; kpsim keeps each response time as a float (from autocannon's
 * hrtime-based duration) and ranks them exactly, so sub-millisecond differences between a direct
 * backend and the proxy stay visible.
 */

/** Response times in milliseconds, grown by doubling; a few MB even for a long run. */
export class LatencySamples {
  #values = new Float64Array(4096);
  #count = 0;

  add(ms: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = ms;
  }

  get count(): number {
    return this.#count;
  }

  /** A sorted copy of the samples. */
  sorted(): Float64Array {
    return this.#values.slice(0, this.#count).sort();
  }
}

export interface LatencySummary {
  /** Number of samples the figures are taken from. */
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * The nearest-rank percentile of sorted values: the smallest value with at least p% of the values
 * at or below it. 0 for no values (the summary's count says there were none).
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile ${p} is not in 0..100`);
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function summarizeLatency(sorted: ArrayLike<number>): LatencySummary {
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
  return {
    count: sorted.length,
    meanMs: sorted.length === 0 ? 0 : sum / sorted.length,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
  };
}
