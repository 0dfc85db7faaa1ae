/**
 * kpsim's one connection simulator, behind `kpsim simulate` and `kpsim compare`'s simulated rows:
 * one seeded stream of new connections (stream.ts) replayed (replay.ts) against each mode's
 * picker, which the mode's driver makes (src/node/modes/): iptables mode walks the compiled
 * rules with the kernel's random draw and keeps the `recent` lists of ClientIP affinity; IPVS
 * mode runs the kernel's scheduler with its connection table (active and inactive counts,
 * persistence templates). Every mode of one run sees the same events.
 *
 * `simulate`'s report: per endpoint the connections received and held at the end, with fairness
 * figures: max/mean and a chi-square goodness-of-fit p-value against the share the mode should
 * give (iptables: the rules' probabilities; IPVS: weight-proportional, so draining weight-0
 * dests expect nothing).
 */
import { KpsimError } from '../errors.js';
import type { ModeCompileOptions, RulesMode, SimulationTarget } from '../node/mode-driver.js';
import { modeDriver } from '../node/modes.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import type { Packet } from '../trace/types.js';
import { joinHostPort, splitHostPort } from '../util/ip.js';
import { type ChiSquareResult, chiSquareTest, maxOverMean } from './fairness.js';
import type { Picker } from './picker.js';
import { type ConnectionEvent, type OpenEvent, type ReplayReport, replayConnections } from './replay.js';
import { connectionStream, SPREAD_CLIENTS } from './stream.js';

export type SimulateMode = RulesMode;

/** Mean connection lifetime without --keepalive, in seconds. */
export const SHORT_LIFETIME_SECONDS = 1;
/** With --keepalive: one packet this often keeps an idle IPVS connection from timing out. */
export const KEEPALIVE_SECONDS = 30;

// ---------------------------------------------------------------- every mode on one stream

export interface ModeRunsOptions {
  readonly modes: readonly RulesMode[];
  /** IPVS schedulers (one run each). */
  readonly schedulers: readonly string[];
  readonly seed: number;
  /** Run the clock on to this time after the last event. */
  readonly endAt?: number;
  /** Events replayed untimed on a picker of their own first (compiled chains and the JIT warm). */
  readonly warmupEvents?: readonly ConnectionEvent[];
  /** Wraps each picker (progress counting). */
  readonly wrap?: (picker: Picker) => Picker;
  /** Extra compile options for every mode. */
  readonly compile?: ModeCompileOptions;
  /** A clock in milliseconds, to time each replay (`compare`'s decisions/s); untimed without one. */
  readonly clockMs?: () => number;
  /** Called before each run starts. */
  readonly onRun?: (mode: RulesMode, scheduler: string) => void;
}

export interface ModeRun {
  readonly mode: RulesMode;
  /** "random" for iptables, else the IPVS scheduler. */
  readonly scheduler: string;
  /** The scheduler is a choice of this run (IPVS), not the mode's only way. */
  readonly scheduled: boolean;
  readonly report: ReplayReport;
  /** Each endpoint's share in the long run. */
  readonly expected: ReadonlyMap<string, number>;
  /** Wall time of the replay (the picks), in seconds; 0 without a clock. */
  readonly seconds: number;
  /** Rules checked per new connection, from the mode's driver, over `lookupPackets` of the stream. */
  rulesPerLookup(lookupPackets: number): number;
}

/** How many runs `modes` × `schedulers` make. */
export function runCount(modes: readonly RulesMode[], schedulers: readonly string[]): number {
  return modes.reduce((n, mode) => n + modeDriver(mode).variants(schedulers).length, 0);
}

/** Replays `events` to `target` through every mode asked for (IPVS once per scheduler). */
export function simulateModes(
  node: ResolvedNode, target: SimulationTarget, events: readonly ConnectionEvent[], opts: ModeRunsOptions,
): ModeRun[] {
  const runs: ModeRun[] = [];
  for (const mode of opts.modes) {
    const driver = modeDriver(mode);
    for (const variant of driver.variants(opts.schedulers)) {
      opts.onRun?.(mode, variant.scheduler);
      // A replay runs over time: terminating endpoints kube-proxy would still be draining stay (IPVS: weight 0).
      const compiled = driver.compile(node, [target.state], { gracefulTermination: true, ...opts.compile, ...variant.options });
      if (opts.warmupEvents && opts.warmupEvents.length > 0) {
        replayConnections(driver.picker(compiled, target, { seed: opts.seed }), opts.warmupEvents);
      }
      const picker = driver.picker(compiled, target, { seed: opts.seed });
      const started = opts.clockMs?.() ?? 0;
      const report = replayConnections(opts.wrap ? opts.wrap(picker) : picker, events, opts.endAt !== undefined ? { endAt: opts.endAt } : {});
      const seconds = ((opts.clockMs?.() ?? 0) - started) / 1000;
      runs.push({
        mode,
        scheduler: variant.scheduler,
        scheduled: variant.options.scheduler !== undefined,
        report,
        expected: driver.expectedShares(compiled, target),
        seconds,
        rulesPerLookup: (count) => driver.rulesPerLookup(compiled, events.slice(0, count).map((e) => packetOf(target, e))),
      });
    }
  }
  return runs;
}

