/**
 * A packet's path across the cluster: the nodes it can arrive at and each one's share, its trace
 * on each of them (the one-node contract), and where it is delivered: the endpoint, the node the
 * endpoint runs on, whether the packet crossed to another node, the source address the pod sees
 * and how the reply finds its way back.
 *
 * Where a packet enters:
 * - sent by a node (its source is a node's address): that node;
 * - to a node's address (a node port, a health check port, anything): that node;
 * - from a pod: the pod's node, which captures every service address (ClusterIP, external IP,
 *   load-balancer IP) in its own rules;
 * - from outside to a load-balancer IP: every node the cloud balancer sends to, in equal shares
 *   (it balances over nodes, not endpoints): every node, except those labelled
 *   node.kubernetes.io/exclude-from-external-load-balancers; with externalTrafficPolicy Local
 *   only the nodes whose health check node port answers 200 (health-check.ts), or, when none
 *   does, every node again (balancers fail open);
 * - from outside to an external IP: the cluster's network routes it to some node: every node in
 *   equal shares (externalTrafficPolicy Local decided by the health checks when the service has
 *   them);
 * - anything else from outside (a ClusterIP, a pod address): only through a route the user
 *   names (`via`).
 *
 * Pods reach each other by flat routing: a pod address is reachable from every node, and a pod
 * runs on its EndpointSlice's nodeName (else the node whose podCIDR holds it). A masqueraded
 * packet leaves the entry node with the address of the interface towards the pod: the node's
 * address for a pod on another node, the pod network's gateway (the first address of the node's
 * podCIDR: the bridge) for a pod on the same node.
 *
 * Each entry node's trace is compiled with only the service ports the packet can hit (the rest
 * of a node's rules cannot match it), and nodes whose view of those ports is the same object and
 * whose own addresses the packet does not involve share one trace.
 */
import { KpsimError } from '../errors.js';
import type { Node } from '../model/types.js';
import type { ModeCompileOptions, RulesMode } from '../node/mode-driver.js';
import { modeDriver } from '../node/modes.js';
import { VERDICT_ORDER, mostLikelyVerdict } from '../trace/tracer.js';
import type { Packet, TraceOptions, TraceResult, Verdict } from '../trace/types.js';
import type { ResolvedNode } from '../tracker/proxier-state.js';
import type { ProxierState, ServicePortInfo } from '../tracker/types.js';
import { SourceRangeCheck } from '../tracker/source-ranges.js';
import { type Family, ipFamily, joinHostPort, nextAddress, parseCIDR, splitHostPort } from '../util/ip.js';
import type { ClusterView } from './cluster-view.js';
import { type HealthCheckAnswer, type HealthChecks, hasHealthCheck } from './health-check.js';

/** The label that keeps a node out of every load balancer (the service controller honours it). */
export const EXCLUDE_FROM_LOAD_BALANCERS_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** A fan-out beyond this many deliveries (entry nodes x endpoints) is refused: name entry nodes with `via`. */
export const MAX_DELIVERIES = 1_000_000;

export interface Client {
  readonly kind: 'outside' | 'pod' | 'node';
  readonly address: string;
  /** The pod's node, or the node itself. */
  readonly node?: string;
}

export interface EntryNode {
  readonly node: string;
  /** The chance that the packet arrives at this node. */
  readonly share: number;
  /** Why it arrives here. */
  readonly reason: string;
  /** The node's answer on the service's health check node port, when a balancer asks it. */
  readonly healthCheck?: HealthCheckAnswer;
  /** The packet's trace on this node. */
  readonly trace: TraceResult;
}

export interface ReplyPath {
  /** The nodes the reply crosses, from the endpoint's node on. */
  readonly nodes: readonly string[];
  /** Whether the reply crosses the entry node, whose conntrack entry undoes the DNAT (and the masquerade). */
  readonly throughEntryConntrack: boolean;
  /** The source address the client sees on the reply. */
  readonly sourceSeenByClient: string;
  /** Whether that is the address the client sent to, so that its connection takes the reply. */
  readonly reachesClient: boolean;
}

export interface Delivery {
  readonly entryNode: string;
  readonly endpoint: string;
  /** The node the endpoint runs on; null when no EndpointSlice or podCIDR tells. */
  readonly node: string | null;
  /** The packet went from the entry node to another node. */
  readonly crossNode: boolean;
  readonly masquerade: boolean;
  /** The source address the pod sees: the client's, or the entry node's after masquerading. */
  readonly sourceSeenByPod: string;
  /** The chance of this entry node and this endpoint. */
  readonly probability: number;
  readonly reply: ReplyPath;
}

