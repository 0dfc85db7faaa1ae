/**
 * `kpsim compare` from the page: the server streams its progress and each row as it completes
 * (server-sent events); the page draws each endpoint's share per mode and the latency of the
 * measured rows as bars, and the rows as a table.
 */
import { ApiError, type ClusterView, byId, el, messageOf, query, readEvents, showMessage } from './api.js';
import { barChart } from './charts.js';

interface CompareRow {
  label: string; mode: string; measured: boolean;
  requestsPerSecond: number | null;
  latency: { p50Ms: number; p99Ms: number } | null;
  connectionSpread: { maxOverMean: number } | null;
  endpoints: { endpoint: string; connections: number; requests: number | null }[];
  decision: { rulesPerLookup: number | null; decisionsPerSecond: number } | null;
}

const FIELDS = ['target', 'schedulers', 'duration', 'connections'] as const;

function value(name: string): string {
  return (byId('compare-form').querySelector(`[name="${name}"]`) as HTMLInputElement).value.trim();
}

function fieldError(field: string, message: string | undefined): void {
  const span = byId('compare-form').querySelector(`[data-error-for="${field}"]`);
  if (span) span.textContent = message ?? '';
}

export function fillCompareTargets(view: ClusterView): void {
  const select = byId<HTMLSelectElement>('c-target');
  const was = select.value;
  const seen = new Set<string>();
  const options = view.servicePorts
    .filter((sp) => sp.reachable.length > 0 && (sp.protocol === 'TCP' || sp.protocol === 'UDP'))
    .map((sp) => `svc/${sp.namespace}/${sp.service}${sp.portName ? `:${sp.portName}` : ''}`)
    .filter((t) => !seen.has(t) && seen.add(t) !== undefined)
    .slice(0, 2000);
  select.replaceChildren(el('option', { value: '' }, '(the service port with the most endpoints)'), ...options.map((t) => el('option', { value: t }, t)));
  select.value = options.includes(was) ? was : '';
}

/** A measured row's share of requests (its few keep-alive connections say little), a simulated row's of new connections. */
function shareOf(row: CompareRow, endpoint: string): number | null {
  const count = (e: CompareRow['endpoints'][number]): number => (row.measured ? e.requests ?? 0 : e.connections);
  const total = row.endpoints.reduce((n, e) => n + count(e), 0);
  const e = row.endpoints.find((x) => x.endpoint === endpoint);
  return e && total > 0 ? count(e) / total : null;
}

function draw(rows: CompareRow[]): void {
  const spread = rows.filter((r) => r.mode !== 'direct');
  const endpoints = [...new Set(spread.flatMap((r) => r.endpoints.map((e) => e.endpoint)))].sort();
  barChart(byId<HTMLCanvasElement>('compare-shares'), endpoints, spread.map((r) => ({ label: r.label, data: endpoints.map((e) => shareOf(r, e)) })), 'share (requests measured, new connections simulated)');
  const measured = rows.filter((r) => r.latency !== null);
  barChart(byId<HTMLCanvasElement>('compare-latency'), measured.map((r) => r.label), [
    { label: 'p50 ms', data: measured.map((r) => r.latency?.p50Ms ?? null) },
    { label: 'p99 ms', data: measured.map((r) => r.latency?.p99Ms ?? null) },
  ], 'latency (ms)');
  byId('compare-rows').querySelector('tbody')!.replaceChildren(...rows.map((r) => el('tr', { 'data-testid': 'compare-row', 'data-mode': r.mode },
    el('td', {}, r.label),
    el('td', {}, r.requestsPerSecond === null ? '-' : r.requestsPerSecond.toFixed(0)),
    el('td', {}, r.latency ? r.latency.p50Ms.toFixed(3) : '-'),
    el('td', {}, r.latency ? r.latency.p99Ms.toFixed(3) : '-'),
    el('td', {}, r.connectionSpread ? r.connectionSpread.maxOverMean.toFixed(3) : '-'),
    el('td', {}, r.decision?.rulesPerLookup != null ? r.decision.rulesPerLookup.toFixed(1) : '-'))));
}

async function run(button: HTMLButtonElement): Promise<void> {
  for (const f of FIELDS) fieldError(f, undefined);
  showMessage(undefined);
  const progress = byId<HTMLProgressElement>('compare-progress');
  const step = byId('compare-step');
  const rows: CompareRow[] = [];
  progress.hidden = false;
  progress.value = 0;
  button.disabled = true;
  draw(rows);
  try {
    const params = query({ target: value('target'), schedulers: value('schedulers'), duration: value('duration'), connections: value('connections') });
    await readEvents(`/v1/compare/stream?${params}`, (event, data) => {
      if (event === 'progress') {
        const p = data as { line: string; step?: number; steps?: number };
        step.textContent = p.line;
        if (p.step !== undefined && p.steps !== undefined) {
          progress.max = p.steps;
          progress.value = p.step - 1;
        }
      } else if (event === 'row') {
        rows.push(data as CompareRow);
        draw(rows);
      } else if (event === 'report') {
        progress.value = progress.max;
        step.textContent = `done: ${rows.length} rows`;
        byId('view-compare').dataset['done'] = 'true';
      } else if (event === 'error') {
        const e = data as { code: string; message: string; path?: string };
        throw new ApiError(200, e.code, e.message, e.path);
      }
    });
  } catch (e) {
    const field = e instanceof ApiError ? FIELDS.find((f) => f === e.path || (e.message.startsWith('--target') && f === 'target')) : undefined;
    if (field !== undefined) fieldError(field, (e as ApiError).message);
    else showMessage(messageOf(e));
  } finally {
    button.disabled = false;
  }
}

export function setupCompare(): void {
  byId('compare-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    delete byId('view-compare').dataset['done'];
    void run(byId('compare-form').querySelector('button')!);
  });
}
