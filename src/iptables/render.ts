/**
 * Ruleset → iptables-save text, in the form kube-proxy hands to iptables-restore:
 *
 *   *filter
 *   :KUBE-SERVICES - [0:0]
 *   -A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" ... -j REJECT
 *   COMMIT
 *
 * Tokens are written as they are, except that a token with white space or a quote in it is
 * double-quoted (kube-proxy quotes exactly the comments that have spaces in them and leaves
 * "ns1/svc1:p80" bare). See canonical.ts for the form a kernel's iptables-save prints back.
 */
import type { Chain, Rule, Ruleset, Table } from './types.js';

const NEEDS_QUOTES = /[\s"'\\]/;

/** A token as kube-proxy writes it into the restore buffer. */
export function quoteToken(token: string): string {
  if (token === '') return '""';
  if (!NEEDS_QUOTES.test(token)) return token;
  return `"${token.replace(/(["\\])/g, '\\$1')}"`;
}

export function renderRule(rule: Rule, quote: (token: string) => string = quoteToken): string {
  let line = `-A ${rule.chain}`;
  for (const token of rule.args) line += ` ${quote(token)}`;
  return line;
}

function renderChainDeclaration(chain: Chain): string {
  return `:${chain.name} ${chain.policy ?? '-'} [0:0]`;
}

export function renderTable(table: Table, quote: (token: string) => string = quoteToken): string {
  const lines: string[] = [`*${table.name}`];
  for (const chain of table.chains.values()) lines.push(renderChainDeclaration(chain));
  for (const chain of table.chains.values()) {
    for (const rule of chain.rules) lines.push(renderRule(rule, quote));
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}

/** The whole ruleset: every table in order, each ending in COMMIT. */
export function renderIptablesSave(ruleset: Ruleset, quote: (token: string) => string = quoteToken): string {
  let text = '';
  for (const table of ruleset.tables.values()) text += renderTable(table, quote);
  return text;
}

/** Number of rules in a ruleset (all tables), for reports and benchmarks. */
export function countRules(ruleset: Ruleset): number {
  let n = 0;
  for (const table of ruleset.tables.values()) for (const chain of table.chains.values()) n += chain.rules.length;
  return n;
}
