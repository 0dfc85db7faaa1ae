/**
 * NftRuleset → one `nft -f` file, laid out as knftables' fake prints a table (Fake.Dump): the
 * table, its chains, sets and maps, then every chain's rules, then every set's and map's
 * elements, each in the ruleset's order. Declarations before rules before elements is also the
 * order nft needs: a rule may only jump to a chain and look up a set that exist, an element may
 * only `goto` a chain that exists. The file loads as is into an empty network namespace.
 *
 *   add table ip kube-proxy { comment "rules for kube-proxy" ; }
 *   add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
 *   add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
 *   add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "..."
 *   add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-... }
 */
import { ChainMap } from './chain-map.js';
import { durationText } from './durations.js';
import { EndpointChain, ruleCountOf } from './endpoint-chain.js';
import type { NftChain, NftElement, NftRuleset, NftSet, NftTable } from './types.js';

/** Go's %q for the plain text nft accepts in a comment. */
export function quoteComment(text: string): string {
  return JSON.stringify(text);
}

export function tableLine(table: NftTable): string {
  const parts: string[] = [];
  if (table.comment !== undefined) parts.push(` comment ${quoteComment(table.comment)} ;`);
  if (table.flags && table.flags.length > 0) parts.push(` flags ${table.flags.join(',')} ;`);
  return `add table ${table.family} ${table.name}${parts.length > 0 ? ` {${parts.join('')} }` : ''}`;
}

export function chainLine(prefix: string, chain: NftChain): string {
  const parts: string[] = [];
  if (chain.base) {
    const b = chain.base;
    let text = ` type ${b.type} hook ${b.hook}`;
    if (b.device !== undefined) text += ` device ${quoteComment(b.device)}`;
    text += ` priority ${b.priority} ;`;
    if (b.policy !== undefined) text += ` policy ${b.policy} ;`;
    parts.push(text);
  }
  if (chain.comment !== undefined) parts.push(` comment ${quoteComment(chain.comment)} ;`);
  return `add chain ${prefix} ${chain.name}${parts.length > 0 ? ` {${parts.join('')} }` : ''}`;
}

export function setLine(prefix: string, set: NftSet): string {
  let text = `add ${set.kind} ${prefix} ${set.name} {`;
  text += set.typeOf !== undefined ? ` typeof ${set.typeOf} ;` : ` type ${set.type} ;`;
  if (set.flags && set.flags.length > 0) text += ` flags ${set.flags.join(',')} ;`;
  if (set.timeoutSeconds !== undefined) text += ` timeout ${set.timeoutSeconds}s ;`;
  if (set.gcIntervalSeconds !== undefined) text += ` gc-interval ${set.gcIntervalSeconds}s ;`;
  if (set.size !== undefined) text += ` size ${set.size} ;`;
  if (set.policy !== undefined) text += ` policy ${set.policy} ;`;
  if (set.autoMerge) text += ' auto-merge ;';
  if (set.comment !== undefined) text += ` comment ${quoteComment(set.comment)} ;`;
  return `${text} }`;
}

export function elementText(element: NftElement): string {
  let text = element.key.join(' . ');
  if (element.timeoutSeconds !== undefined) text += ` timeout ${durationText(element.timeoutSeconds)}`;
  if (element.expiresSeconds !== undefined) text += ` expires ${durationText(element.expiresSeconds)}`;
  if (element.comment !== undefined) text += ` comment ${quoteComment(element.comment)}`;
  if (element.value !== undefined && element.value.length > 0) text += ` : ${element.value.join(' . ')}`;
  return text;
}

/** A run of chains' declarations and rules, as renderChains writes them. */
interface SegmentText {
  readonly prefix: string;
  readonly decls: string;
  readonly body: string;
}

/**
 * The text of runs of chains shared by the tables of many nodes (chain-map.ts): an endpoint
 * chain block is the same on every node that sees its port alike, and so is its text. Kept
 * while the run is.
 */
const segmentTexts = new WeakMap<readonly NftChain[], SegmentText>();

function segmentText(prefix: string, run: readonly NftChain[]): SegmentText {
  const known = segmentTexts.get(run);
  if (known !== undefined && known.prefix === prefix) return known;
  const decls: string[] = [];
  const body: string[] = [];
  renderChains(prefix, run, decls, body);
  const text = { prefix, decls: decls.join(''), body: body.join('') };
  segmentTexts.set(run, text);
  return text;
}

/** Chains' declaration lines onto `decls`, their rules' lines onto `body`. */
function renderChains(prefix: string, chains: Iterable<NftChain>, decls: string[], body: string[]): void {
  const chainHead = `add chain ${prefix} `;
  const ruleHead = `add rule ${prefix} `;
  for (const chain of chains) {
    // Most chains have neither hook nor comment: their line is three pieces, nothing made.
    if (chain.base === undefined && chain.comment === undefined) decls.push(chainHead, chain.name, '\n');
    else decls.push(chainLine(prefix, chain), '\n');
    const head = [ruleHead, chain.name, ' '].join('');
    if (chain instanceof EndpointChain && chain.pushRuleLines(head, body)) continue;
    const rules = chain.rules;
    if (rules.length === 0) continue;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      body.push(head, rule.text);
      if (rule.comment !== undefined) body.push(' comment ', quoteComment(rule.comment));
      body.push('\n');
    }
  }
}

/**
 * One table's text, as pieces pushed onto `decls` (the table, its chains, sets and maps) and
 * `body` (the rules, then the elements), each joined once at the end: no intermediate strings
 * per line, which at 10k services meant half a million short-lived concatenations. Chains are
 * walked once for both their declaration and their rules: a node of a big cluster has 150k of
 * them spread over the heap, and each visit is a cache miss.
 */
function renderTable(table: NftTable, decls: string[], body: string[]): void {
  const prefix = `${table.family} ${table.name}`;
  decls.push(tableLine(table), '\n');
  const chains = table.chains;
  if (chains instanceof ChainMap) {
    const { own, segments } = chains.runs();
    // The table's own chains (the fixed ones) are made for this table alone; segments are shared.
    renderChains(prefix, own, decls, body);
    for (const segment of segments) {
      const text = segmentText(prefix, segment);
      decls.push(text.decls);
      body.push(text.body);
    }
  } else {
    renderChains(prefix, chains.values(), decls, body);
  }
  for (const set of table.sets.values()) decls.push(setLine(prefix, set), '\n');
  for (const set of table.sets.values()) {
    const head = `add element ${prefix} ${set.name} { `;
    for (const element of set.elements) body.push(head, elementText(element), ' }\n');
  }
}

export function renderNftScript(ruleset: NftRuleset): string {
  let out = '';
  for (const table of ruleset.tables) {
    const decls: string[] = [];
    const body: string[] = [];
    renderTable(table, decls, body);
    out += decls.join('') + body.join('');
  }
  return out;
}

/** Number of rules and elements, for reports and benchmarks. */
export function countNftRules(ruleset: NftRuleset): { rules: number; elements: number; chains: number } {
  let rules = 0;
  let elements = 0;
  let chains = 0;
  for (const table of ruleset.tables) {
    for (const chain of table.chains.values()) {
      chains++;
      rules += ruleCountOf(chain);
    }
    for (const set of table.sets.values()) elements += set.elements.length;
  }
  return { rules, elements, chains };
}
