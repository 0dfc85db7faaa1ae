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

/** Whether a token has white space, a quote or a backslash: checked by char code (hot path). */
function needsQuotes(token: string): boolean {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    // space, \t \n \v \f \r, " ' \ (and any other white space is rare enough for the regex below)
    if (c === 32 || (c >= 9 && c <= 13) || c === 34 || c === 39 || c === 92) return true;
    if (c > 127 && /\s/.test(token[i]!)) return true;
  }
  return false;
}

/** A token as kube-proxy writes it into the restore buffer. */
export function quoteToken(token: string): string {
  if (token === '') return '""';
  if (!needsQuotes(token)) return token;
  return `"${token.replace(/(["\\])/g, '\\$1')}"`;
}

export function renderRule(rule: Rule, quote: (token: string) => string = quoteToken): string {
  const parts = new Array<string>(rule.args.length + 2);
  parts[0] = '-A';
  parts[1] = rule.chain;
  for (let i = 0; i < rule.args.length; i++) parts[i + 2] = quote(rule.args[i]!);
  return parts.join(' ');
}

function renderChainDeclaration(chain: Chain): string {
  return `:${chain.name} ${chain.policy ?? '-'} [0:0]`;
}

/**
 * Chains that many nodes' rulesets hold (shared-rules.ts), with their text in kube-proxy's form
 * once rendered: the next node's render joins the texts instead of rendering every rule again.
 * Such chains never change once written; the rule count is kept to catch it if one did.
 */
const sharedChains = new WeakSet<Chain>();
const renderedChains = new WeakMap<Chain, { readonly rules: number; readonly declaration: string; readonly body: string }>();

/** Mark a chain that several rulesets share, so that its text is rendered once. */
export function shareChainRendering(chain: Chain): void {
  sharedChains.add(chain);
}

function renderedSharedChain(chain: Chain): { readonly declaration: string; readonly body: string } {
  let text = renderedChains.get(chain);
  if (text === undefined || text.rules !== chain.rules.length) {
    text = { rules: chain.rules.length, declaration: renderChainDeclaration(chain), body: chain.rules.map((rule) => renderRule(rule)).join('\n') };
    renderedChains.set(chain, text);
  }
  return text;
}

/** One table: its chain declarations, then every chain's rules, then COMMIT. */
export function renderTable(table: Table, quote: (token: string) => string = quoteToken): string {
  const lines: string[] = [`*${table.name}`];
  const cached = quote === quoteToken;
  for (const chain of table.chains.values()) {
    lines.push(cached && sharedChains.has(chain) ? renderedSharedChain(chain).declaration : renderChainDeclaration(chain));
  }
  for (const chain of table.chains.values()) {
    if (cached && sharedChains.has(chain)) {
      const body = renderedSharedChain(chain).body;
      if (body !== '') lines.push(body);
      continue;
    }
    for (const rule of chain.rules) lines.push(renderRule(rule, quote));
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The whole ruleset: every table in order, each ending in COMMIT. */
export function renderIptablesSave(ruleset: Ruleset, quote: (token: string) => string = quoteToken): string {
  const parts: string[] = [];
  for (const table of ruleset.tables.values()) parts.push(renderTable(table, quote));
  return parts.join('');
}

/** Number of rules in a ruleset (all tables), for reports and benchmarks. */
export function countRules(ruleset: Ruleset): number {
  let n = 0;
  for (const table of ruleset.tables.values()) for (const chain of table.chains.values()) n += chain.rules.length;
  return n;
}
