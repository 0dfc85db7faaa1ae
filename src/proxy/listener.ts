/**
 * One TCP proxy listener: the loopback stand-in for one virtual address (a ClusterIP, a node IP's
 * NodePort, an external IP, a load balancer IP) of one TCP service port. Its scheduling half
 * (the IPVS virtual server) is virtual-server.ts; this file accepts and hands each connection
 * to connection.ts.
 */
import net, { type Server } from 'node:net';
import { KpsimError } from '../errors.js';
import type { ProxierServicePort } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import type { BoundPort, VirtualEntry } from './address-map.js';
import { bindWithFallback } from './bind-fallback.js';
import { type ConnectionHost, ProxyConnection } from './connection.js';
import { DialWatch } from './dial-watch.js';
import { IdleSweep } from './idle-sweep.js';
import { type PeerName, type TcpHandle, serverHandleOf } from './raw-tcp.js';
import { type EndpointDirectory, type SchedulingSettings, VirtualServer, VirtualServerListener } from './virtual-server.js';

export interface ListenerSettings extends SchedulingSettings {
  readonly dialTimeoutsMs: readonly number[];
  readonly idleTimeoutMs: number;
  /** UDP associations close after this long without a datagram either way. */
  readonly udpIdleTimeoutMs: number;
  /** Keep this many pending connections in the kernel's accept queue. */
  readonly backlog: number;
}

/** Where the proxy finds an endpoint's backend, its shared counters, and its open connections. */
export interface ConnectionDirectory extends EndpointDirectory {
  /** The connection has ended: forget it. */
  release(conn: OpenConnection): void;
  /** A new connection: remember it until release. */
  track(conn: OpenConnection): void;
}

/** What the proxy keeps of an open connection or association, to count and to cut it. */
export interface OpenConnection {
  bufferedBytes(): number;
  destroy(): void;
}

export class Listener extends VirtualServerListener implements ConnectionHost {
  readonly dialTimeoutsMs: readonly number[];
  readonly dials: DialWatch;
  readonly idle: IdleSweep | undefined;
  #server: Server;
  readonly #directory: ConnectionDirectory;
  readonly #needsClient: boolean;

  constructor(entry: VirtualEntry, sp: ProxierServicePort, settings: ListenerSettings, directory: ConnectionDirectory) {
    super(new VirtualServer(entry, sp, settings, directory));
    this.#needsClient = this.virtual.needsClient;
    this.#directory = directory;
    this.dialTimeoutsMs = settings.dialTimeoutsMs;
    this.dials = new DialWatch(Math.min(...settings.dialTimeoutsMs));
    this.idle = settings.idleTimeoutMs > 0 ? new IdleSweep(settings.idleTimeoutMs) : undefined;
    // Connections never reach net.Server's 'connection': #takeAccepts has its handle hand over
    // each accepted handle as it is, before any net.Socket is made (see connection.ts).
    this.#server = net.createServer();
  }

  /** Bind the loopback address: the planned port, else an ephemeral one (and say why). */
  async listen(backlog: number): Promise<BoundPort> {
    const bound = await bindTcpServer(this.#server, this.entry, backlog);
    this.#takeAccepts();
    return bound;
  }

  /**
   * Accept on a server already listening (a worker's copy of a listening socket the main thread
   * bound: workers.ts), instead of binding one. Call from its 'listening' callback, before any
   * connection can reach net.Server's own accept.
   */
  adopt(server: Server): void {
    this.#server = server;
    this.#takeAccepts();
  }

  /** Stop accepting; resolves once every connection it accepted is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.idle?.stop();
        this.dials.stop();
        resolve();
      };
      if (!this.#server.listening) {
        done();
        return;
      }
      this.#server.close(done);
    });
  }

  release(conn: ProxyConnection): void {
    this.stats.active--;
    this.#directory.release(conn);
  }

  /**
   * Take accepted connections as raw handles, and set TCP_NODELAY once on the listening socket
   * (Linux copies it to every socket accepted from it) instead of once per connection.
   */
  #takeAccepts(): void {
    const handle = serverHandleOf(this.#server);
    if (handle === undefined) throw new Error(`listener ${this.entry.key} has no handle after listening`);
    handle.setNoDelay(true);
    handle.onconnection = this.#onConnection;
  }

  #onConnection = (err: number, client: TcpHandle | undefined): void => {
    // An accept that failed (EMFILE, say): the connection stays in the kernel's queue.
    if (err !== 0 || client === undefined) return;
    const stats = this.stats;
    stats.accepted++;
    switch (stats.verdict) {
      case 'reject':
        stats.rejected++;
        client.reset(noop);
        return;
      case 'drop':
        stats.dropped++;
        client.close(noop);
        return;
      case 'forward': {
        let clientKey: string | undefined;
        if (this.#needsClient) {
          // A client that reset before we got to it has no peer address left to schedule on.
          const peer: PeerName = {};
          if (client.getpeername(peer) !== 0 || peer.address === undefined) {
            stats.clientResets++;
            client.close(noop);
            return;
          }
          clientKey = this.virtual.clientKey(peer.address, peer.port ?? 0);
        }
        stats.active++;
        const conn = new ProxyConnection(this, client, clientKey);
        this.#directory.track(conn);
        conn.start();
      }
    }
  };
}

function noop(): void {}

/** Listen on the entry's loopback address: the planned port, else an ephemeral one (and say why). */
export function bindTcpServer(server: Server, entry: VirtualEntry, backlog: number): Promise<BoundPort> {
  return bindWithFallback(entry.loopback, (host, port) => listenOn(server, host, port, backlog), (port, cause) => listenError(entry.key, entry.loopback.address, port, cause));
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
