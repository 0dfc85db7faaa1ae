/**
 * One proxied TCP connection: choose an endpoint, dial it (with growing timeouts, retrying on
 * another endpoint as kube-proxy's userspace mode did), then relay bytes both ways until both
 * sides are done.
 *
 * The relay is written out by hand rather than with pipe(): one 'data' handler per direction
 * writes the chunk on and pauses the reader when the writer's buffer is full, and the writer's
 * 'drain' resumes it. That bounds what the proxy holds per direction to about one socket buffer
 * (the writable's high-water mark plus the chunk in hand), counts bytes without extra listeners,
 * and keeps a FIN from one side a FIN to the other (allowHalfOpen), and a reset a reset.
 *
 * The IPVS virtual service sees the connection as the kernel would: counted active when it is
 * scheduled, inactive once either side sends a FIN, gone when both sockets are closed. That is
 * what lc, wlc and the other load-aware schedulers read.
 */
import net, { type Socket } from 'node:net';
import { backendReadBuffers } from './buffer-pool.js';
import type { IdleMember, IdleSweep } from './idle-sweep.js';
import { connectAvoiding, destsToAvoid } from './pick.js';
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
  /** Closes open connections that stay idle; undefined: no idle timeout. */
  readonly idle: IdleSweep | undefined;
  /**
   * What the scheduler sees of the client: its IP, "ip:port" for the port-hashing flags, or
   * undefined when the scheduler does not look at clients.
   */
  clientKey(client: Socket): string | undefined;
  /** The connection is over (both sockets closed, or it never reached an endpoint). */
  release(conn: ProxyConnection): void;
}

type Phase = 'dialing' | 'open' | 'done';

const noop = (): void => {};

/** Close with an RST, as the kernel answers for a connection it cannot place. */
function reset(socket: Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy();
}

/**
 * Pass a FIN on to `socket`. Once `socket` has sent its own FIN (its 'end' came, so everything
 * before it was read) and holds no unsent bytes, both directions are over, and close() sends the
 * very FIN that shutdown() would, after whatever the kernel still queues. That skips the shutdown
 * request, its two epoll changes and a loop turn, once per connection that ends normally.
 * Proxy bench without keep-alive, with the idle sweep (idle-sweep.ts): the proxy's CPU per
 * connection went from 179 to 162 µs (haproxy: 95 µs); the rest is mostly node's own cost of
 * making, connecting and tearing down two net.Sockets, and the kernel's.
 */
function passFin(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.readableEnded && socket.writableLength === 0) socket.destroy();
  else socket.end();
}

export class ProxyConnection implements IdleMember {
  readonly client: Socket;
  readonly #host: ConnectionHost;
  #backend: Socket | undefined;
  #target: ListenerEndpoint | undefined;
  #phase: Phase = 'dialing';
  #attempt = 0;
  /** Endpoints whose dial failed, in order; made on the first failure. */
  #tried: string[] | undefined;
  #dialTimer: NodeJS.Timeout | undefined;
  /** Which counter of the virtual service holds this connection; undefined when none does. */
  #counted: 'active' | 'inactive' | undefined;
  #openSockets = 2;
  readonly #clientKey: string | undefined;
  /** See IdleSweep: the sweep's tick when bytes last moved. */
  idleTick = 0;

  constructor(host: ConnectionHost, client: Socket) {
    this.#host = host;
    this.client = client;
    this.#clientKey = host.clientKey(client);
  }

  /** The socket to the endpoint, once dialed. */
  get backend(): Socket | undefined {
    return this.#backend;
  }

