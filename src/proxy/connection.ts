/**
 * One proxied TCP connection: choose an endpoint, dial it (with growing timeouts, retrying on
 * another endpoint as kube-proxy's userspace mode did), then relay bytes both ways until both
 * sides are done.
 *
 * The relay works on libuv handles directly (raw-tcp.ts), not on net.Socket: each side reads into
 * a buffer of this connection's own (from a pool), and each chunk read is written straight on to
 * the other side. The kernel usually takes a write at once; when it does not, the write keeps the
 * buffer and the side it came from stops reading until the write is done. That bounds what the
 * proxy holds per direction to one buffer, and is backpressure as TCP has it. A FIN from one side
 * becomes a FIN to the other once what came before it is written (allowHalfOpen), and a reset a
 * reset. Handles find their connection through one symbol-keyed property and shared callbacks,
 * so no closure, emitter or timer is made per connection (dial timeouts: dial-watch.ts, idle
 * timeouts: idle-sweep.ts).
 *
 * Measured with the proxy bench (wrk, no keep-alive, 2 busy cores, medians of 5 rounds): the
 * net.Socket relay spent about 155 µs of user time per connection, this one 27 µs (haproxy 15);
 * the kernel's part is about 90 µs either way (haproxy 85). What user time is left is mostly
 * Node's C++ side of the handles (perf: 17% of the process's time in node, 2% in JavaScript).
 *
 * What a connection that ends normally costs (strace, the proxy bench without keep-alive): accept4,
 * socket, setsockopt (TCP_NODELAY: the client's comes from the listener), connect, getsockopt
 * (libuv reads the connect's result), two reads and two writes, two reads of a FIN, a shutdown
 * when the first FIN is passed on alone, two closes, and five epoll changes (an ADD per socket, a
 * MOD when the connect completes, a DEL per close: libuv's, which haproxy saves by letting close
 * drop them); haproxy makes about 18 syscalls, this relay 20 to 21. Into JavaScript it is called
 * six or seven times (the accept, the connect, a read each way, a FIN each way, the shutdown's
 * completion); Node's fixed cost per call (MakeCallback, handle scopes, the microtask checkpoint)
 * and per handle (its object, weak reference and close) is most of the user time left. The
 * proxy bench's node floors (bench/proxy-floor.ts) measure that part alone.
 *
 * The IPVS virtual service sees the connection as the kernel would: counted active when it is
 * scheduled, inactive once either side sends a FIN, gone when both sockets are closed. That is
 * what lc, wlc and the other load-aware schedulers read.
 */
import { type ReadSlot, ReadSlotPool } from './buffer-pool.js';
import type { DialMember, DialWatch } from './dial-watch.js';
import type { IdleMember, IdleSweep } from './idle-sweep.js';
import { destsToAvoid } from './pick.js';
import {
  type ConnectRequest, type ShutdownRequest, type TcpHandle, type WriteRequest, UV_EOF, errorName, lastWriteWasAsync, newConnectRequest,
  newShutdownRequest, newSocketHandle, newWriteRequest, readResult,
} from './raw-tcp.js';
import { type EndpointErrorKind, type ListenerStats, errorKindOf } from './stats.js';
import type { ConnectionScheduler, ListenerEndpoint } from './virtual-server.js';

export type { ListenerEndpoint };

/** What a connection needs from the listener that accepted it. */
export interface ConnectionHost {
  readonly vs: ConnectionScheduler;
  /** The listener's current endpoints, by addr, in the order kube-proxy sorts them. */
  readonly endpoints: ReadonlyMap<string, ListenerEndpoint>;
  readonly stats: ListenerStats;
  readonly dialTimeoutsMs: readonly number[];
  /** Times out dials that take too long. */
  readonly dials: DialWatch;
  /** Closes open connections that stay idle; undefined: no idle timeout. */
  readonly idle: IdleSweep | undefined;
  /** The connection is over (both sockets closed, or it never reached an endpoint). */
  release(conn: ProxyConnection): void;
}

type Phase = 'dialing' | 'open' | 'done';

