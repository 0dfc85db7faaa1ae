/**
 * A Picker chooses the backend of each new connection and is told when connections close and
 * when time passes. It is what the replay simulator drives, so different proxy modes can be
 * compared on one stream of connections:
 * - `ipvsPicker`: an IPVS virtual service with its connection table (TCP state machine, timers,
 *   persistence templates), so least-connection schedulers see real active/inactive counts;
 * - `probabilityPicker`: kube-proxy's iptables mode, a chain of `-m statistic --mode random
 *   --probability p` rules tried in order, the first that matches wins.
 */
import { Heap } from 'heap-js';
import { KpsimError } from '../errors.js';
import { splitHostPort } from '../util/ip.js';
import { ConnTable, defaultTcpTimeoutsSeconds, type Connection, type ConnTableOptions } from './conn-table.js';
import type { Rng } from '../util/random.js';
import type { VirtualService } from './virtual-service.js';

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

/** One `-m statistic --mode random --probability p -j KUBE-SEP-…` rule; p = 1 means no statistic match. */
export interface ProbabilityRule {
  readonly addr: string;
  readonly probability: number;
}

/** kube-proxy's chain for n endpoints: endpoint i (0-based) matches with probability 1/(n - i). */
export function kubeProxyProbabilities(addrs: readonly string[]): ProbabilityRule[] {
  return addrs.map((addr, i) => ({ addr, probability: 1 / (addrs.length - i) }));
}

export interface ProbabilityPickerOptions {
  /** Random source in [0, 1); draws 31 random bits per statistic rule, as xt_statistic does. */
  readonly rng: Rng;
  /** How long a closed connection stays (conntrack's TCP TIME_WAIT, 120 s), counted inactive. */
  readonly lingerSeconds?: number;
}

/**
 * iptables' random endpoint choice: the rules are tried in order and the first whose statistic
 * matches wins; a rule with probability 1 always matches. xt_statistic keeps the probability as a
 * 31-bit fraction (iptables stores lround(p * 2^31)) and matches when a random 31-bit number is
 * below it, which is why iptables-save prints 0.33333333349 for 1/3.
 */
export function probabilityPicker(rules: readonly ProbabilityRule[], opts: ProbabilityPickerOptions): Picker {
  rules.forEach((rule, i) => {
    if (!splitHostPort(rule.addr)) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${rule.addr} is not "ip:port"`, { path: `rules[${i}].addr` });
    if (!(rule.probability >= 0 && rule.probability <= 1)) {
      throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `probability ${String(rule.probability)} is not between 0 and 1`, { path: `rules[${i}].probability` });
    }
  });
  const choose = randomRuleChooser(rules, opts.rng);
  const counts = new LingeringCounts(rules.map((r) => r.addr), opts.lingerSeconds ?? defaultTcpTimeoutsSeconds.TIME_WAIT);
  return {
    label: 'iptables random',
    now: () => counts.now,
    advanceTo: (at: number) => counts.advanceTo(at),
    pick(): PickedConnection | undefined {
      const addr = choose();
      return addr === undefined ? undefined : counts.open(addr);
    },
    backends: () => counts.backends(),
  };
}

/** The walk down a chain of statistic rules: the first whose 31-bit draw passes wins. */
export function randomRuleChooser(rules: readonly ProbabilityRule[], rng: Rng): () => string | undefined {
  const thresholds = rules.map((rule) => (rule.probability >= 1 ? Infinity : Math.round(rule.probability * 0x80000000)));
  return () => {
    for (let i = 0; i < rules.length; i++) {
      const threshold = thresholds[i]!;
      if (threshold !== Infinity && Math.floor(rng() * 0x80000000) >= threshold) continue;
      return rules[i]!.addr;
    }
    return undefined;
  };
}

/**
 * Active and inactive connections per backend for the iptables pickers: a connection is active
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
    const count = this.counts.get(addr)!;
    count.active++;
    let open = true;
    return {
      addr,
      touch: () => undefined,
      close: () => {
        if (!open) return;
        open = false;
        count.active--;
        count.inactive++;
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
