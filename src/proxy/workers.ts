/**
 * The userspace proxy on N worker threads (`--workers N`): the way to use more than one core.
 *
 *   - The main thread binds every TCP listening socket; each worker gets its own descriptors for
 *     them (proxy-worker.ts) and accepts from them, so the kernel spreads connections over the
 *     workers. Each worker relays its connections start to end.
 *   - Scheduling state is one: each worker holds a replica of every TCP virtual service, kept in
 *     step through a log in shared memory (op-log.ts, replicas.ts). rr stays one round robin over
 *     every worker's connections, lc and the other load-aware schedulers count every worker's
 *     connections, session affinity holds whichever worker a client's connection lands on.
 *   - UDP listeners stay on the main thread: a client's datagrams must meet one association table.
 *   - Endpoint changes (updateState, removeEndpoint) go to every worker as numbered control
 *     messages, and into the log, so each replica applies them at the same point.
 *   - Counters: each worker reports its own every 100 ms and when asked (refreshStats); stats()
 *     adds them up.
 */
import net from 'node:net';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { KpsimError } from '../errors.js';
import { splitHostPort } from '../util/ip.js';
import { AddressMap, type BoundPort, compareEndpoints, planAddressMap } from './address-map.js';
import { type ProxyInput, statesOf } from './input.js';
import { bindTcpServer } from './listener.js';
import { startModuleWorker } from './module-worker.js';
import { OpKind, OpLog, opLogBytes } from './op-log.js';
import {
  type CloseOptions, type ProxyOptions, type RunningProxy, type UpdateResult, type UserspaceProxy, assembleProxy, settingsOf,
} from './proxy.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerReport } from './proxy-worker.js';
import { serverHandleOf } from './raw-tcp.js';
import { type ControlChange, type ControlMessage, sharedClockSeconds } from './replicas.js';
import type { EndpointStats, ListenerStats, ProxyStats, WorkerStats } from './stats.js';

export const MAX_WORKERS = 64;
/** How long a worker may take to answer (start, report, close) before it counts as lost. */
const ANSWER_TIMEOUT_MS = 10_000;

interface WorkerLink {
  readonly worker: Worker;
  readonly control: MessagePort;
  stats: ProxyStats | undefined;
  report: WorkerReport | undefined;
  readonly waiting: Map<number, () => void>;
  closed: Promise<void> | undefined;
}

export class WorkerProxy implements RunningProxy {
  readonly #map: AddressMap;
  /** The UDP listeners, on this thread. */
  readonly #udp: UserspaceProxy;
  /** The TCP listeners' scheduling halves without sockets: verdicts, reasons, endpoint changes. */
  readonly #mirror: UserspaceProxy;
  readonly #workers: WorkerLink[];
  readonly #log: OpLog;
  readonly #order: Map<string, number>;
  #seq = 0;
  #requestId = 0;
  #closing: Promise<void> | undefined;

  /** Use startWorkerProxy. */
  constructor(map: AddressMap, udp: UserspaceProxy, mirror: UserspaceProxy, workers: WorkerLink[], log: OpLog) {
    this.#map = map;
    this.#udp = udp;
    this.#mirror = mirror;
    this.#workers = workers;
    this.#log = log;
    this.#order = new Map(map.entries.map((e, i) => [e.key, i]));
    for (const link of workers) link.worker.on('message', (message: FromWorker) => this.#onMessage(link, message));
  }

  get map(): AddressMap {
    return this.#map;
  }

  stats(): ProxyStats {
    const mirror = this.#mirror.stats();
    const udp = this.#udp.stats();
    const reports = this.#workers.map((w) => w.stats).filter((s): s is ProxyStats => s !== undefined);
    const listeners = mirror.listeners.map((l) => sumListener(l, reports.map((r) => r.listeners.find((x) => x.key === l.key))));
    listeners.push(...udp.listeners);
    listeners.sort((a, b) => (this.#order.get(a.key) ?? 0) - (this.#order.get(b.key) ?? 0));
    const endpoints = mergeEndpoints(mirror.endpoints, udp.endpoints, reports.map((r) => r.endpoints));
    const workers: WorkerStats[] = this.#workers.map((w, worker) => ({
      worker,
      accepted: w.stats?.listeners.reduce((sum, l) => sum + l.accepted, 0) ?? 0,
      active: w.stats?.active ?? 0,
      written: w.report?.written ?? 0,
      replayed: w.report?.replayed ?? 0,
      lockWaits: w.report?.lockWaits ?? 0,
    }));
    return {
      listeners,
      endpoints,
      active: udp.active + reports.reduce((sum, r) => sum + r.active, 0),
      bufferedBytes: udp.bufferedBytes + reports.reduce((sum, r) => sum + r.bufferedBytes, 0),
      workers,
    };
  }

