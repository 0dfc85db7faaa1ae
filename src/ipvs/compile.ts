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
import type { ProxierServicePort, ProxierState, ServicePortInfo } from '../tracker/types.js';
import { type Family, isLoopback } from '../util/ip.js';
import { SourceRangeCheck } from '../tracker/source-ranges.js';
import type { IpvsSharedWork, PlanCache } from './shared-plans.js';
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
import { type PendingDests, type RealServerChoice, type RealServerOptions, selectEndpoints, selectRealServers } from './real-servers.js';
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
  destCount,
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
  /** Plans of service ports written for other nodes of the same cluster (shared-plans.ts): the same table, sooner. */
  shared?: IpvsSharedWork;
  /** Write only these service ports (the rest as always): for tracing one packet. */
  onlyServicePorts?: (info: ServicePortInfo) => boolean;
  /** With onlyServicePorts: per family, the positions in state.servicePorts of the ports it takes (the others are not looked at). */
  servicePortPositions?: ReadonlyMap<Family, readonly number[]>;
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
  /**
   * Compiled with only some service ports (onlyServicePorts): made to trace a packet to them,
   * once (a cluster-wide trace compiles each entry node so), not to answer many packets.
   */
  readonly partial?: boolean;
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
  const plans = options.shared?.forSync(state.family, scheduler, options.gracefulTermination ?? false);
  const sync = new IpvsSync(state, scheduler, options, plans);
  forEachPlan(state, options, sync, plans, (plan) => sync.apply(plan));
  return sync.finish(options.randomFully ?? false, options.onlyServicePorts !== undefined);
}

/** The figures of an IPVS table: its virtual servers and their real servers. */
export interface IpvsCounts {
  readonly virtualServers: number;
  readonly realServers: number;
}

export function countTable(compiled: IpvsCompiled): IpvsCounts {
  let realServers = 0;
  for (const vs of compiled.table.services) realServers += destCount(vs);
  return { virtualServers: compiled.table.services.length, realServers };
}

/**
 * How many virtual and real servers compileIpvs makes. With `options.shared` the ports' plans
 * are added up instead of put together into a table (a node of a big cluster then costs what it
 * changes), unless two service ports could claim one virtual server on this node: then the
 * table is made, as kube-proxy's later port wins it.
 */
export function countIpvs(state: ProxierState, options: IpvsCompileOptions = {}): IpvsCounts {
  if (options.shared === undefined) return countTable(compileIpvs(state, options));
  const scheduler = resolveScheduler(state, options.scheduler);
  const plans = options.shared.forSync(state.family, scheduler, options.gracefulTermination ?? false);
  const sync = new IpvsSync(state, scheduler, options, plans);
  const nodePortAddresses = sync.nodePortAddresses.length;
  const sums = options.onlyServicePorts === undefined
    ? plans.count(state.servicePorts, (sp, i) => plans.register(planOf(sp, i, sync, plans)))
    : sumPlans(state, options, sync, plans);
  if (plans.mayClaimTwice(sync.nodePortAddresses)) return countTable(compileIpvs(state, options));
  return {
    virtualServers: sums.servers + nodePortAddresses * sums.nodePorts,
    realServers: sums.realServers + nodePortAddresses * sums.nodePortRealServers,
  };
}

/** What plans add up to (node-port servers per node-port address). */
export interface PlanSums {
  servers: number;
  realServers: number;
  nodePorts: number;
  nodePortRealServers: number;
}

export function addPlan(sums: PlanSums, plan: PortPlan, sign: 1 | -1): void {
  sums.servers += sign * plan.servers;
  sums.realServers += sign * plan.realServers;
  if (plan.hasNodePort) {
    sums.nodePorts += sign;
    sums.nodePortRealServers += sign * plan.nodePortRealServers;
  }
}

function sumPlans(state: ProxierState, options: IpvsCompileOptions, sync: IpvsSync, plans: PlanCache): PlanSums {
  const sums: PlanSums = { servers: 0, realServers: 0, nodePorts: 0, nodePortRealServers: 0 };
  forEachPlan(state, options, sync, plans, (plan) => addPlan(sums, plans.register(plan), 1));
  return sums;
}

