/**
 * `kpsim simulate`: replay a seeded stream of new connections to one service port through
 * kube-proxy's iptables mode (the statistic probabilities of the compiled rules, read with the
 * packet tracer; ClientIP affinity through the `recent` lists) and through its IPVS mode (the
 * compiled virtual server with each scheduler and the connection table), and show per endpoint
 * how many connections it received and holds at the end, with fairness figures: max/mean and a
 * chi-square goodness-of-fit p-value against the expected share (iptables: the rules'
 * probabilities; IPVS: weight-proportional, so draining weight-0 dests expect nothing).
 *
 * The workload: clients spread over a /16 (100.64.0.0/16; IPv6: 2001:db8:c11e::/112), source
 * ports from Linux's ephemeral range, arrival times uniform over --duration, lifetimes
 * exponential with a mean of 1 s; with --keepalive, a mean of the whole duration, with a packet
 * every 30 s so IPVS does not time them out, so least-connection schedulers see open
 * connections and random or round-robin picks leave some endpoints holding more of them.
 */
import { type Command, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { compileIptablesRules } from '../iptables/compile.js';
import { affinityPicker } from '../ipvs/affinity-picker.js';
import { compileIpvs } from '../ipvs/compile.js';
import { type ChiSquareResult, chiSquareTest, maxOverMean } from '../ipvs/fairness.js';
import { liveServiceOf } from '../ipvs/live-service.js';
import { type Picker, type ProbabilityRule, ipvsPicker, probabilityPicker } from '../ipvs/picker.js';
import { type ConnectionEvent, replayConnections } from '../ipvs/replay.js';
import { seededRng } from '../util/random.js';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { destAddr } from '../ipvs/table.js';
import { KpsimError } from '../errors.js';
import { parseTargetFlag } from '../load/target.js';
import { createTracer } from '../trace/tracer.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import {
  type ClusterOptions, type LoadedCluster, action, addClusterOptions, loadClusterFromOptions, parseChoiceFlag, parseIntegerFlag,
  parseNumberFlag, usageError,
} from './common.js';

export const SIMULATE_MODES = ['iptables', 'ipvs'] as const;
export type SimulateMode = (typeof SIMULATE_MODES)[number];

/** Mean connection lifetime without --keepalive, in seconds. */
export const SHORT_LIFETIME_SECONDS = 1;
/** With --keepalive: one packet this often keeps an idle IPVS connection from timing out. */
export const KEEPALIVE_SECONDS = 30;
/** Runs with more connections than this in total show a progress bar (on a terminal). */
export const PROGRESS_THRESHOLD = 200_000;
const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_COUNT = 60999 - 32768 + 1;

export interface SimulationOptions {
  modes: readonly SimulateMode[];
  /** IPVS schedulers to run (each one run of the IPVS mode). */
  schedulers: readonly string[];
  connections: number;
  durationSeconds: number;
  keepalive: boolean;
  seed: number;
  /** `svc/NAME[:port]` or `svc/NAMESPACE/NAME[:port]`; default the first service port with endpoints. */
  target?: string;
}

export interface EndpointOutcome {
  readonly endpoint: string;
  /** The share it should get: the rules' probability (iptables) or weight / total weight (IPVS). */
  readonly expectedShare: number;
  readonly received: number;
  readonly share: number;
  /** Connections open at the end (IPVS: ActiveConn). */
  readonly active: number;
  /** IPVS: InActConn (closing or UDP); iptables: closed connections still in TIME_WAIT. */
  readonly inactive: number;
}

export interface Fairness {
  /** Largest received count over the mean, among endpoints expected to get connections. */
  readonly receivedMaxOverMean: number;
  readonly chiSquare: ChiSquareResult;
  /** Largest open count at the end over the mean: the long-lived imbalance. */
  readonly activeMaxOverMean: number;
}

export interface SimulationRun {
  readonly mode: SimulateMode;
  /** "random" for iptables, else the IPVS scheduler. */
  readonly scheduler: string;
  readonly affinity: boolean;
  readonly endpoints: readonly EndpointOutcome[];
  readonly refused: number;
  readonly fairness: Fairness;
}

