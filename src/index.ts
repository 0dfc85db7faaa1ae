/**
 * kpsim as a library, for users' own node:test suites:
 *
 *   import { loadCluster, compileIptables, tracePacket } from 'kpsim';
 *   const cluster = await loadCluster('rules/example');
 *   const rules = compileIptables(cluster, { node: 'node-a' });
 *   const result = tracePacket(rules, { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 });
 *   assert.equal(result.verdict, 'DNAT');
 *
 * These names and the JSON shape of TraceResult are stable: fields may be added, never renamed.
 * Left out on purpose: the compilers' internal builders, the CLI and the HTTP API.
 */
import type { IpvsCompileOptions } from './ipvs/compile.js';
import { parseIptablesSave as parseText, type ParseOptions } from './iptables/parse.js';
import type { Ruleset } from './iptables/types.js';
import type { Cluster } from './model/types.js';
import {
  type CompiledIpvsNode,
  type CompiledIptables,
  type NodeCompileOptions,
  compileIpvsForNode,
  compileIptablesForNode,
  compileNode,
  renderCompiled,
} from './node/compile-node.js';
import type { CompiledNode, OutputFormat, RulesMode } from './node/mode-driver.js';
import { createNodeTracer, createRulesetTracer, type NodeTracer } from './node/trace-node.js';
import { type CompiledNftables, compileNftablesForStates } from './node/modes/nftables.js';
import { proxierStatesFor } from './node/compile-node.js';
import { parseNftRuleset as parseNftText } from './nftables/parse.js';
import type { NftRuleset } from './nftables/types.js';
import { createNftTracer } from './trace/nftables/tracer.js';
import type { Packet, TraceContext, TraceOptions, TraceResult } from './trace/types.js';

export { KpsimError, codes, isKpsimError } from './errors.js';
export type { ErrorCode, Where } from './errors.js';
export { loadCluster, clusterFromManifests, clusterFromObjects } from './manifest/load.js';
export type { LoadOptions, ManifestText, ManifestObject } from './manifest/load.js';
export { loadLiveCluster, readLiveObjects } from './source/live.js';
export type { LiveRead, LiveReadOptions } from './source/live.js';
export type { LiveSourceOptions } from './source/kubeconfig.js';
export type * from './model/types.js';
export type { ProxierState, ProxierServicePort, ServicePortInfo, EndpointInfo, CategorizedEndpoints } from './tracker/types.js';
export type { Ruleset, Table, Chain, Rule, TableName } from './iptables/types.js';
export { renderIptablesSave } from './iptables/render.js';
export { releaseTextBuffers } from './iptables/save-text.js';
export { renderCanonical } from './iptables/canonical.js';
export type { Packet, TraceContext, TraceOptions, TraceResult, Hop, Verdict, TraceSample, RecentLookup } from './trace/types.js';
export { formatTrace } from './trace/format.js';
export { formatTraceBranches, type BranchFormatOptions } from './trace/format-branches.js';
export { ANSI_STYLE, PLAIN_STYLE, type TextStyle } from './trace/text-style.js';
export type { CompiledIptables, CompiledIpvsNode, NodeCompileOptions } from './node/compile-node.js';
export type { CompiledNftables } from './node/modes/nftables.js';
export type { NftRuleset, NftTable, NftChain, NftSet, NftRule } from './nftables/types.js';
export { renderNftScript } from './nftables/render-script.js';
export { renderNftCanonical } from './nftables/canonical.js';
export type { CompiledNode, OutputFormat, RulesMode } from './node/mode-driver.js';
export { RULES_MODES } from './node/modes.js';
export type { NodeTracer } from './node/trace-node.js';
export { ClusterView } from './cluster/cluster-view.js';
export { traceCluster, EXCLUDE_FROM_LOAD_BALANCERS_LABEL } from './cluster/cluster-trace.js';
export type { ClusterTraceResult, ClusterTraceOptions, Client, EntryNode, Delivery, ReplyPath } from './cluster/cluster-trace.js';
export { HealthChecks, healthCheckBody } from './cluster/health-check.js';
export type { HealthCheckAnswer } from './cluster/health-check.js';
export { summarizeNode } from './cluster/node-summary.js';
export type { NodeSummary } from './cluster/node-summary.js';
export { diffNodes } from './cluster/diff-nodes.js';
export type { NodeDifference, DiffReason } from './cluster/diff-nodes.js';
export { generateCluster } from './generate/cluster.js';
export type { GenerateOptions, GeneratedCluster, GeneratedFile, GeneratedSummary } from './generate/cluster.js';
export type { ModeCompileOptions, ModeSize, SharedModeWork } from './node/mode-driver.js';
export { createScheduler } from './ipvs/virtual-service.js';
export { deriveEndpointSlices, reconcileServiceSlices, PodIndex, DEFAULT_MAX_ENDPOINTS_PER_SLICE } from './controller/endpoint-slice-controller.js';
export type { EndpointSliceControllerInput, EndpointSliceControllerOptions, DerivedEndpointSlices, ServiceSlices, ReconcileContext } from './controller/endpoint-slice-controller.js';
export { runControlPlane } from './controller/control-plane.js';
export type { ControlPlaneOptions } from './controller/control-plane.js';
export { reconcileEndpointSlices } from './controller/endpoint-slice-reconciler.js';
export type { ExistingSlice, SliceChanges } from './controller/endpoint-slice-reconciler.js';
export { runWorkloadControllers } from './workload/run.js';
export type { LiveOptions, WorkloadControllerInput, WorkloadControllerOptions, WorkloadControllerResult } from './workload/run.js';
export { podsToDelete } from './workload/scale-down.js';
export { schedulerNames } from './ipvs/schedulers/types.js';

