/**
 * The protocol matches with ports: `-m tcp`, `-m udp`, `-m sctp` (libxt_tcp, libxt_udp,
 * libxt_sctp), `--sport`/`--dport` with ranges and negation, and tcp's `--tcp-flags`/`--syn`.
 * A port option after `-p tcp` loads the match by itself (iptables' implicit match).
 */
import { formatPortRange, isServiceName, parsePortRange, type PortRange } from '../rule-values.js';
import { not, renderRawOption, type MatchBase, type MatchModule, type Mutable, type RawOption } from './module.js';
// A type only (the registry lists this module): the merge below looks across a rule's matches.
import type { MatchSpec } from './registry.js';

export interface PortMatch {
  readonly negated: boolean;
  readonly range: PortRange;
}

export interface PortsMatch extends MatchBase {
  readonly kind: 'ports';
  readonly module: 'tcp' | 'udp' | 'sctp';
  readonly sport?: PortMatch;
  readonly dport?: PortMatch;
  /** --tcp-flags MASK COMP (or --syn): flag names in libxt_tcp's order. */
  readonly tcpFlags?: { readonly negated: boolean; readonly mask: readonly string[]; readonly comp: readonly string[] };
}

/** The protocols whose options load their match implicitly. */
export const PORT_PROTOCOLS: ReadonlySet<string> = new Set(['tcp', 'udp', 'sctp']);

/** libxt_tcp's flag names, in the order it prints them. */
export const TCP_FLAGS: readonly string[] = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];

/** The first packet of a TCP connection carries SYN alone. */
const FIRST_PACKET_TCP_FLAGS = ['SYN'];

const PORT_OPTIONS = { '--sport': 1, '--dport': 1 } as const;
const PORT_ALIASES = { '--source-port': '--sport', '--destination-port': '--dport' } as const;

export const ports: MatchModule<PortsMatch> = {
  kind: 'ports',
  names: {
    tcp: { arity: { ...PORT_OPTIONS, '--tcp-flags': 2, '--syn': 0, '--tcp-option': 1 }, aliases: PORT_ALIASES },
    udp: { arity: PORT_OPTIONS, aliases: PORT_ALIASES },
    sctp: { arity: { ...PORT_OPTIONS, '--chunk-types': 2 }, aliases: PORT_ALIASES },
  },

  read(reader) {
    const { protocol, problems, notes } = reader;
    const module = reader.module as PortsMatch['module'];
    if (!protocol || protocol.negated || protocol.name !== module) problems.push(`-m ${module} needs -p ${module}`);
    const sport = readPortOption(reader.option('--sport'), notes, problems);
    const dport = readPortOption(reader.option('--dport'), notes, problems);
    let tcpFlags: PortsMatch['tcpFlags'];
    const flags = reader.option('--tcp-flags');
    const syn = reader.option('--syn');
    if (flags) tcpFlags = readTcpFlags(flags, problems);
    else if (syn) tcpFlags = { negated: syn.negated, mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] };
    reader.keepRest(['--sport', '--dport', '--tcp-flags', '--syn']);
    const match: Mutable<PortsMatch> = { module, implicit: reader.implicit, kind: 'ports' } as Mutable<PortsMatch>;
    if (sport) match.sport = sport;
    if (dport) match.dport = dport;
    if (tcpFlags) match.tcpFlags = tcpFlags;
    match.notes = notes;
    match.other = reader.other;
    return match;
  },

  canonical(match) {
    const parts: string[] = [];
    const sport = printablePort(match.sport);
    const dport = printablePort(match.dport);
    if (sport) parts.push(`${not(sport.negated)}--sport ${formatPortRange(sport.range)}`);
    if (dport) parts.push(`${not(dport.negated)}--dport ${formatPortRange(dport.range)}`);
    parts.push(...match.other.map(renderRawOption));
    if (match.tcpFlags) {
      const names = (list: readonly string[]): string => (list.length === 0 ? 'NONE' : list.join(','));
      parts.push(`${not(match.tcpFlags.negated)}--tcp-flags ${names(match.tcpFlags.mask)} ${names(match.tcpFlags.comp)}`);
    }
    return parts;
  },

  compile(match, checks) {
    const module = match.module;
    // "-m tcp" needs "-p tcp"; when the rule says so, the protocol check already covers it.
    const protocol = checks.protocol;
    const coveredByProtocol = protocol !== undefined && !protocol.negated && protocol.name === module;
    if (!coveredByProtocol) checks.test((flow) => flow.proto === module);
    if (match.dport) checks.dport(match.dport.range, match.dport.negated);
    if (match.sport) {
      const { range, negated } = match.sport;
      checks.note('--sport matches when the packet has no source port');
      checks.test((flow) => flow.sport === undefined || inRange(flow.sport, range) !== negated);
    }
    if (match.tcpFlags) {
      const { mask, comp, negated } = match.tcpFlags;
      const bits = (names: readonly string[]): number => names.reduce((acc, n) => acc | (1 << TCP_FLAGS.indexOf(n)), 0);
      const matches = (bits(FIRST_PACKET_TCP_FLAGS) & bits(mask)) === bits(comp);
      checks.test(() => matches !== negated);
    }
  },
};

export function inRange(port: number, range: PortRange): boolean {
  return port >= range.min && port <= range.max;
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

// ---------------------------------------------------------------- the kernel's save

/**
 * iptables-nft turns the options of tcp/udp matches into nftables payload expressions and,
 * when saving, gathers all of a rule's back into one match, at the place of the first match
 * that had any. A match with no options stays where it was. (The only save that looks across
 * a rule's matches: canonical.ts calls it before printing each match.)
 */
export function mergeNativePortMatches(matches: readonly MatchSpec[]): MatchSpec[] {
  const out: MatchSpec[] = [];
  const firstWithOptions = new Map<string, number>();
  for (const match of matches) {
    const isNative = match.kind === 'ports' && (match.module === 'tcp' || match.module === 'udp');
    if (!isNative || !hasPortOptions(match)) {
      out.push(match);
      continue;
    }
    const at = firstWithOptions.get(match.module);
    if (at === undefined) {
      firstWithOptions.set(match.module, out.length);
      out.push(match);
      continue;
    }
    const into = out[at] as PortsMatch;
    out[at] = {
      ...into,
      ...(match.sport ? { sport: match.sport } : {}),
      ...(match.dport ? { dport: match.dport } : {}),
      ...(match.tcpFlags ? { tcpFlags: match.tcpFlags } : {}),
      other: [...into.other, ...match.other],
    };
  }
  return out;
}

function hasPortOptions(match: PortsMatch): boolean {
  return printablePort(match.sport) !== undefined || printablePort(match.dport) !== undefined
    || match.tcpFlags !== undefined || match.other.length > 0;
}

/** A full range (0:65535) that is not negated checks nothing; libxt_tcp leaves it out. */
function printablePort(port: PortMatch | undefined): PortMatch | undefined {
  if (!port) return undefined;
  return port.range.min === 0 && port.range.max === 65535 && !port.negated ? undefined : port;
}
