/**
 * A per-chain index that finds the rules a packet can match without looking at all of them,
 * while keeping iptables' first-match order.
 *
 * A rule "pins" a packet when its spec makes the destination port, protocol and (optionally)
 * destination address necessary: `-d 172.30.0.41/32 -p tcp -m tcp --dport 80` pins
 * (172.30.0.41, tcp, 80); `-p tcp -m tcp --dport 30001` pins (any address, tcp, 30001). Such
 * a rule can only match packets with that key, so it goes into a hash map under the key. Every
 * other rule stays in an ordered list. A lookup merges the map's candidates for the packet's
 * exact key and its any-address key with the ordered list, by rule position: the caller then
 * evaluates the rules in exactly the order the kernel would, skipping only rules that could
 * not have matched.
 *
 * kube-proxy's KUBE-SERVICES (one rule per service port and VIP) and KUBE-NODEPORTS (one per
 * node port) are almost entirely pinned, so a lookup there costs a couple of rules.
 */
import { hostOf, isHostAddress } from './rule-values.js';
import type { RuleSpec } from './rule-spec.js';

const PINNABLE_PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

/** Below this many rules a chain is scanned whole: cheaper than the lookups. */
const SMALL_CHAIN = 12;

export function indexKey(dst: string, proto: string, dport: number): string {
  return `${dst}|${proto}|${dport}`;
}

/** The key `dst` for rules that pin protocol and port but not the address. */
export const ANY_ADDRESS = '*';

/** The key that a rule pins, or undefined when its matches leave any of the three open. */
export function pinnedKeyOf(spec: RuleSpec): string | undefined {
  const protocol = spec.protocol;
  if (!protocol || protocol.negated || !PINNABLE_PROTOCOLS.has(protocol.name)) return undefined;
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
  if (!destination) return indexKey(ANY_ADDRESS, protocol.name, dport);
  if (destination.negated || destination.addresses.length !== 1 || !isHostAddress(destination.addresses[0]!)) return undefined;
  return indexKey(hostOf(destination.addresses[0]!), protocol.name, dport);
}

export class ChainIndex {
  private readonly all: readonly number[];
  private readonly byKey = new Map<string, number[]>();
  private readonly unpinned: number[] = [];
  private readonly small: boolean;

  /** `keys[i]` is the pinned key of rule i (undefined when the rule is not pinned). */
  constructor(keys: readonly (string | undefined)[], options: { useIndex?: boolean } = {}) {
    this.all = keys.map((_, i) => i);
    this.small = keys.length < SMALL_CHAIN || options.useIndex === false;
    if (this.small) return;
    keys.forEach((key, i) => {
      if (key === undefined) {
        this.unpinned.push(i);
        return;
      }
      const list = this.byKey.get(key);
      if (list) list.push(i);
      else this.byKey.set(key, [i]);
    });
  }

  /** Positions of the rules that may match a packet to (dst, proto, dport), in rule order. */
  candidates(dst: string, proto: string, dport: number): readonly number[] {
    if (this.small) return this.all;
    const exact = this.byKey.get(indexKey(dst, proto, dport));
    const anyAddress = this.byKey.get(indexKey(ANY_ADDRESS, proto, dport));
    if (!exact && !anyAddress) return this.unpinned;
    return mergeSorted(mergeSorted(exact ?? [], anyAddress ?? []), this.unpinned);
  }
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
