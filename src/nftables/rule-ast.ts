/**
 * A rule's statements, as nft reads them: what a rule matches (a selector compared with a
 * value, a set or map lookup) and what it does (a verdict, a NAT, a mark, a set update). Enough
 * of nft's language for kube-proxy's rules and the common rules of other tables on a node
 * (firewalld, Docker, CNI plugins); a rule with anything else is kept as text and reported as
 * not evaluated.
 */

/** The left side of a match: what part of the packet (or its metadata) is looked at. */
export type Selector =
  /** ip saddr, ip daddr, ip protocol, ip6 nexthdr, ... */
  | { readonly kind: 'payload'; readonly base: 'ip' | 'ip6'; readonly field: string }
  /** th dport, tcp dport, udp sport, ... */
  | { readonly kind: 'transport'; readonly proto: string; readonly field: string }
  /** meta l4proto, meta mark, iifname, oifname, ... */
  | { readonly kind: 'meta'; readonly key: string }
  /** ct state, ct status, ct mark, ... */
  | { readonly kind: 'ct'; readonly key: string }
  /** fib saddr type, fib daddr . iif type, ... */
  | { readonly kind: 'fib'; readonly flags: readonly string[]; readonly result: string }
  /** numgen random mod N [offset K] */
  | { readonly kind: 'numgen'; readonly mode: string; readonly mod: number; readonly offset: number }
  /** ip daddr . meta l4proto . th dport */
  | { readonly kind: 'concat'; readonly parts: readonly Selector[] }
  /** meta mark & 0x4000 */
  | { readonly kind: 'bitwise'; readonly left: Selector; readonly op: '&' | '|' | '^'; readonly value: number };

/** The right side of a match. */
export type Operand =
  /** One value as written ("10.0.0.0/8", "tcp", "local", "new,established"). */
  | { readonly kind: 'value'; readonly text: string }
  /** An anonymous set: `{ a, b }`. */
  | { readonly kind: 'list'; readonly items: readonly string[] }
  /** A named set: `@cluster-ips`. */
  | { readonly kind: 'ref'; readonly set: string };

export type VerdictKind = 'accept' | 'drop' | 'continue' | 'return' | 'jump' | 'goto' | 'queue';

export interface Verdict {
  readonly kind: VerdictKind;
  /** For jump and goto. */
  readonly chain?: string;
}

export type RelOp = '==' | '!=' | '<' | '>' | '<=' | '>=';

export type Statement =
  | { readonly kind: 'match'; readonly left: Selector; readonly op: RelOp; readonly right: Operand }
  /** `KEY vmap @map` or `KEY vmap { 0 : goto a, 1 : goto b }` */
  | { readonly kind: 'vmap'; readonly key: Selector; readonly map: { readonly kind: 'ref'; readonly set: string } | { readonly kind: 'anon'; readonly entries: readonly { readonly key: string; readonly verdict: Verdict }[] } }
  /** `meta mark set meta mark | 0x4000` (op '|'), `meta mark set 0x1` (op 'set'); target meta or ct. */
  | { readonly kind: 'mark-set'; readonly target: 'meta' | 'ct'; readonly op: 'set' | '|' | '^' | '&'; readonly value: number }
  /** `update @set { ip saddr }` */
  | { readonly kind: 'dynset'; readonly op: 'update' | 'add'; readonly set: string; readonly key: Selector }
  | { readonly kind: 'verdict'; readonly verdict: Verdict }
  | { readonly kind: 'reject'; readonly with?: string }
  /** `dnat to 10.180.0.1:80`, `snat ip to 1.2.3.4` */
  | { readonly kind: 'nat'; readonly type: 'dnat' | 'snat'; readonly l3?: 'ip' | 'ip6'; readonly to: string; readonly flags: readonly string[] }
  | { readonly kind: 'masquerade'; readonly args: readonly string[] }
  /** Statements that do not change where the packet goes (counter, log, limit is not one): kept as text. */
  | { readonly kind: 'noop'; readonly text: string };

export interface ParsedRule {
  readonly statements: readonly Statement[];
  /** Why the rule could not be read; its statements are then empty. */
  readonly unknown?: string;
}
