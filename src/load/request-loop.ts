/**
 * Load for the churn scenario: a few HTTP clients on keep-alive connections, each sending one
 * request after another and opening a new connection every `requestsPerConnection` requests (as
 * many real clients do), so that a pod that comes back gets new connections. Every request is
 * counted in the phase it started in, with the endpoint that answered (the backends' header) or
 * the error; `inFlight()` says, at any moment, which requests are on the wire and on which
 * endpoint's connection (known from an earlier answer on the same connection).
 *
 * Bounded: clients stop at stop() or after `maxRequests` in all. Loopback only.
 */
import http from 'node:http';
import type { Socket } from 'node:net';

export interface RequestLoopOptions {
  readonly host: string;
  readonly port: number;
  readonly clients: number;
  readonly requestsPerConnection: number;
  /** A hard bound on requests in all. */
  readonly maxRequests: number;
  /** Called for each failed request: its number, phase, error and the failedOn key it is counted under. */
  readonly onFailed?: (failure: { request: number; phase: string; error: string; on: string; requestOnConnection: number }) => void;
}

export interface PhaseCounts {
  requests: number;
  failed: number;
  /** Answers per endpoint ("10.244.1.1:8080"). */
  readonly byEndpoint: Map<string, number>;
  readonly errors: Map<string, number>;
  /**
   * Failures by the endpoint the failed request's connection had answered from: "" for a new
   * connection, UNANSWERED_AT_SNAPSHOT for one whose first request was on the wire at the last
   * inFlight() (its endpoint is unknown: no answer came back on it).
   */
  readonly failedOn: Map<string, number>;
}

export interface InFlight {
  /** Requests on a connection whose endpoint is known, per endpoint. */
  readonly byEndpoint: ReadonlyMap<string, number>;
  /** Requests on a connection that has not answered yet. */
  readonly unknown: number;
}

/** failedOn's key for requests on the wire, on connections that had not answered yet, at the last inFlight(). */
export const UNANSWERED_AT_SNAPSHOT = '(unanswered at the snapshot)';

export class RequestLoop {
  #phase = 'start';
  #stopped = false;
  #total = 0;
  readonly #phases = new Map<string, PhaseCounts>();
  readonly #endpointOf = new WeakMap<Socket, string>();
  /** Per client: the socket of its request on the wire, or null when idle. */
  readonly #onWire: (Socket | null | 'connecting')[];
  /** Per client: the number of its request on the wire (see #onWire). */
  readonly #onWireRequest: number[];
  /** Requests that inFlight() last counted as unknown (their connection had not answered). */
  #unansweredAtSnapshot = new Set<number>();
  readonly #waiters: { phase: string; count: number; resolve: () => void }[] = [];
  readonly #agents: http.Agent[];
  #running: Promise<void>[] = [];

  constructor(private readonly options: RequestLoopOptions) {
    this.#onWire = Array.from({ length: options.clients }, () => null);
    this.#onWireRequest = Array.from({ length: options.clients }, () => 0);
    this.#agents = Array.from({ length: options.clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  }

  /** The phase requests started from now on are counted in. */
  set phase(name: string) {
    this.#phase = name;
  }

  get phase(): string {
    return this.#phase;
  }

  start(): void {
    this.#running = this.#agents.map((agent, i) => this.#client(agent, i));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
    for (const agent of this.#agents) agent.destroy();
  }

  counts(phase: string): PhaseCounts {
    let counts = this.#phases.get(phase);
    if (counts === undefined) this.#phases.set(phase, (counts = { requests: 0, failed: 0, byEndpoint: new Map(), errors: new Map(), failedOn: new Map() }));
    return counts;
  }

  get phases(): string[] {
    return [...this.#phases.keys()];
  }

  /** Resolves once `count` requests that started in `phase` have finished. */
  finished(phase: string, count: number): Promise<void> {
    if (this.counts(phase).requests >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ phase, count, resolve }));
  }

  /**
   * What is on the wire now. The requests it counts as unknown are remembered: should one of
   * them fail, its endpoint stays unknown (it may well have been the pod that died), and it is
   * counted under UNANSWERED_AT_SNAPSHOT rather than as a failure on a new connection.
   */
  inFlight(): InFlight {
    const byEndpoint = new Map<string, number>();
    this.#unansweredAtSnapshot = new Set();
    this.#onWire.forEach((socket, client) => {
      if (socket === null) return;
      const endpoint = socket === 'connecting' ? undefined : this.#endpointOf.get(socket);
      if (endpoint === undefined) this.#unansweredAtSnapshot.add(this.#onWireRequest[client]!);
      else byEndpoint.set(endpoint, (byEndpoint.get(endpoint) ?? 0) + 1);
    });
    return { byEndpoint, unknown: this.#unansweredAtSnapshot.size };
  }

