/**
 * `kpsim compare`'s core (and `kpsim demo`'s): the same load sent straight to one backend pod
 * (the baseline) and through the userspace proxy with each scheduler, with real bytes on
 * loopback; then iptables and IPVS mode simulated on one stream of new connections. One report.
 */
import { KpsimError } from '../errors.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import { getScheduler } from '../ipvs/schedulers/registry.js';
import type { Protocol } from '../model/types.js';
import { type HostPort, chooseEndpoints } from '../proxy/index.js';
import { joinHostPort } from '../util/ip.js';
import { type ClusterView, type NodeRunOptions, type TargetOnCluster, connectionCounts, countsSince, startTarget } from './cluster-run.js';
import { nodeRunOptionsOf, withWorkers } from './load-test.js';
import { COMPARE_REPORT_SCHEMA, type CompareReport, type CompareRow, directRow, proxyRow } from './compare-report.js';
import { describeStream, simulatedRows, type StreamShape } from './simulate-modes.js';
import { RULES_MODES, modeDriver } from '../node/modes.js';
import { runCount } from '../simulate/simulation.js';
import { type ResolvedTarget, type TargetSpec, resolveTarget, targetAddress } from './target.js';
import type { LoadRunOptions, LoadRunResult } from './types.js';
import { DEFAULT_UDP_RATE, DEFAULT_UDP_TIMEOUT_SECONDS } from './udp-runner.js';
import { type LoadThread, loadThreadDescriptions, runLoadOn, udpLoadGeneratorDescriptions } from './worker-runner.js';

// The report's formatter, beside the core that makes the report (kpsim demo uses both).
export { formatCompareReport } from './compare-format.js';
export type { CompareReport, CompareRow } from './compare-report.js';

export interface CompareOptions extends NodeRunOptions {
  /** Default: the service port of the protocol with the most endpoints, by its ClusterIP. */
  target?: TargetSpec;
  /** TCP (HTTP load, default) or UDP (request/response datagrams at `rate`). */
  protocol?: Protocol;
  /** UDP: datagrams per second in total for each measured row. Default 1000. */
  rate?: number;
  /** IPVS scheduler names, for the userspace proxy and the simulated IPVS rows. Default rr, lc. */
  schedulers?: readonly string[];
  /** Concurrent client connections. Default 10. */
  connections?: number;
  /** Seconds of load per measured row. Default 3. */
  durationSeconds?: number;
  /** Untimed load before each measured row, so the JIT and the sockets are warm. Default 0.5 s. */
  warmupSeconds?: number;
  /** New connections in the stream the simulated rows replay. Default 10000. */
  streamConnections?: number;
  /** Seed of the iptables random draws. Default 1. */
  seed?: number;
  /** Where the load generator runs. Default 'worker'. */
  loadThread?: LoadThread;
  ports?: 'service' | 'ephemeral';
  /** One line per step ("[2/6] userspace rr ..."), for a progress display. */
  onProgress?: (line: string) => void;
  /** Rows measured elsewhere against the same direct row (kpsim lab's kernel rows), after the proxy's. */
  measured?: ExtraRows;
  /** Each row as soon as it is complete (the web page draws them as they come). */
  onRow?: (row: CompareRow) => void;
}

/** Rows another module measures: how many steps they take, and the rows. */
export interface ExtraRows {
  readonly steps: number;
  rows(context: ExtraRowsContext): Promise<CompareRow[]>;
}

export interface ExtraRowsContext {
  readonly target: ResolvedTarget;
  readonly direct: CompareRow;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /** Reports a step ("[4/8] …"). */
  readonly say: (text: string) => void;
  readonly progress: (line: string) => void;
}

export const COMPARE_DEFAULTS = {
  schedulers: ['rr', 'lc'],
  connections: 10,
  durationSeconds: 3,
  warmupSeconds: 0.5,
  streamConnections: 10_000,
  seed: 1,
} as const;

/** Seconds between two new connections of the simulated stream. */
const STREAM_INTERVAL_SECONDS = 0.001;

/** The cluster and the node whose view the simulated rows compile. */
export type CompareView = ClusterView & { readonly node: ResolvedNode };

