/**
 * Tracing the first packet of a connection through a node in kube-proxy's IPVS mode. The answer
 * has the iptables tracer's JSON contract (types.ts), plus a few fields of its own.
 *
 * Where IPVS sits among the netfilter hooks (net/netfilter/ipvs/ip_vs_core.c):
 *
 *   arriving:  nat PREROUTING → routing (VIPs are local: kube-ipvs0) → filter INPUT
 *              → IPVS at LOCAL_IN (after filter) schedules and DNATs → LOCAL_OUT again
 *              (filter OUTPUT) → nat POSTROUTING (masquerade)
 *   from node: nat OUTPUT → IPVS at LOCAL_OUT (right after nat) → filter OUTPUT → nat POSTROUTING
 *
 * After IPVS the connection's nat destination step is already done, so nat PREROUTING/OUTPUT do
 * not run again. The iptables parts are walked with the iptables tracer over the IPVS-mode
 * ruleset, the compiled ipsets standing in for `-m set`; the hops between are IPVS's: the ipsets
 * the destination is in, the virtual server, and the real servers.
 *
 * When the virtual server has no destination available (no dests, or all weight 0), the kernel
 * calls ip_vs_leave: it sends ICMP port unreachable (ICMPv6 for IPv6) and drops the packet, for
 * TCP as for UDP, so the client sees what an iptables REJECT would give it: the verdict is REJECT.
 *
 * `probabilities` are scheduler shares (ipvs/shares.ts says exactly what they mean per
 * scheduler; `probabilityBasis` names the basis). `sample` is the concrete pick for this packet
 * from the compiled state: sh and mh hash its real source address (and port with -port flags),
 * the others take the scheduler's next pick.
 */
import { KpsimError } from '../errors.js';
import type { IpvsCompiled } from '../ipvs/compile.js';
import { IPSET_DEFINITIONS, type IPSet, ipsetContains } from '../ipvs/ipsets.js';
import { type ShareBasis, pickFor, schedulerShares } from '../ipvs/shares.js';
import { type VirtualServer, destAddr, isPersistent, schedulerFlagNames, serviceAddr } from '../ipvs/table.js';
import type { Chain, Ruleset, Table, TableName } from '../iptables/types.js';
import { ipFamily, isLoopback, joinHostPort, normalizeIP } from '../util/ip.js';
import { type CreateTracerOptions, createTracer, sampleOnlyResult, seedOfSampleOnly, type Tracer } from './tracer.js';
import type { Hop, Packet, TraceOptions, TraceResult, TraceSample, Verdict } from './types.js';

export interface IpvsTraceResult extends TraceResult {
  /** The virtual server the packet hit, as ipvsadm lists it ("TCP  10.96.0.10:53 rr"). */
  readonly virtualServer?: string;
  readonly scheduler?: string;
  /** What `probabilities` are shares of: 'cycle', 'sampled', 'buckets' or 'slots'. */
  readonly probabilityBasis?: ShareBasis;
  /** The sets kube-proxy put the destination in (KUBE-CLUSTER-IP, KUBE-NODE-PORT-TCP, ...). */
  readonly ipsets?: readonly string[];
}

/** The iptables tracers for one compiled node, made once. */
interface NodeTracers {
  /** The whole ruleset: packets IPVS does not take. */
  readonly full: Tracer;
  /** A packet from the node up to IPVS: nat OUTPUT only. */
  readonly beforeFromNode: Tracer;
  /** After IPVS for an arriving packet: filter OUTPUT, nat POSTROUTING. */
  readonly afterArriving: Tracer;
  /** After IPVS for the node's own packet: filter OUTPUT, nat POSTROUTING, filter INPUT if local. */
  readonly afterFromNode: Tracer;
  readonly localAddresses: ReadonlySet<string>;
  readonly masqueradeMark: number;
  /** Virtual servers by protocol, address and port (ip_vs_svc_table). */
  readonly services: ReadonlyMap<string, VirtualServer>;
}

function serviceKey(protocol: string, address: string, port: number): string {
  return `${protocol.toUpperCase()} ${address} ${port}`;
}

const tracersByCompiled = new WeakMap<IpvsCompiled, NodeTracers>();

