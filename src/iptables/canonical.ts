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
import { not, renderRawOption } from './matches/module.js';
import { mergeNativePortMatches } from './matches/ports.js';
import { matchModuleOf } from './matches/registry.js';
import { readRuleSpec, type MatchSpec, type RuleSpec, type TargetSpec } from './rule-spec.js';
import { hex, type AddressSpec } from './rule-values.js';
import { BUILTIN_CHAINS, type Chain, type Rule, type Ruleset, type Table, type TableName } from './types.js';

export { saveString } from './matches/module.js';

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
  if (source) parts.push(`${not(spec.source!.negated)}-s ${source.text}`);
  if (destination) parts.push(`${not(spec.destination!.negated)}-d ${destination.text}`);
  if (spec.inInterface) parts.push(`${not(spec.inInterface.negated)}-i ${spec.inInterface.name}`);
  if (spec.outInterface) parts.push(`${not(spec.outInterface.negated)}-o ${spec.outInterface.name}`);
  if (spec.protocol) parts.push(`${not(spec.protocol.negated)}-p ${spec.protocol.name}`);
  if (spec.fragment) parts.push(`${not(spec.fragment.negated)}-f`);
  return parts;
}

// ---------------------------------------------------------------- matches

/** Each match as its module prints it (matches/), after the kernel's merge of tcp/udp ports. */
function renderMatches(matches: readonly MatchSpec[], family: Family): string[] {
  return mergeNativePortMatches(matches).map((match) => [`-m ${match.module}`, ...matchModuleOf(match).canonical(match, family)].join(' '));
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
