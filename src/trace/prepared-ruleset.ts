/**
 * One ruleset ready for tracing: its chains compiled on first use (a walk touches a handful of
 * the thousands of chains kube-proxy writes), and the built-in chains a walk starts from,
 * with kube-proxy's jumps assumed where the ruleset leaves a built-in chain out.
 */
import { makeDeferredRules } from '../iptables/deferred-chains.js';
import { isBuiltinChain, type Ruleset, type TableName } from '../iptables/types.js';
import { ChainsByName } from './chains-by-name.js';
import { compileChain, type CompileEnv, type CompiledChain } from './compile-rule.js';
import { kubeProxyJumpRules } from './default-jumps.js';
import { ChecksSlab } from './fast-checks.js';
import type { Ipset } from './ipsets.js';
import type { LocalAddresses } from './addresses.js';
import { stageChain, stageTable, type Stage } from './walk-state.js';

export class PreparedRuleset {
  /** table → chain → compiled chain (null: the table has no such chain). */
  private readonly chains = new Map<TableName, Map<string, CompiledChain | null>>();
  private readonly assumedBuiltins = new Map<TableName, Map<string, CompiledChain>>();
  private natPrerouting: CompiledChain | undefined;
  private natOutput: CompiledChain | undefined;
  private filterInput: CompiledChain | undefined;
  private filterForward: CompiledChain | undefined;
  private filterOutput: CompiledChain | undefined;
  private natPostrouting: CompiledChain | undefined;
  private readonly env: CompileEnv;
  /** Each table's chains by name, read without making the table's Map (see chains-by-name.ts). */
  private readonly sources = new Map<TableName, ChainsByName>();

  constructor(
    readonly ruleset: Ruleset,
    ipsets: ReadonlyMap<string, Ipset>,
    masqueradeMark: number,
    local: LocalAddresses,
    private readonly useIndex: boolean,
  ) {
    this.env = {
      family: ruleset.family,
      local,
      ipsets,
      masqueradeMark,
      slab: new ChecksSlab(),
      hasChain: (table, chain, from) => this.sourceOf(table)?.has(chain, from) ?? false,
    };
  }

  private sourceOf(table: TableName): ChainsByName | undefined {
    let source = this.sources.get(table);
    if (source === undefined) {
      const own = this.ruleset.tables.get(table);
      if (own === undefined) return undefined;
      source = new ChainsByName(own);
      this.sources.set(table, source);
    }
    return source;
  }

  get family(): 4 | 6 {
    return this.ruleset.family;
  }

  /**
   * A chain of the ruleset, compiled; undefined when the table has no such chain. `from`: the
   * chain that jumps to it, whose run is searched first (see ChainsByName).
   */
  chain(table: TableName, name: string, from?: string): CompiledChain | undefined {
    let byName = this.chains.get(table);
    if (!byName) {
      byName = new Map();
      this.chains.set(table, byName);
    }
    const cached = byName.get(name);
    if (cached !== undefined) return cached ?? undefined;
    const source = this.sourceOf(table)?.get(name, from);
    const compiled = source
      ? compileChain(this.env, table, name, source.rules, {
        builtin: isBuiltinChain(table, name), policy: source.policy, assumed: false, useIndex: this.useIndex,
      })
      : null;
    byName.set(name, compiled);
    return compiled ?? undefined;
  }

  /**
   * The built-in chain a hook starts from: the ruleset's own, or kube-proxy's jumps for it
   * (marked assumed) when the ruleset does not have it.
   */
  builtinChain(table: TableName, name: string): CompiledChain {
    const own = this.chain(table, name);
    if (own) return own;
    let byName = this.assumedBuiltins.get(table);
    if (!byName) {
      byName = new Map();
      this.assumedBuiltins.set(table, byName);
    }
    let assumed = byName.get(name);
    if (!assumed) {
      const rules = kubeProxyJumpRules(this.ruleset.family, table, name);
      assumed = compileChain(this.env, table, name, rules, { builtin: true, policy: undefined, assumed: true, useIndex: this.useIndex });
      byName.set(name, assumed);
    }
    return assumed;
  }

  /**
   * The built-in chain a walk starts a stage with (see builtinChain), kept per stage in a field
   * of its own: a walk asks three or four times per path, and a Map lookup each time cost more.
   */
  stageBuiltin(stage: Exclude<Stage, 'done'>): CompiledChain {
    switch (stage) {
      case 'nat PREROUTING': return this.natPrerouting ??= this.stageChain(stage);
      case 'nat OUTPUT': return this.natOutput ??= this.stageChain(stage);
      case 'filter INPUT': return this.filterInput ??= this.stageChain(stage);
      case 'filter FORWARD': return this.filterForward ??= this.stageChain(stage);
      case 'filter OUTPUT': return this.filterOutput ??= this.stageChain(stage);
      case 'nat POSTROUTING': return this.natPostrouting ??= this.stageChain(stage);
    }
  }

  private stageChain(stage: Exclude<Stage, 'done'>): CompiledChain {
    return this.builtinChain(stageTable(stage), stageChain(stage));
  }

  /** Compile every chain now (for measuring, or to fail early). */
  warm(): void {
    makeDeferredRules(this.ruleset);
    for (const table of this.ruleset.tables.values()) {
      for (const name of table.chains.keys()) this.chain(table.name, name);
    }
  }
}
