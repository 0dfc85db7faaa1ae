/**
 * Drives autocannon at one loopback address (or, for UDP, udp-runner.ts) and counts what came back: responses by status
 * class, each response's latency (as a float, see percentiles.ts), errors by kind, and requests
 * per endpoint from the backends' `x-kpsim-*` headers. Runs in the calling thread; see
 * worker-runner.ts to run it off the thread that serves the proxy.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { isLoopback, unbracketHost } from '../util/ip.js';
import { EndpointTally, responseOrigin } from './endpoint-tally.js';
import { ErrorTally } from './error-kinds.js';
import { LatencySamples, summarizeLatency } from './percentiles.js';
import type { LoadRunOptions, LoadRunResult, ProgressListener, StatusClassCounts } from './types.js';
import { runUdpLoad } from './udp-runner.js';

const PROGRESS_INTERVAL_MS = 250;

/** The parts of autocannon's per-connection client kpsim relies on beyond its typings. */
interface ClientInternals {
  conn?: unknown;
  _connect(): void;
  _destroyConnection(): void;
}

/** The parser info autocannon passes with its client 'headers' event: headers as a flat list. */
interface ParsedHeadersInfo {
  headers?: unknown;
}

/**
 * `checkTarget` refuses a URL the load may not go to: anything but loopback by default. kpsim lab
 * runs this inside a client network namespace it made, and checks that instead.
 */
export async function runLoad(opts: LoadRunOptions, onProgress?: ProgressListener, checkTarget: (url: string) => void = checkLoopbackURL): Promise<LoadRunResult> {
  checkTarget(opts.url);
  if (opts.protocol === 'udp') return runUdpLoad(opts, onProgress);
  const keepAlive = opts.keepAlive ?? true;
  const pipelining = opts.pipelining ?? 1;
  if (!keepAlive && pipelining > 1) throw new Error('pipelining needs keep-alive connections');

  const latencies = new LatencySamples();
  const errors = new ErrorTally();
  const endpoints = new EndpointTally();
  const statusClasses: StatusClassCounts = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  let responses = 0;

  const setupClient = (client: autocannon.Client): void => {
    if (!keepAlive) closeEachConnectionCleanly(client as unknown as ClientInternals);
    // 'headers' and 'response' alternate per response, in order, even when pipelined.
    let origin: ReturnType<typeof responseOrigin>;
    client.on('headers', (info: unknown) => {
      const raw = (info as ParsedHeadersInfo).headers;
      origin = Array.isArray(raw) ? responseOrigin(raw.map(String)) : undefined;
    });
    client.on('response', (status: number, _bytes: number, durationMs: number) => {
      responses++;
      latencies.add(durationMs);
      errors.response(status);
      const cls = `${Math.floor(status / 100)}xx`;
      if (cls in statusClasses) statusClasses[cls as keyof StatusClassCounts]++;
      endpoints.count(origin);
      origin = undefined;
    });
    // Events autocannon's typings leave out: a socket error, and a request that timed out.
    const emitter: NodeJS.EventEmitter = client;
    emitter.on('connError', (err: unknown) => errors.connectionError(errorCode(err)));
    emitter.on('timeout', () => errors.timeout());
  };

  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  const ticker = onProgress ? setInterval(() => onProgress({ elapsedSeconds: elapsed(), responses }), PROGRESS_INTERVAL_MS) : undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const instance = autocannon(
        {
          url: opts.url,
          connections: opts.connections,
          duration: opts.durationSeconds,
          pipelining,
          timeout: opts.timeoutSeconds ?? 10,
          ...(opts.overallRate !== undefined ? { overallRate: opts.overallRate } : {}),
          ...(opts.amount !== undefined ? { amount: opts.amount } : {}),
          ...(keepAlive ? {} : { headers: { connection: 'close' } }),
          setupClient,
        },
        (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
      );
      instance.on('error', (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))));
      // With `amount`, autocannon ignores the duration: stop it there ourselves, whichever comes first.
      if (opts.amount !== undefined) {
        const stopAt = setTimeout(() => instance.stop(), opts.durationSeconds * 1000);
        instance.once('done', () => clearTimeout(stopAt));
      }
    });
  } finally {
    if (ticker) clearInterval(ticker);
  }
  const elapsedSeconds = elapsed();
  onProgress?.({ elapsedSeconds, responses });
  return {
    elapsedSeconds,
    responses,
    statusClasses,
    latency: summarizeLatency(latencies.sorted()),
    errors: errors.counts(),
    endpoints: endpoints.counts(),
    unattributed: endpoints.unattributed,
  };
}

/**
 * autocannon has no keep-alive switch: its reconnectRate drops the response that triggers the
 * reconnect from every count, and a plain `Connection: close` leaves the request it writes into
 * the closing socket queued, so each later latency is measured from an older request. So before
 * each reconnect the old socket and its queue are dropped; each request's latency then runs from
 * its own connect to its response, which is what a client without keep-alive sees.
 */
function closeEachConnectionCleanly(client: ClientInternals): void {
  const connect = client._connect.bind(client);
  client._connect = () => {
    if (client.conn !== undefined) client._destroyConnection();
    connect();
  };
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** kpsim sends load only to loopback; anything else reaching here is a bug. */
export function checkLoopbackURL(url: string): void {
  const host = unbracketHost(new URL(url).hostname);
  if (!isLoopback(host)) throw new Error(`refusing to send load to ${host}: kpsim sends traffic to loopback only`);
}