/**
 * The one-node contract's fields (verdict, endpoints, probabilities, masquerade) over every
 * entry node, weighted by its share, plus the entry nodes and the deliveries.
 */
export interface ClusterTraceResult extends Pick<TraceResult, 'verdict' | 'endpoints' | 'probabilities' | 'masquerade' | 'masqueradeByEndpoint' | 'outcomes'> {
  // outcomes: when entry nodes or branches end differently, each verdict's total probability.
  readonly client: Client;
  readonly nodes: readonly EntryNode[];
  readonly deliveries: readonly Delivery[];
  /** How the entry nodes were chosen, and what was left out. */
  readonly notes: readonly string[];
}

export interface ClusterTraceOptions {
  readonly mode: RulesMode;
  readonly compile?: ModeCompileOptions;
  /** The nodes the packet enters at (equal shares), instead of working them out. */
  readonly via?: readonly string[];
  /** Passed to each node's trace (seed, semantics, ...); not sampleOnly: the cluster's answer weighs every outcome. */
  readonly trace?: Omit<TraceOptions, 'fromNode' | 'sampleOnly'>;
}

/** Trace a packet across the cluster of `view`. */
export function traceCluster(view: ClusterView, packet: Packet, opts: ClusterTraceOptions): ClusterTraceResult {
  const family = ipFamily(packet.dst);
  if (family === undefined || ipFamily(packet.src) !== family) {
    throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `source ${packet.src} and destination ${packet.dst} must be addresses of one family`, { path: 'packet' });
  }
  if (view.nodes.length === 0) throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', 'a cluster-wide trace needs the cluster\'s Node objects, and the input has none', { path: 'packet' });
  const client = classifyClient(view, packet.src);
  const { relevant, positions } = relevantPorts(view, family, packet);
  const entries = entryNodes(view, packet, client, relevant, view.healthChecks, opts.via);
  const tracer = new EntryTracer(view, packet, family, relevant, positions, opts);
  const nodes: EntryNode[] = entries.nodes.map((e) => ({ ...e, trace: tracer.trace(e.node) }));

  let deliveryCount = 0;
  for (const n of nodes) deliveryCount += Math.max(1, n.trace.endpoints.length);
  if (deliveryCount > MAX_DELIVERIES) {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `the packet fans out to ${nodes.length} entry nodes and ${deliveryCount} deliveries, more than kpsim lists (${MAX_DELIVERIES}): name the entry nodes with --via NODE`);
  }
  const deliveries = nodes.flatMap((n) => deliveriesOf(view, packet, family, client, n));
  return { ...aggregate(nodes), client, nodes, deliveries, notes: entries.notes };
}

function classifyClient(view: ClusterView, src: string): Client {
  const node = view.nodeWithAddress(src);
  if (node !== undefined) return { kind: 'node', address: src, node: node.name };
  const podNode = view.podNode(src);
  if (podNode !== undefined) return { kind: 'pod', address: src, node: podNode };
  return { kind: 'outside', address: src };
}

interface RelevantPorts {
  readonly relevant: ReadonlySet<ServicePortInfo>;
  /** Their positions in the family's servicePorts (and every node's state of the family), in order. */
  readonly positions: readonly number[];
}

/**
 * The service ports of the packet's family that a packet to dst:dport can hit on any node: among
 * those with that address or node port (the view's index), not every port of the cluster.
 */
function relevantPorts(view: ClusterView, family: Family, packet: Packet): RelevantPorts {
  const proto = packet.proto.toUpperCase();
  const relevant = new Set<ServicePortInfo>();
  const positions: number[] = [];
  const servicePorts = view.familyPorts(family).servicePorts;
  for (const i of view.positionsFor(family, packet.dst, packet.dport)) {
    const info = servicePorts[i]!.info;
    const sameProto = info.protocol === proto;
    const atAddress = info.port === packet.dport && (info.clusterIP === packet.dst || info.externalIPs.includes(packet.dst) || info.loadBalancerVIPs.includes(packet.dst));
    const atNodePort = info.nodePort === packet.dport;
    const atHealthCheck = info.healthCheckNodePort === packet.dport && packet.proto === 'tcp';
    if ((sameProto && (atAddress || atNodePort)) || atHealthCheck) {
      relevant.add(info);
      positions.push(i);
    }
  }
  return { relevant, positions };
}

