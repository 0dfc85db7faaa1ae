/** What a load run is asked to do and what it found: plain data, so it crosses to a worker thread. */
import type { EndpointRequestCount } from './endpoint-tally.js';
import type { ErrorCounts } from './error-kinds.js';
import type { LatencySummary } from './percentiles.js';

export interface LoadRunOptions {
  /** "http://127.0.10.1:80/" (TCP) or "udp://127.0.10.1:53" (UDP): the host must be a loopback address. */
  url: string;
  /** 'tcp' (default): HTTP over TCP with autocannon; 'udp': request/response datagrams (udp-runner.ts). */
  protocol?: 'tcp' | 'udp';
  connections: number;
  durationSeconds: number;
  /** Requests in flight per connection (1 = no pipelining). */
  pipelining?: number;
  /** false: one request per TCP connection (Connection: close). Default true. */
  keepAlive?: boolean;
  /** A fixed total request rate per second (autocannon's overallRate); as fast as possible when absent (TCP only: UDP always paces, 1000/s by default). */
  overallRate?: number;
  /**
   * Stop after this many requests (autocannon's `amount`, at least `connections`), or at the
   * duration, whichever comes first: with a long duration as a bound, a run of a known size
   * whatever the machine's speed. With keep-alive each is answered; without, autocannon also
   * counts the request it drops at each reconnect.
   */
  amount?: number;
  /**
   * A request with no response after this long counts as a timeout: TCP whole seconds >= 1
   * (autocannon's limit), default 10; UDP any number > 0, default 1 (a datagram not answered by
   * then is lost).
   */
  timeoutSeconds?: number;
}

/** UDP: what became of the datagrams sent. */
export interface DatagramCounts {
  sent: number;
  /** Answered within the timeout. */
  answered: number;
  /** Not answered within the timeout (they count as timeouts in the errors too). */
  lost: number;
  /** Of the lost, answered after the timeout. */
  late: number;
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
  /** UDP runs only. */
  datagrams?: DatagramCounts;
}

export interface LoadProgress {
  elapsedSeconds: number;
  responses: number;
}

export type ProgressListener = (progress: LoadProgress) => void;
