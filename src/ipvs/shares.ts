/**
 * The share of fresh connections each real server of a virtual server gets, by scheduler. What
 * "share" means depends on the scheduler, and the answer says which basis it used:
 *
 * - 'cycle' (rr, wrr, lc, wlc, sed, nq, fo, ovf, dh, lblc, lblcr): the next C new connections
 *   from new clients are scheduled on a copy of the service, starting from its current counters
 *   and scheduler state, each bound to its dest as it would be after its first packet (active
 *   for TCP and SCTP, inactive for UDP), none closing. C is one full scheduling cycle: the sum of
 *   weight/gcd over the available dests (at most MAX_CYCLE), so rr gives 1/n each and wrr gives
 *   weight/sum exactly; least-connection schedulers show how the current counters skew the next
 *   round. Persistence is left out (a new client has no template).
 * - 'sampled' (twos, which draws random numbers): the same over SAMPLED_CONNECTIONS connections
 *   with a fixed seed.
 * - 'buckets' (sh) and 'slots' (mh): the fraction of the 256 sh buckets / 4093 Maglev slots
 *   whose lookup ends on each dest, i.e. the share of a uniform spread of client addresses; a
 *   lookup that ends on an unavailable dest without fallback is "no destination" and counted in
 *   `refused`.
 *
 * For one given client, sh and mh are not random at all: `pickFor` gives the concrete dest.
 */
import { MH_TABLE_SIZE, mhHash } from './schedulers/mh.js';
import { seededRng } from '../util/random.js';
import { type RealServer, type VirtualServer, destAddr } from './table.js';
import { liveServiceOf } from './live-service.js';

export type ShareBasis = 'cycle' | 'sampled' | 'buckets' | 'slots';

export interface SchedulerShares {
  readonly basis: ShareBasis;
  /** Dest "ip:port" → share in [0, 1]; only dests with a share above 0. */
  readonly shares: Readonly<Record<string, number>>;
  /** Share of new connections that find no destination. */
  readonly refused: number;
  /** How many connections, buckets or slots the shares were counted over. */
  readonly over: number;
}

/** Weighted cycles longer than this are cut (weights are 0-65535; kube-proxy only uses 1). */
export const MAX_CYCLE = 10_000;
export const SAMPLED_CONNECTIONS = 10_000;
const SH_BUCKETS = 256;

export function schedulerShares(vs: VirtualServer): SchedulerShares {
  switch (vs.scheduler) {
    case 'sh':
      return hashShares(vs, 'buckets', shRepresentatives(), SH_BUCKETS);
    case 'mh':
      return hashShares(vs, 'slots', mhRepresentatives(), MH_TABLE_SIZE);
    case 'twos':
      return cycleShares(vs, 'sampled', SAMPLED_CONNECTIONS);
    default:
      return cycleShares(vs, 'cycle', cycleLength(vs.dests));
  }
}

/** The concrete dest a client ("ip:port") gets from a fresh copy of the service; undefined: none. */
export function pickFor(vs: VirtualServer, client: string): string | undefined {
  return liveServiceOf(vs).pick(client);
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** One scheduling cycle: sum of weight/gcd over the dests that can take connections. */
export function cycleLength(dests: readonly RealServer[]): number {
  const weights = dests.map((d) => d.weight).filter((w) => w > 0);
  if (weights.length === 0) return 1;
  const g = weights.reduce(gcd);
  return Math.min(MAX_CYCLE, weights.reduce((sum, w) => sum + w / g, 0));
}

function cycleShares(vs: VirtualServer, basis: ShareBasis, connections: number): SchedulerShares {
  const live = liveServiceOf(vs, { withoutPersistence: true, rng: seededRng(0) });
  const state = vs.protocol === 'UDP' ? 'inactive' : 'active';
  const counts = new Map<string, number>();
  let refused = 0;
  for (let i = 0; i < connections; i++) {
    const addr = live.connect(undefined, state);
    if (addr === undefined) refused++;
    else counts.set(addr, (counts.get(addr) ?? 0) + 1);
  }
  return { basis, shares: sharesOf(vs, counts, connections), refused: refused / connections, over: connections };
}

function hashShares(vs: VirtualServer, basis: ShareBasis, representatives: readonly number[], size: number): SchedulerShares {
  const live = liveServiceOf(vs, { withoutPersistence: true });
  const counts = new Map<string, number>();
  let refused = 0;
  for (const fold of representatives) {
    const addr = live.pick(clientWithFold(fold, vs.family));
    if (addr === undefined) refused++;
    else counts.set(addr, (counts.get(addr) ?? 0) + 1);
  }
  return { basis, shares: sharesOf(vs, counts, size), refused: refused / size, over: size };
}

/** Shares in the dests' list order, leaving out those that got nothing. */
function sharesOf(vs: VirtualServer, counts: ReadonlyMap<string, number>, total: number): Record<string, number> {
  const shares: Record<string, number> = {};
  for (const dest of vs.dests) {
    const addr = destAddr(dest);
    const count = counts.get(addr) ?? 0;
    if (count > 0) shares[addr] = count / total;
  }
  return shares;
}

/** A client address whose hash fold is `fold`, port 0 (so sh-port/mh-port add nothing). */
function clientWithFold(fold: number, family: 4 | 6): string {
  if (family === 4) return `${fold >>> 24}.${(fold >>> 16) & 0xff}.${(fold >>> 8) & 0xff}.${fold & 0xff}:0`;
  // An IPv6 address folds to the XOR of its four words: two equal words cancel out, the last
  // carries the value (a leading 2001:db8 keeps it from reading as IPv4-mapped).
  return `[2001:db8::2001:db8:${(fold >>> 16).toString(16)}:${(fold & 0xffff).toString(16)}]:0`;
}

/** GOLDEN_RATIO_32's inverse mod 2^32 (Newton's iteration), to aim at an sh bucket. */
function inverseMod32(odd: number): number {
  let x = odd;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(odd, x)) >>> 0;
  return x >>> 0;
}

let shCache: number[] | undefined;
/** For each sh bucket b, a fold v with hash_32(v, 8) = b: v = (b << 24) · GOLDEN_RATIO_32⁻¹. */
function shRepresentatives(): number[] {
  if (shCache) return shCache;
  const inverse = inverseMod32(0x61c88647);
  shCache = Array.from({ length: SH_BUCKETS }, (_, b) => Math.imul((b << 24) >>> 0, inverse) >>> 0);
  return shCache;
}

let mhCache: number[] | undefined;
/** For each Maglev slot, the first fold (0, 1, 2, ...) whose lookup hash lands on it. */
function mhRepresentatives(): number[] {
  if (mhCache) return mhCache;
  const found = new Array<number>(MH_TABLE_SIZE).fill(-1);
  let missing = MH_TABLE_SIZE;
  for (let v = 0; missing > 0; v++) {
    const slot = mhHash(v, 0, 0) % MH_TABLE_SIZE;
    if (found[slot] === -1) {
      found[slot] = v;
      missing--;
    }
  }
  mhCache = found;
  return mhCache;
}
