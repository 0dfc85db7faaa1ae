/**
 * The rules view: one node's chains in one mode as a graph, drawn from the roots down only where
 * the reader expands it (a click), so that a 10k-service ruleset stays a few dozen nodes on screen;
 * a search draws a chain's path from its root. IPVS mode adds the table as a table.
 */
import { type ChainDetail, type ChainSummary, type GraphRoots, type Hop, type IpvsView, type SearchResult, byId, el, getJson, messageOf, query, showMessage } from './api.js';
import { type Graph, createGraph, layout } from './graph.js';

export interface RulesSelection { mode: string; family?: number; node?: string }

let cy: Graph | undefined;

/** The graph, made on first use, with a click on a chain expanding it. */
function graph(): Graph {
  if (cy) return cy;
  cy = createGraph(byId('rules-graph'));
  cy.on('tap', 'node', (ev) => {
    const id = ev.target.id() as string;
    if (id.endsWith('+more')) return;
    void expand(id).then(() => layout(cy!)).catch((e: unknown) => showMessage(messageOf(e)));
  });
  return cy;
}

/** After the view was hidden: cytoscape measures its container again. */
export function showRulesGraph(): void {
  if (!cy) return;
  cy.resize();
  cy.fit(undefined, 20);
}
let selection: RulesSelection = { mode: 'iptables' };
const expanded = new Set<string>();

function label(c: ChainSummary): string {
  return `${c.name}\n${c.table} · ${c.rules} rule${c.rules === 1 ? '' : 's'}`;
}

function addChain(c: ChainSummary): void {
  if (!cy!.getElementById(c.id).empty()) return;
  cy!.add({ group: 'nodes', data: { id: c.id, label: label(c), base: c.base, summary: c } });
}

function addEdge(from: string, to: string): void {
  const id = `${from}->${to}`;
  if (cy!.getElementById(id).empty()) cy!.add({ group: 'edges', data: { id, source: from, target: to } });
}

function params(extra: Record<string, string | number | undefined> = {}): string {
  return query({ mode: selection.mode, family: selection.family, node: selection.node, ...extra });
}

/** Draws the chain's children and shows its rules beside the graph. */
async function expand(id: string, show = true): Promise<void> {
  const detail = await getJson<ChainDetail>(`/v1/graph/chain?${params({ id, limit: 50 })}`);
  addChain(detail.chain);
  if (!expanded.has(id)) {
    expanded.add(id);
    for (const child of detail.children) {
      addChain(child);
      addEdge(id, child.id);
    }
    if (detail.more > 0) cy!.add({ group: 'nodes', data: { id: `${id}+more`, label: `${detail.more} more: search to draw one`, more: true } });
    if (detail.more > 0) addEdge(id, `${id}+more`);
  }
  if (show) {
    byId('chain-title').textContent = `${detail.chain.table} ${detail.chain.name}`;
    byId('chain-rules').replaceChildren(...detail.rules.map((r) => el('li', { 'data-testid': 'chain-rule' }, r.text)));
  }
}

async function reveal(path: string[]): Promise<void> {
  for (const id of path.slice(0, -1)) await expand(id, false);
  await expand(path[path.length - 1]!);
  layout(cy!);
  const node = cy!.getElementById(path[path.length - 1]!);
  cy!.elements().unselect();
  node.select();
  cy!.animate({ center: { eles: node }, zoom: 1 }, { duration: 0 });
}

async function search(q: string): Promise<void> {
  const list = byId('rules-found');
  if (q.trim() === '') return void list.replaceChildren();
  const found = await getJson<SearchResult>(`/v1/graph/search?${params({ q, limit: 30 })}`);
  list.replaceChildren(
    el('li', { class: 'muted' }, `${found.total} chain${found.total === 1 ? '' : 's'}${found.total > found.matches.length ? ` (first ${found.matches.length})` : ''}`),
    ...found.matches.map((m) => {
      const b = el('button', { type: 'button' }, m.chain.name);
      b.addEventListener('click', () => void reveal(m.path).catch((e: unknown) => showMessage(messageOf(e))));
      return el('li', {}, b);
    }),
  );
}

