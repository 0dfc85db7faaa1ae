/**
 * One service port's rules, in the order kube-proxy's syncProxyRules writes them: first the
 * named facts (hasEndpoints, hasInternalEndpoints, usesFWChain, ...), then the rules that
 * capture its destinations (cluster IP, external IPs, LB VIPs, node port, health check), then
 * its own chains: KUBE-EXT, KUBE-FW, KUBE-SVC, KUBE-SVL and one KUBE-SEP per endpoint.
 */
import { policyFacts } from '../topology/policy-facts.js';
import type { EndpointInfo, ProxierServicePort, ServicePortInfo } from '../tracker/types.js';
import { cidrContains, parseCIDR } from '../util/ip.js';
import { KUBE_MARK_MASQ, endpointChainName, protocolWord, servicePortChainNames } from './names.js';
import { adoptChain, appendRule, declareChain } from './ruleset-builder.js';
import { type FixedChains, LOCALHOST_NODEPORT_ACCEPTED_COUNTER, type PortChainReuse, type SyncContext } from './sync-context.js';
import type { Chain } from './types.js';

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

export function servicePortFacts(sp: ProxierServicePort): ServicePortFacts {
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
    ...names,
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

export function writeServicePortRules(ctx: SyncContext, fixed: FixedChains, sp: ProxierServicePort): void {
  const svc = sp.info;
  const facts = servicePortFacts(sp);
  writeDestinationCaptureRules(ctx, fixed, svc, facts);

  // The internal masquerade rule is the first rule of the internal policy chain, which kube-proxy
  // declares only later (with its endpoint rules): keep it until then.
  const internalMasquerade = facts.hasInternalEndpoints ? internalMasqueradeRule(ctx, svc, facts) : undefined;
  if (facts.usesExternalTrafficChain) writeExternalChain(ctx, facts, svc.externalPolicyLocal);
  if (facts.usesFWChain) writeFirewallChain(ctx, svc, facts);

  const reachable = sp.categorized.allReachableEndpoints;
  const sepNames = new EndpointChainNames(facts.spn, reachable, sp, ctx.reuse);
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
  for (let i = 0; i < reachable.length; i++) {
    const name = sepNames.names[i]!;
    const written = ctx.reuse?.endpointChain(name);
    if (written !== undefined) {
      adoptChain(ctx.nat, written);
    } else {
      const chain = writeEndpointChain(ctx, svc, facts, reachable[i]!, name);
      ctx.reuse?.keepEndpointChain(chain);
    }
  }
}

/** KUBE-SVC or KUBE-SVL: the internal masquerade rule when it is the internal policy chain, then the endpoints. */
function writePolicyChain(
  ctx: SyncContext,
  name: string,
  masquerade: string[] | undefined,
  svc: ServicePortInfo,
  spn: string,
  endpoints: readonly EndpointInfo[],
  sepNames: EndpointChainNames,
): void {
  const written = ctx.reuse?.policyChain(name, endpoints, masquerade !== undefined);
  if (written !== undefined) {
    adoptChain(ctx.nat, written);
    return;
  }
  const chain = declareChain(ctx.nat, name);
  if (masquerade) appendRule(chain, masquerade);
  writeServiceToEndpointRules(ctx, chain, svc, spn, endpoints, sepNames);
  ctx.reuse?.keepPolicyChain(chain, endpoints, masquerade !== undefined);
}

/** Rules in the top-level chains that send each of the service's destinations to its chains (or reject/drop them). */
function writeDestinationCaptureRules(ctx: SyncContext, fixed: FixedChains, svc: ServicePortInfo, facts: ServicePortFacts): void {
  const { spn, protocol, port } = facts;

  // Cluster IP.
  if (facts.hasInternalEndpoints) {
    appendRule(fixed.natServices, ['-m', 'comment', '--comment', `${spn} cluster IP`, '-m', protocol, '-p', protocol, '-d', svc.clusterIP, '--dport', port, '-j', facts.internalPolicyChain]);
  } else {
    const verdict = facts.internalFilter!;
    appendRule(fixed.filterServices, ['-m', 'comment', '--comment', verdict.comment, '-m', protocol, '-p', protocol, '-d', svc.clusterIP, '--dport', port, '-j', verdict.target]);
  }

  // External IPs.
  for (const externalIP of svc.externalIPs) {
    if (facts.hasEndpoints) {
      appendRule(fixed.natServices, ['-m', 'comment', '--comment', `${spn} external IP`, '-m', protocol, '-p', protocol, '-d', externalIP, '--dport', port, '-j', facts.externalChain]);
    }
    if (!facts.hasExternalEndpoints) {
      const verdict = facts.externalFilter!;
      appendRule(fixed.filterExternalServices, ['-m', 'comment', '--comment', verdict.comment, '-m', protocol, '-p', protocol, '-d', externalIP, '--dport', port, '-j', verdict.target]);
    }
  }

  // Load-balancer VIPs.
  for (const vip of svc.loadBalancerVIPs) {
    if (facts.hasEndpoints) {
      appendRule(fixed.natServices, ['-m', 'comment', '--comment', `${spn} loadbalancer IP`, '-m', protocol, '-p', protocol, '-d', vip, '--dport', port, '-j', facts.loadBalancerTrafficChain]);
    }
    if (facts.usesFWChain) {
      appendRule(fixed.filterProxyFirewall, [
        '-m', 'comment', '--comment', `${spn} traffic not accepted by ${facts.firewallChain}`,
        '-m', protocol, '-p', protocol, '-d', vip, '--dport', port, '-j', 'DROP',
      ]);
    }
  }
  if (!facts.hasExternalEndpoints) {
    const verdict = facts.externalFilter!;
    for (const vip of svc.loadBalancerVIPs) {
      appendRule(fixed.filterExternalServices, ['-m', 'comment', '--comment', verdict.comment, '-m', protocol, '-p', protocol, '-d', vip, '--dport', port, '-j', verdict.target]);
    }
  }

  // Node port. (Node ports are not subject to loadBalancerSourceRanges, and kube-proxy cannot change that.)
  if (svc.nodePort !== 0) {
    const nodePort = String(svc.nodePort);
    if (facts.hasEndpoints) {
      if (ctx.localhostNodePorts && ctx.family === 4 && ctx.nfacctCounters) {
        appendRule(fixed.natNodePorts, [
          '-m', 'comment', '--comment', spn, '-m', protocol, '-p', protocol, '-d', '127.0.0.0/8', '--dport', nodePort,
          '-m', 'nfacct', '--nfacct-name', LOCALHOST_NODEPORT_ACCEPTED_COUNTER, '-j', facts.externalChain,
        ]);
      }
      appendRule(fixed.natNodePorts, ['-m', 'comment', '--comment', spn, '-m', protocol, '-p', protocol, '--dport', nodePort, '-j', facts.externalChain]);
    }
    if (!facts.hasExternalEndpoints) {
      const verdict = facts.externalFilter!;
      appendRule(fixed.filterExternalServices, [
        '-m', 'comment', '--comment', verdict.comment, '-m', 'addrtype', '--dst-type', 'LOCAL',
        '-m', protocol, '-p', protocol, '--dport', nodePort, '-j', verdict.target,
      ]);
    }
  }

  // Health check node port: accepted whether or not this node has endpoints.
  if (svc.healthCheckNodePort !== 0) {
    appendRule(fixed.filterNodePorts, [
      '-m', 'comment', '--comment', `${spn} health check node port`, '-m', 'tcp', '-p', 'tcp', '--dport', String(svc.healthCheckNodePort), '-j', 'ACCEPT',
    ]);
  }
}

/**
 * Masquerade cluster-IP traffic from outside the pod network (or all of it with masqueradeAll):
 * off-cluster clients may route the service range to any node, which may bounce the packet to
 * another node. Without a local detector and without masqueradeAll there is no such rule.
 */
function internalMasqueradeRule(ctx: SyncContext, svc: ServicePortInfo, facts: ServicePortFacts): string[] | undefined {
  const args = ['-m', 'comment', '--comment', `${facts.spn} cluster IP`, '-m', facts.protocol, '-p', facts.protocol, '-d', svc.clusterIP, '--dport', facts.port];
  if (ctx.masqueradeAll) {
    args.push('-j', KUBE_MARK_MASQ);
    return args;
  }
  if (ctx.localDetectorCIDR !== undefined) {
    args.push('!', '-s', ctx.localDetectorCIDR, '-j', KUBE_MARK_MASQ);
    return args;
  }
  return undefined;
}

/** KUBE-EXT: masquerading and the short-circuit for traffic from this node, then the external policy chain. */
function writeExternalChain(ctx: SyncContext, facts: ServicePortFacts, externalPolicyLocal: boolean): void {
  const chain = declareChain(ctx.nat, facts.externalChain);
  const spn = facts.spn;
  if (!externalPolicyLocal) {
    // Endpoints may be on other nodes: masquerade so replies come back through this node.
    appendRule(chain, ['-m', 'comment', '--comment', `masquerade traffic for ${spn} external destinations`, '-j', KUBE_MARK_MASQ]);
  } else {
    if (ctx.localDetectorCIDR !== undefined) {
      // Pod traffic to an external destination is treated as if it went out to the load
      // balancer and came back: it may use any endpoint, and keeps its source.
      appendRule(chain, ['-m', 'comment', '--comment', `pod traffic for ${spn} external destinations`, '-s', ctx.localDetectorCIDR, '-j', facts.clusterPolicyChain]);
    }
    // Traffic from the node itself gets a node address as source (the LB IP is local), so masquerade it ...
    appendRule(chain, ['-m', 'comment', '--comment', `masquerade LOCAL traffic for ${spn} external destinations`, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', KUBE_MARK_MASQ]);
    // ... and send it to every endpoint.
    appendRule(chain, ['-m', 'comment', '--comment', `route LOCAL traffic for ${spn} external destinations`, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', facts.clusterPolicyChain]);
  }
  if (facts.hasExternalEndpoints) appendRule(chain, ['-j', facts.externalPolicyChain]);
}

/** KUBE-FW: loadBalancerSourceRanges for VIP-like load balancers that keep the client's source. */
function writeFirewallChain(ctx: SyncContext, svc: ServicePortInfo, facts: ServicePortFacts): void {
  const chain = declareChain(ctx.nat, facts.firewallChain);
  const comment = `${facts.spn} loadbalancer IP`;
  let allowFromNode = false;
  for (const range of svc.loadBalancerSourceRanges) {
    appendRule(chain, ['-m', 'comment', '--comment', comment, '-s', range, '-j', facts.externalChain]);
    const cidr = parseCIDR(range);
    if (cidr && cidrContains(cidr, ctx.nodeIP)) allowFromNode = true;
  }
  if (allowFromNode) {
    // The VIP is often a local address of the node, so a request from the node to the VIP comes
    // back with the VIP as source without going to the load balancer: allow that too.
    for (const vip of svc.loadBalancerVIPs) appendRule(chain, ['-m', 'comment', '--comment', comment, '-s', vip, '-j', facts.externalChain]);
  }
  // A packet that reaches the end was not DNATed; KUBE-PROXY-FIREWALL drops it in filter.
  appendRule(chain, ['-m', 'comment', '--comment', `other traffic to ${facts.spn} will be dropped by KUBE-PROXY-FIREWALL`]);
}

/**
 * The KUBE-SEP chain name of every reachable endpoint, hashed once per endpoint (and, with
 * `reuse`, once for every node). The cluster (or local) list is usually the reachable list
 * itself, so names are looked up by position; otherwise by endpoint.
 */
class EndpointChainNames {
  #names: readonly string[] | undefined;
  #byEndpoint: Map<EndpointInfo, string> | undefined;
  readonly #protocol: ProxierServicePort['info']['protocol'];

  constructor(private readonly spn: string, private readonly reachable: readonly EndpointInfo[], sp: ProxierServicePort, private readonly reuse?: PortChainReuse) {
    this.#protocol = sp.info.protocol;
  }

  /** The names of the reachable endpoints' chains, in order (made on first use). */
  get names(): readonly string[] {
    this.#names ??= this.reachable.map((ep) => this.#name(ep));
    return this.#names;
  }

  #name(ep: EndpointInfo): string {
    const hash = (): string => endpointChainName(this.spn, this.#protocol, ep.endpoint);
    return this.reuse ? this.reuse.endpointChainName(ep.endpoint, hash) : hash();
  }

  /** The chain of `list[i]`. */
  nameAt(list: readonly EndpointInfo[], i: number): string {
    if (this.reuse) return this.#name(list[i]!);
    if (list === this.reachable) return this.names[i]!;
    this.#byEndpoint ??= new Map(this.reachable.map((ep, j) => [ep, this.names[j]!]));
    const name = this.#byEndpoint.get(list[i]!);
    if (name === undefined) throw new Error(`${this.spn}: endpoint ${list[i]!.endpoint} is used but not among the reachable endpoints`);
    return name;
  }
}

/** SVC / SVL: session-affinity checks first, then one rule per endpoint with probability 1/(remaining). */
function writeServiceToEndpointRules(
  ctx: SyncContext,
  chain: Chain,
  svc: ServicePortInfo,
  spn: string,
  endpoints: readonly EndpointInfo[],
  sepNames: EndpointChainNames,
): void {
  if (svc.sessionAffinityTimeoutSeconds > 0) {
    const seconds = String(svc.sessionAffinityTimeoutSeconds);
    for (let i = 0; i < endpoints.length; i++) {
      const ep = endpoints[i]!;
      const sep = sepNames.nameAt(endpoints, i);
      const args = ctx.largeClusterMode ? [] : ['-m', 'comment', '--comment', `${spn} -> ${ep.endpoint}`];
      args.push('-m', 'recent', '--name', sep, '--rcheck', '--seconds', seconds, '--reap', '-j', sep);
      appendRule(chain, args);
    }
  }
  const n = endpoints.length;
  for (let i = 0; i < n; i++) {
    const ep = endpoints[i]!;
    const sep = sepNames.nameAt(endpoints, i);
    const args = ctx.largeClusterMode ? [] : ['-m', 'comment', '--comment', `${spn} -> ${ep.endpoint}`];
    // Each rule but the last matches with probability 1/(rules left), so the choice is uniform.
    if (i < n - 1) args.push('-m', 'statistic', '--mode', 'random', '--probability', ctx.probabilities.get(n - i));
    args.push('-j', sep);
    appendRule(chain, args);
  }
}

/** KUBE-SEP: hairpin masquerade (a pod reaching itself through the service), then DNAT. */
function writeEndpointChain(ctx: SyncContext, svc: ServicePortInfo, facts: ServicePortFacts, ep: EndpointInfo, sep: string): Chain {
  const chain = declareChain(ctx.nat, sep);
  const hairpin = ctx.largeClusterMode ? [] : ['-m', 'comment', '--comment', facts.spn];
  hairpin.push('-s', ep.ip, '-j', KUBE_MARK_MASQ);
  appendRule(chain, hairpin);
  const dnat = ctx.largeClusterMode ? [] : ['-m', 'comment', '--comment', facts.spn];
  if (svc.sessionAffinityTimeoutSeconds > 0) dnat.push('-m', 'recent', '--name', sep, '--set');
  dnat.push('-m', facts.protocol, '-p', facts.protocol, '-j', 'DNAT', '--to-destination', ep.endpoint);
  appendRule(chain, dnat);
  return chain;
}