/** kube-proxy's iptables mode on one node (default: the config's hostnameOverride, else the first Node). */
export function compileIptables(cluster: Cluster, opts: NodeCompileOptions = {}): CompiledIptables {
  return compileIptablesForNode(cluster, opts);
}

/** kube-proxy's IPVS mode on one node. */
export function compileIpvs(cluster: Cluster, opts: NodeCompileOptions & Pick<IpvsCompileOptions, 'scheduler' | 'randomFully'> = {}): CompiledIpvsNode {
  return compileIpvsForNode(cluster, opts);
}

/** kube-proxy's nftables mode on one node: the `kube-proxy` table of each family. */
export function compileNftables(cluster: Cluster, opts: NodeCompileOptions = {}): CompiledNftables {
  const { node, states } = proxierStatesFor(cluster, opts);
  return compileNftablesForStates(node, states);
}

/** `nft list ruleset` text (kpsim's, or a real node's, with every table on it) → an NftRuleset. */
export function parseNftRuleset(text: string, opts: { file?: string } = {}): NftRuleset {
  return parseNftText(text, opts);
}

/** One node in any mode kpsim compiles: `compile(cluster, 'ipvs', {node: 'node-a'})`. */
export function compile(cluster: Cluster, mode: RulesMode, opts: NodeCompileOptions = {}): CompiledNode {
  return compileNode(cluster, mode, opts);
}

/** The iptables-save text of compiled rules (every family, each introduced by a comment line). */
export function renderIptables(compiled: CompiledIptables): string {
  return renderCompiled(compiled);
}

/**
 * The text of compiled rules in any mode, exactly as `kpsim compile` prints it: `kube-proxy`
 * (the default: iptables-save, ipvsadm -Ln), or one of the mode's other formats (`canonical`;
 * `stats`, `rate`, `ipsets`, `iptables` for IPVS mode).
 */
export function renderRules(compiled: CompiledNode, format: OutputFormat = 'kube-proxy'): string {
  return renderCompiled(compiled, format);
}

/** iptables-save or ip6tables-save text (kpsim's, or a real node's) → a Ruleset. */
export function parseIptablesSave(text: string, opts: ParseOptions = {}): Ruleset {
  return parseText(text, opts);
}

export type TraceTarget = CompiledNode | Ruleset | readonly Ruleset[] | NftRuleset | readonly NftRuleset[];

/**
 * Walk one packet through a node's rules. For compiled rules the node's addresses come with
 * them; for parsed rulesets give `localAddresses` (the node's IPs) in `opts`.
 */
export function tracePacket(rules: TraceTarget, packet: Packet, opts: Partial<TraceContext> & TraceOptions = {}): TraceResult {
  return createTracerFor(rules, opts).trace(packet, opts);
}

/** A tracer prepared once for many packets (indexes the rules; far faster than tracePacket in a loop). */
export function createTracerFor(rules: TraceTarget, context: Partial<TraceContext> = {}): NodeTracer {
  if (isCompiled(rules)) return createNodeTracer(rules);
  const list: readonly (Ruleset | NftRuleset)[] = Array.isArray(rules) ? rules : [rules as Ruleset | NftRuleset];
  const withAddresses = { ...context, localAddresses: context.localAddresses ?? [] };
  if (list.length > 0 && list.every(isNftRuleset)) return createNftTracer(list, withAddresses);
  if (list.some(isNftRuleset)) throw new TypeError('createTracerFor: give iptables rulesets or nftables rulesets, not both');
  return createRulesetTracer(list as readonly Ruleset[], withAddresses);
}

/** An nftables ruleset holds a list of tables; an iptables one a map of them. */
function isNftRuleset(rules: Ruleset | NftRuleset): rules is NftRuleset {
  return Array.isArray(rules.tables);
}

function isCompiled(rules: TraceTarget): rules is CompiledNode {
  return !Array.isArray(rules) && 'mode' in rules;
}
