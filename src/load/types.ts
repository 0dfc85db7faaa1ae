/** What a load run is asked to do and what it found: plain data, so it crosses to a worker thread. */
import type { EndpointRequestCount } from './endpoint-tally.js';
import type { ErrorCounts } from './error-kinds.js';
import type { LatencySummary } from './percentiles.js';

export interface LoadRunOptions {
  /** "http://127.0.10.1:80/": the host must be a loopback address. */
  url: string;
  connections: number;
  durationSeconds: number;
  /** Requests in flight per connection (1 = no pipelining). */
  pipelining?: number;
  /** false: one request per TCP connection (Connection: close). Default true. */
  keepAlive?: boolean;
  /** A fixed total request rate per second (autocannon's overallRate); as fast as possible when absent. */
  overallRate?: number;
  /** A request with no response after this long counts as a timeout: whole seconds >= 1 (autocannon's limit), default 10. */
  timeoutSeconds?: number;
  /**
   * Stop after this many requests instead of after durationSeconds (autocannon's `amount`, at
   * least `connections`): a run of a known size, whatever the machine's speed. With keep-alive
   * each is answered; without, autocannon also counts the request it drops at each reconnect.
   */
  amount?: number;
}

export interface StatusClassCounts {
  '1xx': number;
  '2xx': number;
  '3xx': number;
  '4xx': number;
  '5xx': number;
}

export interface LoadRunResult {
  /** Wall time of the run, seconds. */
  elapsedSeconds: number;
  /** Complete responses, any status. */
  responses: number;
  statusClasses: StatusClassCounts;
  latency: LatencySummary;
  errors: ErrorCounts;
  /** Responses per endpoint, from the backends' headers, sorted by endpoint. */
  endpoints: EndpointRequestCount[];
  /** Responses that named no endpoint. */
  unattributed: number;
}

export interface LoadProgress {
  elapsedSeconds: number;
  responses: number;
}

export type ProgressListener = (progress: LoadProgress) => void;
