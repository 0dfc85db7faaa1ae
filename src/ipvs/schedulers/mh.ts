/**
 * mh, Maglev hashing (net/netfilter/ipvs/ip_vs_mh.c), with the kernel's default table size
 * M = 4093 (CONFIG_IP_VS_MH_TAB_INDEX = 12).
 *
 * Each dest gets a permutation of the table slots: offset = h1(port + addr) mod M and
 * skip = h2(port + addr) mod (M - 1) + 1, where h1 and h2 are hsiphash with the kernel's fixed
 * keys. Weights enter as "turns": last_weight / gcd, shifted right so the largest fits in 6 bits
 * (a dest whose shifted weight is 0 but whose weight is not still gets 1 turn). The table is
 * populated in rounds over the list from the front; in each round every dest with turns >= 1
 * claims `turns` slots, each time its next free slot along its permutation. last_weight is the
 * latest non-zero weight, so a dest edited to weight 0 keeps its slots (lookups landing there fail
 * or fall back), while a dest added with weight 0 gets none.
 * Lookup: slot h1(source address + port) mod M (port only with mh-port); an unavailable dest fails
 * the pick unless mh-fallback is set, which retries h1(r + port + address) for
 * r = (offset + slot) mod M, offset = 0..M-1, stopping at an empty slot.
 * The table is rebuilt on every add, delete and edit; with more than M dests the kernel refuses to
 * rebuild (EINVAL, ignored by its caller), so the previous table stays in use.
 */
import { hsiphashKey, hsiphashU32, rehashFallback } from './hash.js';
import { isAvailable, type Dest, type Flow, type Scheduler, type SchedulerService, type ServiceScheduler } from './types.js';

export const MH_TABLE_SIZE = 4093;
/** IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2. */
const MH_WEIGHT_BITS = 6;

/** generate_hash_secret: fixed keys, so every kernel builds the same table. */
export const MH_KEY1 = hsiphashKey(2654435761, 2654435761);
export const MH_KEY2 = hsiphashKey(2654446892, 2654446892);

/** ip_vs_mh_hashkey: hsiphash of the u32 offset + port + folded address. */
export function mhHash(addrFold: number, port: number, offset: number, key = MH_KEY1): number {
  return hsiphashU32((offset + port + addrFold) >>> 0, key);
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** fls: the 1-based index of the highest set bit, 0 for 0. */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

interface Permutation {
  readonly offset: number;
  readonly skip: number;
}

interface DestSetup {
  readonly dest: Dest;
  perm: number;
  readonly skip: number;
  readonly turns: number;
}

/** Builds the lookup table of a service; permutations depend only on addr:port and are cached. */
class MaglevTable {
  readonly lookup: (Dest | undefined)[] = new Array<Dest | undefined>(MH_TABLE_SIZE).fill(undefined);
  readonly #permutations = new WeakMap<Dest, Permutation>();

  #permutationOf(dest: Dest): Permutation {
    let permutation = this.#permutations.get(dest);
    if (permutation === undefined) {
      permutation = {
        offset: mhHash(dest.ipFold, dest.port, 0, MH_KEY1) % MH_TABLE_SIZE,
        skip: (mhHash(dest.ipFold, dest.port, 0, MH_KEY2) % (MH_TABLE_SIZE - 1)) + 1,
      };
      this.#permutations.set(dest, permutation);
    }
    return permutation;
  }

  /** ip_vs_mh_dest_changed: gcd, shift, permutations, then populate. */
  reassign(service: SchedulerService): void {
    if (service.dests.size > MH_TABLE_SIZE) return;
    let g = 0;
    let maxWeight = 0;
    for (const dest of service.dests) {
      if (dest.lastWeight > 0) g = g > 0 ? gcd(dest.lastWeight, g) : dest.lastWeight;
      if (dest.lastWeight > maxWeight) maxWeight = dest.lastWeight;
    }
    if (g < 1) {
      this.lookup.fill(undefined);
      return;
    }
    const shift = Math.max(0, fls(Math.trunc(maxWeight / g)) - MH_WEIGHT_BITS);
    const setups: DestSetup[] = [];
    for (const dest of service.dests) {
      const { offset, skip } = this.#permutationOf(dest);
      const turns = Math.trunc(dest.lastWeight / g) >> shift || (dest.lastWeight !== 0 ? 1 : 0);
      setups.push({ dest, perm: offset, skip, turns });
    }
    this.#populate(setups);
  }

  /** ip_vs_mh_populate: rounds over the dests in list order until every slot is claimed. */
  #populate(setups: DestSetup[]): void {
    const taken = new Uint8Array(MH_TABLE_SIZE);
    let filled = 0;
    for (;;) {
      for (const setup of setups) {
        if (setup.turns < 1) continue;
        for (let turn = 0; turn < setup.turns; turn++) {
          while (taken[setup.perm] === 1) {
            setup.perm += setup.skip;
            if (setup.perm >= MH_TABLE_SIZE) setup.perm -= MH_TABLE_SIZE;
          }
          taken[setup.perm] = 1;
          this.lookup[setup.perm] = setup.dest;
          if (++filled === MH_TABLE_SIZE) return;
        }
      }
    }
  }
}

export const mh: Scheduler = {
  name: 'mh',
  init(service): ServiceScheduler {
    const table = new MaglevTable();
    table.reassign(service);
    const reassign = (): void => table.reassign(service);
    const usePort = service.flags.has('mh-port');
    const fallback = service.flags.has('mh-fallback');

    return {
      schedule(flow: Flow): Dest | undefined {
        const port = usePort ? flow.srcPort : 0;
        const first = mhHash(flow.srcFold, port, 0) % MH_TABLE_SIZE;
        const dest = table.lookup[first];
        if (dest === undefined) return undefined;
        if (isAvailable(dest)) return dest;
        if (!fallback) return undefined;
        return rehashFallback(first, MH_TABLE_SIZE, (roffset) => table.lookup[mhHash(flow.srcFold, port, roffset) % MH_TABLE_SIZE]);
      },
      addDest: reassign,
      delDest: reassign,
      updDest: reassign,
    };
  },
};
