/**
 * A rule's tokens read into a typed spec: the generic matches (-s, -d, -i, -o, -p), the match
 * modules in the order iptables loads them, and the target.
 *
 * iptables reads a rule in two steps and so do we. First the tokens are dealt out: `-m NAME`
 * loads a match; an option goes to the most recently loaded match that has an option of that
 * name (iptables merges each new module's options in front of the older ones); an option no
 * loaded match knows, after `-p tcp|udp|sctp`, loads that protocol's match on the spot (the
 * "implicit" match, e.g. `-p tcp --dport 80`); options after `-j` go to the target when it has
 * them. Then each module's options are read into values.
 *
 * Nothing here throws. What iptables-restore would refuse is listed in `problems` (the parser
 * turns those into errors with a line number); what kpsim keeps but does not model (an unknown
 * module, an option it does not evaluate) is listed in `notes`, and the tracer treats those
 * parts as matching and says so.
 */
import type { Family } from '../util/ip.js';
import {
  isServiceName,
  parseAddressSpec,
  parseMarkMask,
  parseNatRange,
  parsePortList,
  parsePortRange,
  parseProbability,
  parseUnsigned,
  probabilityToKernel,
  U32_MAX,
  type AddressSpec,
  type NatRange,
  type PortRange,
} from './rule-values.js';

// ---------------------------------------------------------------- the spec

/** An option as written: name (aliases folded to iptables-save's name), values, negation. */
export interface RawOption {
  readonly negated: boolean;
  readonly name: string;
  readonly values: readonly string[];
}

export interface AddressMatch {
  readonly negated: boolean;
  /** More than one when written "a,b": iptables then adds one rule per address. */
  readonly addresses: readonly AddressSpec[];
}

export interface InterfaceMatch {
  readonly negated: boolean;
  /** "eth0", or "veth+" (a trailing + matches any suffix). */
  readonly name: string;
}

export interface ProtocolMatch {
  readonly negated: boolean;
  /** Lower-case name as iptables-save prints it ("tcp", "udp", "sctp", "icmp", "ipv6-icmp") or a number. */
  readonly name: string;
}

export interface PortMatch {
  readonly negated: boolean;
  readonly range: PortRange;
}

interface MatchBase {
  /** The module name as loaded ("tcp", "comment", ...). */
  readonly module: string;
  /** Loaded by a protocol option rather than by `-m` (only tcp, udp, sctp). */
  readonly implicit: boolean;
  /** Options kept but not evaluated; the tracer assumes they match. */
  readonly notes: readonly string[];
  /** Options not modelled, in the order written, for printing. */
  readonly other: readonly RawOption[];
}

export interface CommentMatch extends MatchBase {
  readonly kind: 'comment';
  readonly comment: string;
}

export interface PortsMatch extends MatchBase {
  readonly kind: 'ports';
  readonly module: 'tcp' | 'udp' | 'sctp';
  readonly sport?: PortMatch;
  readonly dport?: PortMatch;
  /** --tcp-flags MASK COMP (or --syn): flag names in libxt_tcp's order. */
  readonly tcpFlags?: { readonly negated: boolean; readonly mask: readonly string[]; readonly comp: readonly string[] };
}

export interface MultiportMatch extends MatchBase {
  readonly kind: 'multiport';
  readonly negated: boolean;
  readonly direction: 'source' | 'destination' | 'either';
  readonly ports: readonly PortRange[];
}

export interface AddrtypeMatch extends MatchBase {
  readonly kind: 'addrtype';
  readonly srcType?: { readonly negated: boolean; readonly types: readonly string[] };
  readonly dstType?: { readonly negated: boolean; readonly types: readonly string[] };
  readonly limitIfaceIn: boolean;
  readonly limitIfaceOut: boolean;
}

export interface MarkMatch extends MatchBase {
  readonly kind: 'mark';
  readonly negated: boolean;
  readonly value: number;
  readonly mask: number;
}

export interface ConntrackMatch extends MatchBase {
  readonly kind: 'conntrack';
  /** --ctstate (conntrack) or --state (state), states in the kernel's bit order. */
  readonly ctstate?: { readonly negated: boolean; readonly states: readonly CtState[] };
}

export interface StatisticMatch extends MatchBase {
  readonly kind: 'statistic';
  readonly mode: 'random' | 'nth';
  readonly negated: boolean;
  /** random: the value the kernel stores, round(2^31 * p); the chance is this / 2^31. */
  readonly probabilityStored: number;
  /** nth: match one packet in `every`, the `packet`-th (0-based). */
  readonly every: number;
  readonly packet: number;
}

export interface RecentMatch extends MatchBase {
  readonly kind: 'recent';
  readonly command: 'set' | 'rcheck' | 'update' | 'remove';
  readonly negated: boolean;
  readonly seconds: number | undefined;
  readonly reap: boolean;
  readonly hitcount: number | undefined;
  readonly rttl: boolean;
  readonly name: string;
  /** Address mask; undefined means all ones. */
  readonly mask: string | undefined;
  readonly side: 'source' | 'dest';
}

