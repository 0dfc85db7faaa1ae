/**
 * kube-proxy's health server (pkg/proxy/healthcheck/proxy_health.go) and its metrics server
 * (cmd/kube-proxy/app/server.go serveMetrics), over node:http.
 *
 * Health: each proxier (IP family) reports `updated` after a successful sync and
 * `queuedUpdate` when a change waits for a sync. A proxier is unhealthy once a queued change
 * has waited longer than healthTimeout (kube-proxy: 2 x syncPeriod) without a sync since.
 * `/livez` answers 200 when every proxier is healthy, else 503; `/healthz` also needs the node
 * to be eligible (its Node object exists, is not being deleted and is not tainted
 * ToBeDeletedByClusterAutoscaler) and then says so in `nodeEligible`. Both answer JSON:
 * `{"lastUpdated", "currentTime", "nodeEligible", "healthy", "status": {"IPv4": {...}}}`, with
 * `lastUpdated` set to now when healthy, as kube-proxy keeps for old clients.
 *
 * Metrics: `/metrics` (the registry), `/proxyMode` (the mode's name) and `/healthz` ("ok").
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KpsimError } from '../errors.js';
import { type ProxyMetrics, ipFamilyLabel } from './metrics.js';

/** The taint the cluster autoscaler puts on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** What the health server needs to know of the node's own Node object. */
export interface NodeStatus {
  readonly deleting: boolean;
  readonly taintKeys: readonly string[];
}

interface ProxierHealth {
  lastUpdated: string;
  healthy: boolean;
}

export interface ProxyHealthReport {
  lastUpdated: string;
  currentTime: string;
  nodeEligible?: boolean;
  healthy: boolean;
  status: Record<string, ProxierHealth>;
}

/** Go's zero time.Time as JSON. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Go's RFC 3339 with nanoseconds: fraction without trailing zeros (none at all when zero). */
export function goTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits === '' ? 'Z' : `.${digits}Z`));
}

export class ProxyHealth {
  readonly #lastUpdated = new Map<4 | 6, number>();
  readonly #oldestPendingQueued = new Map<4 | 6, number>();

  /**
   * @param healthTimeoutMs how long a queued change may wait for a sync (kube-proxy: 2 x syncPeriod)
   * @param now the clock, ms since the epoch
   * @param node the node's Node object as last seen; undefined when there is none
   */
  constructor(private readonly healthTimeoutMs: number, private readonly now: () => number, private readonly node: () => NodeStatus | undefined) {}

  updated(family: 4 | 6): void {
    this.#oldestPendingQueued.delete(family);
    this.#lastUpdated.set(family, this.now());
  }

  queuedUpdate(family: 4 | 6): void {
    if (!this.#oldestPendingQueued.has(family)) this.#oldestPendingQueued.set(family, this.now());
  }

  health(): ProxyHealthReport {
    const now = this.now();
    const status: Record<string, ProxierHealth> = {};
    let healthy = true;
    let lastUpdated = -Infinity;
    for (const [family, updated] of this.#lastUpdated) {
      lastUpdated = Math.max(lastUpdated, updated);
      const queued = this.#oldestPendingQueued.get(family);
      // Healthy while starting up, when fully synced, or while a queued change is not late yet.
      const ok = queued === undefined || now - queued < this.healthTimeoutMs;
      if (!ok) healthy = false;
      status[ipFamilyLabel(family)] = { lastUpdated: goTime(updated), healthy: ok };
    }
    return { lastUpdated: Number.isFinite(lastUpdated) ? goTime(lastUpdated) : ZERO_TIME, currentTime: goTime(now), healthy, status };
  }

  nodeEligible(): boolean {
    const node = this.node();
    return node !== undefined && !node.deleting && !node.taintKeys.includes(TO_BE_DELETED_TAINT);
  }

  /** The /healthz answer. */
  healthz(): { status: 200 | 503; body: ProxyHealthReport } {
    const report = this.health();
    const eligible = this.nodeEligible();
    const body: ProxyHealthReport = { lastUpdated: report.lastUpdated, currentTime: report.currentTime, nodeEligible: eligible, healthy: report.healthy, status: report.status };
    if (!(report.healthy && eligible)) return { status: 503, body };
    return { status: 200, body: { ...body, lastUpdated: goTime(this.now()) } };
  }

  /** The /livez answer. */
  livez(): { status: 200 | 503; body: ProxyHealthReport } {
    const report = this.health();
    if (!report.healthy) return { status: 503, body: report };
    return { status: 200, body: { ...report, lastUpdated: goTime(this.now()) } };
  }
}

export interface RunningServer {
  /** "127.0.0.1:10256": where it listens (the port it got, when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

/** The health server: /healthz and /livez. */
export function startHealthServer(bindAddress: string, health: ProxyHealth, metrics: ProxyMetrics): Promise<RunningServer> {
  return listen('--healthz-bind-address', bindAddress, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/healthz' && path !== '/livez') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
      return;
    }
    const answer = path === '/healthz' ? health.healthz() : health.livez();
    (path === '/healthz' ? metrics.m.proxyHealthzTotal : metrics.m.proxyLivezTotal).inc({ code: String(answer.status) });
    res.writeHead(answer.status, { 'content-type': 'application/json', 'x-content-type-options': 'nosniff' }).end(JSON.stringify(answer.body));
  });
}

/** The metrics server: /metrics, /proxyMode, /healthz. */
export function startMetricsServer(bindAddress: string, metrics: ProxyMetrics, mode: string): Promise<RunningServer> {
  return listen('--metrics-bind-address', bindAddress, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics.text().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e)),
      );
    } else if (path === '/proxyMode') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(mode);
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
    }
  });
}

/** "host:port" (IPv6 in brackets) → host and port. */
export function parseBindAddress(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${JSON.stringify(text)} is not host:port`);
  return { host: (m[1] ?? m[2])!, port };
}

function listen(flag: string, bindAddress: string, handler: http.RequestListener): Promise<RunningServer> {
  const { host, port } = parseBindAddress(flag, bindAddress);
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new KpsimError('KPSIM_ERR_PROXY_LISTEN', `${flag}: cannot listen on ${bindAddress}: ${e.code ?? e.message}`)));
    server.listen({ host, port }, () => {
      const got = server.address() as AddressInfo;
      resolve({
        address: `${got.family === 'IPv6' ? `[${got.address}]` : got.address}:${got.port}`,
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}