export interface SimulationReport {
  readonly schema: 'kpsim.simulate/v1';
  readonly target: {
    readonly servicePort: string;
    readonly protocol: string;
    readonly address: string;
    /** 'flag': named with --target; 'first-with-endpoints': chosen by kpsim. */
    readonly chosenBy: 'flag' | 'first-with-endpoints';
    readonly affinityTimeoutSeconds: number;
  };
  readonly workload: {
    readonly connections: number;
    readonly durationSeconds: number;
    readonly keepalive: boolean;
    readonly meanLifetimeSeconds: number;
    readonly clients: string;
    readonly seed: number;
  };
  readonly runs: readonly SimulationRun[];
}

/** Called with the number of connections placed so far, across all runs. */
export type ProgressCallback = (done: number, total: number) => void;

// ---------------------------------------------------------------- the core (no I/O)

export function runSimulation(states: readonly ProxierState[], opts: SimulationOptions, onProgress?: ProgressCallback): SimulationReport {
  const { state, sp, chosenBy } = chooseTarget(states, opts.target);
  const events = workload(state, opts);
  const total = opts.connections * runCount(opts);
  let done = 0;
  const counting = (picker: Picker): Picker => onProgress === undefined ? picker : {
    ...picker,
    pick(client: string) {
      done++;
      if (done % 1000 === 0 || done === total) onProgress(done, total);
      return picker.pick(client);
    },
  };

  const runs: SimulationRun[] = [];
  for (const mode of opts.modes) {
    if (mode === 'iptables') runs.push(iptablesRun(state, sp, events, opts, counting));
    else for (const scheduler of opts.schedulers) runs.push(ipvsRun(state, sp, scheduler, events, opts, counting));
  }
  const clients = state.family === 4 ? '100.64.0.0/16' : '2001:db8:c11e::/112';
  return {
    schema: 'kpsim.simulate/v1',
    target: {
      servicePort: sp.info.spn,
      protocol: sp.info.protocol,
      address: joinHostPort(sp.info.clusterIP, sp.info.port),
      chosenBy,
      affinityTimeoutSeconds: sp.info.sessionAffinityTimeoutSeconds,
    },
    workload: {
      connections: opts.connections,
      durationSeconds: opts.durationSeconds,
      keepalive: opts.keepalive,
      meanLifetimeSeconds: opts.keepalive ? opts.durationSeconds : SHORT_LIFETIME_SECONDS,
      clients,
      seed: opts.seed,
    },
    runs,
  };
}

function runCount(opts: SimulationOptions): number {
  return opts.modes.reduce((n, mode) => n + (mode === 'iptables' ? 1 : opts.schedulers.length), 0);
}

