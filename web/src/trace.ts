/**
 * The trace form and its result: the hops (each rule's text) drawn as a path of chains, the
 * verdict, the endpoints with their probabilities as bars, the masquerade decision; iptables and
 * IPVS side by side on request. The form's state is the page's query string, so a trace is a link.
 */
import { ApiError, type ClusterView, type Hop, type TraceResult, byId, el, messageOf, postJson, showMessage } from './api.js';
import { barChart } from './charts.js';
import { createGraph, layout } from './graph.js';

/** The event a result's "Show on the rules graph" sends to the page (main.ts). */
export const SHOW_TRACE = 'kpsim:show-trace';
export interface ShowTrace { mode: string; node: string; hops: readonly Hop[] }

export const TRACE_FIELDS = ['src', 'dst', 'dport', 'proto', 'node', 'mode'] as const;
type Field = (typeof TRACE_FIELDS)[number];

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
function isIP(text: string): boolean {
  return IPV4.test(text) || (text.includes(':') && /^[0-9a-fA-F:.]+$/.test(text));
}

function input(name: string): HTMLInputElement | HTMLSelectElement {
  return byId('trace-form').querySelector(`[name="${name}"]`)!;
}

function fieldError(field: string, message: string | undefined): void {
  const span = byId('trace-form').querySelector(`[data-error-for="${field}"]`);
  if (span) span.textContent = message ?? '';
  const target = input(field);
  if (message === undefined) target.removeAttribute('aria-invalid');
  else target.setAttribute('aria-invalid', 'true');
}

function clearErrors(): void {
  for (const f of TRACE_FIELDS) fieldError(f, undefined);
  showMessage(undefined);
}

/** The field a server error is about (`packet.src` → src), if any. */
function fieldOf(e: ApiError): Field | undefined {
  if (e.code === 'KPSIM_ERR_CONFIG_UNKNOWN_NODE') return 'node';
  const last = (e.path ?? '').split('.').pop();
  return TRACE_FIELDS.find((f) => f === last);
}

/** Fills the pick list of services and the node list from the cluster. */
export function fillTraceChoices(view: ClusterView): void {
  const pick = byId<HTMLSelectElement>('trace-service');
  const chosen = pick.value;
  const ports = view.servicePorts.slice(0, 2000);
  pick.replaceChildren(
    el('option', { value: '' }, `(pick one of ${view.servicePorts.length} service ports to fill destination and port)`),
    ...ports.map((sp) => el('option', { value: `${sp.clusterIP}|${sp.port}|${sp.protocol.toLowerCase()}` }, `${sp.name} ${sp.type} ${sp.clusterIP}:${sp.port}/${sp.protocol}`)),
  );
  pick.value = chosen;
  const node = input('node') as HTMLSelectElement;
  const was = node.value;
  node.replaceChildren(...view.nodes.map((n) => el('option', { value: n.name }, n.name)));
  node.value = view.nodes.some((n) => n.name === was) ? was : view.node.name;
}

interface TraceRequest { src: string; dst: string; dport: number; proto: string; node: string; mode: string; side: boolean }

/** Reads and checks the form; a bad field gets its message beside it. */
function readForm(cluster: ClusterView | undefined): TraceRequest | undefined {
  const value = (f: string): string => input(f).value.trim();
  let ok = true;
  const src = value('src');
  if (!isIP(src)) (fieldError('src', src === '' ? 'give the source address' : `${src} is not an IP address`), (ok = false));
  let dst = value('dst');
  let dportText = value('dport');
  if (!isIP(dst) && dst !== '') {
    // A service name: its ClusterIP (and its port when none is given).
    const [ns, name] = dst.includes('/') ? dst.split('/', 2) : ['default', dst];
    const sp = cluster?.servicePorts.find((s) => s.namespace === ns && s.service === name && (dportText === '' || String(s.port) === dportText));
    if (sp) {
      dst = sp.clusterIP;
      if (dportText === '') dportText = String(sp.port);
    } else (fieldError('dst', `${dst} is neither an IP address nor a service of this cluster`), (ok = false));
  } else if (dst === '') (fieldError('dst', 'give the destination address or a service'), (ok = false));
  const dport = Number(dportText);
  if (!Number.isInteger(dport) || dport < 1 || dport > 65535) (fieldError('dport', `${dportText || 'nothing'} is not a port (1-65535)`), (ok = false));
  if (!ok) return undefined;
  return { src, dst, dport, proto: value('proto'), node: value('node'), mode: value('mode'), side: (input('side') as HTMLInputElement).checked };
}

