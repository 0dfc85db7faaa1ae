import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const helper = fileURLToPath(new URL('../../bench/interrupt.js', import.meta.url));

/**
 * A process that registers two undos (each appends its name to `log`), releases the second one
 * when asked, says "ready", then waits to be signalled.
 */
function script(log: string, releaseSecond: boolean, releaseAll: boolean): string {
  return `
    import { appendFileSync } from 'node:fs';
    import { undoOnInterrupt } from ${JSON.stringify(helper)};
    const first = undoOnInterrupt(() => appendFileSync(${JSON.stringify(log)}, 'first\\n'));
    const second = undoOnInterrupt(async () => { await new Promise((r) => setTimeout(r, 20)); appendFileSync(${JSON.stringify(log)}, 'second\\n'); });
    if (${releaseSecond}) second();
    if (${releaseAll}) { first(); second(); }
    setInterval(() => undefined, 1000);
    process.stdout.write('ready\\n');
  `;
}

interface Outcome { code: number | null; signal: NodeJS.Signals | null; undone: string[] }

function interrupt(signal: NodeJS.Signals, releaseSecond: boolean, releaseAll: boolean): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'kpsim-interrupt-test-'));
  const log = join(dir, 'log');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script(log, releaseSecond, releaseAll)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (chunk.includes('ready')) child.kill(signal);
    });
    child.on('error', reject);
    child.on('exit', (code, got) => {
      let undone: string[] = [];
      try {
        undone = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      } catch {
        // nothing was undone
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal: got, undone });
    });
  });
}

const cases: { name: string; signal: NodeJS.Signals; releaseSecond: boolean; releaseAll: boolean; want: Outcome }[] = [
  { name: 'SIGINT undoes everything, newest first, and exits 130', signal: 'SIGINT', releaseSecond: false, releaseAll: false, want: { code: 130, signal: null, undone: ['second', 'first'] } },
  { name: 'SIGTERM undoes everything and exits 143', signal: 'SIGTERM', releaseSecond: false, releaseAll: false, want: { code: 143, signal: null, undone: ['second', 'first'] } },
  { name: 'a released undo is not run', signal: 'SIGINT', releaseSecond: true, releaseAll: false, want: { code: 130, signal: null, undone: ['first'] } },
  { name: 'nothing registered: the signal ends the process as by default', signal: 'SIGTERM', releaseSecond: false, releaseAll: true, want: { code: null, signal: 'SIGTERM', undone: [] } },
];

for (const c of cases) {
  test(c.name, async () => {
    const got = await interrupt(c.signal, c.releaseSecond, c.releaseAll);
    assert.deepEqual(got, c.want, `exit ${got.code} (signal ${got.signal}), undone: ${got.undone.join(', ') || 'nothing'}`);
  });
}
