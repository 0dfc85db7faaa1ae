/**
 * What kube-proxy's setupNFTables writes in every full sync, whatever the services: the base
 * chains on the netfilter hooks and their jumps, the fixed chains and rules, and the sets and
 * maps that the per-service elements go into. Layout of kube-proxy's current release line
 * (kubernetes/kubernetes#132456): filtering before DNAT only for the firewall, the endpoint
 * checks at filter priority on input, forward and output.
 */
import {
  CLUSTER_IPS_CHECK_CHAIN,
  CLUSTER_IPS_SET,
  FILTER_FORWARD,
  FILTER_INPUT,
  FILTER_OUTPUT,
  FILTER_OUTPUT_PRE_DNAT,
  FILTER_PREROUTING_PRE_DNAT,
  FIREWALL_CHECK_CHAIN,
  FIREWALL_IPS_MAP,
  MARK_MASQ_CHAIN,
  MASQUERADING_CHAIN,
  NAT_OUTPUT,
  NAT_POSTROUTING,
  NAT_PREROUTING,
  NODEPORT_ENDPOINTS_CHECK_CHAIN,
  NODEPORT_IPS_SET,
  NO_ENDPOINT_NODEPORTS_MAP,
  NO_ENDPOINT_SERVICES_MAP,
  REJECT_CHAIN,
  SERVICE_ENDPOINTS_CHECK_CHAIN,
  SERVICE_IPS_MAP,
  SERVICE_NODEPORTS_MAP,
  SERVICES_CHAIN,
} from './names.js';
import { addElement, addRule, ensureChain, ensureSet } from './table-builder.js';
import type { NftSyncContext } from './sync-context.js';
import type { NftBaseChain } from './types.js';

/** knftables' numeric priorities: dstnat -100, filter 0, srcnat 100. */
const DSTNAT = -100;
const FILTER = 0;
const SRCNAT = 100;

/** kube-proxy's nftablesBaseChains: name, type, hook, priority. */
export const BASE_CHAINS: readonly { readonly name: string; readonly base: NftBaseChain }[] = [
  // Before DNAT: loadBalancerSourceRanges must see the original destination.
  { name: FILTER_PREROUTING_PRE_DNAT, base: { type: 'filter', hook: 'prerouting', priority: DSTNAT - 10 } },
  { name: FILTER_OUTPUT_PRE_DNAT, base: { type: 'filter', hook: 'output', priority: DSTNAT - 10 } },
  // After DNAT, so that short-circuited traffic (pods or the node to an eTP=Local external IP
  // with no local endpoint) has already gone to an endpoint and is not dropped.
  { name: FILTER_INPUT, base: { type: 'filter', hook: 'input', priority: FILTER } },
  { name: FILTER_FORWARD, base: { type: 'filter', hook: 'forward', priority: FILTER } },
  { name: FILTER_OUTPUT, base: { type: 'filter', hook: 'output', priority: FILTER } },
  { name: NAT_PREROUTING, base: { type: 'nat', hook: 'prerouting', priority: DSTNAT } },
  { name: NAT_OUTPUT, base: { type: 'nat', hook: 'output', priority: DSTNAT } },
  { name: NAT_POSTROUTING, base: { type: 'nat', hook: 'postrouting', priority: SRCNAT } },
];

/**
 * kube-proxy's nftablesJumpChains, in its order: which regular chain each base chain jumps to.
 * The endpoint checks are not in prerouting: `reject` is only allowed in input, forward and
 * output before kernel 5.9.
 */
export const JUMP_CHAINS: readonly { readonly dst: string; readonly src: string; readonly extra: string }[] = [
  { dst: NODEPORT_ENDPOINTS_CHECK_CHAIN, src: FILTER_INPUT, extra: 'ct state new ' },
  { dst: SERVICE_ENDPOINTS_CHECK_CHAIN, src: FILTER_INPUT, extra: 'ct state new ' },
  { dst: SERVICE_ENDPOINTS_CHECK_CHAIN, src: FILTER_FORWARD, extra: 'ct state new ' },
  { dst: SERVICE_ENDPOINTS_CHECK_CHAIN, src: FILTER_OUTPUT, extra: 'ct state new ' },
  { dst: FIREWALL_CHECK_CHAIN, src: FILTER_PREROUTING_PRE_DNAT, extra: 'ct state new ' },
  { dst: FIREWALL_CHECK_CHAIN, src: FILTER_OUTPUT_PRE_DNAT, extra: 'ct state new ' },
  { dst: SERVICES_CHAIN, src: NAT_OUTPUT, extra: '' },
  { dst: SERVICES_CHAIN, src: NAT_PREROUTING, extra: '' },
  { dst: MASQUERADING_CHAIN, src: NAT_POSTROUTING, extra: '' },
  { dst: CLUSTER_IPS_CHECK_CHAIN, src: FILTER_FORWARD, extra: 'ct state new ' },
  { dst: CLUSTER_IPS_CHECK_CHAIN, src: FILTER_OUTPUT, extra: 'ct state new ' },
];

