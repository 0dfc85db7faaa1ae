/**
 * One UDP proxy listener: the loopback stand-in for one virtual address of a UDP service port
 * (DNS's 10.96.0.10:53/UDP, say), proxied as kube-proxy's userspace mode proxied UDP: one socket
 * bound at the service address, an association per client address and port (udp-association.ts)
 * with its own socket to the endpoint the scheduler picked, and replies sent back from the
 * service socket.
 *
 * A datagram from a client without an association is a new connection for the scheduler: the
 * listener's verdict (endpoint-choice.ts) applies as it does to a TCP SYN, except that UDP has
 * no reset to send: kube-proxy's REJECT answers with an ICMP port-unreachable, which a userspace
 * socket cannot send, so the datagram is dropped and counted as rejected.
 */
import dgram, { type RemoteInfo, type Socket } from 'node:dgram';
import { KpsimError } from '../errors.js';
import type { ProxierServicePort } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import type { BoundPort, VirtualEntry } from './address-map.js';
import { bindWithFallback } from './bind-fallback.js';
import { IdleSweep } from './idle-sweep.js';
import type { ConnectionDirectory, ListenerSettings } from './listener.js';
import { type AssociationHost, UdpAssociation } from './udp-association.js';
import { VirtualServer, VirtualServerListener } from './virtual-server.js';

export class UdpListener extends VirtualServerListener implements AssociationHost {
  readonly idle: IdleSweep;
  readonly #socket: Socket;
  readonly #associations = new Map<string, UdpAssociation>();
  readonly #directory: ConnectionDirectory;
  #bound = false;

  constructor(entry: VirtualEntry, sp: ProxierServicePort, settings: ListenerSettings, directory: ConnectionDirectory) {
    super(new VirtualServer(entry, sp, settings, directory));
    this.#directory = directory;
    this.idle = new IdleSweep(settings.udpIdleTimeoutMs);
    this.#socket = dgram.createSocket(entry.family === 6 ? 'udp6' : 'udp4');
    this.#socket.on('message', this.#onMessage);
    // A send to a client that has gone (ICMP unreachable) surfaces here; the datagram is lost.
    this.#socket.on('error', noop);
  }

  /** Bind the loopback address: the planned port, else an ephemeral one (and say why). */
  listen(): Promise<BoundPort> {
    return bindWithFallback(this.entry.loopback, (host, port) => this.#bind(host, port), (port, cause) => bindError(this.entry.key, this.entry.loopback.address, port, cause));
  }

  reply(datagram: Buffer, clientPort: number, clientAddress: string): void {
    this.stats.datagramsOut++;
    this.#socket.send(datagram, clientPort, clientAddress);
  }

  release(association: UdpAssociation): void {
    if (this.#associations.get(association.key) === association) this.#associations.delete(association.key);
    this.#directory.release(association);
  }

  /** Close the service socket and every association. */
  close(): Promise<void> {
    this.idle.stop();
    for (const association of [...this.#associations.values()]) association.destroy();
    if (!this.#bound) return Promise.resolve();
    this.#bound = false;
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #onMessage = (datagram: Buffer, client: RemoteInfo): void => {
    const stats = this.stats;
    stats.datagramsIn++;
    const key = `${client.address}:${client.port}`;
    const open = this.#associations.get(key);
    if (open !== undefined) {
      open.send(datagram);
      return;
    }
    stats.accepted++;
    switch (stats.verdict) {
      case 'reject':
        stats.rejected++;
        return;
      case 'drop':
        stats.dropped++;
        return;
      case 'forward': {
        const association = this.#open(key, client);
        if (association === undefined) {
          stats.failed++;
          return;
        }
        association.send(datagram);
      }
    }
  };

  /** Schedule a new client; undefined when the virtual service has no dest to give. */
  #open(key: string, client: RemoteInfo): UdpAssociation | undefined {
    const addr = this.vs.connect(this.virtual.clientKey(client.address, client.port), 'inactive');
    if (addr === undefined) return undefined;
    const target = this.endpoints.get(addr);
    if (target === undefined) throw new Error(`virtual service chose ${addr}, which the listener does not know`);
    const association = new UdpAssociation(this, key, client.address, client.port, target, this.entry.family);
    this.#associations.set(key, association);
    this.#directory.track(association);
    return association;
  }

  #bind(address: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#socket.once('error', onError);
      this.#socket.bind({ address, port, exclusive: true }, () => {
        this.#socket.removeListener('error', onError);
        this.#bound = true;
        resolve(this.#socket.address().port);
      });
    });
  }
}

function bindError(key: string, address: string, port: number, cause: unknown): KpsimError {
  const reason = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new KpsimError('KPSIM_ERR_PROXY_LISTEN', `cannot bind UDP ${joinHostPort(address, port)}: ${reason}`, { object: key }, { cause });
}

function noop(): void {}
