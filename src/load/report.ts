/**
 * The `kpsim load` report: one stable, documented shape (schema "kpsim.load/v1") that `--json`
 * prints as is and format.ts renders for people. Pure: built from a run's counts.
 *
 * {
 *   schema: "kpsim.load/v1",
 *   target:   { spec, service, via: "ClusterIP" | "NodePort", address, listener },
 *   mode: "userspace" | "kernel-iptables" | "kernel-nftables" | "kernel-ipvs", scheduler,
 *   settings: { connections, durationSeconds, pipelining, keepAlive, loadGenerator, protocol?, rate?, requests?, workers? },
 *   elapsedSeconds,
 *   requests: { total, perSecond, statusClasses: { "1xx", "2xx", "3xx", "4xx", "5xx" } },
 *   latency:  { count, meanMs, p50Ms, p90Ms, p99Ms, maxMs },
 *   errors:   { non2xx, timeouts, resets, refused, other, total },
 *   endpoints: [ { endpoint, pod, requests, requestShare, connections, connectionShare } ],
 *   unattributedRequests,
 *   spread:   { requests: Spread, connections: Spread },
 *   datagrams?: { sent, answered, lost, late },       UDP runs only
 *   notes: [string]
 * }
 *
 * UDP runs (settings.protocol "UDP"): a request is a datagram, a response its answer; lost
 * datagrams (not answered within the timeout) are counted in errors.timeouts and in
 * datagrams.lost; "connections" are the associations the proxy opened, one per client socket
 * while it stays active.
 *
 * requests.total counts complete responses of any status; the endpoints' `requests` plus
 * `unattributedRequests` add up to it. Shares are fractions (0..1) of requests.total and of the
 * connections the proxy placed. Latencies are milliseconds.
 */
import type { EndpointRequestCount } from './endpoint-tally.js';
import type { ErrorCounts } from './error-kinds.js';
import type { LatencySummary } from './percentiles.js';
import type { DatagramCounts, LoadRunResult, StatusClassCounts } from './types.js';
import { type Spread, spreadOf } from './spread.js';

export const LOAD_REPORT_SCHEMA = 'kpsim.load/v1';

export type TargetVia = 'ClusterIP' | 'NodePort';

/** What moved the bytes: the userspace proxy, or a proxy mode's rules in a real kernel (kpsim lab). */
export type LoadMode = 'userspace' | 'kernel-iptables' | 'kernel-nftables' | 'kernel-ipvs';

export interface LoadTargetInfo {
  /** As the user wrote it: "svc/web", "svc/default/web:http", "node-a:30080". */
  spec: string;
  /** The service port, as kube-proxy names it: "default/web:http". */
  service: string;
  via: TargetVia;
  /** The address inside the simulated cluster: "10.96.100.20:80", "192.168.0.2:30080". */
  address: string;
  /** Where the load went: the proxy's loopback listener, or the service address itself in a kernel lab. */
  listener: string;
}

export interface LoadSettings {
  connections: number;
  durationSeconds: number;
  pipelining: number;
  keepAlive: boolean;
  /** How the load generator ran, in words. */
  loadGenerator: string;
  /** The service port's protocol; absent means TCP. */
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  /** The fixed total request rate, when there was one (UDP always has one). */
  rate?: number;
  /** The request count the run stopped at, when one was given. */
  requests?: number;
  /** Proxy worker threads, when more than one (--workers). */
  workers?: number;
}

/** New connections the proxy placed on one endpoint. */
export interface EndpointConnectionCount {
  endpoint: string;
  pod: string;
  connections: number;
}

export interface EndpointShare {
  endpoint: string;
  pod: string;
  requests: number;
  /** requests / all responses. */
  requestShare: number;
  connections: number;
  /** connections / all connections the proxy placed. */
  connectionShare: number;
}

export interface LoadReport {
  schema: typeof LOAD_REPORT_SCHEMA;
  target: LoadTargetInfo;
  mode: LoadMode;
  scheduler: string;
  settings: LoadSettings;
  elapsedSeconds: number;
  requests: { total: number; perSecond: number; statusClasses: StatusClassCounts };
  latency: LatencySummary;
  errors: ErrorCounts;
  endpoints: EndpointShare[];
  unattributedRequests: number;
  spread: { requests: Spread; connections: Spread };
  /** UDP runs: what became of the datagrams sent. */
  datagrams?: DatagramCounts;
  /** Things to know when reading the figures (a listener that rejects everything, ...). */
  notes: string[];
}

export interface LoadReportInput {
  /** Default 'userspace'. */
  mode?: LoadMode;
  target: LoadTargetInfo;
  scheduler: string;
  settings: LoadSettings;
  run: LoadRunResult;
  /** Per-endpoint new connections (the proxy's counters, or the lab's pods'): every endpoint that could be picked. */
  connections: readonly EndpointConnectionCount[];
  notes?: readonly string[];
}

export function buildLoadReport(input: LoadReportInput): LoadReport {
  const { run } = input;
  const endpoints = endpointShares(run.endpoints, input.connections, run.responses);
  return {
    schema: LOAD_REPORT_SCHEMA,
    target: input.target,
    mode: input.mode ?? 'userspace',
    scheduler: input.scheduler,
    settings: input.settings,
    elapsedSeconds: run.elapsedSeconds,
    requests: { total: run.responses, perSecond: ratePerSecond(run.responses, run.elapsedSeconds), statusClasses: run.statusClasses },
    latency: run.latency,
    errors: run.errors,
    endpoints,
    unattributedRequests: run.unattributed,
    spread: {
      requests: spreadOf(endpoints.map((e) => e.requests)),
      connections: spreadOf(endpoints.map((e) => e.connections)),
    },
    ...(run.datagrams !== undefined ? { datagrams: { ...run.datagrams } } : {}),
    notes: [...(input.notes ?? [])],
  };
}

export function ratePerSecond(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : 0;
}

/**
 * One row per endpoint that either side knows: the proxy's counters list every endpoint it could
 * pick (so an endpoint that got nothing still shows, and counts in the spread); the headers add
 * any endpoint the proxy did not list. Sorted by endpoint text.
 */
export function endpointShares(
  requests: readonly EndpointRequestCount[],
  connections: readonly EndpointConnectionCount[],
  totalRequests: number,
): EndpointShare[] {
  const rows = new Map<string, EndpointShare>();
  const row = (endpoint: string, pod: string): EndpointShare => {
    let r = rows.get(endpoint);
    if (r === undefined) {
      r = { endpoint, pod, requests: 0, requestShare: 0, connections: 0, connectionShare: 0 };
      rows.set(endpoint, r);
    } else if (r.pod === '') {
      r.pod = pod;
    }
    return r;
  };
  for (const c of connections) row(c.endpoint, c.pod).connections += c.connections;
  for (const r of requests) row(r.endpoint, r.pod).requests += r.requests;
  const totalConnections = connections.reduce((sum, c) => sum + c.connections, 0);
  return [...rows.values()]
    .map((r) => ({
      ...r,
      requestShare: totalRequests > 0 ? r.requests / totalRequests : 0,
      connectionShare: totalConnections > 0 ? r.connections / totalConnections : 0,
    }))
    .sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
}
