/**
 * The `kpsim compare` report (schema "kpsim.compare/v1"): one row per way of getting a connection
 * to an endpoint, measured with real bytes (direct to one backend, the userspace proxy with each
 * scheduler) or simulated in-process (iptables, IPVS with each scheduler). Pure.
 *
 * {
 *   schema: "kpsim.compare/v1",
 *   target:   { spec, service, via, address },
 *   settings: { connections, durationSeconds, pipelining, keepAlive, loadGenerator },
 *   baseline: { endpoint, pod, listener },          the backend the direct row loads
 *   stream:   { connections, concurrent, client, description },   what the simulated rows replay
 *   rows: [ {
 *     label, mode: "direct" | "userspace" | "iptables" | "ipvs" | "kernel-iptables" | …, scheduler, measured,
 *     listener,                                     loopback address loaded (measured rows)
 *     requests, requestsPerSecond, relativeToDirect, measured rows (responses, any status); null when simulated
 *     latency: { count, meanMs, p50Ms, p90Ms, p99Ms, maxMs } | null,
 *     addedLatencyMs: { p50, p99 } | null,          vs the direct row
 *     errors: { non2xx, timeouts, resets, refused, other, total } | null,
 *     endpoints: [ { endpoint, pod, requests, connections } ],   requests null when simulated
 *     requestSpread, connectionSpread: Spread | null,
 *     refusedConnections,                           simulated rows: connections no endpoint took
 *     decision: { rulesPerLookup, decisionsPerSecond } | null    per new connection, in-process
 *   } ],
 *   notes: [string]
 * }
 */
import type { RulesMode } from '../node/mode-driver.js';
import type { ErrorCounts } from './error-kinds.js';
import type { LatencySummary } from './percentiles.js';
import { type EndpointConnectionCount, type LoadSettings, type TargetVia, endpointShares, ratePerSecond } from './report.js';
import { type Spread, spreadOf } from './spread.js';
import type { LoadRunResult } from './types.js';

export const COMPARE_REPORT_SCHEMA = 'kpsim.compare/v1';

export type CompareMode = 'direct' | 'userspace' | RulesMode | `kernel-${'iptables' | 'nftables' | 'ipvs'}`;

export interface CompareEndpoint {
  endpoint: string;
  pod: string;
  /** Responses that named this endpoint; null for simulated rows (no bytes flowed). */
  requests: number | null;
  /** New connections placed on it. */
  connections: number;
}

export interface DecisionCost {
  /** iptables rules a new connection's first packet is checked against in that mode (simulated rows); null for measured rows. */
  rulesPerLookup: number | null;
  /** New-connection decisions per second, measured in this process. */
  decisionsPerSecond: number;
}

export interface CompareRow {
  label: string;
  mode: CompareMode;
  scheduler: string | null;
  measured: boolean;
  listener: string | null;
  /** Complete responses of the measured run; the endpoints' requests add up to it. */
  requests: number | null;
  requestsPerSecond: number | null;
  relativeToDirect: number | null;
  latency: LatencySummary | null;
  addedLatencyMs: { p50: number; p99: number } | null;
  errors: ErrorCounts | null;
  endpoints: CompareEndpoint[];
  requestSpread: Spread | null;
  connectionSpread: Spread | null;
  /** Simulated rows: connections of the stream that were refused (REJECT, DROP, no dest); null when measured. */
  refusedConnections: number | null;
  decision: DecisionCost | null;
}

export interface SimulatedStream {
  connections: number;
  concurrent: number;
  client: string;
  description: string;
}

export interface CompareReport {
  schema: typeof COMPARE_REPORT_SCHEMA;
  target: { spec: string; service: string; via: TargetVia; address: string };
  settings: LoadSettings;
  baseline: { endpoint: string; pod: string; listener: string };
  stream: SimulatedStream;
  rows: CompareRow[];
  notes: string[];
}

/** The direct-to-one-backend row: the baseline every other measured row is divided by. */
export function directRow(run: LoadRunResult, listener: string): CompareRow {
  const requestsPerSecond = ratePerSecond(run.responses, run.elapsedSeconds);
  return {
    label: 'direct',
    mode: 'direct',
    scheduler: null,
    measured: true,
    listener,
    requests: run.responses,
    requestsPerSecond,
    relativeToDirect: 1,
    latency: run.latency,
    addedLatencyMs: { p50: 0, p99: 0 },
    errors: run.errors,
    endpoints: run.endpoints.map((e) => ({ endpoint: e.endpoint, pod: e.pod, requests: e.requests, connections: 0 })),
    requestSpread: null,
    connectionSpread: null,
    refusedConnections: null,
    decision: null,
  };
}

/** A userspace-proxy row: real bytes through the proxy, compared with the direct row. */
export function proxyRow(scheduler: string, run: LoadRunResult, listener: string, connections: readonly EndpointConnectionCount[], direct: CompareRow): CompareRow {
  return measuredRow(`userspace ${scheduler}`, 'userspace', scheduler, run, listener, connections, direct);
}

/** A row of real bytes through something (the userspace proxy, a kernel lab's rules), compared with the direct row. */
export function measuredRow(label: string, mode: CompareMode, scheduler: string | null, run: LoadRunResult, listener: string, connections: readonly EndpointConnectionCount[], direct: CompareRow): CompareRow {
  const requestsPerSecond = ratePerSecond(run.responses, run.elapsedSeconds);
  const shares = endpointShares(run.endpoints, connections, run.responses);
  return {
    label,
    mode,
    scheduler,
    measured: true,
    listener,
    requests: run.responses,
    requestsPerSecond,
    relativeToDirect: direct.requestsPerSecond ? requestsPerSecond / direct.requestsPerSecond : null,
    latency: run.latency,
    addedLatencyMs: direct.latency ? { p50: run.latency.p50Ms - direct.latency.p50Ms, p99: run.latency.p99Ms - direct.latency.p99Ms } : null,
    errors: run.errors,
    endpoints: shares.map((s) => ({ endpoint: s.endpoint, pod: s.pod, requests: s.requests, connections: s.connections })),
    requestSpread: spreadOf(shares.map((s) => s.requests)),
    connectionSpread: spreadOf(shares.map((s) => s.connections)),
    refusedConnections: null,
    decision: null,
  };
}

/** A simulated row: where the stream's connections went, and what each decision cost. */
export function simulatedRow(
  mode: RulesMode,
  scheduler: string | null,
  placed: readonly { endpoint: string; pod: string; connections: number }[],
  decision: DecisionCost,
  refusedConnections: number,
): CompareRow {
  const endpoints = [...placed].sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0)).map((p) => ({ ...p, requests: null }));
  return {
    label: scheduler === null ? mode : `${mode} ${scheduler}`,
    mode,
    scheduler,
    measured: false,
    listener: null,
    requests: null,
    requestsPerSecond: null,
    relativeToDirect: null,
    latency: null,
    addedLatencyMs: null,
    errors: null,
    endpoints,
    requestSpread: null,
    connectionSpread: spreadOf(endpoints.map((e) => e.connections)),
    refusedConnections,
    decision,
  };
}
