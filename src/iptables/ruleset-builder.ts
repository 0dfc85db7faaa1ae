/**
 * Small helpers to build a Ruleset the way kube-proxy fills its restore buffers: chains are
 * declared in the order they are first written (`:CHAIN - [0:0]`), rules are appended to their
 * chain in the order they are written.
 */
import type { Family } from '../util/ip.js';
import type { Chain, Ruleset, Table, TableName } from './types.js';

export function createRuleset(family: Family, tableNames: readonly TableName[]): Ruleset {
  const tables = new Map<TableName, Table>();
  for (const name of tableNames) tables.set(name, { name, chains: new Map() });
  return { family, tables };
}

export function tableOf(ruleset: Ruleset, name: TableName): Table {
  const table = ruleset.tables.get(name);
  if (!table) throw new Error(`ruleset has no ${name} table`);
  return table;
}

/** Declare a chain; declaring one twice is a bug in the compiler (iptables-restore would take it, kube-proxy never does it). */
export function declareChain(table: Table, name: string, policy?: string): Chain {
  const chain: Chain = policy === undefined ? { name, rules: [] } : { name, policy, rules: [] };
  // One map operation, not has() then set(): this runs once per endpoint.
  const before = table.chains.size;
  table.chains.set(name, chain);
  if (table.chains.size === before) throw new Error(`chain ${name} declared twice in table ${table.name}`);
  return chain;
}

/** Put a chain written for another node's ruleset (same name, same rules) into this one; once only, as declareChain. */
export function adoptChain(table: Table, chain: Chain): void {
  const before = table.chains.size;
  table.chains.set(chain.name, chain);
  if (table.chains.size === before) throw new Error(`chain ${chain.name} declared twice in table ${table.name}`);
}

export function chainOf(table: Table, name: string): Chain {
  const chain = table.chains.get(name);
  if (!chain) throw new Error(`chain ${name} is not declared in table ${table.name}`);
  return chain;
}

export function appendRule(chain: Chain, args: string[]): void {
  chain.rules.push({ chain: chain.name, args });
}
