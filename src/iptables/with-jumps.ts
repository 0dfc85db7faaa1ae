/**
 * A compiled ruleset plus the built-in chains and kube-proxy's jumps into its own chains, so the
 * text loads on its own with iptables-restore (which, without --noflush, replaces whole tables).
 *
 * kube-proxy itself never writes these jumps into its restore input: at each full sync it calls
 * EnsureChain(table, target) and EnsureRule(Prepend, table, builtin, args...) for every entry of
 * iptablesJumpChains (pkg/proxy/iptables/proxier.go). The list of jumps is data passed in (the
 * CLI uses kubeProxyJumpsInChainOrder(family) from src/trace/default-jumps.ts).
 */
import type { Chain, Rule, Ruleset, Table, TableName } from './types.js';
import { BUILTIN_CHAINS } from './types.js';

/** One jump rule in a built-in chain: structurally the tracer's JumpRule. */
export interface BuiltinJump {
  readonly table: TableName;
  /** The built-in chain it sits in (PREROUTING, INPUT, ...). */
  readonly chain: string;
  /** Tokens after "-A CHAIN", with "-j TARGET". */
  readonly args: readonly string[];
}

export interface AddBuiltinJumpsOptions {
  /**
   * false (default): `jumps` are in the order they sit in each chain, and are appended.
   * true: `jumps` are in the order kube-proxy ensures them, and each is prepended to its chain,
   * as EnsureRule(Prepend) does (an identical rule already there is left alone).
   */
  prepend?: boolean;
  /** Policy of the built-in chains; ACCEPT, the kernel's default. */
  policy?: string;
}

/** A new ruleset: built-in chains first (with the jumps), then the compiled chains unchanged. */
export function addBuiltinJumps(ruleset: Ruleset, jumps: readonly BuiltinJump[], options: AddBuiltinJumpsOptions = {}): Ruleset {
  const policy = options.policy ?? 'ACCEPT';
  const tables = new Map<TableName, Table>();
  for (const [name, table] of ruleset.tables) {
    const chains = new Map<string, Chain>();
    for (const builtin of BUILTIN_CHAINS[name]) {
      const existing = table.chains.get(builtin);
      chains.set(builtin, { name: builtin, policy: existing?.policy ?? policy, rules: [...(existing?.rules ?? [])] });
    }
    for (const [chainName, chain] of table.chains) if (!chains.has(chainName)) chains.set(chainName, chain);
    tables.set(name, { name, chains });
  }

  for (const jump of jumps) {
    const table = tables.get(jump.table);
    if (!table) throw new Error(`addBuiltinJumps: the ruleset has no ${jump.table} table for a jump from ${jump.chain}`);
    const chain = table.chains.get(jump.chain);
    if (!chain || chain.policy === undefined) throw new Error(`addBuiltinJumps: ${jump.chain} is not a built-in chain of ${jump.table}`);
    const target = jumpTarget(jump.args);
    // EnsureChain: kube-proxy creates the target even when its restore input leaves it out
    // (KUBE-FIREWALL on IPv6, or when localhost node ports are off).
    if (target !== undefined && !NON_CHAIN_TARGETS.has(target) && !table.chains.has(target)) table.chains.set(target, { name: target, rules: [] });
    const rule: Rule = { chain: jump.chain, args: [...jump.args] };
    if (!options.prepend) {
      chain.rules.push(rule);
    } else if (!chain.rules.some((r) => sameArgs(r.args, rule.args))) {
      chain.rules.unshift(rule);
    }
  }
  return { family: ruleset.family, tables };
}

/** Targets that are not chains, which a jump list might use (kube-proxy's never does). */
const NON_CHAIN_TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'QUEUE', 'MARK', 'DNAT', 'SNAT', 'MASQUERADE', 'LOG']);

function jumpTarget(args: readonly string[]): string | undefined {
  const i = args.indexOf('-j');
  return i >= 0 ? args[i + 1] : undefined;
}

function sameArgs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((token, i) => token === b[i]);
}