  /** The endpoint the connection goes to (or is being dialed). */
  get target(): ListenerEndpoint | undefined {
    return this.#target;
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** Bytes waiting in this connection's socket buffers (both directions). */
  bufferedBytes(): number {
    const c = this.client;
    const b = this.#backend;
    return c.writableLength + c.readableLength + (b === undefined ? 0 : b.writableLength + b.readableLength);
  }

  start(): void {
    this.client.on('error', this.#onClientError);
    // One 'close' listener for the whole life of the client (see #onClientClose): cheaper than
    // swapping listeners when the dial completes.
    this.client.on('close', this.#onClientClose);
    this.#dial();
  }

  /** Tear the connection down now (the proxy is closing). */
  destroy(): void {
    if (this.#phase === 'done') return;
    if (this.#phase === 'dialing') {
      this.#abortDial();
      this.client.destroy();
      return;
    }
    this.client.destroy();
    this.#backend!.destroy();
  }

  // ---- dialing ----

  #dial(): void {
    const target = this.#pickTarget();
    if (target === undefined) {
      this.#giveUp();
      return;
    }
    this.#target = target;
    const backend = net.connect({
      host: target.host, port: target.port, noDelay: true, allowHalfOpen: true,
      onread: { buffer: this.#readBuffer, callback: this.#onBackendRead },
    });
    this.#backend = backend;
    backend.on('error', this.#onBackendError);
    // 'connect' comes at most once; `on` spares the once-wrapper made per connection.
    backend.on('connect', this.#onBackendConnect);
    this.#dialTimer = setTimeout(this.#onDialTimeout, this.#host.dialTimeoutsMs[this.#attempt]);
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
      addr = connectAvoiding(vs, this.#clientKey, avoid);
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

  #onDialTimeout = (): void => {
    this.#dialTimer = undefined;
    this.#dialFailed('timeout');
  };

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

  /** Drop the dial in progress: its socket, its timer and its count in the virtual service. */
  #abortDial(): void {
    if (this.#dialTimer !== undefined) clearTimeout(this.#dialTimer);
    this.#dialTimer = undefined;
    const backend = this.#backend;
    if (backend !== undefined) {
      backend.removeAllListeners();
      backend.on('error', noop);
      backend.destroy();
      this.#backend = undefined;
    }
    this.#uncount();
  }

  /** No endpoint could be reached, or none is left: reset the client, as the kernel would. */
  #giveUp(): void {
    this.#host.stats.failed++;
    reset(this.client);
    this.#finish();
  }

  #onClientClose = (): void => {
    if (this.#phase === 'open') {
      this.#onSocketClose();
    } else if (this.#phase === 'dialing') {
      this.#abortDial();
      this.#finish();
    }
  };

  #onBackendConnect = (): void => {
    clearTimeout(this.#dialTimer);
    this.#dialTimer = undefined;
    this.#phase = 'open';
    const client = this.client;
    const backend = this.#backend!;
    const target = this.#target!;
    target.stats.connections++;
    target.stats.active++;
    this.#host.stats.forwarded++;

    client.on('data', this.#onClientData);
    client.on('drain', this.#onClientDrain);
    backend.on('drain', this.#onBackendDrain);
    client.on('end', this.#onClientEnd);
    backend.on('end', this.#onBackendEnd);
    backend.on('close', this.#onSocketClose);
    // Every byte either way passes #onClientData or #onBackendRead, which mark the connection busy.
    this.#host.idle?.add(this);
    client.resume();
  };

  // ---- relaying ----

  #onClientData = (chunk: Buffer): void => {
    this.#markBusy();
    const n = chunk.length;
    this.#target!.stats.bytesIn += n;
    this.#host.stats.bytesIn += n;
    if (!this.#backend!.write(chunk)) this.client.pause();
  };

  /** Where the backend socket reads next (see buffer-pool.ts). */
  #readBuf: Buffer | undefined;
  #readBuffer = (): Buffer => (this.#readBuf ??= backendReadBuffers.take());

  /**
   * The backend's bytes, read into #readBuf and written on to the client. Returning false
   * stops reading until the client drains (then `resume` restarts it).
   */
  #onBackendRead = (n: number, buf: Buffer): boolean => {
    this.#markBusy();
    this.#target!.stats.bytesOut += n;
    this.#host.stats.bytesOut += n;
    const client = this.client;
    const ok = client.write(buf.subarray(0, n));
    // A write that did not complete at once still holds `buf`: read into another one next time.
    if (client.writableLength > 0) this.#readBuf = undefined;
    return ok;
  };

  #onClientDrain = (): void => {
    // A pending write to the client finishing is activity too (socket timeouts counted it).
    this.#markBusy();
    this.#backend!.resume();
  };

  #markBusy(): void {
    const idle = this.#host.idle;
    if (idle !== undefined) this.idleTick = idle.tick;
  }

  #onBackendDrain = (): void => {
    this.#markBusy();
    this.client.resume();
  };

  /** The client sent a FIN: pass it on, and keep relaying the other way. */
  #onClientEnd = (): void => {
    this.#deactivate();
    passFin(this.#backend!);
  };

  #onBackendEnd = (): void => {
    this.#deactivate();
    passFin(this.client);
  };

  /** Called by the idle sweep: no byte moved either way for the whole idle timeout. */
  onIdle(): void {
    this.#host.stats.idleTimeouts++;
    this.client.destroy();
    this.#backend!.destroy();
  }

  #onClientError = (err: NodeJS.ErrnoException): void => {
    if (err.code === 'ECONNRESET') this.#host.stats.clientResets++;
    if (this.#phase === 'dialing') {
      this.#abortDial();
      this.client.destroy();
      this.#finish();
      return;
    }
    const backend = this.#backend!;
    if (err.code === 'ECONNRESET') reset(backend);
    else backend.destroy();
  };

  #onBackendError = (err: NodeJS.ErrnoException): void => {
    const kind = errorKindOf(err);
    if (this.#phase === 'dialing') {
      this.#dialFailed(kind);
      return;
    }
    this.#target!.stats.errors[kind]++;
    if (kind === 'reset') reset(this.client);
    else this.client.destroy();
  };

  #onSocketClose = (): void => {
    if (--this.#openSockets > 0) return;
    this.#finish();
  };

  // ---- accounting ----

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
    // No write holds the read buffer once both sockets are closed, or if nothing was relayed.
    if (this.#readBuf !== undefined && (!wasOpen || this.#openSockets === 0)) backendReadBuffers.give(this.#readBuf);
    this.#readBuf = undefined;
    this.#uncount();
    this.#host.release(this);
  }
}