  async refreshStats(): Promise<void> {
    const id = ++this.#requestId;
    await Promise.all(this.#workers.map((link) => new Promise<void>((resolve) => {
      if (link.closed !== undefined) {
        resolve();
        return;
      }
      const timer = setTimeout(() => { link.waiting.delete(id); resolve(); }, ANSWER_TIMEOUT_MS);
      link.waiting.set(id, () => { clearTimeout(timer); resolve(); });
      link.worker.postMessage({ type: 'stats', id } satisfies ToWorker);
    })));
  }

  bufferedBytes(): number {
    return this.stats().bufferedBytes;
  }

  reasonOf(key: string): string | undefined {
    return this.#mirror.reasonOf(key) ?? this.#udp.reasonOf(key);
  }

  updateState(input: ProxyInput): UpdateResult {
    const states = [...statesOf(input)];
    const tcp = this.#mirror.updateState(states);
    const udp = this.#udp.updateState(states);
    this.#control({ kind: 'update', states });
    return { added: [...tcp.added, ...udp.added], removed: [...tcp.removed, ...udp.removed] };
  }

  removeEndpoint(endpoint: string, spn?: string): number {
    const count = this.#mirror.removeEndpoint(endpoint, spn) + this.#udp.removeEndpoint(endpoint, spn);
    this.#control({ kind: 'remove', endpoint, ...(spn !== undefined ? { spn } : {}) });
    return count;
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= (async () => {
      const drainMs = options.drainMs ?? 0;
      await Promise.all([...this.#workers.map((link) => this.#closeWorker(link, drainMs)), this.#udp.close(options)]);
      await this.#mirror.close();
    })();
    return this.#closing;
  }

  /** Post the change to every worker, then log it: each applies it on reaching the entry. */
  #control(change: ControlChange): void {
    const seq = ++this.#seq;
    for (const link of this.#workers) link.control.postMessage({ seq, change } satisfies ControlMessage);
    const log = this.#log;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    log.lock();
    try {
      while (!log.hasRoom()) {
        log.unlock();
        Atomics.wait(pause, 0, 0, 1);
        log.lock();
      }
      log.append({ kind: OpKind.Control, listener: 0, state: 0, dest: seq, time: sharedClockSeconds(), client: undefined, avoid: [] });
    } finally {
      log.unlock();
    }
  }

  #closeWorker(link: WorkerLink, drainMs: number): Promise<void> {
    link.closed ??= new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        void link.worker.terminate().then(() => resolve());
      };
      const timer = setTimeout(done, drainMs + ANSWER_TIMEOUT_MS);
      link.worker.once('exit', done);
      link.worker.on('message', (message: FromWorker) => { if (message.type === 'closed') done(); });
      link.worker.postMessage({ type: 'close', drainMs } satisfies ToWorker);
    });
    return link.closed;
  }

  #onMessage(link: WorkerLink, message: FromWorker): void {
    if (message.type !== 'stats') return;
    link.stats = message.stats;
    link.report = message.worker;
    const waiter = link.waiting.get(message.id);
    if (waiter !== undefined) {
      link.waiting.delete(message.id);
      waiter();
    }
  }
}

/**
 * Start the proxy on `options.workers` threads (at least 2; use startProxy for one). UDP
 * listeners run on this thread.
 */
