/**
 * `kpsim compare`'s human-readable report: one table with a row per mode (real bytes and
 * simulated side by side), then where each mode put the connections, endpoint by endpoint.
 */
import type { CompareReport, CompareRow } from './compare-report.js';
import type { Spread } from './spread.js';
import { formatTable, pValue, rate, signedMillis } from './table.js';

export function formatCompareReport(report: CompareReport): string {
  const { target, settings } = report;
  const lines = [
    `kpsim compare: ${target.service} via ${target.via} ${target.address}${settings.protocol === 'UDP' ? '/UDP' : ''}`,
    settings.protocol === 'UDP'
      ? `  real: UDP, ${settings.connections} client sockets, ${rate(settings.rate ?? 0)} datagrams/s, ${settings.durationSeconds} s per row; ${settings.loadGenerator}`
      : `  real: ${settings.connections} connections, ${settings.durationSeconds} s per row, ${settings.keepAlive ? 'keep-alive' : 'no keep-alive'}; ${settings.loadGenerator}`,
    `  direct: straight to ${report.baseline.endpoint} (${report.baseline.pod || 'no pod name'}) at ${report.baseline.listener}`,
    `  sim: ${report.stream.description}`,
    '',
    formatTable(
      [
        { header: 'mode' }, { header: 'kind' },
        { header: 'req/s', align: 'right' }, { header: 'x direct', align: 'right' },
        { header: '+p50 ms', align: 'right' }, { header: '+p99 ms', align: 'right' }, { header: 'errors', align: 'right' },
        { header: 'conn spread' }, { header: 'req spread' },
        { header: 'rules/lookup', align: 'right' }, { header: 'decisions/s', align: 'right' },
      ],
      report.rows.map(modeCells),
      '  ',
    ),
    '',
    'Connections per endpoint (real rows: connections/requests):',
    formatTable(
      [{ header: 'endpoint' }, { header: 'pod' }, ...report.rows.filter((r) => r.mode !== 'direct').map((r) => ({ header: r.label, align: 'right' as const }))],
      endpointRows(report),
      '  ',
    ),
    '',
    'spread: busiest endpoint over the mean (1.00 = even) and the chi-square p-value against an even spread (low = uneven)',
  ];
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}

function modeCells(r: CompareRow): string[] {
  const direct = r.mode === 'direct';
  return [
    r.label,
    r.measured ? 'real' : 'sim',
    r.requestsPerSecond === null ? '-' : rate(r.requestsPerSecond),
    r.relativeToDirect === null ? '-' : `${r.relativeToDirect.toFixed(2)}x`,
    direct || r.addedLatencyMs === null ? '-' : signedMillis(r.addedLatencyMs.p50),
    direct || r.addedLatencyMs === null ? '-' : signedMillis(r.addedLatencyMs.p99),
    r.errors ? String(r.errors.total) : r.refusedConnections ? `${r.refusedConnections} refused` : '-',
    spreadCell(r.connectionSpread),
    spreadCell(r.requestSpread),
    r.decision?.rulesPerLookup != null ? r.decision.rulesPerLookup.toFixed(1) : '-',
    r.decision ? rate(r.decision.decisionsPerSecond) : '-',
  ];
}

/** "1.20 p=0.90", "3.00 p<1e-6" */
function spreadCell(spread: Spread | null): string {
  if (spread === null || spread.total === 0) return '-';
  const p = pValue(spread.pValue);
  return `${spread.maxOverMean.toFixed(2)} p${p.startsWith('<') ? '' : '='}${p}`;
}

function endpointRows(report: CompareReport): string[][] {
  const modes = report.rows.filter((r) => r.mode !== 'direct');
  const endpoints = new Map<string, string>();
  for (const r of modes) for (const e of r.endpoints) if (!endpoints.has(e.endpoint) || endpoints.get(e.endpoint) === '') endpoints.set(e.endpoint, e.pod);
  return [...endpoints].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([endpoint, pod]) => [
    endpoint,
    pod || '-',
    ...modes.map((r) => {
      const e = r.endpoints.find((x) => x.endpoint === endpoint);
      if (e === undefined) return '-';
      return e.requests === null ? String(e.connections) : `${e.connections}/${e.requests}`;
    }),
  ]);
}
