/**
 * One UDP client association, as kube-proxy's userspace proxy kept them (pkg/proxy/userspace,
 * udpProxySocket): the first datagram from a client address and port picks an endpoint, and the
 * proxy opens a socket connected to that endpoint's backend for this client alone. The client's
 * datagrams go out on it; whatever the backend answers on it is relayed back to the client from
 * the service's own socket, so the client sees replies from the address it sent to. The
 * association ends after `udpIdleTimeout` (250 ms by default) without a datagram either way, or
 * when the backend's port is closed (the kernel reports the ICMP port-unreachable as
 * ECONNREFUSED on the connected socket; kube-proxy ended the association on that read error too).
 *
 * For the virtual service an association is one UDP connection, counted as IPVS counts UDP: in
 * InActConn from the start (UDP never changes state), until it expires.
 */
import dgram, { type Socket } from 'node:dgram';
import type { IdleMember, IdleSweep } from './idle-sweep.js';
import type { OpenConnection } from './listener.js';
import { type ListenerStats, errorKindOf } from './stats.js';
import type { ConnectionScheduler, ListenerEndpoint } from './virtual-server.js';

/** What an association needs from the UDP listener that opened it. */
export interface AssociationHost {
  readonly vs: ConnectionScheduler;
  readonly stats: ListenerStats;
  readonly idle: IdleSweep;
  /** Send a backend's reply to the client from the service's socket. */
  reply(datagram: Buffer, clientPort: number, clientAddress: string): void;
  /** The association has ended: forget it. */
  release(association: UdpAssociation): void;
}

/**
 * Datagrams kept while the socket to the backend is still connecting (a loop turn); more than
 * this are dropped, as a full socket buffer would drop them.
 */
const MAX_PENDING = 64;

export class UdpAssociation implements IdleMember, OpenConnection {
  /** See IdleSweep: the sweep's tick when a datagram last went either way. */
  idleTick = 0;
  readonly key: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly target: ListenerEndpoint;
  readonly #host: AssociationHost;
  readonly #socket: Socket;
  #pending: Buffer[] | undefined = [];
  #done = false;

  constructor(host: AssociationHost, key: string, clientAddress: string, clientPort: number, target: ListenerEndpoint, family: 4 | 6) {
    this.#host = host;
    this.key = key;
    this.clientAddress = clientAddress;
    this.clientPort = clientPort;
    this.target = target;
    this.#socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    this.#socket.on('message', this.#onReply);
    this.#socket.on('error', this.#onError);
    target.stats.connections++;
    target.stats.active++;
    host.stats.active++;
    host.stats.forwarded++;
    host.idle.add(this);
    this.#socket.connect(target.port, target.host, this.#onConnect);
  }

  get open(): boolean {
    return !this.#done;
  }

  /** A datagram from the client, to the endpoint. */
  send(datagram: Buffer): void {
    this.idleTick = this.#host.idle.tick;
    const pending = this.#pending;
    if (pending !== undefined) {
      if (pending.length < MAX_PENDING) pending.push(datagram);
      return;
    }
    this.#forward(datagram);
  }

  bufferedBytes(): number {
    let bytes = 0;
    for (const d of this.#pending ?? []) bytes += d.length;
    return bytes;
  }

  /** Called by the idle sweep: no datagram either way for the whole udpIdleTimeout. */
  onIdle(): void {
    this.#host.stats.idleTimeouts++;
    this.#close();
  }

  destroy(): void {
    this.#close();
  }

  #onConnect = (): void => {
    const pending = this.#pending;
    this.#pending = undefined;
    if (this.#done) return;
    for (const datagram of pending ?? []) this.#forward(datagram);
  };

  #forward(datagram: Buffer): void {
    if (this.#done) return;
    this.target.stats.bytesIn += datagram.length;
    this.#host.stats.bytesIn += datagram.length;
    this.#socket.send(datagram);
  }

  #onReply = (datagram: Buffer): void => {
    this.idleTick = this.#host.idle.tick;
    this.target.stats.bytesOut += datagram.length;
    this.#host.stats.bytesOut += datagram.length;
    this.#host.reply(datagram, this.clientPort, this.clientAddress);
  };

  /** ECONNREFUSED (nothing listens at the backend's port) and the like end the association. */
  #onError = (err: NodeJS.ErrnoException): void => {
    this.target.stats.errors[errorKindOf(err)]++;
    this.#close();
  };

  #close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#pending = undefined;
    this.#socket.close();
    this.#host.idle.delete(this);
    this.target.stats.active--;
    this.#host.stats.active--;
    this.#host.vs.expire(this.target.addr, 'inactive');
    this.#host.release(this);
  }
}
