/**
 * The proxy's counters: per endpoint (summed over every listener that uses it) and per listener.
 * The hot path bumps plain numbers on these objects; `stats()` hands out copies.
 */
import type { Protocol } from '../model/types.js';
import type { HostPort, VirtualKind } from './address-map.js';

/** Why a connection to an endpoint failed. */
export type EndpointErrorKind = 'refused' | 'timeout' | 'reset' | 'other';

export interface EndpointErrors {
  /** The dial was refused (ECONNREFUSED). */
  refused: number;
  /** The dial did not complete within its timeout. */
  timeout: number;
  /** The endpoint reset an open connection (ECONNRESET, EPIPE) or reset the dial. */
  reset: number;
  other: number;
}

export interface EndpointStats {
  /** The cluster address, "10.244.0.5:8080". */
  readonly endpoint: string;
  readonly podName?: string;
  /** Where the proxy dials it (TCP). */
  readonly backend: HostPort;
  /** Where the proxy sends its UDP datagrams, when it serves a UDP port. */
  readonly udpBackend?: HostPort;
  /** Connections that reached the endpoint (UDP: associations opened to it). */
  connections: number;
  /** Of those, open now. */
  active: number;
  /** Bytes sent to the endpoint (client → endpoint). */
  bytesIn: number;
  /** Bytes received from the endpoint (endpoint → client). */
  bytesOut: number;
  readonly errors: EndpointErrors;
  /** No listener sends new connections to it any more; its open ones may still be finishing. */
  draining: boolean;
}

export interface ListenerStats {
  /** The address-map key, "ClusterIP 10.96.0.10:80/TCP". */
  readonly key: string;
  readonly kind: VirtualKind;
  readonly spn: string;
  readonly protocol: Protocol;
  readonly virtual: HostPort;
  /** Where it listens (set once bound). */
  loopback: HostPort;
  /** What the listener does with a new connection now: forward, reject or drop. */
  verdict: 'forward' | 'reject' | 'drop';
  accepted: number;
  /** Connections open now (dialing or relaying). */
  active: number;
  /** Connections that reached an endpoint. */
  forwarded: number;
  /** Answered with a reset: no endpoints (REJECT). */
  rejected: number;
  /** Closed at once: traffic policy Local with no local endpoint (DROP). */
  dropped: number;
  /** Reset because every dial attempt failed, or no endpoint was available any more. */
  failed: number;
  /** Dial attempts that failed and were retried on another endpoint. */
  retries: number;
  /** Closed by the idle timeout. */
  idleTimeouts: number;
  /** The client reset the connection. */
  clientResets: number;
  bytesIn: number;
  bytesOut: number;
  /** UDP: datagrams received from clients (every one, forwarded or not). */
  datagramsIn: number;
  /** UDP: replies relayed back to clients from the service address. */
  datagramsOut: number;
}

export interface ProxyStats {
  readonly listeners: ListenerStats[];
  readonly endpoints: EndpointStats[];
  /** Connections open now, over all listeners. */
  readonly active: number;
  /** Bytes held in the proxy's socket buffers now (see Proxy.bufferedBytes). */
  readonly bufferedBytes: number;
  /** With several workers: each one's share and its use of the scheduling log (op-log.ts). */
  readonly workers?: WorkerStats[];
}

export interface WorkerStats {
  readonly worker: number;
  /** TCP connections it accepted. */
  readonly accepted: number;
  /** Of those, open now. */
  readonly active: number;
  /** Scheduling-log entries it wrote: one per connection scheduled, going inactive, or gone. */
  readonly written: number;
  /** Entries of the other workers (and endpoint changes) it applied to its replicas. */
  readonly replayed: number;
  /** Times it found the log's lock held and waited. */
  readonly lockWaits: number;
}

export function newEndpointStats(endpoint: string, backend: HostPort, podName: string | undefined, udpBackend?: HostPort): EndpointStats {
  return {
    endpoint,
    ...(podName !== undefined ? { podName } : {}),
    backend,
    ...(udpBackend !== undefined ? { udpBackend } : {}),
    connections: 0,
    active: 0,
    bytesIn: 0,
    bytesOut: 0,
    errors: { refused: 0, timeout: 0, reset: 0, other: 0 },
    draining: false,
  };
}

export function copyEndpointStats(s: EndpointStats): EndpointStats {
  return { ...s, errors: { ...s.errors } };
}

/** The counter a socket error belongs to. */
export function errorKindOf(err: NodeJS.ErrnoException): EndpointErrorKind {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    default:
      return 'other';
  }
}
