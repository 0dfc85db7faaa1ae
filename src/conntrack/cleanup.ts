/**
 * kube-proxy's stale-UDP conntrack cleanup (CleanStaleEntries in pkg/proxy/conntrack/
 * cleanup.go, 1.31 and later), run after a sync in which a Service with a UDP port changed its
 * endpoints: every UDP entry whose original destination is a UDP service's IP (ClusterIP,
 * external IP, load-balancer IP) or NodePort, and whose reply source (its DNAT target) is not a
 * serving endpoint of that service, is deleted. The flow's next packet then goes through the
 * rules again and reaches a live endpoint, instead of the removed one.
 *
 * Traffic policies, topology and the terminating state are not looked at (a change to the
 * Service must not break existing flows); TCP entries are never touched (a TCP connection to a
 * gone endpoint breaks on its own).
 */
import type { ProxierState } from '../tracker/types.js';
import { splitHostPort } from '../util/ip.js';
import type { ConntrackTable } from './table.js';

export interface CleanupResult {
  readonly deleted: number;
}

export function cleanStaleEntries(table: ConntrackTable, state: ProxierState): CleanupResult {
  // Service IPs and node ports of UDP services → the IPs of their serving endpoints.
  const byServiceIP = new Map<string, Set<string>>();
  const byNodePort = new Map<number, Set<string>>();
  for (const sp of state.servicePorts) {
    if (sp.info.protocol !== 'UDP') continue;
    const serving = new Set(sp.endpoints.filter((ep) => ep.serving).map((ep) => ep.ip));
    for (const ip of [sp.info.clusterIP, ...sp.info.loadBalancerVIPs, ...sp.info.externalIPs]) byServiceIP.set(ip, serving);
    if (sp.info.nodePort !== 0) byNodePort.set(sp.info.nodePort, serving);
  }
  const deleted = table.deleteWhere((entry) => {
    if (entry.flow.protocol !== 'udp') return false;
    const dst = splitHostPort(entry.flow.dst);
    if (dst === undefined) return false;
    // The reply comes from the DNAT target; without one, from the address the client sent to.
    const replySource = entry.dnat !== undefined ? splitHostPort(entry.dnat)?.ip : dst.ip;
    const byIP = byServiceIP.get(dst.ip);
    if (byIP !== undefined && (replySource === undefined || !byIP.has(replySource))) return true;
    const byPort = byNodePort.get(dst.port);
    return byPort !== undefined && (replySource === undefined || !byPort.has(replySource));
  });
  return { deleted };
}