export interface NfacctMatch extends MatchBase {
  readonly kind: 'nfacct';
  readonly name: string;
}

export interface SetMatch extends MatchBase {
  readonly kind: 'set';
  readonly negated: boolean;
  readonly setName: string;
  /** One direction per dimension of the set, as in "dst,dst". */
  readonly flags: readonly ('src' | 'dst')[];
}

/** A module kpsim does not model: printed back as written, assumed to match when tracing. */
export interface OtherMatch extends MatchBase {
  readonly kind: 'other';
}

export type MatchSpec =
  | CommentMatch
  | PortsMatch
  | MultiportMatch
  | AddrtypeMatch
  | MarkMatch
  | ConntrackMatch
  | StatisticMatch
  | RecentMatch
  | NfacctMatch
  | SetMatch
  | OtherMatch;

export type TargetSpec =
  | { readonly kind: 'standard'; readonly name: 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE' }
  /** A user chain, or an extension target kpsim does not model (told apart by the table's chains). */
  | { readonly kind: 'jump'; readonly name: string; readonly goto: boolean; readonly options: readonly RawOption[] }
  | { readonly kind: 'reject'; readonly rejectWith: string }
  | { readonly kind: 'dnat'; readonly to: NatRange | undefined; readonly flags: readonly string[] }
  | { readonly kind: 'snat'; readonly to: NatRange | undefined; readonly flags: readonly string[] }
  | { readonly kind: 'masquerade'; readonly toPorts: string | undefined; readonly flags: readonly string[] }
  /** Every MARK form, as the kernel keeps it: mark = (mark & ~mask) ^ value (--set-xmark). */
  | { readonly kind: 'mark'; readonly value: number; readonly mask: number };

export interface RuleSpec {
  readonly source?: AddressMatch;
  readonly destination?: AddressMatch;
  readonly inInterface?: InterfaceMatch;
  readonly outInterface?: InterfaceMatch;
  readonly protocol?: ProtocolMatch;
  readonly fragment?: { readonly negated: boolean };
  /** Set by a -4 or -6 in the rule: the rule is for that family only. */
  readonly onlyFamily?: Family;
  readonly matches: readonly MatchSpec[];
  readonly target?: TargetSpec;
  /** Things iptables-restore would refuse. */
  readonly problems: readonly string[];
  /** Things kept but not modelled (the tracer assumes they match). */
  readonly notes: readonly string[];
}

export type CtState = 'INVALID' | 'NEW' | 'RELATED' | 'ESTABLISHED' | 'UNTRACKED' | 'SNAT' | 'DNAT';

/** libxt_conntrack prints states in this order, whatever order they were written in. */
export const CT_STATES: readonly CtState[] = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];

/** libxt_addrtype's names, in the order of the kernel's RTN_* bits (the order it prints). */
export const ADDRESS_TYPES: readonly string[] = [
  'UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST',
  'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE',
];

/** libxt_tcp's flag names, in the order it prints them. */
export const TCP_FLAGS: readonly string[] = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];

// ---------------------------------------------------------------- option tables

/** Options of the modules kpsim reads: name → number of values. Aliases map to the saved name. */
interface ModuleOptions {
  readonly arity: Readonly<Record<string, number>>;
  readonly aliases?: Readonly<Record<string, string>>;
}

const PORT_OPTIONS = { '--sport': 1, '--dport': 1 } as const;
const PORT_ALIASES = { '--source-port': '--sport', '--destination-port': '--dport' } as const;

const MODULES: Readonly<Record<string, ModuleOptions>> = {
  comment: { arity: { '--comment': 1 } },
  tcp: { arity: { ...PORT_OPTIONS, '--tcp-flags': 2, '--syn': 0, '--tcp-option': 1 }, aliases: PORT_ALIASES },
  udp: { arity: PORT_OPTIONS, aliases: PORT_ALIASES },
  sctp: { arity: { ...PORT_OPTIONS, '--chunk-types': 2 }, aliases: PORT_ALIASES },
  multiport: {
    arity: { '--sports': 1, '--dports': 1, '--ports': 1 },
    aliases: { '--source-ports': '--sports', '--destination-ports': '--dports' },
  },
  addrtype: { arity: { '--src-type': 1, '--dst-type': 1, '--limit-iface-in': 0, '--limit-iface-out': 0 } },
  mark: { arity: { '--mark': 1 } },
  conntrack: {
    arity: {
      '--ctstate': 1, '--ctproto': 1, '--ctorigsrc': 1, '--ctorigdst': 1, '--ctreplsrc': 1, '--ctrepldst': 1,
      '--ctorigsrcport': 1, '--ctorigdstport': 1, '--ctreplsrcport': 1, '--ctrepldstport': 1,
      '--ctstatus': 1, '--ctexpire': 1, '--ctdir': 1,
    },
  },
  state: { arity: { '--state': 1 } },
  statistic: { arity: { '--mode': 1, '--probability': 1, '--every': 1, '--packet': 1 } },
  recent: {
    arity: {
      '--set': 0, '--rcheck': 0, '--update': 0, '--remove': 0, '--seconds': 1, '--reap': 0,
      '--hitcount': 1, '--rttl': 0, '--name': 1, '--mask': 1, '--rsource': 0, '--rdest': 0,
    },
  },
  nfacct: { arity: { '--nfacct-name': 1 } },
  set: {
    arity: {
      '--match-set': 2, '--return-nomatch': 0, '--update-counters': 0, '--update-subcounters': 0,
      '--packets-eq': 1, '--packets-lt': 1, '--packets-gt': 1, '--bytes-eq': 1, '--bytes-lt': 1, '--bytes-gt': 1,
    },
  },
};

