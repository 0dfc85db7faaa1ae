/**
 * The simulated rows of `kpsim compare`: the one simulator (src/simulate/) run on a stream shaped
 * like the measured load (one client host, as one load generator is, opening a connection every
 * interval and keeping `concurrent` open), through every mode kpsim compiles. No bytes move; what
 * comes out is where each connection would have gone, and what one decision costs: the rules the
 * first packet is checked against in that mode (iptables mode scans KUBE-SERVICES linearly; IPVS
 * mode matches ipsets, a cost that does not grow with the number of services), and decisions per
 * second of kpsim's own simulation, timed in this process.
 */
import { performance } from 'node:perf_hooks';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { RulesMode, SimulationTarget } from '../node/mode-driver.js';
import type { OpenEvent } from '../simulate/replay.js';
import { simulateModes } from '../simulate/simulation.js';
import { connectionStream } from '../simulate/stream.js';
import { type CompareRow, type SimulatedStream, simulatedRow } from './compare-report.js';
import type { ResolvedTarget } from './target.js';
import { familyOfValidIP } from '../util/ip.js';

export interface StreamShape {
  /** New connections in the stream. */
  connections: number;
  /** How many are open at once (the load's --connections). */
  concurrent: number;
  /** The client address: one host, as the load generator is one host. */
  clientIP: string;
  /** Seconds between two new connections. */
  intervalSeconds: number;
}

/** Decisions made, untimed, before the timed stream: compiled chains and JIT warm. */
const WARMUP_DECISIONS = 500;
/** New connections whose rules are counted for the rules/lookup figure. */
const LOOKUP_PACKETS = 100;

/** Each connection opens `intervalSeconds` after the previous and lives for `concurrent` intervals. */
export function compareStream(shape: StreamShape, first = 0): OpenEvent[] {
  const family = familyOfValidIP(shape.clientIP);
  const events = connectionStream({
    connections: first + shape.connections,
    family,
    clients: { ip: shape.clientIP },
    arrivals: { kind: 'even', intervalSeconds: shape.intervalSeconds },
    lifetime: { kind: 'fixed', seconds: shape.concurrent * shape.intervalSeconds },
    seed: 0,
  });
  return first === 0 ? events : events.slice(first).map((e, i) => ({ ...e, at: i * shape.intervalSeconds }));
}

export function describeStream(shape: StreamShape): SimulatedStream {
  return {
    connections: shape.connections,
    concurrent: shape.concurrent,
    client: shape.clientIP,
    description: `${shape.connections} new connections from ${shape.clientIP}, ${shape.concurrent} open at a time`,
  };
}

type Candidate = { endpoint: string; pod: string };

/** Counts per candidate endpoint, candidates first (so endpoints that got nothing still show). */
function placements(candidates: readonly Candidate[], counts: ReadonlyMap<string, number>): { endpoint: string; pod: string; connections: number }[] {
  const rows = candidates.map((c) => ({ ...c, connections: counts.get(c.endpoint) ?? 0 }));
  for (const [endpoint, connections] of counts) if (!candidates.some((c) => c.endpoint === endpoint)) rows.push({ endpoint, pod: '', connections });
  return rows;
}

/** One row per mode (IPVS: per scheduler), all on the same stream. */
export function simulatedRows(
  node: ResolvedNode, target: ResolvedTarget, candidates: readonly Candidate[], shape: StreamShape,
  opts: { modes: readonly RulesMode[]; schedulers: readonly string[]; seed: number; onRun?: (mode: RulesMode, scheduler: string) => void },
): CompareRow[] {
  const simulationTarget: SimulationTarget = { state: target.state, servicePort: target.servicePort, address: target.address, port: target.port, proto: protoOf(target) };
  // The warm-up's clients are other ports of the same host: their connections are not the stream's.
  const warmupEvents = compareStream({ ...shape, connections: Math.min(WARMUP_DECISIONS, shape.connections) }, shape.connections);
  const runs = simulateModes(node, simulationTarget, compareStream(shape), {
    modes: opts.modes, schedulers: opts.schedulers, seed: opts.seed, warmupEvents, clockMs: () => performance.now(),
    ...(opts.onRun ? { onRun: opts.onRun } : {}),
  });
  return runs.map((run) => {
    const counts = new Map(run.report.backends.filter((b) => b.received > 0).map((b) => [b.addr, b.received]));
    // What the mode lists but the proxy would not pick (draining weight-0 IPVS dests) shows too.
    const known = [...candidates, ...[...run.expected.keys()].filter((e) => !candidates.some((c) => c.endpoint === e)).map((endpoint) => ({ endpoint, pod: '' }))];
    return simulatedRow(run.mode, run.scheduled ? run.scheduler : null, placements(known, counts), {
      rulesPerLookup: run.rulesPerLookup(Math.min(LOOKUP_PACKETS, shape.connections)),
      decisionsPerSecond: run.seconds > 0 ? shape.connections / run.seconds : 0,
    }, run.report.refused);
  });
}

/** The tracer's protocol for the target's service port. */
function protoOf(target: ResolvedTarget): 'tcp' | 'udp' {
  return target.servicePort.info.protocol === 'UDP' ? 'udp' : 'tcp';
}
