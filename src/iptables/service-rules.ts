/**
 * One service port's rules, in the order kube-proxy's syncProxyRules writes them: first the
 * named facts (hasEndpoints, hasInternalEndpoints, usesFWChain, ...), then the rules that
 * capture its destinations (cluster IP, external IPs, LB VIPs, node port, health check), then
 * its own chains: KUBE-EXT, KUBE-FW, KUBE-SVC, KUBE-SVL and one KUBE-SEP per endpoint.
 */
import { policyFacts } from '../topology/policy-facts.js';
import type { Protocol } from '../model/types.js';
import { KeptPerServicePort } from '../tracker/kept-per-port.js';
import type { EndpointInfo, ProxierServicePort, ServicePortInfo } from '../tracker/types.js';
import { cidrContains, parseCIDR } from '../util/ip.js';
import { EndpointArgsScratch, type EndpointChainShape, type PolicyChainPlan, endpointChainArgs, writeServiceToEndpointRules } from './deferred-chains.js';
import { KUBE_MARK_MASQ, endpointChainName, protocolWord, servicePortChainNames } from './names.js';
import { type PlannedPolicyChain, ServicePortChains } from './service-port-chains.js';
import { type FixedChains, LOCALHOST_NODEPORT_ACCEPTED_COUNTER, type PortChainReuse, type SyncContext } from './sync-context.js';

/** What kube-proxy decides about a service port before writing any of its rules. */
export interface ServicePortFacts {
  readonly spn: string;
  /** "tcp", "udp" or "sctp". */
  readonly protocol: string;
  readonly port: string;
  readonly clusterPolicyChain: string;
  readonly localPolicyChain: string;
  readonly externalChain: string;
  readonly firewallChain: string;
  readonly usesClusterPolicyChain: boolean;
  readonly usesLocalPolicyChain: boolean;
  readonly hasEndpoints: boolean;
  readonly internalPolicyChain: string;
  readonly hasInternalEndpoints: boolean;
  readonly externalPolicyChain: string;
  readonly hasExternalEndpoints: boolean;
  /** Based on hasEndpoints, not hasExternalEndpoints: the short-circuit rules are needed even with no local endpoints. */
  readonly usesExternalTrafficChain: boolean;
  readonly usesFWChain: boolean;
  readonly loadBalancerTrafficChain: string;
  /** REJECT when there are no endpoints at all, DROP when only local ones are missing. */
  readonly internalFilter: FilterVerdict | undefined;
  readonly externalFilter: FilterVerdict | undefined;
}

interface FilterVerdict {
  readonly target: 'REJECT' | 'DROP';
  readonly comment: string;
}

/**
 * Each service port's facts, worked out once: they are a function of the port and its
 * categorised endpoints alone, and kube-proxy names a port's chains once, when it makes the
 * servicePortInfo (newServiceInfo), not at every sync. A 10k-service sync need not hash 10k
 * names again.
 */
const keptFacts = new KeptPerServicePort(factsOf);

export function servicePortFacts(sp: ProxierServicePort): ServicePortFacts {
  return keptFacts.get(sp);
}

function factsOf(sp: ProxierServicePort): ServicePortFacts {
  const svc = sp.info;
  const names = servicePortChainNames(svc.spn, svc.protocol);
  const policy = policyFacts(sp);
  const { hasEndpoints, hasInternalEndpoints, hasExternalEndpoints } = policy;
  const internalPolicyChain = policy.internalPolicyLocal ? names.localPolicyChain : names.clusterPolicyChain;
  const externalPolicyChain = policy.externalPolicyLocal ? names.localPolicyChain : names.clusterPolicyChain;
  const usesFWChain = hasEndpoints && svc.loadBalancerVIPs.length > 0 && svc.loadBalancerSourceRanges.length > 0;

  let internalFilter: FilterVerdict | undefined;
  let externalFilter: FilterVerdict | undefined;
  if (!hasEndpoints) {
    internalFilter = { target: 'REJECT', comment: `${svc.spn} has no endpoints` };
    externalFilter = internalFilter;
  } else {
    // Endpoints exist, but not on this node for a Local policy: drop what is not short-circuited.
    if (!hasInternalEndpoints) internalFilter = { target: 'DROP', comment: `${svc.spn} has no local endpoints` };
    if (!hasExternalEndpoints) externalFilter = { target: 'DROP', comment: `${svc.spn} has no local endpoints` };
  }

  return {
    spn: svc.spn,
    protocol: protocolWord(svc.protocol),
    port: String(svc.port),
    // Field by field, not spread in: a literal with a spread is built one property at a time at
    // run time (once per port: 12k ports for the first node of a big cluster).
    clusterPolicyChain: names.clusterPolicyChain,
    localPolicyChain: names.localPolicyChain,
    externalChain: names.externalChain,
    firewallChain: names.firewallChain,
    usesClusterPolicyChain: policy.usesClusterPolicy,
    usesLocalPolicyChain: policy.usesLocalPolicy,
    hasEndpoints,
    internalPolicyChain,
    hasInternalEndpoints,
    externalPolicyChain,
    hasExternalEndpoints,
    usesExternalTrafficChain: policy.usesExternalTrafficChain,
    usesFWChain,
    loadBalancerTrafficChain: usesFWChain ? names.firewallChain : names.externalChain,
    internalFilter,
    externalFilter,
  };
}