/** The nodes load balancers may send to, per view (the same for every trace of its cluster). */
const balancerCandidates = new WeakMap<ClusterView, readonly Node[]>();

function candidatesOf(view: ClusterView): readonly Node[] {
  let candidates = balancerCandidates.get(view);
  if (candidates === undefined) {
    candidates = view.nodes.filter((n) => !(EXCLUDE_FROM_LOAD_BALANCERS_LABEL in n.labels));
    balancerCandidates.set(view, candidates);
  }
  return candidates;
}

interface EntryChoice {
  readonly nodes: readonly Omit<EntryNode, 'trace'>[];
  readonly notes: readonly string[];
}

function entryNodes(view: ClusterView, packet: Packet, client: Client, relevant: ReadonlySet<ServicePortInfo>, healthChecks: HealthChecks, via: readonly string[] | undefined): EntryChoice {
  if (via !== undefined && via.length > 0) {
    for (const name of via) {
      if (view.nodeObject(name) === undefined) throw new KpsimError('KPSIM_ERR_CONFIG_UNKNOWN_NODE', `--via: node ${JSON.stringify(name)} is not in the cluster`);
    }
    const names = [...new Set(via)];
    return { nodes: names.map((node) => ({ node, share: 1 / names.length, reason: 'named with --via' })), notes: [`entry nodes named with --via, in equal shares`] };
  }
  if (client.kind === 'node') return single(client.node!, 'the node sends it itself');
  const dstNode = view.nodeWithAddress(packet.dst);
  if (dstNode !== undefined) return single(dstNode.name, `sent to the node's address ${packet.dst}`);
  if (client.kind === 'pod') return single(client.node!, `the pod's node: it captures every service address in its own rules`);

  const vip = [...relevant].find((info) => info.loadBalancerVIPs.includes(packet.dst) && info.port === packet.dport);
  const external = [...relevant].find((info) => info.externalIPs.includes(packet.dst) && info.port === packet.dport);
  const target = vip ?? external;
  if (target === undefined) {
    const what = [...relevant].some((info) => info.clusterIP === packet.dst) ? 'a ClusterIP' : view.podNode(packet.dst) !== undefined ? 'a pod address' : 'an address no node or load balancer owns';
    throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', `${packet.dst} is ${what}: an outside client reaches it only through a route to some node; name that node with --via NODE`);
  }
  const svc = target.service;
  const notes: string[] = [];
  const candidates = candidatesOf(view);
  const excluded = view.nodes.length - candidates.length;
  const how = vip !== undefined ? 'the load balancer sends to' : 'the network routes the external IP to';
  if (excluded > 0) notes.push(`${excluded} node${excluded === 1 ? '' : 's'} labelled ${EXCLUDE_FROM_LOAD_BALANCERS_LABEL} left out`);
  let chosen: readonly Node[] = candidates;
  if (hasHealthCheck(svc) && target.externalPolicyLocal) {
    const healthy = candidates.filter((n) => healthChecks.status(svc, n.name) === 200);
    const port = svc.healthCheckNodePort;
    if (healthy.length > 0) {
      chosen = healthy;
      notes.push(`externalTrafficPolicy Local: ${how} the ${healthy.length} of ${candidates.length} nodes whose health check node port ${port} answers 200 (a ready endpoint on the node)`);
    } else {
      notes.push(`externalTrafficPolicy Local: no node's health check node port ${port} answers 200; balancers then send to every node (they fail open)`);
    }
  } else {
    notes.push(`${how} every node in equal shares${target.externalPolicyLocal ? ' (externalTrafficPolicy Local, but no health check node port: nodes without a local endpoint drop it)' : ''}`);
  }
  const reason = vip !== undefined ? `load balancer ${packet.dst}` : `external IP ${packet.dst} routed to the cluster`;
  const asked = hasHealthCheck(svc) && target.externalPolicyLocal;
  return {
    nodes: chosen.map((n) => {
      const healthCheck = asked ? healthChecks.answer(svc, n.name) : undefined;
      return { node: n.name, share: 1 / chosen.length, reason, ...(healthCheck !== undefined ? { healthCheck } : {}) };
    }),
    notes,
  };
}

