/**
 * A Ruleset printed the way a real kernel's iptables-save (iptables-nft 1.8.9) prints it back
 * after iptables-restore, so kpsim's output can be compared with a node's, line for line.
 *
 * What the kernel round trip changes, all checked against a real restore/save in a netns:
 * - tables in the order mangle, raw, filter, nat; every built-in chain of a table is listed
 *   (policy ACCEPT unless set), then the user chains sorted by name (byte order), and the
 *   rules chain by chain in that same order; counters always [0:0];
 * - in a rule: -s, -d, -i, -o, -p first, then the matches in the order they were loaded, then
 *   the target; addresses carry their prefix (/32, /128), "0.0.0.0/0" disappears, "-p all"
 *   disappears, "-p 6" becomes "-p tcp", "-s a,b" becomes one rule per address;
 * - tcp/udp port matches become native nftables expressions: all such matches of a rule merge
 *   into the first one that has options, printed --sport then --dport; an empty "-m tcp" stays;
 * - strings go through xtables_save_string: quoted (with \" \\ \' escapes) unless made only of
 *   letters, digits, "_" and "-"; nfacct prints its name after two spaces for that reason;
 * - marks in hex; MARK targets all become --set-xmark value/mask; REJECT gains its default
 *   --reject-with; --probability shows the kernel's 31-bit fraction with 11 decimals;
 *   recent spells out --name DEFAULT, --mask and --rsource; conntrack states and address
 *   types come out in the kernel's bit order.
 */
import type { Family } from '../util/ip.js';
import {
  ADDRESS_TYPES,
  readRuleSpec,
  type MatchSpec,
  type PortMatch,
  type PortsMatch,
  type RawOption,
  type RuleSpec,
  type TargetSpec,
} from './rule-spec.js';
import { formatKernelProbability, formatPortRange, hex, U32_MAX, type AddressSpec } from './rule-values.js';
import { BUILTIN_CHAINS, type Chain, type Rule, type Ruleset, type Table, type TableName } from './types.js';

/** The order iptables-nft-save lists the tables in. */
const TABLE_ORDER: readonly TableName[] = ['mangle', 'raw', 'filter', 'nat'];

export function renderCanonical(ruleset: Ruleset): string {
  let text = '';
  for (const name of TABLE_ORDER) {
    const table = ruleset.tables.get(name);
    if (table) text += renderCanonicalTable(table, ruleset.family);
  }
  return text;
}

