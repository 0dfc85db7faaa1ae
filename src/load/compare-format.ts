/** `kpsim compare`'s human-readable report: real bytes first, then spread and decision cost. */
import type { CompareReport, CompareRow } from './compare-report.js';
import type { Spread } from './spread.js';
import { formatTable, millis, pValue, rate, signedMillis } from './table.js';

export function formatCompareReport(report: CompareReport): string {
  const { target, settings } = report;
  const measured = report.rows.filter((r) => r.measured);
  const lines = [
    `kpsim compare: ${target.service} via ${target.via} ${target.address}`,
    `  ${settings.connections} connections, ${settings.durationSeconds} s per measured row, ${settings.keepAlive ? 'keep-alive' : 'no keep-alive'}; ${settings.loadGenerator}`,
    `  direct = straight to ${report.baseline.endpoint} (${report.baseline.pod || 'no pod name'}) at ${report.baseline.listener}`,
    '',
    'Real bytes over loopback:',
    formatTable(
      [
        { header: 'mode' }, { header: 'req/s', align: 'right' }, { header: 'vs direct', align: 'right' },
        { header: 'p50 ms', align: 'right' }, { header: 'p99 ms', align: 'right' },
        { header: 'added p50', align: 'right' }, { header: 'added p99', align: 'right' }, { header: 'errors', align: 'right' },
      ],
      measured.map((r) => [
        r.label,
        r.requestsPerSecond === null ? '-' : rate(r.requestsPerSecond),
        r.relativeToDirect === null ? '-' : `${r.relativeToDirect.toFixed(2)}x`,
        r.latency ? millis(r.latency.p50Ms) : '-',
        r.latency ? millis(r.latency.p99Ms) : '-',
        r.mode === 'direct' || !r.addedLatencyMs ? '-' : signedMillis(r.addedLatencyMs.p50),
        r.mode === 'direct' || !r.addedLatencyMs ? '-' : signedMillis(r.addedLatencyMs.p99),
        r.errors ? String(r.errors.total) : '-',
      ]),
      '  ',
    ),
    '',
    `How new connections spread over the endpoints (simulated rows: ${report.stream.description}):`,
    formatTable(
      [
        { header: 'mode' }, { header: 'kind' }, { header: 'connections per endpoint' },
        { header: 'max/mean', align: 'right' }, { header: 'chi-square p', align: 'right' },
        { header: 'requests max/mean', align: 'right' }, { header: 'refused', align: 'right' },
        { header: 'rules/lookup', align: 'right' }, { header: 'decisions/s', align: 'right' },
      ],
      report.rows.filter((r) => r.mode !== 'direct').map((r) => spreadCells(r)),
      '  ',
    ),
  ];
  if (report.notes.length > 0) lines.push('', ...report.notes.map((n) => `note: ${n}`));
  return lines.join('\n') + '\n';
}

function spreadCells(r: CompareRow): string[] {
  const conn: Spread | null = r.connectionSpread;
  return [
    r.label,
    r.measured ? 'measured' : 'simulated',
    r.endpoints.map((e) => String(e.connections)).join(' / ') || '-',
    conn && conn.total > 0 ? conn.maxOverMean.toFixed(2) : '-',
    conn ? pValue(conn.pValue) : '-',
    r.requestSpread && r.requestSpread.total > 0 ? r.requestSpread.maxOverMean.toFixed(2) : '-',
    r.refusedConnections === null ? '-' : String(r.refusedConnections),
    r.decision?.rulesPerLookup != null ? r.decision.rulesPerLookup.toFixed(1) : '-',
    r.decision ? rate(r.decision.decisionsPerSecond) : '-',
  ];
}
