/**
 * Dial timeouts on one timer, on mocked timers and a test clock: a dial past its deadline is
 * given up once, a dial that completed (deleted) never, and each dial keeps its own timeout. A
 * dial whose deadline the check found passed but whose connect completed in the same loop turn
 * (the process stalled) is not given up: expiry waits for the turn's I/O.
 */
import { type TestContext, test } from 'node:test';
import { type DialMember, DialWatch } from '../../src/proxy/dial-watch.js';

function dial(): DialMember & { timedOut: number } {
  return { dialDeadline: 0, timedOut: 0, onDialTimeout() { this.timedOut++; } };
}

/** Shortest timeout 80 ms: deadlines are checked every 10 ms. */
const cases: { name: string; timeoutMs: number; completesAtMs?: number; runMs: number; want: number }[] = [
  { name: 'still inside its timeout', timeoutMs: 80, runMs: 70, want: 0 },
  { name: 'past its timeout: given up, within a check period', timeoutMs: 80, runMs: 90, want: 1 },
  { name: 'given up once however long the watch runs', timeoutMs: 80, runMs: 400, want: 1 },
  { name: 'completed before its deadline: never', timeoutMs: 80, completesAtMs: 50, runMs: 400, want: 0 },
  { name: 'a longer timeout of its own (a later attempt)', timeoutMs: 160, runMs: 150, want: 0 },
  { name: 'a longer timeout of its own, past it', timeoutMs: 160, runMs: 170, want: 1 },
];

for (const c of cases) {
  test(`dial watch: ${c.name}`, (t: TestContext) => {
    t.plan(1);
    t.mock.timers.enable({ apis: ['setInterval'] });
    let now = 1000;
    const afterIo: (() => void)[] = [];
    const watch = new DialWatch(80, () => now, (fn) => afterIo.push(fn));
    const d = dial();
    const other = dial();
    watch.add(d, c.timeoutMs);
    watch.add(other, 10_000); // keeps the watch busy throughout
    for (let ms = 10; ms <= c.runMs; ms += 10) {
      now += 10;
      if (c.completesAtMs !== undefined && ms === c.completesAtMs) watch.delete(d);
      t.mock.timers.tick(10);
      for (const fn of afterIo.splice(0)) fn();
    }
    watch.stop();
    t.assert.strictEqual(d.timedOut, c.want, `timed out ${d.timedOut} time(s) after ${c.runMs} ms`);
  });
}

/** The check runs, then the turn's I/O (the connect completes, or not), then what the check deferred. */
const stalls: { name: string; completesInTheTurn: boolean; retriedInTheTurnMs?: number; want: number }[] = [
  { name: 'its connect completed in the same turn: not given up', completesInTheTurn: true, want: 0 },
  { name: 'still pending after the turn\'s I/O: given up', completesInTheTurn: false, want: 1 },
  { name: 'failed and retried in the same turn: the retry keeps its own deadline', completesInTheTurn: false, retriedInTheTurnMs: 500, want: 0 },
];

for (const c of stalls) {
  test(`dial watch after a stall: ${c.name}`, (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    let now = 1000;
    const afterIo: (() => void)[] = [];
    const watch = new DialWatch(80, () => now, (fn) => afterIo.push(fn));
    const d = dial();
    watch.add(d, 80);
    // The process stalls for 300 ms: the next check finds the deadline long passed.
    now += 300;
    t.mock.timers.tick(10);
    t.assert.strictEqual(afterIo.length, 1, 'the check defers the expiry');
    if (c.completesInTheTurn) watch.delete(d);
    if (c.retriedInTheTurnMs !== undefined) watch.add(d, c.retriedInTheTurnMs);
    for (const fn of afterIo.splice(0)) fn();
    watch.stop();
    t.assert.strictEqual(d.timedOut, c.want, `timed out ${d.timedOut} time(s)`);
  });
}