export function writeServicePortRules<C>(ctx: SyncContext<C>, fixed: FixedChains<C>, sp: ProxierServicePort): void {
  const svc = sp.info;
  // With shared work (ctx.reuse) a port's view is written once for every node that shares it,
  // and what is kept is its text or fragment: facts kept per port as well (12k ports: 5 MB of
  // objects and names for a big cluster's first node) would only be copied by the collector.
  const facts = ctx.reuse === undefined ? servicePortFacts(sp) : factsOf(sp);
  writeDestinationCaptureRules(ctx, fixed, svc, facts);

  // The internal masquerade rule is the first rule of the internal policy chain, which kube-proxy
  // declares only later (with its endpoint rules): keep it until then.
  const internalMasquerade = facts.hasInternalEndpoints ? internalMasqueradeRule(ctx, svc, facts) : undefined;
  if (facts.usesExternalTrafficChain) writeExternalChain(ctx, facts, svc.externalPolicyLocal);
  if (facts.usesFWChain) writeFirewallChain(ctx, svc, facts);

  const reachable = sp.categorized.allReachableEndpoints;
  const sepNames = new EndpointChainNames(facts.spn, svc.protocol, reachable, ctx.reuse);
  const shape: EndpointChainShape = { spn: facts.spn, protocol: facts.protocol, affinity: svc.sessionAffinityTimeoutSeconds > 0, large: ctx.largeClusterMode };
  if (ctx.reuse === undefined && ctx.out.writeServicePortChains !== undefined) {
    ctx.out.writeServicePortChains('nat', new ServicePortChains(policyChainsOf(ctx, sp, facts, internalMasquerade, sepNames), shape, reachable, sepNames.names));
    return;
  }
  let internalMasqueradeWritten = internalMasquerade === undefined;
  if (facts.usesClusterPolicyChain) {
    const masquerade = facts.internalPolicyChain === facts.clusterPolicyChain ? internalMasquerade : undefined;
    if (masquerade) internalMasqueradeWritten = true;
    writePolicyChain(ctx, facts.clusterPolicyChain, masquerade, svc, facts.spn, sp.categorized.clusterEndpoints ?? [], sepNames);
  }
  if (facts.usesLocalPolicyChain) {
    const masquerade = facts.internalPolicyChain === facts.localPolicyChain ? internalMasquerade : undefined;
    if (masquerade) internalMasqueradeWritten = true;
    writePolicyChain(ctx, facts.localPolicyChain, masquerade, svc, facts.spn, sp.categorized.localEndpoints ?? [], sepNames);
  }
  if (!internalMasqueradeWritten) throw new Error(`${facts.spn}: internal traffic chain ${facts.internalPolicyChain} has internal endpoints but was not written`);

  if (ctx.reuse?.takeEndpointChains(reachable)) return;
  if (ctx.out.writeEndpointChains !== undefined && ctx.reuse?.keepsEndpointChains !== true) {
    ctx.out.writeEndpointChains('nat', shape, reachable, sepNames.names);
    return;
  }
  // A sink that copies the arguments gets one pair of arrays, filled anew for each endpoint.
  const scratch = ctx.out.copiesArgs === true ? new EndpointArgsScratch() : undefined;
  for (let i = 0; i < reachable.length; i++) {
    const name = sepNames.names[i]!;
    const written = ctx.reuse?.endpointChain(name);
    if (written !== undefined) {
      ctx.out.adoptChain('nat', written);
    } else {
      const chain = writeEndpointChain(ctx, shape, reachable[i]!, name, scratch);
      ctx.reuse?.keepEndpointChain(chain);
    }
  }
}

