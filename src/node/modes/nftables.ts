/**
 * kube-proxy's nftables mode as a mode driver: the `kube-proxy` table of each family, printed as
 * kube-proxy hands it to `nft -f` or as `nft list ruleset` prints it back, the nftables tracer,
 * and connections placed by walking the table with the kernel's numgen draw (affinity sets kept
 * between connections, as `recent` lists are in iptables mode).
 */
import { canonicalRule, renderNftCanonical } from '../../nftables/canonical.js';
import { type NftCounts, type NftablesCompileOptions, NftablesSharedWork, compileNftablesRules, countNftablesRules } from '../../nftables/compile.js';
import { countTable } from '../../nftables/shared-work.js';
import { parseNftRuleset } from '../../nftables/parse.js';
import { countNftRules, type NftScriptPart, renderNftScripts, renderNftScriptsBytes } from '../../nftables/render-script.js';
import type { NftRuleset } from '../../nftables/types.js';
import { createNftTracer, type NftTracer } from '../../trace/nftables/tracer.js';
import { type ResolvedNode, mapStatesSmallestFirst } from '../../tracker/proxier-state.js';
import type { ProxierState } from '../../tracker/types.js';
import type { CompiledNode, DumpReader, ModeCompileOptions, ModeDriver, ModeSize } from '../mode-driver.js';
import { traceContextOf } from '../trace-context.js';
import { ruleWalkSimulation } from './rule-walk.js';

export interface CompiledNftables extends CompiledNode {
  readonly mode: 'nftables';
  /** One per family, IPv4 first: each holds its family's `kube-proxy` table. */
  readonly rulesets: readonly NftRuleset[];
}

function nftablesOptions(opts: ModeCompileOptions): NftablesCompileOptions {
  return {
    ...(opts.shared instanceof NftablesSharedWork ? { shared: opts.shared } : {}),
    ...(opts.onlyServicePorts !== undefined ? { onlyServicePorts: opts.onlyServicePorts } : {}),
    ...(opts.servicePortPositions !== undefined ? { servicePortPositions: opts.servicePortPositions } : {}),
  };
}

export function compileNftablesForStates(node: ResolvedNode, states: readonly ProxierState[], opts: ModeCompileOptions = {}): CompiledNftables {
  const options = nftablesOptions(opts);
  return { mode: 'nftables', node, states, rulesets: mapStatesSmallestFirst(states, (state) => compileNftablesRules(state, options)) };
}

function nftablesSize(counts: readonly NftCounts[]): ModeSize {
  const sum = { rules: 0, chains: 0, sets: 0, elements: 0 };
  for (const c of counts) {
    sum.rules += c.rules;
    sum.chains += c.chains;
    sum.sets += c.sets;
    sum.elements += c.elements;
  }
  return { count: sum.rules, unit: 'rules', details: { chains: sum.chains, 'sets and maps': sum.sets, elements: sum.elements } };
}

const tracers = new WeakMap<CompiledNftables, NftTracer>();
function tracerOf(compiled: CompiledNftables): NftTracer {
  let tracer = tracers.get(compiled);
  if (!tracer) tracers.set(compiled, (tracer = createNftTracer(compiled.rulesets, traceContextOf(compiled.states))));
  return tracer;
}

/** "family table chain rule" → the rule's 1-based position in its chain, as the tracer's hops name them. */
export function nftRulePositions(rulesets: readonly NftRuleset[]): Map<string, number> {
  const positions = new Map<string, number>();
  for (const ruleset of rulesets) {
    for (const table of ruleset.tables) {
      for (const chain of table.chains.values()) {
        chain.rules.forEach((rule, i) => {
          const key = `${table.family} ${table.name} ${chain.name} ${canonicalRule(rule)}`;
          if (!positions.has(key)) positions.set(key, i + 1);
        });
      }
    }
  }
  return positions;
}

/** The script nft -f loads whole: one family's table, or each family's after a comment line. */
function scriptParts(compiled: CompiledNftables): NftScriptPart[] {
  if (compiled.rulesets.length === 1) return [{ heading: '', ruleset: compiled.rulesets[0]! }];
  return compiled.rulesets.map((ruleset, i) => ({
    heading: `# nft -f (IPv${compiled.states[i]!.family}), node ${compiled.node.name}\n`,
    ruleset,
  }));
}

export const nftablesDriver: ModeDriver<CompiledNftables> = {
  mode: 'nftables',
  describe: 'the kube-proxy table as kube-proxy hands it to nft -f',
  connectionTable: 'conntrack',
  formats: ['kube-proxy', 'canonical'],
  options: [],
  compile: compileNftablesForStates,
  render(compiled, format) {
    if (format === 'canonical') {
      // `nft list ruleset` of a node holding both tables lists them one after the other.
      return compiled.rulesets.map(renderNftCanonical).join('');
    }
    return renderNftScripts(scriptParts(compiled));
  },
  renderBytes(compiled, format) {
    return format === 'canonical' ? undefined : renderNftScriptsBytes(scriptParts(compiled));
  },
  tracer: tracerOf,
  shareAcrossNodes: () => new NftablesSharedWork(),
  size: (compiled) => nftablesSize(compiled.rulesets.flatMap((ruleset) => ruleset.tables.map(countTable))),
  sizeOf(_node, states, opts = {}) {
    const options = nftablesOptions(opts);
    return nftablesSize(mapStatesSmallestFirst(states, (state) => countNftablesRules(state, options)));
  },
  summarize: (compiled) => compiled.rulesets.map((ruleset) => {
    const counted = countNftRules(ruleset);
    const sets = ruleset.tables.reduce((n, t) => n + t.sets.size, 0);
    return `nftables mode: ${counted.rules} rules in ${counted.chains} chains, ${sets} sets and maps`;
  }),
  ...ruleWalkSimulation({ tracerOf, rulePositions: (compiled) => nftRulePositions(compiled.rulesets), label: 'nftables numgen' }),
};

/** `nft list ruleset` dumps of a real node (--nft-ruleset): traced with the node's addresses given. */
export const nftablesDumpReader: DumpReader = {
  flag: '--nft-ruleset',
  mode: 'nftables',
  tracer(texts, context) {
    return createNftTracer(texts.map(({ file, text }) => parseNftRuleset(text, { file })), context);
  },
};
