/**
 * ProxierState → what kube-proxy's IPVS mode builds on one node for one IP family
 * (syncProxyRules in pkg/proxy/ipvs/proxier.go), in one full sync:
 *
 * - one virtual server per ClusterIP:port, per externalIP:port, per LoadBalancer ingress IP:port
 *   and, for a node port, per node address, each with the configured scheduler (default rr),
 *   persistence for ClientIP affinity and the mh-port flag for mh;
 * - their real servers (real-servers.ts): the endpoints the categorisation selects, weight 1,
 *   Masq (no weight-0 "draining" dest: that needs a table from before the sync, see
 *   `gracefulTermination`);
 * - the addresses bound to the dummy interface kube-ipvs0;
 * - the ipsets (ipsets.ts) and the iptables rules that match them (iptables-rules.ts).
 *
 * kube-proxy walks its service map in Go map order; kpsim walks the service ports in the
 * ProxierState's order (by name), which is also the order virtual servers are created in.
 */
import { nodePortAddresses, nodePortIPs } from '../iptables/node-port-addresses.js';
import type { Ruleset } from '../iptables/types.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { type Family, cidrContains, isLoopback, parseCIDR } from '../util/ip.js';
import {
  type IPSet,
  type IPSetBaseName,
  KUBE_CLUSTER_IP,
  KUBE_EXTERNAL_IP,
  KUBE_EXTERNAL_IP_LOCAL,
  KUBE_HEALTH_CHECK_NODE_PORT,
  KUBE_IPVS_IPS,
  KUBE_LOAD_BALANCER,
  KUBE_LOAD_BALANCER_FW,
  KUBE_LOAD_BALANCER_LOCAL,
  KUBE_LOAD_BALANCER_SOURCE_CIDR,
  KUBE_LOAD_BALANCER_SOURCE_IP,
  KUBE_LOOP_BACK,
  KUBE_NODE_PORT_LOCAL_SCTP,
  KUBE_NODE_PORT_LOCAL_TCP,
  KUBE_NODE_PORT_LOCAL_UDP,
  KUBE_NODE_PORT_SCTP,
  KUBE_NODE_PORT_TCP,
  KUBE_NODE_PORT_UDP,
  createIPSets,
  ipPortEntry,
  ipPortIPEntry,
  ipPortNetEntry,
} from './ipsets.js';
import { type NoNodeAccessEntry, buildIpvsIptables } from './iptables-rules.js';
import { type RealServerSelection, copyDests, realServersFor } from './real-servers.js';
import { getScheduler } from './schedulers/registry.js';
import {
  type IpvsProtocol,
  type IpvsTable,
  type RealServer,
  SVC_F_PERSISTENT,
  SVC_F_SCHED2,
  type VirtualServer,
  type VirtualServerKind,
  type VirtualServerOrigin,
  virtualServer,
  virtualServerKey,
} from './table.js';

/** kube-proxy's default scheduler when the configuration names none. */
export const DEFAULT_SCHEDULER = 'rr';

export interface IpvsCompileOptions {
  /** Instead of the configuration's ipvs.scheduler. */
  scheduler?: string;
  /** Add --random-fully to the MASQUERADE rule (kube-proxy does when iptables supports it). Default false. */
  randomFully?: boolean;
  /**
   * Model the table some time into a rollout: terminating endpoints of TCP services that
   * kube-proxy would still be draining appear as weight-0 dests (real-servers.ts). Default
   * false: what one sync from the objects writes, which has none.
   */
  gracefulTermination?: boolean;
}

export interface IpvsCompiled {
  readonly family: Family;
  readonly state: ProxierState;
  readonly scheduler: string;
  readonly table: IpvsTable;
  /** Every set kube-proxy creates, in its ipsetInfo order. */
  readonly ipsets: ReadonlyMap<IPSetBaseName, IPSet>;
  readonly ruleset: Ruleset;
  /** Addresses on kube-ipvs0 (the KUBE-IPVS-IPS set), in the order they were bound. */
  readonly boundAddresses: readonly string[];
  /** The node's own addresses (all local ones except loopback and kube-ipvs0's). */
  readonly nodeAddresses: readonly string[];
  /** The addresses that got NodePort virtual servers. */
  readonly nodePortAddresses: readonly string[];
  /** Things kube-proxy would log as errors and carry on. */
  readonly warnings: readonly string[];
}

