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
}

export interface PhaseCounts {
  requests: number;
  failed: number;
  /** Answers per endpoint ("10.244.1.1:8080"). */
  readonly byEndpoint: Map<string, number>;
  readonly errors: Map<string, number>;
  /** Failures by the endpoint the failed request's connection had answered from ("" for a new connection). */
  readonly failedOn: Map<string, number>;
}

export interface InFlight {
  /** Requests on a connection whose endpoint is known, per endpoint. */
  readonly byEndpoint: ReadonlyMap<string, number>;
  /** Requests on a connection that has not answered yet. */
  readonly unknown: number;
}

export class RequestLoop {
  #phase = 'start';
  #stopped = false;
  #total = 0;
  readonly #phases = new Map<string, PhaseCounts>();
  readonly #endpointOf = new WeakMap<Socket, string>();
  /** Per client: the socket of its request on the wire, or null when idle. */
  readonly #onWire: (Socket | null | 'connecting')[];
  readonly #waiters: { phase: string; count: number; resolve: () => void }[] = [];
  readonly #agents: http.Agent[];
  #running: Promise<void>[] = [];

  constructor(private readonly options: RequestLoopOptions) {
    this.#onWire = Array.from({ length: options.clients }, () => null);
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

  inFlight(): InFlight {
    const byEndpoint = new Map<string, number>();
    let unknown = 0;
    for (const socket of this.#onWire) {
      if (socket === null) continue;
      const endpoint = socket === 'connecting' ? undefined : this.#endpointOf.get(socket);
      if (endpoint === undefined) unknown++;
      else byEndpoint.set(endpoint, (byEndpoint.get(endpoint) ?? 0) + 1);
    }
    return { byEndpoint, unknown };
  }

  async #client(agent: http.Agent, index: number): Promise<void> {
    let onConnection = 0;
    while (!this.#stopped && this.#total < this.options.maxRequests) {
      this.#total++;
      onConnection++;
      const close = onConnection >= this.options.requestsPerConnection;
      if (close) onConnection = 0;
      const phase = this.#phase;
      const outcome = await this.#request(agent, index, close);
      const counts = this.counts(phase);
      counts.requests++;
      if (outcome.endpoint !== undefined) counts.byEndpoint.set(outcome.endpoint, (counts.byEndpoint.get(outcome.endpoint) ?? 0) + 1);
      else {
        counts.failed++;
        counts.errors.set(outcome.error, (counts.errors.get(outcome.error) ?? 0) + 1);
        counts.failedOn.set(outcome.connectionEndpoint ?? '', (counts.failedOn.get(outcome.connectionEndpoint ?? '') ?? 0) + 1);
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
