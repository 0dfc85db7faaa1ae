/**
 * kube-proxy's BoundedFrequencyRunner (pkg/proxy/runner/bounded_frequency_runner.go, 1.34 and
 * later), which decides when syncProxyRules runs:
 *
 * - `run()` asks for a run as soon as possible; requests made while a run is going on or
 *   cooling down coalesce into one (a one-slot channel);
 * - after each run, `minInterval` passes before the next starts (measured from the end of the
 *   run: kube-proxy resets its timers after the function returns);
 * - a run happens at least once per `maxInterval` (kube-proxy passes its FullSyncPeriod, one
 *   hour), even with no request;
 * - a failed run is retried within `retryInterval` (kube-proxy passes syncPeriod); any run that
 *   succeeds cancels the retry.
 *
 * The clock is passed in, so tests drive it by hand; the agent passes the real timers.
 */

/** The timers a runner uses (setTimeout's shape, in ms). */
export interface RunnerTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: RunnerTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface RunnerIntervals {
  readonly minIntervalMs: number;
  readonly retryIntervalMs: number;
  readonly maxIntervalMs: number;
}

/** What the runner runs: resolves true when the run succeeded (a throw counts as a failure). */
export type RunnerFunction = () => Promise<boolean> | boolean;

type Phase = 'stopped' | 'idle' | 'running' | 'cooling';

export class BoundedFrequencyRunner {
  #phase: Phase = 'stopped';
  /** A run was asked for (by run(), the max-interval timer or the retry timer) and not started yet. */
  #pending = false;
  #minTimer: unknown;
  #maxTimer: unknown;
  #retryTimer: unknown;

  constructor(
    readonly name: string,
    private readonly fn: RunnerFunction,
    private readonly intervals: RunnerIntervals,
    private readonly timers: RunnerTimers = realTimers,
  ) {
    if (intervals.maxIntervalMs < intervals.minIntervalMs) {
      throw new Error(`${name}: maxInterval (${intervals.maxIntervalMs} ms) must be >= minInterval (${intervals.minIntervalMs} ms)`);
    }
  }

  /** Start the loop (kube-proxy's Loop): nothing runs until a request or the max interval. */
  loop(): void {
    if (this.#phase !== 'stopped') return;
    this.#phase = 'idle';
    this.#armMax();
  }

  /** Ask for a run as soon as the bounds allow; ignored before loop() (as kube-proxy's before its loop is ready). */
  run(): void {
    if (this.#phase === 'stopped') return;
    this.#pending = true;
    if (this.#phase === 'idle') void this.#runNow();
  }

  stop(): void {
    this.#phase = 'stopped';
    this.#pending = false;
    for (const timer of [this.#minTimer, this.#maxTimer, this.#retryTimer]) if (timer !== undefined) this.timers.clearTimeout(timer);
    this.#minTimer = this.#maxTimer = this.#retryTimer = undefined;
  }

  get running(): boolean {
    return this.#phase === 'running';
  }

  async #runNow(): Promise<void> {
    this.#phase = 'running';
    this.#pending = false;
    if (this.#maxTimer !== undefined) this.timers.clearTimeout(this.#maxTimer);
    this.#maxTimer = undefined;
    let ok: boolean;
    try {
      ok = await this.fn();
    } catch {
      ok = false;
    }
    if ((this.#phase as Phase) === 'stopped') return;
    if (this.#retryTimer !== undefined) this.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = ok ? undefined : this.timers.setTimeout(() => this.#trigger(), this.intervals.retryIntervalMs);
    this.#armMax();
    this.#phase = 'cooling';
    this.#minTimer = this.timers.setTimeout(() => {
      this.#minTimer = undefined;
      if (this.#phase !== 'cooling') return;
      this.#phase = 'idle';
      if (this.#pending) void this.#runNow();
    }, this.intervals.minIntervalMs);
  }

  #armMax(): void {
    if (this.#maxTimer !== undefined) this.timers.clearTimeout(this.#maxTimer);
    this.#maxTimer = this.timers.setTimeout(() => {
      this.#maxTimer = undefined;
      this.#trigger();
    }, this.intervals.maxIntervalMs);
  }

  #trigger(): void {
    if (this.#phase === 'stopped') return;
    this.#pending = true;
    if (this.#phase === 'idle') void this.#runNow();
  }
}
