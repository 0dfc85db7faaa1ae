/**
 * What every kube-proxy proxier decides about a service port from its categorised endpoints
 * before it writes anything (the same block opens syncProxyRules' per-service loop in the
 * iptables and the nftables proxier): which policy's endpoints internal (ClusterIP) and
 * external (node port, external IP, load-balancer IP) traffic uses, and whether there are any.
 */
import type { CategorizedEndpoints, ServicePortInfo } from '../model/proxy-info.js';

export interface PolicyFacts {
  /** Some usable endpoint exists anywhere in the cluster. */
  readonly hasEndpoints: boolean;
  readonly hasLocalEndpoints: boolean;
  /** Cluster policy's endpoints are written (a service- / KUBE-SVC- chain). */
  readonly usesClusterPolicy: boolean;
  /** Local policy's endpoints are written (a local- / KUBE-SVL- chain). */
  readonly usesLocalPolicy: boolean;
  /** ClusterIP traffic goes to the Local policy's endpoints (internalTrafficPolicy Local). */
  readonly internalPolicyLocal: boolean;
  /** ClusterIP traffic has somewhere to go; false when iTP=Local finds no local endpoint. */
  readonly hasInternalEndpoints: boolean;
  readonly externalPolicyLocal: boolean;
  /** External traffic has somewhere to go; false when eTP=Local finds no local endpoint. */
  readonly hasExternalEndpoints: boolean;
  /**
   * The external chain is written: based on hasEndpoints, not hasExternalEndpoints, because the
   * short-circuit rules for pod and node traffic are needed even with no local endpoint.
   */
  readonly usesExternalTrafficChain: boolean;
}

/** The facts of a service port and its categorised endpoints (the tracker's ProxierServicePort is one). */
export function policyFacts(sp: { readonly info: ServicePortInfo; readonly categorized: CategorizedEndpoints }): PolicyFacts {
  const svc = sp.info;
  const { clusterEndpoints, localEndpoints, hasAnyEndpoints: hasEndpoints } = sp.categorized;
  const hasLocalEndpoints = (localEndpoints?.length ?? 0) > 0;
  return {
    hasEndpoints,
    hasLocalEndpoints,
    usesClusterPolicy: (clusterEndpoints?.length ?? 0) > 0 && svc.usesClusterEndpoints,
    usesLocalPolicy: hasLocalEndpoints && svc.usesLocalEndpoints,
    internalPolicyLocal: svc.internalPolicyLocal,
    hasInternalEndpoints: hasEndpoints && (!svc.internalPolicyLocal || hasLocalEndpoints),
    externalPolicyLocal: svc.externalPolicyLocal,
    hasExternalEndpoints: hasEndpoints && (!svc.externalPolicyLocal || hasLocalEndpoints),
    usesExternalTrafficChain: hasEndpoints && svc.externallyAccessible,
  };
}
