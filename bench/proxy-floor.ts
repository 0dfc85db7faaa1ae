/**
 * The floor of a TCP proxy in a Node 20 process: the least a proxy written for Node can do per
 * connection, to measure kpsim's proxy and HAProxy against (proxy.bench.ts, `--role floor`).
 *
 * It works on the same libuv handles as kpsim's relay (src/proxy/raw-tcp.ts: tcp_wrap and
 * stream_wrap, below net.Socket; Node has no lower layer a program can reach), and does only what
 * any proxy must: accept, connect to one fixed backend, read each side into a buffer of its own
 * and write every chunk on, and close. Everything kpsim does beside that is left out: no
 * scheduler, no endpoint table, no counters, no dial timeouts or retries, no idle timeout.
 *
 * Two ways to end a connection, one per floor:
 *   - `close`: the first FIN from either side closes both sockets. This is what kube-proxy's
 *     userspace proxier did (pkg/proxy/userspace/proxysocket.go, copyBytes: `dest.Close();
 *     src.Close()` once either direction's copy ends), and the least work there is: one FIN read.
 *   - `half-close`: a FIN is passed on as a FIN (libuv's shutdown, once what came before it is
 *     written) and both sockets close once both FINs are read and nothing is left to write: what
 *     kpsim's proxy does (a client may still send after the server's FIN, as through the kernel's
 *     NAT in the other modes). The shutdown is made with no completion callback (Node calls none
 *     when the request has no `oncomplete`), the cheapest a half-close gets on these handles.
 * What a floor process spends per connection or per request is a lower bound for any Node proxy
 * on Node's own handles that ends connections that way: the part of kpsim's cost above the
 * half-close floor is kpsim's own code, the part below it is Node's and the kernel's.
 */
import { createServer } from 'node:net';
import {
  type ConnectRequest, type TcpHandle, type WriteRequest, UV_EOF, lastWriteWasAsync, newConnectRequest, newShutdownRequest,
  newSocketHandle, newWriteRequest, readResult, serverHandleOf,
} from '../src/proxy/raw-tcp.js';

export interface FloorBackend {
  readonly address: string;
  readonly port: number;
}

const PAIR = Symbol('floor.pair');
type Side = TcpHandle & {
  [PAIR]?: Pair;
  /** This side's reads go into it, and are written on to the other side from it. */
  toPeer?: Buffer;
  /** Its FIN was read. */
  ended?: boolean;
  /** A write of its bytes to the other side is pending. */
  writing?: boolean;
};

export type FloorEnd = 'close' | 'half-close';
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
  readonly halfClose: boolean;
  closed = false;

  constructor(client: Side, backend: Side, halfClose: boolean) {
    this.client = client;
    this.backend = backend;
    this.halfClose = halfClose;
  }

  /** Both FINs read and nothing left to write. */
  done(): boolean {
    return this.client.ended === true && this.backend.ended === true && this.client.writing !== true && this.backend.writing !== true;
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
  const to = this === pair.client ? pair.backend : pair.client;
  if (n < 0) {
    if (n === UV_EOF && pair.halfClose) {
      this.ended = true;
      if (pair.done()) pair.close();
      // The FIN goes on once this side's pending write (if any) is out: libuv queues it behind.
      else if (to.shutdown(newShutdownRequest()) !== 0) pair.close();
      return;
    }
    // An error, or the close floor's first FIN: close both.
    pair.close();
    return;
  }
  if (n === 0) return;
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
    this.writing = true;
    this.readStop();
  } else {
    spareWrite = req;
  }
}

function onWriteDone(this: PendingWrite, status: number): void {
  const from = this.from!;
  const pair = from[PAIR];
  if (pair === undefined) return;
  from.writing = false;
  if (status < 0 || pair.done()) pair.close();
  else if (from.ended !== true) from.readStart();
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

/** Listen on 127.0.0.1 (an ephemeral port) and relay every connection to `backend`, ending connections as `end` says. */
export async function startFloorRelay(backend: FloorBackend, end: FloorEnd): Promise<{ port: number; close(): Promise<void> }> {
  const halfClose = end === 'half-close';
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: 511 }, resolve));
  const handle = serverHandleOf(server)!;
  // Accepted sockets inherit TCP_NODELAY from the listener (Linux).
  handle.setNoDelay(true);
  handle.onconnection = (err, client) => {
    if (err !== 0 || client === undefined) return;
    const upstream = newSocketHandle() as Side;
    upstream.setNoDelay(true);
    const pair = new Pair(client as Side, upstream, halfClose);
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
