/**
 * What the proxy tests share: services built with the cluster builders, real TCP and HTTP
 * clients on loopback, raw backend servers for the cases fastify cannot play (half-close, a
 * backend that never answers a SYN), and the open-handle check every test ends with.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { HostPort } from '../../src/proxy/address-map.js';
import type { ProxierState } from '../../src/tracker/types.js';
import {
  type EndpointManifest, type Manifest, type ServiceManifest, TEST_NODE_NAME, ep, fixtureState, makeService, makeSlice, tcpPort,
} from '../helpers/cluster-builders.js';

export { TEST_NODE_NAME };

export interface WebServiceOptions {
  name?: string;
  clusterIP?: string;
  /** Endpoint IPs (all ready, on the test node unless `remote` lists them). */
  endpoints?: readonly string[];
  remote?: readonly string[];
  targetPort?: number;
  mutate?: (svc: ServiceManifest) => void;
  /** Per-endpoint changes (conditions, node). */
  endpoint?: (e: EndpointManifest, ip: string) => void;
}

/** A one-port TCP service "ns1/<name>:p80" with the given endpoints, as manifests. */
export function webService(options: WebServiceOptions = {}): Manifest[] {
  const name = options.name ?? 'web';
  const targetPort = options.targetPort ?? 8080;
  const svc = makeService('ns1', name, (s) => {
    s.spec.clusterIP = options.clusterIP ?? '172.30.0.41';
    s.spec.ports = [tcpPort('p80', 80, { targetPort })];
    options.mutate?.(s);
  });
  const ips = options.endpoints ?? ['10.180.0.1', '10.180.0.2'];
  const slice = makeSlice('ns1', name, 1, (eps) => {
    eps.endpoints = ips.map((ip, i) => {
      const e = ep(ip, options.remote?.includes(ip) ? 'other-node' : TEST_NODE_NAME);
      e.targetRef = { kind: 'Pod', namespace: 'ns1', name: `${name}-${i}` };
      options.endpoint?.(e, ip);
      return e;
    });
    eps.ports = [{ name: 'p80', port: targetPort, protocol: 'TCP' }];
  });
  return [svc, slice];
}

export function stateOf(manifests: readonly Manifest[]): ProxierState {
  return fixtureState(manifests);
}

// ---- open handles ----

export type HandleCounts = Record<string, number>;

/**
 * File-system requests come and go with module loading and source maps, not with the code under
 * test; every socket, server, timer, worker and write request counts.
 */
const IGNORED_RESOURCES = new Set(['CloseReq', 'FSReqCallback', 'FSReqPromise', 'StatWatcher']);

