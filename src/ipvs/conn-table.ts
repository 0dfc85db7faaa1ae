/**
 * The IPVS connection table of one virtual service: each connection's protocol state, its timer,
 * and the active/inactive counter of its dest, moved exactly as the kernel moves them.
 *
 * - A new connection is scheduled (persistence template first), bound to its dest as INACTIVE in
 *   state NONE (ip_vs_conn_new), then its first packet is run through the state table.
 * - TCP (ip_vs_proto_tcp.c, the default, non-"secure_tcp" table, NAT so both directions are seen):
 *   every packet moves the state by its flags (RST before SYN before FIN before ACK) and re-arms
 *   the timer with the new state's timeout. ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK count as
 *   active, every other state as inactive; crossing between the two moves one unit between the
 *   dest's counters.
 * - UDP (ip_vs_proto_udp.c) has one state: always inactive, re-armed to 300 s by every packet.
 * - When a timer fires the connection is unbound from whichever counter it is in, and releases the
 *   template that created it. A template that still controls connections when its own timer
 *   fires is put off by 60 s (see PersistenceTemplate).
 * - With expire_nodest_conn (kube-proxy sets it) a packet for a connection whose dest was deleted
 *   expires the connection at once.
 *
 * Time is the virtual service's clock in seconds; `advance` moves it (default manual clock only)
 * and fires the timers that fall due on the way, each at its own time.
 */
import { Heap } from 'heap-js';
import { KpsimError } from '../errors.js';
import type { Dest } from './schedulers/types.js';
import type { ConnState, PersistenceTemplate, VirtualService } from './virtual-service.js';

export const tcpStates = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT',
  'LAST_ACK', 'LISTEN', 'SYNACK',
] as const;
export type TcpState = (typeof tcpStates)[number];

/** Default timeouts in seconds (tcp_timeouts[]; ipvsadm --timeout shows 900 120 300). */
export const defaultTcpTimeoutsSeconds: Readonly<Record<TcpState, number>> = {
  NONE: 2, ESTABLISHED: 900, SYN_SENT: 120, SYN_RECV: 60, FIN_WAIT: 120, TIME_WAIT: 120, CLOSE: 10,
  CLOSE_WAIT: 60, LAST_ACK: 30, LISTEN: 120, SYNACK: 120,
};
export const DEFAULT_UDP_TIMEOUT_SECONDS = 300;
/** ip_vs_conn_new arms a new entry for 3 s until its first packet has been processed. */
const NEW_CONN_TIMEOUT_SECONDS = 3;

/** tcp_state_active_table (kernels since 4.8 count the SYN states as active). */
const ACTIVE_TCP_STATES: ReadonlySet<TcpState> = new Set<TcpState>(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);

export function isActiveTcpState(state: TcpState): boolean {
  return ACTIVE_TCP_STATES.has(state);
}

/** input: client to real server; output: real server to client. */
export type PacketDirection = 'input' | 'output';

export interface TcpFlags {
  syn?: boolean;
  fin?: boolean;
  ack?: boolean;
  rst?: boolean;
}

type Row = readonly TcpState[];
// The kernel's sXX shorthands (NONE and SYNACK are never a next state of the default table).
const ES = 'ESTABLISHED', SS = 'SYN_SENT', SR = 'SYN_RECV', FW = 'FIN_WAIT', TW = 'TIME_WAIT',
  CL = 'CLOSE', CW = 'CLOSE_WAIT', LA = 'LAST_ACK', LI = 'LISTEN';

/**
 * tcp_states[]: next state by direction and flag, columns in tcpStates order
 * (NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK).
 */
