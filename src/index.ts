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
import type { Packet, TraceContext, TraceOptions, TraceResult } from './trace/types.js';

export { KpsimError, codes, isKpsimError } from './errors.js';
export type { ErrorCode, Where } from './errors.js';
export { loadCluster, clusterFromManifests } from './manifest/load.js';
export type { LoadOptions, ManifestText } from './manifest/load.js';
export type * from './model/types.js';
export type { ProxierState, ProxierServicePort, ServicePortInfo, EndpointInfo, CategorizedEndpoints } from './tracker/types.js';
export type { Ruleset, Table, Chain, Rule, TableName } from './iptables/types.js';
export { renderIptablesSave } from './iptables/render.js';
export { renderCanonical } from './iptables/canonical.js';
export type { Packet, TraceContext, TraceOptions, TraceResult, Hop, Verdict, TraceSample } from './trace/types.js';
export { formatTrace } from './trace/format.js';
export type { CompiledIptables, CompiledIpvsNode, NodeCompileOptions } from './node/compile-node.js';
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
export { schedulerNames } from './ipvs/schedulers/types.js';

/** kube-proxy's iptables mode on one node (default: the config's hostnameOverride, else the first Node). */
export function compileIptables(cluster: Cluster, opts: NodeCompileOptions = {}): CompiledIptables {
  return compileIptablesForNode(cluster, opts);
}

/** kube-proxy's IPVS mode on one node. */
export function compileIpvs(cluster: Cluster, opts: NodeCompileOptions & Pick<IpvsCompileOptions, 'scheduler' | 'randomFully'> = {}): CompiledIpvsNode {
  return compileIpvsForNode(cluster, opts);
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

export type TraceTarget = CompiledNode | Ruleset | readonly Ruleset[];

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
  const rulesets = Array.isArray(rules) ? (rules as readonly Ruleset[]) : [rules as Ruleset];
  return createRulesetTracer(rulesets, { ...context, localAddresses: context.localAddresses ?? [] });
}

function isCompiled(rules: TraceTarget): rules is CompiledNode {
  return !Array.isArray(rules) && 'mode' in rules;
}
