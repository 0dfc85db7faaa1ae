/**
 * One service port, as kube-proxy's nftables syncProxyRules writes it: first the named facts
 * (hasEndpoints, hasInternalEndpoints, usesFWChain, ...), then the elements that send each of
 * its destinations somewhere (service-ips, service-nodeports, firewall-ips, or the
 * no-endpoint maps), then its chains: service- / local- (endpoint selection), external-,
 * firewall-, one endpoint- chain per reachable endpoint, and an affinity- set per endpoint
 * with ClientIP affinity. A port without endpoints gets elements only (and its firewall chain).
 */
import { protocolWord } from '../iptables/names.js';
import { sameEndpoints } from '../topology/categorize.js';
import { policyFacts } from '../topology/policy-facts.js';
import { KeptPerServicePort } from '../tracker/kept-per-port.js';
import type { EndpointInfo, ProxierServicePort, ServicePortInfo } from '../tracker/types.js';
import { cidrContains, parseCIDR } from '../util/ip.js';
import {
  CLUSTER_IPS_SET,
  FIREWALL_IPS_MAP,
  MARK_MASQ_CHAIN,
  NO_ENDPOINT_NODEPORTS_MAP,
  NO_ENDPOINT_SERVICES_MAP,
  REJECT_CHAIN,
  SERVICE_IPS_MAP,
  SERVICE_NODEPORTS_MAP,
  EXTERNAL_PREFIX,
  FIREWALL_PREFIX,
  LOCAL_POLICY_PREFIX,
  affinitySetOf,
  clusterPolicyChainOf,
  endpointNames,
  siblingChainName,
} from './names.js';
import { appendChains } from './chain-map.js';
import { EndpointChain } from './endpoint-chain.js';
import type { NftSyncContext } from './sync-context.js';
import { addElement, addRule, ensureSet, setOf } from './table-builder.js';
import { NumgenVmapRule, type VmapTarget } from './vmap-rule.js';
import type { NftChain, NftSet } from './types.js';

/** The maps and sets every service port writes into, looked up once per sync. */
export interface ServiceMaps {
  readonly clusterIPs: NftSet;
  readonly serviceIPs: NftSet;
  readonly serviceNodePorts: NftSet;
  readonly noEndpointServices: NftSet;
  readonly noEndpointNodePorts: NftSet;
  readonly firewallIPs: NftSet;
}

export function serviceMapsOf(ctx: NftSyncContext): ServiceMaps {
  return {
    clusterIPs: setOf(ctx.table, CLUSTER_IPS_SET),
    serviceIPs: setOf(ctx.table, SERVICE_IPS_MAP),
    serviceNodePorts: setOf(ctx.table, SERVICE_NODEPORTS_MAP),
    noEndpointServices: setOf(ctx.table, NO_ENDPOINT_SERVICES_MAP),
    noEndpointNodePorts: setOf(ctx.table, NO_ENDPOINT_NODEPORTS_MAP),
    firewallIPs: setOf(ctx.table, FIREWALL_IPS_MAP),
  };
}

/** ServicePortFacts' flags, as bits of one number. */
const USES_CLUSTER_POLICY = 1;
const USES_LOCAL_POLICY = 2;
const HAS_ENDPOINTS = 4;
const HAS_INTERNAL_ENDPOINTS = 8;
const HAS_EXTERNAL_ENDPOINTS = 16;
const USES_EXTERNAL_TRAFFIC_CHAIN = 32;
const USES_FW_CHAIN = 64;
const INTERNAL_POLICY_LOCAL = 128;
const EXTERNAL_POLICY_LOCAL = 256;

/** A no-endpoint element's verdict, as its value: the same array for every element. */
const REJECT_VALUE: readonly string[] = [`goto ${REJECT_CHAIN}`];
const DROP_VALUE: readonly string[] = ['drop'];

/**
 * What kube-proxy decides about a service port before writing anything for it.
 *
 * Kept for every port of a cluster (12k at 5,000 nodes), so it is small: its flags are bits of
 * one number, and of the port's four chain names only the service- chain's (which almost every
 * port writes, and its elements name) is made at once; the local-, external- and firewall-
 * chains' are made when first read (a few hundred ports write them), from the service- chain's
 * name (they share its hashed part). The element values that send to the port's chains are
 * made once and shared by every element that sends there.
 */
