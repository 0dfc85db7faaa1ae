/**
 * A per-chain index that finds the rules a packet can match without looking at all of them,
 * while keeping iptables' first-match order.
 *
 * A rule "pins" a packet when its spec makes the destination port, protocol and (optionally)
 * destination address necessary: `-d 172.30.0.41/32 -p tcp -m tcp --dport 80` pins
 * (172.30.0.41, tcp, 80); `-p tcp -m tcp --dport 30001` and `-d 127.0.0.0/8 -p tcp --dport
 * 30001` pin (any address, tcp, 30001). Such a rule can only match packets with that key, so it
 * goes into a hash map under the key. Every other rule stays in an ordered list. A lookup
 * merges the map's candidates for the packet's exact key and its any-address key with the
 * ordered list, by rule position: the caller then evaluates the rules in exactly the order the
 * kernel would, skipping only rules that could not have matched.
 *
 * kube-proxy's KUBE-SERVICES (one rule per service port and VIP) and KUBE-NODEPORTS (one per
 * node port) are almost entirely pinned, so a lookup there costs a couple of rules. Lookups
 * allocate nothing once a key has been seen: merged lists are kept beside the buckets.
 */
import { hostOf, isHostAddress } from './rule-values.js';
import type { RuleSpec } from './rule-spec.js';

const PROTOCOL_CODES: Readonly<Record<string, number>> = { tcp: 6, udp: 17, sctp: 132 };

/** Below this many rules a chain is scanned whole: cheaper than the lookups. */
const SMALL_CHAIN = 12;

/** What a rule pins: protocol and port, and the destination address when it is one host. */
export interface PinnedKey {
  /** undefined: any address. */
  readonly dst: string | undefined;
  readonly proto: string;
  readonly dport: number;
}

/** The key that a rule pins, or undefined when its matches leave protocol or port open. */
export function pinnedKeyOf(spec: RuleSpec): PinnedKey | undefined {
  const protocol = spec.protocol;
  if (!protocol || protocol.negated || PROTOCOL_CODES[protocol.name] === undefined) return undefined;
  let dport: number | undefined;
  for (const match of spec.matches) {
    if (match.kind === 'ports' && match.module === protocol.name && match.dport && !match.dport.negated
      && match.dport.range.min === match.dport.range.max) {
      dport = match.dport.range.min;
      break;
    }
  }
  if (dport === undefined) return undefined;
  const destination = spec.destination;
  // A network, a negation or a list still leaves protocol and port necessary: the any-address
  // bucket holds such rules, and the full match decides the address.
  if (!destination || destination.negated || destination.addresses.length !== 1 || !isHostAddress(destination.addresses[0]!)) {
    return { dst: undefined, proto: protocol.name, dport };
  }
  return { dst: hostOf(destination.addresses[0]!), proto: protocol.name, dport };
}

/**
 * The index of a chain whose rules' specs are `specs`: pinned keys are read only for a chain
 * big enough to be indexed (most kube-proxy chains are scanned whole).
 */
export function indexChain(specs: readonly RuleSpec[], options: { useIndex?: boolean } = {}): ChainIndex {
  const whole = specs.length < SMALL_CHAIN || options.useIndex === false;
  return new ChainIndex(whole ? new Array<undefined>(specs.length) : specs.map(pinnedKeyOf), options);
}

/** Rules under one key, and their merge with the rules that must always be looked at. */
interface Bucket {
  /** (protocol, port) of the key, see portKey. */
  readonly port: number;
  readonly own: number[];
  /** exact bucket: own + the any-address bucket + unpinned; any-address bucket: own + unpinned. */
  merged: readonly number[] | undefined;
  /** The next bucket of the same address (another port): usually there is none. */
  next: Bucket | undefined;
}

/**
 * The `all` list of a chain of n rules, shared by every chain of that length: kube-proxy's
 * ~100k KUBE-SEP and KUBE-SVC chains have a handful of lengths between them, so the walk reads
 * the same few arrays (warm in cache) and building the index allocates none for them.
 */
const SHARED_ALL: (readonly number[])[] = [];
const MAX_SHARED_ALL = 64;

function positions(n: number): readonly number[] {
  if (n > MAX_SHARED_ALL) return Array.from({ length: n }, (_, i) => i);
  // Not frozen: a frozen array has an elements kind of its own, and the walk's loads from
  // candidate lists (shared, merged or unpinned) went polymorphic (a quarter of its time).
  return (SHARED_ALL[n] ??= Array.from({ length: n }, (_, i) => i));
}

const NO_HOSTS: ReadonlyMap<string, Bucket> = new Map();
const NO_PORTS: ReadonlyMap<number, Bucket> = new Map();

export class ChainIndex {
  /** Every position, in order: the candidates of a chain scanned whole. */
  readonly all: readonly number[];
  /**
   * dst → its buckets, one per (protocol, port), as a short list: one Map lookup per packet.
   * A chain scanned whole shares empty maps: two Maps per KUBE-SEP chain were a third of the
   * index's memory at 10k services.
   */
  private readonly byHost: ReadonlyMap<string, Bucket>;
  private readonly anyHost: ReadonlyMap<number, Bucket>;
  private readonly unpinned: readonly number[];
  /** The chain is scanned whole (small, or indexing turned off): see `all`. */
  readonly small: boolean;

  /** `keys[i]` is the pinned key of rule i (undefined when the rule is not pinned). */
  constructor(keys: readonly (PinnedKey | undefined)[], options: { useIndex?: boolean } = {}) {
    this.all = positions(keys.length);
    this.small = keys.length < SMALL_CHAIN || options.useIndex === false;
    if (this.small) {
      this.byHost = NO_HOSTS;
      this.anyHost = NO_PORTS;
      this.unpinned = positions(0);
      return;
    }
    const byHost = new Map<string, Bucket>();
    const anyHost = new Map<number, Bucket>();
    this.byHost = byHost;
    this.anyHost = anyHost;
    const unpinned: number[] = [];
    this.unpinned = unpinned;
    keys.forEach((key, i) => {
      if (key === undefined) {
        unpinned.push(i);
        return;
      }
      const port = portKey(key.proto, key.dport);
      if (key.dst === undefined) {
        const bucket = anyHost.get(port);
        if (bucket) bucket.own.push(i);
        else anyHost.set(port, { port, own: [i], merged: undefined, next: undefined });
        return;
      }
      const first = byHost.get(key.dst);
      let bucket = first;
      while (bucket && bucket.port !== port) bucket = bucket.next;
      if (bucket) bucket.own.push(i);
      else byHost.set(key.dst, { port, own: [i], merged: undefined, next: first });
    });
  }

  /** Positions of the rules that may match a packet to (dst, proto, dport), in rule order. */
  candidates(dst: string, proto: string, dport: number): readonly number[] {
    if (this.small) return this.all;
    const port = portKey(proto, dport);
    const any = this.anyHost.get(port);
    let exact = this.byHost.get(dst);
    while (exact && exact.port !== port) exact = exact.next;
    if (exact) return exact.merged ??= mergeSorted(mergeSorted(exact.own, any?.own ?? []), this.unpinned);
    if (any) return any.merged ??= mergeSorted(any.own, this.unpinned);
    return this.unpinned;
  }
}

function portKey(proto: string, dport: number): number {
  return (PROTOCOL_CODES[proto] ?? 255) * 65536 + dport;
}

function mergeSorted(a: readonly number[], b: readonly number[]): readonly number[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]! < b[j]! ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}
