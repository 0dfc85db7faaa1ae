/**
 * The common checks of a chain's rules, packed for speed (see FastChecks), and the packet's
 * side of them: protocol codes, conntrack state bits, address type bits.
 */
import { ADDRESS_TYPES } from '../iptables/matches/addrtype.js';
import { CT_STATES } from '../iptables/matches/conntrack.js';
import type { Flow, PathState } from './walk-state.js';

/** Conntrack states as bits, in CT_STATES order, so a state check is one AND. */
export function ctStateBits(states: Iterable<string>): number {
  let bits = 0;
  for (const state of states) {
    const i = (CT_STATES as readonly string[]).indexOf(state);
    if (i >= 0) bits |= 1 << i;
  }
  return bits;
}

/** The virtual DNAT state, set once a DNAT target has run. */
export const CT_DNAT_BIT = ctStateBits(['DNAT']);

/**
 * The checks kube-proxy's rules are made of, for every rule of a chain, packed into one typed
 * array: 16 words (a 64-byte cache line) per rule, in rule order. Protocol, one IPv4 source
 * and destination network, the destination port range, the mark, the conntrack state and the
 * address types, and a statistic match's probability. A walk tests these without touching the rule's objects, which are scattered
 * over the heap of a big ruleset; only rules whose flags carry SLOW need their closure
 * (`CompiledRule.test`) for what the words cannot say.
 */
export type FastChecks = Uint32Array;

/** Word offsets within a rule's 16. */
const W = {
  FLAGS: 0, PROTO: 1, DST_NET: 2, DST_MASK: 3, SRC_NET: 4, SRC_MASK: 5, DPORT_MIN: 6, DPORT_MAX: 7,
  MARK_VALUE: 8, MARK_MASK: 9, CT: 10, SRC_TYPES: 11, DST_TYPES: 12, RANDOM: 13,
} as const;
const STRIDE = 16;

/** FastChecks.flags bits: which checks a rule has, and which are negated. */
export const CHECK = {
  PROTO: 1, PROTO_NEG: 2, DST: 4, DST_NEG: 8, SRC: 16, SRC_NEG: 32, DPORT: 64, DPORT_NEG: 128,
  MARK: 256, MARK_NEG: 512, CT: 1024, CT_NEG: 2048, SRC_TYPE: 4096, SRC_TYPE_NEG: 8192,
  DST_TYPE: 16384, DST_TYPE_NEG: 32768, SLOW: 65536,
  /** A `statistic --mode random` match, its stored probability in the RANDOM word. */
  RANDOM: 131072, RANDOM_NEG: 262144,
  /** The rule has `recent` steps, or more random steps than the packed one (see CompiledRule). */
  RECENT: 524288, MORE_RANDOM: 1048576,
} as const;

/** Protocol numbers for the fast check; a protocol kpsim never traces gets one no packet has. */
export function protocolCode(name: string): number {
  return name === 'tcp' ? 6 : name === 'udp' ? 17 : name === 'sctp' ? 132 : 255;
}

/** The bit of an address type (ADDRESS_TYPES order), for the addrtype checks. */
export function addressTypeBit(type: string): number {
  return TYPE_BITS.get(type) ?? 0;
}

const TYPE_BITS = new Map(ADDRESS_TYPES.map((type, i) => [type, 1 << i]));

/** One rule's entry in FastChecks, filled while compiling it. */
export interface FastRow {
  flags: number;
  proto: number;
  dstNet: number;
  dstMask: number;
  srcNet: number;
  srcMask: number;
  dportMin: number;
  dportMax: number;
  markValue: number;
  markMask: number;
  ctBits: number;
  srcTypes: number;
  dstTypes: number;
  random: number;
}

export function emptyRow(): FastRow {
  return { flags: 0, proto: 0, dstNet: 0, dstMask: 0, srcNet: 0, srcMask: 0, dportMin: 0, dportMax: 0, markValue: 0, markMask: 0, ctBits: 0, srcTypes: 0, dstTypes: 0, random: 0 };
}

/** Buffers of this many words (256 KiB) are shared by the chains packed into them. */
const SLAB_WORDS = 1 << 16;
/** The first buffer of a slab (4 KiB): each next one twice the last, up to SLAB_WORDS. */
const FIRST_SLAB_WORDS = 1 << 10;

/** Where a chain's rows are: rule i of the chain is row `row + i` of `words`. */
export interface PackedChecks {
  readonly words: FastChecks;
  readonly row: number;
}

/**
 * Hands out rows of a few large buffers to the chains. A Uint32Array of its own per chain
 * meant an ArrayBuffer and a malloc'd store for each of kube-proxy's ~120k small chains at 10k
 * services, which the GC tracks one by one; a view per chain still cost the walk one more
 * object to read (cold memory) per chain entered. A chain keeps the shared buffer (whose
 * header stays in cache) and its first row.
 */
export class ChecksSlab {
  private buffer = new Uint32Array(0);
  private used = 0;

  take(rows: number): PackedChecks {
    const words = rows * STRIDE;
    if (words > SLAB_WORDS / 4) return { words: new Uint32Array(words), row: 0 };
    if (this.used + words > this.buffer.length) {
      // The buffers grow from small: a node traced for one packet compiles a few chains, and a
      // full-size buffer each (a cluster-wide trace makes several tracers per entry node) was
      // most of what such a trace allocated.
      this.buffer = new Uint32Array(Math.min(SLAB_WORDS, Math.max(FIRST_SLAB_WORDS, this.buffer.length * 2, words)));
      this.used = 0;
    }
    const row = this.used / STRIDE;
    this.used += words;
    return { words: this.buffer, row };
  }
}

