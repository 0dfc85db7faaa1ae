/**
 * kube-proxy's iptables mode as a mode driver: the compiled rulesets (one per family), their
 * iptables-save text in kube-proxy's or the kernel's form, the tracer over them, and connections
 * placed by walking the rules with the kernel's random draw.
 */
import { renderCanonical } from '../../iptables/canonical.js';
import { IptablesSharedWork, compileIptablesRules, compileIptablesSaveEach, compileIptablesSaveEachBytes, countIptablesRules, type IptablesCompileOptions } from '../../iptables/compile.js';
import { chainCountOf } from '../../iptables/declared-chains.js';
import { parseIptablesSave } from '../../iptables/parse.js';
import { countRules, renderIptablesSave } from '../../iptables/render.js';
import type { Ruleset } from '../../iptables/types.js';
import { addBuiltinJumps } from '../../iptables/with-jumps.js';
import { kubeProxyJumpsInChainOrder } from '../../trace/default-jumps.js';
import { createTracer, type Tracer } from '../../trace/tracer.js';
import { type ResolvedNode, mapStatesSmallestFirst } from '../../tracker/proxier-state.js';
import type { ProxierState } from '../../tracker/types.js';
import type { CompiledNode, DumpReader, ModeCompileOptions, ModeDriver, ModeSize, OutputFormat } from '../mode-driver.js';
import { rulePositions } from '../rules-checked.js';
import { traceContextOf } from '../trace-context.js';
import { ruleWalkSimulation } from './rule-walk.js';

export interface CompiledIptables extends CompiledNode {
  readonly mode: 'iptables';
  /** One per family, IPv4 first; rulesets[i] is compiled from states[i]. */
  readonly rulesets: readonly Ruleset[];
}

function iptablesOptions(opts: ModeCompileOptions): IptablesCompileOptions {
  return {
    ...(opts.nfacct !== undefined ? { nfacct: opts.nfacct } : {}),
    ...(opts.randomFully !== undefined ? { randomFully: opts.randomFully } : {}),
    ...(opts.shared instanceof IptablesSharedWork ? { shared: opts.shared } : {}),
    ...(opts.onlyServicePorts !== undefined ? { onlyServicePorts: opts.onlyServicePorts } : {}),
  };
}

/**
 * The rulesets are compiled when first read: `kpsim compile` only prints the text, which
 * compileIptablesSave writes straight from the states at a fraction of the cost (render below).
 */
export function compileIptablesForStates(node: ResolvedNode, states: readonly ProxierState[], opts: ModeCompileOptions = {}): CompiledIptables {
  const compileOptions = iptablesOptions(opts);
  let rulesets: readonly Ruleset[] | undefined;
  const compiled: CompiledIptables = {
    mode: 'iptables',
    node,
    states,
    get rulesets(): readonly Ruleset[] {
      return (rulesets ??= mapStatesSmallestFirst(states, (state) => {
        const ruleset = compileIptablesRules(state, compileOptions);
        return opts.withJumps ? addBuiltinJumps(ruleset, kubeProxyJumpsInChainOrder(state.family)) : ruleset;
      }));
    },
  };
  // Without the built-in jumps, kube-proxy's text needs no Ruleset (while none has been made);
  // nodes of one cluster (shared work) write it from the text of the ports they share.
  if (!opts.withJumps) {
    const header = states.length > 1 ? (state: ProxierState) => familyHeader(node, state.family) : undefined;
    directTexts.set(compiled, {
      text: () => (rulesets === undefined ? compileIptablesSaveEach(states, compileOptions, header) : undefined),
      bytes: () => (rulesets === undefined ? compileIptablesSaveEachBytes(states, compileOptions, header) : undefined),
    });
  }
  return compiled;
}

/** The text of every family written straight from the states, as a string or as bytes; undefined once the rulesets exist. */
const directTexts = new WeakMap<CompiledIptables, { text(): string | undefined; bytes(): Uint8Array | undefined }>();

