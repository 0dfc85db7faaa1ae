/**
 * `kpsim simulate`: replay a seeded stream of new connections to one service port through each
 * mode kpsim compiles (src/simulate/: one simulator, the modes' own pickers) and show per
 * endpoint how many connections it received and holds at the end, with fairness figures:
 * max/mean and a chi-square goodness-of-fit p-value against the expected share (iptables: the
 * rules' probabilities; IPVS: weight-proportional, so draining weight-0 dests expect nothing).
 *
 * The workload: clients spread over a /16 (100.64.0.0/16; IPv6: 2001:db8:c11e::/112), source
 * ports from Linux's ephemeral range, arrival times uniform over --duration, lifetimes
 * exponential with a mean of 1 s; with --keepalive, a mean of the whole duration, with a packet
 * every 30 s so IPVS does not time them out, so least-connection schedulers see open
 * connections and random or round-robin picks leave some endpoints holding more of them.
 */
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { KpsimError } from '../errors.js';
import { parseTargetFlag } from '../load/target.js';
import type { RulesMode } from '../node/mode-driver.js';
import { RULES_MODES } from '../node/modes.js';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import {
  KEEPALIVE_SECONDS, type ProgressCallback, type SimulationOptions, type SimulationReport, type TargetChoice,
  firstWithEndpoints, runCount, simulationReport,
} from '../simulate/simulation.js';
import { parseTimeline } from '../simulate/cluster-timeline.js';
import { formatTimelineReport, simulateTimeline } from '../simulate/timeline.js';
import { workload } from '../simulate/simulation.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import {
  type ClusterOptions, type LoadedCluster, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, parseIntegerFlag,
  parseNumberFlag, usageError,
} from './common.js';
import { summaryOf } from './command-table.js';

export type { SimulationOptions, SimulationReport, SimulationRun, EndpointOutcome, Fairness } from '../simulate/simulation.js';
export { workload, KEEPALIVE_SECONDS, SHORT_LIFETIME_SECONDS } from '../simulate/simulation.js';

export const SIMULATE_MODES: readonly RulesMode[] = RULES_MODES;
/** Runs with more connections than this in total show a progress bar (on a terminal). */
export const PROGRESS_THRESHOLD = 200_000;

/** The report for the service port `opts.target` names (or the first with endpoints). */
export function runSimulation(view: { node: ResolvedNode; states: readonly ProxierState[] }, opts: SimulationOptions, onProgress?: ProgressCallback): SimulationReport {
  return simulationReport(view, opts, chooseTarget(view.states, opts.target), onProgress);
}

/** The service port named by --target, or the first one (by name) that has endpoints. */
export function chooseTarget(states: readonly ProxierState[], target: string | undefined): TargetChoice {
  if (target === undefined) return firstWithEndpoints(states);
  const spec = parseTargetFlag(target);
  if (spec.kind !== 'service') throw usageError('--target', `${JSON.stringify(target)} is not svc/NAME[:port]`);
  for (const state of states) {
    const ports = state.servicePorts.filter((p) => p.info.svcPortName.name === spec.name && (spec.namespace === undefined || p.info.svcPortName.namespace === spec.namespace));
    const inDefault = ports.filter((p) => p.info.svcPortName.namespace === 'default');
    const candidates = spec.namespace === undefined && inDefault.length > 0 ? inDefault : ports;
    const sp = spec.port === undefined
      ? candidates.find((p) => p.categorized.allReachableEndpoints.length > 0) ?? candidates[0]
      : candidates.find((p) => p.info.svcPortName.port === spec.port || String(p.info.port) === spec.port);
    if (sp) return { state, sp, chosenBy: 'flag' };
  }
  const known = [...new Set(states.flatMap((s) => s.servicePorts.map((p) => p.info.spn)))].join(', ') || 'none';
  throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', `--target ${target}: no such service port; service ports: ${known}`);
}

// ---------------------------------------------------------------- text

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'inf';
}

function pValueText(p: number): string {
  return p >= 0.001 ? p.toFixed(3) : p === 0 ? '0' : p.toExponential(1);
}