function single(node: string, reason: string): EntryChoice {
  return { nodes: [{ node, share: 1, reason }], notes: [] };
}

/**
 * Traces on entry nodes, compiled with only the relevant ports of the packet's family (the
 * tracer of a node looks only at its table of that family). Nodes whose view of those ports
 * is the same (the same objects: no local endpoint of them, the same zone) share one trace,
 * unless the packet's source or destination is one of the node's own addresses, the node's IP
 * decides a source-range rule, or the local detector is the node's own pod CIDR.
 */
class EntryTracer {
  readonly #traces = new Map<string, TraceResult>();
  readonly #ids = new WeakMap<object, number>();
  readonly #sourceRanges = new SourceRangeCheck();
  readonly #only: (info: ServicePortInfo) => boolean;
  /** Where the relevant ports are in each node's state of the family: compiles look only there. */
  readonly #positions: ReadonlyMap<Family, readonly number[]>;

  constructor(
    private readonly view: ClusterView,
    private readonly packet: Packet,
    private readonly family: Family,
    relevant: ReadonlySet<ServicePortInfo>,
    positions: readonly number[],
    private readonly opts: ClusterTraceOptions,
  ) {
    this.#positions = new Map([[family, positions]]);
    // Compiles ask this of every port of every entry node: rule out the ports on another port
    // number with a number compare before the set lookup.
    const dport = packet.dport;
    this.#only = (info) => (info.port === dport || info.nodePort === dport || info.healthCheckNodePort === dport) && relevant.has(info);
  }