/**
 * iptables-save text of every family, each after a comment line naming the tool it is for
 * (iptables-restore and ip6tables-restore read `#` lines as comments) when there are two.
 */
export function renderRulesetsPerFamily(node: ResolvedNode, rulesets: readonly Ruleset[], render: (r: Ruleset) => string = renderIptablesSave): string {
  return textsPerFamily(node, rulesets.map((ruleset) => ({ family: ruleset.family, text: render(ruleset) })));
}

function textsPerFamily(node: ResolvedNode, texts: readonly { family: 4 | 6; text: string }[]): string {
  if (texts.length === 1) return texts[0]!.text;
  return texts.map(({ family, text }) => `${familyHeader(node, family)}${text}`).join('');
}

function familyHeader(node: ResolvedNode, family: 4 | 6): string {
  return `# ${family === 4 ? 'iptables-save' : 'ip6tables-save'} (IPv${family}), node ${node.name}\n`;
}

/** The tracer of compiled rules, made once per compiled node (indexes are built on first use). */
const tracers = new WeakMap<CompiledIptables, Tracer>();
function tracerOf(compiled: CompiledIptables): Tracer {
  let tracer = tracers.get(compiled);
  if (!tracer) tracers.set(compiled, (tracer = createTracer(compiled.rulesets, traceContextOf(compiled.states))));
  return tracer;
}

export const iptablesDriver: ModeDriver<CompiledIptables> = {
  mode: 'iptables',
  describe: 'iptables-save text, as kube-proxy hands it to iptables-restore',
  formats: ['kube-proxy', 'canonical'],
  options: ['withJumps', 'nfacct', 'randomFully'],
  connectionTable: 'conntrack',
  compile: compileIptablesForStates,
  render(compiled, format: OutputFormat) {
    const direct = format === 'kube-proxy' ? directTexts.get(compiled)?.text() : undefined;
    if (direct !== undefined) return direct;
    return renderRulesetsPerFamily(compiled.node, compiled.rulesets, format === 'canonical' ? renderCanonical : renderIptablesSave);
  },
  renderBytes(compiled, format: OutputFormat) {
    return format === 'kube-proxy' ? directTexts.get(compiled)?.bytes() : undefined;
  },
  tracer: tracerOf,
  shareAcrossNodes: () => new IptablesSharedWork(),
  size(compiled) {
    let rules = 0;
    let chains = 0;
    for (const ruleset of compiled.rulesets) {
      rules += countRules(ruleset);
      for (const table of ruleset.tables.values()) chains += chainCountOf(table);
    }
    return rulesSize(rules, chains);
  },
  sizeOf(_node, states, opts = {}) {
    // --with-jumps adds built-in chains: count what compile writes then.
    if (opts.withJumps) return iptablesDriver.size!(compileIptablesForStates(_node, states, opts));
    const compileOptions = iptablesOptions(opts);
    let rules = 0;
    let chains = 0;
    for (const state of states) {
      const counted = countIptablesRules(state, compileOptions);
      rules += counted.rules;
      chains += counted.chains;
    }
    return rulesSize(rules, chains);
  },
  summarize(compiled) {
    return compiled.rulesets.map((ruleset) => {
      const chains = [...ruleset.tables.values()].reduce((n, t) => n + chainCountOf(t), 0);
      return `iptables mode: ${countRules(ruleset)} rules in ${chains} chains`;
    });
  },
  ...ruleWalkSimulation({ tracerOf, rulePositions: (compiled) => rulePositions(compiled.rulesets), label: 'iptables random' }),
};

function rulesSize(rules: number, chains: number): ModeSize {
  return { count: rules, unit: 'rules', details: { chains } };
}

/** iptables-save dumps of a real node (--iptables-save): traced with the node's addresses given. */
export const iptablesDumpReader: DumpReader = {
  flag: '--iptables-save',
  mode: 'iptables',
  tracer(texts, context) {
    return createTracer(texts.map(({ file, text }) => parseIptablesSave(text, { file })), context);
  },
};
