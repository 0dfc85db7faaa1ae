/**
 * `kpsim simulate --events FILE`: the connection stream of `kpsim simulate` replayed against a
 * timeline of cluster changes (cluster-timeline.ts), through each mode's kernel over time
 * (timeline-kernels.ts): what happens to connections when endpoints come and go.
 *
 * A change takes effect for the pods at once (a removed pod answers nothing from then on) and
 * in the rules `programmingDelaySeconds` later, when kube-proxy's sync brings the cluster as it
 * is then. Open connections send a packet every `packetIntervalSeconds`. Reported per endpoint
 * and per time slice: connections opened on it; packets delivered; UDP packets blackholed (sent
 * to a pod that is gone); TCP connections broken (their pod gone, or the service); UDP flows
 * rebalanced (placed again on another endpoint, once their entry was cleaned up or expired).
 * Every mode sees the same connections and the same changes.
 */
import { Heap } from 'heap-js';
import { KpsimError } from '../errors.js';
import type { ModeDriver, RulesMode, SimulationTarget } from '../node/mode-driver.js';
import { modeDriver } from '../node/modes.js';
import type { Cluster } from '../model/types.js';
import { buildProxierStates, type ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import { type ClusterChange, type Timeline, applyClusterChange } from './cluster-timeline.js';
import type { OpenEvent } from './replay.js';
import type { TargetChoice } from './simulation.js';
import { ConntrackKernel, IpvsKernel, type KernelConnection, type PacketOutcome, type TimelineKernel } from './timeline-kernels.js';

export interface TimelineOptions {
  readonly modes: readonly RulesMode[];
  readonly schedulers: readonly string[];
  readonly seed: number;
  readonly durationSeconds: number;
  /** The report's time slices; default a twelfth of the duration (at least 1 s). */
  readonly bucketSeconds?: number;
}

export interface EndpointTimelineOutcome {
  readonly endpoint: string;
  /** New connections placed on it. */
  readonly opened: number;
  readonly delivered: number;
  /** UDP packets sent to it after its pod was gone. */
  readonly blackholed: number;
  /** TCP connections on it that broke (its pod gone, or the service). */
  readonly broken: number;
  /** Flows placed again elsewhere after being on it. */
  readonly rebalancedAway: number;
  /** Flows placed on it after being elsewhere. */
  readonly rebalancedIn: number;
  /** Connections open on it at the end. */
  readonly openAtEnd: number;
}

export interface TimelineSlice {
  readonly from: number;
  readonly to: number;
  readonly opened: number;
  /** New connections nothing accepted (no endpoint, no service). */
  readonly refused: number;
  readonly delivered: number;
  readonly blackholed: number;
  readonly broken: number;
  readonly rebalanced: number;
}

export interface TimelineRun {
  readonly mode: RulesMode;
  readonly scheduler: string;
  readonly endpoints: readonly EndpointTimelineOutcome[];
  readonly overTime: readonly TimelineSlice[];
  readonly totals: Omit<TimelineSlice, 'from' | 'to'>;
}

export interface TimelineReport {
  readonly schema: 'kpsim.simulate-events/v1';
  readonly target: { readonly servicePort: string; readonly protocol: string; readonly address: string };
  readonly timeline: Timeline;
  readonly runs: readonly TimelineRun[];
}

interface Counters {
  opened: number;
  delivered: number;
  blackholed: number;
  broken: number;
  rebalancedAway: number;
  rebalancedIn: number;
}

function newCounters(): Counters {
  return { opened: 0, delivered: 0, blackholed: 0, broken: 0, rebalancedAway: 0, rebalancedIn: 0 };
}

interface Scheduled {
  readonly at: number;
  readonly order: number;
  readonly run: () => void;
}

/** The target's service port in a state, by name and protocol; undefined once the service is gone. */
function targetIn(states: readonly ProxierState[], chosen: TargetChoice): SimulationTarget | undefined {
  const state = states.find((s) => s.family === chosen.state.family);
  const sp = state?.servicePorts.find((p) => p.info.spn === chosen.sp.info.spn && p.info.protocol === chosen.sp.info.protocol);
  if (state === undefined || sp === undefined) return undefined;
  return { state, servicePort: sp, address: sp.info.clusterIP, port: sp.info.port, proto: sp.info.protocol === 'UDP' ? 'udp' : 'tcp' };
}

export function simulateTimeline(
  view: { cluster: Cluster; node: ResolvedNode },
  chosen: TargetChoice,
  stream: readonly OpenEvent[],
  timeline: Timeline,
  file: string,
  opts: TimelineOptions,
): TimelineReport {
  const protocol = chosen.sp.info.protocol;
  if (protocol === 'SCTP') throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', '--events: SCTP connections are not modelled over time; choose a TCP or UDP service port with --target', { path: '--target' });
  const service = { namespace: chosen.sp.info.svcPortName.namespace, name: chosen.sp.info.svcPortName.name };
  // The clusters of the timeline, checked up front: a bad event is an input error before anything runs.
  const clusters: { at: number; cluster: Cluster; change: ClusterChange }[] = [];
  let current = view.cluster;
  for (const change of timeline.events) {
    current = applyClusterChange(current, service, change, file);
    clusters.push({ at: change.at, cluster: current, change });
  }
  const runs: TimelineRun[] = [];
  for (const mode of opts.modes) {
    const driver = modeDriver(mode);
    for (const variant of driver.variants(opts.schedulers)) {
      runs.push(replay(driver, variant, view, chosen, stream, timeline, clusters, opts));
    }
  }
  return {
    schema: 'kpsim.simulate-events/v1',
    target: { servicePort: chosen.sp.info.spn, protocol, address: joinHostPort(chosen.sp.info.clusterIP, chosen.sp.info.port) },
    timeline,
    runs,
  };
}

function replay(
  driver: ModeDriver,
  variant: ReturnType<ModeDriver['variants']>[number],
  view: { cluster: Cluster; node: ResolvedNode },
  chosen: TargetChoice,
  stream: readonly OpenEvent[],
  timeline: Timeline,
  clusters: readonly { at: number; cluster: Cluster; change: ClusterChange }[],
  opts: TimelineOptions,
): TimelineRun {
  const proto = chosen.sp.info.protocol === 'UDP' ? 'udp' : 'tcp';
  const kernelOptions = { seed: opts.seed, protocol: proto, destination: joinHostPort(chosen.sp.info.clusterIP, chosen.sp.info.port), conntrackCleanup: timeline.conntrackCleanup } as const;
  const kernel: TimelineKernel = driver.connectionTable === 'ipvs' ? new IpvsKernel(kernelOptions) : new ConntrackKernel(driver, kernelOptions);
  const bucket = opts.bucketSeconds ?? Math.max(1, Math.ceil(opts.durationSeconds / 12));
  const slices = new Map<number, TimelineSlice & { opened: number }>();
  const slice = (at: number): { opened: number; refused: number; delivered: number; blackholed: number; broken: number; rebalanced: number } => {
    const index = Math.floor(at / bucket);
    let s = slices.get(index) as { opened: number; refused: number; delivered: number; blackholed: number; broken: number; rebalanced: number; from: number; to: number } | undefined;
    if (s === undefined) slices.set(index, (s = { from: index * bucket, to: (index + 1) * bucket, opened: 0, refused: 0, delivered: 0, blackholed: 0, broken: 0, rebalanced: 0 }));
    return s;
  };
  const byEndpoint = new Map<string, Counters>();
  const counters = (endpoint: string): Counters => {
    let c = byEndpoint.get(endpoint);
    if (c === undefined) byEndpoint.set(endpoint, (c = newCounters()));
    return c;
  };
  for (const ep of chosen.sp.endpoints) counters(ep.endpoint);

  // Pods answer from their endpoint's addition until its removal.
  const alive = new Set(chosen.sp.endpoints.map((ep) => ep.endpoint));
  let cluster = view.cluster;
  const reprogram = (now: number): void => {
    const states = buildProxierStates(cluster, view.node);
    const compiled = driver.compile(view.node, states, variant.options);
    kernel.reprogram(compiled, targetIn(states, chosen), states.find((s) => s.family === chosen.state.family) ?? chosen.state, now);
  };
  reprogram(0);

  const queue = new Heap<Scheduled>((a, b) => a.at - b.at || a.order - b.order);
  let order = 0;
  const schedule = (at: number, run: () => void): void => {
    queue.push({ at, order: order++, run });
  };
  for (const { at, cluster: after, change } of clusters) {
    schedule(at, () => {
      cluster = after;
      if (change.change === 'removed') alive.delete(change.endpoint!);
      if (change.change === 'added') {
        alive.add(change.endpoint!);
        counters(change.endpoint!);
      }
    });
    // kube-proxy's sync takes the cluster as it is when it runs.
    schedule(at + timeline.programmingDelaySeconds, () => reprogram(at + timeline.programmingDelaySeconds));
  }
  const open = new Set<KernelConnection>();
  const record = (outcome: PacketOutcome, now: number, conn: KernelConnection): boolean => {
    const s = slice(now);
    switch (outcome.kind) {
      case 'delivered':
        counters(outcome.endpoint).delivered++;
        s.delivered++;
        return true;
      case 'blackholed':
        counters(outcome.endpoint).blackholed++;
        s.blackholed++;
        return true;
      case 'rebalanced':
        counters(outcome.from).rebalancedAway++;
        counters(outcome.to).rebalancedIn++;
        s.rebalanced++;
        return true;
      case 'broken':
        if (outcome.endpoint !== undefined) counters(outcome.endpoint).broken++;
        s.broken++;
        open.delete(conn);
        return false;
    }
  };
  for (const event of stream) {
    schedule(event.at, () => {
      kernel.advance(event.at);
      const conn = kernel.open(event.client, event.at);
      const s = slice(event.at);
      if (conn === undefined) {
        s.refused++;
        return;
      }
      s.opened++;
      counters(conn.endpoint).opened++;
      open.add(conn);
      const end = event.at + (event.durationSeconds ?? opts.durationSeconds);
      const tick = (at: number): void => {
        schedule(at, () => {
          if (!open.has(conn)) return;
          kernel.advance(at);
          if (!record(kernel.packet(conn, at, (ep) => alive.has(ep)), at, conn)) return;
          if (at + timeline.packetIntervalSeconds < end) tick(at + timeline.packetIntervalSeconds);
        });
      };
      if (event.at + timeline.packetIntervalSeconds < end) tick(event.at + timeline.packetIntervalSeconds);
      schedule(end, () => {
        if (!open.delete(conn)) return;
        kernel.close(conn, end);
      });
    });
  }
  for (let next = queue.pop(); next !== undefined && next.at <= opts.durationSeconds; next = queue.pop()) next.run();
  for (const conn of open) counters(conn.endpoint);
  const openAtEnd = new Map<string, number>();
  for (const conn of open) openAtEnd.set(conn.endpoint, (openAtEnd.get(conn.endpoint) ?? 0) + 1);

  const endpoints = [...byEndpoint].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([endpoint, c]) => ({ endpoint, ...c, openAtEnd: openAtEnd.get(endpoint) ?? 0 }));
  const overTime = [...slices.values()].sort((a, b) => a.from - b.from);
  const sum = (key: keyof Omit<TimelineSlice, 'from' | 'to'>): number => overTime.reduce((n, s) => n + s[key], 0);
  return {
    mode: driver.mode,
    scheduler: variant.scheduler,
    endpoints,
    overTime,
    totals: { opened: sum('opened'), refused: sum('refused'), delivered: sum('delivered'), blackholed: sum('blackholed'), broken: sum('broken'), rebalanced: sum('rebalanced') },
  };
}