/** The scheduler to use; KPSIM_ERR_IPVS_UNKNOWN_SCHEDULER (naming the valid ones) for any other. */
export function resolveScheduler(state: ProxierState, override?: string): string {
  const name = override ?? (state.config.ipvsScheduler || DEFAULT_SCHEDULER);
  const origin = state.config.origin;
  const where = override !== undefined
    ? { path: '--scheduler' }
    : { ...(origin ? { file: origin.file, object: origin.object } : {}), path: 'ipvs.scheduler' };
  return getScheduler(name, where).name;
}

export function compileIpvs(state: ProxierState, options: IpvsCompileOptions = {}): IpvsCompiled {
  const scheduler = resolveScheduler(state, options.scheduler);
  const sync = new IpvsSync(state, scheduler, options);
  for (const sp of state.servicePorts) sync.servicePort(sp);
  return sync.finish(options.randomFully ?? false);
}

function protocolWord(protocol: IpvsProtocol): 'tcp' | 'udp' | 'sctp' {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : 'sctp';
}

/** One sync's working state, the fields syncProxyRules keeps in locals. */
class IpvsSync {
  readonly #state: ProxierState;
  readonly #scheduler: string;
  readonly #options: IpvsCompileOptions;
  readonly #ipsets: Map<IPSetBaseName, IPSet>;
  readonly #services = new Map<string, VirtualServer>();
  readonly #bound = new Set<string>();
  /** nodeAddressSet: every local address except loopback and those on kube-ipvs0. */
  readonly #nodeAddresses: Set<string>;
  readonly #nodePortIPs: string[];
  /** kube-proxy's nodeIP for this family: the source-range check for the node's own traffic. */
  readonly #nodeIP: string;
  readonly #noNodeAccess: NoNodeAccessEntry[] = [];
  /** This service port's real-server selections, by onlyNodeLocal (see #selection). */
  readonly #selections = new Map<boolean, RealServerSelection>();
  readonly #warnings: string[] = [];

  constructor(state: ProxierState, scheduler: string, options: IpvsCompileOptions) {
    this.#state = state;
    this.#scheduler = scheduler;
    this.#options = options;
    this.#ipsets = createIPSets(state.family);
    this.#nodeAddresses = new Set(state.nodeIPs.filter((ip) => isNodeAddress(ip, state.family)));
    this.#nodeIP = state.nodeIPs[0] ?? (state.family === 4 ? '127.0.0.1' : '::1');
    this.#nodePortIPs = this.#nodePortTargets();
  }

