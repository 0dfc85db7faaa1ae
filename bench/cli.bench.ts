/**
 * Start-up cost of the command line, as a user's script pays it on every call: whole-process runs
 * of `kpsim --version` and of `kpsim trace` of one flow on rules/example, through the installed
 * entry point (the bundle, dist/cli/main.js) and through the unbundled tsc output beside it, with
 * a bare `node -e 0` as the baseline of the same run. Medians of interleaved rounds; each run's
 * own CPU time (user + system, read by a preload at exit) beside its wall time.
 *
 *   npm run bench:cli [-- --quick]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machineLine, median } from './common.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 7 : 21;
const TARGETS_MS: Readonly<Record<string, number>> = { '--version': 100, trace: 300 };

const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = `${root}dist/cli/main.js`;
const unbundled = `${root}dist/src/cli/main.js`;
if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build`);

// Writes the process's own CPU time to stderr as it exits, after everything else it printed.
const CPU_PRELOAD = 'data:text/javascript,process.on("exit",()=>{const u=process.cpuUsage();process.stderr.write(`\\nKPSIM_CPU_US ${u.user+u.system}\\n`)})';
const TRACE_ARGS = ['trace', '-f', 'rules/example', '--src', '10.244.1.20', '--dst', '10.96.100.20', '--dport', '80', '-q'];

interface Case {
  readonly name: string;
  readonly target?: string;
  readonly args: readonly string[];
}

const cases: Case[] = [
  { name: 'node -e 0 (baseline)', args: ['-e', '0'] },
  { name: 'kpsim --version', target: '--version', args: [bundle, '--version'] },
  { name: 'kpsim --version (unbundled)', args: [unbundled, '--version'] },
  { name: 'kpsim trace, one flow', target: 'trace', args: [bundle, ...TRACE_ARGS] },
  { name: 'kpsim trace (unbundled)', args: [unbundled, ...TRACE_ARGS] },
];

function runOnce(c: Case): { wallMs: number; cpuMs: number } {
  const t0 = performance.now();
  const run = spawnSync(process.execPath, ['--import', CPU_PRELOAD, ...c.args], { cwd: root, encoding: 'utf8' });
  const wallMs = performance.now() - t0;
  if (run.status !== 0) throw new Error(`${c.name}: exit ${run.status}: ${run.stderr}`);
  const m = /KPSIM_CPU_US (\d+)/.exec(run.stderr);
  if (!m) throw new Error(`${c.name}: no CPU figure in ${JSON.stringify(run.stderr)}`);
  return { wallMs, cpuMs: Number(m[1]) / 1000 };
}

console.log(machineLine());
console.log(`${ROUNDS} rounds, cases interleaved within each round; medians\n`);
const wall = cases.map((): number[] => []);
const cpu = cases.map((): number[] => []);
for (let round = 0; round <= ROUNDS; round++) {
  cases.forEach((c, i) => {
    const r = runOnce(c);
    if (round === 0) return; // the first round warms the file cache
    wall[i]!.push(r.wallMs);
    cpu[i]!.push(r.cpuMs);
  });
}
const baseWall = median(wall[0]!);
const baseCpu = median(cpu[0]!);
console.log(`${'case'.padEnd(30)}${'wall ms'.padStart(9)}${'cpu ms'.padStart(9)}${'x node'.padStart(8)}  target`);
cases.forEach((c, i) => {
  const w = median(wall[i]!);
  const target = c.target === undefined ? '' : `wall < ${TARGETS_MS[c.target]} ms: ${w < TARGETS_MS[c.target]! ? 'met' : 'NOT met'}`;
  console.log(`${c.name.padEnd(30)}${w.toFixed(1).padStart(9)}${median(cpu[i]!).toFixed(1).padStart(9)}${(w / baseWall).toFixed(2).padStart(8)}  ${target}`);
});
console.log(`\nbaseline: node itself starts in ${baseWall.toFixed(1)} ms wall, ${baseCpu.toFixed(1)} ms CPU on this machine now`);
