/** `kpsim load`'s human-readable report (pure: the report in, text out). */
import type { ErrorCounts } from './error-kinds.js';
import type { LoadReport } from './report.js';
import type { DatagramCounts, StatusClassCounts } from './types.js';
import type { Spread } from './spread.js';
import { formatTable, millis, percent, pValue, rate } from './table.js';

export function formatLoadReport(report: LoadReport): string {
  const { target, settings, requests, latency } = report;
  const udp = report.datagrams !== undefined;
  const limits = [
    ...(settings.rate !== undefined ? [`${rate(settings.rate)} req/s`] : []),
    ...(settings.requests !== undefined ? [`at most ${settings.requests} requests`] : []),
  ];
  const shape = udp
    ? `${settings.connections} client sockets, ${settings.durationSeconds} s, ${limits.join(', ')}`
    : `${settings.connections} connections, ${settings.durationSeconds} s, ${settings.keepAlive ? 'keep-alive' : 'no keep-alive'}, pipelining ${settings.pipelining}${limits.length > 0 ? `, ${limits.join(', ')}` : ''}`;
  const lines = [
    `kpsim load: ${target.service} via ${target.via} ${target.address}${udp ? '/UDP' : ''} (${report.mode === 'userspace' ? `proxy listener ${target.listener}` : `from a kernel lab's client namespace to ${target.listener}`})`,
    `  mode ${report.mode}, scheduler ${report.scheduler}; ${shape}; ${settings.loadGenerator}`,
    '',
    `requests  ${requests.total} in ${report.elapsedSeconds.toFixed(1)} s = ${rate(requests.perSecond)} req/s` +
      `  (${report.datagrams !== undefined ? datagramSummary(report.datagrams) : statusSummary(requests.statusClasses)})`,
    `latency   p50 ${millis(latency.p50Ms)} ms  p90 ${millis(latency.p90Ms)} ms  p99 ${millis(latency.p99Ms)} ms  max ${millis(latency.maxMs)} ms`,
    `errors    ${errorSummary(report.errors)}`,
    '',
    report.endpoints.length === 0 ? 'endpoints: none the listener can pick' : formatTable(
      [
        { header: 'endpoint' }, { header: 'pod' },
        { header: 'requests', align: 'right' }, { header: 'share', align: 'right' },
        { header: udp ? 'associations' : 'connections', align: 'right' }, { header: 'share', align: 'right' },
      ],
      report.endpoints.map((e) => [e.endpoint, e.pod || '-', String(e.requests), percent(e.requestShare), String(e.connections), percent(e.connectionShare)]),
    ),
  ];
  if (report.unattributedRequests > 0) lines.push(`(${report.unattributedRequests} responses named no endpoint)`);
  lines.push(
    '',
    `spread    requests ${spreadSummary(report.spread.requests)}; ${udp ? 'associations' : 'connections'} ${spreadSummary(report.spread.connections)}`,
  );
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}

/** "1000 sent, 998 answered, 2 lost (0.2%, 1 of them late)" */
function datagramSummary(d: DatagramCounts): string {
  const lostShare = d.sent > 0 ? ` (${percent(d.lost / d.sent)}${d.late > 0 ? `, ${d.late} of them answered late` : ''})` : '';
  return `datagrams: ${d.sent} sent, ${d.answered} answered, ${d.lost} lost${lostShare}`;
}

function statusSummary(classes: StatusClassCounts): string {
  const parts = Object.entries(classes).filter(([, n]) => n > 0).map(([cls, n]) => `${cls} ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'no responses';
}

export function errorSummary(errors: ErrorCounts): string {
  const parts = `non-2xx ${errors.non2xx}, timeouts ${errors.timeouts}, resets ${errors.resets}, refused ${errors.refused}, other ${errors.other}`;
  return errors.total === 0 ? `none (${parts})` : `${errors.total} (${parts})`;
}

/** "max/mean 1.02, chi-square p 0.87" */
export function spreadSummary(spread: Spread): string {
  if (spread.total === 0) return 'none counted';
  return `max/mean ${spread.maxOverMean.toFixed(2)}, chi-square p ${pValue(spread.pValue)}`;
}
