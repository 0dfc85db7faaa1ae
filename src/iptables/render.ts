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
import { type ChainRun, isChainRun, pendingChainsOf } from './declared-chains.js';
import { DeferredChain, ruleCountOf } from './deferred-chains.js';
import { type TextBuffer, quoteToken, writeHeapText } from './save-text.js';
import type { Chain, Rule, Ruleset, Table } from './types.js';

export { quoteToken } from './save-text.js';

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

/**
 * The whole ruleset: every table in order, each ending in COMMIT. With kube-proxy's quoting (the
 * default) it is written into one buffer (save-text.ts); renderTable's line-joining is the same
 * text, kept for other quoting.
 */
export function renderIptablesSave(ruleset: Ruleset, quote: (token: string) => string = quoteToken): string {
  if (quote !== quoteToken) {
    const parts: string[] = [];
    for (const table of ruleset.tables.values()) parts.push(renderTable(table, quote));
    return parts.join('');
  }
  return writeHeapText(estimatedSize(ruleset), (out) => {
    for (const table of ruleset.tables.values()) writeTable(out, table);
  });
}

/**
 * About the size of the text, so that a small ruleset's buffer is allocated once (or a spare
 * one from the last render is reused); a large one is written through a few megabytes at a
 * time (writeHeapText), which this size only caps. Every rule's "-A CHAIN" is counted; the arguments of one rule in
 * SAMPLE_EVERY (reading every token's length cost a tenth of the render), scaled up, with a
 * margin, and two bytes per rule for the quotes around a comment; a service port's chains, one
 * port in SAMPLE_EVERY, scaled up by the number of chains. What is not covered grows
 * the buffer; the text is the same either way.
 */
function estimatedSize(ruleset: Ruleset): number {
  let size = 4096;
  let rules = 0;
  let sampledRules = 0;
  let sampledBytes = 0;
  // A service port's chains (declared-chains.ts): one run in SAMPLE_EVERY counted, scaled up by chains.
  let runChains = 0;
  let sampledRunChains = 0;
  let sampledRunBytes = 0;
  let runs = 0;
  for (const table of ruleset.tables.values()) {
    for (const chain of declaredChains(table)) {
      if (isChainRun(chain)) {
        runChains += chain.chainCount;
        if (runs++ % SAMPLE_EVERY === 0) {
          sampledRunChains += chain.chainCount;
          sampledRunBytes += chain.estimatedTextBytes();
        }
        continue;
      }
      if (chain instanceof DeferredChain) {
        // Counted from what its rules are made of: reading them would make them.
        size += 2 * chain.name.length + 16 + chain.estimatedTextBytes();
        continue;
      }
      const chainRules = chain.rules;
      const n = chainRules.length;
      size += 2 * chain.name.length + 16 + n * (chain.name.length + 6);
      for (let i = (SAMPLE_EVERY - (rules % SAMPLE_EVERY)) % SAMPLE_EVERY; i < n; i += SAMPLE_EVERY) {
        const args = chainRules[i]!.args;
        for (let j = 0; j < args.length; j++) sampledBytes += args[j]!.length + 1;
        sampledRules++;
      }
      rules += n;
    }
  }
  if (sampledRules > 0) size += Math.ceil((sampledBytes / sampledRules) * rules * 1.1);
  if (sampledRunChains > 0) size += Math.ceil((sampledRunBytes / sampledRunChains) * runChains * 1.1);
  return size;
}

const SAMPLE_EVERY = 8;

function writeTable(out: TextBuffer, table: Table): void {
  out.write(`*${table.name}\n`);
  const pending = pendingChainsOf(table);
  if (pending !== undefined) {
    writeDeclaredChains(out, pending.entries);
  } else {
    for (const chain of table.chains.values()) out.writeChainDeclaration(chain.name, chain.policy);
    for (const chain of table.chains.values()) writeChainRules(out, chain);
  }
  out.write('COMMIT\n');
}

/** A table's chains and runs of chains as declared, before its Map is made (declared-chains.ts). */
function writeDeclaredChains(out: TextBuffer, entries: readonly (Chain | ChainRun)[]): void {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (isChainRun(entry)) entry.writeDeclarations(out);
    else out.writeChainDeclaration(entry.name, entry.policy);
  }
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (isChainRun(entry)) entry.writeRules(out);
    else writeChainRules(out, entry);
  }
}

function writeChainRules(out: TextBuffer, chain: Chain): void {
  // A chain whose rules are not made yet writes its text without making them (deferred-chains.ts).
  if (chain instanceof DeferredChain) {
    chain.writeRules(out);
    return;
  }
  const rules = chain.rules;
  for (let i = 0; i < rules.length; i++) out.writeRule(rules[i]!.chain, rules[i]!.args);
}

/** A table's chains as declared: its Map's, or the list of chains and runs before the Map is made. */
function declaredChains(table: Table): Iterable<Chain | ChainRun> {
  return pendingChainsOf(table)?.entries ?? table.chains.values();
}

/** Number of rules in a ruleset (all tables), for reports and benchmarks. */
export function countRules(ruleset: Ruleset): number {
  let n = 0;
  for (const table of ruleset.tables.values()) {
    for (const chain of declaredChains(table)) n += isChainRun(chain) ? chain.ruleCount() : ruleCountOf(chain);
  }
  return n;
}
