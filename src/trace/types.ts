/**
 * What the packet tracer takes and gives back. The result is a JSON contract (the CLI's --json
 * and the API answer with it): fields may be added, never renamed.
 */

export type TraceProtocol = 'tcp' | 'udp' | 'sctp';

/** The first packet of a connection. */
export interface Packet {
  readonly proto: TraceProtocol;
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
  /** Unknown when left out: a --sport check is then assumed to match (and the hop says so). */
  readonly sport?: number;
}

/**
 * An ipset for `-m set --match-set`: its members as `ipset add` takes them ("10.0.0.1",
 * "10.0.0.0/24", "172.30.0.41,tcp:80", "10.0.0.1,udp:53,10.180.0.1"). A bare list of members
 * is enough; the set's dimensions are read from them.
 */
export type IpsetMembers = readonly string[];

/** An address in a `recent` list: seen `ageSeconds` ago (default 0), `hits` times (default 1). */
export type RecentEntry = string | { readonly address: string; readonly ageSeconds?: number; readonly hits?: number };

/** `recent` lists by name (kube-proxy names them after the KUBE-SEP chain). */
export type RecentState = Readonly<Record<string, readonly RecentEntry[]>>;

/** Recent lists a caller keeps (TraceOptions.recentLookup): addresses as kpsim normalises them. */
export interface RecentLookup {
  /** The entry of `address` in list `list`, if it is there. */
  find(list: string, address: string): { readonly ageSeconds: number; readonly hits: number } | undefined;
  /** Every entry of list `list` (for a `recent --mask` wider than one address). */
  entries(list: string): Iterable<readonly [string, { readonly ageSeconds: number; readonly hits: number }]>;
}

/** The node the rules run on; fixed for a prepared tracer. */
export interface TraceContext {
  /** The node's own addresses. 127.0.0.0/8 and ::1 are always local, as in the kernel. */
  readonly localAddresses: readonly string[];
  readonly ipsets?: Readonly<Record<string, IpsetMembers>>;
  /** Who was seen recently: empty by default, i.e. a fresh client. */
  readonly recent?: RecentState;
  /** kube-proxy's masquerade mark, 1 << masqueradeBit; 0x4000 by default. */
  readonly masqueradeMark?: number;
}

export interface TraceOptions {
  /** Also walk once with a seeded random source and report that walk as `sample`. */
  readonly seed?: number;
  /**
   * Walk only the outcome drawn with `seed` (which must be given), not every outcome: the
   * result's verdict, endpoints, masquerade and hops are the sample's, its probabilities empty,
   * and it says `sampleOnly: true`.
   */
  readonly sampleOnly?: boolean;
  /**
   * Whether the packet leaves the node itself (nat OUTPUT, filter OUTPUT) rather than arriving
   * (nat PREROUTING). Default: true when the source is one of the node's addresses.
   */
  readonly fromNode?: boolean;
  /** Conntrack state of the packet; default ["NEW"], the first packet of a connection. */
  readonly ctstate?: readonly string[];
  /** The packet's mark when it reaches the first chain; default 0. */
  readonly mark?: number;
  /** Interfaces, for -i/-o rules. Unknown by default: "-i X" then does not match, "! -i X" does. */
  readonly inInterface?: string;
  readonly outInterface?: string;
  /** Overrides the tracer context's recent lists for this packet. */
  readonly recent?: RecentState;
  /**
   * Overrides them too (and `recent`), asked rather than copied: for a caller that keeps its own
   * lists over many traces (the simulator's clients), so that none is read again per packet.
   */
  readonly recentLookup?: RecentLookup;
  /** 'kube-proxy-test' reproduces the simplified tracer of kube-proxy's proxier_test.go. */
  readonly semantics?: 'kernel' | 'kube-proxy-test';
}

export type Verdict = 'DNAT' | 'REJECT' | 'DROP' | 'ACCEPT' | 'NONE';

export interface Hop {
  readonly table: string;
  readonly chain: string;
  /** The rule as kpsim renders it ("-A KUBE-SERVICES ..."). */
  readonly rule: string;
  /** The -j/-g target; "" for a rule without one. */
  readonly target: string;
  /** Chance that a packet reaches this rule and matches it. */
  readonly probability?: number;
  /** The rule is one of kube-proxy's built-in chain jumps, assumed because the chain was absent. */
  readonly assumed?: true;
  /** Parts of the rule that were assumed to match, or other remarks. */
  readonly notes?: readonly string[];
  /** Call depth: 0 for a built-in chain, 1 for a chain it jumps to, and so on. */
  readonly depth?: number;
  /** nftables: the set and map lookups of the rule, each with the element that matched. */
  readonly lookups?: readonly SetLookup[];
}

/** A set or map lookup in an nftables rule: the set (absent for an anonymous map) and the element that matched. */
export interface SetLookup {
  readonly set?: string;
  readonly element: string;
}

/** A `recent --set/--update` (or `--remove`) the walk made: kube-proxy's ClientIP affinity memory. */
export interface RecentUpdate {
  readonly list: string;
  readonly address: string;
  readonly removed?: true;
}

export interface TraceSample {
  readonly endpoint?: string;
  readonly verdict: Verdict;
  readonly masquerade: boolean;
  readonly hops: readonly Hop[];
  /** The `recent` lists this walk changed, oldest first (absent when it changed none). */
  readonly recent?: readonly RecentUpdate[];
}

export interface TraceResult {
  readonly verdict: Verdict;
  /** Endpoints ("10.180.0.1:80", "[fd00::1]:80") the packet can be DNATed to, sorted. */
  readonly endpoints: readonly string[];
  readonly probabilities: Readonly<Record<string, number>>;
  /** Whether any path masquerades the packet. */
  readonly masquerade: boolean;
  readonly masqueradeByEndpoint: Readonly<Record<string, boolean>>;
  /** Every rule that matched, in walk order (depth first over the statistic branches). */
  readonly hops: readonly Hop[];
  /** When branches end in different verdicts: each verdict's total probability. */
  readonly outcomes?: Readonly<Partial<Record<Verdict, number>>>;
  /** One walk drawn with the seeded random source, when a seed was given. */
  readonly sample?: TraceSample;
  /** The packet's hooks: "PREROUTING" (arriving) or "OUTPUT" (sent by the node). */
  readonly origin?: 'PREROUTING' | 'OUTPUT';
  /** The answer is the one walk drawn with the seed (TraceOptions.sampleOnly), not every outcome. */
  readonly sampleOnly?: true;
  /** With semantics 'kube-proxy-test': the tracer's own output string and masq flag. */
  readonly kubeProxyTest?: { readonly output: string; readonly masq: boolean };
}
