/**
 * The kube-proxy feature gates that change what it writes (pkg/features/kube_features.go), read
 * from the KubeProxyConfiguration's featureGates with kube-proxy's defaults, and the checks every
 * proxy mode makes with them. Modes ask here rather than reading featureGates themselves, so a
 * gate means the same in iptables, IPVS and nftables mode.
 */
import type { LoadBalancerIngress, ProxyConfig } from './types.js';

/** The gates kpsim honours, with their defaults in the kube-proxy releases kpsim follows. */
export const FEATURE_GATE_DEFAULTS = {
  /** status.loadBalancer.ingress[].ipMode (KEP-1860): beta and on since 1.30, GA and locked on since 1.32. */
  LoadBalancerIPMode: true,
  /** Node hints for trafficDistribution PreferSameNode (KEP-3015). */
  PreferSameTrafficDistribution: true,
} as const;

export type FeatureGate = keyof typeof FEATURE_GATE_DEFAULTS;

/** The gate as the configuration sets it, else its default. */
export function featureGateEnabled(config: Pick<ProxyConfig, 'featureGates'>, gate: FeatureGate): boolean {
  return config.featureGates[gate] ?? FEATURE_GATE_DEFAULTS[gate];
}

/**
 * proxyutil.IsVIPMode: whether kube-proxy programs a load-balancer ingress IP on the node. With
 * LoadBalancerIPMode on, an ingress with `ipMode: Proxy` is left to the load balancer (which
 * proxies the traffic itself and sends it to node ports); with the gate off every ingress IP is
 * programmed, as before the feature existed. A missing ipMode means VIP.
 */
export function isVIPMode(ingress: Pick<LoadBalancerIngress, 'ipMode'>, config: Pick<ProxyConfig, 'featureGates'>): boolean {
  if (!featureGateEnabled(config, 'LoadBalancerIPMode')) return true;
  return ingress.ipMode === undefined || ingress.ipMode === 'VIP';
}
