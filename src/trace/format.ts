/**
 * A trace for people: the rules the packet matched as an indented chain walk, then the verdict,
 * the endpoints with their chances and whether each is masqueraded.
 *
 *   nat PREROUTING: -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES  (assumed)
 *     nat KUBE-SERVICES: -A KUBE-SERVICES -d 172.30.0.41/32 -p tcp ... -j KUBE-SVC-XPGD46QRK7WJZT7O
 *       nat KUBE-SVC-XPGD46QRK7WJZT7O: ... -j KUBE-SEP-SXIVWICOYRO3J4NJ  [p=0.5]
 *   verdict: DNAT
 *   endpoints:
 *     10.180.0.1:80  p=0.5  masquerade
 */
import { PLAIN_STYLE, type TextStyle } from './text-style.js';
import type { Hop, TraceResult } from './types.js';

export function formatTrace(result: TraceResult): string {
  const lines: string[] = [];
  if (result.origin) {
    lines.push(result.origin === 'OUTPUT' ? 'from the node (nat OUTPUT)' : 'arriving at the node (nat PREROUTING)');
  }
  lines.push(...formatHops(result.hops, true));
  lines.push(`verdict: ${result.verdict}`);
  if (result.outcomes) {
    const parts = Object.entries(result.outcomes).map(([verdict, p]) => `${verdict} ${formatProbability(p ?? 0)}`);
    lines.push(`outcomes: ${parts.join(', ')}`);
  }
  if (result.endpoints.length > 0) {
    lines.push('endpoints:');
    const width = Math.max(...result.endpoints.map((e) => e.length));
    for (const endpoint of result.endpoints) {
      const p = result.probabilities[endpoint];
      const chance = p === undefined ? '' : `  p=${formatProbability(p)}`;
      const masq = result.masqueradeByEndpoint[endpoint] ? '  masquerade' : '';
      lines.push(`  ${endpoint.padEnd(width)}${chance}${masq}`);
    }
  }
  lines.push(`masquerade: ${result.masquerade ? 'yes' : 'no'}`);
  if (result.kubeProxyTest) {
    lines.push(`kube-proxy test output: ${JSON.stringify(result.kubeProxyTest.output)}, masq: ${result.kubeProxyTest.masq}`);
  }
  if (result.sample) {
    const s = result.sample;
    lines.push(`sample: ${s.verdict}${s.endpoint ? ` ${s.endpoint}` : ''}${s.masquerade ? ', masquerade' : ''}`);
    lines.push(...formatHops(s.hops, false).map((l) => `  ${l}`));
  }
  return lines.join('\n') + '\n';
}

function formatHops(hops: readonly Hop[], withProbability: boolean): string[] {
  return hops.map((hop) => formatHop(hop, withProbability));
}

/** One hop: indented by its depth, where it is, the rule, then its chance and remarks. */
export function formatHop(hop: Hop, withProbability: boolean, style: TextStyle = PLAIN_STYLE): string {
  const indent = '  '.repeat(hop.depth ?? 0);
  const where = hop.table === '' ? '' : `${style.location(`${hop.table} ${hop.chain}:`)} `;
  const marks: string[] = [];
  if (withProbability && hop.probability !== undefined && hop.probability < 1) marks.push(`[p=${formatProbability(hop.probability)}]`);
  if (hop.assumed) marks.push('(assumed)');
  if (hop.notes && hop.notes.length > 0) marks.push(`(${hop.notes.join('; ')})`);
  return `${indent}${where}${hop.rule}${marks.length > 0 ? `  ${style.faint(marks.join(' '))}` : ''}`;
}

/** Enough digits to tell the kernel's 1/3 (0.3333333335) from 1/3. */
export function formatProbability(p: number): string {
  return Number(p.toPrecision(10)).toString();
}
