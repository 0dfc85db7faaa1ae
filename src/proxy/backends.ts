/**
 * Backend pods: for each endpoint of the cluster, a real fastify server on the endpoint's
 * loopback stand-in (see address-map.ts), answering every HTTP request with who it is:
 *
 *   HTTP/1.1 200 OK
 *   x-kpsim-pod: web-5d8f7c9b6-abcde
 *   x-kpsim-endpoint: 10.244.0.5:8080
 *   x-kpsim-connection: 3
 *   {"pod":"web-5d8f7c9b6-abcde","endpoint":"10.244.0.5:8080","connection":3,"status":200}
 *
 * The load tester counts each endpoint's share from the headers. The body is built once per
 * connection (the connection id is in it) and padded to the configured payload size, so a
 * request costs fastify's routing and one write. Failure schedules make a pod misbehave on
 * purpose: 500s every Nth request or at a seeded probability, connections destroyed every Nth
 * request, or the listening socket closed after a while (new connections are then refused).
 *
 * An endpoint of a UDP service port also gets a UDP responder on its loopback address (the same
 * port number as its TCP server when it has both, as DNS pods have): it answers DNS queries with
 * a TXT record naming the pod and echoes anything else with the pod's identity after it (see
 * udp-reply.ts). Its failure schedule drops the datagrams that would have been 500s, and a
 * refused or killed pod closes its UDP socket (datagrams to it then meet ICMP port-unreachable).
 */