function pct(p: number): string {
  return `${(p * 100).toFixed(2)}%`;
}

/** The chains the hops went through, as a path: one node per chain, an edge per step, the endpoints at the end. */
function drawPath(container: HTMLElement, result: TraceResult): void {
  const cy = createGraph(container);
  const ids = new Set<string>();
  let previous: string | undefined;
  for (const hop of result.hops) {
    const id = `${hop.table}|${hop.chain}`;
    if (!ids.has(id)) {
      ids.add(id);
      cy.add({ group: 'nodes', data: { id, label: `${hop.chain}\n${hop.table}`, base: hop.depth === 0 }, classes: 'hit' });
    }
    if (previous !== undefined && previous !== id && cy.getElementById(`${previous}->${id}`).empty()) {
      cy.add({ group: 'edges', data: { id: `${previous}->${id}`, source: previous, target: id }, classes: 'hit' });
    }
    previous = id;
  }
  for (const endpoint of result.endpoints) {
    const from = result.hops.find((h) => h.target === endpoint || h.rule.includes(endpoint));
    cy.add({ group: 'nodes', data: { id: `ep:${endpoint}`, label: endpoint, endpoint: true } });
    if (from) cy.add({ group: 'edges', data: { id: `ep-edge:${endpoint}`, source: `${from.table}|${from.chain}`, target: `ep:${endpoint}`, label: pct(result.probabilities[endpoint] ?? 0) } });
  }
  if (result.endpoints.length === 0 && previous !== undefined) {
    cy.add({ group: 'nodes', data: { id: 'verdict', label: result.verdict, verdict: true } });
    cy.add({ group: 'edges', data: { id: 'verdict-edge', source: previous, target: 'verdict' } });
  }
  layout(cy);
  cy.fit(undefined, 10);
}

function hopItem(hop: Hop): HTMLLIElement {
  return el(
    'li',
    { 'data-testid': 'hop', 'data-chain': hop.chain, 'data-table': hop.table, ...(hop.probability !== undefined ? { 'data-probability': String(hop.probability) } : {}) },
    el('span', { class: 'chain' }, `${hop.table} ${hop.chain}`),
    hop.probability !== undefined && hop.probability < 1 ? ` (p=${hop.probability.toFixed(4)})` : '',
    el('br'),
    el('code', { class: 'rule' }, hop.rule),
    ...(hop.notes ?? []).map((n) => el('div', { class: 'muted' }, n)),
  );
}

