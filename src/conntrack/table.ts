/**
 * The kernel's connection tracking table (nf_conntrack) as iptables and nftables modes rely on
 * it, over time. Pure: the clock is passed in (seconds).
 *
 * - A connection's first packet goes through the nat rules; the decision (the DNAT target, or
 *   none) is stored in its entry, and every later packet of the flow follows the entry, not the
 *   rules: an established connection keeps its endpoint after the rules change.
 * - Entries time out unless traffic refreshes them: TCP by state (nf_conntrack_proto_tcp.c,
 *   with kube-proxy's conntrack settings: ESTABLISHED 24 h, CLOSE_WAIT 1 h), UDP 30 s until the
 *   flow has seen a reply and 120 s after (nf_conntrack_udp_timeout, _timeout_stream). A UDP
 *   client that keeps sending keeps its entry forever, even when its endpoint is gone: its
 *   packets go to the dead pod (blackholed) until someone deletes the entry.
 * - A packet REJECTed or DROPped in filter never creates an entry (it is not confirmed).
 */

export type ConntrackProtocol = 'tcp' | 'udp';

export type ConntrackTcpState = 'SYN_SENT' | 'ESTABLISHED' | 'FIN_WAIT' | 'CLOSE_WAIT' | 'LAST_ACK' | 'TIME_WAIT' | 'CLOSE';

/** Timeouts in seconds: the kernel's, with kube-proxy's conntrack defaults where it sets them. */
export interface ConntrackTimeouts {
  readonly tcp: Readonly<Record<ConntrackTcpState, number>>;
  /** nf_conntrack_udp_timeout: no reply seen yet. */
  readonly udp: number;
  /** nf_conntrack_udp_timeout_stream: a reply was seen. */
  readonly udpStream: number;
}

export const DEFAULT_CONNTRACK_TIMEOUTS: ConntrackTimeouts = {
  // kube-proxy sets ESTABLISHED to conntrack.tcpEstablishedTimeout (24 h) and CLOSE_WAIT to
  // conntrack.tcpCloseWaitTimeout (1 h); the others are the kernel's defaults.
  tcp: { SYN_SENT: 120, ESTABLISHED: 86_400, FIN_WAIT: 120, CLOSE_WAIT: 3600, LAST_ACK: 30, TIME_WAIT: 120, CLOSE: 10 },
  udp: 30,
  udpStream: 120,
};

/** The original direction of a flow: what the client sent. */
export interface Flow {
  readonly protocol: ConntrackProtocol;
  /** "ip:port" of the client. */
  readonly src: string;
  /** "ip:port" the client sent to (a service IP and port). */
  readonly dst: string;
}

export interface ConntrackEntry {
  readonly flow: Flow;
  /** The DNAT target "ip:port" (the reply's source); undefined when the rules did not DNAT. */
  readonly dnat: string | undefined;
  state: ConntrackTcpState | 'UDP';
  /** A reply was seen (UDP: the stream timeout applies). */
  replied: boolean;
  /** Seconds. */
  expiresAt: number;
}

export function flowKey(flow: Flow): string {
  return `${flow.protocol} ${flow.src} ${flow.dst}`;
}

export class ConntrackTable {
  readonly #entries = new Map<string, ConntrackEntry>();

  constructor(readonly timeouts: ConntrackTimeouts = DEFAULT_CONNTRACK_TIMEOUTS) {}

  /** The flow's entry, if it has one that has not timed out by `now` (a timed-out one is removed). */
  lookup(flow: Flow, now: number): ConntrackEntry | undefined {
    const key = flowKey(flow);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /** The entry the first packet confirms: TCP in SYN_SENT, UDP unreplied. */
  create(flow: Flow, dnat: string | undefined, now: number): ConntrackEntry {
    const entry: ConntrackEntry = flow.protocol === 'tcp'
      ? { flow, dnat, state: 'SYN_SENT', replied: false, expiresAt: now + this.timeouts.tcp.SYN_SENT }
      : { flow, dnat, state: 'UDP', replied: false, expiresAt: now + this.timeouts.udp };
    this.#entries.set(flowKey(flow), entry);
    return entry;
  }

  /**
   * Traffic on an entry now: `replied` when the other side answered (a TCP handshake that
   * completed, a UDP reply). Refreshes the timeout of the state the flow is then in.
   */
  refresh(entry: ConntrackEntry, now: number, replied: boolean): void {
    if (replied) entry.replied = true;
    if (entry.state === 'UDP') {
      entry.expiresAt = now + (entry.replied ? this.timeouts.udpStream : this.timeouts.udp);
      return;
    }
    if (replied && entry.state === 'SYN_SENT') entry.state = 'ESTABLISHED';
    entry.expiresAt = now + this.timeouts.tcp[entry.state];
  }

  /** An orderly TCP close: the entry lingers in TIME_WAIT. */
  close(entry: ConntrackEntry, now: number): void {
    if (entry.state === 'UDP') return;
    entry.state = 'TIME_WAIT';
    entry.expiresAt = now + this.timeouts.tcp.TIME_WAIT;
  }

  /** `conntrack -D` with a filter: deletes the entries `matches` picks; returns how many. */
  deleteWhere(matches: (entry: ConntrackEntry) => boolean): number {
    let n = 0;
    for (const [key, entry] of this.#entries) {
      if (!matches(entry)) continue;
      this.#entries.delete(key);
      n++;
    }
    return n;
  }

  /** The entries alive at `now` (`conntrack -L`). */
  entries(now: number): ConntrackEntry[] {
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
    return [...this.#entries.values()];
  }
}