import dgram from 'node:dgram';
import net, { type Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { KpsimError } from '../errors.js';
import { seededRng } from '../util/random.js';
import { joinHostPort } from '../util/ip.js';
import {
  type AddressMap, type BackendEntry, type BoundPort, type HostPort, type PlanOptions, planAddressMap, udpBindingKey,
} from './address-map.js';
import { bindWithFallback } from './bind-fallback.js';
import { type ProxyInput, statesOf } from './input.js';
import { identityTrailer, udpReply } from './udp-reply.js';

export interface FaultSchedule {
  /** Answer 500 to every Nth request this pod receives. */
  failEvery?: number;
  /** Answer 500 with this probability, drawn from a seeded source. */
  failProbability?: number;
  /** Destroy the connection instead of answering every Nth request. */
  closeEvery?: number;
  /** Close the listening socket this long after start: new connections are refused. */
  refuseAfterMs?: number;
}

export interface BackendOptions {
  /** Wait this long before answering. Default 0. */
  delayMs?: number;
  /** Pad each response body to this many bytes. Default: the bare JSON (about 90 bytes). */
  payloadBytes?: number;
  /** Faults for every pod. */
  faults?: FaultSchedule;
  /** Faults for some pods, by endpoint ("10.244.0.5:8080") or pod name; replaces `faults` for them. */
  faultsFor?: Readonly<Record<string, FaultSchedule>>;
  /** Seed of the failure probability sources (each pod draws from its own). Default 1. */
  seed?: number;
  /** Keep the endpoints' ports on loopback ('service', default) or take ephemeral ones. Ignored when `map` is given. */
  ports?: PlanOptions['ports'];
  /** The planned map whose backend entries to start. */
  map?: AddressMap;
  /** How long an idle keep-alive connection stays open. Default 72 s (fastify's default). */
  keepAliveTimeoutMs?: number;
}

export interface BackendStats {
  readonly endpoint: string;
  readonly podName?: string;
  readonly loopback: HostPort;
  /** Accepting new connections now (false after refuse or kill). */
  readonly listening: boolean;
  readonly connections: number;
  readonly activeConnections: number;
  readonly requests: number;
  /** UDP datagrams received (answered or dropped by the failure schedule). */
  readonly datagrams: number;
  /** Requests answered with 500 (UDP: datagrams dropped) by the failure schedule. */
  readonly failed: number;
  /** Connections destroyed by the failure schedule or by kill. */
  readonly destroyed: number;
}

const DEFAULT_KEEP_ALIVE_MS = 72_000;
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

interface ConnectionState {
  readonly id: number;
  /** Built on the first request: most connections never see a 500. */
  ok?: Buffer;
  error?: Buffer;
  headers?: Record<string, string>;
}

/** One backend pod: a fastify server for one endpoint. */
export class Backend {
  entry: BackendEntry;
  readonly #app: FastifyInstance;
  readonly #faults: FaultSchedule;
  readonly #delayMs: number;
  readonly #payloadBytes: number;
  readonly #rng: () => number;
  readonly #connections = new Map<Socket, ConnectionState>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #udp: dgram.Socket | undefined;
  #udpTrailer: Buffer | undefined;
  #nextConnectionId = 1;
  #requests = 0;
  #datagrams = 0;
  #totalConnections = 0;
  #failed = 0;
  #destroyed = 0;
  #listening = false;

  constructor(entry: BackendEntry, options: BackendOptions, faults: FaultSchedule, seed: number) {
    this.entry = entry;
    this.#faults = checkFaults(faults, entry.endpoint);
    this.#delayMs = options.delayMs ?? 0;
    this.#payloadBytes = options.payloadBytes ?? 0;
    this.#rng = seededRng(seed);
    this.#app = Fastify({
      logger: false,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_MS,
      forceCloseConnections: true,
      return503OnClosing: false,
    });
    // Take any body of any type, count nothing, keep nothing: a pod under load need not parse.
    this.#app.removeAllContentTypeParsers();
    this.#app.addContentTypeParser('*', (_request, payload, done) => {
      payload.on('data', noop);
      payload.on('end', () => done(null));
      payload.on('error', done);
    });
    this.#app.route({ method: [...HTTP_METHODS], url: '/*', handler: this.#handle });
    this.#app.server.on('connection', this.#onConnection);
  }

  /** Listen: its TCP server and, for an endpoint of a UDP port, its UDP responder. Returns the bound ports by binding key. */
  async start(): Promise<Map<string, BoundPort>> {
    const bound = new Map<string, BoundPort>();
    const { protocols } = this.entry;
    if (protocols.includes('TCP')) {
      const tcp = await this.#bindWithFallback(this.entry.loopback, (host, port) => this.#listen(host, port));
      this.entry = { ...this.entry, loopback: { address: this.entry.loopback.address, port: tcp.port }, ...(tcp.fallback !== undefined ? { fallback: tcp.fallback } : {}) };
      bound.set(this.entry.endpoint, tcp);
    }
    if (protocols.includes('UDP')) {
      const planned = this.entry.udpLoopback ?? this.entry.loopback;
      const udp = await this.#bindWithFallback(planned, (host, port) => this.#bindUdp(host, port));
      this.entry = { ...this.entry, udpLoopback: { address: planned.address, port: udp.port } };
      if (!protocols.includes('TCP')) {
        this.entry = { ...this.entry, loopback: this.entry.udpLoopback!, ...(udp.fallback !== undefined ? { fallback: udp.fallback } : {}) };
        bound.set(this.entry.endpoint, udp);
      }
      bound.set(udpBindingKey(this.entry.endpoint), udp);
    }
    if (this.#faults.refuseAfterMs !== undefined) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        void this.refuse();
      }, this.#faults.refuseAfterMs);
      this.#timers.add(timer);
    }
    return bound;
  }

  /** The planned port, else an ephemeral one when it is taken or privileged (and say why). */
  #bindWithFallback(planned: HostPort, bind: (host: string, port: number) => Promise<number>): Promise<BoundPort> {
    return bindWithFallback(planned, bind, (port, cause) => backendListenError(this.entry, planned.address, port, cause));
  }

  /** Where it listens. */
  get loopback(): HostPort {
    return this.entry.loopback;
  }

  stats(): BackendStats {
    return {
      endpoint: this.entry.endpoint,
      ...(this.entry.podName !== undefined ? { podName: this.entry.podName } : {}),
      loopback: this.entry.loopback,
      listening: this.#listening,
      connections: this.#totalConnections,
      activeConnections: this.#connections.size,
      requests: this.#requests,
      datagrams: this.#datagrams,
      failed: this.#failed,
      destroyed: this.#destroyed,
    };
  }

  /** Stop accepting: new connections are refused; open ones go on. The UDP responder closes. */
  async refuse(): Promise<void> {
    await this.#closeUdp();
    if (!this.#listening) return;
    this.#listening = false;
    // net.Server's own close: http.Server.close would also drop idle keep-alive connections.
    await new Promise<void>((resolve) => net.Server.prototype.close.call(this.#app.server, () => resolve()));
  }

  /** Listen again on the same address after refuse or kill. */
  async restore(): Promise<void> {
    if (this.entry.protocols.includes('UDP') && this.#udp === undefined) {
      await this.#bindUdp(this.entry.udpLoopback!.address, this.entry.udpLoopback!.port);
    }
    if (this.#listening || !this.entry.protocols.includes('TCP')) return;
    await this.#listen(this.entry.loopback.address, this.entry.loopback.port);
  }

  /** A crash: stop accepting and reset every open connection. */
  async kill(): Promise<void> {
    const stopped = this.refuse();
    for (const socket of this.#connections.keys()) {
      this.#destroyed++;
      socket.resetAndDestroy();
    }
    await stopped;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#connections.keys()) socket.destroy();
    this.#listening = false;
    await this.#closeUdp();
    await this.#app.close();
  }

  #bindUdp(host: string, port: number): Promise<number> {
    const socket = dgram.createSocket(this.entry.family === 6 ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => {
        socket.close();
        reject(err);
      });
      socket.bind(this.entry.udpListenFd !== undefined ? { fd: this.entry.udpListenFd } : { address: host, port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        // A reply to a client that has gone is lost, as it would be on a network.
        socket.on('error', noop);
        socket.on('message', this.#onDatagram);
        this.#udp = socket;
        resolve(socket.address().port);
      });
    });
  }

  #closeUdp(): Promise<void> {
    const socket = this.#udp;
    if (socket === undefined) return Promise.resolve();
    this.#udp = undefined;
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  #onDatagram = (datagram: Buffer, from: dgram.RemoteInfo): void => {
    const n = ++this.#datagrams;
    const faults = this.#faults;
    const fail = (faults.failEvery !== undefined && n % faults.failEvery === 0)
      || (faults.failProbability !== undefined && this.#rng() < faults.failProbability);
    if (fail) {
      this.#failed++;
      return;
    }
    const identity = { pod: this.entry.podName ?? '', endpoint: this.entry.endpoint };
    this.#udpTrailer ??= identityTrailer(identity);
    this.#udp?.send(udpReply(datagram, identity, this.#udpTrailer), from.port, from.address);
  };

  async #listen(host: string, port: number): Promise<number> {
    // fastify must boot (routes, hooks) before its server may take requests; after that the
    // server is listened on directly, so that refuse/restore can close and reopen it.
    await this.#app.ready();
    const server = this.#app.server;
    const bound = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.entry.listenFd !== undefined ? { fd: this.entry.listenFd } : { host, port, backlog: 4096 }, () => {
        server.removeListener('error', reject);
        resolve((server.address() as net.AddressInfo).port);
      });
    });
    this.#listening = true;
    return bound;
  }

  #onConnection = (socket: Socket): void => {
    socket.setNoDelay(true);
    this.#totalConnections++;
    this.#connections.set(socket, { id: this.#nextConnectionId++ });
    socket.once('close', () => this.#connections.delete(socket));
  };

  #handle = (request: FastifyRequest, reply: FastifyReply): void => {
    const n = ++this.#requests;
    const socket = request.raw.socket;
    const conn = this.#connections.get(socket) ?? { id: 0 };
    const faults = this.#faults;
    if (faults.closeEvery !== undefined && n % faults.closeEvery === 0) {
      this.#destroyed++;
      reply.hijack();
      socket.destroy();
      return;
    }
    const fail = (faults.failEvery !== undefined && n % faults.failEvery === 0)
      || (faults.failProbability !== undefined && this.#rng() < faults.failProbability);
    if (fail) this.#failed++;
    const headers = conn.headers ??= this.#headersFor(conn.id);
    const body = fail ? (conn.error ??= this.#bodyFor(conn.id, 500)) : (conn.ok ??= this.#bodyFor(conn.id, 200));
    reply.code(fail ? 500 : 200).headers(headers);
    if (this.#delayMs === 0) {
      void reply.send(body);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void reply.send(body);
    }, this.#delayMs);
    this.#timers.add(timer);
  };

  #headersFor(connectionId: number): Record<string, string> {
    return {
      'content-type': 'application/json',
      'x-kpsim-pod': this.entry.podName ?? '',
      'x-kpsim-endpoint': this.entry.endpoint,
      'x-kpsim-connection': String(connectionId),
    };
  }

  #bodyFor(connectionId: number, status: number): Buffer {
    return responseBody(this.entry.podName ?? '', this.entry.endpoint, connectionId, status, this.#payloadBytes);
  }
}

