/**
 * kpsim's web page: the views (cluster, rules, trace, compare), the live state (the server's
 * `change` events refetch the cluster), and the hash that picks the view.
 */
import { type ClusterView, byId, el, getJson, messageOf, showMessage } from './api.js';
import { renderCluster } from './cluster.js';
import { fillCompareTargets, setupCompare } from './compare.js';
import { loadRules, setupRules, showRulesGraph, showTraceOnRules } from './rules.js';
import { SHOW_TRACE, type ShowTrace, fillTraceChoices, formFromUrl, runTrace, setupTrace } from './trace.js';

const VIEWS = ['cluster', 'rules', 'trace', 'compare'] as const;
type View = (typeof VIEWS)[number];

let cluster: ClusterView | undefined;
let rulesShown = false;
let rulesStale = true;

function rulesSelection(): { mode: string; node?: string } {
  const node = byId<HTMLSelectElement>('rules-node').value;
  return { mode: byId<HTMLSelectElement>('rules-mode').value, ...(node !== '' && node !== cluster?.node.name ? { node } : {}) };
}

function fillRulesNodes(view: ClusterView): void {
  const select = byId<HTMLSelectElement>('rules-node');
  const was = select.value;
  select.replaceChildren(...view.nodes.map((n) => el('option', { value: n.name }, n.name)));
  select.value = view.nodes.some((n) => n.name === was) ? was : view.node.name;
}

function show(view: View): void {
  for (const v of VIEWS) byId(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (a.dataset['view'] === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  rulesShown = view === 'rules';
  if (rulesShown) {
    if (rulesStale) {
      rulesStale = false;
      void loadRules(rulesSelection()).catch((e: unknown) => showMessage(messageOf(e)));
    } else showRulesGraph();
  }
}

function viewOfLocation(): View {
  const hash = location.hash.slice(1);
  const fromQuery = new URLSearchParams(location.search).get('view');
  return (VIEWS as readonly string[]).includes(hash) ? (hash as View) : (VIEWS as readonly string[]).includes(fromQuery ?? '') ? (fromQuery as View) : 'cluster';
}

async function refreshCluster(): Promise<void> {
  cluster = await getJson<ClusterView>('/v1/cluster');
  renderCluster(cluster);
  fillTraceChoices(cluster);
  fillCompareTargets(cluster);
  fillRulesNodes(cluster);
  byId('live').textContent = `live · resourceVersion ${cluster.resourceVersion ?? '-'}`;
  document.body.dataset['resourceVersion'] = String(cluster.resourceVersion ?? 0);
}

/** Follows the live state: each change refetches the cluster and marks the rules for redrawing. */
function follow(): void {
  const events = new EventSource('/v1/events');
  events.addEventListener('change', () => {
    rulesStale = true;
    void refreshCluster().then(() => {
      if (rulesShown) show('rules');
    }).catch((e: unknown) => showMessage(messageOf(e)));
  });
  events.addEventListener('error', () => {
    byId('live').textContent = 'not following the server (reconnecting)';
  });
}

async function start(): Promise<void> {
  setupRules(rulesSelection);
  setupTrace(() => cluster);
  setupCompare();
  for (const id of ['filter-ns', 'filter-name']) byId(id).addEventListener('input', () => cluster && renderCluster(cluster));
  window.addEventListener('hashchange', () => show(viewOfLocation()));
  document.addEventListener(SHOW_TRACE, (ev) => {
    const { mode, node, hops } = (ev as CustomEvent<ShowTrace>).detail;
    byId<HTMLSelectElement>('rules-mode').value = mode;
    byId<HTMLSelectElement>('rules-node').value = node;
    rulesStale = false; // drawn here, with the trace's path
    location.hash = '#rules';
    void showTraceOnRules(rulesSelection(), hops).catch((e: unknown) => showMessage(messageOf(e)));
  });
  try {
    await refreshCluster();
  } catch (e) {
    showMessage(messageOf(e));
  }
  const traceInUrl = formFromUrl();
  if (!new URLSearchParams(location.search).has('mode') && cluster) byId<HTMLSelectElement>('f-mode').value = cluster.defaultMode;
  show(traceInUrl && location.hash === '' ? 'trace' : viewOfLocation());
  if (traceInUrl) await runTrace(cluster);
  follow();
  document.body.dataset['readyMs'] = String(Math.round(performance.now()));
  document.body.dataset['ready'] = 'true';
}

void start();
