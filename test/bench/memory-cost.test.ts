/**
 * mainThreadSchedule counts the main thread's own time on a core, not the other threads' (which
 * the process's CPU time also counts): work on the main thread shows in it, a worker thread's
 * work beside it does not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { mainThreadSchedule } from '../../bench/memory-cost.js';

/** Busy on this thread until it has used `ms` of CPU time (process.cpuUsage counts every thread: nothing else runs here meanwhile). */
function spin(ms: number): void {
  const c0 = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 100_000; i++) x = (x * 31 + i) | 0;
    const c = process.cpuUsage(c0);
    if ((c.user + c.system) / 1000 >= ms) break;
  }
  if (x === 0.5) console.log(x);
}

const hasSchedstat = mainThreadSchedule() !== undefined;

test('mainThreadSchedule: the main thread\'s work counts, a worker thread\'s beside it does not', { skip: !hasSchedstat && 'needs /proc/self/task/<pid>/schedstat' }, async () => {
  const cases: { name: string; run: () => Promise<void>; mainAtLeast: number; mainAtMost: number }[] = [
    { name: 'the main thread busy for 150 ms of CPU', run: async () => spin(150), mainAtLeast: 120, mainAtMost: Infinity },
    {
      name: 'a worker thread busy for 300 ms of CPU while the main thread waits',
      run: () => new Promise<void>((resolve, reject) => {
        const w = new Worker(`
          const t0 = process.cpuUsage(); let x = 0;
          for (;;) { for (let i = 0; i < 100000; i++) x = (x * 31 + i) | 0; const c = process.cpuUsage(t0); if ((c.user + c.system) / 1000 >= 300) break; }
          if (x === 0.5) console.log(x);
        `, { eval: true });
        w.on('error', reject);
        w.on('exit', () => resolve());
      }),
      mainAtLeast: 0,
      mainAtMost: 150,
    },
  ];
  for (const c of cases) {
    const s0 = mainThreadSchedule()!;
    const c0 = process.cpuUsage();
    await c.run();
    const s1 = mainThreadSchedule()!;
    const cpu = process.cpuUsage(c0);
    const runMs = s1.runMs - s0.runMs;
    const evidence = `${c.name}: main thread ${runMs.toFixed(1)} ms on a core, ${(s1.waitMs - s0.waitMs).toFixed(1)} ms waiting; process CPU ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms`;
    assert.ok(runMs >= c.mainAtLeast && runMs <= c.mainAtMost, evidence);
    assert.ok(s1.waitMs >= s0.waitMs, evidence);
  }
});
