/**
 * How two nodes' rules differ, and why: the lines of one mode's output found on one node and not
 * the other, and the facts of the two nodes that make them differ: their addresses (node ports,
 * source-range self rules), their zones (topology hints), their pod CIDRs (when the local
 * detector is the node's own), and, per service port, their local endpoints (Local traffic
 * policies, hairpin masquerading).
 */
import type { ModeCompileOptions, OutputFormat, RulesMode } from '../node/mode-driver.js';
import { modeDriver } from '../node/modes.js';
import { ZONE_LABEL } from '../topology/categorize.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import type { ClusterView } from './cluster-view.js';

export type DiffReason =
  | { readonly kind: 'addresses'; readonly a: readonly string[]; readonly b: readonly string[] }
  | { readonly kind: 'zone'; readonly a: string | null; readonly b: string | null }
  | { readonly kind: 'podCIDRs'; readonly a: readonly string[]; readonly b: readonly string[] }
  | {
    readonly kind: 'localEndpoints';
    /** "ns/name:port/TCP", with " (IPv6)" for the IPv6 proxier's view. */
    readonly servicePort: string;
    /** What the port's local endpoints decide: its Local traffic policies, or only hairpin masquerading. */
    readonly uses: string;
    readonly a: readonly string[];
    readonly b: readonly string[];
  }
  | { readonly kind: 'topology'; readonly servicePort: string; readonly a: readonly string[]; readonly b: readonly string[] };

export interface NodeDifference {
  readonly a: string;
  readonly b: string;
  readonly mode: RulesMode;
  readonly format: OutputFormat;
  readonly reasons: readonly DiffReason[];
  /** Lines of the mode's output on `a` and not on `b` (as often as they are more), in `a`'s order. */
  readonly onlyA: readonly string[];
  readonly onlyB: readonly string[];
}

export function diffNodes(view: ClusterView, a: string, b: string, mode: RulesMode, opts: ModeCompileOptions = {}): NodeDifference {
  const driver = modeDriver(mode);
  const format = driver.formats[0]!;
  const nodeA = view.resolve(a);
  const nodeB = view.resolve(b);
  const textA = driver.render(view.compile(mode, nodeA, opts), format);
  const textB = driver.render(view.compile(mode, nodeB, opts), format);
  const reasons: DiffReason[] = [];
  if (!sameList(nodeA.ips, nodeB.ips)) reasons.push({ kind: 'addresses', a: nodeA.ips, b: nodeB.ips });
  const zoneA = nodeA.labels[ZONE_LABEL] ?? null;
  const zoneB = nodeB.labels[ZONE_LABEL] ?? null;
  if (zoneA !== zoneB) reasons.push({ kind: 'zone', a: zoneA, b: zoneB });
  if (view.cluster.config.detectLocalMode === 'NodeCIDR' && !sameList(nodeA.podCIDRs, nodeB.podCIDRs)) reasons.push({ kind: 'podCIDRs', a: nodeA.podCIDRs, b: nodeB.podCIDRs });
  const statesB = new Map(view.statesOf(nodeB).map((s) => [s.family, s]));
  for (const stateA of view.statesOf(nodeA)) {
    const stateB = statesB.get(stateA.family);
    if (stateB !== undefined) reasons.push(...portReasons(stateA, stateB));
  }
  return { a, b, mode, format, reasons, onlyA: linesNotIn(textA, textB), onlyB: linesNotIn(textB, textA) };
}

function portReasons(a: ProxierState, b: ProxierState): DiffReason[] {
  const reasons: DiffReason[] = [];
  a.servicePorts.forEach((spA, i) => {
    const spB = b.servicePorts[i]!;
    if (spA === spB) return;
    const servicePort = `${spA.info.spn}/${spA.info.protocol}${a.family === 6 ? ' (IPv6)' : ''}`;
    const localA = localEndpoints(spA);
    const localB = localEndpoints(spB);
    if (!sameList(localA, localB)) reasons.push({ kind: 'localEndpoints', servicePort, uses: usesOfLocal(spA), a: localA, b: localB });
    const clusterA = (spA.categorized.clusterEndpoints ?? []).map((e) => e.endpoint);
    const clusterB = (spB.categorized.clusterEndpoints ?? []).map((e) => e.endpoint);
    if (!sameList(clusterA, clusterB)) reasons.push({ kind: 'topology', servicePort, a: clusterA, b: clusterB });
  });
  return reasons;
}

function localEndpoints(sp: ProxierServicePort): string[] {
  return sp.endpoints.filter((e) => e.isLocal).map((e) => e.endpoint);
}

function usesOfLocal(sp: ProxierServicePort): string {
  const uses: string[] = [];
  if (sp.info.externalPolicyLocal && sp.info.externallyAccessible) uses.push('externalTrafficPolicy Local');
  if (sp.info.internalPolicyLocal) uses.push('internalTrafficPolicy Local');
  return uses.length > 0 ? uses.join(', ') : 'hairpin masquerading only';
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The lines of `text` not in `other`, each as often as it is more frequent; comment lines (they name the node) left out. */
function linesNotIn(text: string, other: string): string[] {
  const counts = new Map<string, number>();
  for (const line of other.split('\n')) counts.set(line, (counts.get(line) ?? 0) + 1);
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const n = counts.get(line) ?? 0;
    if (n > 0) counts.set(line, n - 1);
    else out.push(line);
  }
  return out;
}
