/**
 * What a tracer knows of the addresses it has seen: each interned once (an id), with its words,
 * type and locality, and the numbers a plain packet's lookup reads laid out in a typed array.
 */
import { type Words } from '../util/ip.js';
import type { AddressCache, LocalAddresses } from './addresses.js';
import { addressTypeBit } from './fast-checks.js';
import type { CacheSlot } from './walk-cache.js';
import type { Flow } from './walk-state.js';

/** What a packet's addresses are to the node. */
export interface AddressFacts {
  /** The address interned: a small integer of its own (the class table's key for a destination). */
  readonly id: number;
  readonly words: Words;
  /** The IPv4 address as a number (-1 for IPv6), as Flow.src32. */
  readonly src32: number;
  readonly type: string;
  readonly typeBit: number;
  readonly local: boolean;
  /** The last flow made with this address as its source and the default options (see flowOf). */
  flow: Flow | undefined;
  /** The kept walks to this address (see walk-cache.ts). */
  slots: Map<number, CacheSlot> | undefined;
  /** A flow from this address for recent checks, which read only its address (see recentFlowOf). */
  recentFlow: Flow | undefined;
}

/**
 * An address's words, type and locality, worked out once: each trace looked them up in four
 * maps and sets for its source and destination, a tenth of a sampled walk at 10k services.
 *
 * Each address is interned: its id is what the map holds, and what a plain packet's lookup
 * needs of it (the source's IPv4 address, type and locality; the destination's id, the class
 * table's key) is laid out in a typed array by id, so that the lookup reads no facts object:
 * an address's numbers side by side (CELL_STRIDE), one cache line where two arrays were two
 * (a lookup at 10k services is bound by memory latency: each line it reads is a likely miss).
 */
export class AddressFactsCache {
  private readonly ids = new Map<string, number>();
  private byId: AddressFacts[] = [];
  /** By id (CELL_STRIDE numbers each): INFO_* bits with the type bit, and the IPv4 address as an Int32 (its bits). */
  cells = new Int32Array(1024 * CELL_STRIDE);

  /** `onClear`: the ids were let go (and will be given again). */
  constructor(private readonly addresses: AddressCache, private readonly local: LocalAddresses, private readonly onClear: () => void) {}

  /** An address's id when it was seen before: a string found here is a normalised address. */
  idOf(text: string): number | undefined {
    return this.ids.get(text);
  }

  /** An address's facts when it was seen before: a string found here is a normalised address. */
  known(text: string): AddressFacts | undefined {
    const id = this.ids.get(text);
    return id === undefined ? undefined : this.byId[id];
  }

  of(ip: string): AddressFacts {
    const id = this.ids.get(ip);
    if (id !== undefined) return this.byId[id]!;
    if (this.ids.size >= 100_000) {
      // Bounded, as AddressCache is.
      this.ids.clear();
      this.byId = [];
      this.onClear();
    }
    const words = this.addresses.words(ip);
    const type = this.local.addressType(ip, words);
    const facts: AddressFacts = {
      id: this.byId.length, words, src32: words.length === 1 ? words[0]! : -1, type, typeBit: addressTypeBit(type), local: this.local.isLocal(ip, words),
      flow: undefined, slots: undefined, recentFlow: undefined,
    };
    const at = facts.id * CELL_STRIDE;
    if (at >= this.cells.length) {
      const cells = new Int32Array(this.cells.length * 2);
      cells.set(this.cells);
      this.cells = cells;
    }
    this.cells[at + CELL_V4] = facts.src32 | 0;
    this.cells[at + CELL_INFO] = facts.typeBit | (facts.local ? INFO_LOCAL : 0) | (facts.src32 < 0 ? INFO_IPV6 : 0);
    this.byId.push(facts);
    this.ids.set(ip, facts.id);
    return facts;
  }

  /** The facts of an id (given by idOf). */
  byIdOf(id: number): AddressFacts {
    return this.byId[id]!;
  }
}

/**
 * An IPv4 address's INFO_* bits (as AddressFactsCache keeps them: its type bit, and whether it
 * is the node's), from its number alone.
 */
export function v4Info(local: LocalAddresses, value: number): number {
  return addressTypeBit(local.addressTypeV4(value)) | (local.isLocalV4(value) ? INFO_LOCAL : 0);
}

/**
 * v4Info of the IPv4 address kept as its 32 bits (an Int32) in `cells[at]`, read there: an
 * address past 2^30 given as an argument is a heap number made per call (a plain packet's
 * lookup from 128.0.0.0 up allocated one), and asked of a Set, another.
 */
export function v4InfoAt(local: LocalAddresses, cells: Int32Array, at: number): number {
  const bits = cells[at]!;
  const isLocal = local.isLocalV4Bits(bits);
  const typeBit = bits === 0 || bits === -1 ? BROADCAST_BIT : bits >>> 28 === 0xe ? MULTICAST_BIT : isLocal ? LOCAL_BIT : UNICAST_BIT;
  return isLocal ? typeBit | INFO_LOCAL : typeBit;
}

const BROADCAST_BIT = addressTypeBit('BROADCAST');
const MULTICAST_BIT = addressTypeBit('MULTICAST');
const LOCAL_BIT = addressTypeBit('LOCAL');
const UNICAST_BIT = addressTypeBit('UNICAST');

/** AddressFactsCache.cells: an address's INFO_* bits, then its IPv4 address. */
export const CELL_INFO = 0;
export const CELL_V4 = 1;
export const CELL_STRIDE = 2;

/** An address's INFO_* bits: a node's own address; an IPv6 address. Below them, the type bit. */
export const INFO_LOCAL = 1 << 20;
export const INFO_IPV6 = 1 << 21;
export const INFO_TYPE = INFO_LOCAL - 1;