/** The result's box, and what draws its graph and chart once the box is in the page (both measure their containers). */
function renderResult(mode: string, node: string, result: TraceResult): { box: HTMLElement; draw: () => void } {
  const onRules = el('button', { type: 'button', 'data-testid': 'show-on-rules' }, 'Show on the rules graph');
  onRules.addEventListener('click', () => document.dispatchEvent(new CustomEvent<ShowTrace>(SHOW_TRACE, { detail: { mode, node, hops: result.hops } })));
  const canvas = el('canvas', { 'aria-label': `probability of each endpoint in ${mode} mode` });
  const graph = el('div', { class: 'trace-graph', 'data-testid': 'trace-graph' });
  const box = el(
    'div',
    { class: 'result', 'data-testid': 'trace-result', 'data-mode': mode },
    el('h3', {}, `${mode} mode`),
    el('div', { class: 'verdict', 'data-testid': 'verdict' }, result.verdict),
    el('p', {}, 'Masquerade: ', el('b', { 'data-testid': 'masquerade' }, result.masquerade ? 'yes' : 'no'),
      result.outcomes ? ` · outcomes ${Object.entries(result.outcomes).map(([v, p]) => `${v} ${pct(p)}`).join(', ')}` : ''),
    graph,
    onRules,
    el('h4', {}, `Endpoints (${result.endpoints.length})`),
    el('ul', {}, ...result.endpoints.map((e) => el('li', { 'data-testid': 'endpoint', 'data-endpoint': e, 'data-probability': String(result.probabilities[e]), 'data-masquerade': String(result.masqueradeByEndpoint[e] ?? false) },
      `${e} p=${(result.probabilities[e] ?? 0).toFixed(10)}${result.masqueradeByEndpoint[e] ? ' (masqueraded)' : ''}`))),
    el('div', { class: 'chart' }, canvas),
    el('h4', {}, `Hops (${result.hops.length})`),
    el('ol', { class: 'hops' }, ...result.hops.map(hopItem)),
  );
  const draw = (): void => {
    drawPath(graph, result);
    if (result.endpoints.length > 0) barChart(canvas, result.endpoints, [{ label: 'probability', data: result.endpoints.map((e) => result.probabilities[e] ?? 0) }], 'probability');
  };
  return { box, draw };
}

/** The form's values as the page's query string. */
function traceUrl(req: TraceRequest): string {
  const q = new URLSearchParams({ view: 'trace', src: req.src, dst: req.dst, dport: String(req.dport), proto: req.proto, node: req.node, mode: req.mode });
  if (req.side) q.set('side', '1');
  return `${location.pathname}?${q.toString()}#trace`;
}

export async function runTrace(cluster: ClusterView | undefined): Promise<void> {
  clearErrors();
  const req = readForm(cluster);
  if (!req) return;
  const url = traceUrl(req);
  history.replaceState(null, '', url);
  const link = byId<HTMLAnchorElement>('trace-link');
  link.href = url;
  link.hidden = false;
  const modes = req.side ? [req.mode, req.mode === 'ipvs' ? 'iptables' : 'ipvs'] : [req.mode];
  const started = performance.now();
  try {
    const results = await Promise.all(modes.map((mode) =>
      postJson<TraceResult>('/v1/trace', { src: req.src, dst: req.dst, dport: req.dport, proto: req.proto, mode, ...(req.node !== '' && req.node !== cluster?.node.name ? { node: req.node } : {}) })));
    const rendered = results.map((r, i) => renderResult(modes[i]!, req.node, r));
    byId('trace-results').replaceChildren(...rendered.map((r) => r.box));
    for (const r of rendered) r.draw();
    // From the click to the drawn path: the browser test prints it.
    byId('trace-results').dataset['ms'] = String(Math.round(performance.now() - started));
  } catch (e) {
    byId('trace-results').replaceChildren();
    const field = e instanceof ApiError ? fieldOf(e) : undefined;
    if (field !== undefined && e instanceof ApiError) fieldError(field, e.message);
    else showMessage(messageOf(e));
  }
}

/** Fills the form from the query string; true when it names a trace to run. */
export function formFromUrl(): boolean {
  const q = new URLSearchParams(location.search);
  for (const f of TRACE_FIELDS) {
    const v = q.get(f);
    if (v !== null) input(f).value = v;
  }
  (input('side') as HTMLInputElement).checked = q.get('side') === '1';
  return q.has('src') && q.has('dst');
}

export function setupTrace(cluster: () => ClusterView | undefined): void {
  byId('trace-service').addEventListener('change', (ev) => {
    const v = (ev.target as HTMLSelectElement).value;
    if (v === '') return;
    const [ip, port, proto] = v.split('|');
    input('dst').value = ip!;
    input('dport').value = port!;
    input('proto').value = proto!;
  });
  byId('trace-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void runTrace(cluster());
  });
}