const TARGET_OPTIONS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  REJECT: { '--reject-with': 1 },
  DNAT: { '--to-destination': 1, '--random': 0, '--persistent': 0 },
  SNAT: { '--to-source': 1, '--random': 0, '--persistent': 0, '--random-fully': 0 },
  MASQUERADE: { '--to-ports': 1, '--random': 0, '--random-fully': 0 },
  MARK: { '--set-xmark': 1, '--set-mark': 1, '--and-mark': 1, '--or-mark': 1, '--xor-mark': 1 },
};

const STANDARD_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE']);

const GENERIC_ALIASES: Readonly<Record<string, string>> = {
  '--source': '-s', '--src': '-s', '--destination': '-d', '--dst': '-d',
  '--in-interface': '-i', '--out-interface': '-o', '--protocol': '-p', '--fragment': '-f',
  '--jump': '-j', '--goto': '-g', '--match': '-m', '--ipv4': '-4', '--ipv6': '-6', '--set-counters': '-c',
};

/** Protocol numbers iptables-save prints by name (from /etc/protocols on any Linux). */
const PROTOCOL_NAMES: Readonly<Record<string, string>> = {
  '1': 'icmp', '6': 'tcp', '17': 'udp', '58': 'ipv6-icmp', '132': 'sctp', '136': 'udplite',
  icmpv6: 'ipv6-icmp', 'ipv6-icmp': 'ipv6-icmp',
};

const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

// ---------------------------------------------------------------- step 1: dealing out tokens

interface MatchInstance {
  readonly module: string;
  readonly implicit: boolean;
  readonly options: RawOption[];
}

interface TargetInstance {
  readonly name: string;
  readonly goto: boolean;
  readonly options: RawOption[];
}

interface Dealt {
  generic: Map<string, RawOption>;
  onlyFamily?: Family;
  matches: MatchInstance[];
  target?: TargetInstance;
  problems: string[];
  notes: string[];
}

function moduleAccepts(module: string, option: string): string | undefined {
  const table = MODULES[module];
  if (!table) return undefined;
  const name = table.aliases?.[option] ?? option;
  return name in table.arity ? name : undefined;
}