/** Which way bytes go: from the client to the endpoint, or back. */
const TO_BACKEND = 0;
const TO_CLIENT = 1;
type Direction = typeof TO_BACKEND | typeof TO_CLIENT;

/** How a handle, a write request or a connect request finds its connection. */
const CONN = Symbol('kpsim.connection');
interface Linked {
  [CONN]?: ProxyConnection;
}
type LinkedHandle = TcpHandle & Linked;
type LinkedWrite = WriteRequest & Linked & { direction: Direction };
type LinkedConnect = ConnectRequest & Linked;
type LinkedShutdown = ShutdownRequest & Linked & { side: 'client' | 'backend' };

/**
 * Read buffers, one per direction of an open connection, reused across connections. 16 KiB
 * holds a whole HTTP response for most requests; 5000 open connections take 160 MiB.
 */
const readBuffers = new ReadSlotPool(16 * 1024, 2048);

/**
 * The write request every write starts with. A write the kernel takes at once never touches
 * its request, so one serves every connection; a write that goes async keeps it (and gets its
 * connection and direction written on it), and a new one takes its place.
 */
let spareWrite: LinkedWrite | undefined;

function writeRequest(): LinkedWrite {
  if (spareWrite === undefined) {
    spareWrite = newWriteRequest() as LinkedWrite;
    spareWrite.oncomplete = onWriteDone;
  }
  return spareWrite;
}

export class ProxyConnection implements IdleMember, DialMember {
  readonly #host: ConnectionHost;
  readonly #client: LinkedHandle;
  readonly #clientKey: string | undefined;
  #backend: LinkedHandle | undefined;
  #connectRequest: LinkedConnect | undefined;
  #target: ListenerEndpoint | undefined;
  #phase: Phase = 'dialing';
  #attempt = 0;
  /** Endpoints whose dial failed, in order; made on the first failure. */
  #tried: string[] | undefined;
  /** Which counter of the virtual service holds this connection; undefined when none does. */
  #counted: 'active' | 'inactive' | undefined;
  /** Per direction (to the backend, to the client): the read buffer, and whether a write of it is still pending. */
  #toBackendSlot: ReadSlot | undefined;
  #toClientSlot: ReadSlot | undefined;
  #toBackendPending = false;
  #toClientPending = false;
  /** Per side (client, backend): its FIN was read. */
  #clientEnded = false;
  #backendEnded = false;
  /** Per side (client, backend): a shutdown was issued on it and is not complete yet. */
  #clientShutting = false;
  #backendShutting = false;
  #closing = false;
  /** See IdleSweep: the sweep's tick when bytes last moved. */
  idleTick = 0;
  /** See DialWatch. */
  dialDeadline = 0;

  /** `client`: an accepted handle, not reading yet. */
  constructor(host: ConnectionHost, client: TcpHandle, clientKey: string | undefined) {
    this.#host = host;
    this.#client = client as LinkedHandle;
    this.#client[CONN] = this;
    this.#clientKey = clientKey;
  }

  /** Bytes waiting to be written, both directions (at most one buffer each). */
  bufferedBytes(): number {
    return this.#client.writeQueueSize + (this.#backend?.writeQueueSize ?? 0);
  }

  start(): void {
    this.#dial();
  }

