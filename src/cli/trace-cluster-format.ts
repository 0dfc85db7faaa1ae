/**
 * `kpsim trace --cluster` for people: the client, one line per entry node (its share, its health
 * check answer, its verdict), the verdict over all of them, then the deliveries as a table.
 *
 *   client 203.0.113.9 (outside the cluster) -> 198.18.0.10:80/tcp, iptables mode
 *   externalTrafficPolicy Local: the load balancer sends to the 2 of 5000 nodes whose ...
 *   entry nodes:
 *     node-0003  share 0.5  health check 200 (1 local endpoint)  DNAT to 1 endpoint
 *   verdict: DNAT
 *   deliveries:
 *     ENTRY NODE  ENDPOINT  NODE  CROSS NODE  SOURCE SEEN BY POD  P  REPLY
 */
import type { ClusterTraceResult, Delivery, EntryNode } from '../cluster/cluster-trace.js';
import { formatTable } from '../load/table.js';
import type { RulesMode } from '../node/mode-driver.js';

const CLIENT_KINDS: Readonly<Record<ClusterTraceResult['client']['kind'], string>> = {
  outside: 'outside the cluster',
  pod: 'a pod',
  node: 'a node',
};

export function formatClusterTrace(result: ClusterTraceResult, mode: RulesMode): string {
  const lines: string[] = [];
  const c = result.client;
  lines.push(`client ${c.address} (${CLIENT_KINDS[c.kind]}${c.node !== undefined ? ` on ${c.node}` : ''}), ${mode} mode`);
  for (const note of result.notes) lines.push(note);
  lines.push(`entry nodes (${result.nodes.length}):`);
  const width = Math.max(...result.nodes.map((n) => n.node.length));
  // The notes say why for many entry nodes; a single one says it on its line.
  for (const n of result.nodes) lines.push(`  ${n.node.padEnd(width)}  ${entryLine(n, result.nodes.length === 1)}`);
  lines.push(`verdict: ${result.verdict}`);
  if (result.outcomes) {
    lines.push(`outcomes: ${Object.entries(result.outcomes).map(([verdict, p]) => `${verdict} ${probability(p ?? 0)}`).join(', ')}`);
  }
  lines.push(`masquerade: ${result.masquerade ? 'yes' : 'no'}`);
  if (result.deliveries.length === 0) {
    lines.push('deliveries: none');
  } else {
    lines.push('deliveries:');
    lines.push(formatTable(
      [
        { header: 'ENTRY NODE' },
        { header: 'ENDPOINT' },
        { header: 'NODE' },
        { header: 'CROSS NODE' },
        { header: 'SOURCE SEEN BY POD' },
        { header: 'P', align: 'right' },
        { header: 'REPLY' },
      ],
      result.deliveries.map((d) => [d.entryNode, d.endpoint, d.node ?? '?', d.crossNode ? 'yes' : 'no', d.sourceSeenByPod, probability(d.probability), replyText(d)]),
      '  ',
    ));
  }
  return `${lines.join('\n')}\n`;
}

function entryLine(n: EntryNode, withReason: boolean): string {
  const parts = [`share ${probability(n.share)}`];
  if (n.healthCheck) {
    const local = n.healthCheck.localEndpoints;
    parts.push(`health check ${n.healthCheck.status} (${local} local endpoint${local === 1 ? '' : 's'})`);
  }
  const t = n.trace;
  let verdict = t.verdict === 'DNAT' ? `DNAT to ${t.endpoints.length} endpoint${t.endpoints.length === 1 ? '' : 's'}` : t.verdict;
  if (t.outcomes) verdict += ` (${Object.entries(t.outcomes).map(([v, p]) => `${v} ${probability(p ?? 0)}`).join(', ')})`;
  parts.push(verdict);
  if (t.masquerade) parts.push('masquerade');
  if (withReason) parts.push(`(${n.reason})`);
  return parts.join('  ');
}

function replyText(d: Delivery): string {
  const r = d.reply;
  const path = r.nodes.join(' -> ');
  if (r.throughEntryConntrack) return `${path}: ${d.entryNode}'s conntrack restores ${r.sourceSeenByClient}`;
  return `${path}, straight to the client: it sees ${r.sourceSeenByClient}${r.reachesClient ? '' : ' and drops it'}`;
}

/** The human trace's rounding: 10 significant digits. */
function probability(p: number): string {
  return Number(p.toPrecision(10)).toString();
}