export function renderCanonicalTable(table: Table, family: Family): string {
  const lines: string[] = [`*${table.name}`];
  const chains = orderedChains(table);
  for (const chain of chains) {
    const isBuiltin = BUILTIN_CHAINS[table.name].includes(chain.name);
    lines.push(`:${chain.name} ${isBuiltin ? chain.policy ?? 'ACCEPT' : '-'} [0:0]`);
  }
  for (const chain of chains) {
    for (const rule of chain.rules) lines.push(...renderCanonicalRule(rule, family));
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** Built-in chains (all of them, in the kernel's order), then user chains sorted by name. */
function orderedChains(table: Table): Chain[] {
  const builtins = BUILTIN_CHAINS[table.name].map((name) => table.chains.get(name) ?? { name, rules: [] });
  const users = [...table.chains.values()]
    .filter((c) => !BUILTIN_CHAINS[table.name].includes(c.name))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [...builtins, ...users];
}

/** One rule as the kernel prints it back: one line, or several when -s/-d list addresses. */
export function renderCanonicalRule(rule: Rule, family: Family): string[] {
  const spec = readRuleSpec(rule.args, family);
  const tail = [...renderMatches(spec.matches, family), ...renderTarget(spec.target)];
  const sources = spec.source?.addresses ?? [undefined];
  const destinations = spec.destination?.addresses ?? [undefined];
  const lines: string[] = [];
  for (const source of sources) {
    for (const destination of destinations) {
      const parts = [`-A ${rule.chain}`, ...renderGeneric(spec, source, destination), ...tail];
      lines.push(parts.join(' '));
    }
  }
  return lines;
}

function renderGeneric(spec: RuleSpec, source: AddressSpec | undefined, destination: AddressSpec | undefined): string[] {
  const parts: string[] = [];
  const not = (negated: boolean): string => (negated ? '! ' : '');
  if (source) parts.push(`${not(spec.source!.negated)}-s ${source.text}`);
  if (destination) parts.push(`${not(spec.destination!.negated)}-d ${destination.text}`);
  if (spec.inInterface) parts.push(`${not(spec.inInterface.negated)}-i ${spec.inInterface.name}`);
  if (spec.outInterface) parts.push(`${not(spec.outInterface.negated)}-o ${spec.outInterface.name}`);
  if (spec.protocol) parts.push(`${not(spec.protocol.negated)}-p ${spec.protocol.name}`);
  if (spec.fragment) parts.push(`${not(spec.fragment.negated)}-f`);
  return parts;
}

// ---------------------------------------------------------------- matches

function renderMatches(matches: readonly MatchSpec[], family: Family): string[] {
  const merged = mergePortMatches(matches);
  return merged.map((match) => renderMatch(match, family));
}

/**
 * iptables-nft turns the options of tcp/udp matches into nftables payload expressions and,
 * when saving, gathers all of a rule's back into one match, at the place of the first match
 * that had any. A match with no options stays where it was.
 */
function mergePortMatches(matches: readonly MatchSpec[]): MatchSpec[] {
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

function renderMatch(match: MatchSpec, family: Family): string {
  const not = (negated: boolean): string => (negated ? '! ' : '');
  const parts: string[] = [`-m ${match.module}`];
  switch (match.kind) {
    case 'comment':
      parts.push(`--comment ${saveString(match.comment)}`);
      break;
    case 'ports': {
      const sport = printablePort(match.sport);
      const dport = printablePort(match.dport);
      if (sport) parts.push(`${not(sport.negated)}--sport ${formatPortRange(sport.range)}`);
      if (dport) parts.push(`${not(dport.negated)}--dport ${formatPortRange(dport.range)}`);
      parts.push(...match.other.map(renderRawOption));
      if (match.tcpFlags) {
        const names = (list: readonly string[]): string => (list.length === 0 ? 'NONE' : list.join(','));
        parts.push(`${not(match.tcpFlags.negated)}--tcp-flags ${names(match.tcpFlags.mask)} ${names(match.tcpFlags.comp)}`);
      }
      break;
    }
    case 'multiport': {
      const option = match.direction === 'source' ? '--sports' : match.direction === 'destination' ? '--dports' : '--ports';
      parts.push(`${not(match.negated)}${option} ${match.ports.map(formatPortRange).join(',')}`);
      break;
    }
    case 'addrtype': {
      const types = (t: readonly string[]): string => ADDRESS_TYPES.filter((x) => t.includes(x)).join(',');
      if (match.srcType) parts.push(`${not(match.srcType.negated)}--src-type ${types(match.srcType.types)}`);
      if (match.dstType) parts.push(`${not(match.dstType.negated)}--dst-type ${types(match.dstType.types)}`);
      if (match.limitIfaceIn) parts.push('--limit-iface-in');
      if (match.limitIfaceOut) parts.push('--limit-iface-out');
      break;
    }
    case 'mark':
      parts.push(`${not(match.negated)}--mark ${hex(match.value)}${match.mask === U32_MAX ? '' : `/${hex(match.mask)}`}`);
      break;
    case 'conntrack':
      if (match.ctstate) {
        const option = match.module === 'state' ? '--state' : '--ctstate';
        parts.push(`${not(match.ctstate.negated)}${option} ${match.ctstate.states.join(',')}`);
      }
      parts.push(...match.other.map(renderRawOption));
      break;
    case 'statistic':
      if (match.mode === 'random') {
        parts.push(`--mode random ${not(match.negated)}--probability ${formatKernelProbability(match.probabilityStored)}`);
      } else {
        parts.push(`--mode nth ${not(match.negated)}--every ${match.every} --packet ${match.packet}`);
      }
      break;
    case 'recent': {
      parts.push(`${not(match.negated)}--${match.command}`);
      if (match.seconds !== undefined) parts.push(`--seconds ${match.seconds}`);
      if (match.reap) parts.push('--reap');
      if (match.hitcount !== undefined) parts.push(`--hitcount ${match.hitcount}`);
      if (match.rttl) parts.push('--rttl');
      parts.push(`--name ${match.name}`);
      parts.push(`--mask ${match.mask ?? (family === 4 ? '255.255.255.255' : 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')}`);
      parts.push(match.side === 'source' ? '--rsource' : '--rdest');
      break;
    }
    case 'nfacct':
      // xtables_save_string writes its own leading space: hence two.
      parts.push(`--nfacct-name  ${saveString(match.name)}`);
      break;
    case 'set':
      parts.push(`${not(match.negated)}--match-set ${match.setName} ${match.flags.join(',')}`);
      parts.push(...match.other.map(renderRawOption));
      break;
    case 'other':
      parts.push(...match.other.map(renderRawOption));
      break;
  }
  return parts.join(' ');
}

function renderRawOption(option: RawOption): string {
  const values = option.values.map((v) => (v === '' || /[\s"'\\]/.test(v) ? saveString(v) : v));
  return [`${option.negated ? '! ' : ''}${option.name}`, ...values].join(' ');
}

// ---------------------------------------------------------------- target

function renderTarget(target: TargetSpec | undefined): string[] {
  if (!target) return [];
  switch (target.kind) {
    case 'standard':
      return [`-j ${target.name}`];
    case 'jump':
      return [`-${target.goto ? 'g' : 'j'} ${target.name}`, ...target.options.map(renderRawOption)];
    case 'reject':
      return [`-j REJECT --reject-with ${target.rejectWith}`];
    case 'dnat':
      return ['-j DNAT', ...(target.to ? [`--to-destination ${target.to.text}`] : []), ...target.flags];
    case 'snat':
      return ['-j SNAT', ...(target.to ? [`--to-source ${target.to.text}`] : []), ...target.flags];
    case 'masquerade':
      return ['-j MASQUERADE', ...(target.toPorts !== undefined ? [`--to-ports ${target.toPorts}`] : []), ...target.flags];
    case 'mark':
      return [`-j MARK --set-xmark ${hex(target.value)}/${hex(target.mask)}`];
  }
}

// ---------------------------------------------------------------- strings

const NO_QUOTE = /^[A-Za-z0-9_-]+$/;

/**
 * A string argument as libxtables' xtables_save_string writes it (without its leading space):
 * bare when made only of letters, digits, "_" and "-", else double-quoted with \" \\ \' escapes.
 */
export function saveString(value: string): string {
  if (NO_QUOTE.test(value)) return value;
  return `"${value.replace(/(["\\'])/g, '\\$1')}"`;
}