function planOf(sp: ProxierServicePort, index: number, sync: IpvsSync, plans: PlanCache | undefined): PortPlan {
  const allowFromNode = sync.allowsNode(sp.info);
  // The sync itself makes what the cache lacks: no pair of closures per port and node.
  return plans !== undefined ? plans.plan(sp, index, allowFromNode, sync) : sync.plan(sp, allowFromNode);
}

/** The plan of every service port compiled, in order (from other nodes' work when shared). */
function forEachPlan(state: ProxierState, options: IpvsCompileOptions, sync: IpvsSync, plans: PlanCache | undefined, use: (plan: PortPlan) => void): void {
  const only = options.onlyServicePorts;
  const ports = state.servicePorts;
  const positions = only !== undefined ? options.servicePortPositions?.get(state.family) : undefined;
  if (positions !== undefined) {
    // A big cluster's ports are scattered over the heap: visiting only these is what makes one
    // packet's compile cheap.
    for (const i of positions) use(planOf(ports[i]!, i, sync, plans));
    return;
  }
  for (let i = 0; i < ports.length; i++) {
    const sp = ports[i]!;
    if (only !== undefined && !only(sp.info)) continue;
    use(planOf(sp, i, sync, plans));
  }
}

function protocolWord(protocol: IpvsProtocol): 'tcp' | 'udp' | 'sctp' {
  return protocol === 'TCP' ? 'tcp' : protocol === 'UDP' ? 'udp' : 'sctp';
}

/**
 * What one service port adds to a node's IPVS state, worked out from the port alone (plus the
 * node's own IP being inside its loadBalancerSourceRanges or not), so that nodes where the port
 * looks the same share it: the ipset entries and virtual servers whose addresses are not the
 * node's, in the order syncProxyRules makes them. The node's part (which addresses go on
 * kube-ipvs0, the node-port virtual servers on its own addresses) is added when applied.
 */
export interface PortPlan {
  readonly spn: string;
  /** KUBE-LOOP-BACK entries of the port's local endpoints (hairpin): the node's own part. */
  readonly loopback: readonly string[];
  readonly ops: readonly PlanOp[];
  /** Virtual servers on service addresses, and their real servers. */
  readonly servers: number;
  readonly realServers: number;
  /** Whether there is a node port, and the real servers of each of its virtual servers. */
  readonly hasNodePort: boolean;
  readonly nodePortRealServers: number;
}

/** One empty list for every port without a local endpoint (nearly all of a node's ports). */
const NO_LOOPBACK: readonly string[] = Object.freeze([]);

/** Hairpin: a local endpoint reaching its own service is masqueraded (KUBE-LOOP-BACK). */
export function loopbackEntries(sp: ProxierServicePort): readonly string[] {
  const endpoints = sp.endpoints;
  let entries: string[] | undefined;
  for (let i = 0; i < endpoints.length; i++) {
    const ep = endpoints[i]!;
    if (ep.isLocal) (entries ??= []).push(ipPortIPEntry(ep.ip, protocolWord(sp.info.protocol), ep.port, ep.ip));
  }
  return entries ?? NO_LOOPBACK;
}

/** A virtual server on a service address; bound to kube-ipvs0 always, or unless the node owns the address. */
export interface ServerOp {
  readonly op: 'server';
  readonly vs: VirtualServer;
  readonly key: string;
  readonly bind: 'always' | 'unless-node-address';
}

type PlanOp =
  | { readonly op: 'entry'; readonly set: IPSetBaseName; readonly entry: string }
  | ServerOp
  | { readonly op: 'noNodeAccess'; readonly entry: NoNodeAccessEntry }
  /** The node port on every node-port address; without any, kube-proxy skips the rest of the port. */
  | { readonly op: 'nodePorts'; readonly nodePort: NodePortPlan };

interface NodePortPlan {
  readonly protocol: IpvsProtocol;
  readonly port: number;
  readonly externalPolicyLocal: boolean;
  readonly flags: number;
  readonly timeoutSeconds: number;
  readonly origin: VirtualServerOrigin;
  /** The real servers of every node-port virtual server of the port (one list, shared). */
  readonly dests: RealServer[] | PendingDests;
}

/** A port's real server selections by endpoint policy (IpvsSync.plan). */
interface Selections {
  cluster: RealServerChoice | undefined;
  local: RealServerChoice | undefined;
}