function dealTokens(args: readonly string[]): Dealt {
  const dealt: Dealt = { generic: new Map(), matches: [], problems: [], notes: [] };
  let negated = false;
  let i = 0;

  /**
   * Take `count` values after args[i]; a value may itself start with "-" (e.g. a comment).
   * The deprecated "--opt ! value" form sets `negated`, so callers read it after this call.
   */
  const takeValues = (option: string, count: number): string[] | undefined => {
    const values: string[] = [];
    let j = i + 1;
    // iptables still accepts the old "--opt ! value" form.
    if (count > 0 && args[j] === '!') {
      negated = true;
      j++;
    }
    for (let k = 0; k < count; k++, j++) {
      if (j >= args.length) {
        dealt.problems.push(`option ${option} needs ${count === 1 ? 'a value' : `${count} values`}`);
        i = args.length;
        return undefined;
      }
      values.push(args[j]!);
    }
    i = j;
    return values;
  };

  /** Values of an option kpsim does not know: everything up to the next option. */
  const takeGreedy = (): string[] => {
    const values: string[] = [];
    let j = i + 1;
    while (j < args.length && !args[j]!.startsWith('-') && args[j] !== '!') values.push(args[j++]!);
    i = j;
    return values;
  };

  while (i < args.length) {
    const token = args[i]!;
    if (token === '!') {
      negated = true;
      i++;
      continue;
    }
    const option = GENERIC_ALIASES[token] ?? token;
    switch (option) {
      case '-s': case '-d': case '-i': case '-o': case '-p': {
        const values = takeValues(option, 1);
        if (values) {
          if (dealt.generic.has(option)) dealt.problems.push(`option ${option} is given twice`);
          dealt.generic.set(option, { negated, name: option, values });
        }
        break;
      }
      case '-f':
        dealt.generic.set(option, { negated, name: option, values: [] });
        i++;
        break;
      case '-4': case '-6':
        dealt.onlyFamily = option === '-4' ? 4 : 6;
        i++;
        break;
      case '-c':
        // iptables-restore takes "-c PACKETS BYTES" inside a rule; counters are not kept.
        takeValues(option, 2);
        break;
      case '-m': {
        const values = takeValues(option, 1);
        if (values) dealt.matches.push({ module: values[0]!.toLowerCase(), implicit: false, options: [] });
        break;
      }
      case '-j': case '-g': {
        const values = takeValues(option, 1);
        if (values) {
          if (dealt.target) dealt.problems.push('the rule has more than one target');
          dealt.target = { name: values[0]!, goto: option === '-g', options: [] };
        }
        break;
      }
      default:
        if (!token.startsWith('-')) {
          dealt.problems.push(`unexpected argument ${JSON.stringify(token)}`);
          i++;
        } else {
          dealOption(token);
        }
    }
    negated = false;
  }
  return dealt;

  function dealOption(token: string): void {
    const target = dealt.target;
    const targetArity = target ? TARGET_OPTIONS[target.name]?.[token] : undefined;
    if (target && targetArity !== undefined) {
      const values = takeValues(token, targetArity);
      if (values) target.options.push({ negated, name: token, values });
      return;
    }
    for (let m = dealt.matches.length - 1; m >= 0; m--) {
      const instance = dealt.matches[m]!;
      const name = moduleAccepts(instance.module, token);
      if (name !== undefined) {
        const values = takeValues(token, MODULES[instance.module]!.arity[name]!);
        if (values) instance.options.push({ negated, name, values });
        return;
      }
    }
    const protocol = dealt.generic.get('-p');
    const protoName = protocol && !protocol.negated ? normalizeProtocol(protocol.values[0]!) : undefined;
    if (protoName !== undefined && PORT_PROTOCOLS.has(protoName)) {
      const name = moduleAccepts(protoName, token);
      if (name !== undefined) {
        const instance: MatchInstance = { module: protoName, implicit: true, options: [] };
        dealt.matches.push(instance);
        const values = takeValues(token, MODULES[protoName]!.arity[name]!);
        if (values) instance.options.push({ negated, name, values });
        return;
      }
    }
    const last = dealt.matches[dealt.matches.length - 1];
    if (target && TARGET_OPTIONS[target.name] === undefined && !STANDARD_TARGETS.has(target.name)) {
      target.options.push({ negated, name: token, values: takeGreedy() });
      return;
    }
    if (last && MODULES[last.module] === undefined) {
      last.options.push({ negated, name: token, values: takeGreedy() });
      return;
    }
    dealt.problems.push(`unknown option ${token}`);
    takeGreedy();
  }
}

function normalizeProtocol(text: string): string {
  const lower = text.toLowerCase();
  return PROTOCOL_NAMES[lower] ?? lower;
}

// ---------------------------------------------------------------- step 2: reading values

