/** The cluster view: service ports with their endpoints, and the nodes, filtered by namespace and name. */
import { type ClusterView, type ServicePortView, byId, el } from './api.js';

/** Rows drawn at once: a 10k-service cluster is filtered, not drawn whole. */
const MAX_ROWS = 300;

function tag(text: string, kind = ''): HTMLElement {
  return el('span', { class: `tag ${kind}`.trim() }, text);
}

function addresses(sp: ServicePortView): string {
  return [sp.clusterIP, ...sp.externalIPs.map((a) => `ext ${a}`), ...sp.loadBalancerVIPs.map((a) => `lb ${a}`)].join(', ');
}

function serviceRow(sp: ServicePortView): HTMLTableRowElement {
  const endpoints = el('td');
  if (sp.endpoints.length === 0) endpoints.append(tag('none', 'bad'));
  for (const e of sp.endpoints) {
    const state = e.terminating ? (e.serving ? 'terminating, serving' : 'terminating') : e.ready ? 'ready' : e.serving ? 'serving' : 'not ready';
    const kind = e.terminating || !e.ready ? 'warn' : '';
    endpoints.append(el('div', { 'data-testid': 'cluster-endpoint' }, tag(state, kind), `${e.endpoint} `, el('span', { class: 'muted' }, [e.node, e.zone].filter((x) => x).join(' · '))));
  }
  return el(
    'tr',
    { 'data-testid': 'service', 'data-name': sp.name },
    el('td', {}, el('b', {}, `${sp.namespace}/${sp.service}`), sp.portName ? ` :${sp.portName}` : '', ` IPv${sp.family}`),
    el('td', {}, sp.type),
    el('td', {}, addresses(sp)),
    el('td', {}, `${sp.port}/${sp.protocol}${sp.nodePort ? ` node ${sp.nodePort}` : ''}`),
    el('td', {}, `ext ${sp.externalTrafficPolicy}, int ${sp.internalTrafficPolicy}`),
    el('td', {}, sp.sessionAffinity === 'ClientIP' ? `ClientIP ${sp.sessionAffinityTimeoutSeconds}s` : 'None'),
    endpoints,
  );
}

export function renderCluster(view: ClusterView): void {
  const nsSelect = byId<HTMLSelectElement>('filter-ns');
  const chosen = nsSelect.value;
  const namespaces = [...new Set(view.servicePorts.map((s) => s.namespace))].sort();
  nsSelect.replaceChildren(el('option', { value: '' }, 'all'), ...namespaces.map((ns) => el('option', { value: ns }, ns)));
  nsSelect.value = namespaces.includes(chosen) ? chosen : '';
  const name = byId<HTMLInputElement>('filter-name').value.trim().toLowerCase();
  const matching = view.servicePorts.filter((s) => (nsSelect.value === '' || s.namespace === nsSelect.value) && (name === '' || s.name.toLowerCase().includes(name)));
  byId('services').querySelector('tbody')!.replaceChildren(...matching.slice(0, MAX_ROWS).map(serviceRow));
  byId('services-more').textContent = matching.length > MAX_ROWS ? `${matching.length - MAX_ROWS} more service ports: filter to see them` : '';
  byId('cluster-summary').textContent = `node ${view.node.name} · ${view.servicePorts.length} service ports · ${view.nodes.length} nodes${view.resourceVersion !== undefined ? ` · resourceVersion ${view.resourceVersion}` : ''}`;
  byId('nodes').querySelector('tbody')!.replaceChildren(
    ...view.nodes.map((n) => el('tr', { 'data-testid': 'node' }, el('td', {}, n.name), el('td', {}, n.addresses.join(', ')), el('td', {}, n.podCIDRs.join(', ')), el('td', {}, n.zone ?? ''), el('td', {}, n.ready ? 'yes' : 'no'))),
  );
}
