/**
 * The scheduling half of one proxy listener, shared by the TCP and the UDP listener: like an
 * IPVS virtual server it has its own scheduler state, persistence templates and connection
 * counts, and the endpoints kube-proxy would use for its address (see endpoint-choice.ts).
 * Sockets live in listener.ts (TCP) and udp-listener.ts (UDP).
 */
import { type ConnState, type VirtualService, createScheduler } from '../ipvs/virtual-service.js';
import type { ProxierServicePort } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import type { VirtualEntry } from './address-map.js';
import { type ListenerVerdict, chooseEndpoints } from './endpoint-choice.js';
import { connectAvoiding } from './pick.js';
import type { EndpointStats, ListenerStats } from './stats.js';

/** An endpoint as one listener reaches it. */
export interface ListenerEndpoint {
  /** The dest address in the virtual service: the endpoint's cluster address. */
  readonly addr: string;
  /** Its backend on loopback, for this listener's protocol. */
  readonly host: string;
  readonly port: number;
  readonly stats: EndpointStats;
}

/**
 * What a connection asks of its virtual service. On one thread these are the VirtualService's
 * own methods; with several workers, each goes through the log that keeps the workers'
 * replicas of the virtual service in step (op-log.ts).
 */
export interface ConnectionScheduler {
  /** Schedule a new connection and count it in `state`; undefined when no dest is available. */
  connect(client: string | undefined, state: ConnState): string | undefined;
  /** `connect` with the dests in `avoid` out of the running (a retried dial: pick.ts). */
  connectAvoiding(client: string | undefined, avoid: readonly string[]): string | undefined;
  /** Count a connection on a dest the caller chose. */
  bind(addr: string, state: ConnState): void;
  /** An active connection became inactive (its first FIN). */
  close(addr: string): void;
  /** A connection is gone. */
  expire(addr: string, state: ConnState): void;
}

/** The virtual service's own methods, for a proxy on one thread. */
export function localScheduler(vs: VirtualService): ConnectionScheduler {
  return {
    connect: (client, state) => vs.connect(client, state),
    connectAvoiding: (client, avoid) => connectAvoiding(vs, client, avoid),
    bind: (addr, state) => vs.bind(addr, state),
    close: (addr) => vs.close(addr),
    expire: (addr, state) => vs.expire(addr, state),
  };
}

export interface SchedulingSettings {
  readonly scheduler: string;
  readonly schedulerFlags: readonly string[];
  /** Seconds, for persistence (session affinity) timeouts. */
  readonly now: () => number;
}

/** Where the proxy finds an endpoint's backend and its shared counters. */
export interface EndpointDirectory {
  /** The counters of an endpoint, created on first use; undefined when it has no backend for this protocol. */
  endpointStats(sp: ProxierServicePort, endpoint: string): EndpointStats | undefined;
}

/** Port-hashing scheduler flags need the client's port, the others only its address. */
const PORT_FLAGS = new Set(['sh-port', 'mh-port']);
/** Schedulers that hash the client's address; the others never look at it. */
const SOURCE_HASHING = new Set(['sh', 'mh']);
/** The unit kube-proxy gives every IPVS real server. */
const DEST_WEIGHT = 1;

export class VirtualServer {
  entry: VirtualEntry;
  readonly vs: VirtualService;
  /** How connections reach `vs`: directly, or through the workers' log (workers.ts). */
  scheduler: ConnectionScheduler;
  readonly stats: ListenerStats;
  /** The endpoints new connections may go to, by addr, in kube-proxy's order (sorted by text). */
  readonly endpoints = new Map<string, ListenerEndpoint>();
  /** Why the listener rejects or drops, when it does. */
  reason = '';
  readonly #directory: EndpointDirectory;
  readonly #withPort: boolean;
  /** Only persistence and source hashing read the client: the rest skip a getpeername per connection. */
  readonly needsClient: boolean;

  constructor(entry: VirtualEntry, sp: ProxierServicePort, settings: SchedulingSettings, directory: EndpointDirectory) {
    this.entry = entry;
    this.#directory = directory;
    this.#withPort = settings.schedulerFlags.some((f) => PORT_FLAGS.has(f));
    const affinitySeconds = sp.info.sessionAffinityTimeoutSeconds;
    this.needsClient = affinitySeconds > 0 || SOURCE_HASHING.has(settings.scheduler);
    this.vs = createScheduler(settings.scheduler, {
      address: joinHostPort(entry.virtual.address, entry.virtual.port),
      protocol: entry.protocol === 'UDP' ? 'udp' : 'tcp',
      flags: settings.schedulerFlags,
      now: settings.now,
      // kube-proxy's IPVS mode: ClientIP affinity is persistence with the affinity timeout and
      // a full-address netmask, and net.ipv4.vs.expire_quiescent_template=1.
      ...(affinitySeconds > 0 ? { persistence: { timeoutSeconds: affinitySeconds } } : {}),
      sysctl: { expireQuiescentTemplate: true },
    });
    this.scheduler = localScheduler(this.vs);
    this.stats = newListenerStats(entry);
    this.update(sp);
  }

  /** The entry as binding settled it (the port it got, and why it differs). */
  settle(entry: VirtualEntry): void {
    this.entry = entry;
    this.stats.loopback = entry.loopback;
  }

  /**
   * What the scheduler sees of a client: its IP, "ip:port" for the port-hashing flags, or
   * undefined when the scheduler does not look at clients.
   */
  clientKey(ip: string, port: number): string | undefined {
    if (!this.needsClient) return undefined;
    return this.#withPort ? joinHostPort(ip, port) : ip;
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
    const udp = this.entry.protocol === 'UDP';
    for (const [addr, stats] of wanted) {
      if (this.endpoints.has(addr)) continue;
      this.vs.addDest({ addr, weight: DEST_WEIGHT });
      const backend = udp ? stats.udpBackend ?? stats.backend : stats.backend;
      this.endpoints.set(addr, { addr, host: backend.address, port: backend.port, stats });
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

  /** Keep the endpoint map in kube-proxy's order (sorted by endpoint text) after additions. */
  #restoreOrder(): void {
    const sorted = [...this.endpoints.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.endpoints.clear();
    for (const [addr, ep] of sorted) this.endpoints.set(addr, ep);
  }
}

/** What the TCP and the UDP listener share: their virtual server, seen through. */
export abstract class VirtualServerListener {
  readonly virtual: VirtualServer;
  readonly stats: ListenerStats;
  readonly endpoints: ReadonlyMap<string, ListenerEndpoint>;

  constructor(virtual: VirtualServer) {
    this.virtual = virtual;
    this.stats = virtual.stats;
    this.endpoints = virtual.endpoints;
  }

  /** The virtual service, as connections use it. */
  get vs(): ConnectionScheduler {
    return this.virtual.scheduler;
  }

  get entry(): VirtualEntry {
    return this.virtual.entry;
  }

  /** Why the listener rejects or drops new connections now ('' when it forwards). */
  get reason(): string {
    return this.virtual.reason;
  }

  settle(entry: VirtualEntry): void {
    this.virtual.settle(entry);
  }

  update(sp: ProxierServicePort | undefined): { added: string[]; removed: string[] } {
    return this.virtual.update(sp);
  }

  removeEndpoint(addr: string): boolean {
    return this.virtual.removeEndpoint(addr);
  }
}

function newListenerStats(entry: VirtualEntry): ListenerStats {
  return {
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
    datagramsIn: 0,
    datagramsOut: 0,
  };
}
