/**
 * The rules of one node in one mode as a graph of chains, for the web page: a chain is a node
 * (with its rule count), a jump or goto an edge. iptables chains jump with `-j`/`-g`; nftables
 * chains with `jump`/`goto`, in a rule or through a verdict map's elements (`vmap @service-ips`).
 * IPVS mode's graph is that of the iptables rules it keeps (its table is served as a table).
 *
 * The graph of a 10k-service node has tens of thousands of chains, so the page never takes it
 * whole: it asks for the roots, then for one chain at a time (its rules and the chains it
 * reaches), and searches by name or comment. Chain ids are "table|chain", the table as the
 * tracer's hops name it ("nat", "ip kube-proxy"), so a trace's hops land on the graph's nodes.
 */
import { renderRule } from '../iptables/render.js';
import type { Ruleset } from '../iptables/types.js';
import { isBuiltinChain } from '../iptables/types.js';
import { tableId, type NftRuleset } from '../nftables/types.js';
import type { CompiledNode } from '../node/mode-driver.js';
import type { CompiledIptables } from '../node/modes/iptables.js';
import type { CompiledIpvsNode } from '../node/modes/ipvs.js';
import type { CompiledNftables } from '../node/modes/nftables.js';
import type { Family } from '../util/ip.js';

export type EdgeKind = 'jump' | 'goto';

export interface GraphEdge {
  readonly to: string;
  readonly kind: EdgeKind;
  /** Index of the rule (in its chain) that jumps. */
  readonly rule: number;
}

export interface GraphChain {
  readonly id: string;
  readonly table: string;
  readonly name: string;
  /** A built-in (iptables) or base (nftables) chain: where packets enter. */
  readonly base: boolean;
  /** The rules' text, rendered on demand (a big ruleset is mostly never looked at). */
  readonly ruleTexts: () => readonly string[];
  readonly ruleCount: number;
  readonly edges: readonly GraphEdge[];
  /** Lower-case name and comments, for search. */
  readonly searchText: string;
}

export interface RulesGraph {
  readonly family: Family;
  readonly chains: ReadonlyMap<string, GraphChain>;
  /** Where packets enter: base chains, else chains nothing jumps to; in ruleset order. */
  readonly roots: readonly string[];
  /** One parent of every chain reachable from a root (breadth first): the path search draws. */
  readonly parent: ReadonlyMap<string, string>;
  readonly ruleCount: number;
}

/** What the page shows of a chain without its rules. */
export interface ChainSummary {
  id: string;
  table: string;
  name: string;
  base: boolean;
  rules: number;
  /** Distinct chains it jumps or goes to. */
  children: number;
}

export function chainId(table: string, chain: string): string {
  return `${table}|${chain}`;
}

/** The rulesets a mode's graph is drawn from, one per family. */
export function graphsOf(compiled: CompiledNode): RulesGraph[] {
  switch (compiled.mode) {
    case 'iptables':
      return (compiled as CompiledIptables).rulesets.map(iptablesGraph);
    case 'ipvs':
      return (compiled as CompiledIpvsNode).tables.map((t) => iptablesGraph(t.ruleset));
    case 'nftables':
      return (compiled as CompiledNftables).rulesets.map((r) => nftablesGraph(r, r.family ?? 4));
  }
}

export function iptablesGraph(ruleset: Ruleset): RulesGraph {
  const chains: GraphChain[] = [];
  for (const table of ruleset.tables.values()) {
    for (const chain of table.chains.values()) {
      const edges: GraphEdge[] = [];
      const comments: string[] = [];
      chain.rules.forEach((rule, index) => {
        const args = rule.args;
        for (let i = 0; i < args.length - 1; i++) {
          const flag = args[i];
          if ((flag === '-j' || flag === '-g' || flag === '--jump' || flag === '--goto') && table.chains.has(args[i + 1]!)) {
            edges.push({ to: chainId(table.name, args[i + 1]!), kind: flag === '-g' || flag === '--goto' ? 'goto' : 'jump', rule: index });
          }
          if (flag === '--comment') comments.push(args[i + 1]!);
        }
      });
      const rules = chain.rules;
      chains.push({
        id: chainId(table.name, chain.name),
        table: table.name,
        name: chain.name,
        base: isBuiltinChain(table.name, chain.name),
        ruleTexts: () => rules.map((r) => renderRule(r)),
        ruleCount: rules.length,
        edges,
        searchText: `${chain.name}\n${comments.join('\n')}`.toLowerCase(),
      });
    }
  }
  return assemble(ruleset.family, chains);
}