  async #client(agent: http.Agent, index: number): Promise<void> {
    let onConnection = 0;
    while (!this.#stopped && this.#total < this.options.maxRequests) {
      const request = ++this.#total;
      onConnection++;
      const nth = onConnection;
      const close = onConnection >= this.options.requestsPerConnection;
      if (close) onConnection = 0;
      const phase = this.#phase;
      this.#onWireRequest[index] = request;
      const outcome = await this.#request(agent, index, close);
      const counts = this.counts(phase);
      counts.requests++;
      if (outcome.endpoint !== undefined) counts.byEndpoint.set(outcome.endpoint, (counts.byEndpoint.get(outcome.endpoint) ?? 0) + 1);
      else {
        counts.failed++;
        counts.errors.set(outcome.error, (counts.errors.get(outcome.error) ?? 0) + 1);
        const on = outcome.connectionEndpoint ?? (this.#unansweredAtSnapshot.has(request) ? UNANSWERED_AT_SNAPSHOT : '');
        counts.failedOn.set(on, (counts.failedOn.get(on) ?? 0) + 1);
        this.options.onFailed?.({ request, phase, error: outcome.error, on, requestOnConnection: nth });
        // A failed connection is gone: the next request opens a new one.
        onConnection = 0;
      }
      for (const w of [...this.#waiters]) {
        if (w.phase !== phase || counts.requests < w.count) continue;
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  #request(agent: http.Agent, index: number, close: boolean): Promise<{ endpoint?: string; error: string; connectionEndpoint?: string }> {
    return new Promise((resolve) => {
      this.#onWire[index] = 'connecting';
      let onSocket: Socket | undefined;
      const failed = (error: string): void => {
        this.#onWire[index] = null;
        const connectionEndpoint = onSocket === undefined ? undefined : this.#endpointOf.get(onSocket);
        resolve({ error, ...(connectionEndpoint !== undefined ? { connectionEndpoint } : {}) });
      };
      const req = http.request({ host: this.options.host, port: this.options.port, path: '/', agent, headers: close ? { connection: 'close' } : {} }, (res) => {
        const endpoint = res.headers['x-kpsim-endpoint'];
        // The socket is detached from the response once it ends (keep-alive): take it now.
        const socket = res.socket;
        res.resume();
        res.on('end', () => {
          this.#onWire[index] = null;
          if (typeof endpoint === 'string' && res.statusCode === 200) {
            if (socket !== null) this.#endpointOf.set(socket, endpoint);
            resolve({ endpoint, error: '' });
          } else {
            failed(`HTTP ${res.statusCode}`);
          }
        });
        res.on('error', (e: NodeJS.ErrnoException) => failed(e.code ?? e.message));
      });
      req.on('socket', (socket: Socket) => {
        onSocket = socket;
        this.#onWire[index] = socket;
      });
      req.on('error', (e: NodeJS.ErrnoException) => failed(e.code ?? e.message));
      req.end();
    });
  }
}