export function writeFixedRules(ctx: NftSyncContext): void {
  const { table, ipX, addrType } = ctx;
  for (const { name, base } of BASE_CHAINS) ensureChain(table, name, { base });
  for (const { dst, src, extra } of JUMP_CHAINS) {
    ensureChain(table, dst);
    addRule(ensureChain(table, src), `${extra}jump ${dst}`);
  }
  for (const name of [SERVICES_CHAIN, CLUSTER_IPS_CHECK_CHAIN, MASQUERADING_CHAIN, MARK_MASQ_CHAIN]) ensureChain(table, name);

  const mark = ctx.masqueradeMark;
  addRule(ensureChain(table, MARK_MASQ_CHAIN), `mark set mark or ${mark}`);
  const masquerading = ensureChain(table, MASQUERADING_CHAIN);
  // Unmarked packets leave untouched; the mark is cleared so that a packet that goes through
  // the stack again (a VXLAN tunnel reuses the skb) is not masqueraded twice.
  addRule(masquerading, `mark and ${mark} == 0 return`);
  addRule(masquerading, `mark set mark xor ${mark}`);
  addRule(masquerading, 'masquerade fully-random');

  ensureSet(table, { kind: 'set', name: CLUSTER_IPS_SET, type: addrType, comment: 'Active ClusterIPs' });
  const clusterIPsCheck = ensureChain(table, CLUSTER_IPS_CHECK_CHAIN);
  addRule(clusterIPsCheck, `${ipX} daddr @${CLUSTER_IPS_SET} reject`, 'Reject traffic to invalid ports of ClusterIPs');
  if (ctx.serviceCIDRs !== '') {
    addRule(clusterIPsCheck, `${ipX} daddr { ${ctx.serviceCIDRs} } drop`, 'Drop traffic to unallocated ClusterIPs');
  }

  // With node ports on every local address the set is deleted and `fib daddr type local` used.
  const matchAll = ctx.nodePortAddresses.matchAll;
  if (!matchAll) {
    const nodePortIPs = ensureSet(table, { kind: 'set', name: NODEPORT_IPS_SET, type: addrType, comment: 'IPs that accept NodePort traffic' });
    for (const ip of ctx.nodePortIPs) addElement(nodePortIPs, { key: [ip] });
  }

  ensureSet(table, {
    kind: 'map', name: NO_ENDPOINT_SERVICES_MAP, type: `${addrType} . inet_proto . inet_service : verdict`,
    comment: 'vmap to drop or reject packets to services with no endpoints',
  });
  ensureSet(table, {
    kind: 'map', name: NO_ENDPOINT_NODEPORTS_MAP, type: 'inet_proto . inet_service : verdict',
    comment: 'vmap to drop or reject packets to service nodeports with no endpoints',
  });
  addRule(ensureChain(table, REJECT_CHAIN, { comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports' }), 'reject');
  addRule(ensureChain(table, SERVICE_ENDPOINTS_CHECK_CHAIN), `${ipX} daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_SERVICES_MAP}`);
  addRule(
    ensureChain(table, NODEPORT_ENDPOINTS_CHECK_CHAIN),
    matchAll
      ? `${ctx.noLocalhost} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`
      : `${ipX} daddr @${NODEPORT_IPS_SET} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS_MAP}`,
  );

  ensureSet(table, {
    kind: 'map', name: FIREWALL_IPS_MAP, type: `${addrType} . inet_proto . inet_service : verdict`,
    comment: 'destinations that are subject to LoadBalancerSourceRanges',
  });
  addRule(ensureChain(table, FIREWALL_CHECK_CHAIN), `${ipX} daddr . meta l4proto . th dport vmap @${FIREWALL_IPS_MAP}`);

  ensureSet(table, {
    kind: 'map', name: SERVICE_IPS_MAP, type: `${addrType} . inet_proto . inet_service : verdict`,
    comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic',
  });
  ensureSet(table, { kind: 'map', name: SERVICE_NODEPORTS_MAP, type: 'inet_proto . inet_service : verdict', comment: 'NodePort traffic' });
  const services = ensureChain(table, SERVICES_CHAIN);
  addRule(services, `${ipX} daddr . meta l4proto . th dport vmap @${SERVICE_IPS_MAP}`);
  addRule(
    services,
    matchAll
      ? `fib daddr type local ${ctx.noLocalhost} meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`
      : `${ipX} daddr @${NODEPORT_IPS_SET} meta l4proto . th dport vmap @${SERVICE_NODEPORTS_MAP}`,
  );
}