export function formatSimulationReport(report: SimulationReport): string {
  const t = report.target;
  const w = report.workload;
  const lines = [
    `target: ${t.servicePort} ${t.protocol} ${t.address}${t.affinityTimeoutSeconds > 0 ? ` (ClientIP affinity, ${t.affinityTimeoutSeconds} s)` : ''}`,
    ...(t.chosenBy === 'first-with-endpoints' ? ['  (the first service port with endpoints; choose another with --target svc/NAME[:port])'] : []),
    `workload: ${w.connections} connections from ${w.clients} over ${w.durationSeconds} s, lifetimes exponential with mean ${w.meanLifetimeSeconds} s${w.keepalive ? `, keepalive every ${KEEPALIVE_SECONDS} s` : ''}, seed ${w.seed}`,
  ];
  for (const run of report.runs) {
    // A mode without schedulers to choose runs once, as "random" (its rules' random draw).
    const title = run.scheduler === 'random'
      ? `${run.mode} (random${run.affinity ? ', ClientIP affinity' : ''})`
      : `${run.mode} ${run.scheduler}${run.affinity ? ' (persistent)' : ''}`;
    const width = Math.max(24, title.length + 2, ...run.endpoints.map((e) => e.endpoint.length + 4));
    lines.push('', `${title.padEnd(width)}${'received'.padStart(10)}${'share'.padStart(9)}${'expected'.padStart(10)}${'active'.padStart(8)}${'inactive'.padStart(10)}`);
    for (const e of run.endpoints) {
      lines.push(`  ${e.endpoint.padEnd(width - 2)}${String(e.received).padStart(10)}${fixed(e.share, 4).padStart(9)}${fixed(e.expectedShare, 4).padStart(10)}${String(e.active).padStart(8)}${String(e.inactive).padStart(10)}`);
    }
    if (run.refused > 0) lines.push(`  refused: ${run.refused}`);
    const f = run.fairness;
    lines.push(`  fairness: received max/mean ${fixed(f.receivedMaxOverMean, 3)}, chi-square ${fixed(f.chiSquare.statistic, 2)} (df ${f.chiSquare.degreesOfFreedom}) p=${pValueText(f.chiSquare.pValue)}; active at end max/mean ${fixed(f.activeMaxOverMean, 3)}`);
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------- the command

interface SimulateFlags extends ClusterOptions {
  mode?: string;
  scheduler?: string;
  connections?: string;
  duration?: string;
  keepalive?: boolean;
  target?: string;
  seed?: string;
  json?: boolean;
  events?: string;
}

/** The flags as simulation options; usage errors name the flag. */
export function simulationOptions(flags: SimulateFlags, loaded: Pick<LoadedCluster, 'cluster'>): SimulationOptions {
  const modes = (flags.mode ?? SIMULATE_MODES.join(',')).split(',').map((m) => parseChoiceFlag('--mode', m.trim(), SIMULATE_MODES));
  const schedulers = (flags.scheduler ?? (loaded.cluster.config.ipvsScheduler || 'rr')).split(',').map((s) => s.trim());
  for (const name of schedulers) {
    if (!isSchedulerName(name)) throw usageError('--scheduler', `unknown scheduler ${JSON.stringify(name)}: valid schedulers are ${schedulerNames.join(', ')}`);
  }
  const connections = parseIntegerFlag('--connections', flags.connections ?? '10000', 1, 10_000_000);
  const durationSeconds = parseNumberFlag('--duration', flags.duration ?? '60', 0);
  if (durationSeconds <= 0) throw usageError('--duration', `${JSON.stringify(flags.duration)} is not a number of seconds > 0`);
  const seed = parseIntegerFlag('--seed', flags.seed ?? '1', 0, 0xffffffff);
  if (flags.target !== undefined) parseTargetFlag(flags.target);
  return {
    modes: [...new Set(modes)], schedulers: [...new Set(schedulers)], connections, durationSeconds,
    keepalive: flags.keepalive ?? false, seed, ...(flags.target !== undefined ? { target: flags.target } : {}),
  };
}

export function registerSimulate(program: Command): void {
  const cmd = program
    .command('simulate')
    .description(summaryOf('simulate'));
  addClusterOptions(cmd)
    .addOption(new Option('--mode <modes>', `proxy modes, comma-separated: ${SIMULATE_MODES.join(', ')} (default: all)`))
    .option('--scheduler <names>', 'IPVS schedulers, comma-separated, one run each (default: the config\'s ipvs.scheduler, else rr)')
    .option('--connections <n>', 'new connections to replay', '10000')
    .option('--duration <seconds>', 'seconds over which the connections arrive', '60')
    .option('--keepalive', 'long-lived connections (mean lifetime: the whole duration), so open connections pile up')
    .option('--target <svc>', 'svc/NAME[:port] or svc/NAMESPACE/NAME[:port] (default: the first service port with endpoints)')
    .option('--seed <n>', 'seed for clients, arrivals, lifetimes and random picks', '1')
    .option('--json', 'print the report as JSON (kpsim.simulate/v1; with --events kpsim.simulate-events/v1)')
    .option('--events <file>', 'a timeline of cluster changes (endpoints added, removed, terminating; the service deleted) replayed against the connections: kept, broken, rebalanced, blackholed UDP, per endpoint and over time')
    .action(action(async (flags: SimulateFlags) => {
      const loaded = await loadClusterFromOptions(flags);
      const opts = simulationOptions(flags, loaded);
      if (flags.events !== undefined) {
        const timeline = parseTimeline(await readTimelineFile(flags.events), flags.events);
        const chosen = chooseTarget(loaded.states, opts.target);
        const report = simulateTimeline(loaded, chosen, workload(chosen.state, opts), timeline, flags.events, {
          modes: opts.modes, schedulers: opts.schedulers, seed: opts.seed, durationSeconds: opts.durationSeconds,
        });
        process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatTimelineReport(report));
        return;
      }
      const bar = progressBar(opts);
      let report: SimulationReport;
      try {
        report = runSimulation(loaded, opts, bar ? (done, total) => { bar.setTotal(total); bar.update(done); } : undefined);
      } finally {
        bar?.stop();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatSimulationReport(report));
    }));
}

async function readTimelineFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new KpsimError('KPSIM_ERR_MANIFEST_READ', `--events: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
}

/** A progress bar on stderr, only for big runs on a terminal. */
function progressBar(opts: SimulationOptions): SingleBar | undefined {
  const total = opts.connections * runCount(opts.modes, opts.schedulers);
  if (total < PROGRESS_THRESHOLD || !process.stderr.isTTY) return undefined;
  const bar = new SingleBar({ stream: process.stderr, format: 'simulate [{bar}] {percentage}% {value}/{total} connections', hideCursor: true });
  bar.start(total, 0);
  return bar;
}
