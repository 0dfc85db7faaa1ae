/**
 * Small helpers to build a Ruleset the way kube-proxy fills its restore buffers: chains are
 * declared in the order they are first written (`:CHAIN - [0:0]`), rules are appended to their
 * chain in the order they are written.
 */
import type { Family } from '../util/ip.js';
import { createTable, declareInto } from './declared-chains.js';
import type { Chain, Ruleset, Table, TableName } from './types.js';

/** Tables whose chains are kept as a list while they are declared, made a Map on first read (declared-chains.ts). */
export function createRuleset(family: Family, tableNames: readonly TableName[]): Ruleset {
  const tables = new Map<TableName, Table>();
  for (const name of tableNames) tables.set(name, createTable(name));
  return { family, tables };
}

export function tableOf(ruleset: Ruleset, name: TableName): Table {
  const table = ruleset.tables.get(name);
  if (!table) throw new Error(`ruleset has no ${name} table`);
  return table;
}

/**
 * Declare a chain; declaring one twice is a bug in the compiler (iptables-restore would take it,
 * kube-proxy never does it), found when the table's Map is made (declared-chains.ts).
 */
export function declareChain(table: Table, name: string, policy?: string): Chain {
  const chain: Chain = policy === undefined ? { name, rules: [] } : { name, policy, rules: [] };
  declareInto(table, chain);
  return chain;
}

/** Put a chain written for another node's ruleset (same name, same rules) into this one; once only, as declareChain. */
export function adoptChain(table: Table, chain: Chain): void {
  declareInto(table, chain);
}

export function chainOf(table: Table, name: string): Chain {
  const chain = table.chains.get(name);
  if (!chain) throw new Error(`chain ${name} is not declared in table ${table.name}`);
  return chain;
}

export function appendRule(chain: Chain, args: readonly string[]): void {
  chain.rules.push({ chain: chain.name, args });
}