/**
 * The port's KUBE-SVC and KUBE-SVL chains as plans, in the order writeServicePortRules declares
 * them, the internal masquerade rule first in the internal policy chain.
 */
function policyChainsOf<C>(ctx: SyncContext<C>, sp: ProxierServicePort, facts: ServicePortFacts, internalMasquerade: string[] | undefined, sepNames: EndpointChainNames): PlannedPolicyChain[] {
  const svc = sp.info;
  const policies: PlannedPolicyChain[] = [];
  let internalMasqueradeWritten = internalMasquerade === undefined;
  if (facts.usesClusterPolicyChain) {
    const masquerade = facts.internalPolicyChain === facts.clusterPolicyChain ? internalMasquerade : undefined;
    if (masquerade) internalMasqueradeWritten = true;
    policies.push({ name: facts.clusterPolicyChain, plan: policyPlanOf(ctx, masquerade, svc, facts.spn, sp.categorized.clusterEndpoints ?? [], sepNames) });
  }
  if (facts.usesLocalPolicyChain) {
    const masquerade = facts.internalPolicyChain === facts.localPolicyChain ? internalMasquerade : undefined;
    if (masquerade) internalMasqueradeWritten = true;
    policies.push({ name: facts.localPolicyChain, plan: policyPlanOf(ctx, masquerade, svc, facts.spn, sp.categorized.localEndpoints ?? [], sepNames) });
  }
  if (!internalMasqueradeWritten) throw new Error(`${facts.spn}: internal traffic chain ${facts.internalPolicyChain} has internal endpoints but was not written`);
  return policies;
}

/** KUBE-SVC or KUBE-SVL: the internal masquerade rule when it is the internal policy chain, then the endpoints. */
function writePolicyChain<C>(
  ctx: SyncContext<C>,
  name: string,
  masquerade: string[] | undefined,
  svc: ServicePortInfo,
  spn: string,
  endpoints: readonly EndpointInfo[],
  sepNames: EndpointChainNames,
): void {
  const written = ctx.reuse?.policyChain(name, endpoints, masquerade !== undefined);
  if (written !== undefined) {
    ctx.out.adoptChain('nat', written);
    return;
  }
  const plan = policyPlanOf(ctx, masquerade, svc, spn, endpoints, sepNames);
  let chain: C;
  if (ctx.out.writePolicyChain !== undefined) {
    chain = ctx.out.writePolicyChain('nat', name, plan);
  } else {
    const out = ctx.out;
    const declared = out.declareChain('nat', name);
    if (masquerade) out.appendRule(declared, masquerade);
    writeServiceToEndpointRules(plan, { copiesArgs: out.copiesArgs === true, rule: (args) => out.appendRule(declared, args) });
    chain = declared;
  }
  ctx.reuse?.keepPolicyChain(chain, endpoints, masquerade !== undefined);
}

/** What a KUBE-SVC or KUBE-SVL chain over `endpoints` is made of. */
function policyPlanOf<C>(
  ctx: SyncContext<C>,
  masquerade: string[] | undefined,
  svc: ServicePortInfo,
  spn: string,
  endpoints: readonly EndpointInfo[],
  sepNames: EndpointChainNames,
): PolicyChainPlan {
  return {
    masquerade,
    spn,
    endpoints,
    endpointChains: sepNames.namesOf(endpoints),
    affinitySeconds: svc.sessionAffinityTimeoutSeconds > 0 ? String(svc.sessionAffinityTimeoutSeconds) : '',
    large: ctx.largeClusterMode,
    probabilities: ctx.probabilities,
  };
}