export function formatTimelineReport(report: TimelineReport): string {
  const t = report.timeline;
  const lines = [
    `target: ${report.target.servicePort} ${report.target.protocol} ${report.target.address}`,
    `timeline: the rules follow each change ${t.programmingDelaySeconds} s later (kube-proxy's sync); an open connection sends a packet every ${t.packetIntervalSeconds} s; kube-proxy's UDP conntrack cleanup ${t.conntrackCleanup ? 'on' : 'off'}`,
    ...t.events.map((e) => `  at ${e.at} s: ${e.change === 'service-deleted' ? 'the service is deleted' : `${e.endpoint} ${e.change}`}`),
  ];
  const columns = ['opened', 'delivered', 'blackholed', 'broken', 'rebal-away', 'rebal-in', 'open-at-end'];
  for (const run of report.runs) {
    const title = `${run.mode}${run.scheduler !== 'random' ? ` ${run.scheduler}` : ''} (${modeDriver(run.mode).connectionTable})`;
    const width = Math.max(24, title.length + 2, ...run.endpoints.map((e) => e.endpoint.length + 4));
    lines.push('', `${title.padEnd(width)}${columns.map((c) => c.padStart(12)).join('')}`);
    for (const e of run.endpoints) {
      lines.push(`  ${e.endpoint.padEnd(width - 2)}${[e.opened, e.delivered, e.blackholed, e.broken, e.rebalancedAway, e.rebalancedIn, e.openAtEnd].map((n) => String(n).padStart(12)).join('')}`);
    }
    const tt = run.totals;
    lines.push(`  totals: ${tt.opened} opened, ${tt.refused} refused, ${tt.delivered} packets delivered, ${tt.blackholed} blackholed, ${tt.broken} connections broken, ${tt.rebalanced} flows rebalanced`);
    lines.push(`  over time:${['from', 'to', 'opened', 'refused', 'delivered', 'blackholed', 'broken', 'rebalanced'].map((c) => c.padStart(11)).join('')}`);
    for (const s of run.overTime) {
      lines.push(`           ${[s.from, s.to, s.opened, s.refused, s.delivered, s.blackholed, s.broken, s.rebalanced].map((n) => String(n).padStart(11)).join('')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