export function packChecks(rows: readonly FastRow[], slab?: ChecksSlab): PackedChecks {
  const packed = slab ? slab.take(rows.length) : { words: new Uint32Array(rows.length * STRIDE), row: 0 };
  const words = packed.words;
  rows.forEach((r, j) => {
    const o = (packed.row + j) * STRIDE;
    words[o + W.FLAGS] = r.flags; words[o + W.PROTO] = r.proto;
    words[o + W.DST_NET] = r.dstNet; words[o + W.DST_MASK] = r.dstMask;
    words[o + W.SRC_NET] = r.srcNet; words[o + W.SRC_MASK] = r.srcMask;
    words[o + W.DPORT_MIN] = r.dportMin; words[o + W.DPORT_MAX] = r.dportMax;
    words[o + W.MARK_VALUE] = r.markValue; words[o + W.MARK_MASK] = r.markMask;
    words[o + W.CT] = r.ctBits; words[o + W.SRC_TYPES] = r.srcTypes; words[o + W.DST_TYPES] = r.dstTypes;
    words[o + W.RANDOM] = r.random;
  });
  return packed;
}

/** The flags word of row `i` (a rule; see PackedChecks): 0 means no packed check at all. */
export function checkFlags(c: FastChecks, i: number): number {
  return c[i * STRIDE]!;
}

/** The stored probability of row `i`'s packed statistic match (see CHECK.RANDOM). */
export function randomStored(c: FastChecks, i: number): number {
  return c[i * STRIDE + W.RANDOM]!;
}

/** The packed checks that read the packet's source (address and address type), with their negations. */
export const SOURCE_CHECKS = CHECK.SRC | CHECK.SRC_NEG | CHECK.SRC_TYPE | CHECK.SRC_TYPE_NEG;

/**
 * Whether row `i` passes its packed source checks (SOURCE_CHECKS of `flags`): they read the flow
 * alone, so the answer can be asked again for another packet (see decisions.ts).
 */
export function passesSourceChecks(c: FastChecks, i: number, flags: number, flow: Flow): boolean {
  return sourcePasses(c, i, flags, flow.src32, flow.srcTypeBit);
}

/** passesSourceChecks for a source given as its IPv4 address (-1 for IPv6) and address type bit. */
export function sourcePasses(c: FastChecks, i: number, flags: number, src32: number, srcTypeBit: number): boolean {
  const o = i * STRIDE;
  if (flags & CHECK.SRC && (((src32 & c[o + W.SRC_MASK]!) >>> 0) === c[o + W.SRC_NET]) === ((flags & CHECK.SRC_NEG) !== 0)) return false;
  if (flags & CHECK.SRC_TYPE && (((srcTypeBit & c[o + W.SRC_TYPES]!) !== 0) === ((flags & CHECK.SRC_TYPE_NEG) !== 0))) return false;
  return true;
}

/**
 * The IPv4 addresses row `i`'s packed source network holds, as [first, end) (end 2^32 at the
 * top); undefined when its mask is not a prefix (the addresses are then no one interval).
 */
export function sourceInterval(c: FastChecks, i: number): readonly [number, number] | undefined {
  const o = i * STRIDE;
  const mask = c[o + W.SRC_MASK]!;
  const host = (~mask) >>> 0;
  if ((host & (host + 1)) !== 0) return undefined;
  const first = (c[o + W.SRC_NET]! & mask) >>> 0;
  return [first, first + host + 1];
}

/** Whether row `i` passes its packed checks (the caller still runs its closure when SLOW). */
export function passesChecks(c: FastChecks, i: number, flags: number, flow: Flow, state: PathState): boolean {
  const o = i * STRIDE;
  if (flags & CHECK.PROTO && (c[o + W.PROTO] === flow.protoCode) === ((flags & CHECK.PROTO_NEG) !== 0)) return false;
  if (flags & CHECK.DST && (((state.dst32 & c[o + W.DST_MASK]!) >>> 0) === c[o + W.DST_NET]) === ((flags & CHECK.DST_NEG) !== 0)) return false;
  if (flags & CHECK.DPORT) {
    const inRange = state.dport >= c[o + W.DPORT_MIN]! && state.dport <= c[o + W.DPORT_MAX]!;
    if (inRange === ((flags & CHECK.DPORT_NEG) !== 0)) return false;
  }
  if (flags & CHECK.SRC && (((flow.src32 & c[o + W.SRC_MASK]!) >>> 0) === c[o + W.SRC_NET]) === ((flags & CHECK.SRC_NEG) !== 0)) return false;
  if (flags & CHECK.MARK && (((state.mark & c[o + W.MARK_MASK]!) >>> 0) === c[o + W.MARK_VALUE]) === ((flags & CHECK.MARK_NEG) !== 0)) return false;
  if (flags & CHECK.CT && ((((flow.ctBits | (state.dnatDone ? CT_DNAT_BIT : 0)) & c[o + W.CT]!) !== 0) === ((flags & CHECK.CT_NEG) !== 0))) return false;
  if (flags & CHECK.SRC_TYPE && (((flow.srcTypeBit & c[o + W.SRC_TYPES]!) !== 0) === ((flags & CHECK.SRC_TYPE_NEG) !== 0))) return false;
  if (flags & CHECK.DST_TYPE && (((state.dstTypeBit & c[o + W.DST_TYPES]!) !== 0) === ((flags & CHECK.DST_TYPE_NEG) !== 0))) return false;
  return true;
}
