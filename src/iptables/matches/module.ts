/**
 * What an iptables match module is, in one file per module (beside this one, listed in
 * registry.ts): the options `-m NAME` takes, how their values are read into a typed match, how
 * the kernel's iptables-save prints the match back, and what the tracer checks of a packet.
 *
 * The check is written in the module's file too, against MatchChecks below. src/trace imports
 * src/iptables and never the reverse, so the tracer's side is an interface here that the tracer
 * implements (src/trace/match-checks.ts): a module states its checks in the kernel's terms (a
 * destination port range, a mark, conntrack states, or a closure over the packet) and the tracer
 * decides how to run them (packed into a word it tests without a call, or the closure). A
 * per-module part under src/trace/ would have kept the trace types out of this file, but made a
 * module two files that must be kept in step; this way adding a module is one file and one line.
 */
import type { Family, Words } from '../../util/ip.js';
import type { PortRange } from '../rule-values.js';

/** An option as written: name (aliases folded to iptables-save's name), values, negation. */
export interface RawOption {
  readonly negated: boolean;
  readonly name: string;
  readonly values: readonly string[];
}

/** The rule's -p. */
export interface ProtocolMatch {
  readonly negated: boolean;
  /** Lower-case name as iptables-save prints it ("tcp", "udp", "sctp", "icmp", "ipv6-icmp") or a number. */
  readonly name: string;
}

/** What every match has, whatever its module. */
export interface MatchBase {
  /** The module name as loaded ("tcp", "comment", ...). */
  readonly module: string;
  /** Loaded by a protocol option rather than by `-m` (only tcp, udp, sctp). */
  readonly implicit: boolean;
  /** Options kept but not evaluated; the tracer assumes they match. */
  readonly notes: readonly string[];
  /** Options not modelled, in the order written, for printing. */
  readonly other: readonly RawOption[];
}

/** The options of one module name: option → number of values. Aliases map to the saved name. */
export interface ModuleOptions {
  readonly arity: Readonly<Record<string, number>>;
  readonly aliases?: Readonly<Record<string, string>>;
}

/**
 * One module. Its functions are declared as methods, whose parameters TypeScript compares both
 * ways: that lets each module, typed with its own match, stand in the registry's one list.
 */
export interface MatchModule<M extends MatchBase & { readonly kind: string }> {
  readonly kind: M['kind'];
  /** The names `-m` loads it by (conntrack also answers to "state"), each with its options. */
  readonly names: Readonly<Record<string, ModuleOptions>>;
  /** The options' values read into the match; what iptables would refuse goes to `reader.problems`. */
  read(reader: MatchReader): M;
  /** The options as the kernel's iptables-save prints them back, the words after "-m NAME". */
  canonical(match: M, family: Family): string[];
  /** What the tracer checks for the match. */
  compile(match: M, checks: MatchChecks): void;
}

// ---------------------------------------------------------------- reading

/**
 * A spec under construction: optional parts are assigned one by one, in the order of the
 * fields (object spreads of optional parts were a tenth of the time to read a 10k-service
 * ruleset, 368k rules).
 */
export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Looks options up by name in one match's (or target's) list; reports an option given twice. */
export class OptionReader {
  private readonly byName = new Map<string, RawOption>();

  constructor(readonly module: string, readonly options: readonly RawOption[], readonly problems: string[]) {
    for (const option of options) {
      if (this.byName.has(option.name)) problems.push(`-m ${module}: ${option.name} is given twice`);
      this.byName.set(option.name, option);
    }
  }

  option(name: string): RawOption | undefined {
    return this.byName.get(name);
  }

  value(name: string): string | undefined {
    return this.byName.get(name)?.values[0];
  }

  /** The options not among `known`, in the order written. */
  rest(known: readonly string[]): RawOption[] {
    return [...this.byName.values()].filter((o) => !known.includes(o.name));
  }
}

/** One match's options, with what a module's reader needs to know of the rule around it. */
export class MatchReader extends OptionReader {
  /** Options kept but not evaluated (the match's `notes`). */
  readonly notes: string[] = [];
  /** Options not modelled, kept for printing (the match's `other`). */
  readonly other: RawOption[] = [];