/** Read a rule's tokens (the arguments after "-A CHAIN") for a table of the given family. */
export function readRuleSpec(args: readonly string[], family: Family): RuleSpec {
  const dealt = dealTokens(args);
  const problems = dealt.problems;
  const notes = dealt.notes;

  const source = readAddress(dealt.generic.get('-s'), family, problems);
  const destination = readAddress(dealt.generic.get('-d'), family, problems);
  const inInterface = readInterface(dealt.generic.get('-i'));
  const outInterface = readInterface(dealt.generic.get('-o'));
  const protocol = readProtocol(dealt.generic.get('-p'));
  const fragmentOption = dealt.generic.get('-f');
  const fragment = fragmentOption ? { negated: fragmentOption.negated } : undefined;
  if (fragment) notes.push('-f (fragments) is not evaluated');

  const matches = dealt.matches.map((instance) => readMatch(instance, family, protocol, problems));
  for (const match of matches) notes.push(...match.notes);
  const target = dealt.target ? readTarget(dealt.target, family, problems, notes) : undefined;

  // Assigned one by one, in the order of the fields: object spreads of optional parts were a
  // tenth of the time to read a 10k-service ruleset (368k rules).
  const spec: Mutable<RuleSpec> = {} as Mutable<RuleSpec>;
  if (source) spec.source = source;
  if (destination) spec.destination = destination;
  if (inInterface) spec.inInterface = inInterface;
  if (outInterface) spec.outInterface = outInterface;
  if (protocol) spec.protocol = protocol;
  if (fragment) spec.fragment = fragment;
  if (dealt.onlyFamily) spec.onlyFamily = dealt.onlyFamily;
  spec.matches = matches;
  if (target) spec.target = target;
  spec.problems = problems;
  spec.notes = notes;
  return spec;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function readAddress(option: RawOption | undefined, family: Family, problems: string[]): AddressMatch | undefined {
  if (!option) return undefined;
  const addresses: AddressSpec[] = [];
  for (const part of option.values[0]!.split(',')) {
    const spec = parseAddressSpec(part);
    if (!spec) {
      problems.push(`${option.name} ${part}: not an address or network (host names are not resolved)`);
      continue;
    }
    if (spec.family !== family) {
      problems.push(`${option.name} ${part}: an IPv${spec.family} address in an IPv${family} ruleset`);
      continue;
    }
    addresses.push(spec);
  }
  // "0.0.0.0/0" matches everything; iptables-save leaves it out.
  const matchesAll = addresses.length === 1 && addresses[0]!.prefixLength === 0 && !option.negated;
  return addresses.length === 0 || matchesAll ? undefined : { negated: option.negated, addresses };
}

function readInterface(option: RawOption | undefined): InterfaceMatch | undefined {
  return option ? { negated: option.negated, name: option.values[0]! } : undefined;
}

function readProtocol(option: RawOption | undefined): ProtocolMatch | undefined {
  if (!option) return undefined;
  const name = normalizeProtocol(option.values[0]!);
  if ((name === 'all' || name === '0') && !option.negated) return undefined;
  return { negated: option.negated, name };
}

function readMatch(instance: MatchInstance, family: Family, protocol: ProtocolMatch | undefined, problems: string[]): MatchSpec {
  const base = { module: instance.module, implicit: instance.implicit };
  const notes: string[] = [];
  const other: RawOption[] = [];
  const reader = new OptionReader(instance, problems);
  switch (instance.module) {
    case 'comment': {
      const comment = reader.value('--comment') ?? '';
      if (comment.length > 255) problems.push('--comment: longer than 255 characters');
      return { module: base.module, implicit: base.implicit, kind: 'comment', comment, notes, other };
    }
    case 'tcp': case 'udp': case 'sctp': {
      if (!protocol || protocol.negated || protocol.name !== instance.module) {
        problems.push(`-m ${instance.module} needs -p ${instance.module}`);
      }
      const sport = readPortOption(reader.option('--sport'), notes, problems);
      const dport = readPortOption(reader.option('--dport'), notes, problems);
      let tcpFlags: PortsMatch['tcpFlags'];
      const flags = reader.option('--tcp-flags');
      const syn = reader.option('--syn');
      if (flags) tcpFlags = readTcpFlags(flags, problems);
      else if (syn) tcpFlags = { negated: syn.negated, mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] };
      for (const rest of reader.rest(['--sport', '--dport', '--tcp-flags', '--syn'])) {
        other.push(rest);
        notes.push(`-m ${instance.module} ${rest.name} is not evaluated`);
      }
      const ports: Mutable<PortsMatch> = { module: instance.module, implicit: base.implicit, kind: 'ports' } as Mutable<PortsMatch>;
      if (sport) ports.sport = sport;
      if (dport) ports.dport = dport;
      if (tcpFlags) ports.tcpFlags = tcpFlags;
      ports.notes = notes;
      ports.other = other;
      return ports;
    }
    case 'multiport': {
      if (!protocol || protocol.negated || !PORT_PROTOCOLS.has(protocol.name)) {
        problems.push('-m multiport needs -p tcp, -p udp or -p sctp');
      }
      const options = instance.options;
      if (options.length !== 1) problems.push('-m multiport takes exactly one of --sports, --dports, --ports');
      const option = options[0];
      const ports = option ? parsePortList(option.values[0]!) : undefined;
      if (option && !ports) problems.push(`${option.name} ${option.values[0]}: not a list of at most 15 ports`);
      const direction = option?.name === '--sports' ? 'source' : option?.name === '--dports' ? 'destination' : 'either';
      return { module: base.module, implicit: base.implicit, kind: 'multiport', negated: option?.negated ?? false, direction, ports: ports ?? [], notes, other };
    }
    case 'addrtype': {
      const readTypes = (name: string): { negated: boolean; types: string[] } | undefined => {
        const option = reader.option(name);
        if (!option) return undefined;
        const types = option.values[0]!.split(',').map((t) => t.toUpperCase());
        const unknown = types.filter((t) => !ADDRESS_TYPES.includes(t));
        if (unknown.length > 0) problems.push(`${name}: unknown address type ${unknown.join(',')}`);
        return { negated: option.negated, types: ADDRESS_TYPES.filter((t) => types.includes(t)) };
      };
      const srcType = readTypes('--src-type');
      const dstType = readTypes('--dst-type');
      const limitIfaceIn = reader.option('--limit-iface-in') !== undefined;
      const limitIfaceOut = reader.option('--limit-iface-out') !== undefined;
      if (limitIfaceIn || limitIfaceOut) notes.push('-m addrtype --limit-iface-in/out is not evaluated');
      const addrtype: Mutable<AddrtypeMatch> = { module: base.module, implicit: base.implicit, kind: 'addrtype' } as Mutable<AddrtypeMatch>;
      if (srcType) addrtype.srcType = srcType;
      if (dstType) addrtype.dstType = dstType;
      addrtype.limitIfaceIn = limitIfaceIn;
      addrtype.limitIfaceOut = limitIfaceOut;
      addrtype.notes = notes;
      addrtype.other = other;
      return addrtype;
    }
    case 'mark': {
      const option = reader.option('--mark');
      const parsed = option ? parseMarkMask(option.values[0]!) : undefined;
      if (!option) problems.push('-m mark needs --mark');
      else if (!parsed) problems.push(`--mark ${option.values[0]}: not a mark (value[/mask], 32 bits)`);
      return { module: base.module, implicit: base.implicit, kind: 'mark', negated: option?.negated ?? false, value: parsed?.value ?? 0, mask: parsed?.mask ?? U32_MAX, notes, other };
    }
    case 'conntrack': case 'state': {
      const stateOption = reader.option(instance.module === 'state' ? '--state' : '--ctstate');
      let ctstate: ConntrackMatch['ctstate'];
      if (stateOption) {
        const states = stateOption.values[0]!.split(',').map((s) => s.toUpperCase());
        const unknown = states.filter((s) => !(CT_STATES as readonly string[]).includes(s));
        if (unknown.length > 0) problems.push(`${stateOption.name}: unknown state ${unknown.join(',')}`);
        ctstate = { negated: stateOption.negated, states: CT_STATES.filter((s) => states.includes(s)) };
      }
      for (const rest of reader.rest(['--ctstate', '--state'])) {
        other.push(rest);
        notes.push(`-m conntrack ${rest.name} is not evaluated`);
      }
      const conntrack: Mutable<ConntrackMatch> = { module: base.module, implicit: base.implicit, kind: 'conntrack' } as Mutable<ConntrackMatch>;
      if (ctstate) conntrack.ctstate = ctstate;
      conntrack.notes = notes;
      conntrack.other = other;
      return conntrack;
    }
    case 'statistic':
      return readStatistic(base, reader, problems, notes, other);
    case 'recent':
      return readRecent(base, reader, family, problems, notes, other);
    case 'nfacct':
      return { module: base.module, implicit: base.implicit, kind: 'nfacct', name: reader.value('--nfacct-name') ?? '', notes, other };
    case 'set': {
      const option = reader.option('--match-set');
      if (!option) problems.push('-m set needs --match-set NAME FLAGS');
      const flagText = option?.values[1] ?? '';
      const flags = flagText.split(',');
      if (option && (flags.length > 6 || flags.some((f) => f !== 'src' && f !== 'dst'))) {
        problems.push(`--match-set ${option.values[0]} ${flagText}: flags must be src or dst, comma separated`);
      }
      for (const rest of reader.rest(['--match-set'])) {
        other.push(rest);
        notes.push(`-m set ${rest.name} is not evaluated`);
      }
      return {
        module: base.module, implicit: base.implicit, kind: 'set', negated: option?.negated ?? false, setName: option?.values[0] ?? '',
        flags: flags.filter((f): f is 'src' | 'dst' => f === 'src' || f === 'dst'), notes, other,
      };
    }
    default:
      notes.push(`-m ${instance.module} is not modelled`);
      return { module: base.module, implicit: base.implicit, kind: 'other', notes, other: instance.options };
  }
}