async function renderIpvs(): Promise<void> {
  const panel = byId('ipvs-panel');
  panel.hidden = selection.mode !== 'ipvs';
  if (panel.hidden) return;
  const q = byId<HTMLInputElement>('ipvs-filter').value;
  const table = await getJson<IpvsView>(`/v1/ipvs?${query({ q, node: selection.node, limit: 200 })}`);
  byId('ipvs').querySelector('tbody')!.replaceChildren(
    ...table.services.map((vs) =>
      el('tr', { 'data-testid': 'ipvs-service' },
        el('td', {}, `${vs.protocol} ${vs.address}`),
        el('td', {}, `${vs.scheduler}${vs.persistentSeconds !== null ? ` persistent ${vs.persistentSeconds}` : ''}`),
        el('td', {}, `${vs.service ?? ''} ${vs.kind ?? ''}`),
        el('td', {}, ...vs.dests.map((d) => el('div', {}, `-> ${d.address} ${d.forward} ${d.weight}`)))),
    ),
  );
  byId('ipvs-more').textContent = `${table.matching} of ${table.total} virtual servers match${table.matching > table.services.length ? `; the first ${table.services.length} shown` : ''}`;
}

/** Draws the roots of the selected mode's rules (and their children); measured by the browser test. */
export async function loadRules(next: RulesSelection): Promise<void> {
  const started = performance.now();
  delete document.body.dataset['rulesDrawn'];
  selection = next;
  const cy = graph();
  cy.elements().remove();
  expanded.clear();
  const roots = await getJson<GraphRoots>(`/v1/graph?${params()}`);
  selection = { ...selection, family: roots.family };
  const family = byId<HTMLSelectElement>('rules-family');
  family.replaceChildren(...roots.families.map((f) => el('option', { value: String(f) }, `IPv${f}`)));
  family.value = String(roots.family);
  byId('rules-summary').textContent = `${roots.mode} mode, IPv${roots.family}: ${roots.chains} chains, ${roots.rules} rules`;
  for (const root of roots.roots) addChain(root);
  // Base chains are few: show what they reach at once.
  for (const root of roots.roots.filter((r) => r.base || roots.roots.length <= 12)) await expand(root.id, false);
  layout(cy);
  cy.fit(undefined, 20);
  document.body.dataset['rulesMs'] = String(Math.round(performance.now() - started));
  document.body.dataset['rulesDrawn'] = String(cy.nodes().length);
  await renderIpvs();
}

/**
 * A trace's path on the rules graph: the chains its hops crossed are drawn (with the chains
 * leading to them) and marked, and so are the jumps between them. Chains the tracer assumed
 * (kube-proxy's jumps from the built-in chains, absent from its output) are not in the graph.
 */
export async function showTraceOnRules(next: RulesSelection, hops: readonly Hop[]): Promise<void> {
  await loadRules(next);
  const ids = [...new Set(hops.map((h) => `${h.table}|${h.chain}`))];
  const found: string[] = [];
  for (const id of ids) {
    let detail: ChainDetail;
    try {
      detail = await getJson<ChainDetail>(`/v1/graph/chain?${params({ id, limit: 50 })}`);
    } catch {
      continue;
    }
    for (const step of detail.path) await expand(step, false);
    found.push(id);
  }
  const cy = graph();
  cy.elements().removeClass('hit');
  for (const id of found) cy.getElementById(id).addClass('hit');
  for (let i = 1; i < hops.length; i++) {
    cy.getElementById(`${hops[i - 1]!.table}|${hops[i - 1]!.chain}->${hops[i]!.table}|${hops[i]!.chain}`).addClass('hit');
  }
  layout(cy);
  cy.fit(cy.nodes('.hit'), 30);
  document.body.dataset['rulesHits'] = String(cy.nodes('.hit').length);
}

export function setupRules(current: () => RulesSelection): void {
  const reload = (): void => void loadRules(current()).catch((e: unknown) => showMessage(messageOf(e)));
  byId('rules-mode').addEventListener('change', reload);
  byId('rules-node').addEventListener('change', reload);
  byId('rules-family').addEventListener('change', () => {
    selection = { ...selection, family: Number(byId<HTMLSelectElement>('rules-family').value) };
    void loadRules(selection).catch((e: unknown) => showMessage(messageOf(e)));
  });
  byId('rules-reset').addEventListener('click', () => void loadRules(selection).catch((e: unknown) => showMessage(messageOf(e))));
  let timer: number | undefined;
  byId('rules-search').addEventListener('input', (ev) => {
    clearTimeout(timer);
    const q = (ev.target as HTMLInputElement).value;
    timer = window.setTimeout(() => void search(q).catch((e: unknown) => showMessage(messageOf(e))), 200);
  });
  byId('ipvs-filter').addEventListener('input', () => void renderIpvs().catch((e: unknown) => showMessage(messageOf(e))));
}
