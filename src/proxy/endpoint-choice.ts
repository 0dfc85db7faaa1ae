/**
 * Which endpoints a proxy listener may send a new connection to, decided as kube-proxy's
 * iptables and IPVS proxiers decide it (syncProxyRules: hasEndpoints, hasInternalEndpoints,
 * hasExternalEndpoints), from endpoints already categorised by topology/categorize.ts:
 *
 *   - the service port has no usable endpoint anywhere      -> REJECT (the client gets an RST)
 *   - ClusterIP traffic: internalTrafficPolicy Local        -> localEndpoints, none -> DROP
 *                        otherwise                          -> clusterEndpoints
 *   - NodePort, externalIP, LB traffic: eTP Local           -> localEndpoints, none -> DROP
 *                                       otherwise           -> clusterEndpoints
 *
 * Readiness is already settled by the categorisation (ready endpoints, or serving-terminating
 * ones when no ready one is left). Every client of the userspace proxy stands for traffic from
 * outside the node: kube-proxy would send pod and node-local sources of external traffic to the
 * cluster endpoints, but on loopback there is no way to tell them apart.
 */
import type { EndpointInfo, ProxierServicePort } from '../tracker/types.js';
import type { VirtualKind } from './address-map.js';

export type ListenerVerdict =
  | { readonly action: 'forward'; readonly endpoints: readonly EndpointInfo[] }
  /** kube-proxy's REJECT: the proxy answers the connection with a reset. */
  | { readonly action: 'reject'; readonly reason: string }
  /** kube-proxy's DROP: the proxy closes the connection at once without reaching a backend. */
  | { readonly action: 'drop'; readonly reason: string };

export function chooseEndpoints(sp: ProxierServicePort, kind: VirtualKind): ListenerVerdict {
  const { info, categorized } = sp;
  if (!categorized.hasAnyEndpoints) return { action: 'reject', reason: `${info.spn} has no endpoints` };
  const external = kind !== 'ClusterIP';
  const policyLocal = external ? info.externalPolicyLocal : info.internalPolicyLocal;
  const endpoints = (policyLocal ? categorized.localEndpoints : categorized.clusterEndpoints) ?? [];
  if (endpoints.length > 0) return { action: 'forward', endpoints };
  const reason = policyLocal
    ? `${info.spn} has no local endpoints (${external ? 'externalTrafficPolicy' : 'internalTrafficPolicy'} Local)`
    : `${info.spn} has no endpoints for Cluster traffic policy`;
  return { action: 'drop', reason };
}