function readPortOption(option: RawOption | undefined, notes: string[], problems: string[]): PortMatch | undefined {
  if (!option) return undefined;
  const text = option.values[0]!;
  const range = parsePortRange(text);
  if (range) return { negated: option.negated, range };
  if (isServiceName(text)) notes.push(`${option.name} ${text}: service names are not resolved`);
  else problems.push(`${option.name} ${text}: not a port or port range`);
  return undefined;
}

function readTcpFlags(option: RawOption, problems: string[]): PortsMatch['tcpFlags'] {
  const names = (text: string): string[] => {
    const list = text.toUpperCase().split(',');
    const expanded = list.includes('ALL') ? [...TCP_FLAGS] : list.includes('NONE') ? [] : list;
    const unknown = expanded.filter((f) => !TCP_FLAGS.includes(f));
    if (unknown.length > 0) problems.push(`--tcp-flags: unknown flag ${unknown.join(',')}`);
    return TCP_FLAGS.filter((f) => expanded.includes(f));
  };
  return { negated: option.negated, mask: names(option.values[0]!), comp: names(option.values[1]!) };
}

function readStatistic(
  base: { module: string; implicit: boolean }, reader: OptionReader, problems: string[], notes: string[], other: RawOption[],
): StatisticMatch {
  const mode = reader.value('--mode');
  const probability = reader.option('--probability');
  const every = reader.option('--every');
  const packet = reader.option('--packet');
  const negated = (probability?.negated ?? false) || (every?.negated ?? false);
  if (mode === 'random') {
    const p = probability ? parseProbability(probability.values[0]!) : undefined;
    if (!probability) problems.push('statistic --mode random needs --probability');
    else if (p === undefined) problems.push(`--probability ${probability.values[0]}: not a number from 0 to 1`);
    return { module: base.module, implicit: base.implicit, kind: 'statistic', mode: 'random', negated, probabilityStored: probabilityToKernel(p ?? 1), every: 0, packet: 0, notes, other };
  }
  if (mode !== 'nth') problems.push(`statistic --mode ${mode ?? '(missing)'}: must be random or nth`);
  const everyValue = every ? parseUnsigned(every.values[0]!, U32_MAX) : undefined;
  const packetValue = packet ? parseUnsigned(packet.values[0]!, U32_MAX) : undefined;
  if (mode === 'nth') {
    if (everyValue === undefined || everyValue === 0) problems.push('statistic --mode nth needs --every N (N > 0)');
    if (packetValue === undefined) problems.push('statistic --mode nth needs --packet P');
    else if (everyValue !== undefined && packetValue >= everyValue) problems.push('statistic --packet must be smaller than --every');
  }
  return { module: base.module, implicit: base.implicit, kind: 'statistic', mode: 'nth', negated, probabilityStored: 0, every: everyValue ?? 1, packet: packetValue ?? 0, notes, other };
}

