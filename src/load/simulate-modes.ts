/**
 * The simulated rows of `kpsim compare`: the same stream of new connections fed to kube-proxy's
 * iptables mode (the compiled rules, walked by the packet tracer with its seeded random draw) and
 * to its IPVS mode (the compiled virtual server, replayed through each scheduler with the
 * connection table). No bytes move; what comes out is where each connection would have gone, and
 * what one decision costs: the iptables rules the first packet is checked against in that mode
 * (iptables mode scans KUBE-SERVICES linearly; IPVS mode matches ipsets, a cost that does not
 * grow with the number of services), and decisions per second of kpsim's own simulation, timed
 * in this process.
 */
import { performance } from 'node:perf_hooks';
import { compileIptablesRules } from '../iptables/compile.js';
import { renderRule } from '../iptables/render.js';
import type { Ruleset } from '../iptables/types.js';
import { type IpvsCompiled, compileIpvs } from '../ipvs/compile.js';
import { liveServiceOf } from '../ipvs/live-service.js';
import { type ConnectionEvent, replayConnections } from '../ipvs/replay.js';
import { destAddr } from '../ipvs/table.js';
import { traceIpvs } from '../trace/ipvs.js';
import { createTracer } from '../trace/tracer.js';
import type { Hop, RecentState, TraceSample } from '../trace/types.js';
import { joinHostPort } from '../util/ip.js';
import { type CompareRow, type SimulatedStream, simulatedRow } from './compare-report.js';
import type { ResolvedTarget } from './target.js';

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

/** Source ports as Linux hands them out: net.ipv4.ip_local_port_range 32768-60999. */
const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_COUNT = 60999 - 32768 + 1;

export function clientOf(shape: StreamShape, i: number): { ip: string; port: number } {
  return { ip: shape.clientIP, port: EPHEMERAL_FIRST + (i % EPHEMERAL_COUNT) };
}