export function handleCounts(): HandleCounts {
  const counts: HandleCounts = {};
  for (const type of process.getActiveResourcesInfo()) {
    if (!IGNORED_RESOURCES.has(type)) counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

/**
 * The real timers, taken before any test can mock them (t.mock.timers replaces the globals):
 * the waits below must go on in real time while a test drives the code's own timers by hand.
 */
const realSetTimeout = globalThis.setTimeout;
const realNow = Date.now;

/**
 * How long a wait for something that should happen may take before the test gives up: a bound
 * against hanging, never a speed requirement, so generous enough for a loaded machine.
 */
export const WAIT_LIMIT_MS = 30_000;

/**
 * Wait (a bounded while: closing handles take a few loop turns) until the open handles are what
 * they were at `baseline`, then assert they are.
 */
export async function assertHandlesBack(baseline: HandleCounts, waitMs = WAIT_LIMIT_MS): Promise<void> {
  const deadline = realNow() + waitMs;
  let now = handleCounts();
  while (!sameCounts(now, baseline) && realNow() < deadline) {
    await sleep(20);
    now = handleCounts();
  }
  assert.deepEqual(now, baseline, 'open handles are back to what they were before the test');
}

function sameCounts(a: HandleCounts, b: HandleCounts): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if ((a[k] ?? 0) !== (b[k] ?? 0)) return false;
  return true;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Poll `check` until it holds (bounded); the caller asserts afterwards. */
export async function eventually(check: () => boolean, waitMs = WAIT_LIMIT_MS): Promise<boolean> {
  const deadline = realNow() + waitMs;
  while (!check()) {
    if (realNow() > deadline) return false;
    await sleep(10);
  }
  return true;
}

// ---- clients ----

export interface HttpAnswer {
  status: number;
  pod: string;
  endpoint: string;
  connection: string;
  body: string;
}

/** One HTTP GET on a fresh connection (no keep-alive), optionally from a given client address. */
export function httpGet(target: HostPort, options: { localAddress?: string; path?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: target.address,
      port: target.port,
      path: options.path ?? '/',
      agent: false,
      headers: { connection: 'close' },
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        pod: String(res.headers['x-kpsim-pod'] ?? ''),
        endpoint: String(res.headers['x-kpsim-endpoint'] ?? ''),
        connection: String(res.headers['x-kpsim-connection'] ?? ''),
        body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** A raw TCP connection, resolved once connected. */
export function connect(target: HostPort, options: { localAddress?: string; allowHalfOpen?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: target.address,
      port: target.port,
      allowHalfOpen: options.allowHalfOpen ?? false,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** How a connection ended, seen from the client: the bytes it read, and whether it was reset. */
export interface ConnectionEnd {
  data: Buffer;
  /** 'end' = a FIN, 'reset' = ECONNRESET, or another error code. */
  how: string;
}

/** Read until the connection ends (FIN or error). */
export function readToEnd(socket: Socket): Promise<ConnectionEnd> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let how = 'end';
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      how = 'end';
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      how = err.code === 'ECONNRESET' ? 'reset' : (err.code ?? err.message);
    });
    socket.on('close', () => resolve({ data: Buffer.concat(chunks), how }));
  });
}

/** Connect and see how the connection ends (a reset may come before the handshake is seen). */
export function connectAndWaitForEnd(target: HostPort): Promise<ConnectionEnd> {
  return readToEnd(net.connect({ host: target.address, port: target.port }));
}

// ---- raw backends ----

export interface RawServer {
  readonly server: Server;
  readonly address: HostPort;
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

/** A plain TCP server on a loopback address, port 0, keeping track of its sockets. */
export async function rawServer(host: string, onSocket: (socket: Socket) => void, options: { allowHalfOpen?: boolean } = {}): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    address: { address: host, port },
    sockets,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * A listening socket that never completes a handshake: a worker thread listens with a backlog
 * of 1 and then blocks, so its accept queue fills (two filler connections) and the kernel drops
 * every further SYN. A dial to it hangs until the dialer gives up, as with a pod that is stuck.
 */
export interface StuckServer {
  readonly address: HostPort;
  close(): Promise<void>;
}

/**
 * How many connections wait in the accept queue of the IPv4 listener host:port: the rx_queue
 * column of /proc/net/tcp, which for a listening socket is its accept backlog's current length.
 */
function acceptQueue(host: string, port: number): number | undefined {
  const want = `${host.split('.').reverse().map((b) => Number(b).toString(16).padStart(2, '0')).join('').toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== want || f[3] !== '0A') continue;
    return parseInt(f[4]!.split(':')[1]!, 16);
  }
  return undefined;
}

/** The stuck listener's backlog: Linux queues one connection more than that, then drops SYNs. */
const STUCK_BACKLOG = 1;

export async function stuckServer(host: string): Promise<StuckServer> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const server = net.createServer();
    server.listen({ host: workerData.host, port: 0, backlog: workerData.backlog }, () => {
      parentPort.postMessage(server.address().port);
      // Block the event loop: nothing is accepted until the test lets go.
      setImmediate(() => {
        Atomics.wait(workerData.flag, 0, 0);
        server.close();
        parentPort.close();
      });
    });
  `, { eval: true, workerData: { host, flag, backlog: STUCK_BACKLOG } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Fill the accept queue: one connection at a time, each waited for until the kernel shows it
  // queued (/proc), up to backlog + 1; the next SYN is dropped. Counted, not guessed from a
  // handshake that did not finish within some time.
  const fillers: Socket[] = [];
  while (fillers.length < STUCK_BACKLOG + 1) {
    assert.equal(acceptQueue(host, port), fillers.length, `the accept queue of ${host}:${port} holds exactly the fillers`);
    const filler = net.connect({ host, port });
    filler.on('error', () => {});
    fillers.push(filler);
    await new Promise<void>((resolve) => filler.once('connect', () => resolve()));
    // The listener queues the connection when the client's ACK arrives, just after 'connect';
    // nothing accepts, so every filler stays queued.
    assert.ok(await eventually(() => acceptQueue(host, port) === fillers.length), `filler ${fillers.length} reached the accept queue: ${acceptQueue(host, port)}`);
  }
  return {
    address: { address: host, port },
    close: async () => {
      for (const f of fillers) f.destroy();
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await new Promise((resolve) => worker.once('exit', resolve));
    },
  };
}

// ---- UDP ----

/** A one-port UDP service "ns1/<name>:dns" on port 53 with the given endpoints (targetPort 5353). */
export function udpService(options: WebServiceOptions = {}): Manifest[] {
  const manifests = webService({ name: 'dns', clusterIP: '172.30.0.10', targetPort: 5353, ...options });
  for (const m of manifests) {
    if (m.kind === 'Service') (m as ServiceManifest).spec.ports = [{ name: 'dns', port: 53, protocol: 'UDP', targetPort: options.targetPort ?? 5353 }];
    else if (m.kind === 'EndpointSlice') (m as { ports: { name: string; port: number; protocol: string }[] }).ports = [{ name: 'dns', port: options.targetPort ?? 5353, protocol: 'UDP' }];
  }
  return manifests;
}

export interface UdpAnswer {
  /** The reply as text after the request (the backend's identity JSON), or '' for no reply. */
  readonly identity: { pod: string; endpoint: string } | undefined;
  /** Where the reply came from. */
  readonly from: HostPort | undefined;
}

/**
 * A UDP client on its own socket (so its own association at the proxy): `ask` sends one datagram
 * and resolves with the reply, or with no identity when none comes within `waitMs`.
 */
export interface UdpClient {
  ask(text: string, waitMs?: number): Promise<UdpAnswer>;
  close(): Promise<void>;
}

export async function udpClient(target: HostPort): Promise<UdpClient> {
  const socket = dgram.createSocket(target.address.includes(':') ? 'udp6' : 'udp4');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.bind({ address: target.address.includes(':') ? '::1' : '127.0.0.1', port: 0 }, resolve));
  return {
    ask(text: string, waitMs = 2000): Promise<UdpAnswer> {
      return new Promise((resolve) => {
        const onMessage = (reply: Buffer, rinfo: dgram.RemoteInfo): void => {
          const body = reply.toString();
          if (!body.startsWith(`${text}\n`)) return;
          clearTimeout(timer);
          socket.removeListener('message', onMessage);
          resolve({ identity: JSON.parse(body.slice(text.length + 1)) as { pod: string; endpoint: string }, from: { address: rinfo.address, port: rinfo.port } });
        };
        const timer = setTimeout(() => {
          socket.removeListener('message', onMessage);
          resolve({ identity: undefined, from: undefined });
        }, waitMs);
        socket.on('message', onMessage);
        socket.send(text, target.port, target.address);
      });
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
