/**
 * kube-proxy's iptables choice of endpoint with ClientIP session affinity, as a Picker for the
 * replay simulator. The service chain first checks, for every endpoint in order,
 *
 *   -m recent --name KUBE-SEP-X --rcheck --seconds TIMEOUT --reap -j KUBE-SEP-X
 *
 * (the client's address was set in that endpoint's list less than TIMEOUT seconds ago), then
 * falls through the `-m statistic --mode random` rules; every KUBE-SEP chain runs
 * `-m recent --name KUBE-SEP-X --set`, which records the client anew. So a client sticks to its
 * endpoint while it keeps opening connections at least every TIMEOUT seconds.
 *
 * The random part is the same draw as picker.ts's probabilityPicker (31-bit fractions), and closed
 * connections linger as inactive for TIME_WAIT like there, so the two are comparable.
 */
import { Heap } from 'heap-js';
import { defaultTcpTimeoutsSeconds } from './conn-table.js';
import type { BackendCounts, PickedConnection, Picker, ProbabilityRule } from './picker.js';
import type { Rng } from './schedulers/random.js';

export interface AffinityPickerOptions {
  readonly rng: Rng;
  /** sessionAffinityConfig.clientIP.timeoutSeconds. */
  readonly timeoutSeconds: number;
  /** How long a closed connection stays counted inactive (TCP TIME_WAIT, 120 s). */
  readonly lingerSeconds?: number;
}

interface Seen {
  readonly addr: string;
  at: number;
}

/** The client "ip:port" or "[ip6]:port" without its port: recent lists key on the address. */
function clientAddress(client: string): string {
  const bracket = /^\[([^\]]+)\]:\d+$/.exec(client);
  if (bracket) return bracket[1]!;
  const colon = client.lastIndexOf(':');
  return colon < 0 ? client : client.slice(0, colon);
}

export function affinityPicker(rules: readonly ProbabilityRule[], opts: AffinityPickerOptions): Picker {
  const order = [...new Set(rules.map((r) => r.addr))];
  const counts = new Map(order.map((addr) => [addr, { active: 0, inactive: 0 }]));
  const thresholds = rules.map((r) => (r.probability >= 1 ? Infinity : Math.round(r.probability * 0x80000000)));
  const recent = new Map<string, Seen>();
  const linger = opts.lingerSeconds ?? defaultTcpTimeoutsSeconds.TIME_WAIT;
  const lingering = new Heap<{ readonly addr: string; readonly until: number }>((a, b) => a.until - b.until);
  let now = 0;

  const expireLingering = (): void => {
    for (let top = lingering.peek(); top !== undefined && top.until <= now; top = lingering.peek()) {
      lingering.pop();
      counts.get(top.addr)!.inactive--;
    }
  };

  const randomChoice = (): string | undefined => {
    for (let i = 0; i < rules.length; i++) {
      const threshold = thresholds[i]!;
      if (threshold !== Infinity && Math.floor(opts.rng() * 0x80000000) >= threshold) continue;
      return rules[i]!.addr;
    }
    return undefined;
  };

  return {
    label: 'iptables random+affinity',
    now: () => now,
    advanceTo(at: number): void {
      if (at > now) now = at;
      expireLingering();
    },
    pick(client: string): PickedConnection | undefined {
      const key = clientAddress(client);
      const seen = recent.get(key);
      // --rcheck --seconds: seen less than TIMEOUT ago (xt_recent compares with time_after_eq).
      const sticky = seen !== undefined && now - seen.at < opts.timeoutSeconds ? seen.addr : undefined;
      const addr = sticky ?? randomChoice();
      if (addr === undefined) return undefined;
      recent.set(key, { addr, at: now });
      const count = counts.get(addr)!;
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
          lingering.push({ addr, until: now + linger });
        },
      };
    },
    backends: (): BackendCounts[] => {
      expireLingering();
      return order.map((addr) => ({ addr, activeConns: counts.get(addr)!.active, inactConns: counts.get(addr)!.inactive }));
    },
  };
}
