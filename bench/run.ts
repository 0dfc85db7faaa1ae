/**
 * Runs every benchmark in turn, each in its own Node process (so one's heap and JIT state do not
 * colour the next), passing on --quick. Each benchmark prints its own figures and ratios.
 *
 *   npm run bench              every benchmark
 *   npm run bench -- --quick   shorter runs
 *   npm run bench -- trace     only the named ones (compile, trace, ipvs-schedulers, ipvs-compile, proxy)
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
const wanted = args.filter((a) => !a.startsWith('--'));
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .map((f) => f.replace(/\.bench\.js$/, ''))
  .filter((name) => wanted.length === 0 || wanted.includes(name))
  .sort();

if (benches.length === 0) {
  process.stderr.write(`no benchmark named ${wanted.join(', ')}\n`);
  process.exitCode = 2;
}
let failed = 0;
for (const name of benches) {
  process.stdout.write(`\n=== ${name} ===\n`);
  const result = spawnSync(process.execPath, ['--expose-gc', join(here, `${name}.bench.js`), ...flags], { stdio: 'inherit' });
  if (result.status !== 0) failed++;
}
if (failed > 0) process.exitCode = 1;