  trace(name: string): TraceResult {
    const node = this.view.resolve(name);
    const states = this.view.statesOf(node, { only: this.#only, family: this.family });
    const key = this.#classOf(node, states);
    let result = key === undefined ? undefined : this.#traces.get(key);
    if (result === undefined) {
      const driver = modeDriver(this.opts.mode);
      const shared = this.view.sharedWork(this.opts.mode, this.opts.compile ?? {});
      const compiled = driver.compile(node, states, { ...this.opts.compile, ...(shared !== undefined ? { shared } : {}), onlyServicePorts: this.#only, servicePortPositions: this.#positions });
      // A plain copy: a tracer's result works its hops out on demand, keeping the tracer (and
      // the node's rules) alive; thousands of entry nodes must not each keep theirs.
      result = { ...driver.tracer(compiled).trace(this.packet, this.opts.trace ?? {}) };
      if (key !== undefined) this.#traces.set(key, result);
    }
    return result;
  }

  /** The key of nodes with the same trace, or undefined for a node that is its own. */
  #classOf(node: ResolvedNode, states: readonly ProxierState[]): string | undefined {
    const ownAddress = (ip: string): boolean => node.ips.includes(ip) || ip.startsWith('127.') || ip === '::1';
    if (ownAddress(this.packet.src) || ownAddress(this.packet.dst)) return undefined;
    if (this.view.cluster.config.detectLocalMode === 'NodeCIDR') return undefined;
    const state = states.find((s) => s.family === this.family);
    if (state === undefined) return undefined;
    const nodeIP = state.nodeIPs[0] ?? (this.family === 4 ? '127.0.0.1' : '::1');
    const parts: (number | string)[] = [];
    for (const position of this.#positions.get(this.family)!) {
      const sp = state.servicePorts[position]!;
      parts.push(this.#idOf(sp), this.#sourceRanges.allowsNode(sp.info, nodeIP) ? 1 : 0);
    }
    return parts.join(',');
  }

  #nextId = 0;

  #idOf(obj: object): number {
    let id = this.#ids.get(obj);
    if (id === undefined) this.#ids.set(obj, (id = this.#nextId++));
    return id;
  }
}

function deliveriesOf(view: ClusterView, packet: Packet, family: Family, client: Client, entry: EntryNode): Delivery[] {
  const t = entry.trace;
  const out: Delivery[] = [];
  for (const endpoint of t.endpoints) {
    const ip = splitHostPort(endpoint)?.ip ?? endpoint;
    out.push(delivery(view, packet, family, client, entry, endpoint, view.podNode(ip) ?? null, t.masqueradeByEndpoint[endpoint] ?? false, entry.share * (t.probabilities[endpoint] ?? 0)));
  }
  // No rule took it and it is for a pod: flat routing delivers it as it is.
  if (t.verdict === 'NONE' && t.endpoints.length === 0) {
    const podNode = view.podNode(packet.dst);
    if (podNode !== undefined) out.push(delivery(view, packet, family, client, entry, joinHostPort(packet.dst, packet.dport), podNode, false, entry.share));
  }
  return out;
}

function delivery(view: ClusterView, packet: Packet, family: Family, client: Client, entry: EntryNode, endpoint: string, node: string | null, masquerade: boolean, probability: number): Delivery {
  const crossNode = node !== entry.node;
  const sourceSeenByPod = masquerade ? masqueradeSource(view, entry.node, family, crossNode) : packet.src;
  return { entryNode: entry.node, endpoint, node, crossNode, masquerade, sourceSeenByPod, probability, reply: replyPath(packet, client, entry.node, endpoint, node, masquerade) };
}

/**
 * The address MASQUERADE gives the packet: the outgoing interface's. Towards another node that is
 * the node's own address; towards a pod on the same node, the pod network's gateway on the node.
 */
function masqueradeSource(view: ClusterView, nodeName: string, family: Family, crossNode: boolean): string {
  const node = view.resolve(nodeName);
  const nodeIP = node.ips.find((ip) => ipFamily(ip) === family) ?? (family === 4 ? '127.0.0.1' : '::1');
  if (crossNode) return nodeIP;
  const cidr = node.podCIDRs.map((c) => parseCIDR(c)).find((c) => c?.family === family);
  return cidr !== undefined ? nextAddress(cidr.network) : nodeIP;
}

/**
 * The reply goes from the pod to the source it saw. It crosses the entry node when that source
 * is the entry node's (masquerade), when the pod runs there, or when the client does (a pod or
 * the node itself); there conntrack restores the service address as the reply's source. Else
 * it goes straight from the pod's node to an outside client, which sees the pod's address and
 * drops the reply.
 */
function replyPath(packet: Packet, client: Client, entry: string, endpoint: string, podNode: string | null, masquerade: boolean): ReplyPath {
  const viaEntry = masquerade || podNode === entry || client.node === entry;
  const from = podNode ?? entry;
  const nodes = viaEntry && from !== entry ? [from, entry] : [from];
  const restored = joinHostPort(packet.dst, packet.dport);
  return {
    nodes,
    throughEntryConntrack: viaEntry,
    sourceSeenByClient: viaEntry ? restored : endpoint,
    reachesClient: viaEntry || endpoint === restored,
  };
}

function aggregate(nodes: readonly EntryNode[]): Pick<ClusterTraceResult, 'verdict' | 'endpoints' | 'probabilities' | 'masquerade' | 'masqueradeByEndpoint' | 'outcomes'> {
  const byVerdict: Partial<Record<Verdict, number>> = {};
  const probabilities = new Map<string, number>();
  const masqueradeByEndpoint = new Map<string, boolean>();
  let masquerade = false;
  for (const { share, trace } of nodes) {
    const outcomes = trace.outcomes ?? { [trace.verdict]: 1 };
    for (const [verdict, p] of Object.entries(outcomes) as [Verdict, number][]) byVerdict[verdict] = (byVerdict[verdict] ?? 0) + share * p;
    masquerade ||= trace.masquerade;
    for (const endpoint of trace.endpoints) {
      probabilities.set(endpoint, (probabilities.get(endpoint) ?? 0) + share * (trace.probabilities[endpoint] ?? 0));
      masqueradeByEndpoint.set(endpoint, (masqueradeByEndpoint.get(endpoint) ?? false) || (trace.masqueradeByEndpoint[endpoint] ?? false));
    }
  }
  const verdict = mostLikelyVerdict(byVerdict);
  const endpoints = [...probabilities.keys()].sort(compareEndpoints);
  const kinds = Object.keys(byVerdict).length;
  return {
    verdict,
    endpoints,
    probabilities: Object.fromEntries(endpoints.map((e) => [e, probabilities.get(e)!])),
    masquerade,
    masqueradeByEndpoint: Object.fromEntries(endpoints.map((e) => [e, masqueradeByEndpoint.get(e)!])),
    ...(kinds > 1 ? { outcomes: Object.fromEntries(VERDICT_ORDER.filter((v) => byVerdict[v] !== undefined).map((v) => [v, byVerdict[v]!])) } : {}),
  };
}

/** The one-node contract sorts endpoints by their text. */
function compareEndpoints(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
