/**
 * NftRuleset → the text `nft list ruleset` (nft 1.0.6) prints once the ruleset is loaded, byte
 * for byte. A kernel lists a table's sets and maps first, then its chains, each in creation
 * order; elements sorted; base chains with their policy and nft's priority names; rules in the
 * form nft prints them (rule-print.ts). Checked against a real kernel in
 * test/nftables/kernel-roundtrip.test.ts.
 *
 *   table ip kube-proxy {
 *   	comment "rules for kube-proxy"
 *   	set cluster-ips {
 *   		type ipv4_addr
 *   		comment "Active ClusterIPs"
 *   		elements = { 172.30.0.41, 172.30.0.42 }
 *   	}
 *
 *   	chain filter-forward {
 *   		type filter hook forward priority filter; policy accept;
 *   		ct state new jump service-endpoints-check
 *   	}
 *   }
 */
import { durationText } from './durations.js';
import { elementsPerLine, joinElements, keyPartText, keyTypes, sortedElements } from './elements.js';
import { elementText } from './render-script.js';
import { parseRuleText } from './rule-parse.js';
import { canonicalRuleText } from './rule-print.js';
import type { NftBaseChain, NftChain, NftFamily, NftRule, NftRuleset, NftSet, NftTable } from './types.js';

/** nft's standard priorities (rule.c std_prios), in the order it tries them. */
const STD_PRIOS: readonly { readonly value: number; readonly name: string }[] = [
  { value: -300, name: 'raw' },
  { value: -150, name: 'mangle' },
  { value: -100, name: 'dstnat' },
  { value: 0, name: 'filter' },
  { value: 50, name: 'security' },
  { value: 100, name: 'srcnat' },
];

const BRIDGE_STD_PRIOS: readonly { readonly value: number; readonly name: string }[] = [
  { value: -300, name: 'dstnat' },
  { value: -200, name: 'filter' },
  { value: 100, name: 'out' },
  { value: 300, name: 'srcnat' },
];

/** std_prio_family_hook_compat: where a priority name may be used. */
function priorityNameAllowed(name: string, family: NftFamily, hook: string): boolean {
  if (family === 'bridge') {
    switch (name) {
      case 'dstnat': return hook === 'prerouting';
      case 'filter': return true;
      case 'out': return hook === 'output';
      case 'srcnat': return hook === 'postrouting';
      default: return false;
    }
  }
  const ipLike = family === 'ip' || family === 'ip6' || family === 'inet';
  switch (name) {
    case 'filter': return ipLike || family === 'arp' || family === 'netdev';
    case 'raw':
    case 'mangle':
    case 'security': return ipLike;
    case 'dstnat': return ipLike && hook === 'prerouting';
    case 'srcnat': return ipLike && hook === 'postrouting';
    default: return false;
  }
}

/**
 * prio2str: the first standard priority within 10 of the value names it ("dstnat - 10") when
 * the name may be used with this hook; otherwise (or when the first close one may not) the number.
 */
export function priorityText(family: NftFamily, hook: string, priority: number): string {
  for (const std of family === 'bridge' ? BRIDGE_STD_PRIOS : STD_PRIOS) {
    if (Math.abs(priority - std.value) > 10) continue;
    if (!priorityNameAllowed(std.name, family, hook)) break;
    const offset = priority - std.value;
    return offset > 0 ? `${std.name} + ${offset}` : offset < 0 ? `${std.name} - ${-offset}` : std.name;
  }
  return String(priority);
}

function quoted(text: string): string {
  return `"${text}"`;
}

/** nft prints set flags in this order whatever order they were given in. */
const FLAG_ORDER = ['constant', 'dynamic', 'interval', 'timeout', 'concat'];

/** Sets that rules update from the packet path: the kernel gives them a size (65535) when they have none. */
function dynamicallyUpdatedSets(table: NftTable): Set<string> {
  const names = new Set<string>();
  for (const chain of table.chains.values()) {
    for (const rule of chain.rules) {
      if (!rule.text.includes('@') || !(rule.text.includes('update ') || rule.text.includes('add '))) continue;
      for (const st of parseRuleText(rule.text).statements) if (st.kind === 'dynset') names.add(st.set);
    }
  }
  return names;
}