  /** The body of syncProxyRules' loop over the service map, for one service port. */
  servicePort(sp: ProxierServicePort): void {
    this.#selections.clear();
    const info = sp.info;
    const protocol = info.protocol;
    const word = protocolWord(protocol);

    // Hairpin: a local endpoint reaching its own service is masqueraded (KUBE-LOOP-BACK).
    for (const ep of sp.endpoints) {
      if (ep.isLocal) this.#add(KUBE_LOOP_BACK, ipPortIPEntry(ep.ip, word, ep.port, ep.ip));
    }

    this.#add(KUBE_CLUSTER_IP, ipPortEntry(info.clusterIP, word, info.port));
    this.#virtualServer(sp, 'ClusterIP', info.clusterIP, info.port, info.internalPolicyLocal, true);

    for (const externalIP of info.externalIPs) {
      this.#add(info.externalPolicyLocal ? KUBE_EXTERNAL_IP_LOCAL : KUBE_EXTERNAL_IP, ipPortEntry(externalIP, word, info.port));
      // An address the node already has must not be added to the dummy device.
      this.#virtualServer(sp, 'ExternalIP', externalIP, info.port, info.externalPolicyLocal, !this.#nodeAddresses.has(externalIP));
    }

    for (const ingress of info.loadBalancerVIPs) {
      const entry = ipPortEntry(ingress, word, info.port);
      this.#add(KUBE_LOAD_BALANCER, entry);
      if (info.externalPolicyLocal) this.#add(KUBE_LOAD_BALANCER_LOCAL, entry);
      if (info.loadBalancerSourceRanges.length > 0) this.#sourceRanges(ingress, word, info.port, info.loadBalancerSourceRanges);
      this.#virtualServer(sp, 'LoadBalancer', ingress, info.port, info.externalPolicyLocal, !this.#nodeAddresses.has(ingress));
    }

    if (info.nodePort !== 0) {
      // kube-proxy `continue`s here when it found no node address, skipping the health check port too.
      if (this.#nodePortIPs.length === 0) return;
      const entries = protocol === 'SCTP'
        ? this.#nodePortIPs.map((ip) => ipPortEntry(ip, 'sctp', info.nodePort))
        : [String(info.nodePort)];
      const [plainSet, localSet] = nodePortSets(protocol);
      for (const entry of entries) this.#add(plainSet, entry);
      if (info.externalPolicyLocal) for (const entry of entries) this.#add(localSet, entry);
      for (const ip of this.#nodePortIPs) this.#virtualServer(sp, 'NodePort', ip, info.nodePort, info.externalPolicyLocal, false);
    }

    if (info.healthCheckNodePort !== 0) this.#add(KUBE_HEALTH_CHECK_NODE_PORT, String(info.healthCheckNodePort));
  }

  finish(randomFully: boolean): IpvsCompiled {
    const ipvsIPs = this.#ipsets.get(KUBE_IPVS_IPS)!;
    for (const ip of this.#bound) ipvsIPs.entries.add(ip);
    const state = this.#state;
    const ruleset = buildIpvsIptables({
      family: state.family,
      ipsets: this.#ipsets,
      masqueradeMark: state.masqueradeMark,
      masqueradeAll: state.config.masqueradeAll,
      localDetectorCIDR: state.localDetector?.cidrs[0],
      randomFully,
      noNodeAccess: this.#noNodeAccess,
    });
    return {
      family: state.family,
      state,
      scheduler: this.#scheduler,
      table: { services: [...this.#services.values()] },
      ipsets: this.#ipsets,
      ruleset,
      boundAddresses: [...this.#bound],
      nodeAddresses: [...this.#nodeAddresses],
      nodePortAddresses: this.#nodePortIPs,
      warnings: this.#warnings,
    };
  }

  #add(set: IPSetBaseName, entry: string): void {
    this.#ipsets.get(set)!.entries.add(entry);
  }

  /**
   * The real servers of one of the port's virtual servers: the selection is the same for every
   * server with the same endpoint policy, so it is made once per port and copied.
   */
  #selection(sp: ProxierServicePort, onlyNodeLocal: boolean): { dests: RealServer[]; scope: VirtualServerOrigin['endpointScope'] } {
    const cached = this.#selections.get(onlyNodeLocal);
    if (cached !== undefined) return { dests: copyDests(cached.dests), scope: cached.scope };
    const selection = realServersFor(sp, onlyNodeLocal, sp.info.protocol, this.#state.family, { gracefulTermination: this.#options.gracefulTermination ?? false });
    this.#selections.set(onlyNodeLocal, selection);
    return selection;
  }

  /** syncService + syncEndpoint for one address of the service port. */
  #virtualServer(sp: ProxierServicePort, kind: VirtualServerKind, address: string, port: number, onlyNodeLocal: boolean, bind: boolean): void {
    const info = sp.info;
    const persistent = info.sessionAffinityTimeoutSeconds > 0;
    let flags = persistent ? SVC_F_PERSISTENT : 0;
    // kube-proxy's FlagSourceHash (0x10) for mh: hash on the source port too (ipvsadm: mh-port).
    if (this.#scheduler === 'mh') flags |= SVC_F_SCHED2;
    const family = this.#state.family;
    const selection = this.#selection(sp, onlyNodeLocal);
    const vs = virtualServer({
      protocol: info.protocol,
      address,
      port,
      family,
      scheduler: this.#scheduler,
      flags,
      timeoutSeconds: persistent ? info.sessionAffinityTimeoutSeconds : 0,
      netmaskPrefix: family === 4 ? 32 : 128,
      dests: selection.dests,
      origin: { spn: info.spn, kind, endpointScope: selection.scope },
    });
    const key = virtualServerKey(vs);
    const existing = this.#services.get(key);
    if (existing?.origin !== undefined) {
      // The second service port rewrites the same kernel service: its real servers win.
      this.#warnings.push(`${info.spn} (${kind}) and ${existing.origin.spn} (${existing.origin.kind}) both claim ${key}: the IPVS service keeps ${info.spn}'s real servers`);
      this.#services.delete(key);
    }
    this.#services.set(key, vs);
    if (bind) this.#bound.add(address);
  }

  /** LoadBalancer source ranges: the FW set, the allowed CIDRs, and the node's own access. */
  #sourceRanges(ingress: string, word: 'tcp' | 'udp' | 'sctp', port: number, ranges: readonly string[]): void {
    this.#add(KUBE_LOAD_BALANCER_FW, ipPortEntry(ingress, word, port));
    let allowFromNode = false;
    for (const range of ranges) {
      this.#add(KUBE_LOAD_BALANCER_SOURCE_CIDR, ipPortNetEntry(ingress, word, port, range));
      const cidr = parseCIDR(range);
      if (cidr && cidrContains(cidr, this.#nodeIP)) allowFromNode = true;
    }
    // Traffic from the LB's own backends is often routed straight back to this node: with the
    // node inside the ranges it may pass (source = VIP); otherwise the node is kept out.
    if (allowFromNode) this.#add(KUBE_LOAD_BALANCER_SOURCE_IP, ipPortIPEntry(ingress, word, port, ingress));
    else this.#noNodeAccess.push({ ip: ingress, protocol: word, port });
  }

  /**
   * The addresses NodePort virtual servers go on. With nodePortAddresses matching everything:
   * every node address. Otherwise kube-proxy's GetNodeIPs looks at every interface address,
   * kube-ipvs0's included (so a CIDR covering service VIPs gives them node ports too), and drops
   * loopback. kube-proxy computes this only when some service has a node port.
   */
  #nodePortTargets(): string[] {
    const state = this.#state;
    if (!state.servicePorts.some((sp) => sp.info.nodePort !== 0)) return [];
    const npa = nodePortAddresses(state.config.nodePortAddresses, state.family, state.nodeIPs[0]);
    if (npa.matchAll) return [...this.#nodeAddresses];
    const interfaceAddresses = [...state.localAddresses, ...this.#expectedBoundAddresses()];
    return nodePortIPs(npa, interfaceAddresses).filter((ip) => !isLoopback(ip));
  }

  /** What kube-ipvs0 holds in steady state: every ClusterIP, and external/LB IPs the node does not own. */
  #expectedBoundAddresses(): string[] {
    const bound: string[] = [];
    for (const { info } of this.#state.servicePorts) {
      bound.push(info.clusterIP);
      for (const ip of [...info.externalIPs, ...info.loadBalancerVIPs]) if (!this.#nodeAddresses.has(ip)) bound.push(ip);
    }
    return bound;
  }
}

/** isValidForSet in netlink_linux.go: right family, not loopback, not IPv6 link-local. */
function isNodeAddress(ip: string, family: Family): boolean {
  if (isLoopback(ip)) return false;
  if (family === 6 && /^fe[89ab]/i.test(ip)) return false;
  return true;
}

function nodePortSets(protocol: IpvsProtocol): [IPSetBaseName, IPSetBaseName] {
  switch (protocol) {
    case 'TCP':
      return [KUBE_NODE_PORT_TCP, KUBE_NODE_PORT_LOCAL_TCP];
    case 'UDP':
      return [KUBE_NODE_PORT_UDP, KUBE_NODE_PORT_LOCAL_UDP];
    case 'SCTP':
      return [KUBE_NODE_PORT_SCTP, KUBE_NODE_PORT_LOCAL_SCTP];
  }
}
