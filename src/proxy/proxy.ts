/**
 * The userspace proxy: one listener per TCP and UDP virtual address of the node (see
 * address-map.ts), each scheduling new connections (UDP: new client associations) with an IPVS
 * scheduler over the endpoints kube-proxy would use for that address, and relaying them to the
 * endpoints' backends on loopback.
 *
 * Endpoint changes apply at run time (`updateState`, `removeEndpoint`): a removed endpoint leaves
 * the schedulers at once, so new connections go elsewhere while its open ones finish.
 */
import { KpsimError } from '../errors.js';
import type { Protocol } from '../model/types.js';
import { getScheduler } from '../ipvs/schedulers/registry.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { splitHostPort } from '../util/ip.js';
import { AddressMap, type BoundPort, compareEndpoints, type HostPort, type PlanOptions, type VirtualEntry, planAddressMap } from './address-map.js';
import { type ProxyInput, statesOf } from './input.js';
import { type ConnectionDirectory, Listener, type ListenerSettings, type OpenConnection } from './listener.js';
import { type EndpointStats, type ListenerStats, type ProxyStats, copyEndpointStats, newEndpointStats } from './stats.js';
import { UdpListener } from './udp-listener.js';

export interface ProxyOptions {
  /** IPVS scheduler name, as ipvsadm prints it. Default rr (kube-proxy's default). */
  scheduler?: string;
  /** ipvsadm -b flags: sh-port, sh-fallback, mh-port, mh-fallback. */
  schedulerFlags?: readonly string[];
  /**
   * Close a connection with no traffic either way for this long; 0 = never. Default 900 s, IPVS's
   * established-TCP timeout. Checked eight times per timeout (see idle-sweep.ts), so a connection
   * closes up to an eighth of it later.
   */
  idleTimeoutMs?: number;
  /**
   * Close a UDP association after this long without a datagram either way: kube-proxy's
   * udpIdleTimeout, 250 ms by default. Checked as the TCP idle timeout is.
   */
  udpIdleTimeoutMs?: number;
  /** One dial attempt per entry, each with its timeout. Default 250, 500, 1000, 2000 ms, as kube-proxy's userspace mode. */
  dialTimeoutsMs?: readonly number[];
  /** Keep service ports on loopback ('service', default) or take ephemeral ones. Ignored when `map` is given. */
  ports?: PlanOptions['ports'];
  /** A planned map to use (startCluster passes one with the backends' bound ports). */
  map?: AddressMap;
  /** Where an endpoint's backend takes this protocol's traffic; default the map's backend entry. */
  backendAddress?: (endpoint: string, protocol: Protocol) => HostPort | undefined;
  /** Clock in seconds for session-affinity timeouts; default monotonic time. */
  now?: () => number;
  /** Accept-queue length per listener. Default 4096 (the usual net.core.somaxconn). */
  backlog?: number;
  /**
   * Proxy threads sharing the TCP listening sockets (startCluster, startWorkerProxy; startProxy
   * runs one). Default 1. With more, every TCP virtual service is kept in step across them (see
   * op-log.ts), UDP stays on the calling thread, and `now` is the process's monotonic clock.
   */
  workers?: number;
}

export interface CloseOptions {
  /** Wait up to this long for open connections to finish before cutting them. Default 0. */
  drainMs?: number;
}

export interface UpdateResult {
  /** "listener key: endpoint" for each endpoint that joined a listener. */
  readonly added: string[];
  /** "listener key: endpoint" for each endpoint that left a listener (now draining there). */
  readonly removed: string[];
}

export const DEFAULT_DIAL_TIMEOUTS_MS: readonly number[] = [250, 500, 1000, 2000];
export const DEFAULT_IDLE_TIMEOUT_MS = 900_000;
/** kube-proxy's udpIdleTimeout default (KubeProxyConfiguration v1alpha1, userspace mode). */
export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 250;
const DEFAULT_BACKLOG = 4096;

export { type ProxyInput, statesOf };

export type ProxyListener = Listener | UdpListener;

/** A running proxy, on one thread (UserspaceProxy) or several (workers.ts). */
export interface RunningProxy {
  /** The address map, with the ports the listeners actually bound. */
  readonly map: AddressMap;
  /** Counters per listener and per endpoint (copies); with workers, as of their last report. */
  stats(): ProxyStats;
  /** Resolves once stats() counts everything done so far (workers report at once). */
  refreshStats(): Promise<void>;
  /** Bytes held now in the socket buffers of every open connection, both directions. */
  bufferedBytes(): number;
  /** Why a listener rejects or drops new connections now ('' when it forwards). */
  reasonOf(key: string): string | undefined;
  /** Apply new proxier states (see UserspaceProxy.updateState). */
  updateState(input: ProxyInput): UpdateResult;
  /** Take one endpoint out of rotation (see UserspaceProxy.removeEndpoint). */
  removeEndpoint(endpoint: string, spn?: string): number;
  /** Stop accepting, let open connections finish for up to `drainMs`, then cut the rest. */
  close(options?: CloseOptions): Promise<void>;
}