/** The size a kernel lists for a set that rules update from the packet path and that has none (measured, nft 1.0.6). */
export const DYNAMIC_SET_DEFAULT_SIZE = 65535;

function setBlock(set: NftSet, updated: boolean): string {
  const lines = [`\t${set.kind} ${set.name} {`];
  lines.push(set.typeOf !== undefined ? `\t\ttypeof ${set.typeOf}` : `\t\ttype ${set.type}`);
  if (set.policy !== undefined && set.policy !== 'performance') lines.push(`\t\tpolicy ${set.policy}`);
  const size = set.size ?? (updated ? DYNAMIC_SET_DEFAULT_SIZE : undefined);
  if (size !== undefined) lines.push(`\t\tsize ${size}`);
  const flags = [...(set.flags ?? [])].sort((a, b) => FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b));
  if (flags.length > 0) lines.push(`\t\tflags ${flags.join(',')}`);
  if (set.autoMerge) lines.push('\t\tauto-merge');
  if (set.timeoutSeconds !== undefined) lines.push(`\t\ttimeout ${durationText(set.timeoutSeconds)}`);
  if (set.gcIntervalSeconds !== undefined) lines.push(`\t\tgc-interval ${durationText(set.gcIntervalSeconds)}`);
  if (set.comment !== undefined) lines.push(`\t\tcomment ${quoted(set.comment)}`);
  if (set.elements.length > 0) {
    const types = keyTypes(set);
    const texts = sortedElements(set).map((e) => elementText(types ? { ...e, key: e.key.map((part, i) => keyPartText(types[i], part)) } : e));
    lines.push(`\t\telements = ${joinElements(texts, elementsPerLine(set))}`);
  }
  lines.push('\t}');
  return lines.join('\n') + '\n';
}

function baseLine(family: NftFamily, base: NftBaseChain): string {
  const device = base.device !== undefined ? ` device ${quoted(base.device)}` : '';
  return `\t\ttype ${base.type} hook ${base.hook}${device} priority ${priorityText(family, base.hook, base.priority)}; policy ${base.policy ?? 'accept'};`;
}

export function canonicalRule(rule: NftRule): string {
  const text = rule.listed ? rule.text : canonicalRuleText(parseRuleText(rule.text), rule.text);
  return rule.comment === undefined ? text : `${text} comment ${quoted(rule.comment)}`;
}

function chainBlock(family: NftFamily, chain: NftChain): string {
  let out = `\tchain ${chain.name} {`;
  if (chain.comment !== undefined) out += `\n\t\tcomment ${quoted(chain.comment)}`;
  out += '\n';
  if (chain.base) out += baseLine(family, chain.base) + '\n';
  for (const rule of chain.rules) out += `\t\t${canonicalRule(rule)}\n`;
  return out + '\t}\n';
}

export function renderCanonicalTable(table: NftTable): string {
  let out = `table ${table.family} ${table.name} {\n`;
  if (table.flags && table.flags.length > 0) out += `\tflags ${table.flags.join(',')}\n`;
  if (table.comment !== undefined) out += `\tcomment ${quoted(table.comment)}\n`;
  const blocks: string[] = [];
  const others = table.others ?? [];
  const otherBlock = (lines: readonly string[]): string => lines.map((l) => `\t${l}`).join('\n') + '\n';
  for (const other of others) if (other.kind !== 'flowtable') blocks.push(otherBlock(other.lines));
  const updated = dynamicallyUpdatedSets(table);
  for (const set of table.sets.values()) blocks.push(setBlock(set, updated.has(set.name)));
  for (const other of others) if (other.kind === 'flowtable') blocks.push(otherBlock(other.lines));
  for (const chain of table.chains.values()) blocks.push(chainBlock(table.family, chain));
  return out + blocks.join('\n') + '}\n';
}

/** What `nft list ruleset` prints for these tables, loaded in this order into an empty namespace. */
export function renderNftCanonical(ruleset: NftRuleset): string {
  return ruleset.tables.map(renderCanonicalTable).join('');
}