const NFT_VERDICT = /\b(jump|goto)\s+("[^"]+"|[^\s,;}]+)/g;
const NFT_VMAP = /\bvmap\s+@([^\s,;}]+)/g;

export function nftablesGraph(ruleset: NftRuleset, family: Family): RulesGraph {
  const chains: GraphChain[] = [];
  for (const table of ruleset.tables) {
    const tid = tableId(table);
    const targetsOf = (text: string): { to: string; kind: EdgeKind }[] => {
      const found: { to: string; kind: EdgeKind }[] = [];
      for (const m of text.matchAll(NFT_VERDICT)) {
        const name = m[2]!.replace(/^"|"$/g, '');
        if (table.chains.has(name)) found.push({ to: chainId(tid, name), kind: m[1] as EdgeKind });
      }
      for (const m of text.matchAll(NFT_VMAP)) {
        for (const element of table.sets.get(m[1]!)?.elements ?? []) found.push(...targetsOf((element.value ?? []).join(' ')));
      }
      return found;
    };
    for (const chain of table.chains.values()) {
      const edges: GraphEdge[] = [];
      chain.rules.forEach((rule, index) => {
        for (const t of targetsOf(rule.text)) edges.push({ ...t, rule: index });
      });
      const rules = chain.rules;
      chains.push({
        id: chainId(tid, chain.name),
        table: tid,
        name: chain.name,
        base: chain.base !== undefined,
        ruleTexts: () => rules.map((r) => (r.comment !== undefined ? `${r.text} comment "${r.comment}"` : r.text)),
        ruleCount: rules.length,
        edges,
        searchText: `${chain.name}\n${chain.comment ?? ''}\n${rules.map((r) => r.comment ?? '').join('\n')}`.toLowerCase(),
      });
    }
  }
  return assemble(family, chains);
}

function assemble(family: Family, list: readonly GraphChain[]): RulesGraph {
  const chains = new Map(list.map((c) => [c.id, c]));
  const targeted = new Set(list.flatMap((c) => c.edges.map((e) => e.to)));
  const bases = list.filter((c) => c.base).map((c) => c.id);
  // Without built-in chains (kube-proxy's output leaves their jumps out) packets enter where nothing jumps in.
  const roots = [...bases, ...list.filter((c) => !c.base && !targeted.has(c.id)).map((c) => c.id)];
  const parent = new Map<string, string>();
  const queue = [...roots];
  const seen = new Set(roots);
  for (let i = 0; i < queue.length; i++) {
    for (const edge of chains.get(queue[i]!)!.edges) {
      if (seen.has(edge.to)) continue;
      seen.add(edge.to);
      parent.set(edge.to, queue[i]!);
      queue.push(edge.to);
    }
  }
  return { family, chains, roots, parent, ruleCount: list.reduce((n, c) => n + c.ruleCount, 0) };
}

export function summaryOf(chain: GraphChain): ChainSummary {
  return { id: chain.id, table: chain.table, name: chain.name, base: chain.base, rules: chain.ruleCount, children: new Set(chain.edges.map((e) => e.to)).size };
}

/** The chain's children, each once, in rule order. */
export function childrenOf(graph: RulesGraph, chain: GraphChain): GraphChain[] {
  const seen = new Set<string>();
  const out: GraphChain[] = [];
  for (const edge of chain.edges) {
    if (seen.has(edge.to)) continue;
    seen.add(edge.to);
    const child = graph.chains.get(edge.to);
    if (child) out.push(child);
  }
  return out;
}

/** The path from a root down to the chain (the root first), by the breadth-first parents. */
export function pathTo(graph: RulesGraph, id: string): string[] {
  const path = [id];
  for (let at = graph.parent.get(id); at !== undefined && path.length <= graph.chains.size; at = graph.parent.get(at)) path.unshift(at);
  return path;
}

/**
 * Chains whose name or comments contain every word of the query, up to `limit`: chains named
 * by the query first, then the smallest (a service's own chains before KUBE-SERVICES, whose
 * comments name every service).
 */
export function searchChains(graph: RulesGraph, query: string, limit: number): { matches: GraphChain[]; total: number } {
  const words = query.toLowerCase().split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return { matches: [], total: 0 };
  const all = [...graph.chains.values()].filter((c) => words.every((w) => c.searchText.includes(w)));
  const named = (c: GraphChain): number => (words.every((w) => c.name.toLowerCase().includes(w)) ? 0 : 1);
  all.sort((a, b) => named(a) - named(b) || a.ruleCount - b.ruleCount);
  return { matches: all.slice(0, limit), total: all.length };
}