/** The service port named by --target, or the first one (by name) that has endpoints. */
export function chooseTarget(states: readonly ProxierState[], target: string | undefined): { state: ProxierState; sp: ProxierServicePort; chosenBy: 'flag' | 'first-with-endpoints' } {
  if (target === undefined) {
    for (const state of states) {
      const sp = state.servicePorts.find((p) => p.categorized.allReachableEndpoints.length > 0);
      if (sp) return { state, sp, chosenBy: 'first-with-endpoints' };
    }
    throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', 'no service port has endpoints on this node: nothing to simulate');
  }
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

/** The seeded connection stream: the same for every run, so the runs compare. */
export function workload(state: ProxierState, opts: Pick<SimulationOptions, 'connections' | 'durationSeconds' | 'keepalive' | 'seed'>): ConnectionEvent[] {
  const rng = seededRng(opts.seed);
  const times = Array.from({ length: opts.connections }, () => rng() * opts.durationSeconds).sort((a, b) => a - b);
  const meanLifetime = opts.keepalive ? opts.durationSeconds : SHORT_LIFETIME_SECONDS;
  return times.map((at) => {
    const host = Math.floor(rng() * 65536);
    const port = EPHEMERAL_FIRST + Math.floor(rng() * EPHEMERAL_COUNT);
    const ip = state.family === 4 ? `100.64.${host >> 8}.${host & 0xff}` : `2001:db8:c11e::${host.toString(16)}`;
    // Exponential lifetime; 1 - rng() is in (0, 1], so the log is finite.
    const durationSeconds = -Math.log(1 - rng()) * meanLifetime;
    return {
      kind: 'open' as const, at, client: joinHostPort(ip, port), durationSeconds,
      ...(opts.keepalive ? { keepaliveSeconds: KEEPALIVE_SECONDS } : {}),
    };
  });
}

/**
 * iptables: where the compiled rules send a new connection from a client to the ClusterIP, with
 * each endpoint's probability as the tracer sums it over the statistic branches; turned back into
 * the chain's rules (each matching with its share of what is left), in the chain's order.
 */
function iptablesRun(state: ProxierState, sp: ProxierServicePort, events: readonly ConnectionEvent[], opts: SimulationOptions, counting: (p: Picker) => Picker): SimulationRun {
  const ruleset = compileIptablesRules(state);
  const tracer = createTracer(ruleset, { localAddresses: state.localAddresses, masqueradeMark: Number.parseInt(state.masqueradeMark, 16) });
  const client = state.family === 4 ? '100.64.0.1' : '2001:db8:c11e::1';
  const traced = tracer.trace({ proto: protocolWord(sp), src: client, dst: sp.info.clusterIP, dport: sp.info.port }, { fromNode: false });
  const rules: ProbabilityRule[] = [];
  let left = 1;
  for (const endpoint of traced.endpoints) {
    const p = traced.probabilities[endpoint] ?? 0;
    rules.push({ addr: endpoint, probability: left > 0 ? Math.min(1, p / left) : 1 });
    left -= p;
  }
  // kube-proxy's last rule has no statistic match: keep it certain rather than 1 - rounding.
  if (rules.length > 0 && Math.abs(left) < 1e-9) rules[rules.length - 1] = { addr: rules[rules.length - 1]!.addr, probability: 1 };
  const rng = seededRng(opts.seed ^ 0x5bd1e995);
  const affinitySeconds = sp.info.sessionAffinityTimeoutSeconds;
  const picker = affinitySeconds > 0 ? affinityPicker(rules, { rng, timeoutSeconds: affinitySeconds }) : probabilityPicker(rules, { rng });
  const report = replayConnections(counting(picker), events, { endAt: opts.durationSeconds });
  const expected = new Map(traced.endpoints.map((e) => [e, traced.probabilities[e] ?? 0]));
  return runOf('iptables', 'random', affinitySeconds > 0, report, expected);
}

/** IPVS: the ClusterIP virtual server compiled with the scheduler, replayed with its connection table. */
function ipvsRun(state: ProxierState, sp: ProxierServicePort, scheduler: string, events: readonly ConnectionEvent[], opts: SimulationOptions, counting: (p: Picker) => Picker): SimulationRun {
  // A replay over time: terminating endpoints kube-proxy would still be draining stay as weight-0 dests.
  const compiled = compileIpvs(state, { scheduler, gracefulTermination: true });
  const vs = compiled.table.services.find((v) => v.address === sp.info.clusterIP && v.port === sp.info.port && v.protocol === sp.info.protocol);
  if (!vs) throw new Error(`simulate: no virtual server for ${sp.info.spn}`);
  const live = liveServiceOf(vs, { rng: seededRng(opts.seed ^ 0x1b873593) });
  const config = state.config;
  const picker = ipvsPicker(live, {
    expireNodestConn: true,
    ...(config.ipvsTCPTimeoutSeconds > 0 || config.ipvsTCPFinTimeoutSeconds > 0
      ? { tcpTimeoutsSeconds: {
        ...(config.ipvsTCPTimeoutSeconds > 0 ? { ESTABLISHED: config.ipvsTCPTimeoutSeconds } : {}),
        ...(config.ipvsTCPFinTimeoutSeconds > 0 ? { FIN_WAIT: config.ipvsTCPFinTimeoutSeconds } : {}),
      } }
      : {}),
    ...(config.ipvsUDPTimeoutSeconds > 0 ? { udpTimeoutSeconds: config.ipvsUDPTimeoutSeconds } : {}),
  });
  const report = replayConnections(counting(picker), events, { endAt: opts.durationSeconds });
  const totalWeight = vs.dests.reduce((sum, d) => sum + d.weight, 0);
  const expected = new Map(vs.dests.map((d) => [destAddr(d), totalWeight > 0 ? d.weight / totalWeight : 0]));
  return runOf('ipvs', scheduler, sp.info.sessionAffinityTimeoutSeconds > 0, report, expected);
}

function protocolWord(sp: ProxierServicePort): 'tcp' | 'udp' | 'sctp' {
  return sp.info.protocol === 'TCP' ? 'tcp' : sp.info.protocol === 'UDP' ? 'udp' : 'sctp';
}

function runOf(
  mode: SimulateMode, scheduler: string, affinity: boolean,
  report: ReturnType<typeof replayConnections>, expected: ReadonlyMap<string, number>,
): SimulationRun {
  const addrs = [...new Set([...expected.keys(), ...report.backends.map((b) => b.addr)])].sort();
  const placed = report.opened;
  const endpoints: EndpointOutcome[] = addrs.map((endpoint) => {
    const backend = report.backends.find((b) => b.addr === endpoint);
    const received = backend?.received ?? 0;
    return {
      endpoint,
      expectedShare: expected.get(endpoint) ?? 0,
      received,
      share: placed > 0 ? received / placed : 0,
      active: backend?.activeConns ?? 0,
      inactive: backend?.inactConns ?? 0,
    };
  });
  const expectedOnes = endpoints.filter((e) => e.expectedShare > 0);
  const fairness: Fairness = {
    receivedMaxOverMean: maxOverMean(expectedOnes.map((e) => e.received)),
    chiSquare: chiSquareTest(endpoints.map((e) => e.received), endpoints.map((e) => e.expectedShare)),
    activeMaxOverMean: maxOverMean(expectedOnes.map((e) => e.active)),
  };
  return { mode, scheduler, affinity, endpoints, refused: report.refused, fairness };
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
    const title = run.mode === 'iptables' ? `iptables (random${run.affinity ? ', recent affinity' : ''})` : `ipvs ${run.scheduler}${run.affinity ? ' (persistent)' : ''}`;
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
    .description('replay seeded connections to a service through iptables (random) and IPVS schedulers, and compare how evenly they spread');
  addClusterOptions(cmd)
    .addOption(new Option('--mode <modes>', `proxy modes, comma-separated: ${SIMULATE_MODES.join(', ')} (default: both)`))
    .option('--scheduler <names>', 'IPVS schedulers, comma-separated, one run each (default: the config\'s ipvs.scheduler, else rr)')
    .option('--connections <n>', 'new connections to replay', '10000')
    .option('--duration <seconds>', 'seconds over which the connections arrive', '60')
    .option('--keepalive', 'long-lived connections (mean lifetime: the whole duration), so open connections pile up')
    .option('--target <svc>', 'svc/NAME[:port] or svc/NAMESPACE/NAME[:port] (default: the first service port with endpoints)')
    .option('--seed <n>', 'seed for clients, arrivals, lifetimes and random picks', '1')
    .option('--json', 'print the report as JSON (kpsim.simulate/v1)')
    .action(action(async (flags: SimulateFlags) => {
      const loaded = await loadClusterFromOptions(flags);
      const opts = simulationOptions(flags, loaded);
      const bar = progressBar(opts);
      let report: SimulationReport;
      try {
        report = runSimulation(loaded.states, opts, bar ? (done, total) => { bar.setTotal(total); bar.update(done); } : undefined);
      } finally {
        bar?.stop();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatSimulationReport(report));
    }));
}

/** A progress bar on stderr, only for big runs on a terminal. */
function progressBar(opts: SimulationOptions): SingleBar | undefined {
  const total = opts.connections * runCount(opts);
  if (total < PROGRESS_THRESHOLD || !process.stderr.isTTY) return undefined;
  const bar = new SingleBar({ stream: process.stderr, format: 'simulate [{bar}] {percentage}% {value}/{total} connections', hideCursor: true });
  bar.start(total, 0);
  return bar;
}
