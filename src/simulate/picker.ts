/**
 * A Picker chooses the backend of each new connection and is told when connections close and
 * when time passes. It is what the replay simulator drives, so that the proxy modes can be
 * compared on one stream of connections. Each mode's driver (src/node/modes/) makes its own:
 * - `ipvsPicker`: an IPVS virtual service with its connection table (TCP state machine, timers,
 *   persistence templates), so least-connection schedulers see real active/inactive counts;
 * - `ruleWalkPicker` (rule-walk-picker.ts): the compiled rules walked by the tracer with the
 *   kernel's random draw, `recent` lists kept between connections (iptables mode).
 */
import { Heap } from 'heap-js';
import { ConnTable, type Connection, type ConnTableOptions } from '../ipvs/conn-table.js';
import type { VirtualService } from '../ipvs/virtual-service.js';

/** A connection a picker placed. Both calls happen at the picker's current time. */
export interface PickedConnection {
  readonly addr: string;
  /** A packet of the connection passed (keeps an idle connection's entry from timing out). */
  touch(): void;
  /** The connection ended (an orderly close by the client). */
  close(): void;
}

export interface BackendCounts {
  readonly addr: string;
  /** Connections counted active now (IPVS: TCP ESTABLISHED/SYN states). */
  readonly activeConns: number;
  /** Connections counted inactive now (IPVS: closing TCP states and UDP; iptables: TIME_WAIT). */
  readonly inactConns: number;
}

export interface Picker {
  /** What is picking, for reports ("ipvs rr", "iptables random"). */
  readonly label: string;
  /** The picker's time in seconds. */
  now(): number;
  /** Move time forward to `at` (never back), expiring what times out on the way. */
  advanceTo(at: number): void;
  /** Place a new connection from `client` ("ip:port") now; undefined when it is refused. */
  pick(client: string): PickedConnection | undefined;
  /** The backends in the picker's own order, with their current counters. */
  backends(): BackendCounts[];
}

/** An IPVS virtual service (default manual clock) with a connection table in front of it. */
export function ipvsPicker(vs: VirtualService, opts: ConnTableOptions = {}): Picker {
  const table = new ConnTable(vs, opts);
  return {
    label: `ipvs ${vs.scheduler}`,
    now: () => vs.now(),
    advanceTo(at: number): void {
      if (at > vs.now()) table.advance(at - vs.now());
    },
    pick(client: string): PickedConnection | undefined {
      const opened = table.open(client);
      if (opened === undefined) return undefined;
      // A TCP connection completes its handshake at once; UDP has no handshake.
      const conn: Connection = (opened.protocol === 'tcp' ? table.establish(opened) : opened) ?? opened;
      return {
        addr: conn.addr,
        touch: () => { table.packet(conn, 'input', { ack: true }); },
        close: () => { table.closeFromClient(conn); },
      };
    },
    backends: () => {
      table.expireDue();
      return vs.dests().map(({ addr, activeConns, inactConns }) => ({ addr, activeConns, inactConns }));
    },
  };
}

/**
 * Active and inactive connections per backend for pickers without a connection table of their
 * own (iptables mode's conntrack is not modelled beyond this): a connection is active
 * until it closes, then inactive while it lingers (conntrack's TIME_WAIT), then gone.
 */
export class LingeringCounts {
  private readonly order: string[] = [];
  private readonly counts = new Map<string, { active: number; inactive: number }>();
  private readonly lingering = new Heap<{ readonly addr: string; readonly until: number }>((a, b) => a.until - b.until);
  now = 0;

  constructor(addrs: readonly string[], private readonly lingerSeconds: number) {
    for (const addr of addrs) {
      if (this.counts.has(addr)) continue;
      this.counts.set(addr, { active: 0, inactive: 0 });
      this.order.push(addr);
    }
  }

  advanceTo(at: number): void {
    if (at > this.now) this.now = at;
    this.expire();
  }

  /** Count a new connection to `addr` as active; its close() moves it to lingering. */
  open(addr: string): PickedConnection {
    let count = this.counts.get(addr);
    if (count === undefined) {
      // A backend nobody listed (the rules reached an endpoint the caller did not expect).
      this.counts.set(addr, (count = { active: 0, inactive: 0 }));
      this.order.push(addr);
    }
    count.active++;
    let open = true;
    return {
      addr,
      touch: () => undefined,
      close: () => {
        if (!open) return;
        open = false;
        count!.active--;
        count!.inactive++;
        this.lingering.push({ addr, until: this.now + this.lingerSeconds });
      },
    };
  }

  backends(): BackendCounts[] {
    this.expire();
    return this.order.map((addr) => ({ addr, activeConns: this.counts.get(addr)!.active, inactConns: this.counts.get(addr)!.inactive }));
  }

  private expire(): void {
    for (let top = this.lingering.peek(); top !== undefined && top.until <= this.now; top = this.lingering.peek()) {
      this.lingering.pop();
      this.counts.get(top.addr)!.inactive--;
    }
  }
}