export async function runCompare(view: CompareView, opts: CompareOptions = {}): Promise<CompareReport> {
  const schedulers = [...(opts.schedulers ?? COMPARE_DEFAULTS.schedulers)];
  for (const name of schedulers) getScheduler(name);
  const connections = opts.connections ?? COMPARE_DEFAULTS.connections;
  const durationSeconds = opts.durationSeconds ?? COMPARE_DEFAULTS.durationSeconds;
  const warmupSeconds = opts.warmupSeconds ?? COMPARE_DEFAULTS.warmupSeconds;
  const thread = opts.loadThread ?? 'worker';
  const progress = opts.onProgress ?? ((): void => undefined);
  const completed = opts.onRow ?? ((): void => undefined);
  const notes: string[] = [];

  const protocol = opts.protocol ?? 'TCP';
  const udp = protocol === 'UDP';
  const target = resolveTarget(view.cluster, view.states, opts.target ?? defaultTarget(view, notes, protocol), protocol);
  const verdict = chooseEndpoints(target.servicePort, target.via);
  if (verdict.action !== 'forward') throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', `nothing to compare: ${verdict.reason}`);
  // The direct row needs a live backend: a pod, or your server; with --no-pods, the first endpoint that has one.
  const live = (endpoint: string): boolean => opts.pods !== false || (opts.userBackends?.has(endpoint) ?? false);
  const baselineEndpoint = verdict.endpoints.find((e) => live(e.endpoint));
  if (baselineEndpoint === undefined) {
    throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', `nothing to send the direct row's load to: no endpoint of ${target.servicePort.info.spn} has a pod or a --backend`);
  }

  const totalSteps = 1 + schedulers.length + (opts.measured?.steps ?? 0) + runCount(RULES_MODES, schedulers);
  let step = 0;
  const say = (text: string): void => progress(`[${++step}/${totalSteps}] ${text}`);
  const load = (url: string, beforeMeasuring?: () => Promise<void>): Promise<LoadRunResult> =>
    measure(thread, { url, connections, durationSeconds, ...(udp ? { protocol: 'udp' as const, overallRate: opts.rate ?? DEFAULT_UDP_RATE } : {}) }, warmupSeconds, beforeMeasuring);

  const rows: CompareRow[] = [];
  let direct: CompareRow | undefined;
  let baselineListener = '';
  for (const scheduler of schedulers) {
    const on = await startTarget(view, target, { scheduler, ...nodeRunOptionsOf(opts) });
    try {
      if (direct === undefined) {
        const backend = backendOf(on, baselineEndpoint.endpoint, protocol);
        if (backend === undefined) throw new Error(`no backend runs for ${baselineEndpoint.endpoint}`);
        baselineListener = joinHostPort(backend.address, backend.port);
        say(`direct to ${baselineEndpoint.endpoint} at ${baselineListener}: ${durationSeconds} s of load`);
        direct = directRow(await load(udp ? `udp://${baselineListener}` : `http://${baselineListener}/`), baselineListener);
        progress(`    ${summary(direct)}`);
        rows.push(direct);
        completed(direct);
      }
      say(`userspace proxy, scheduler ${scheduler}, at ${on.listener}: ${durationSeconds} s of load`);
      const row = await proxyLoad(on, scheduler, direct, load);
      progress(`    ${summary(row)}`);
      rows.push(row);
      completed(row);
    } finally {
      await on.running.close();
    }
  }

  if (opts.measured !== undefined && direct !== undefined) {
    const measured = await opts.measured.rows({ target, direct, connections, durationSeconds, warmupSeconds, say, progress });
    rows.push(...measured);
    measured.forEach(completed);
  }

  const shape: StreamShape = {
    connections: opts.streamConnections ?? COMPARE_DEFAULTS.streamConnections,
    concurrent: connections,
    clientIP: target.state.nodeIPs[0] ?? (target.state.family === 4 ? '127.0.0.1' : '::1'),
    intervalSeconds: STREAM_INTERVAL_SECONDS,
  };
  const candidates = verdict.endpoints.map((e) => ({ endpoint: e.endpoint, pod: e.podName ?? '' }));
  const simulated = simulatedRows(view.node, target, candidates, shape, {
    modes: RULES_MODES, schedulers, seed: opts.seed ?? COMPARE_DEFAULTS.seed,
    onRun: (mode, scheduler) => say(`${mode} mode${modeDriver(mode).variants(schedulers).length > 1 ? `, scheduler ${scheduler}` : ''}, simulated: ${shape.connections} new connections`),
  });
  rows.push(...simulated);
  simulated.forEach(completed);

  notes.push(...explain(target, connections, rows, udp));
  return {
    schema: COMPARE_REPORT_SCHEMA,
    target: { spec: target.spec, service: target.servicePort.info.spn, via: target.via, address: targetAddress(target) },
    settings: {
      connections, durationSeconds, pipelining: 1, keepAlive: !udp,
      loadGenerator: withWorkers(udp ? udpLoadGeneratorDescriptions[thread] : loadThreadDescriptions[thread], opts.workers),
      ...(udp ? { protocol, rate: opts.rate ?? DEFAULT_UDP_RATE } : {}),
      ...((opts.workers ?? 1) > 1 ? { workers: opts.workers } : {}),
    },
    baseline: { endpoint: baselineEndpoint.endpoint, pod: baselineEndpoint.podName ?? '', listener: baselineListener },
    stream: describeStream(shape),
    rows,
    notes,
  };
}

