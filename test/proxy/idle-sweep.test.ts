/**
 * The idle sweep on mocked timers: which connections it closes after how many ticks, and that
 * its timer runs only while it has connections.
 */
import { type TestContext, test } from 'node:test';
import { IdleSweep, type IdleMember } from '../../src/proxy/idle-sweep.js';
import { eventually, sleep } from './helpers.js';

/** 8 ticks per timeout (the sweep's SLICES): one tick is 10 ms of an 80 ms timeout. */
const TIMEOUT_MS = 80;
const TICK_MS = 10;

function member(): IdleMember & { closed: number } {
  return { idleTick: -1, closed: 0, onIdle() { this.closed++; } };
}

const cases: { name: string; busyTicks: number[]; ticks: number; wantClosed: number }[] = [
  { name: 'still at the timeout itself: kept (the last byte may have moved just before a tick)', busyTicks: [], ticks: 8, wantClosed: 0 },
  { name: 'still one tick past the timeout: closed once', busyTicks: [], ticks: 9, wantClosed: 1 },
  { name: 'closed once only, however long the sweep runs on', busyTicks: [], ticks: 30, wantClosed: 1 },
  { name: 'bytes at tick 5: the count starts again there', busyTicks: [5], ticks: 13, wantClosed: 0 },
  { name: 'bytes at tick 5, then still: closed at tick 14', busyTicks: [5], ticks: 14, wantClosed: 1 },
  { name: 'busy every few ticks: never closed', busyTicks: [4, 8, 12, 16, 20, 24], ticks: 30, wantClosed: 0 },
];

for (const c of cases) {
  test(`idle sweep: ${c.name}`, (t: TestContext) => {
    t.plan(1);
    t.mock.timers.enable({ apis: ['setInterval'] });
    const sweep = new IdleSweep(TIMEOUT_MS);
    const m = member();
    const other = member(); // keeps the timer running after m is closed
    sweep.add(m);
    sweep.add(other);
    for (let tick = 1; tick <= c.ticks; tick++) {
      t.mock.timers.tick(TICK_MS);
      other.idleTick = sweep.tick;
      if (c.busyTicks.includes(tick)) m.idleTick = sweep.tick;
    }
    sweep.stop();
    t.assert.strictEqual(m.closed, c.wantClosed, `closed ${m.closed} time(s) after ${c.ticks} ticks`);
  });
}

/**
 * On real timers: Node 20's mocked setInterval keeps firing when cleared from its own callback,
 * which is where the sweep stops itself. Each step waits for the tick it is about, however late
 * it comes; only "no further tick" is checked over a short real wait, and a slow machine can only
 * make that check pass, never fail.
 */
test('idle sweep: the timer stops at the first tick with nothing open, and starts again on add', async (t: TestContext) => {
  t.plan(4);
  const sweep = new IdleSweep(16); // a 2 ms tick
  const m = member();
  sweep.add(m);
  sweep.delete(m);
  t.assert.ok(await eventually(() => sweep.tick >= 1), 'the first tick comes');
  t.assert.strictEqual(await tickAfterAWhile(sweep), 1, 'and, finding nothing open, is the last');
  const again = member();
  sweep.add(again);
  const closed = await eventually(() => again.closed === 1);
  t.assert.ok(closed, 'a connection added later is swept again');
  // It closed at tick 1 + SLICES + 1 = 10, the tick that found it idle and then nothing open.
  t.assert.strictEqual(await tickAfterAWhile(sweep), 10, 'and the timer stopped in the tick that closed it');
});

/** The sweep's tick after 20 real milliseconds: ten of its ticks, had it not stopped. */
async function tickAfterAWhile(sweep: IdleSweep): Promise<number> {
  await sleep(20);
  return sweep.tick;
}
