/**
 * A plain packet's destination side, read for a kept walk's lookup by both tracers (iptables
 * and nftables mode): no option that needs the whole flow (recent lists, conntrack state,
 * interfaces, semantics), and both addresses IPv4 in normal form (read as numbers) or seen
 * before, of one family. What a lookup needs is kept in a typed array: the source's IPv4 number
 * and INFO_* bits, the destination's IPv4 number, the addresses' ids when they were looked up
 * (-1 when not), the side's key, mark and origin. Nothing is allocated, and for IPv4 no map and
 * no facts object is read: the class table is keyed by the destination's number (class-table.ts).
 */
// In a typed array rather than fields or a closure's variables: a lookup writes them all, and
// writes to a long-lived object pay the GC's write barrier (and a heap number for an address
// past 2^30), which made lookups several times slower while the GC was marking.
import type { SeededDraws } from '../util/random.js';
import type { LocalAddresses } from './addresses.js';
import { type AddressFacts, type AddressFactsCache, CELL_INFO, CELL_STRIDE, INFO_IPV6, INFO_LOCAL, INFO_TYPE, v4InfoAt } from './address-facts.js';
import { type ClassTable, NOT_FLAT } from './class-table.js';
import { MISS, UNPREDICTABLE } from './decisions.js';
import type { Packet, TraceOptions } from './types.js';
import { slotKey } from './walk-cache.js';

/**
 * The fields: the addresses' ids (-1: not looked up), origin (1: the node); 1 when both are
 * IPv4, then the source's address and INFO_* bits; the side as the class table reads it
 * (ClassTable.sideRegionAt: the destination's address, key, mark). Addresses as their 32 bits
 * in an Int32, read where they are used: one past 2^30 given as an argument is a heap number.
 */
const DST = 0;
const SRC = 1;
const FROM_NODE = 2;
const V4 = 3;
const SRC32 = 4;
const SRC_INFO = 5;
const DST32 = 6;
const KEY = 7;
const MARK = 8;
const FIELDS = 9;

/**
 * plainIPv4Value (util/ip.ts) written into `out[at]` as the address's 32 bits (an Int32) rather
 * than returned: a number past 2^30 returned from a call is a heap number, made per lookup for
 * a source from 128.0.0.0 up. False (out[at] unchanged) when `text` is not an IPv4 address in
 * normal form.
 */
export function plainIPv4Into(text: string, out: Int32Array, at: number): boolean {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  const end = text.length;
  for (let i = 0; i < end; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0) return false;
      value = ((value << 8) | octet) | 0;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    const digit = ch - 48;
    if (digit < 0 || digit > 9 || (digits > 0 && octet === 0)) return false;
    octet = octet * 10 + digit;
    digits++;
    if (octet > 255) return false;
  }
  if (dots !== 3 || digits === 0) return false;
  out[at] = (value << 8) | octet;
  return true;
}

export function isPort(value: unknown, allowZero: boolean): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value <= 65535 && (allowZero ? value >= 0 : value >= 1);
}

export class PlainPacket {
  private readonly fields = new Int32Array(FIELDS);

  constructor(private readonly facts: AddressFactsCache, private readonly local: LocalAddresses) {}

  /**
   * Read the packet's side; false when it is not plain (it then takes the way of every packet).
   * `lookupAllowed`: a caller's recent lookup is no reason to refuse (the caller asks it itself).
   */
  read(packet: Packet, opts: TraceOptions, lookupAllowed: boolean): boolean {
    if (opts.recent !== undefined || (opts.recentLookup !== undefined && !lookupAllowed) || opts.ctstate !== undefined || opts.inInterface !== undefined
      || opts.outInterface !== undefined || opts.semantics !== undefined) return false;
    const proto = packet.proto;
    const protoCode = proto === 'tcp' ? 6 : proto === 'udp' ? 17 : proto === 'sctp' ? 132 : 0;
    const { src, dst, dport, sport } = packet;
    if (protoCode === 0 || typeof src !== 'string' || typeof dst !== 'string') return false;
    if (!isPort(dport, false) || (sport !== undefined && !isPort(sport, false))) return false;
    const f = this.fields;
    let srcInfo: number;
    if (plainIPv4Into(src, f, SRC32) && plainIPv4Into(dst, f, DST32)) {
      srcInfo = v4InfoAt(this.local, f, SRC32);
      f[SRC] = -1;
      f[DST] = -1;
      f[V4] = 1;
    } else {
      // IPv6, a family each, or an address not in normal form: known addresses only (they are
      // normal), of one family.
      const facts = this.facts;
      const dstId = facts.idOf(dst);
      const srcId = facts.idOf(src);
      if (dstId === undefined || srcId === undefined) return false;
      const cells = facts.cells;
      srcInfo = cells[srcId * CELL_STRIDE + CELL_INFO]!;
      if ((srcInfo & INFO_IPV6) !== (cells[dstId * CELL_STRIDE + CELL_INFO]! & INFO_IPV6)) return false;
      f[SRC] = srcId;
      f[DST] = dstId;
      f[V4] = 0;
      f[SRC32] = -1;
      f[DST32] = -1;
    }
    f[SRC_INFO] = srcInfo;
    const fromNode = opts.fromNode ?? (srcInfo & INFO_LOCAL) !== 0;
    f[FROM_NODE] = fromNode ? 1 : 0;
    f[KEY] = slotKey(protoCode, dport, fromNode);
    f[MARK] = opts.mark ?? 0;
    return true;
  }

  /** The node sends it (OUTPUT), else PREROUTING. */
  get fromNode(): boolean {
    return this.fields[FROM_NODE] !== 0;
  }

  /** The side's slotKey. */
  get key(): number {
    return this.fields[KEY]!;
  }

  /** The mark, unsigned. */
  get mark(): number {
    return this.fields[MARK]! >>> 0;
  }

  /** The source's IPv4 address (unsigned), or -1 (IPv6): what a trie's source classes read. */
  get src32(): number {
    return this.fields[V4] !== 0 ? this.fields[SRC32]! >>> 0 : -1;
  }

  /** The source's address type bit. */
  get srcTypeBit(): number {
    return this.fields[SRC_INFO]! & INFO_TYPE;
  }

  /** The source's facts, the address interned when new. */
  srcFacts(packet: Packet): AddressFacts {
    const id = this.fields[SRC]!;
    return id >= 0 ? this.facts.byIdOf(id) : this.facts.of(packet.src);
  }

  /** The destination's facts, the address interned when new. */
  dstFacts(packet: Packet): AddressFacts {
    const id = this.fields[DST]!;
    return id >= 0 ? this.facts.byIdOf(id) : this.facts.of(packet.dst);
  }

  /**
   * The kept answer read from the class table alone (`which` 0: every outcome, 1: samples,
   * drawn with `draws`): undefined when the table does not have it.
   */
  fromTable(table: ClassTable, which: 0 | 1, draws: SeededDraws | undefined): unknown {
    const f = this.fields;
    if (f[V4] === 0) return undefined;
    const region = table.sideRegionAt(f, DST32, which);
    if (region < 0) return undefined;
    const found = table.answerAt(region, f, SRC32, f[SRC_INFO]! & INFO_TYPE, draws);
    return found === NOT_FLAT || found === MISS || found === UNPREDICTABLE ? undefined : found;
  }

  /** Record the region of the side's trie (`which` as fromTable), so that the next lookup reads the table (IPv4 only). */
  recordRegion(table: ClassTable, which: 0 | 1, region: number): void {
    const f = this.fields;
    if (f[V4] !== 0) table.setSideRegion(f[DST32]!, f[KEY]!, f[MARK]!, which, region);
  }
}
