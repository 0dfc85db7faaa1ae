/**
 * kube-proxy's iptables mode as a mode driver: the compiled rulesets (one per family), their
 * iptables-save text in kube-proxy's or the kernel's form, the tracer over them, and connections
 * placed by walking the rules with the kernel's random draw.
 */
import { renderCanonical } from '../../iptables/canonical.js';
import { IptablesSharedWork, compileIptablesRules, countIptablesRules, type IptablesCompileOptions } from '../../iptables/compile.js';
import { parseIptablesSave } from '../../iptables/parse.js';
import { countRules, renderIptablesSave } from '../../iptables/render.js';
import type { Ruleset } from '../../iptables/types.js';
import { addBuiltinJumps } from '../../iptables/with-jumps.js';
import { ruleWalkPicker } from '../../simulate/rule-walk-picker.js';
import { kubeProxyJumpsInChainOrder } from '../../trace/default-jumps.js';
import { createTracer, type Tracer } from '../../trace/tracer.js';
import type { ResolvedNode } from '../../tracker/proxier-state.js';
import type { ProxierState } from '../../tracker/types.js';
import type { CompiledNode, DumpReader, ModeCompileOptions, ModeDriver, ModeSize, OutputFormat } from '../mode-driver.js';
import { rulesCheckedOnPath, rulePositions } from '../rules-checked.js';
import { traceContextOf } from '../trace-context.js';

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

export function compileIptablesForStates(node: ResolvedNode, states: readonly ProxierState[], opts: ModeCompileOptions = {}): CompiledIptables {
  const compileOptions = iptablesOptions(opts);
  const rulesets = states.map((state) => {
    const ruleset = compileIptablesRules(state, compileOptions);
    return opts.withJumps ? addBuiltinJumps(ruleset, kubeProxyJumpsInChainOrder(state.family)) : ruleset;
  });
  return { mode: 'iptables', node, states, rulesets };
}

/**
 * iptables-save text of every family, each after a comment line naming the tool it is for
 * (iptables-restore and ip6tables-restore read `#` lines as comments) when there are two.
 */
export function renderRulesetsPerFamily(node: ResolvedNode, rulesets: readonly Ruleset[], render: (r: Ruleset) => string = renderIptablesSave): string {
  if (rulesets.length === 1) return render(rulesets[0]!);
  return rulesets
    .map((ruleset) => `# ${ruleset.family === 4 ? 'iptables-save' : 'ip6tables-save'} (IPv${ruleset.family}), node ${node.name}\n${render(ruleset)}`)
    .join('');
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
    return renderRulesetsPerFamily(compiled.node, compiled.rulesets, format === 'canonical' ? renderCanonical : renderIptablesSave);
  },
  tracer: tracerOf,
  shareAcrossNodes: () => new IptablesSharedWork(),
  size(compiled) {
    let rules = 0;
    let chains = 0;
    for (const ruleset of compiled.rulesets) {
      rules += countRules(ruleset);
      for (const table of ruleset.tables.values()) chains += table.chains.size;
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
      const chains = [...ruleset.tables.values()].reduce((n, t) => n + t.chains.size, 0);
      return `iptables mode: ${countRules(ruleset)} rules in ${chains} chains`;
    });
  },
  variants: () => [{ scheduler: 'random', options: {} }],
  picker(compiled, target, opts) {
    return ruleWalkPicker(tracerOf(compiled), {
      packet: { proto: target.proto, dst: target.address, dport: target.port },
      endpoints: target.servicePort.categorized.allReachableEndpoints.map((e) => e.endpoint),
      seed: opts.seed,
      label: 'iptables random',
    });
  },
  expectedShares(compiled, target) {
    const traced = tracerOf(compiled).trace({ proto: target.proto, src: freshClient(target.state.family), dst: target.address, dport: target.port }, { fromNode: false });
    return new Map(traced.endpoints.map((e) => [e, traced.probabilities[e] ?? 0]));
  },
  rulesPerLookup(compiled, packets) {
    const positions = rulePositions(compiled.rulesets);
    const tracer = tracerOf(compiled);
    let checked = 0;
    packets.forEach((packet, i) => {
      checked += rulesCheckedOnPath(tracer.sample(packet, i + 1).hops, positions);
    });
    return packets.length > 0 ? checked / packets.length : 0;
  },
};

function rulesSize(rules: number, chains: number): ModeSize {
  return { count: rules, unit: 'rules', details: { chains } };
}

/** A client the rules have never seen (no recent lists), outside the cluster: the expected shares. */
export function freshClient(family: 4 | 6): string {
  return family === 4 ? '100.64.0.1' : '2001:db8:c11e::1';
}

/** iptables-save dumps of a real node (--iptables-save): traced with the node's addresses given. */
export const iptablesDumpReader: DumpReader = {
  flag: '--iptables-save',
  mode: 'iptables',
  tracer(texts, context) {
    return createTracer(texts.map(({ file, text }) => parseIptablesSave(text, { file })), context);
  },
};