  constructor(
    module: string,
    readonly implicit: boolean,
    options: readonly RawOption[],
    readonly family: Family,
    /** The rule's -p: tcp, udp, sctp and multiport need one. */
    readonly protocol: ProtocolMatch | undefined,
    problems: string[],
  ) {
    super(module, options, problems);
  }

  /** Every option not among `known` goes to `other`, with a note that it is not evaluated. */
  keepRest(known: readonly string[]): void {
    for (const rest of this.rest(known)) {
      this.other.push(rest);
      this.notes.push(`-m ${this.module} ${rest.name} is not evaluated`);
    }
  }
}

// ---------------------------------------------------------------- checking

/** The packet as a match's closure sees it: what stays the same for the whole walk (the tracer's Flow). */
export interface CheckedFlow {
  readonly proto: string;
  /** undefined when the trace was not given one. */
  readonly sport: number | undefined;
  readonly srcWords: Words;
}

/** What one path of the walk may have changed (the tracer's PathState): after a DNAT, the new destination. */
export interface CheckedPath {
  readonly dport: number;
  readonly dstWords: Words;
}

export type PacketTest = (flow: CheckedFlow, path: CheckedPath) => boolean;

/** A `-m recent` step, run by the walk in rule order with the lists it keeps. */
export interface RecentCheck {
  readonly command: 'set' | 'rcheck' | 'update' | 'remove';
  readonly negated: boolean;
  readonly list: string;
  readonly seconds: number | undefined;
  readonly hitcount: number | undefined;
  /** The --mask; undefined when all ones (kube-proxy's /32 or /128). */
  readonly mask: Words | undefined;
  readonly side: 'source' | 'dest';
}

/** An ipset the trace was given. */
export interface IpsetLookup {
  /** Members kpsim could not read (left out of the set). */
  readonly unreadable: readonly string[];
  has(
    packet: { readonly proto: string; readonly src: Words; readonly dst: Words; readonly sport: number | undefined; readonly dport: number },
    flags: readonly ('src' | 'dst')[],
  ): boolean;
}

/**
 * What the tracer offers a module to state its checks with, for one rule. The named checks are
 * the ones kube-proxy's rules are made of; the tracer packs the first of each kind in a rule
 * (see src/trace/fast-checks.ts) and runs any other as a closure. `test` is any other check.
 */
export interface MatchChecks {
  /** The rule's -p, when it has one. */
  readonly protocol: ProtocolMatch | undefined;
  /** Something the trace assumes or approximates for this rule, shown on its hop. */
  note(text: string): void;
  /** A check of the packet, run as a closure for every packet that reaches the rule. */
  test(check: PacketTest): void;
  /** The destination port (after any DNAT) is in `range`. */
  dport(range: PortRange, negated: boolean): void;
  /** (packet mark & mask) === value. */
  mark(value: number, mask: number, negated: boolean): void;
  /** The connection is in one of the conntrack `states` (DNAT once a DNAT target has run). */
  ctStates(states: readonly string[], negated: boolean): void;
  /** The source or destination address is of one of the routing `types` (LOCAL, UNICAST, ...). */
  addressTypes(side: 'src' | 'dst', types: readonly string[], negated: boolean): void;
  /** A statistic draw: random (a 31-bit draw below `stored`) or nth (1 in `every`); the walk forks on it. */
  random(mode: 'random' | 'nth', stored: number, every: number, negated: boolean): void;
  recent(check: RecentCheck): void;
  /** The ipset of that name, or undefined when the trace was not given it. */
  ipset(name: string): IpsetLookup | undefined;
}

// ---------------------------------------------------------------- printing

/** "! " before a negated option. */
export function not(negated: boolean): string {
  return negated ? '! ' : '';
}

const NO_QUOTE = /^[A-Za-z0-9_-]+$/;

/**
 * A string argument as libxtables' xtables_save_string writes it (without its leading space):
 * bare when made only of letters, digits, "_" and "-", else double-quoted with \" \\ \' escapes.
 */
export function saveString(value: string): string {
  if (NO_QUOTE.test(value)) return value;
  return `"${value.replace(/(["\\'])/g, '\\$1')}"`;
}

/** An option kpsim keeps without modelling it, printed back as written (quoted where needed). */
export function renderRawOption(option: RawOption): string {
  const values = option.values.map((v) => (v === '' || /[\s"'\\]/.test(v) ? saveString(v) : v));
  return [`${not(option.negated)}${option.name}`, ...values].join(' ');
}
