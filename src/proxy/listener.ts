/**
 * One proxy listener: the loopback stand-in for one virtual address (a ClusterIP, a node IP's
 * NodePort, an external IP, a load balancer IP) of one TCP service port. Like an IPVS virtual
 * server it has its own scheduler state, persistence templates and connection counts.
 */
import net, { type Server, type Socket } from 'node:net';
import { KpsimError } from '../errors.js';
import { type VirtualService, createScheduler } from '../ipvs/virtual-service.js';
import type { ProxierServicePort } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import type { BoundPort, VirtualEntry } from './address-map.js';
import { type ConnectionHost, type ListenerEndpoint, ProxyConnection } from './connection.js';
import { type ListenerVerdict, chooseEndpoints } from './endpoint-choice.js';
import { IdleSweep } from './idle-sweep.js';
import type { EndpointStats, ListenerStats } from './stats.js';

export interface ListenerSettings {
  readonly scheduler: string;
  readonly schedulerFlags: readonly string[];
  readonly dialTimeoutsMs: readonly number[];
  readonly idleTimeoutMs: number;
  /** Seconds, for persistence (session affinity) timeouts. */
  readonly now: () => number;
  /** Keep this many pending connections in the kernel's accept queue. */
  readonly backlog: number;
}

/** Where the proxy finds an endpoint's backend, and its shared counters. */
export interface EndpointDirectory {
  /** The counters of an endpoint, created on first use; undefined when it has no backend. */
  endpointStats(sp: ProxierServicePort, endpoint: string): EndpointStats | undefined;
  /** The connection has ended: forget it. */
  release(conn: ProxyConnection): void;
  /** A new connection: remember it until release. */
  track(conn: ProxyConnection): void;
}

/** Port-hashing scheduler flags need the client's port, the others only its address. */
const PORT_FLAGS = new Set(['sh-port', 'mh-port']);
/** Schedulers that hash the client's address; the others never look at it. */
const SOURCE_HASHING = new Set(['sh', 'mh']);
/** The unit kube-proxy gives every IPVS real server. */
const DEST_WEIGHT = 1;

export class Listener implements ConnectionHost {
  entry: VirtualEntry;
  readonly vs: VirtualService;
  readonly stats: ListenerStats;
  readonly endpoints = new Map<string, ListenerEndpoint>();
  readonly dialTimeoutsMs: readonly number[];
  readonly idle: IdleSweep | undefined;
  /** Why the listener rejects or drops, when it does. */
  reason = '';
  readonly #server: Server;
  readonly #directory: EndpointDirectory;
  readonly #withPort: boolean;
  /** Only persistence and source hashing read the client: the rest skip a getpeername per connection. */
  readonly #needsClient: boolean;

