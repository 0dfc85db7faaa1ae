/**
 * The bounded-frequency runner (pkg/proxy/runner/bounded_frequency_runner.go), on a clock the
 * test moves by hand: requests coalesce, minInterval passes between the end of one run and the
 * start of the next, a run happens at least once per maxInterval, a failure is retried within
 * retryInterval and a success cancels the retry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedFrequencyRunner, type RunnerTimers } from '../../src/agent/runner.js';

/** Timers on a clock that moves only when told to. */
class FakeClock implements RunnerTimers {
  now = 0;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.push({ at: this.now + ms, fn, id });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Move to `to`, firing each timer at its time, letting the runner's promises settle after each. */
  async advanceTo(to: number): Promise<void> {
    for (;;) {
      await settle();
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const first = this.#timers[0];
      if (first === undefined || first.at > to) break;
      this.#timers.shift();
      this.now = first.at;
      first.fn();
    }
    this.now = to;
    await settle();
  }
}

function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function makeRunner(clock: FakeClock, results: boolean[] = [], intervals = { minIntervalMs: 1000, retryIntervalMs: 30_000, maxIntervalMs: 3_600_000 }) {
  const starts: number[] = [];
  const runner = new BoundedFrequencyRunner('test', () => {
    starts.push(clock.now);
    return results.shift() ?? true;
  }, intervals, clock);
  return { runner, starts };
}

test('requests coalesce and are held back until minInterval has passed since the last run', async () => {
  const clock = new FakeClock();
  const { runner, starts } = makeRunner(clock);
  runner.loop();
  runner.run();
  await clock.advanceTo(100);
  for (let i = 0; i < 5; i++) runner.run();
  await clock.advanceTo(500);
  runner.run();
  await clock.advanceTo(5000);
  assert.deepEqual(starts, [0, 1000], 'one run at once, then one for all the requests made while cooling down');
});

test('a run happens at least once per maxInterval without any request', async () => {
  const clock = new FakeClock();
  const { runner, starts } = makeRunner(clock, [], { minIntervalMs: 1000, retryIntervalMs: 30_000, maxIntervalMs: 60_000 });
  runner.loop();
  await clock.advanceTo(200_000);
  assert.deepEqual(starts, [60_000, 120_000, 180_000]);
  runner.run();
  await clock.advanceTo(200_500);
  await clock.advanceTo(270_000);
  assert.deepEqual(starts, [60_000, 120_000, 180_000, 200_000, 260_000], 'the max interval counts from the last run');
});

test('a failed run is retried within retryInterval; a success cancels the retry', async () => {
  const clock = new FakeClock();
  const { runner, starts } = makeRunner(clock, [false, true]);
  runner.loop();
  runner.run();
  await clock.advanceTo(40_000);
  assert.deepEqual(starts, [0, 30_000], 'the retry comes retryInterval after the failure');
  const second = makeRunner(new FakeClock(), [false, true]);
  const clock2 = (second.runner as unknown as { timers: FakeClock }).timers;
  second.runner.loop();
  second.runner.run();
  await clock2.advanceTo(5000);
  second.runner.run();
  await clock2.advanceTo(100_000);
  assert.deepEqual(second.starts, [0, 5000], 'a request after the failure ran at 5 s and succeeded: no retry at 30 s');
});

test('nothing runs before the loop starts, nor after it stops', async () => {
  const clock = new FakeClock();
  const { runner, starts } = makeRunner(clock);
  runner.run();
  await clock.advanceTo(10_000);
  assert.deepEqual(starts, []);
  runner.loop();
  runner.run();
  runner.stop();
  runner.run();
  await clock.advanceTo(100_000);
  assert.deepEqual(starts, [10_000], 'the one run asked for between loop() and stop()');
});