export async function startWorkerProxy(input: ProxyInput, options: ProxyOptions = {}): Promise<WorkerProxy> {
  const states = statesOf(input);
  const workers = options.workers ?? 2;
  if (!(Number.isInteger(workers) && workers >= 2 && workers <= MAX_WORKERS)) {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${workers} workers: give a whole number from 2 to ${MAX_WORKERS} (1 runs the proxy on the calling thread)`, { path: 'workers' });
  }
  const settings = settingsOf(options);
  const planned = options.map ?? planAddressMap(states, { ports: options.ports ?? 'service' });
  const only = (protocol: 'TCP' | 'UDP'): AddressMap =>
    new AddressMap(planned.entries.map((e) => (e.proxied && e.protocol !== protocol ? { ...e, proxied: false } : e)), planned.backends, planned.notes);

  const udp = await assembleProxy(states, { ...options, map: only('UDP') });
  const servers: net.Server[] = [];
  const links: WorkerLink[] = [];
  let mirror: UserspaceProxy | undefined;
  try {
    // Bind the TCP sockets here; until the workers take over, a connection that arrives is reset.
    const tcpPlan = only('TCP');
    const bound = new Map<string, BoundPort>();
    for (const entry of tcpPlan.entries.filter((e) => e.proxied)) {
      const server = net.createServer();
      servers.push(server);
      bound.set(entry.key, await bindTcpServer(server, entry, settings.backlog));
      serverHandleOf(server)!.onconnection = (_err, client) => client?.reset();
    }
    const tcpMap = tcpPlan.withBoundPorts(bound);
    // The mirror: the same listeners, never listening.
    mirror = (await assembleProxy(states, { ...options, map: tcpMap }, (listener) => Promise.resolve({ port: listener.entry.loopback.port }))).proxy;

    const buffer = new SharedArrayBuffer(opLogBytes(workers));
    const fds = servers.map((s) => (serverHandleOf(s) as unknown as { fd: number }).fd);
    for (let index = 0; index < workers; index++) {
      const channel = new MessageChannel();
      const init: WorkerInit = {
        index,
        workers,
        states,
        map: tcpMap.toJSON(),
        options: {
          ...(options.scheduler !== undefined ? { scheduler: options.scheduler } : {}),
          schedulerFlags: settings.schedulerFlags,
          idleTimeoutMs: settings.idleTimeoutMs,
          dialTimeoutsMs: settings.dialTimeoutsMs,
          backlog: settings.backlog,
        },
        fds,
        log: buffer,
        control: channel.port2,
      };
      const worker = startModuleWorker(import.meta.url, 'proxy-worker', init, [channel.port2]);
      links.push({ worker, control: channel.port1, stats: undefined, report: undefined, waiting: new Map(), closed: undefined });
      await workerReady(worker, index);
    }
    // The workers hold their own descriptors now; this thread's go.
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    const map = new AddressMap(
      planned.entries.map((e) => (e.proxied ? (e.protocol === 'UDP' ? udp.proxy.map : tcpMap).entry(e.key) ?? e : e)),
      planned.backends,
      planned.notes,
    );
    return new WorkerProxy(map, udp.proxy, mirror, links, new OpLog(buffer, workers, -1));
  } catch (e) {
    await Promise.all(links.map((l) => l.worker.terminate()));
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
    await udp.proxy.close();
    await mirror?.close();
    throw e;
  }
}

function workerReady(worker: Worker, index: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy worker ${index} did not start within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
    const onMessage = (message: FromWorker): void => {
      if (message.type !== 'ready' && message.type !== 'error') return;
      clearTimeout(timer);
      worker.removeListener('message', onMessage);
      if (message.type === 'ready') resolve();
      else reject(new KpsimError('KPSIM_ERR_PROXY_LISTEN', `proxy worker ${index}: ${message.message}`));
    };
    worker.on('message', onMessage);
    worker.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

const SUMMED_LISTENER_FIELDS = [
  'accepted', 'active', 'forwarded', 'rejected', 'dropped', 'failed', 'retries', 'idleTimeouts', 'clientResets', 'bytesIn', 'bytesOut',
  'datagramsIn', 'datagramsOut',
] as const;

/** The mirror's listener (its verdict) with every worker's counters added up. */
function sumListener(mirror: ListenerStats, reports: readonly (ListenerStats | undefined)[]): ListenerStats {
  const out: ListenerStats = { ...mirror };
  for (const field of SUMMED_LISTENER_FIELDS) out[field] = reports.reduce((sum, r) => sum + (r?.[field] ?? 0), 0);
  return out;
}

const SUMMED_ENDPOINT_FIELDS = ['connections', 'active', 'bytesIn', 'bytesOut'] as const;

/**
 * Endpoint counters summed over the UDP listeners (this thread) and every worker; an endpoint
 * drains when no listener, TCP or UDP, sends it new connections.
 */
function mergeEndpoints(mirror: readonly EndpointStats[], udp: readonly EndpointStats[], reports: readonly (readonly EndpointStats[])[]): EndpointStats[] {
  const merged = new Map<string, EndpointStats>();
  const drainingIn = (list: readonly EndpointStats[], endpoint: string): boolean => list.find((e) => e.endpoint === endpoint)?.draining ?? true;
  const add = (e: EndpointStats): void => {
    const seen = merged.get(e.endpoint);
    if (seen === undefined) {
      merged.set(e.endpoint, { ...e, errors: { ...e.errors } });
      return;
    }
    for (const field of SUMMED_ENDPOINT_FIELDS) seen[field] += e[field];
    for (const kind of ['refused', 'timeout', 'reset', 'other'] as const) seen.errors[kind] += e.errors[kind];
  };
  for (const e of udp) add(e);
  for (const list of reports) for (const e of list) add(e);
  for (const e of mirror) if (!merged.has(e.endpoint)) merged.set(e.endpoint, { ...e, errors: { ...e.errors } });
  for (const e of merged.values()) e.draining = drainingIn(mirror, e.endpoint) && drainingIn(udp, e.endpoint);
  return [...merged.values()].sort((a, b) => compareEndpoints(splitHostPort(a.endpoint)!, splitHostPort(b.endpoint)!));
}