type Load = (url: string, beforeMeasuring?: () => Promise<void>) => Promise<LoadRunResult>;

async function proxyLoad(on: TargetOnCluster, scheduler: string, direct: CompareRow, load: Load): Promise<CompareRow> {
  let before = await connectionCounts(on);
  const run = await load(on.url, async () => { before = await connectionCounts(on); });
  return proxyRow(scheduler, run, on.listener, countsSince(before, await connectionCounts(on)), direct);
}

/** A warm-up run, then the measured one; `beforeMeasuring` runs between them (to read counters). */
async function measure(thread: LoadThread, opts: LoadRunOptions, warmupSeconds: number, beforeMeasuring?: () => Promise<void>): Promise<LoadRunResult> {
  if (warmupSeconds > 0) await runLoadOn(thread, { ...opts, durationSeconds: warmupSeconds });
  await beforeMeasuring?.();
  return runLoadOn(thread, opts);
}

/** Where an endpoint's backend takes this protocol's traffic (its pod, your server). */
function backendOf(on: TargetOnCluster, endpoint: string, protocol: Protocol): HostPort | undefined {
  const entry = on.running.map.lookupBackend(endpoint);
  if (entry === undefined || entry.server === 'none') return undefined;
  return protocol === 'UDP' ? entry.udpLoopback : entry.loopback;
}

/** The service port of the protocol (TCP unless told) with the most endpoints the proxy would use for its ClusterIP. */
export function defaultTarget(view: ClusterView, notes: string[], protocol: Protocol = 'TCP'): TargetSpec {
  let best: { spec: TargetSpec; endpoints: number } | undefined;
  for (const state of view.states) {
    for (const sp of state.servicePorts) {
      if (sp.info.protocol !== protocol) continue;
      const verdict = chooseEndpoints(sp, 'ClusterIP');
      const endpoints = verdict.action === 'forward' ? verdict.endpoints.length : 0;
      if (endpoints > (best?.endpoints ?? 0)) {
        const { namespace, name, port } = sp.info.svcPortName;
        const text = `svc/${namespace}/${name}${port === '' ? '' : `:${port}`}`;
        best = { spec: { kind: 'service', text, namespace, name, ...(port === '' ? {} : { port }) }, endpoints };
      }
    }
  }
  if (best === undefined) throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', `no ${protocol} service has endpoints to send load to`);
  notes.push(`target ${best.spec.text} chosen as the service port with the most endpoints (${best.endpoints}); choose another with --target`);
  return best.spec;
}

function summary(row: CompareRow): string {
  const rps = row.requestsPerSecond ?? 0;
  const relative = row.mode === 'direct' || row.relativeToDirect === null ? '' : ` (${row.relativeToDirect.toFixed(2)}x direct)`;
  return `${Math.round(rps)} req/s${relative}, p99 ${row.latency?.p99Ms.toFixed(3) ?? '-'} ms, ${row.errors?.total ?? 0} errors`;
}

/** Notes that keep the table from being misread. */
function explain(target: ResolvedTarget, connections: number, rows: readonly CompareRow[], udp: boolean): string[] {
  const notes = [
    udp
      ? `measured rows send datagrams from ${connections} client sockets, each one association at the proxy while it is active; a datagram not answered within ${DEFAULT_UDP_TIMEOUT_SECONDS} s is lost and counted in errors`
      : `measured rows keep ${connections} connections open (keep-alive), so the proxy placed only those; their requests follow the connections`,
    'decisions/s is the speed of kpsim\'s own simulation in this process (the tracer walks the rules, the replay runs the scheduler), not the kernel\'s',
    'rules/lookup: rules a new connection\'s first packet is checked against, up to each match; iptables mode scans KUBE-SERVICES one service at a time, IPVS mode matches ipsets and nftables mode looks its verdict maps up, so only iptables mode grows with the number of services',
  ];
  if (target.servicePort.info.sessionAffinityTimeoutSeconds > 0) {
    notes.push('the service has ClientIP session affinity and every connection comes from one client address, so each mode keeps one endpoint');
  }
  const refused = rows.filter((r) => (r.refusedConnections ?? 0) > 0);
  for (const r of refused) notes.push(`${r.label}: ${r.refusedConnections} of the stream's connections found no endpoint`);
  const direct = rows.find((r) => r.mode === 'direct');
  if (direct && direct.requestsPerSecond !== null && direct.requestsPerSecond === 0) notes.push('the direct row got no responses: ratios are not meaningful');
  return notes;
}