/** Rules in the top-level chains that send each of the service's destinations to its chains (or reject/drop them). */
function writeDestinationCaptureRules<C>(ctx: SyncContext<C>, fixed: FixedChains<C>, svc: ServicePortInfo, facts: ServicePortFacts): void {
  const { spn, protocol, port } = facts;

  // Cluster IP.
  if (facts.hasInternalEndpoints) {
    ctx.out.appendRule(fixed.natServices, ['-m', 'comment', '--comment', `${spn} cluster IP`, '-m', protocol, '-p', protocol, '-d', svc.clusterIP, '--dport', port, '-j', facts.internalPolicyChain]);
  } else {
    const verdict = facts.internalFilter!;
    ctx.out.appendRule(fixed.filterServices, ['-m', 'comment', '--comment', verdict.comment, '-m', protocol, '-p', protocol, '-d', svc.clusterIP, '--dport', port, '-j', verdict.target]);
  }

  // External IPs.
  for (const externalIP of svc.externalIPs) {
    if (facts.hasEndpoints) {
      ctx.out.appendRule(fixed.natServices, ['-m', 'comment', '--comment', `${spn} external IP`, '-m', protocol, '-p', protocol, '-d', externalIP, '--dport', port, '-j', facts.externalChain]);
    }
    if (!facts.hasExternalEndpoints) {
      const verdict = facts.externalFilter!;
      ctx.out.appendRule(fixed.filterExternalServices, ['-m', 'comment', '--comment', verdict.comment, '-m', protocol, '-p', protocol, '-d', externalIP, '--dport', port, '-j', verdict.target]);
    }
  }

  // Load-balancer VIPs.
  for (const vip of svc.loadBalancerVIPs) {
    if (facts.hasEndpoints) {
      ctx.out.appendRule(fixed.natServices, ['-m', 'comment', '--comment', `${spn} loadbalancer IP`, '-m', protocol, '-p', protocol, '-d', vip, '--dport', port, '-j', facts.loadBalancerTrafficChain]);
    }
    if (facts.usesFWChain) {
      ctx.out.appendRule(fixed.filterProxyFirewall, [
        '-m', 'comment', '--comment', `${spn} traffic not accepted by ${facts.firewallChain}`,
        '-m', protocol, '-p', protocol, '-d', vip, '--dport', port, '-j', 'DROP',
      ]);
    }
  }
  if (!facts.hasExternalEndpoints) {
    const verdict = facts.externalFilter!;
    for (const vip of svc.loadBalancerVIPs) {
      ctx.out.appendRule(fixed.filterExternalServices, ['-m', 'comment', '--comment', verdict.comment, '-m', protocol, '-p', protocol, '-d', vip, '--dport', port, '-j', verdict.target]);
    }
  }

  // Node port. (Node ports are not subject to loadBalancerSourceRanges, and kube-proxy cannot change that.)
  if (svc.nodePort !== 0) {
    const nodePort = String(svc.nodePort);
    if (facts.hasEndpoints) {
      if (ctx.localhostNodePorts && ctx.family === 4 && ctx.nfacctCounters) {
        ctx.out.appendRule(fixed.natNodePorts, [
          '-m', 'comment', '--comment', spn, '-m', protocol, '-p', protocol, '-d', '127.0.0.0/8', '--dport', nodePort,
          '-m', 'nfacct', '--nfacct-name', LOCALHOST_NODEPORT_ACCEPTED_COUNTER, '-j', facts.externalChain,
        ]);
      }
      ctx.out.appendRule(fixed.natNodePorts, ['-m', 'comment', '--comment', spn, '-m', protocol, '-p', protocol, '--dport', nodePort, '-j', facts.externalChain]);
    }
    if (!facts.hasExternalEndpoints) {
      const verdict = facts.externalFilter!;
      ctx.out.appendRule(fixed.filterExternalServices, [
        '-m', 'comment', '--comment', verdict.comment, '-m', 'addrtype', '--dst-type', 'LOCAL',
        '-m', protocol, '-p', protocol, '--dport', nodePort, '-j', verdict.target,
      ]);
    }
  }

  // Health check node port: accepted whether or not this node has endpoints.
  if (svc.healthCheckNodePort !== 0) {
    ctx.out.appendRule(fixed.filterNodePorts, [
      '-m', 'comment', '--comment', `${spn} health check node port`, '-m', 'tcp', '-p', 'tcp', '--dport', String(svc.healthCheckNodePort), '-j', 'ACCEPT',
    ]);
  }
}

