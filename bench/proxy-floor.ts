/**
 * The floor of a TCP proxy in a Node 20 process: the least a proxy written for Node can do per
 * connection, to measure kpsim's proxy and HAProxy against (proxy.bench.ts, `--role floor`).
 *
 * It works on the same libuv handles as kpsim's relay (src/proxy/raw-tcp.ts: tcp_wrap and
 * stream_wrap, below net.Socket; Node has no lower layer a program can reach), and does only what
 * any proxy must: accept, connect to one fixed backend, read each side into a buffer of its own
 * and write every chunk on, and close. Everything kpsim does beside that is left out: no
 * scheduler, no endpoint table, no counters, no dial timeouts or retries, no idle timeout, no
 * half-close (the first FIN from either side closes both: a correct proxy reads both FINs and
 * passes the first one on, so it does at least this much). What this process spends per
 * connection or per request is therefore a lower bound for any Node proxy built on Node's own
 * handles: the part of kpsim's cost above it is kpsim's own code, the part below it is Node's and
 * the kernel's.
 */
import { createServer } from 'node:net';
import {
  type ConnectRequest, type TcpHandle, type WriteRequest, lastWriteWasAsync, newConnectRequest, newSocketHandle,
  newWriteRequest, readResult, serverHandleOf,
} from '../src/proxy/raw-tcp.js';

export interface FloorBackend {
  readonly address: string;
  readonly port: number;
}

const PAIR = Symbol('floor.pair');
type Side = TcpHandle & { [PAIR]?: Pair; toPeer?: Buffer };
type PendingWrite = WriteRequest & { from?: Side };

const BUFFER_BYTES = 16 * 1024;
const freeBuffers: Buffer[] = [];

function takeBuffer(): Buffer {
  return freeBuffers.pop() ?? Buffer.allocUnsafe(BUFFER_BYTES);
}

/** One write request serves every write the kernel takes at once (it is never touched then). */
let spareWrite: PendingWrite | undefined;

class Pair {
  readonly client: Side;
  readonly backend: Side;
  closed = false;

  constructor(client: Side, backend: Side) {
    this.client = client;
    this.backend = backend;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
    this.backend.close();
    if (this.client.toPeer !== undefined) freeBuffers.push(this.client.toPeer);
    if (this.backend.toPeer !== undefined) freeBuffers.push(this.backend.toPeer);
    this.client[PAIR] = undefined;
    this.backend[PAIR] = undefined;
  }
}

function onRead(this: Side): void {
  const pair = this[PAIR];
  if (pair === undefined) return;
  const n = readResult();
  if (n < 0) {
    // UV_EOF or an error: either way the floor closes both sides.
    pair.close();
    return;
  }
  if (n === 0) return;
  const to = this === pair.client ? pair.backend : pair.client;
  const req = spareWrite ?? newWriteRequest() as PendingWrite;
  req.oncomplete = onWriteDone;
  if (to.writeBuffer(req, this.toPeer!.subarray(0, n)) !== 0) {
    pair.close();
    return;
  }
  if (lastWriteWasAsync()) {
    // Backpressure: the buffer belongs to the write until it is done; read no more into it.
    spareWrite = undefined;
    req.from = this;
    this.readStop();
  } else {
    spareWrite = req;
  }
}

function onWriteDone(this: PendingWrite, status: number): void {
  const from = this.from!;
  const pair = from[PAIR];
  if (pair === undefined) return;
  if (status < 0) pair.close();
  else from.readStart();
}

function onConnect(this: ConnectRequest & { pair?: Pair }, status: number): void {
  const pair = this.pair!;
  if (pair.closed) return;
  if (status < 0) {
    pair.client.reset();
    pair.closed = true;
    pair.backend.close();
    return;
  }
  startReading(pair.client, pair);
}

function startReading(side: Side, pair: Pair): void {
  side[PAIR] = pair;
  side.toPeer = takeBuffer();
  side.useUserBuffer(side.toPeer);
  side.onread = onRead;
  side.readStart();
}

/** Listen on 127.0.0.1 (an ephemeral port) and relay every connection to `backend`. */
export async function startFloorRelay(backend: FloorBackend): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: 511 }, resolve));
  const handle = serverHandleOf(server)!;
  // Accepted sockets inherit TCP_NODELAY from the listener (Linux).
  handle.setNoDelay(true);
  handle.onconnection = (err, client) => {
    if (err !== 0 || client === undefined) return;
    const upstream = newSocketHandle() as Side;
    upstream.setNoDelay(true);
    const pair = new Pair(client as Side, upstream);
    const req = newConnectRequest() as ConnectRequest & { pair?: Pair };
    req.pair = pair;
    req.oncomplete = onConnect;
    if (upstream.connect(req, backend.address, backend.port) !== 0) {
      pair.closed = true;
      client.reset();
      upstream.close();
      return;
    }
    // Armed while connecting, as kpsim does: one epoll registration for connect and read.
    startReading(upstream, pair);
  };
  const { port } = server.address() as { port: number };
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
