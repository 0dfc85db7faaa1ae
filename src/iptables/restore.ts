/**
 * What one kube-proxy sync hands to `iptables-restore --noflush --counters`: per table, the
 * chains it declares (a declared chain is created, or flushed if it exists), their rules, and
 * the stale chains it deletes (`-X`, after their `:CHAIN` line has flushed them). Chains the
 * payload does not name stay as they are: that is what lets a partial sync leave unchanged
 * services alone.
 *
 * Rules are kept as text lines ("-A KUBE-SERVICES ..."), rendered once when they are computed,
 * and a chain's rules as segments (the lines each service port contributes, in order): a
 * partial sync hands on the very segments of the services that did not change instead of
 * copying their lines. Rules of one chain are kept together, as elsewhere in kpsim (kube-proxy
 * interleaves chains in its buffer; the order inside each chain is its own).
 */
import { renderRule } from './render.js';
import { type Ruleset, type TableName, isBuiltinChain } from './types.js';

/** A chain's rule lines ("-A CHAIN ..."), in segments to be read in order. */
export type ChainRules = readonly (readonly string[])[];

export interface RestoreTable {
  readonly name: TableName;
  /** Declared chains, in order, each with its rules. */
  readonly chains: ReadonlyMap<string, ChainRules>;
  /** Chains deleted at the end of the table (their `:CHAIN` line is written with the others). */
  readonly deleted: readonly string[];
}

export interface RestorePayload {
  readonly tables: readonly RestoreTable[];
}

/** The restore input: `*table`, chain lines, rules, -X lines, COMMIT; tables in order. */
export function renderRestore(payload: RestorePayload): string {
  const parts: string[] = [];
  for (const table of payload.tables) {
    parts.push(`*${table.name}`);
    for (const chain of table.chains.keys()) parts.push(`:${chain} - [0:0]`);
    for (const chain of table.deleted) parts.push(`:${chain} - [0:0]`);
    for (const segments of table.chains.values()) for (const lines of segments) for (const line of lines) parts.push(line);
    for (const chain of table.deleted) parts.push(`-X ${chain}`);
    parts.push('COMMIT');
  }
  parts.push('');
  return parts.join('\n');
}

/** Rule lines in a payload (the -X lines not counted). */
export function payloadRuleCount(payload: RestorePayload): number {
  let n = 0;
  for (const table of payload.tables) for (const segments of table.chains.values()) n += lineCount(segments);
  return n;
}

export function lineCount(segments: ChainRules): number {
  let n = 0;
  for (const lines of segments) n += lines.length;
  return n;
}

/** The lines of a chain, in one list. */
export function chainLines(segments: ChainRules): string[] {
  return segments.length === 1 ? [...segments[0]!] : segments.flat();
}

/**
 * A whole ruleset's user chains as one restore payload (what IPVS mode restores every sync: all
 * its KUBE- chains). The built-in chains' jumps are not part of it: kube-proxy ensures them one
 * rule at a time.
 */
export function rulesetPayload(ruleset: Ruleset): RestorePayload {
  const tables: RestoreTable[] = [];
  for (const table of ruleset.tables.values()) {
    const chains = new Map<string, ChainRules>();
    for (const chain of table.chains.values()) {
      if (isBuiltinChain(table.name, chain.name)) continue;
      chains.set(chain.name, [chain.rules.map((rule) => renderRule(rule))]);
    }
    tables.push({ name: table.name, chains, deleted: [] });
  }
  return { tables };
}