/**
 * A plan's ops as they are made, in one list reused for every plan, then copied out at their
 * exact length: plans are kept for other nodes (one per port of a big cluster), and a list grown
 * by push keeps room for 17 where a port has 2 or 3 ops.
 */
class OpList {
  readonly #items: PlanOp[] = [];
  #length = 0;

  push(op: PlanOp): void {
    this.#items[this.#length++] = op;
  }

  /** The ops pushed since the last take, as a list of their own. */
  take(): PlanOp[] {
    const ops = this.#items.slice(0, this.#length);
    this.#length = 0;
    return ops;
  }
}

function ipsetEntryOp(set: IPSetBaseName, entry: string): PlanOp {
  return { op: 'entry', set, entry };
}

/** One sync's working state, the fields syncProxyRules keeps in locals. */
class IpvsSync {
  readonly #state: ProxierState;
  readonly #scheduler: string;
  readonly #ipsets: Map<IPSetBaseName, IPSet>;
  readonly #services = new Map<string, VirtualServer>();
  readonly #bound = new Set<string>();
  /** nodeAddressSet: every local address except loopback and those on kube-ipvs0. */
  readonly #nodeAddresses: Set<string>;
  readonly #nodePortIPs: string[];
  /** kube-proxy's nodeIP for this family: the source-range check for the node's own traffic. */
  readonly #nodeIP: string;
  readonly #noNodeAccess: NoNodeAccessEntry[] = [];
  readonly #warnings: string[] = [];
  /** Virtual servers other nodes made alike (shared-plans.ts). */
  readonly #plans: PlanCache | undefined;

  constructor(state: ProxierState, scheduler: string, options: IpvsCompileOptions, plans?: PlanCache) {
    this.#state = state;
    this.#scheduler = scheduler;
    this.#plans = plans;
    this.#ipsets = createIPSets(state.family);
    this.#nodeAddresses = new Set(state.nodeIPs.filter((ip) => isNodeAddress(ip, state.family)));
    this.#nodeIP = state.nodeIPs[0] ?? (state.family === 4 ? '127.0.0.1' : '::1');
    this.#nodePortIPs = this.#nodePortTargets();
    this.#realServerOptions = { gracefulTermination: options.gracefulTermination ?? false };
  }

  /** What a PlanCache asks of a sync that has no plan for a port: loopback entries only, or a whole plan. */
  loopback(sp: ProxierServicePort): readonly string[] {
    return loopbackEntries(sp);
  }

