/**
 * One node's data plane, compiled: the proxier states of the families in use and, in the mode
 * asked for, what that mode's driver compiles from them (modes.ts). The CLI, the API and the
 * library all start here, so they answer alike.
 */
import type { Cluster } from '../model/types.js';
import { buildProxierStates, type NodeSelection, type ResolvedNode, resolveNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import type { Family } from '../util/ip.js';
import type { CompiledNode, ModeCompileOptions, OutputFormat, RulesMode } from './mode-driver.js';
import { driverOf, modeDriver } from './modes.js';
import { type CompiledIptables, compileIptablesForStates, renderRulesetsPerFamily } from './modes/iptables.js';
import { type CompiledIpvsNode, compileIpvsForStates } from './modes/ipvs.js';
import { renderIptablesSave } from '../iptables/render.js';
import type { Ruleset } from '../iptables/types.js';

export type { CompiledIptables } from './modes/iptables.js';
export type { CompiledIpvsNode } from './modes/ipvs.js';
export { compileIptablesForStates } from './modes/iptables.js';
export { compileIpvsForStates } from './modes/ipvs.js';

export interface NodeCompileOptions extends NodeSelection, ModeCompileOptions {
  /** Only this family (default: every family the node or the services use). */
  family?: Family;
}

export function proxierStatesFor(cluster: Cluster, opts: NodeCompileOptions = {}): { node: ResolvedNode; states: ProxierState[] } {
  const node = resolveNode(cluster, selectionOf(opts));
  const states = buildProxierStates(cluster, node).filter((s) => opts.family === undefined || s.family === opts.family);
  return { node, states };
}

function selectionOf(opts: NodeSelection): NodeSelection {
  return { ...(opts.node !== undefined ? { node: opts.node } : {}), ...(opts.nodeIPs !== undefined ? { nodeIPs: opts.nodeIPs } : {}) };
}

/** One node of `cluster` compiled in `mode`. */
export function compileNode(cluster: Cluster, mode: RulesMode, opts: NodeCompileOptions = {}): CompiledNode {
  const { node, states } = proxierStatesFor(cluster, opts);
  return modeDriver(mode).compile(node, states, opts);
}

/** The text of compiled rules in one of the mode's formats (default: what the mode hands the kernel). */
export function renderCompiled(compiled: CompiledNode, format: OutputFormat = 'kube-proxy'): string {
  return driverOf(compiled).render(compiled, format);
}

/** kube-proxy's iptables mode on one node: `compileIptables(cluster, {node: 'node-a'})`. */
export function compileIptablesForNode(cluster: Cluster, opts: NodeCompileOptions = {}): CompiledIptables {
  const { node, states } = proxierStatesFor(cluster, opts);
  return compileIptablesForStates(node, states, opts);
}

/** kube-proxy's IPVS mode on one node. */
export function compileIpvsForNode(cluster: Cluster, opts: NodeCompileOptions = {}): CompiledIpvsNode {
  const { node, states } = proxierStatesFor(cluster, opts);
  return compileIpvsForStates(node, states, opts);
}

/**
 * The iptables-save text of every family, each introduced by a comment line naming the tool
 * it is for (iptables-restore and ip6tables-restore read `#` lines as comments).
 */
export function renderCompiledIptables(compiled: CompiledIptables, render: (r: Ruleset) => string = renderIptablesSave): string {
  return renderRulesetsPerFamily(compiled.node, compiled.rulesets, render);
}
