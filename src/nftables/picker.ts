/**
 * kube-proxy's nftables choice of endpoint, as a Picker for the replay simulator
 * (src/ipvs/picker.ts):
 *
 *   ip saddr @affinity-A goto endpoint-A          (one per endpoint, ClientIP affinity only)
 *   numgen random mod N vmap { 0 : goto endpoint-A , 1 : goto endpoint-B , ... }
 *
 * and every endpoint chain runs `update @affinity-X { ip saddr }`. numgen draws one 32-bit
 * random number and scales it to 0..N-1 (reciprocal_scale), so every endpoint is equally
 * likely up to 1/2³²; unlike iptables' chain of statistic rules, one draw decides. An affinity
 * set's element expires `timeout` seconds after the update that last refreshed it (the
 * kernel's nft_set_elem_expired), so a client sticks to its endpoint while it opens
 * connections at least that often; the sets are checked in endpoint order.
 */
import { defaultTcpTimeoutsSeconds } from '../ipvs/conn-table.js';
import { type BackendCounts, LingeringCounts, type PickedConnection, type Picker } from '../ipvs/picker.js';
import { KpsimError } from '../errors.js';
import type { Rng } from '../util/random.js';
import { splitHostPort } from '../util/ip.js';
import { numgenIndex } from './numgen.js';

export interface NftablesPickerOptions {
  /** Random source in [0, 1); one 32-bit draw per new connection, as numgen. */
  readonly rng: Rng;
  /** sessionAffinityConfig.clientIP.timeoutSeconds; 0 or absent: no affinity. */
  readonly affinityTimeoutSeconds?: number;
  /** How long a closed connection stays counted inactive (TCP TIME_WAIT, 120 s). */
  readonly lingerSeconds?: number;
}

/** The client "ip:port" or "[ip6]:port" without its port: affinity sets hold addresses. */
function clientAddress(client: string): string {
  return splitHostPort(client)?.ip ?? client;
}

/**
 * @param endpoints "ip:port" in kube-proxy's order: index i of the numgen map is endpoints[i]
 * (the policy's endpoint list, sorted by endpoint text).
 */
export function nftablesPicker(endpoints: readonly string[], opts: NftablesPickerOptions): Picker {
  endpoints.forEach((addr, i) => {
    if (!splitHostPort(addr)) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${addr} is not "ip:port"`, { path: `endpoints[${i}]` });
  });
  const timeout = opts.affinityTimeoutSeconds ?? 0;
  const counts = new LingeringCounts(endpoints, opts.lingerSeconds ?? defaultTcpTimeoutsSeconds.TIME_WAIT);
  /** One affinity set per endpoint: client address → when it was last updated. */
  const affinity = endpoints.map(() => new Map<string, number>());
  return {
    label: timeout > 0 ? 'nftables numgen+affinity' : 'nftables numgen',
    now: () => counts.now,
    advanceTo: (at: number) => counts.advanceTo(at),
    pick(client: string): PickedConnection | undefined {
      if (endpoints.length === 0) return undefined;
      let index = -1;
      const ip = clientAddress(client);
      if (timeout > 0) {
        for (let i = 0; i < affinity.length && index < 0; i++) {
          const at = affinity[i]!.get(ip);
          if (at !== undefined && counts.now - at < timeout) index = i;
        }
      }
      if (index < 0) index = numgenIndex(Math.floor(opts.rng() * 0x100000000), endpoints.length);
      if (timeout > 0) affinity[index]!.set(ip, counts.now);
      return counts.open(endpoints[index]!);
    },
    backends: (): BackendCounts[] => counts.backends(),
  };
}