  /** Whether the node's own IP is inside the port's loadBalancerSourceRanges (the only per-port fact of the node a plan depends on). */
  allowsNode(info: ServicePortInfo): boolean {
    return (this.#plans?.sourceRanges ?? this.#sourceRanges).allowsNode(info, this.#nodeIP);
  }

  readonly #sourceRanges = new SourceRangeCheck();

  /** The ops of the plan being made (plan() is never re-entered). */
  readonly #ops = new OpList();

  /** The body of syncProxyRules' loop over the service map, for one service port, as a plan. */
  /** `loopback`: the port's loopbackEntries, when the caller has them already. */
  plan(sp: ProxierServicePort, allowFromNode: boolean, loopback: readonly string[] = loopbackEntries(sp)): PortPlan {
    const ops = this.#ops;
    // The port's real server selections, made on first use: one per endpoint policy.
    const selections: Selections = { cluster: undefined, local: undefined };
    const info = sp.info;
    const protocol = info.protocol;
    const word = protocolWord(protocol);
    const entry = ipsetEntryOp;

    ops.push(entry(KUBE_CLUSTER_IP, ipPortEntry(info.clusterIP, word, info.port)));
    ops.push(this.#server(sp, selections, 'ClusterIP', info.clusterIP, info.port, info.internalPolicyLocal, 'always'));

    // Indexed loops: most ports have no external or load-balancer address, and a for-of over an
    // empty list still allocates its iterator until the function is optimised.
    for (let k = 0; k < info.externalIPs.length; k++) {
      const externalIP = info.externalIPs[k]!;
      ops.push(entry(info.externalPolicyLocal ? KUBE_EXTERNAL_IP_LOCAL : KUBE_EXTERNAL_IP, ipPortEntry(externalIP, word, info.port)));
      // An address the node already has must not be added to the dummy device.
      ops.push(this.#server(sp, selections, 'ExternalIP', externalIP, info.port, info.externalPolicyLocal, 'unless-node-address'));
    }

    for (let k = 0; k < info.loadBalancerVIPs.length; k++) {
      const ingress = info.loadBalancerVIPs[k]!;
      const lbEntry = ipPortEntry(ingress, word, info.port);
      ops.push(entry(KUBE_LOAD_BALANCER, lbEntry));
      if (info.externalPolicyLocal) ops.push(entry(KUBE_LOAD_BALANCER_LOCAL, lbEntry));
      if (info.loadBalancerSourceRanges.length > 0) {
        // LoadBalancer source ranges: the FW set, the allowed CIDRs, and the node's own access.
        ops.push(entry(KUBE_LOAD_BALANCER_FW, lbEntry));
        for (const range of info.loadBalancerSourceRanges) ops.push(entry(KUBE_LOAD_BALANCER_SOURCE_CIDR, ipPortNetEntry(ingress, word, info.port, range)));
        // Traffic from the LB's own backends is often routed straight back to this node: with the
        // node inside the ranges it may pass (source = VIP); otherwise the node is kept out.
        if (allowFromNode) ops.push(entry(KUBE_LOAD_BALANCER_SOURCE_IP, ipPortIPEntry(ingress, word, info.port, ingress)));
        else ops.push({ op: 'noNodeAccess', entry: { ip: ingress, protocol: word, port: info.port } });
      }
      ops.push(this.#server(sp, selections, 'LoadBalancer', ingress, info.port, info.externalPolicyLocal, 'unless-node-address'));
    }

    if (info.nodePort !== 0) {
      const { dests, scope } = this.#selection(sp, selections, info.externalPolicyLocal);
      ops.push({
        op: 'nodePorts',
        nodePort: {
          protocol,
          port: info.nodePort,
          externalPolicyLocal: info.externalPolicyLocal,
          flags: this.#flags(info),
          timeoutSeconds: info.sessionAffinityTimeoutSeconds,
          origin: { spn: info.spn, kind: 'NodePort', endpointScope: scope },
          dests,
        },
      });
    }

    if (info.healthCheckNodePort !== 0) ops.push(entry(KUBE_HEALTH_CHECK_NODE_PORT, String(info.healthCheckNodePort)));
    const made = ops.take();
    let servers = 0;
    let realServers = 0;
    let nodePort: NodePortPlan | undefined;
    for (let k = 0; k < made.length; k++) {
      const op = made[k]!;
      if (op.op === 'server') {
        servers++;
        realServers += destCount(op.vs);
      } else if (op.op === 'nodePorts') {
        nodePort = op.nodePort;
      }
    }
    return {
      spn: info.spn,
      loopback,
      ops: made,
      servers,
      realServers,
      hasNodePort: nodePort !== undefined,
      nodePortRealServers: nodePort?.dests.length ?? 0,
    };
  }

  /** The node's own addresses that get node-port virtual servers. */
  get nodePortAddresses(): readonly string[] {
    return this.#nodePortIPs;
  }

  /** Add a port's plan to this node. */
  apply(plan: PortPlan): void {
    if (plan.loopback.length > 0) {
      const loopback = this.#ipsets.get(KUBE_LOOP_BACK)!.entries;
      for (const entry of plan.loopback) loopback.add(entry);
    }
    const ops = plan.ops;
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!;
      switch (op.op) {
        case 'entry':
          this.#ipsets.get(op.set)!.entries.add(op.entry);
          break;
        case 'server':
          this.#addServer(op.vs, op.key, op.bind === 'always' || !this.#nodeAddresses.has(op.vs.address));
          break;
        case 'noNodeAccess':
          this.#noNodeAccess.push(op.entry);
          break;
        case 'nodePorts':
          // kube-proxy `continue`s here when it found no node address, skipping the health check port too.
          if (this.#nodePortIPs.length === 0) return;
          this.#nodePorts(op.nodePort);
          break;
      }
    }
  }

  #nodePorts(np: NodePortPlan): void {
    const entries = np.protocol === 'SCTP' ? this.#nodePortIPs.map((ip) => ipPortEntry(ip, 'sctp', np.port)) : [String(np.port)];
    const [plainSet, localSet] = nodePortSets(np.protocol);
    for (const entry of entries) this.#ipsets.get(plainSet)!.entries.add(entry);
    if (np.externalPolicyLocal) for (const entry of entries) this.#ipsets.get(localSet)!.entries.add(entry);
    const family = this.#state.family;
    for (const ip of this.#nodePortIPs) {
      // A compiled table is data that never changes (nodes share its servers): the node port's
      // servers on every address share one list of real servers.
      const dests = np.dests;
      const vs = virtualServer({
        protocol: np.protocol,
        address: ip,
        port: np.port,
        family,
        scheduler: this.#scheduler,
        flags: np.flags,
        timeoutSeconds: np.timeoutSeconds,
        netmaskPrefix: family === 4 ? 32 : 128,
        dests,
        origin: np.origin,
      });
      this.#addServer(vs, virtualServerKey(vs), false);
    }
  }

  finish(randomFully: boolean, partial: boolean): IpvsCompiled {
    const ipvsIPs = this.#ipsets.get(KUBE_IPVS_IPS)!;
    // forEach, not for-of: an iterator result per address (14k on a big node) before this is optimised.
    const entries = ipvsIPs.entries;
    this.#bound.forEach((ip) => entries.add(ip));
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
      ...(partial ? { partial } : {}),
    };
  }

  /**
   * The real servers of one of the port's virtual servers: the selection is the same for every
   * server with the same endpoint policy, so it is made once per port, and its servers share it
   * (a compiled table never changes: live services and the kernel model copy what they change).
   */
  #selection(sp: ProxierServicePort, selections: Selections, onlyNodeLocal: boolean): RealServerChoice {
    const cached = onlyNodeLocal ? selections.local : selections.cluster;
    if (cached !== undefined) return cached;
    const selection = selectRealServers(sp, onlyNodeLocal, sp.info.protocol, this.#state.family, this.#realServerOptions);
    if (onlyNodeLocal) selections.local = selection;
    else selections.cluster = selection;
    return selection;
  }

  /** The same options for every selection of the sync. */
  readonly #realServerOptions: RealServerOptions;

  #flags(info: ServicePortInfo): number {
    let flags = info.sessionAffinityTimeoutSeconds > 0 ? SVC_F_PERSISTENT : 0;
    // kube-proxy's FlagSourceHash (0x10) for mh: hash on the source port too (ipvsadm: mh-port).
    if (this.#scheduler === 'mh') flags |= SVC_F_SCHED2;
    return flags;
  }

  /** syncService + syncEndpoint for one service address of the port (the node's own ones: #nodePorts). */
  #server(sp: ProxierServicePort, selections: Selections, kind: VirtualServerKind, address: string, port: number, onlyNodeLocal: boolean, bind: 'always' | 'unless-node-address'): PlanOp {
    const info = sp.info;
    const family = this.#state.family;
    const selected = this.#plans !== undefined ? selectEndpoints(sp, onlyNodeLocal) : undefined;
    const kept = selected !== undefined ? this.#plans!.server(info, kind, address, onlyNodeLocal, selected) : undefined;
    // The op itself is shared: its bind follows from the kind, its key from the server.
    if (kept !== undefined) return kept;
    const selection = this.#selection(sp, selections, onlyNodeLocal);
    const vs = virtualServer({
      protocol: info.protocol,
      address,
      port,
      family,
      scheduler: this.#scheduler,
      flags: this.#flags(info),
      timeoutSeconds: info.sessionAffinityTimeoutSeconds,
      netmaskPrefix: family === 4 ? 32 : 128,
      dests: selection.dests,
      origin: { spn: info.spn, kind, endpointScope: selection.scope },
    });
    const op: ServerOp = { op: 'server', vs, key: virtualServerKey(vs), bind };
    if (selected !== undefined) this.#plans!.keepServer(info, onlyNodeLocal, selected, op);
    return op;
  }

  #addServer(vs: VirtualServer, key: string, bind: boolean): void {
    const existing = this.#services.get(key);
    if (existing?.origin !== undefined) {
      // The second service port rewrites the same kernel service: its real servers win.
      this.#warnings.push(`${vs.origin!.spn} (${vs.origin!.kind}) and ${existing.origin.spn} (${existing.origin.kind}) both claim ${key}: the IPVS service keeps ${vs.origin!.spn}'s real servers`);
      this.#services.delete(key);
    }
    this.#services.set(key, vs);
    if (bind) this.#bound.add(vs.address);
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