class ServicePortFacts {
  readonly protocol: string;
  readonly port: string;
  /** service-: the endpoints for Cluster traffic policy. */
  readonly clusterPolicyChain: string;
  readonly #flags: number;
  #localPolicyChain: string | undefined;
  #externalChain: string | undefined;
  #firewallChain: string | undefined;
  #internalValue: readonly string[] | undefined;
  #externalValue: readonly string[] | undefined;

  constructor(protocol: string, port: string, clusterPolicyChain: string, flags: number) {
    this.protocol = protocol;
    this.port = port;
    this.clusterPolicyChain = clusterPolicyChain;
    this.#flags = flags;
    this.#localPolicyChain = undefined;
    this.#externalChain = undefined;
    this.#firewallChain = undefined;
    this.#internalValue = undefined;
    this.#externalValue = undefined;
  }

  /** local-: the endpoints for Local traffic policy. */
  get localPolicyChain(): string {
    return (this.#localPolicyChain ??= siblingChainName(LOCAL_POLICY_PREFIX, this.clusterPolicyChain));
  }

  /** external-: every external destination (node port, external IP, LB IP) goes here. */
  get externalChain(): string {
    return (this.#externalChain ??= siblingChainName(EXTERNAL_PREFIX, this.clusterPolicyChain));
  }

  /** firewall-: loadBalancerSourceRanges. */
  get firewallChain(): string {
    return (this.#firewallChain ??= siblingChainName(FIREWALL_PREFIX, this.clusterPolicyChain));
  }

  get usesClusterPolicyChain(): boolean {
    return (this.#flags & USES_CLUSTER_POLICY) !== 0;
  }

  get usesLocalPolicyChain(): boolean {
    return (this.#flags & USES_LOCAL_POLICY) !== 0;
  }

  get hasEndpoints(): boolean {
    return (this.#flags & HAS_ENDPOINTS) !== 0;
  }

  get internalTrafficChain(): string {
    return (this.#flags & INTERNAL_POLICY_LOCAL) !== 0 ? this.localPolicyChain : this.clusterPolicyChain;
  }

  get hasInternalEndpoints(): boolean {
    return (this.#flags & HAS_INTERNAL_ENDPOINTS) !== 0;
  }

  get externalPolicyChain(): string {
    return (this.#flags & EXTERNAL_POLICY_LOCAL) !== 0 ? this.localPolicyChain : this.clusterPolicyChain;
  }

  get hasExternalEndpoints(): boolean {
    return (this.#flags & HAS_EXTERNAL_ENDPOINTS) !== 0;
  }

  /** Based on hasEndpoints, not hasExternalEndpoints: the short-circuit rules are needed even with no local endpoints. */
  get usesExternalTrafficChain(): boolean {
    return (this.#flags & USES_EXTERNAL_TRAFFIC_CHAIN) !== 0;
  }

  /** Unlike iptables mode, independent of endpoints: the source ranges are checked before anything else. */
  get usesFWChain(): boolean {
    return (this.#flags & USES_FW_CHAIN) !== 0;
  }

  /** ["goto <internal traffic chain>"]: a service-ips element's value for the cluster IP. */
  get internalValue(): readonly string[] {
    return (this.#internalValue ??= [['goto ', this.internalTrafficChain].join('')]);
  }

  /** ["goto <external chain>"]: the value of the elements of external destinations. */
  get externalValue(): readonly string[] {
    return (this.#externalValue ??= [['goto ', this.externalChain].join('')]);
  }

  /** ["goto reject-chain"] with no endpoints at all, ["drop"] when only local ones are missing. */
  get internalFilterValue(): readonly string[] {
    return !this.hasEndpoints ? REJECT_VALUE : DROP_VALUE;
  }

  get externalFilterValue(): readonly string[] {
    return !this.hasEndpoints ? REJECT_VALUE : DROP_VALUE;
  }
}

/**
 * Each service port's facts, worked out once: they are a function of the port and its
 * categorised endpoints alone, and kube-proxy names a port's chains once, when it makes the
 * servicePortInfo (newServiceInfo), not at every sync. A 10k-service sync need not hash 10k
 * names again.
 */
const keptFacts = new KeptPerServicePort(factsOf);

function servicePortFacts(sp: ProxierServicePort): ServicePortFacts {
  return keptFacts.get(sp);
}

function factsOf(sp: ProxierServicePort): ServicePortFacts {
  const svc = sp.info;
  const policy = policyFacts(sp);
  let flags = 0;
  if (policy.usesClusterPolicy) flags |= USES_CLUSTER_POLICY;
  if (policy.usesLocalPolicy) flags |= USES_LOCAL_POLICY;
  if (policy.hasEndpoints) flags |= HAS_ENDPOINTS;
  if (policy.hasInternalEndpoints) flags |= HAS_INTERNAL_ENDPOINTS;
  if (policy.hasExternalEndpoints) flags |= HAS_EXTERNAL_ENDPOINTS;
  if (policy.usesExternalTrafficChain) flags |= USES_EXTERNAL_TRAFFIC_CHAIN;
  if (svc.loadBalancerVIPs.length > 0 && svc.loadBalancerSourceRanges.length > 0) flags |= USES_FW_CHAIN;
  if (policy.internalPolicyLocal) flags |= INTERNAL_POLICY_LOCAL;
  if (policy.externalPolicyLocal) flags |= EXTERNAL_POLICY_LOCAL;
  return new ServicePortFacts(protocolWord(svc.protocol), String(svc.port), clusterPolicyChainOf(svc.svcPortName), flags);
}

/**
 * What other nodes wrote for a port that this node may take over (shared-work.ts): chains that
 * depend only on the port, its endpoints and the proxier-wide facts. What is written now is
 * kept in it.
 */
export interface NftPortReuse {
  /** The endpoint chain another node wrote for this endpoint text, if the caller knows one. */
  endpointChain(endpoint: string): NftChain | undefined;
  /** The service- chain last written, the endpoints it sends to, and whether it starts with the masquerade rule. */
  clusterChain?: { readonly endpoints: readonly EndpointInfo[]; readonly masquerade: boolean; readonly chain: NftChain };
  /**
   * Every endpoint chain of exactly these reachable endpoints, in this order, when the caller
   * holds them as one block written before: the port then declares none of them in the table
   * (the caller puts the block where they belong, before the port's other chains).
   */
  takeEndpointChains(reachable: readonly EndpointInfo[]): readonly NftChain[] | undefined;
  /**
   * The endpoint chains of these reachable endpoints, in order, when no block was taken: handed
   * to the caller as the port's block instead of being declared in the table.
   */
  keepEndpointChains(reachable: readonly EndpointInfo[], chains: readonly NftChain[]): void;
}

export function writeServicePort(ctx: NftSyncContext, maps: ServiceMaps, sp: ProxierServicePort, reuse?: NftPortReuse): void {
  const svc = sp.info;
  const facts = servicePortFacts(sp);
  const reachable = sp.categorized.allReachableEndpoints;
  // With `reuse` the endpoint chains are a block of the caller's, never declared in the table:
  // the one kept for these endpoints, else one made now (each chain another view of the port
  // wrote, or new, named from its hash: endpoint-chain.ts), kept for the next node.
  // Without `reuse` the block is made here (the same chains, named from their hashes) and
  // declared in the table as one run, before the port's other chains (chain-map.ts).
  const endpointChains = reuse === undefined
    ? endpointChainBlock(ctx, svc, reachable, undefined)
    : reuse.takeEndpointChains(reachable) ?? keepEndpointChains(ctx, svc, reachable, reuse);
  // The port's endpoints as the verdict maps and affinity rules name them (no closures: this
  // runs once per port of a cluster, 12k times on its first node).
  const endpoints: PortEndpoints = { spn: svc.svcPortName, reachable, chains: endpointChains };

  writeElements(maps, svc, facts);

  // Chains are created in kube-proxy's order: the endpoints' first, then the policy chains. The
  // port's own chains are gathered here and declared after the endpoints' as a run of their own:
  // a chain put into the table by name would make the table index every run before it by name.
  const own: NftChain[] = [];
  // The service- chain is the same wherever the port has the same cluster endpoints (a node's
  // own endpoint changes only the local- chain): take it over when another node wrote it.
  const clusterEndpoints = sp.categorized.clusterEndpoints ?? [];
  const masqueradeInCluster = facts.hasInternalEndpoints && facts.internalTrafficChain === facts.clusterPolicyChain;
  const known = reuse?.clusterChain;
  const takenCluster = facts.usesClusterPolicyChain && known !== undefined && known.masquerade === masqueradeInCluster && sameEndpoints(known.endpoints, clusterEndpoints)
    ? known.chain
    : undefined;
  if (takenCluster !== undefined) own.push(takenCluster);
  const clusterChain = facts.usesClusterPolicyChain && takenCluster === undefined ? ensurePortChain(own, facts.clusterPolicyChain) : undefined;
  const localChain = facts.usesLocalPolicyChain ? ensurePortChain(own, facts.localPolicyChain) : undefined;

  if (facts.hasInternalEndpoints && !(takenCluster !== undefined && masqueradeInCluster)) {
    writeInternalMasquerade(ctx, ensurePortChain(own, facts.internalTrafficChain), svc);
  }
  if (facts.usesExternalTrafficChain) writeExternalChain(ctx, ensurePortChain(own, facts.externalChain), svc, facts);
  if (facts.usesFWChain) writeFirewallChain(ctx, ensurePortChain(own, facts.firewallChain), svc);

  if (svc.sessionAffinityTimeoutSeconds > 0) {
    for (let i = 0; i < reachable.length; i++) {
      ensureSet(ctx.table, {
        kind: 'set', name: affinitySetOf(endpointNameOf(endpoints, reachable, i)), type: ctx.addrType,
        // "dynamic" too: without it some kernels add it themselves, and the next add would
        // then look like a change of flags and fail.
        flags: ['dynamic', 'timeout'],
        timeoutSeconds: svc.sessionAffinityTimeoutSeconds,
      });
    }
  }

  if (clusterChain) {
    writeServiceToEndpointRules(ctx, clusterChain, svc, clusterEndpoints, endpoints);
    if (reuse !== undefined) reuse.clusterChain = { endpoints: clusterEndpoints, masquerade: masqueradeInCluster, chain: clusterChain };
  }
  if (localChain) writeServiceToEndpointRules(ctx, localChain, svc, sp.categorized.localEndpoints ?? [], endpoints);

  // A port's chains are named after the port: no chain of the table has their names (chain-map.ts).
  if (reuse === undefined) appendChains(ctx.table.chains, endpointChains);
  appendChains(ctx.table.chains, own);
}

/**
 * The port's chain named `name` among those it wrote so far (`own`, a few at most), else a new
 * one added to them: ensureChain on the port's own chains.
 */
function ensurePortChain(own: NftChain[], name: string): NftChain {
  for (let i = 0; i < own.length; i++) if (own[i]!.name === name) return own[i]!;
  const chain: NftChain = { name, rules: [] };
  own.push(chain);
  return chain;
}

/**
 * The port's endpoint chains for `reachable`, in order, handed to `reuse` as the port's block:
 * the chain another view of the port wrote for an endpoint, else a new one (named from its
 * hash, its name made only if something reads it).
 */
function keepEndpointChains(ctx: NftSyncContext, svc: ServicePortInfo, reachable: readonly EndpointInfo[], reuse: NftPortReuse): readonly NftChain[] {
  const block = endpointChainBlock(ctx, svc, reachable, reuse);
  reuse.keepEndpointChains(reachable, block);
  return block;
}

/** The port's endpoint chains for `reachable`, in order: the one `reuse` holds for an endpoint, else a new one. */
function endpointChainBlock(ctx: NftSyncContext, svc: ServicePortInfo, reachable: readonly EndpointInfo[], reuse: NftPortReuse | undefined): NftChain[] {
  const block = new Array<NftChain>(reachable.length);
  for (let i = 0; i < reachable.length; i++) {
    const ep = reachable[i]!;
    block[i] = reuse?.endpointChain(ep.endpoint) ?? new EndpointChain(undefined, ctx.ipX, svc, ep);
  }
  return block;
}

/** The elements that capture the port's cluster IP, external IPs, LB IPs and node port. */
function writeElements(maps: ServiceMaps, svc: ServicePortInfo, facts: ServicePortFacts): void {
  const { protocol, port } = facts;
  const comment = svc.spn;

  addElement(maps.clusterIPs, { key: [svc.clusterIP] });
  if (facts.hasInternalEndpoints) {
    addElement(maps.serviceIPs, { key: [svc.clusterIP, protocol, port], value: facts.internalValue });
  } else {
    addElement(maps.noEndpointServices, { key: [svc.clusterIP, protocol, port], value: facts.internalFilterValue, comment });
  }

  // Arrays walked by index here and below: a for-of made an iterator result per loop, even over
  // an empty list (three loops per port, 12k ports on the first node of a big cluster).
  const externalIPs = svc.externalIPs;
  for (let i = 0; i < externalIPs.length; i++) {
    const externalIP = externalIPs[i]!;
    if (facts.hasEndpoints) {
      addElement(maps.serviceIPs, { key: [externalIP, protocol, port], value: facts.externalValue });
    }
    if (!facts.hasExternalEndpoints) {
      // No endpoints at all (reject), or none for external traffic (drop what was not short-circuited).
      addElement(maps.noEndpointServices, { key: [externalIP, protocol, port], value: facts.externalFilterValue, comment });
    }
  }

  const vips = svc.loadBalancerVIPs;
  for (let i = 0; i < vips.length; i++) {
    const vip = vips[i]!;
    if (facts.hasEndpoints) {
      addElement(maps.serviceIPs, { key: [vip, protocol, port], value: facts.externalValue });
    }
    if (facts.usesFWChain) {
      addElement(maps.firewallIPs, { key: [vip, protocol, port], value: [['goto ', facts.firewallChain].join('')] });
    }
  }
  if (!facts.hasExternalEndpoints) {
    for (let i = 0; i < vips.length; i++) {
      addElement(maps.noEndpointServices, { key: [vips[i]!, protocol, port], value: facts.externalFilterValue, comment });
    }
  }

  // Node ports are not subject to loadBalancerSourceRanges, and kube-proxy cannot change that.
  if (svc.nodePort !== 0) {
    const nodePort = String(svc.nodePort);
    if (facts.hasEndpoints) {
      addElement(maps.serviceNodePorts, { key: [protocol, nodePort], value: facts.externalValue });
    }
    if (!facts.hasExternalEndpoints) {
      addElement(maps.noEndpointNodePorts, { key: [protocol, nodePort], value: facts.externalFilterValue, comment });
    }
  }
}

/**
 * Off-cluster traffic to the cluster IP is masqueraded: a node may be used as a router into the
 * service range, and the endpoint may be on another node. The rule needs no port match
 * (kubernetes#131492): a packet reaches this chain with the cluster IP only through service-ips.
 */
function writeInternalMasquerade(ctx: NftSyncContext, chain: NftChain, svc: ServicePortInfo): void {
  if (ctx.masqueradeAll) {
    addRule(chain, [ctx.ipX, ' daddr ', svc.clusterIP, ' jump ', MARK_MASQ_CHAIN].join(''));
  } else if (ctx.ifNotLocal !== undefined) {
    addRule(chain, [ctx.ipX, ' daddr ', svc.clusterIP, ' ', ctx.ifNotLocal, ' jump ', MARK_MASQ_CHAIN].join(''));
  }
}

/** external-: every external destination comes here, then to the external policy chain. */
function writeExternalChain(ctx: NftSyncContext, chain: NftChain, svc: ServicePortInfo, facts: ServicePortFacts): void {
  if (!svc.externalPolicyLocal) {
    // Endpoints may be on other nodes: masquerade so replies come back through this node.
    addRule(chain, `jump ${MARK_MASQ_CHAIN}`);
  } else {
    if (ctx.ifLocal !== undefined) {
      // Pod traffic to an external destination is treated as if it went out to the load
      // balancer and came back: it may use any endpoint, and keeps its source.
      addRule(chain, `${ctx.ifLocal} goto ${facts.clusterPolicyChain}`, 'short-circuit pod traffic');
    }
    // Traffic from the node itself gets a node address as source (the LB IP is local), so
    // masquerade it, and send it to every endpoint.
    addRule(chain, `fib saddr type local jump ${MARK_MASQ_CHAIN}`, 'masquerade local traffic');
    addRule(chain, `fib saddr type local goto ${facts.clusterPolicyChain}`, 'short-circuit local traffic');
  }
  if (facts.hasExternalEndpoints) addRule(chain, `goto ${facts.externalPolicyChain}`);
}

/** firewall-: loadBalancerSourceRanges, checked before DNAT through firewall-ips. */
function writeFirewallChain(ctx: NftSyncContext, chain: NftChain, svc: ServicePortInfo): void {
  const sources: string[] = [];
  let allowFromNode = false;
  for (const range of svc.loadBalancerSourceRanges) {
    sources.push(range);
    const cidr = parseCIDR(range);
    if (cidr && cidrContains(cidr, ctx.nodeIP)) allowFromNode = true;
  }
  // The VIP is often a local address of the node, so a request from the node to the VIP comes
  // back with the VIP as source without going to the load balancer: allow that too.
  if (allowFromNode) sources.push(...svc.loadBalancerVIPs);
  addRule(chain, `${ctx.ipX} saddr != { ${sources.join(' , ')} } drop`);
}

/** A port's reachable endpoints and, when the caller holds them as a block, their chains in the same order. */
interface PortEndpoints {
  readonly spn: ServicePortInfo['svcPortName'];
  readonly reachable: readonly EndpointInfo[];
  readonly chains: readonly NftChain[] | undefined;
}

/**
 * The endpoint chain's name of `list[i]`. The cluster (or local) list is usually the reachable
 * list itself, so a chain at hand is found by position; otherwise the name is found by the
 * endpoint's text (names are a function of the port and the text, kept by names.ts: a node's
 * few local endpoints need no index of thousands of reachable ones).
 */
function endpointNameOf(port: PortEndpoints, list: readonly EndpointInfo[], i: number): string {
  return port.chains !== undefined && list === port.reachable ? port.chains[i]!.name : endpointNames(port.spn, list[i]!.endpoint).chain;
}

/** The endpoint chain of `list[i]` where it is at hand (the verdict maps send to the chains themselves), else its name. */
function endpointTargetOf(port: PortEndpoints, list: readonly EndpointInfo[], i: number): VmapTarget {
  return port.chains !== undefined && list === port.reachable ? port.chains[i]! : endpointNames(port.spn, list[i]!.endpoint).chain;
}

/** service- / local-: affinity checks first, then one numgen verdict map over the endpoints. */
function writeServiceToEndpointRules(
  ctx: NftSyncContext, chain: NftChain, svc: ServicePortInfo, endpoints: readonly EndpointInfo[], port: PortEndpoints,
): void {
  if (svc.sessionAffinityTimeoutSeconds > 0) {
    for (let i = 0; i < endpoints.length; i++) {
      const n = endpointNameOf(port, endpoints, i);
      addRule(chain, `${ctx.ipX} saddr @${affinitySetOf(n)} goto ${n}`);
    }
  }
  // The endpoint chains (or their names), not the rule's text (vmap-rule.ts): the port's block of
  // chains itself when the rule sends to every reachable endpoint, as most do.
  let targets: readonly VmapTarget[];
  if (port.chains !== undefined && endpoints === port.reachable) targets = port.chains;
  else {
    const list = new Array<VmapTarget>(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) list[i] = endpointTargetOf(port, endpoints, i);
    targets = list;
  }
  chain.rules.push(new NumgenVmapRule(targets));
}