/** The first packet of an opened connection, as the mode's rules see it. */
function packetOf(target: SimulationTarget, event: ConnectionEvent): Packet {
  const client = event.kind === 'open' ? splitHostPort(event.client) : undefined;
  if (client === undefined) throw new Error(`simulate: ${JSON.stringify(event)} does not open a connection from ip:port`);
  return { proto: target.proto, src: client.ip, sport: client.port, dst: target.address, dport: target.port };
}

// ---------------------------------------------------------------- kpsim simulate

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

/** A target's service port as the simulator sends to it: by its ClusterIP. */
export interface TargetChoice {
  readonly state: ProxierState;
  readonly sp: ProxierServicePort;
  readonly chosenBy: 'flag' | 'first-with-endpoints';
}

export function simulationReport(
  view: { node: ResolvedNode; states: readonly ProxierState[] }, opts: SimulationOptions, chosen: TargetChoice, onProgress?: ProgressCallback,
): SimulationReport {
  const { state, sp, chosenBy } = chosen;
  const events = workload(state, opts);
  const total = opts.connections * runCount(opts.modes, opts.schedulers);
  let done = 0;
  const wrap = (picker: Picker): Picker => onProgress === undefined ? picker : {
    ...picker,
    pick(client: string) {
      done++;
      if (done % 1000 === 0 || done === total) onProgress(done, total);
      return picker.pick(client);
    },
  };
  const target: SimulationTarget = { state, servicePort: sp, address: sp.info.clusterIP, port: sp.info.port, proto: protocolWord(sp) };
  const affinity = sp.info.sessionAffinityTimeoutSeconds > 0;
  const runs = simulateModes(view.node, target, events, { modes: opts.modes, schedulers: opts.schedulers, seed: opts.seed, endAt: opts.durationSeconds, wrap })
    .map((run) => runOf(run.mode, run.scheduler, affinity, run.report, run.expected));
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
      clients: SPREAD_CLIENTS[state.family],
      seed: opts.seed,
    },
    runs,
  };
}

/** The first service port (by name) that has endpoints: what `simulate` picks without --target. */
export function firstWithEndpoints(states: readonly ProxierState[]): TargetChoice {
  for (const state of states) {
    const sp = state.servicePorts.find((p) => p.categorized.allReachableEndpoints.length > 0);
    if (sp) return { state, sp, chosenBy: 'first-with-endpoints' };
  }
  throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', 'no service port has endpoints on this node: nothing to simulate');
}

/** `simulate`'s stream: clients spread over a /16, arrivals uniform over the duration. */
export function workload(state: ProxierState, opts: Pick<SimulationOptions, 'connections' | 'durationSeconds' | 'keepalive' | 'seed'>): OpenEvent[] {
  return connectionStream({
    connections: opts.connections,
    family: state.family,
    clients: 'spread',
    arrivals: { kind: 'uniform', durationSeconds: opts.durationSeconds },
    lifetime: { kind: 'exponential', meanSeconds: opts.keepalive ? opts.durationSeconds : SHORT_LIFETIME_SECONDS },
    ...(opts.keepalive ? { keepaliveSeconds: KEEPALIVE_SECONDS } : {}),
    seed: opts.seed,
  });
}

function protocolWord(sp: ProxierServicePort): 'tcp' | 'udp' | 'sctp' {
  return sp.info.protocol === 'TCP' ? 'tcp' : sp.info.protocol === 'UDP' ? 'udp' : 'sctp';
}

function runOf(mode: SimulateMode, scheduler: string, affinity: boolean, report: ReplayReport, expected: ReadonlyMap<string, number>): SimulationRun {
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
