/**
 * An nftables rule's matches on the packet's IPv4 source, in the form kept walks ask again
 * cheaply (decisions.ts): as packed source checks (fast-checks.ts), one per network and one per
 * set of address types, whose networks give the DecisionTrie its source classes. Without them
 * every such match was logged as a closure (a CALL decision) that re-read the rule's text for
 * every later packet, and a trie with calls can have no classes: each lookup walked the trie
 * calling closures, and no lookup could be answered from the class table.
 *
 * What kube-proxy's nftables rules read of the source, and how each is packed:
 *
 *   ip saddr 10.244.0.0/16, ip saddr != 10.244.0.0/16   (the local traffic detector: cluster CIDR)
 *   ip saddr 10.244.1.5 jump mark-for-masquerade        (an endpoint's hairpin)
 *   ip saddr != { 203.0.113.0/25 , ... } drop           (load-balancer source ranges)
 *       one packed network check per item (a range is cut into the prefixes that cover it),
 *       asked in order until one holds: the match is whether one did (negated for !=)
 *   fib saddr type local                                (the node's own addresses)
 *       one packed address-type check: the types the items name
 *   ip saddr @affinity-X goto endpoint-Y                (ClientIP affinity: a dynamic set)
 *       not packed: the walk logs it as recent checks, which a packet with every list empty
 *       answers without a call (see NftWalker.loggedDynamicSet)
 *
 * Anything else that reads the source (a named static set, a source port, a concatenation,
 * IPv6) is left to the closures, as before.
 */
import { parseAddressInterval } from '../../nftables/addresses.js';
import type { Operand, Selector, Statement } from '../../nftables/rule-ast.js';
import { ADDRESS_TYPES } from '../../iptables/matches/addrtype.js';
import { addressTypeBit, CHECK, ChecksSlab, emptyRow, type FastChecks, type FastRow, packChecks } from '../fast-checks.js';

/** A match packed: rows of `checks`, each with its flags; the match holds when one row passes (negated: when none does). */
export interface PackedSourceMatch {
  readonly checks: FastChecks;
  /** The rows, in the order the walk asks them. */
  readonly rows: readonly number[];
  readonly flags: readonly number[];
  readonly negated: boolean;
}

type Match = Extract<Statement, { kind: 'match' }>;

/** Not packable: the walk logs the match as a closure. */
const NOT_PACKED = null;

/**
 * The packed form of each IPv4 source match, made when a walk first logs it and kept by the
 * statement (a program reads each rule once, so its statements are the same objects for every walk).
 */
export class NftSourceMatches {
  private readonly slab = new ChecksSlab();
  private readonly packed = new Map<Match, PackedSourceMatch | typeof NOT_PACKED>();

  /** The packed form of `st` (a match that reads the source), or undefined when it has none. */
  of(st: Match): PackedSourceMatch | undefined {
    let got = this.packed.get(st);
    if (got === undefined) {
      got = packMatch(st, this.slab) ?? NOT_PACKED;
      this.packed.set(st, got);
    }
    return got ?? undefined;
  }
}

function packMatch(st: Match, slab: ChecksSlab): PackedSourceMatch | undefined {
  if (st.op !== '==' && st.op !== '!=') return undefined;
  const items = literalItems(st.right);
  if (items === undefined) return undefined;
  const rows = sourceRows(st.left, items);
  if (rows === undefined) return undefined;
  const packed = packChecks(rows, slab);
  return { checks: packed.words, rows: rows.map((_, i) => packed.row + i), flags: rows.map((r) => r.flags), negated: st.op === '!=' };
}

/** The items of a literal operand, unquoted as the walk compares them; undefined for a set reference. */
function literalItems(right: Operand): string[] | undefined {
  if (right.kind === 'ref') return undefined;
  const items = right.kind === 'list' ? right.items : [right.text];
  return items.map((quoted) => {
    const item = quoted.trim();
    return item.startsWith('"') && item.endsWith('"') ? item.slice(1, -1) : item;
  });
}

/** The packed rows for an IPv4 source selector compared with `items`; undefined when it is not one. */
function sourceRows(left: Selector, items: readonly string[]): FastRow[] | undefined {
  if (left.kind === 'payload' && left.base === 'ip' && left.field === 'saddr') {
    const rows: FastRow[] = [];
    for (const item of items) {
      const iv = parseAddressInterval(item);
      // An item that is no address, or an IPv6 one, never holds an IPv4 source: no row.
      if (iv === undefined || iv.family !== 4) continue;
      for (const [net, mask] of prefixesOf(Number(iv.lo), Number(iv.hi))) {
        const row = emptyRow();
        row.flags = CHECK.SRC;
        row.srcNet = net;
        row.srcMask = mask;
        rows.push(row);
      }
    }
    return rows;
  }
  // The walk reads `fib saddr type` (whatever other flags are given) as the source's address
  // type, in lower case, compared with each item.
  if (left.kind === 'fib' && left.result === 'type' && left.flags.includes('saddr')) {
    let types = 0;
    for (const type of ADDRESS_TYPES) if (items.includes(type.toLowerCase())) types |= addressTypeBit(type);
    const row = emptyRow();
    row.flags = CHECK.SRC_TYPE;
    row.srcTypes = types;
    return [row];
  }
  return undefined;
}

/**
 * The prefixes that exactly cover [lo, hi] (IPv4, as unsigned numbers), as (network, mask):
 * the largest aligned block at each step.
 */
export function prefixesOf(lo: number, hi: number): [number, number][] {
  const out: [number, number][] = [];
  let at = lo;
  while (at <= hi) {
    let size = 1;
    // Grow while `at` stays aligned and the block stays within [at, hi].
    while (size < 0x100000000 && at % (size * 2) === 0 && at + size * 2 - 1 <= hi) size *= 2;
    const mask = size === 0x100000000 ? 0 : (~(size - 1)) >>> 0;
    out.push([at >>> 0, mask]);
    at += size;
  }
  return out;
}