export function traceIpvs(compiled: IpvsCompiled, packet: Packet, opts: TraceOptions = {}): IpvsTraceResult {
  if (opts.sampleOnly) {
    // The scheduler's pick comes with every outcome worked out (the iptables parts around IPVS
    // are walked per real server): the answer is cut down to it.
    const { sampleOnly: _, ...allOptions } = opts;
    const full = traceIpvs(compiled, packet, { ...allOptions, seed: seedOfSampleOnly(opts) });
    const { virtualServer, scheduler, ipsets } = full;
    return {
      ...sampleOnlyResult(full.sample!, full.origin ?? 'PREROUTING'),
      ...(virtualServer !== undefined ? { virtualServer } : {}),
      ...(scheduler !== undefined ? { scheduler } : {}),
      ...(ipsets !== undefined ? { ipsets } : {}),
    };
  }
  const tracers = nodeTracers(compiled);
  const src = normalizeIP(String(packet.src));
  const dst = normalizeIP(String(packet.dst));
  if (src === undefined || dst === undefined || ipFamily(dst) !== compiled.family) {
    // Let the iptables tracer word the error (bad address, family mismatch).
    if (src === undefined || dst === undefined) return tracers.full.trace(packet, opts);
    throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${ipFamily(dst)} packet, but this IPVS table is IPv${compiled.family}`, { path: 'packet.dst' });
  }
  const fromNode = opts.fromNode ?? (isLoopback(src) || tracers.localAddresses.has(src));
  const vs = tracers.services.get(serviceKey(packet.proto, dst, packet.dport));
  if (vs === undefined) return tracers.full.trace(packet, { ...opts, fromNode });

  const before = (fromNode ? tracers.beforeFromNode : tracers.full).trace(packet, { ...opts, fromNode });
  if (before.verdict === 'DROP' || before.verdict === 'REJECT') return before;
  // The only MARK rule before IPVS is KUBE-MARK-MASQ's: a hop in that chain means the mark is set.
  const marked = before.hops.some((hop) => hop.chain === 'KUBE-MARK-MASQ');
  const mark = ((opts.mark ?? 0) | (marked ? tracers.masqueradeMark : 0)) >>> 0;

  const ipsets = setsHolding(compiled, packet, src, dst);
  const setHops: Hop[] = ipsets.map((set) => ({ table: 'ipset', chain: set.name, rule: memberText(set, dst, packet), target: 'match', depth: 0 }));
  const label = virtualServerLabel(vs);
  const vsHop: Hop = { table: 'ipvs', chain: fromNode ? 'LOCAL_OUT' : 'LOCAL_IN', rule: virtualServerRule(vs), target: label, depth: 0 };
  const common = { virtualServer: label, scheduler: vs.scheduler, ipsets: ipsets.map((s) => s.name), origin: before.origin ?? (fromNode ? 'OUTPUT' as const : 'PREROUTING' as const) };

  const shares = schedulerShares(vs);
  const endpoints = Object.keys(shares.shares).sort();
  if (endpoints.length === 0) {
    const leave: Hop = { ...vsHop, target: 'REJECT', notes: ['no destination available: ip_vs_leave sends ICMP port unreachable and drops the packet'] };
    const hops = [...before.hops, ...setHops, leave];
    return {
      verdict: 'REJECT', endpoints: [], probabilities: {}, masquerade: false, masqueradeByEndpoint: {}, hops,
      sample: { verdict: 'REJECT', masquerade: false, hops: hops.map(withoutProbability) },
      probabilityBasis: shares.basis, ...common,
    };
  }

  const after = fromNode ? tracers.afterFromNode : tracers.afterArriving;
  const afterTrace = new Map<string, TraceResult>();
  for (const addr of endpoints) {
    const dest = vs.dests.find((d) => destAddr(d) === addr)!;
    afterTrace.set(addr, after.trace({ proto: packet.proto, src, dst: dest.ip, dport: dest.port, ...(packet.sport !== undefined ? { sport: packet.sport } : {}) }, { ...opts, fromNode: true, mark }));
  }

  const probabilities: Record<string, number> = {};
  const masqueradeByEndpoint: Record<string, boolean> = {};
  const hops: Hop[] = [...before.hops, ...setHops, vsHop];
  for (const addr of endpoints) {
    const share = shares.shares[addr]!;
    const dest = vs.dests.find((d) => destAddr(d) === addr)!;
    const rest = afterTrace.get(addr)!;
    probabilities[addr] = share;
    masqueradeByEndpoint[addr] = rest.verdict !== 'DROP' && rest.verdict !== 'REJECT' && rest.masquerade;
    hops.push(realServerHop(label, addr, dest.weight, share));
    hops.push(...rest.hops.map((hop) => ({ ...hop, probability: share * (hop.probability ?? 1) })));
  }

  const sample = sampleOf(vs, packet, src, [...before.hops, ...setHops, vsHop], label, afterTrace);
  const dropped = [...afterTrace.values()].every((t) => t.verdict === 'DROP' || t.verdict === 'REJECT');
  const verdict: Verdict = dropped ? afterTrace.get(endpoints[0]!)!.verdict : 'DNAT';
  const result: IpvsTraceResult = {
    verdict,
    endpoints,
    probabilities,
    masquerade: Object.values(masqueradeByEndpoint).some(Boolean),
    masqueradeByEndpoint,
    hops,
    sample,
    probabilityBasis: shares.basis,
    ...common,
    ...(shares.refused > 0 ? { outcomes: { DNAT: 1 - shares.refused, REJECT: shares.refused } } : {}),
  };
  return result;
}

/** The virtual server for (protocol, address, port), as ip_vs_service_find looks it up. */
export function findVirtualServer(compiled: IpvsCompiled, proto: string, dst: string, dport: number): VirtualServer | undefined {
  return nodeTracers(compiled).services.get(serviceKey(proto, dst, dport));
}

/** "TCP  10.96.0.10:53 rr", with flags and persistence as ipvsadm -Ln shows them. */
export function virtualServerLabel(vs: VirtualServer): string {
  const flags = schedulerFlagNames(vs);
  const persistent = isPersistent(vs) ? ` persistent ${vs.timeoutSeconds}` : '';
  return `${vs.protocol.padEnd(4)} ${serviceAddr(vs)} ${vs.scheduler}${flags.length > 0 ? ` (${flags.join(',')})` : ''}${persistent}`;
}

function virtualServerRule(vs: VirtualServer): string {
  const option = vs.protocol === 'TCP' ? '-t' : vs.protocol === 'UDP' ? '-u' : '--sctp-service';
  const flags = schedulerFlagNames(vs);
  return `-A ${option} ${serviceAddr(vs)} -s ${vs.scheduler}${isPersistent(vs) ? ` -p ${vs.timeoutSeconds}` : ''}${flags.length > 0 ? ` -b ${flags.join(',')}` : ''}`;
}

function realServerHop(label: string, addr: string, weight: number, share: number): Hop {
  return { table: 'ipvs', chain: label, rule: `-> ${addr} Masq ${weight}`, target: addr, probability: share, depth: 1 };
}

function withoutProbability(hop: Hop): Hop {
  const { probability: _p, ...rest } = hop;
  return rest;
}

function sampleOf(
  vs: VirtualServer, packet: Packet, src: string, beforeHops: readonly Hop[], label: string, afterTrace: ReadonlyMap<string, TraceResult>,
): TraceSample {
  const chosen = pickFor(vs, joinHostPort(src, packet.sport ?? 0));
  const rest = chosen === undefined ? undefined : afterTrace.get(chosen);
  if (chosen === undefined || rest === undefined) {
    const hops = [...beforeHops, { table: 'ipvs', chain: label, rule: 'no destination for this client', target: 'REJECT', depth: 1 }];
    return { verdict: 'REJECT', masquerade: false, hops: hops.map(withoutProbability) };
  }
  const dest = vs.dests.find((d) => destAddr(d) === chosen)!;
  const dropped = rest.verdict === 'DROP' || rest.verdict === 'REJECT';
  const hops = [...beforeHops, realServerHop(label, chosen, dest.weight, 1), ...rest.hops].map(withoutProbability);
  return dropped
    ? { verdict: rest.verdict, masquerade: false, hops }
    : { endpoint: chosen, verdict: 'DNAT', masquerade: rest.masquerade, hops };
}

/** The member of the set the destination matched, as `ipset list` shows it. */
function memberText(set: IPSet, dst: string, packet: Packet): string {
  if (set.type === 'hash:ip') return dst;
  if (set.type === 'bitmap:port') return String(packet.dport);
  return `${dst},${packet.proto.toLowerCase()}:${packet.dport}`;
}

/** The sets that classify the destination (address and port as the IPVS-mode rules match them). */
function setsHolding(compiled: IpvsCompiled, packet: Packet, src: string, dst: string): IPSet[] {
  const proto = packet.proto.toLowerCase();
  const tuple = { src, dst, protocol: proto, dport: packet.dport, ...(packet.sport !== undefined ? { sport: packet.sport } : {}) };
  const held: IPSet[] = [];
  for (const def of IPSET_DEFINITIONS) {
    const set = compiled.ipsets.get(def.baseName)!;
    if (def.type === 'hash:ip,port' && ipsetContains(set, ['dst', 'dst'], tuple)) held.push(set);
    else if (def.type === 'hash:ip' && ipsetContains(set, ['dst'], tuple)) held.push(set);
    // bitmap:port sets hold bare ports: only the node-port set of the packet's protocol counts.
    else if (def.type === 'bitmap:port' && def.baseName.endsWith(`-${proto.toUpperCase()}`) && ipsetContains(set, ['dst'], tuple)) held.push(set);
  }
  return held;
}

function nodeTracers(compiled: IpvsCompiled): NodeTracers {
  const cached = tracersByCompiled.get(compiled);
  if (cached) return cached;
  const state = compiled.state;
  const localAddresses = [...state.localAddresses, ...compiled.boundAddresses];
  const ipsets: Record<string, readonly string[]> = {};
  for (const set of compiled.ipsets.values()) ipsets[set.name] = [...set.entries];
  const masqueradeMark = Number.parseInt(state.masqueradeMark, 16);
  const context = { localAddresses, ipsets, masqueradeMark };
  const ruleset = compiled.ruleset;
  // A node compiled for one packet is traced once: keeping its walks for later packets (a class
  // table and a decision log per tracer, two tracers per node) would be work and memory for
  // nothing, paid on every entry node of a cluster-wide trace.
  const options: CreateTracerOptions = compiled.partial === true ? { cache: false } : {};
  // Each tracer made when first needed: a packet from outside never needs the node's own two
  // (a cluster-wide trace makes these for every entry node, and uses each once).
  let full: Tracer | undefined;
  let beforeFromNode: Tracer | undefined;
  let afterArriving: Tracer | undefined;
  let afterFromNode: Tracer | undefined;
  const tracers: NodeTracers = {
    get full() {
      return (full ??= createTracer(ruleset, context, options));
    },
    get beforeFromNode() {
      return (beforeFromNode ??= createTracer(withEmptyChains(ruleset, [['filter', 'OUTPUT'], ['nat', 'POSTROUTING'], ['filter', 'INPUT']]), context, options));
    },
    get afterArriving() {
      return (afterArriving ??= createTracer(withEmptyChains(ruleset, [['nat', 'PREROUTING'], ['nat', 'OUTPUT'], ['filter', 'INPUT']]), context, options));
    },
    get afterFromNode() {
      return (afterFromNode ??= createTracer(withEmptyChains(ruleset, [['nat', 'PREROUTING'], ['nat', 'OUTPUT']]), context, options));
    },
    localAddresses: new Set(localAddresses),
    masqueradeMark,
    services: new Map(compiled.table.services.filter((vs) => vs.fwmark === 0).map((vs) => [serviceKey(vs.protocol, vs.address, vs.port), vs])),
  };
  tracersByCompiled.set(compiled, tracers);
  return tracers;
}

/** The ruleset with some built-in chains present but empty (the hook passes, nothing matches). */
function withEmptyChains(ruleset: Ruleset, empty: readonly [TableName, string][]): Ruleset {
  const tables = new Map<TableName, Table>();
  for (const [name, table] of ruleset.tables) {
    const chains = new Map<string, Chain>();
    for (const [chainName, chain] of table.chains) {
      const cleared = empty.some(([t, c]) => t === name && c === chainName);
      chains.set(chainName, cleared ? { name: chainName, policy: chain.policy ?? 'ACCEPT', rules: [] } : chain);
    }
    tables.set(name, { name, chains });
  }
  return { family: ruleset.family, tables };
}