export class UserspaceProxy implements RunningProxy {
  #map: AddressMap;
  readonly #listeners: ProxyListener[];
  readonly #endpointStats: Map<string, EndpointStats>;
  readonly #connections: OpenConnections;
  readonly #settings: ListenerSettings;
  readonly #directory: ConnectionDirectory;
  #closing: Promise<void> | undefined;

  /** Use startProxy. */
  constructor(map: AddressMap, listeners: ProxyListener[], endpointStats: Map<string, EndpointStats>, connections: OpenConnections, settings: ListenerSettings, directory: ConnectionDirectory) {
    this.#map = map;
    this.#listeners = listeners;
    this.#endpointStats = endpointStats;
    this.#connections = connections;
    this.#settings = settings;
    this.#directory = directory;
  }

  /** The address map, with the ports the listeners actually bound. */
  get map(): AddressMap {
    return this.#map;
  }

  /** Counters per listener and per endpoint (copies). */
  stats(): ProxyStats {
    const listeners: ListenerStats[] = this.#listeners.map((l) => ({ ...l.stats }));
    const endpoints = [...this.#endpointStats.values()].sort(byEndpoint).map(copyEndpointStats);
    return { listeners, endpoints, active: this.#connections.all.size, bufferedBytes: this.bufferedBytes() };
  }

  /** Counters are counted on this thread: stats() is always current. */
  refreshStats(): Promise<void> {
    return Promise.resolve();
  }

  /** Bytes held now in the socket buffers of every open connection, both directions. */
  bufferedBytes(): number {
    let total = 0;
    for (const conn of this.#connections.all) total += conn.bufferedBytes();
    return total;
  }

  /** Why a listener rejects or drops new connections now ('' when it forwards). */
  reasonOf(key: string): string | undefined {
    return this.#listeners.find((l) => l.entry.key === key)?.reason;
  }

  /**
   * Apply new proxier states: each listener takes its service port's current endpoints. Service
   * ports or addresses that are gone make their listeners reject; new ones get no listener (the
   * address map is fixed when the proxy starts).
   */
  updateState(input: ProxyInput): UpdateResult {
    return this.#update(statesOf(input), () => true);
  }

  /** Each listener `serves` picks takes its service port's endpoints from `states`. */
  #update(states: readonly ProxierState[], serves: (listener: ProxyListener) => boolean): UpdateResult {
    const index = indexServicePorts(states);
    const added: string[] = [];
    const removed: string[] = [];
    for (const listener of this.#listeners) {
      if (!serves(listener)) continue;
      const sp = index.get(servicePortKey(listener.entry));
      const change = listener.update(sp !== undefined && servesAddress(sp, listener.entry) ? sp : undefined);
      for (const ep of change.added) added.push(`${listener.entry.key}: ${ep}`);
      for (const ep of change.removed) removed.push(`${listener.entry.key}: ${ep}`);
    }
    this.#markDraining();
    return { added, removed };
  }

  /**
   * Take one endpoint out of rotation (of one service port's listeners, or of all): new
   * connections go elsewhere, open ones finish. Returns how many listeners had it.
   */
  removeEndpoint(endpoint: string, spn?: string): number {
    let count = 0;
    for (const listener of this.#listeners) {
      if (spn !== undefined && listener.entry.spn !== spn) continue;
      if (listener.removeEndpoint(endpoint)) count++;
    }
    this.#markDraining();
    return count;
  }

  // ------------------------------------------------------------ live reconfiguration (an agent)
  //
  // The address map above is fixed when the proxy starts; an agent that follows a cluster
  // changes it as it goes: a listener per new virtual address, and listeners that stop when
  // their address goes away. A removed listener stops accepting at once; connections it
  // accepted run on until they end, and an endpoint that leaves drains the same way (its
  // connections finish, new ones go elsewhere): no established connection is dropped.

  /** The keys of the listeners, in the order they were added. */
  listenerKeys(): string[] {
    return this.#listeners.map((l) => l.entry.key);
  }

  /**
   * Listen on one more virtual address (its loopback port, else an ephemeral one, as at start);
   * `sp` gives its endpoints. Returns the entry with the port it bound.
   */
  async addListener(entry: VirtualEntry, sp: ProxierServicePort): Promise<VirtualEntry> {
    if (this.#closing !== undefined) throw new Error('the proxy is closing');
    if (this.#listeners.some((l) => l.entry.key === entry.key)) throw new Error(`a listener for ${entry.key} already exists`);
    const listener = entry.protocol === 'UDP' ? new UdpListener(entry, sp, this.#settings, this.#directory) : new Listener(entry, sp, this.#settings, this.#directory);
    const bound = listener instanceof UdpListener ? await listener.listen() : await listener.listen(this.#settings.backlog);
    const settled: VirtualEntry = { ...entry, loopback: { address: entry.loopback.address, port: bound.port }, ...(bound.fallback !== undefined ? { fallback: bound.fallback } : {}) };
    listener.settle(settled);
    this.#listeners.push(listener);
    this.#map = new AddressMap([...this.#map.entries.filter((e) => e.key !== entry.key), settled], this.#map.backends, this.#map.notes);
    this.#markDraining();
    return settled;
  }

  /**
   * Stop listening on a virtual address. The connections it accepted go on until they end
   * (close() cuts them); resolves once the listening socket is closed.
   */
  async removeListener(key: string): Promise<boolean> {
    const at = this.#listeners.findIndex((l) => l.entry.key === key);
    if (at < 0) return false;
    const [listener] = this.#listeners.splice(at, 1);
    this.#map = new AddressMap(this.#map.entries.filter((e) => e.key !== key), this.#map.backends, this.#map.notes);
    // close() stops accepting now and settles once its last connection has ended.
    void listener!.close();
    this.#markDraining();
    return true;
  }

  /**
   * updateState for one IP family's listeners only (each family's proxier syncs on its own):
   * listeners of other families are left alone.
   */
  updateFamily(state: ProxierState): UpdateResult {
    return this.#update([state], (listener) => listener.entry.family === state.family);
  }

  /** Stop accepting, let open connections finish for up to `drainMs`, then cut the rest. */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options.drainMs ?? 0);
    return this.#closing;
  }

  async #close(drainMs: number): Promise<void> {
    const closed = this.#listeners.map((l) => l.close());
    if (drainMs > 0) await this.#connections.waitForNone(drainMs);
    for (const conn of [...this.#connections.all]) conn.destroy();
    await Promise.all(closed);
  }

  #markDraining(): void {
    const inUse = new Set<string>();
    for (const listener of this.#listeners) for (const addr of listener.endpoints.keys()) inUse.add(addr);
    for (const stats of this.#endpointStats.values()) stats.draining = !inUse.has(stats.endpoint);
  }
}

/** Bind a listener for every TCP and UDP virtual address of the states, and start proxying (on this thread). */
export async function startProxy(input: ProxyInput, options: ProxyOptions = {}): Promise<UserspaceProxy> {
  return (await assembleProxy(input, options)).proxy;
}

/** How a listener gets its socket: its own bind (the default), or a socket made elsewhere (workers). */
export type ListenerBinder = (listener: ProxyListener, index: number) => Promise<BoundPort>;

/**
 * The proxy and its listeners (one per proxied entry of the map, in map order), each given its
 * socket by `bind`.
 */
export async function assembleProxy(input: ProxyInput, options: ProxyOptions = {}, bind?: ListenerBinder): Promise<{ proxy: UserspaceProxy; listeners: readonly ProxyListener[] }> {
  const states = statesOf(input);
  const settings = settingsOf(options);
  const map = options.map ?? planAddressMap(states, { ports: options.ports ?? 'service' });
  const index = indexServicePorts(states);
  const endpointStats = new Map<string, EndpointStats>();
  const connections = new OpenConnections();

  const resolveBackend = (endpoint: string, protocol: Protocol): HostPort | undefined => {
    const address = options.backendAddress !== undefined ? options.backendAddress(endpoint, protocol) : map.backendAddress(endpoint, protocol);
    return address !== undefined && address.port !== 0 ? address : undefined;
  };
  const directory: ConnectionDirectory = {
    endpointStats(sp, endpoint) {
      if (resolveBackend(endpoint, sp.info.protocol) === undefined) return undefined;
      let stats = endpointStats.get(endpoint);
      if (stats === undefined) {
        // One counter set per endpoint, whichever of its protocols the listeners use.
        const udp = resolveBackend(endpoint, 'UDP');
        const podName = sp.endpoints.find((ep) => ep.endpoint === endpoint)?.podName;
        stats = newEndpointStats(endpoint, resolveBackend(endpoint, 'TCP') ?? udp!, podName, udp);
        endpointStats.set(endpoint, stats);
      }
      return stats;
    },
    track: (conn) => connections.add(conn),
    release: (conn) => connections.delete(conn),
  };

  const listeners: ProxyListener[] = [];
  for (const entry of map.entries) {
    if (!entry.proxied) continue;
    const sp = index.get(servicePortKey(entry));
    if (sp === undefined) throw new Error(`address map entry ${entry.key} has no service port in the states`);
    listeners.push(entry.protocol === 'UDP' ? new UdpListener(entry, sp, settings, directory) : new Listener(entry, sp, settings, directory));
  }

  const ownBind: ListenerBinder = (listener) => (listener instanceof UdpListener ? listener.listen() : listener.listen(settings.backlog));
  const bound = new Map<string, BoundPort>();
  try {
    for (const [i, listener] of listeners.entries()) bound.set(listener.entry.key, await (bind ?? ownBind)(listener, i));
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    throw e;
  }
  const boundMap = map.withBoundPorts(bound);
  for (const listener of listeners) listener.settle(boundMap.entry(listener.entry.key)!);
  return { proxy: new UserspaceProxy(boundMap, listeners, endpointStats, connections, settings, directory), listeners };
}

/** The open connections (and UDP associations) of a proxy, and a way to wait until there are none. */
class OpenConnections {
  readonly all = new Set<OpenConnection>();
  #onNone: (() => void) | undefined;

  add(conn: OpenConnection): void {
    this.all.add(conn);
  }

  delete(conn: OpenConnection): void {
    this.all.delete(conn);
    if (this.all.size === 0) this.#onNone?.();
  }

  /** Resolves once no connection is open, or after `ms`, whichever comes first. */
  waitForNone(ms: number): Promise<void> {
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#onNone = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#onNone = done;
    });
  }
}

function byEndpoint(a: EndpointStats, b: EndpointStats): number {
  return compareEndpoints(splitHostPort(a.endpoint)!, splitHostPort(b.endpoint)!);
}

export function settingsOf(options: ProxyOptions): ListenerSettings {
  const scheduler = options.scheduler ?? 'rr';
  getScheduler(scheduler, { path: 'scheduler' });
  const dialTimeoutsMs = options.dialTimeoutsMs ?? DEFAULT_DIAL_TIMEOUTS_MS;
  if (dialTimeoutsMs.length === 0 || dialTimeoutsMs.some((ms) => !(Number.isFinite(ms) && ms > 0))) {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `dial timeouts ${JSON.stringify(dialTimeoutsMs)}: give one or more times in ms, each > 0`, { path: 'dialTimeoutsMs' });
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  // setTimeout caps at 2^31-1 ms; a longer idle timeout would fire at once.
  if (!(Number.isFinite(idleTimeoutMs) && idleTimeoutMs >= 0 && idleTimeoutMs <= 2 ** 31 - 1)) {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `idle timeout ${idleTimeoutMs} ms is not from 0 to ${2 ** 31 - 1}`, { path: 'idleTimeoutMs' });
  }
  const udpIdleTimeoutMs = options.udpIdleTimeoutMs ?? DEFAULT_UDP_IDLE_TIMEOUT_MS;
  // kube-proxy: "Must be greater than 0"; an association never timing out would never end.
  if (!(Number.isFinite(udpIdleTimeoutMs) && udpIdleTimeoutMs > 0 && udpIdleTimeoutMs <= 2 ** 31 - 1)) {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `UDP idle timeout ${udpIdleTimeoutMs} ms is not > 0 and <= ${2 ** 31 - 1}`, { path: 'udpIdleTimeoutMs' });
  }
  return {
    scheduler,
    schedulerFlags: options.schedulerFlags ?? [],
    dialTimeoutsMs,
    idleTimeoutMs,
    udpIdleTimeoutMs,
    now: options.now ?? (() => performance.now() / 1000),
    backlog: options.backlog ?? DEFAULT_BACKLOG,
  };
}

function servicePortKey(entry: { family: number; spn: string; protocol: string }): string {
  return `${entry.family}\0${entry.spn}\0${entry.protocol}`;
}

function indexServicePorts(states: readonly ProxierState[]): Map<string, ProxierServicePort> {
  const index = new Map<string, ProxierServicePort>();
  for (const state of states) {
    for (const sp of state.servicePorts) index.set(servicePortKey({ family: state.family, spn: sp.info.spn, protocol: sp.info.protocol }), sp);
  }
  return index;
}

/** Whether the service port (as updated) still has the entry's virtual address. */
function servesAddress(sp: ProxierServicePort, entry: VirtualEntry): boolean {
  const { info } = sp;
  const { address, port } = entry.virtual;
  switch (entry.kind) {
    case 'ClusterIP':
      return info.clusterIP === address && info.port === port;
    case 'NodePort':
      return info.nodePort === port;
    case 'ExternalIP':
      return info.port === port && info.externalIPs.includes(address);
    case 'LoadBalancer':
      return info.port === port && info.loadBalancerVIPs.includes(address);
  }
}
