/**
 * An iptables ruleset as iptables-save lays it out: tables, each with chains in declaration
 * order, each with rules. A rule keeps its arguments as tokens (quotes removed), exactly in the
 * order they were written, so rendering and parsing are inverse; rule-spec.ts reads the tokens
 * into typed matches and a target when something needs to evaluate them.
 */
import type { Family } from '../util/ip.js';

export type TableName = 'nat' | 'filter' | 'mangle' | 'raw';

export interface Rule {
  readonly chain: string;
  /** The tokens after "-A CHAIN", unquoted: ["-m", "comment", "--comment", "ns1/svc1:p80 cluster IP", ...]. */
  readonly args: readonly string[];
}

export interface Chain {
  readonly name: string;
  /** The policy of a built-in chain ("ACCEPT", "DROP"); undefined for a user chain ("-"). */
  readonly policy?: string;
  readonly rules: Rule[];
}

export interface Table {
  readonly name: TableName;
  /** In declaration order. */
  readonly chains: Map<string, Chain>;
}

export interface Ruleset {
  readonly family: Family;
  /** In output order (kube-proxy writes filter, then nat). */
  readonly tables: Map<TableName, Table>;
}

/** The built-in chains of each table, as the kernel declares them. */
export const BUILTIN_CHAINS: Readonly<Record<TableName, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
};

export function isBuiltinChain(table: TableName, chain: string): boolean {
  return BUILTIN_CHAINS[table].includes(chain);
}
