/**
 * An nftables ruleset in knftables' vocabulary (sigs.k8s.io/knftables objects.go): tables that
 * hold chains, sets and maps; chains that hold rules; sets and maps that hold elements.
 *
 * A rule is kept as kube-proxy hands it to knftables: its text (the words knftables.Concat
 * joined) and an optional comment. rule-parse.ts reads a rule's text (kube-proxy's form or the
 * form `nft list ruleset` prints) into statements when something needs to evaluate or reprint
 * it; compiling and rendering `nft -f` input never need that, which keeps both fast.
 *
 * Maps and containers keep creation order: that is the order the kernel lists them in.
 */
import type { Family } from '../util/ip.js';

/** nftables address families. kube-proxy uses ip and ip6; other tables on a node may be inet, ... */
export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

export interface NftRule {
  /** The rule's statements as text, without its comment ("ip daddr @cluster-ips reject"). */
  readonly text: string;
  readonly comment?: string;
  /** The text is as `nft list ruleset` printed it (a parsed dump): already in canonical form. */
  readonly listed?: true;
}

/** What makes a chain a base chain: it is attached to a netfilter hook. */
export interface NftBaseChain {
  /** "filter", "nat" or "route". */
  readonly type: string;
  /** "prerouting", "input", "forward", "output", "postrouting", "ingress", ... */
  readonly hook: string;
  /** Always a number here; renderers print nft's names ("dstnat - 10") where nft does. */
  readonly priority: number;
  /** The chain's policy; the kernel's default is accept. */
  readonly policy?: 'accept' | 'drop';
  /** netdev / inet ingress chains. */
  readonly device?: string;
}

export interface NftChain {
  readonly name: string;
  readonly comment?: string;
  readonly base?: NftBaseChain;
  readonly rules: NftRule[];
}

export interface NftElement {
  /** The key's parts, as nft reads them: ["172.30.0.41", "tcp", "80"]. */
  readonly key: readonly string[];
  /** A map element's value: ["goto service-ULMVA6XW-ns1/svc1/tcp/p80"], ["drop"]. */
  readonly value?: readonly string[];
  readonly comment?: string;
  /** An element's own timeout, when it differs from its set's (parsed dumps). */
  readonly timeoutSeconds?: number;
  /** Seconds until a dynamic set's element expires, as a live node listed it (parsed dumps). */
  readonly expiresSeconds?: number;
}

export interface NftSet {
  readonly kind: 'set' | 'map';
  readonly name: string;
  /** "ipv4_addr", "ipv4_addr . inet_proto . inet_service : verdict" (a map's type includes its value). */
  readonly type: string;
  /** `typeof` sets (other tables on a node): the expression text instead of a type. */
  readonly typeOf?: string;
  readonly flags?: readonly string[];
  readonly timeoutSeconds?: number;
  readonly gcIntervalSeconds?: number;
  readonly size?: number;
  readonly policy?: string;
  readonly autoMerge?: boolean;
  readonly comment?: string;
  /** In insertion order (the kernel lists them sorted: see canonical.ts). */
  readonly elements: NftElement[];
}

/** Something in a table kpsim keeps but does not model (a flowtable, a counter, a ct helper, ...). */
export interface NftOtherObject {
  readonly kind: string;
  readonly name: string;
  /** Its block as `nft list ruleset` printed it, without the outer indentation. */
  readonly lines: readonly string[];
}

export interface NftTable {
  readonly family: NftFamily;
  readonly name: string;
  readonly comment?: string;
  readonly flags?: readonly string[];
  /** Sets and maps share one namespace in a table, in creation order. */
  readonly sets: Map<string, NftSet>;
  /** In creation order. */
  readonly chains: Map<string, NftChain>;
  readonly others?: readonly NftOtherObject[];
}

/** Something in a parsed dump that kpsim keeps but does not evaluate, and why. */
export interface NftSkipped {
  readonly table: string;
  readonly chain?: string;
  readonly what: string;
  readonly reason: string;
}

export interface NftRuleset {
  /** The IP family of the proxier this ruleset was compiled for; undefined for a parsed dump. */
  readonly family?: Family;
  readonly tables: readonly NftTable[];
  /** What a parser kept without understanding (empty for compiled rulesets). */
  readonly skipped: readonly NftSkipped[];
}

/** Where rendered text is written, piece after piece (render-script.ts). */
export interface TextWriter {
  write(s: string): void;
}

/**
 * A TextWriter whose bytes can also be written in place, for a line made of many pieces
 * (endpoint-chain.ts): room(n) gives the bytes with room for `n` more from `at` on; the writer
 * fills them with ASCII only, and says where it stopped with end(p).
 */
export interface ByteTextWriter extends TextWriter {
  room(n: number): Uint8Array;
  readonly at: number;
  end(p: number): void;
}

/** "ip kube-proxy": a table as nft names it. */
export function tableId(table: Pick<NftTable, 'family' | 'name'>): string {
  return `${table.family} ${table.name}`;
}