const TCP_STATE_TABLE: Readonly<Record<PacketDirection, Readonly<Record<'syn' | 'fin' | 'ack' | 'rst', Row>>>> = {
  input: {
    syn: [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    fin: [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    ack: [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    rst: [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
  },
  output: {
    syn: [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    fin: [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    ack: [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    rst: [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
  },
};

const STATE_INDEX: ReadonlyMap<TcpState, number> = new Map(tcpStates.map((s, i) => [s, i]));

/** set_tcp_state: the next state; a packet with none of the four flags goes to CLOSE. */
export function nextTcpState(state: TcpState, direction: PacketDirection, flags: TcpFlags): TcpState {
  const row = flags.rst ? 'rst' : flags.syn ? 'syn' : flags.fin ? 'fin' : flags.ack ? 'ack' : undefined;
  if (row === undefined) return 'CLOSE';
  return TCP_STATE_TABLE[direction][row][STATE_INDEX.get(state)!]!;
}

export interface Connection {
  readonly id: number;
  /** The client "ip:port". */
  readonly client: string;
  readonly protocol: 'tcp' | 'udp';
  /** The real server's addr. */
  readonly addr: string;
  /** The TCP state, or "UDP". */
  readonly state: TcpState | 'UDP';
  /** The counter of its dest it is in. */
  readonly counted: ConnState;
  /** When its timer fires, in the service's seconds. */
  readonly expiresAt: number;
  /** Whether a persistence template created it. */
  readonly persistent: boolean;
}

interface ConnEntry {
  readonly id: number;
  readonly client: string;
  readonly protocol: 'tcp' | 'udp';
  readonly dest: Dest;
  readonly template: PersistenceTemplate | undefined;
  state: TcpState | 'UDP';
  counted: ConnState;
  expiresAt: number;
  alive: boolean;
}

interface Timer {
  readonly entry: ConnEntry;
  readonly at: number;
}

export interface ConnTableOptions {
  /** Per-state TCP timeouts in seconds (ipvsadm --set tcp tcpfin udp changes ESTABLISHED, FIN_WAIT, UDP). */
  tcpTimeoutsSeconds?: Partial<Record<TcpState, number>>;
  udpTimeoutSeconds?: number;
  /** net.ipv4.vs.expire_nodest_conn (kernel default off, kube-proxy sets it on). */
  expireNodestConn?: boolean;
}

export class ConnTable {
  readonly #vs: VirtualService;
  readonly #tcpTimeouts: Readonly<Record<TcpState, number>>;
  readonly #udpTimeout: number;
  readonly #expireNodestConn: boolean;
  readonly #entries = new Map<number, ConnEntry>();
  /** Timers by (time, id); a re-armed connection leaves its old timer behind, skipped when due. */
  readonly #timers = new Heap<Timer>((a, b) => a.at - b.at || a.entry.id - b.entry.id);
  #nextId = 1;

  constructor(vs: VirtualService, opts: ConnTableOptions = {}) {
    if (vs.protocol === 'sctp') {
      throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', 'SCTP connection states (ip_vs_proto_sctp.c) are not modelled; use a tcp or udp service', { path: 'protocol' });
    }
    this.#vs = vs;
    this.#tcpTimeouts = { ...defaultTcpTimeoutsSeconds, ...opts.tcpTimeoutsSeconds };
    this.#udpTimeout = opts.udpTimeoutSeconds ?? DEFAULT_UDP_TIMEOUT_SECONDS;
    this.#expireNodestConn = opts.expireNodestConn ?? false;
    for (const [state, seconds] of Object.entries(this.#tcpTimeouts)) {
      if (!(Number.isFinite(seconds) && seconds > 0)) {
        throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `timeout ${String(seconds)} is not a number of seconds > 0`, { path: `tcpTimeoutsSeconds.${state}` });
      }
    }
    if (!(Number.isFinite(this.#udpTimeout) && this.#udpTimeout > 0)) {
      throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `timeout ${String(this.#udpTimeout)} is not a number of seconds > 0`, { path: 'udpTimeoutSeconds' });
    }
  }

  get virtualService(): VirtualService {
    return this.#vs;
  }

  /** The connections alive now, oldest first. */
  connections(): Connection[] {
    this.expireDue();
    return [...this.#entries.values()].map((e) => this.#view(e));
  }

  /**
   * A new connection from `client`: its first packet (a TCP SYN, or a UDP datagram) arrives now.
   * Returns undefined when the service has no dest for it (the kernel answers ICMP unreachable).
   */
  open(client: string): Connection | undefined {
    this.expireDue();
    const assignment = this.#vs.assign(client);
    if (assignment === undefined) return undefined;
    const protocol = this.#vs.protocol === 'udp' ? 'udp' : 'tcp';
    const now = this.#vs.now();
    const entry: ConnEntry = {
      id: this.#nextId++, client, protocol, dest: assignment.dest, template: assignment.template,
      state: protocol === 'udp' ? 'UDP' : 'NONE', counted: 'inactive', expiresAt: now + NEW_CONN_TIMEOUT_SECONDS, alive: true,
    };
    this.#entries.set(entry.id, entry);
    this.#vs.bind(entry.dest.addr, 'inactive');
    assignment.template?.control();
    if (protocol === 'tcp') this.#transition(entry, 'input', { syn: true });
    else this.#rearm(entry, this.#udpTimeout);
    return this.#view(entry);
  }

  /** A packet of the connection passes now; returns the connection as it is afterwards. */
  packet(conn: Connection, direction: PacketDirection, flags: TcpFlags = {}): Connection | undefined {
    this.expireDue();
    const entry = this.#entries.get(conn.id);
    if (entry === undefined) return undefined;
    if (this.#expireNodestConn && !entry.dest.available) {
      this.#expire(entry, this.#vs.now());
      return undefined;
    }
    if (entry.protocol === 'udp') this.#rearm(entry, this.#udpTimeout);
    else this.#transition(entry, direction, flags);
    return this.#view(entry);
  }

  /** The rest of the TCP handshake: the server's SYN-ACK and the client's ACK (to ESTABLISHED). */
  establish(conn: Connection): Connection | undefined {
    const after = this.packet(conn, 'output', { syn: true, ack: true });
    return after && this.packet(after, 'input', { ack: true });
  }

  /**
   * An orderly close started by the client: FIN, the server's FIN, the last ACK (TIME_WAIT).
   * UDP has no close: the entry simply runs out its timeout.
   */
  closeFromClient(conn: Connection): Connection | undefined {
    if (conn.protocol === 'udp') {
      this.expireDue();
      const entry = this.#entries.get(conn.id);
      return entry && this.#view(entry);
    }
    let after = this.packet(conn, 'input', { fin: true, ack: true });
    after = after && this.packet(after, 'output', { fin: true, ack: true });
    return after && this.packet(after, 'input', { ack: true });
  }

  /** Move the (manual) clock forward, firing every timer that falls due, each at its own time. */
  advance(seconds: number): void {
    const end = this.#vs.now() + seconds;
    for (let timer = this.#nextDueTimer(end); timer !== undefined; timer = this.#nextDueTimer(end)) {
      this.#vs.advance(timer.at - this.#vs.now());
      this.#expire(timer.entry, timer.at);
    }
    this.#vs.advance(end - this.#vs.now());
  }

  /** Fire the timers due by the service's clock (for a service whose clock is injected). */
  expireDue(): void {
    const now = this.#vs.now();
    for (let timer = this.#nextDueTimer(now); timer !== undefined; timer = this.#nextDueTimer(now)) {
      this.#expire(timer.entry, timer.at);
    }
  }

  /** The earliest live timer due by `time`, removed from the queue; stale timers are dropped. */
  #nextDueTimer(time: number): Timer | undefined {
    for (let top = this.#timers.peek(); top !== undefined && top.at <= time; top = this.#timers.peek()) {
      this.#timers.pop();
      if (top.entry.alive && top.entry.expiresAt === top.at) return top;
    }
    return undefined;
  }

  #transition(entry: ConnEntry, direction: PacketDirection, flags: TcpFlags): void {
    const state = entry.state as TcpState;
    const next = nextTcpState(state, direction, flags);
    if (next !== state) {
      const counted: ConnState = isActiveTcpState(next) ? 'active' : 'inactive';
      if (counted !== entry.counted) {
        if (counted === 'active') this.#vs.activate(entry.dest.addr);
        else this.#vs.close(entry.dest.addr);
      }
      entry.counted = counted;
      entry.state = next;
    }
    this.#rearm(entry, this.#tcpTimeouts[next]);
  }

  /** ip_vs_conn_put: the timer restarts with the connection's timeout. */
  #rearm(entry: ConnEntry, timeoutSeconds: number): void {
    entry.expiresAt = this.#vs.now() + timeoutSeconds;
    this.#timers.push({ entry, at: entry.expiresAt });
  }

  /** ip_vs_conn_expire: unbind from the dest's counter and from the controlling template. */
  #expire(entry: ConnEntry, at: number): void {
    entry.alive = false;
    this.#entries.delete(entry.id);
    this.#vs.expire(entry.dest.addr, entry.counted);
    entry.template?.release(at);
  }

  #view(entry: ConnEntry): Connection {
    return {
      id: entry.id, client: entry.client, protocol: entry.protocol, addr: entry.dest.addr, state: entry.state,
      counted: entry.counted, expiresAt: entry.expiresAt, persistent: entry.template !== undefined,
    };
  }
}