  constructor(entry: VirtualEntry, sp: ProxierServicePort, settings: ListenerSettings, directory: EndpointDirectory) {
    this.entry = entry;
    this.#directory = directory;
    this.dialTimeoutsMs = settings.dialTimeoutsMs;
    this.idle = settings.idleTimeoutMs > 0 ? new IdleSweep(settings.idleTimeoutMs) : undefined;
    this.#withPort = settings.schedulerFlags.some((f) => PORT_FLAGS.has(f));
    const affinitySeconds = sp.info.sessionAffinityTimeoutSeconds;
    this.#needsClient = affinitySeconds > 0 || SOURCE_HASHING.has(settings.scheduler);
    this.vs = createScheduler(settings.scheduler, {
      address: joinHostPort(entry.virtual.address, entry.virtual.port),
      protocol: 'tcp',
      flags: settings.schedulerFlags,
      now: settings.now,
      // kube-proxy's IPVS mode: ClientIP affinity is persistence with the affinity timeout and
      // a full-address netmask, and net.ipv4.vs.expire_quiescent_template=1.
      ...(affinitySeconds > 0 ? { persistence: { timeoutSeconds: affinitySeconds } } : {}),
      sysctl: { expireQuiescentTemplate: true },
    });
    this.stats = {
      key: entry.key,
      kind: entry.kind,
      spn: entry.spn,
      protocol: entry.protocol,
      virtual: entry.virtual,
      loopback: entry.loopback,
      verdict: 'reject',
      accepted: 0,
      active: 0,
      forwarded: 0,
      rejected: 0,
      dropped: 0,
      failed: 0,
      retries: 0,
      idleTimeouts: 0,
      clientResets: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, this.#onConnection);
    this.update(sp);
  }

  /** Bind the loopback address: the planned port, else an ephemeral one (and say why). */
  async listen(backlog: number): Promise<BoundPort> {
    const { address, port } = this.entry.loopback;
    if (port !== 0) {
      try {
        return { port: await listenOn(this.#server, address, port, backlog) };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' && code !== 'EACCES') throw listenError(this.entry.key, address, port, e);
        const reason = code === 'EACCES' ? `no permission to bind port ${port}` : `port ${port} is in use`;
        return { port: await this.#listenEphemeral(address, backlog), fallback: reason };
      }
    }
    return { port: await this.#listenEphemeral(address, backlog) };
  }

  async #listenEphemeral(address: string, backlog: number): Promise<number> {
    try {
      return await listenOn(this.#server, address, 0, backlog);
    } catch (e) {
      throw listenError(this.entry.key, address, 0, e);
    }
  }

  /** The entry as binding settled it (the port it got, and why it differs). */
  settle(entry: VirtualEntry): void {
    this.entry = entry;
    this.stats.loopback = entry.loopback;
  }

  /**
   * Apply the service port's current endpoints: removed ones leave the scheduler at once (their
   * open connections finish; the kernel keeps such a dest in its trash until they do), new ones
   * join it. Returns the endpoints added and removed.
   */
  update(sp: ProxierServicePort | undefined): { added: string[]; removed: string[] } {
    const verdict: ListenerVerdict = sp === undefined
      ? { action: 'reject', reason: `${this.entry.spn} no longer exists` }
      : chooseEndpoints(sp, this.entry.kind);
    this.stats.verdict = verdict.action;
    this.reason = verdict.action === 'forward' ? '' : verdict.reason;
    const wanted = new Map<string, EndpointStats>();
    if (verdict.action === 'forward') {
      for (const ep of verdict.endpoints) {
        const stats = this.#directory.endpointStats(sp!, ep.endpoint);
        if (stats !== undefined) wanted.set(ep.endpoint, stats);
      }
    }
    const removed: string[] = [];
    for (const addr of [...this.endpoints.keys()]) {
      if (wanted.has(addr)) continue;
      this.vs.removeDest(addr);
      this.endpoints.delete(addr);
      removed.push(addr);
    }
    const added: string[] = [];
    for (const [addr, stats] of wanted) {
      if (this.endpoints.has(addr)) continue;
      this.vs.addDest({ addr, weight: DEST_WEIGHT });
      this.endpoints.set(addr, { addr, host: stats.backend.address, port: stats.backend.port, stats });
      added.push(addr);
    }
    if (added.length > 0) this.#restoreOrder();
    // With no endpoint left to forward to, the listener rejects like a service without any.
    if (this.stats.verdict === 'forward' && this.endpoints.size === 0) {
      this.stats.verdict = 'reject';
      this.reason = `${this.entry.spn} has no endpoint with a backend`;
    }
    return { added, removed };
  }

  /** Stop sending new connections to one endpoint; true when the listener had it. */
  removeEndpoint(addr: string): boolean {
    if (!this.endpoints.has(addr)) return false;
    this.vs.removeDest(addr);
    this.endpoints.delete(addr);
    if (this.endpoints.size === 0 && this.stats.verdict === 'forward') {
      this.stats.verdict = 'reject';
      this.reason = `${this.entry.spn} has no endpoints left`;
    }
    return true;
  }

  /** Stop accepting; resolves once every connection it accepted is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.idle?.stop();
        resolve();
      };
      if (!this.#server.listening) {
        done();
        return;
      }
      this.#server.close(done);
    });
  }

  clientKey(client: Socket): string | undefined {
    if (!this.#needsClient) return undefined;
    const ip = client.remoteAddress!;
    return this.#withPort ? joinHostPort(ip, client.remotePort ?? 0) : ip;
  }

  release(conn: ProxyConnection): void {
    this.stats.active--;
    this.#directory.release(conn);
  }

  #onConnection = (client: Socket): void => {
    const stats = this.stats;
    stats.accepted++;
    switch (stats.verdict) {
      case 'reject':
        stats.rejected++;
        client.resetAndDestroy();
        return;
      case 'drop':
        stats.dropped++;
        client.destroy();
        return;
      case 'forward': {
        // A client that reset before we got to it has no peer address left to schedule on.
        if (this.#needsClient && client.remoteAddress === undefined) {
          stats.clientResets++;
          client.destroy();
          return;
        }
        stats.active++;
        const conn = new ProxyConnection(this, client);
        this.#directory.track(conn);
        conn.start();
      }
    }
  };

  /** Keep the endpoint map in kube-proxy's order (sorted by endpoint text) after additions. */
  #restoreOrder(): void {
    const sorted = [...this.endpoints.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.endpoints.clear();
    for (const [addr, ep] of sorted) this.endpoints.set(addr, ep);
  }
}

function listenOn(server: Server, host: string, port: number, backlog: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port, backlog }, () => {
      server.removeListener('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

function listenError(key: string, address: string, port: number, cause: unknown): KpsimError {
  const reason = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new KpsimError('KPSIM_ERR_PROXY_LISTEN', `cannot listen on ${joinHostPort(address, port)}: ${reason}`, { object: key }, { cause });
}