/** Each connection opens `intervalSeconds` after the previous and lives for `concurrent` intervals. */
export function connectionStream(shape: StreamShape): ConnectionEvent[] {
  const lifetime = shape.concurrent * shape.intervalSeconds;
  return Array.from({ length: shape.connections }, (_, i) => {
    const { ip, port } = clientOf(shape, i);
    return { kind: 'open' as const, at: i * shape.intervalSeconds, client: joinHostPort(ip, port), durationSeconds: lifetime };
  });
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

/**
 * iptables mode: each connection's first packet walks the node's rules; the tracer's seeded draw
 * picks the statistic branch, as the kernel's random draw would. ClientIP affinity is kept the
 * way the kernel keeps it: the `recent` list a KUBE-SEP chain sets is passed on to later packets.
 */
export function simulateIptables(target: ResolvedTarget, candidates: readonly Candidate[], shape: StreamShape, seed: number): CompareRow {
  const ruleset = compileIptablesRules(target.state);
  const tracer = createTracer(ruleset, { localAddresses: target.state.localAddresses, masqueradeMark: Number(target.state.masqueradeMark) });
  tracer.warm();
  const positions = rulePositions(ruleset);
  const traceOne = (i: number, recent: Record<string, string[]>): TraceSample => {
    const { ip, port } = clientOf(shape, i);
    const sample = tracer.trace(
      { proto: protoOf(target), src: ip, sport: port, dst: target.address, dport: target.port },
      { seed: seed + i, recent: recent as RecentState },
    ).sample!;
    for (const name of recentListsSet(sample.hops)) recent[name] = [ip];
    return sample;
  };
  // Warm the tracer's compiled chains and the JIT before timing (a fresh client: no recent lists).
  for (let i = 0; i < Math.min(WARMUP_DECISIONS, shape.connections); i++) traceOne(shape.connections + i, {});

  const counts = new Map<string, number>();
  const recent: Record<string, string[]> = {};
  let rulesChecked = 0;
  let refused = 0;
  const started = performance.now();
  for (let i = 0; i < shape.connections; i++) {
    const sample = traceOne(i, recent);
    if (sample.endpoint !== undefined) counts.set(sample.endpoint, (counts.get(sample.endpoint) ?? 0) + 1);
    else refused++;
    rulesChecked += rulesCheckedOnPath(sample.hops, positions);
  }
  const seconds = (performance.now() - started) / 1000;
  return simulatedRow('iptables', null, placements(candidates, counts), {
    rulesPerLookup: shape.connections > 0 ? rulesChecked / shape.connections : 0,
    decisionsPerSecond: seconds > 0 ? shape.connections / seconds : 0,
  }, refused);
}

/**
 * IPVS mode: kube-proxy's virtual server for the target, replayed through `scheduler`. The
 * iptables rules an IPVS-mode packet still passes (ipset matches in KUBE-SERVICES, masquerade)
 * are counted from the IPVS-mode tracer on the first packets of the stream.
 */
export function simulateIpvs(target: ResolvedTarget, candidates: readonly Candidate[], shape: StreamShape, scheduler: string): CompareRow {
  const compiled = compileIpvs(target.state, { scheduler });
  const vs = compiled.table.services.find((s) => s.address === target.address && s.port === target.port && s.protocol === target.servicePort.info.protocol);
  if (vs === undefined) throw new Error(`IPVS mode has no virtual server for ${joinHostPort(target.address, target.port)}`);
  const events = connectionStream(shape);
  replayConnections(liveServiceOf(vs), events.slice(0, WARMUP_DECISIONS));
  const live = liveServiceOf(vs);
  const started = performance.now();
  const report = replayConnections(live, events);
  const seconds = (performance.now() - started) / 1000;
  const counts = new Map(report.backends.map((b) => [b.addr, b.received]));
  // Dests IPVS lists but the proxy would not pick (draining, weight 0) are shown too.
  const known = [...candidates, ...vs.dests.map((d) => ({ endpoint: destAddr(d), pod: '' })).filter((d) => !candidates.some((c) => c.endpoint === d.endpoint))];
  return simulatedRow('ipvs', scheduler, placements(known, counts), {
    rulesPerLookup: ipvsRulesPerLookup(compiled, target, shape),
    decisionsPerSecond: seconds > 0 ? shape.connections / seconds : 0,
  }, report.refused);
}

/** Packets traced through IPVS mode for its rules-per-lookup figure: the count is the same for each. */
const IPVS_TRACED_PACKETS = 100;
const IPTABLES_TABLES: ReadonlySet<string> = new Set(['raw', 'mangle', 'nat', 'filter']);

function ipvsRulesPerLookup(compiled: IpvsCompiled, target: ResolvedTarget, shape: StreamShape): number {
  const positions = rulePositions(compiled.ruleset);
  const packets = Math.min(IPVS_TRACED_PACKETS, shape.connections);
  let checked = 0;
  for (let i = 0; i < packets; i++) {
    const { ip, port } = clientOf(shape, i);
    const result = traceIpvs(compiled, { proto: protoOf(target), src: ip, sport: port, dst: target.address, dport: target.port }, { seed: i + 1 });
    const hops = (result.sample?.hops ?? result.hops).filter((hop) => IPTABLES_TABLES.has(hop.table));
    checked += rulesCheckedOnPath(hops, positions);
  }
  return packets > 0 ? checked / packets : 0;
}

/** "table chain rule-text" → 1-based position of the rule in its chain. */
function rulePositions(ruleset: Ruleset): Map<string, number> {
  const positions = new Map<string, number>();
  for (const [tableName, table] of ruleset.tables) {
    for (const chain of table.chains.values()) {
      chain.rules.forEach((rule, i) => {
        const key = `${tableName} ${chain.name} ${renderRule(rule)}`;
        if (!positions.has(key)) positions.set(key, i + 1);
      });
    }
  }
  return positions;
}

/**
 * Rules the packet is checked against on its path, up to each rule that matched: within one
 * visit of a chain, the rules from where the last match left off to the next match. A rule that
 * is not in the ruleset (one of kube-proxy's assumed jumps from a built-in chain) counts as one.
 * The rules a chain holds after its last match are not counted, so this is a lower bound.
 */
export function rulesCheckedOnPath(hops: readonly Hop[], positions: ReadonlyMap<string, number>): number {
  let checked = 0;
  const lastAtDepth: { chain: string; position: number }[] = [];
  for (const hop of hops) {
    const depth = hop.depth ?? 0;
    lastAtDepth.length = Math.min(lastAtDepth.length, depth + 1);
    const position = positions.get(`${hop.table} ${hop.chain} ${hop.rule}`);
    if (position === undefined) {
      checked += 1;
      continue;
    }
    const previous = lastAtDepth[depth];
    checked += previous !== undefined && previous.chain === `${hop.table} ${hop.chain}` ? position - previous.position : position;
    lastAtDepth[depth] = { chain: `${hop.table} ${hop.chain}`, position };
  }
  return checked;
}

/** The `recent` lists a path's `-m recent ... --set` rules (kube-proxy's KUBE-SEP chains) add the source to. */
export function recentListsSet(hops: readonly Hop[]): string[] {
  const names: string[] = [];
  for (const hop of hops) {
    if (!/ -m recent /.test(hop.rule) || !/ --set( |$)/.test(hop.rule)) continue;
    const m = / --name (\S+)/.exec(hop.rule);
    if (m) names.push(m[1]!.replace(/^"(.*)"$/, '$1'));
  }
  return names;
}

/** The tracer's protocol for the target's service port. */
function protoOf(target: ResolvedTarget): 'tcp' | 'udp' {
  return target.servicePort.info.protocol === 'UDP' ? 'udp' : 'tcp';
}
