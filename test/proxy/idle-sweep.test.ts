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
 * which is where the sweep stops itself.
 */
test('idle sweep: the timer stops at the first tick with nothing open, and starts again on add', async (t: TestContext) => {
  t.plan(3);
  const sweep = new IdleSweep(16); // a 2 ms tick
  const m = member();
  sweep.add(m);
  sweep.delete(m);
  await sleep(20);
  const stoppedAt = sweep.tick;
  await sleep(20);
  t.assert.strictEqual(sweep.tick, stoppedAt, 'no ticks once nothing is open');
  const again = member();
  sweep.add(again);
  const closed = await eventually(() => again.closed === 1);
  t.assert.ok(closed, 'a connection added later is swept again');
  await sleep(20);
  const after = sweep.tick;
  await sleep(20);
  t.assert.strictEqual(sweep.tick, after, 'and the timer stopped once it was gone');
});