function readRecent(
  base: { module: string; implicit: boolean }, reader: OptionReader, family: Family,
  problems: string[], notes: string[], other: RawOption[],
): RecentMatch {
  const commands = (['set', 'rcheck', 'update', 'remove'] as const).filter((c) => reader.option(`--${c}`) !== undefined);
  if (commands.length !== 1) problems.push('-m recent needs exactly one of --set, --rcheck, --update, --remove');
  const command = commands[0] ?? 'rcheck';
  const negated = reader.option(`--${command}`)?.negated ?? false;
  const secondsText = reader.value('--seconds');
  const hitcountText = reader.value('--hitcount');
  const seconds = secondsText === undefined ? undefined : parseUnsigned(secondsText, U32_MAX);
  const hitcount = hitcountText === undefined ? undefined : parseUnsigned(hitcountText, 255);
  if (secondsText !== undefined && seconds === undefined) problems.push(`--seconds ${secondsText}: not a number`);
  if (hitcountText !== undefined && hitcount === undefined) problems.push(`--hitcount ${hitcountText}: not a number`);
  const maskText = reader.value('--mask');
  let mask: string | undefined;
  if (maskText !== undefined) {
    const spec = parseAddressSpec(maskText);
    if (!spec || spec.family !== family || spec.prefixLength !== (family === 4 ? 32 : 128)) {
      problems.push(`--mask ${maskText}: not an IPv${family} address mask`);
    } else {
      mask = spec.text.slice(0, spec.text.indexOf('/'));
    }
  }
  const reap = reader.option('--reap') !== undefined;
  if (reap && seconds === undefined) problems.push('recent --reap needs --seconds');
  return {
    module: base.module, implicit: base.implicit, kind: 'recent', command, negated, seconds: seconds || undefined, reap, hitcount: hitcount || undefined,
    rttl: reader.option('--rttl') !== undefined, name: reader.value('--name') ?? 'DEFAULT', mask,
    side: reader.option('--rdest') !== undefined ? 'dest' : 'source', notes, other,
  };
}

function readTarget(target: TargetInstance, family: Family, problems: string[], notes: string[]): TargetSpec {
  const reader = new OptionReader({ module: target.name, implicit: false, options: target.options }, problems);
  const flagsOf = (names: readonly string[]): string[] => names.filter((n) => reader.option(n) !== undefined);
  if (STANDARD_TARGETS.has(target.name)) {
    if (target.goto) problems.push(`-g ${target.name}: only a chain can be a goto target`);
    return { kind: 'standard', name: target.name as 'ACCEPT' | 'DROP' | 'RETURN' | 'QUEUE' };
  }
  switch (target.name) {
    case 'REJECT': {
      const given = reader.value('--reject-with');
      const rejectWith = given === undefined ? defaultRejectWith(family) : rejectTypeName(given, family);
      if (rejectWith === undefined) problems.push(`--reject-with ${given}: not a reject type for IPv${family}`);
      return { kind: 'reject', rejectWith: rejectWith ?? defaultRejectWith(family) };
    }
    case 'DNAT': case 'SNAT': {
      const optionName = target.name === 'DNAT' ? '--to-destination' : '--to-source';
      const text = reader.value(optionName);
      const to = text === undefined ? undefined : parseNatRange(text, family);
      if (text !== undefined && !to) problems.push(`${optionName} ${text}: not an address[:port] of this family`);
      if (text === undefined && target.name === 'SNAT') problems.push('SNAT needs --to-source');
      const flags = flagsOf(['--random', '--random-fully', '--persistent']); // the order iptables-save prints
      return target.name === 'DNAT' ? { kind: 'dnat', to, flags } : { kind: 'snat', to, flags };
    }
    case 'MASQUERADE':
      return { kind: 'masquerade', toPorts: reader.value('--to-ports'), flags: flagsOf(['--random', '--random-fully']) };
    case 'MARK':
      return readMarkTarget(reader, problems);
    default:
      if (target.options.length > 0) notes.push(`-j ${target.name} is not modelled`);
      return { kind: 'jump', name: target.name, goto: target.goto, options: target.options };
  }
}

