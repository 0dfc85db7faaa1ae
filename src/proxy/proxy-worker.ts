/**
 * One proxy worker thread (workers.ts starts N of them): the TCP listeners of the whole address
 * map, on its own copies of the listening sockets the main thread bound, with its replicas of
 * the virtual services kept in step through the scheduling log (op-log.ts, replicas.ts).
 *
 * Its copies of the sockets: the main thread's listening sockets are file descriptors of this
 * process, and a worker thread cannot take over a net.Server from another thread. A helper
 * process started with those descriptors (spawn stdio) sends them back over its IPC channel;
 * the kernel gives each passed descriptor a new number, owned by this thread alone, for the same
 * listening socket. Every worker polls the same sockets and the kernel hands each connection to
 * one of them.
 *
 * Only loaded as a worker's main module.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { AddressMap, type BackendEntry, type VirtualEntry } from './address-map.js';
import type { Listener } from './listener.js';
import { OpLog } from './op-log.js';
import { type ProxyOptions, assembleProxy } from './proxy.js';
import type { TcpHandle } from './raw-tcp.js';
import { EndpointIds, Replicas, sharedClockSeconds } from './replicas.js';
import type { ProxyStats } from './stats.js';
import type { ProxierState } from '../tracker/types.js';

/** What the main thread gives a worker. */
export interface WorkerInit {
  readonly index: number;
  readonly workers: number;
  readonly states: readonly ProxierState[];
  /** The bound map with only TCP entries proxied, in the order the fds follow. */
  readonly map: { entries: readonly VirtualEntry[]; backends: readonly BackendEntry[]; notes: readonly string[] };
  readonly options: Pick<ProxyOptions, 'scheduler' | 'schedulerFlags' | 'idleTimeoutMs' | 'dialTimeoutsMs' | 'backlog'>;
  /** The listening sockets' descriptors, one per proxied TCP entry. */
  readonly fds: readonly number[];
  readonly log: SharedArrayBuffer;
  readonly control: MessagePort;
}

export type ToWorker = { type: 'stats'; id: number } | { type: 'close'; drainMs: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'error'; message: string }
  | { type: 'stats'; id: number; stats: ProxyStats; worker: WorkerReport }
  | { type: 'closed' };

/** A worker's own figures beside its proxy stats. */
export interface WorkerReport {
  readonly written: number;
  readonly replayed: number;
  readonly lockWaits: number;
}

/** How often an idle worker applies what the others logged, and reports its counters. */
const CATCH_UP_MS = 20;
const REPORT_MS = 100;

/**
 * The helper: wraps each inherited descriptor (4, 5, ...) in a listening handle without
 * accepting on it, and sends it back; it exits when the worker disconnects.
 */
const DUP_HELPER = `
const { TCP, constants } = process.binding('tcp_wrap');
const n = Number(process.argv[1]);
for (let i = 0; i < n; i++) {
  const handle = new TCP(constants.SERVER);
  if (handle.open(4 + i) !== 0) { process.exitCode = 3; break; }
  process.send(i, handle);
}
process.on('disconnect', () => process.exit());
`;

/** This thread's own descriptors for the listening sockets `fds`, as raw handles, in order. */
function ownListeningHandles(fds: readonly number[]): Promise<TcpHandle[]> {
  if (fds.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', DUP_HELPER, String(fds.length)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc', ...fds] });
    const handles: TcpHandle[] = [];
    let got = 0;
    child.on('message', (index: number, handle: unknown) => {
      handles[index] = handle as TcpHandle;
      if (++got === fds.length) {
        child.disconnect();
        child.unref();
        resolve(handles);
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (got < fds.length) reject(new Error(`the listening-socket helper exited (${code}) after ${got} of ${fds.length} sockets`));
    });
  });
}

async function main(init: WorkerInit, port: NonNullable<typeof parentPort>): Promise<void> {
  const post = (message: FromWorker): void => port.postMessage(message);
  const handles = await ownListeningHandles(init.fds);
  const clock = { now: sharedClockSeconds() };
  const map = new AddressMap(init.map.entries, init.map.backends, init.map.notes);
  const { proxy, listeners } = await assembleProxy(init.states, { ...init.options, map, now: () => clock.now }, (listener, index) => {
    const server = net.createServer();
    server.listen(handles[index], init.options.backlog ?? 4096);
    // listen() has installed net.Server's own accept; take it over before the loop can poll.
    (listener as Listener).adopt(server);
    return Promise.resolve({ port: listener.entry.loopback.port });
  });
  const log = new OpLog(init.log, init.workers, init.index);
  const replicas = new Replicas(log, listeners.map((l) => l.virtual), new EndpointIds(init.states), clock, init.control, {
    applyChange: (change) => {
      if (change.kind === 'update') proxy.updateState(change.states);
      else proxy.removeEndpoint(change.endpoint, change.spn);
    },
  });
  listeners.forEach((listener, i) => { listener.virtual.scheduler = replicas.schedulerFor(i); });

  const report = (id: number): void => {
    const { written, replayed, lockWaits } = log.counters;
    post({ type: 'stats', id, stats: proxy.stats(), worker: { written, replayed, lockWaits } });
  };
  const catchUp = setInterval(() => replicas.catchUp(), CATCH_UP_MS).unref();
  const reporter = setInterval(() => report(0), REPORT_MS).unref();
  port.on('message', (message: ToWorker) => {
    if (message.type === 'stats') {
      replicas.catchUp();
      report(message.id);
      return;
    }
    clearInterval(catchUp);
    clearInterval(reporter);
    void proxy.close({ drainMs: message.drainMs }).then(() => {
      post({ type: 'closed' });
      port.close();
      init.control.close();
    });
  });
  post({ type: 'ready' });
}

if (parentPort === null) throw new Error('proxy-worker.js runs only as a worker thread');
const port = parentPort;
main(workerData as WorkerInit, port).catch((e: unknown) => {
  port.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies FromWorker);
});
