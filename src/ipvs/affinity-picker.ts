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
import { defaultTcpTimeoutsSeconds } from './conn-table.js';
import { type BackendCounts, LingeringCounts, type PickedConnection, type Picker, type ProbabilityRule, randomRuleChooser } from './picker.js';
import type { Rng } from '../util/random.js';

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
  const randomChoice = randomRuleChooser(rules, opts.rng);
  const counts = new LingeringCounts(rules.map((r) => r.addr), opts.lingerSeconds ?? defaultTcpTimeoutsSeconds.TIME_WAIT);
  const recent = new Map<string, Seen>();
  return {
    label: 'iptables random+affinity',
    now: () => counts.now,
    advanceTo: (at: number) => counts.advanceTo(at),
    pick(client: string): PickedConnection | undefined {
      const key = clientAddress(client);
      const seen = recent.get(key);
      // --rcheck --seconds: seen less than TIMEOUT ago (xt_recent compares with time_after_eq).
      const sticky = seen !== undefined && counts.now - seen.at < opts.timeoutSeconds ? seen.addr : undefined;
      const addr = sticky ?? randomChoice();
      if (addr === undefined) return undefined;
      recent.set(key, { addr, at: counts.now });
      return counts.open(addr);
    },
    backends: (): BackendCounts[] => counts.backends(),
  };
}
