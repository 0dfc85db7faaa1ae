/**
 * A rule's tokens read into a typed spec: the generic matches (-s, -d, -i, -o, -p), the match
 * modules in the order iptables loads them, and the target.
 *
 * iptables reads a rule in two steps and so do we. First the tokens are dealt out: `-m NAME`
 * loads a match; an option goes to the most recently loaded match that has an option of that
 * name (iptables merges each new module's options in front of the older ones); an option no
 * loaded match knows, after `-p tcp|udp|sctp`, loads that protocol's match on the spot (the
 * "implicit" match, e.g. `-p tcp --dport 80`); options after `-j` go to the target when it has
 * them. Then each module's options are read into values, by the module (matches/: one file per
 * match module, with its options, reader, canonical form and trace check).
 *
 * Nothing here throws. What iptables-restore would refuse is listed in `problems` (the parser
 * turns those into errors with a line number); what kpsim keeps but does not model (an unknown
 * module, an option it does not evaluate) is listed in `notes`, and the tracer treats those
 * parts as matching and says so.
 */
import type { Family } from '../util/ip.js';
import { MatchReader, OptionReader, type Mutable, type ProtocolMatch, type RawOption } from './matches/module.js';
import { PORT_PROTOCOLS } from './matches/ports.js';
import { matchModuleNamed, matchOptions, type MatchSpec } from './matches/registry.js';
import { parseAddressSpec, parseMarkMask, parseNatRange, parseUnsigned, U32_MAX, type AddressSpec, type NatRange } from './rule-values.js';

export type { MatchSpec } from './matches/registry.js';
export type { ProtocolMatch, RawOption } from './matches/module.js';

// ---------------------------------------------------------------- the spec

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

// ---------------------------------------------------------------- option tables

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

/** The option's saved name (aliases folded) when the module loaded as `module` takes it. */
function moduleAccepts(module: string, option: string): string | undefined {
  const table = matchOptions(module);
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
        const values = takeValues(token, matchOptions(instance.module)!.arity[name]!);
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
        const values = takeValues(token, matchOptions(protoName)!.arity[name]!);
        if (values) instance.options.push({ negated, name, values });
        return;
      }
    }
    const last = dealt.matches[dealt.matches.length - 1];
    if (target && TARGET_OPTIONS[target.name] === undefined && !STANDARD_TARGETS.has(target.name)) {
      target.options.push({ negated, name: token, values: takeGreedy() });
      return;
    }
    if (last && matchOptions(last.module) === undefined) {
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

  const matches = dealt.matches.map((instance) => matchModuleNamed(instance.module).read(
    new MatchReader(instance.module, instance.implicit, instance.options, family, protocol, problems),
  ));
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

function readTarget(target: TargetInstance, family: Family, problems: string[], notes: string[]): TargetSpec {
  const reader = new OptionReader(target.name, target.options, problems);
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