  /** Tear the connection down now (the proxy is closing). */
  destroy(): void {
    if (this.#phase === 'done' || this.#closing) return;
    if (this.#phase === 'dialing') {
      this.#abortDial();
      this.#closing = true;
      this.#client.close();
      this.#finish();
      return;
    }
    this.#closeBoth();
  }

  // ---- dialing ----

  #dial(): void {
    const target = this.#pickTarget();
    if (target === undefined) {
      this.#giveUp();
      return;
    }
    this.#target = target;
    const backend = newSocketHandle() as LinkedHandle;
    backend[CONN] = this;
    // Nagle would hold a request back behind an unacknowledged one for a delayed ACK (40 ms).
    // libuv sets it when it makes the socket, in connect.
    backend.setNoDelay(true);
    this.#backend = backend;
    const req = newConnectRequest() as LinkedConnect;
    req[CONN] = this;
    req.oncomplete = onConnect;
    this.#connectRequest = req;
    const err = target.host.includes(':') ? backend.connect6(req, target.host, target.port) : backend.connect(req, target.host, target.port);
    if (err !== 0) {
      this.#dialFailed(errorKindOf({ code: errorName(err) } as NodeJS.ErrnoException));
      return;
    }
    // Reading is armed on the backend while it connects (libuv has made its socket in connect):
    // its first epoll registration then asks for writable and readable at once, and the connect
    // completing only drops writable (one epoll_ctl MOD). Armed after the connect, libuv's
    // registration would be three calls (the connect's ADD, then an ADD refused with EEXIST and a
    // MOD). libuv completes the connect before it reads, so nothing is read before #open.
    const toClient = (this.#toClientSlot ??= readBuffers.take());
    backend.useUserBuffer(toClient.buffer);
    backend.onread = onBackendRead;
    backend.readStart();
    this.#host.dials.add(this, this.#host.dialTimeoutsMs[this.#attempt]!);
  }

  /** The first attempt asks the scheduler; retries avoid what failed, as described in pick.ts. */
  #pickTarget(): ListenerEndpoint | undefined {
    const { vs, endpoints } = this.#host;
    let addr: string | undefined;
    if (this.#attempt === 0) {
      addr = vs.connect(this.#clientKey, 'active');
    } else {
      const candidates = [...endpoints.keys()];
      const avoid = destsToAvoid(candidates, this.#tried ?? []);
      addr = vs.connectAvoiding(this.#clientKey, avoid);
      if (addr === undefined) {
        // The scheduler has nothing else (sh without fallback hashes to the failed dest, say):
        // take the next endpoint in order ourselves and count it as the kernel counts a bound one.
        addr = candidates.find((a) => !avoid.includes(a));
        if (addr !== undefined) vs.bind(addr, 'active');
      }
    }
    if (addr === undefined) return undefined;
    this.#counted = 'active';
    const target = endpoints.get(addr);
    if (target === undefined) throw new Error(`virtual service chose ${addr}, which the listener does not know`);
    return target;
  }

  /** Called by the dial watch. */
  onDialTimeout(): void {
    if (this.#phase !== 'dialing') return;
    this.#dialFailed('timeout');
  }

  onConnect(req: LinkedConnect, status: number): void {
    // A dial given up on (timed out, or the proxy closing) still completes, as cancelled.
    if (req !== this.#connectRequest || this.#phase !== 'dialing') return;
    this.#connectRequest = undefined;
    this.#host.dials.delete(this);
    if (status < 0) {
      this.#dialFailed(errorKindOf({ code: errorName(status) } as NodeJS.ErrnoException));
      return;
    }
    this.#open();
  }

  #dialFailed(kind: EndpointErrorKind): void {
    const target = this.#target!;
    target.stats.errors[kind]++;
    this.#abortDial();
    (this.#tried ??= []).push(target.addr);
    this.#attempt++;
    if (this.#attempt >= this.#host.dialTimeoutsMs.length) {
      this.#giveUp();
      return;
    }
    this.#host.stats.retries++;
    this.#dial();
  }

  /** Drop the dial in progress: its handle, its deadline and its count in the virtual service. */
  #abortDial(): void {
    this.#host.dials.delete(this);
    this.#connectRequest = undefined;
    const backend = this.#backend;
    if (backend !== undefined) {
      this.#backend = undefined;
      backend.close();
    }
    this.#uncount();
  }

  /** No endpoint could be reached, or none is left: reset the client, as the kernel would. */
  #giveUp(): void {
    this.#host.stats.failed++;
    this.#closing = true;
    this.#client.reset();
    this.#finish();
  }

  // ---- relaying ----

  #open(): void {
    this.#phase = 'open';
    const target = this.#target!;
    target.stats.connections++;
    target.stats.active++;
    this.#host.stats.forwarded++;
    this.#host.idle?.add(this);
    const client = this.#client;
    const toBackend = (this.#toBackendSlot = readBuffers.take());
    client.useUserBuffer(toBackend.buffer);
    client.onread = onClientRead;
    client.readStart();
  }

  /** `from` read something (bytes, its FIN, or an error): pass it on in `direction`. */
  relay(direction: Direction): void {
    const n = readResult();
    if (n > 0) {
      this.#forward(direction, n);
      return;
    }
    if (n === UV_EOF) {
      this.#onEnd(direction);
      return;
    }
    if (n < 0) this.#onError(direction === TO_BACKEND ? 'client' : 'backend', n);
  }

  #forward(direction: Direction, n: number): void {
    const idle = this.#host.idle;
    if (idle !== undefined) this.idleTick = idle.tick;
    const stats = this.#target!.stats;
    const listener = this.#host.stats;
    if (direction === TO_BACKEND) {
      stats.bytesIn += n;
      listener.bytesIn += n;
    } else {
      stats.bytesOut += n;
      listener.bytesOut += n;
    }
    const to = direction === TO_BACKEND ? this.#backend! : this.#client;
    const slot = direction === TO_BACKEND ? this.#toBackendSlot! : this.#toClientSlot!;
    const req = writeRequest();
    const err = to.writeBuffer(req, slot.view(n));
    if (err !== 0) {
      this.#onError(direction === TO_BACKEND ? 'backend' : 'client', err);
      return;
    }
    if (lastWriteWasAsync()) {
      // The request and the buffer now belong to the pending write; read no more into it.
      req[CONN] = this;
      req.direction = direction;
      spareWrite = undefined;
      if (direction === TO_BACKEND) this.#toBackendPending = true;
      else this.#toClientPending = true;
      (direction === TO_BACKEND ? this.#client : this.#backend!).readStop();
    }
  }

  onWriteDone(direction: Direction, status: number): void {
    if (direction === TO_BACKEND) this.#toBackendPending = false;
    else this.#toClientPending = false;
    if (this.#phase !== 'open' || this.#closing) return;
    if (status < 0) {
      this.#onError(direction === TO_BACKEND ? 'backend' : 'client', status);
      return;
    }
    const idle = this.#host.idle;
    if (idle !== undefined) this.idleTick = idle.tick;
    const fromEnded = direction === TO_BACKEND ? this.#clientEnded : this.#backendEnded;
    if (!fromEnded) (direction === TO_BACKEND ? this.#client : this.#backend!).readStart();
  }

  /**
   * One side sent its FIN: pass it on now (libuv sends it after anything still queued on the
   * other side). When the other side had already sent its FIN, both directions are over, and
   * closing both sends that last FIN itself. Nothing is left to write then: a side's reading stops
   * while a write of its bytes is pending, so its FIN is read only once that write is done, and
   * after its FIN nothing more comes from it. So the second FIN always closes, and a shutdown's
   * completion (onShutdown) never has to.
   *
   * Passed on at once, the FIN usually reaches the client before the client closes its own side
   * (an HTTP client closes once it has read its response). Held back to the end of the loop turn,
   * it usually came after the client's own FIN, which saved the shutdown but left the proxy's
   * close to end the client's connection, which on loopback bills the client's TIME_WAIT to the
   * proxy. Passed on at once (as haproxy does), the proxy's CPU per connection without keep-alive
   * fell by 7 to 10 µs (wrk, 9 interleaved rounds on a quiet machine, twice: 131 -> 122 and
   * 133 -> 127 µs).
   */
  #onEnd(direction: Direction): void {
    if (direction === TO_BACKEND) this.#clientEnded = true;
    else this.#backendEnded = true;
    this.#deactivate();
    // A shutdown still in progress only waits for pending writes to drain before its FIN; with
    // none pending, close sends that FIN too (both receive queues are empty after a FIN).
    if (this.#bothDone()) {
      this.#closeBoth();
      return;
    }
    this.#shutdown(direction === TO_BACKEND ? 'backend' : 'client');
  }

  /** Both sides sent their FIN and nothing is left to write: close sends the FINs still owed. */
  #bothDone(): boolean {
    return this.#clientEnded && this.#backendEnded && !this.#toBackendPending && !this.#toClientPending;
  }

  /** Send a FIN to `side` once its pending writes are out; false when libuv refused (both closed then). */
  #shutdown(side: 'client' | 'backend'): boolean {
    const to = side === 'backend' ? this.#backend! : this.#client;
    const req = newShutdownRequest() as LinkedShutdown;
    req[CONN] = this;
    req.side = side;
    req.oncomplete = onShutdown;
    if (to.shutdown(req) !== 0) {
      this.#closeBoth();
      return false;
    }
    if (side === 'backend') this.#backendShutting = true;
    else this.#clientShutting = true;
    return true;
  }

  /** The shutdown is done (or cancelled by a close): a reset may be sent on that side again (#onError). */
  onShutdown(side: 'client' | 'backend'): void {
    if (side === 'client') this.#clientShutting = false;
    else this.#backendShutting = false;
  }

  /** A read or write error on one side: count it, and pass a reset on as a reset. */
  #onError(side: 'client' | 'backend', status: number): void {
    if (this.#closing) return;
    const code = errorName(status);
    const kind = errorKindOf({ code } as NodeJS.ErrnoException);
    if (side === 'client') {
      if (code === 'ECONNRESET') this.#host.stats.clientResets++;
    } else {
      this.#target!.stats.errors[kind]++;
    }
    this.#closing = true;
    const other = side === 'client' ? this.#backend! : this.#client;
    const failed = side === 'client' ? this.#client : this.#backend!;
    // libuv refuses a reset while a shutdown is in progress on the handle (and Node's wrap then
    // counts it as closing without closing it): close it then, which still ends it.
    const otherShutting = side === 'client' ? this.#backendShutting : this.#clientShutting;
    if (kind === 'reset' && !otherShutting) other.reset();
    else other.close();
    failed.close();
    this.#finish();
  }

  /** Called by the idle sweep: no byte moved either way for the whole idle timeout. */
  onIdle(): void {
    this.#host.stats.idleTimeouts++;
    this.#closeBoth();
  }

  // ---- closing and accounting ----

  /**
   * Close both sockets, and be done: a closed handle is never read into or written from again
   * (libuv cancels its pending writes and shutdown), so the buffers are free at once, and no
   * close callback is needed.
   */
  #closeBoth(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#client.close();
    this.#backend!.close();
    this.#finish();
  }

  /** The first FIN moves the connection to the virtual service's inactive counter. */
  #deactivate(): void {
    if (this.#counted !== 'active') return;
    this.#host.vs.close(this.#target!.addr);
    this.#counted = 'inactive';
  }

  #uncount(): void {
    if (this.#counted === undefined) return;
    this.#host.vs.expire(this.#target!.addr, this.#counted);
    this.#counted = undefined;
  }

  #finish(): void {
    if (this.#phase === 'done') return;
    const wasOpen = this.#phase === 'open';
    this.#phase = 'done';
    if (wasOpen) {
      this.#target!.stats.active--;
      this.#host.idle?.delete(this);
    }
    // Both handles are closed: nothing reads into or writes from the buffers any more.
    if (this.#toBackendSlot !== undefined) readBuffers.give(this.#toBackendSlot);
    if (this.#toClientSlot !== undefined) readBuffers.give(this.#toClientSlot);
    this.#toBackendSlot = undefined;
    this.#toClientSlot = undefined;
    this.#client[CONN] = undefined;
    if (this.#backend !== undefined) this.#backend[CONN] = undefined;
    this.#uncount();
    this.#host.release(this);
  }
}

// Shared callbacks: `this` is the handle or request, which names its connection.

function onClientRead(this: LinkedHandle): void {
  this[CONN]?.relay(TO_BACKEND);
}

function onBackendRead(this: LinkedHandle): void {
  this[CONN]?.relay(TO_CLIENT);
}

function onWriteDone(this: LinkedWrite, status: number): void {
  this[CONN]?.onWriteDone(this.direction, status);
}

function onShutdown(this: LinkedShutdown): void {
  this[CONN]?.onShutdown(this.side);
}

function onConnect(this: LinkedConnect, status: number): void {
  this[CONN]?.onConnect(this, status);
}