/** libxt_MARK (revision 2): every form becomes --set-xmark value/mask. */
function readMarkTarget(reader: OptionReader, problems: string[]): TargetSpec {
  const forms = ['--set-xmark', '--set-mark', '--and-mark', '--or-mark', '--xor-mark'].filter((n) => reader.option(n));
  if (forms.length !== 1) {
    problems.push('MARK needs exactly one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark');
    return { kind: 'mark', value: 0, mask: 0 };
  }
  const form = forms[0]!;
  const text = reader.value(form)!;
  const parsed = form === '--set-xmark' || form === '--set-mark' ? parseMarkMask(text) : plainMark(text);
  if (!parsed) {
    problems.push(`${form} ${text}: not a mark`);
    return { kind: 'mark', value: 0, mask: 0 };
  }
  const { value, mask } = parsed;
  switch (form) {
    case '--set-mark': return { kind: 'mark', value, mask: (value | mask) >>> 0 };
    case '--and-mark': return { kind: 'mark', value: 0, mask: ~value >>> 0 };
    case '--or-mark': return { kind: 'mark', value, mask: value };
    case '--xor-mark': return { kind: 'mark', value, mask: 0 };
    default: return { kind: 'mark', value, mask };
  }
}

function plainMark(text: string): { value: number; mask: number } | undefined {
  const value = parseUnsigned(text, U32_MAX);
  return value === undefined ? undefined : { value, mask: U32_MAX };
}

export function defaultRejectWith(family: Family): string {
  return family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
}

/** libipt_REJECT / libip6t_REJECT names and their short aliases. */
const REJECT_TYPES: Readonly<Record<Family, Readonly<Record<string, string>>>> = {
  4: {
    'icmp-net-unreachable': 'icmp-net-unreachable', 'net-unreach': 'icmp-net-unreachable',
    'icmp-host-unreachable': 'icmp-host-unreachable', 'host-unreach': 'icmp-host-unreachable',
    'icmp-proto-unreachable': 'icmp-proto-unreachable', 'proto-unreach': 'icmp-proto-unreachable',
    'icmp-port-unreachable': 'icmp-port-unreachable', 'port-unreach': 'icmp-port-unreachable',
    'icmp-net-prohibited': 'icmp-net-prohibited', 'net-prohib': 'icmp-net-prohibited',
    'icmp-host-prohibited': 'icmp-host-prohibited', 'host-prohib': 'icmp-host-prohibited',
    'icmp-admin-prohibited': 'icmp-admin-prohibited', 'admin-prohib': 'icmp-admin-prohibited',
    'tcp-reset': 'tcp-reset', 'tcp-rst': 'tcp-reset',
  },
  6: {
    'icmp6-no-route': 'icmp6-no-route', 'no-route': 'icmp6-no-route',
    'icmp6-adm-prohibited': 'icmp6-adm-prohibited', 'adm-prohibited': 'icmp6-adm-prohibited',
    'icmp6-addr-unreachable': 'icmp6-addr-unreachable', 'addr-unreach': 'icmp6-addr-unreachable',
    'icmp6-port-unreachable': 'icmp6-port-unreachable', 'port-unreach': 'icmp6-port-unreachable',
    'icmp6-policy-fail': 'icmp6-policy-fail', 'policy-fail': 'icmp6-policy-fail',
    'icmp6-reject-route': 'icmp6-reject-route', 'reject-route': 'icmp6-reject-route',
    'tcp-reset': 'tcp-reset', 'tcp-rst': 'tcp-reset',
  },
};

function rejectTypeName(text: string, family: Family): string | undefined {
  return REJECT_TYPES[family][text];
}

/** Looks options up by name in one match's (or target's) list; reports an option given twice. */
class OptionReader {
  private readonly byName = new Map<string, RawOption>();

  constructor(instance: MatchInstance, problems: string[]) {
    for (const option of instance.options) {
      if (this.byName.has(option.name)) problems.push(`-m ${instance.module}: ${option.name} is given twice`);
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