/**
 * Masquerade cluster-IP traffic from outside the pod network (or all of it with masqueradeAll):
 * off-cluster clients may route the service range to any node, which may bounce the packet to
 * another node. Without a local detector and without masqueradeAll there is no such rule.
 */
function internalMasqueradeRule<C>(ctx: SyncContext<C>, svc: ServicePortInfo, facts: ServicePortFacts): string[] | undefined {
  const { spn, protocol, port } = facts;
  if (ctx.masqueradeAll) return ['-m', 'comment', '--comment', `${spn} cluster IP`, '-m', protocol, '-p', protocol, '-d', svc.clusterIP, '--dport', port, '-j', KUBE_MARK_MASQ];
  if (ctx.localDetectorCIDR !== undefined) {
    return ['-m', 'comment', '--comment', `${spn} cluster IP`, '-m', protocol, '-p', protocol, '-d', svc.clusterIP, '--dport', port, '!', '-s', ctx.localDetectorCIDR, '-j', KUBE_MARK_MASQ];
  }
  return undefined;
}

/** KUBE-EXT: masquerading and the short-circuit for traffic from this node, then the external policy chain. */
function writeExternalChain<C>(ctx: SyncContext<C>, facts: ServicePortFacts, externalPolicyLocal: boolean): void {
  const chain = ctx.out.declareChain('nat', facts.externalChain);
  const spn = facts.spn;
  if (!externalPolicyLocal) {
    // Endpoints may be on other nodes: masquerade so replies come back through this node.
    ctx.out.appendRule(chain, ['-m', 'comment', '--comment', `masquerade traffic for ${spn} external destinations`, '-j', KUBE_MARK_MASQ]);
  } else {
    if (ctx.localDetectorCIDR !== undefined) {
      // Pod traffic to an external destination is treated as if it went out to the load
      // balancer and came back: it may use any endpoint, and keeps its source.
      ctx.out.appendRule(chain, ['-m', 'comment', '--comment', `pod traffic for ${spn} external destinations`, '-s', ctx.localDetectorCIDR, '-j', facts.clusterPolicyChain]);
    }
    // Traffic from the node itself gets a node address as source (the LB IP is local), so masquerade it ...
    ctx.out.appendRule(chain, ['-m', 'comment', '--comment', `masquerade LOCAL traffic for ${spn} external destinations`, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', KUBE_MARK_MASQ]);
    // ... and send it to every endpoint.
    ctx.out.appendRule(chain, ['-m', 'comment', '--comment', `route LOCAL traffic for ${spn} external destinations`, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', facts.clusterPolicyChain]);
  }
  if (facts.hasExternalEndpoints) ctx.out.appendRule(chain, ['-j', facts.externalPolicyChain]);
}

/** KUBE-FW: loadBalancerSourceRanges for VIP-like load balancers that keep the client's source. */
function writeFirewallChain<C>(ctx: SyncContext<C>, svc: ServicePortInfo, facts: ServicePortFacts): void {
  const chain = ctx.out.declareChain('nat', facts.firewallChain);
  const comment = `${facts.spn} loadbalancer IP`;
  let allowFromNode = false;
  for (const range of svc.loadBalancerSourceRanges) {
    ctx.out.appendRule(chain, ['-m', 'comment', '--comment', comment, '-s', range, '-j', facts.externalChain]);
    const cidr = parseCIDR(range);
    if (cidr && cidrContains(cidr, ctx.nodeIP)) allowFromNode = true;
  }
  if (allowFromNode) {
    // The VIP is often a local address of the node, so a request from the node to the VIP comes
    // back with the VIP as source without going to the load balancer: allow that too.
    for (const vip of svc.loadBalancerVIPs) ctx.out.appendRule(chain, ['-m', 'comment', '--comment', comment, '-s', vip, '-j', facts.externalChain]);
  }
  // A packet that reaches the end was not DNATed; KUBE-PROXY-FIREWALL drops it in filter.
  ctx.out.appendRule(chain, ['-m', 'comment', '--comment', `other traffic to ${facts.spn} will be dropped by KUBE-PROXY-FIREWALL`]);
}

/**
 * The KUBE-SEP chain names of a port's reachable endpoints, by position, kept for as long as
 * that list lives. kube-proxy hashes an endpoint's chain name once, when it makes the
 * endpointInfo (newEndpointInfo in pkg/proxy/iptables/proxier.go), not at every sync; the
 * tracker never changes a list once made, so a list seen before has the same names. (A
 * compile with `reuse` takes its names from there instead: across a cluster's nodes one
 * port's lists differ, its endpoints' names do not.)
 */
interface KeptEndpointNames {
  readonly spn: string;
  readonly protocol: Protocol;
  readonly names: readonly string[];
  /** By endpoint, for a policy's list that is not the reachable list itself (made on first use). */
  byEndpoint?: Map<EndpointInfo, string>;
}

const keptEndpointNames = new WeakMap<readonly EndpointInfo[], KeptEndpointNames>();

/**
 * The KUBE-SEP chain name of every reachable endpoint, hashed once per endpoint (and, with
 * `reuse`, once for every node). The cluster (or local) list is usually the reachable list
 * itself, so names are looked up by position; otherwise by endpoint.
 */
class EndpointChainNames {
  #kept: KeptEndpointNames | undefined;

  constructor(
    private readonly spn: string,
    private readonly protocol: Protocol,
    private readonly reachable: readonly EndpointInfo[],
    private readonly reuse?: PortChainReuse<unknown>,
  ) {}

  /** The names of the reachable endpoints' chains, in order (made on first use). */
  get names(): readonly string[] {
    return this.#keptNames().names;
  }

  #keptNames(): KeptEndpointNames {
    if (this.#kept !== undefined) return this.#kept;
    const reachable = this.reachable;
    let kept = this.reuse ? undefined : keptEndpointNames.get(reachable);
    if (kept === undefined || kept.spn !== this.spn || kept.protocol !== this.protocol || kept.names.length !== reachable.length) {
      const names = new Array<string>(reachable.length);
      for (let i = 0; i < reachable.length; i++) names[i] = this.#name(reachable[i]!);
      kept = { spn: this.spn, protocol: this.protocol, names };
      if (!this.reuse) keptEndpointNames.set(reachable, kept);
    }
    this.#kept = kept;
    return kept;
  }

  #name(ep: EndpointInfo): string {
    if (this.reuse) return this.reuse.endpointChainName(this.spn, this.protocol, ep.endpoint);
    return endpointChainName(this.spn, this.protocol, ep.endpoint);
  }

  /** The chains of a list's endpoints, by position. */
  namesOf(list: readonly EndpointInfo[]): readonly string[] {
    if (list === this.reachable) return this.#keptNames().names;
    const names = new Array<string>(list.length);
    for (let i = 0; i < list.length; i++) names[i] = this.nameAt(list, i);
    return names;
  }

  /** The chain of `list[i]`. */
  nameAt(list: readonly EndpointInfo[], i: number): string {
    // With reuse, a list other than the reachable one (a node's few local endpoints) is named
    // endpoint by endpoint: the reuse may keep the names, and hashing a few is cheaper than a Map.
    if (this.reuse && list !== this.reachable) return this.#name(list[i]!);
    const kept = this.#keptNames();
    if (list === this.reachable) return kept.names[i]!;
    kept.byEndpoint ??= new Map(this.reachable.map((ep, j) => [ep, kept.names[j]!]));
    const name = kept.byEndpoint.get(list[i]!);
    if (name === undefined) throw new Error(`${this.spn}: endpoint ${list[i]!.endpoint} is used but not among the reachable endpoints`);
    return name;
  }
}

/** KUBE-SEP: hairpin masquerade (a pod reaching itself through the service), then DNAT. */
function writeEndpointChain<C>(ctx: SyncContext<C>, shape: EndpointChainShape, ep: EndpointInfo, sep: string, scratch: EndpointArgsScratch | undefined): C {
  if (ctx.out.writeEndpointChain !== undefined) return ctx.out.writeEndpointChain('nat', sep, shape, ep.ip, ep.endpoint);
  if (scratch !== undefined) return ctx.out.writeChain('nat', sep, scratch.fill(shape, ep.ip, ep.endpoint, sep));
  return ctx.out.writeChain('nat', sep, endpointChainArgs(shape, ep.ip, ep.endpoint, sep));
}
