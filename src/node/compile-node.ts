/**
 * One node's data plane, compiled: the proxier states of the families in use and, per mode, the
 * iptables rulesets or the IPVS tables. The CLI, the API and the library all start here, so they
 * answer alike.
 */
import { compileIpvs, type IpvsCompiled, type IpvsCompileOptions } from '../ipvs/compile.js';
import { compileIptablesRules, type IptablesCompileOptions } from '../iptables/compile.js';
import { renderIptablesSave } from '../iptables/render.js';
import type { Ruleset } from '../iptables/types.js';
import { addBuiltinJumps } from '../iptables/with-jumps.js';
import type { Cluster } from '../model/types.js';
import { kubeProxyJumpsInChainOrder } from '../trace/default-jumps.js';
import { buildProxierStates, type NodeSelection, type ResolvedNode, resolveNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import type { Family } from '../util/ip.js';

export interface NodeCompileOptions extends NodeSelection, IptablesCompileOptions {
  /** Only this family (default: every family the node or the services use). */
  family?: Family;
  /** Add the built-in chains with kube-proxy's jumps, so the text loads as a complete ruleset. */
  withJumps?: boolean;
}

export interface CompiledIptables {
  readonly mode: 'iptables';
  readonly node: ResolvedNode;
  /** One per family, IPv4 first; rulesets[i] is compiled from states[i]. */
  readonly states: readonly ProxierState[];
  readonly rulesets: readonly Ruleset[];
}

export interface CompiledIpvsNode {
  readonly mode: 'ipvs';
  readonly node: ResolvedNode;
  readonly states: readonly ProxierState[];
  readonly tables: readonly IpvsCompiled[];
}

export function proxierStatesFor(cluster: Cluster, opts: NodeCompileOptions = {}): { node: ResolvedNode; states: ProxierState[] } {
  const node = resolveNode(cluster, selectionOf(opts));
  const states = buildProxierStates(cluster, node).filter((s) => opts.family === undefined || s.family === opts.family);
  return { node, states };
}

function selectionOf(opts: NodeSelection): NodeSelection {
  return { ...(opts.node !== undefined ? { node: opts.node } : {}), ...(opts.nodeIPs !== undefined ? { nodeIPs: opts.nodeIPs } : {}) };
}

export function compileIptablesForStates(node: ResolvedNode, states: readonly ProxierState[], opts: NodeCompileOptions = {}): CompiledIptables {
  const compileOptions: IptablesCompileOptions = {
    ...(opts.nfacct !== undefined ? { nfacct: opts.nfacct } : {}),
    ...(opts.randomFully !== undefined ? { randomFully: opts.randomFully } : {}),
  };
  const rulesets = states.map((state) => {
    const ruleset = compileIptablesRules(state, compileOptions);
    return opts.withJumps ? addBuiltinJumps(ruleset, kubeProxyJumpsInChainOrder(state.family)) : ruleset;
  });
  return { mode: 'iptables', node, states, rulesets };
}

/** kube-proxy's iptables mode on one node: `compileIptables(cluster, {node: 'node-a'})`. */
export function compileIptablesForNode(cluster: Cluster, opts: NodeCompileOptions = {}): CompiledIptables {
  const { node, states } = proxierStatesFor(cluster, opts);
  return compileIptablesForStates(node, states, opts);
}

export function compileIpvsForStates(node: ResolvedNode, states: readonly ProxierState[], opts: IpvsCompileOptions = {}): CompiledIpvsNode {
  return { mode: 'ipvs', node, states, tables: states.map((state) => compileIpvs(state, opts)) };
}

/** kube-proxy's IPVS mode on one node. */
export function compileIpvsForNode(cluster: Cluster, opts: NodeCompileOptions & IpvsCompileOptions = {}): CompiledIpvsNode {
  const { node, states } = proxierStatesFor(cluster, opts);
  return compileIpvsForStates(node, states, opts);
}

/**
 * The iptables-save text of every family, each introduced by a comment line naming the tool
 * it is for (iptables-restore and ip6tables-restore read `#` lines as comments).
 */
export function renderCompiledIptables(compiled: CompiledIptables, render: (r: Ruleset) => string = renderIptablesSave): string {
  if (compiled.rulesets.length === 1) return render(compiled.rulesets[0]!);
  return compiled.rulesets
    .map((ruleset) => `# ${ruleset.family === 4 ? 'iptables-save' : 'ip6tables-save'} (IPv${ruleset.family}), node ${compiled.node.name}\n${render(ruleset)}`)
    .join('');
}