/** The JSON a backend answers with, padded with a "pad" field to `payloadBytes` when that is longer. */
export function responseBody(podName: string, endpoint: string, connectionId: number, status: number, payloadBytes: number): Buffer {
  const bare = JSON.stringify({ pod: podName, endpoint, connection: connectionId, status });
  const padded = `${bare.slice(0, -1)},"pad":""}`;
  if (payloadBytes <= bare.length || payloadBytes < padded.length) return Buffer.from(bare);
  return Buffer.from(`${bare.slice(0, -1)},"pad":"${'x'.repeat(payloadBytes - padded.length)}"}`);
}

/** Every backend of one run. */
export class Backends {
  readonly #byEndpoint = new Map<string, Backend>();
  readonly #options: BackendOptions;
  #nextSeed: number;

  constructor(options: BackendOptions) {
    this.#options = options;
    this.#nextSeed = options.seed ?? 1;
  }

  /** Each backend's entry with the port it bound. */
  get entries(): BackendEntry[] {
    return [...this.#byEndpoint.values()].map((b) => b.entry);
  }

  /** Where an endpoint's backend listens (TCP, or UDP when it serves UDP only); undefined when there is none. */
  address(endpoint: string): HostPort | undefined {
    return this.#byEndpoint.get(endpoint)?.loopback;
  }

  /** Where an endpoint's UDP responder listens; undefined when it has none. */
  udpAddress(endpoint: string): HostPort | undefined {
    return this.#byEndpoint.get(endpoint)?.entry.udpLoopback;
  }

  backend(endpoint: string): Backend | undefined {
    return this.#byEndpoint.get(endpoint);
  }

  stats(): BackendStats[] {
    return [...this.#byEndpoint.values()].map((b) => b.stats());
  }

  /** Start a backend for each entry not running yet; returns the bound ports by endpoint. */
  async start(entries: readonly BackendEntry[]): Promise<Map<string, BoundPort>> {
    const bound = new Map<string, BoundPort>();
    for (const entry of entries) {
      if (this.#byEndpoint.has(entry.endpoint)) continue;
      const faults = this.#options.faultsFor?.[entry.endpoint]
        ?? (entry.podName !== undefined ? this.#options.faultsFor?.[entry.podName] : undefined)
        ?? this.#options.faults ?? {};
      const backend = new Backend(entry, this.#options, faults, this.#nextSeed++);
      this.#byEndpoint.set(entry.endpoint, backend);
      for (const [key, port] of await backend.start()) bound.set(key, port);
    }
    return bound;
  }

  /** Start backends for endpoints of these states that have none yet (endpoints added at run time). */
  async ensure(input: ProxyInput): Promise<string[]> {
    const plan = planAddressMap(statesOf(input), { ports: this.#options.ports ?? 'service' });
    const missing = plan.backends.filter((b) => !this.#byEndpoint.has(b.endpoint));
    await this.start(missing);
    return missing.map((b) => b.endpoint);
  }

  refuse(endpoint: string): Promise<void> {
    return this.#get(endpoint).refuse();
  }

  restore(endpoint: string): Promise<void> {
    return this.#get(endpoint).restore();
  }

  kill(endpoint: string): Promise<void> {
    return this.#get(endpoint).kill();
  }

  async close(): Promise<void> {
    await Promise.all([...this.#byEndpoint.values()].map((b) => b.close()));
  }

  #get(endpoint: string): Backend {
    const backend = this.#byEndpoint.get(endpoint);
    if (backend === undefined) throw new KpsimError('KPSIM_ERR_PROXY_NO_TARGET', `no backend runs for endpoint ${endpoint}`);
    return backend;
  }
}

/** Start a backend pod for every endpoint of the states' TCP and UDP service ports. */
export async function startBackends(input: ProxyInput, options: BackendOptions = {}): Promise<Backends> {
  checkBackendOptions(options);
  const map = options.map ?? planAddressMap(statesOf(input), { ports: options.ports ?? 'service' });
  const backends = new Backends(options);
  try {
    await backends.start(map.backends);
  } catch (e) {
    await backends.close();
    throw e;
  }
  return backends;
}

function checkBackendOptions(options: BackendOptions): void {
  const bad = (path: string, detail: string): never => {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', detail, { path });
  };
  if (options.delayMs !== undefined && !(Number.isFinite(options.delayMs) && options.delayMs >= 0)) bad('delayMs', `delay ${options.delayMs} ms is not a number >= 0`);
  if (options.payloadBytes !== undefined && !(Number.isInteger(options.payloadBytes) && options.payloadBytes >= 0)) bad('payloadBytes', `payload ${options.payloadBytes} bytes is not a whole number >= 0`);
  if (options.faults !== undefined) checkFaults(options.faults, 'every backend');
  for (const [who, faults] of Object.entries(options.faultsFor ?? {})) checkFaults(faults, who);
}

function checkFaults(faults: FaultSchedule, who: string): FaultSchedule {
  const bad = (path: string, detail: string): never => {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `faults for ${who}: ${detail}`, { path });
  };
  for (const field of ['failEvery', 'closeEvery'] as const) {
    const v = faults[field];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) bad(field, `${field} ${v} is not a whole number >= 1`);
  }
  const p = faults.failProbability;
  if (p !== undefined && !(p >= 0 && p <= 1)) bad('failProbability', `probability ${p} is not from 0 to 1`);
  const ms = faults.refuseAfterMs;
  if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0)) bad('refuseAfterMs', `refuseAfterMs ${ms} is not a number >= 0`);
  return faults;
}

function backendListenError(entry: BackendEntry, address: string, port: number, cause: unknown): KpsimError {
  const reason = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new KpsimError('KPSIM_ERR_PROXY_LISTEN', `backend for ${entry.endpoint}: cannot listen on ${joinHostPort(address, port)}: ${reason}`, { object: entry.podName ?? entry.endpoint });
}

function noop(): void {}
