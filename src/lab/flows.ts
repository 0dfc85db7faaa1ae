/**
 * The flows that put a node's rules to the test, generated per service port from what the rules
 * are meant to do (pure): from outside the cluster, from a pod, from the node itself, from one of
 * the service's own endpoints (hairpin), to each node port, external IP and load balancer IP,
 * from inside and outside a load balancer's source ranges; UDP as TCP; services without
 * endpoints among them (they REJECT). Each case says how many tries it needs for its verdict to
 * be a fair test (see triesFor) and which sources send them.
 */
import type { NodeTracer } from '../node/trace-context.js';
import type { Packet, TraceResult } from '../trace/types.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import { type Family, cidrContains, ipFamily, normalizeIP, parseCIDR } from '../util/ip.js';
import type { L4 } from './kernel-text.js';
import { addToAddress } from './plan.js';

export type CaseKind = 'external' | 'pod' | 'node' | 'hairpin' | 'nodeport' | 'localhost-nodeport' | 'external-ip' | 'load-balancer' | 'lb-inside-range' | 'lb-outside-range';

export interface FlowCase {
  /** "default/web:http external -> 10.96.100.20:80/tcp" */
  readonly name: string;
  readonly kind: CaseKind;
  readonly spn: string;
  readonly family: Family;
  readonly proto: L4;
  readonly dst: string;
  readonly dport: number;
  /** The packet leaves the node itself (nat OUTPUT). */
  readonly fromNode: boolean;
  /** One or more sources; each sends `triesPerSource` tries. */
  readonly sources: readonly string[];
  readonly triesPerSource: number;
  /** Traced tries per source (the first ones), of the first `tracedSources` sources. */
  readonly tracedPerSource: number;
  readonly tracedSources: number;
  /** Tries in order, one at a time: the service keeps ClientIP affinity. */
  readonly sequential: boolean;
  /** Whether every category the trace predicts must be seen (false when the tries cannot be enough, e.g. one fixed source under affinity). */
  readonly coverage: boolean;
  /** Connect timeout, ms (short where the trace predicts a DROP). */
  readonly timeoutMs: number;
  /** What kpsim predicts for a fresh client. */
  readonly predicted: TraceResult;
}

export interface FlowPlanOptions {
  /** Chance of missing a predicted endpoint in a case (sets the tries). Default 1e-6. */
  readonly missProbability?: number;
  /** Most tries of one case. Default 2000. */
  readonly maxTries?: number;
  /**
   * At most this many service ports per family: a larger cluster is sampled (every kind of
   * service port first, then evenly), to bound the time a check takes. Default: all of them.
   */
  readonly maxServicePorts?: number;
}

/** The flows of one node, every family, and the client addresses they need. */
export interface FlowPlan {
  readonly cases: readonly FlowCase[];
  /** Sources the client namespace must hold. */
  readonly clientSources: readonly string[];
  /** Service ports left out, with why. */
  readonly skipped: readonly string[];
  /** The endpoints the cases can reach (what a lab must give pods to). */
  readonly endpointIPs: ReadonlySet<string>;
}

/**
 * Traced tries per case (per source): each traced try's rule path is compared with kpsim's for
 * the endpoint it reached. nft prints traces a few thousand events a second, so a check traces a
 * few tries per case and measures the distribution on the rest.
 */
export const TRACED_PER_CASE = 6;

/** Pools of client addresses outside every cluster range (CGNAT and IPv6 documentation space). */
const EXTERNAL_POOL: Record<Family, string> = { 4: '100.64.0.0', 6: '2001:db8:c11e::' };

/**
 * Tries so that every category of chance >= pMin is seen except with chance `miss` (n categories:
 * n (1-pMin)^t <= miss), and at least 5 expected per category for the chi-square test.
 */
export function triesFor(pMin: number, categories: number, miss: number, max: number): number {
  if (categories <= 1 || pMin >= 1) return 3;
  const coverage = Math.ceil(Math.log(categories / miss) / -Math.log(1 - pMin));
  return Math.min(max, Math.max(coverage, Math.ceil(5 / pMin)));
}

/** What a prediction's categories are: endpoints, or the verdict when nothing is DNATed. */
export function predictedCategories(result: TraceResult): Map<string, number> {
  const categories = new Map<string, number>();
  for (const e of result.endpoints) categories.set(e, result.probabilities[e] ?? 0);
  const outcomes = result.outcomes ?? { [result.verdict]: 1 };
  for (const [verdict, p] of Object.entries(outcomes)) {
    if (verdict === 'DNAT') continue;
    const category = verdict === 'ACCEPT' || verdict === 'NONE' ? 'NONE' : verdict;
    categories.set(category, (categories.get(category) ?? 0) + (p ?? 0));
  }
  return categories;
}

interface Allocator {
  external(family: Family): string;
  pod(state: ProxierState): string | undefined;
  inRange(cidr: string): string | undefined;
  outsideRanges(family: Family, ranges: readonly string[]): string;
  readonly used: string[];
}

function allocator(taken: Set<string>): Allocator {
  const counters = new Map<string, number>();
  const take = (pool: string, start: number, step: number, accept: (ip: string) => boolean): string | undefined => {
    for (let n = counters.get(pool) ?? start; Math.abs(n - start) < 65_536; n += step) {
      const ip = addToAddress(parseCIDR(pool)?.network ?? pool.split('/')[0]!, n);
      if (ip === undefined || taken.has(ip) || !accept(ip)) continue;
      counters.set(pool, n + step);
      taken.add(ip);
      used.push(ip);
      return ip;
    }
    return undefined;
  };
  const used: string[] = [];
  return {
    used,
    external: (family) => take(EXTERNAL_POOL[family], 16, 1, () => true)!,
    pod(state) {
      const cidr = parseCIDR(state.localDetector?.cidrs[0] ?? '');
      if (cidr === undefined) return undefined;
      // From the top of the pod range: far from the node's podCIDR and the endpoints.
      const size = 2 ** Math.min(16, (cidr.family === 4 ? 32 : 128) - cidr.prefixLength);
      return take(cidr.text, size - 2, -1, (ip) => cidrContains(cidr, ip));
    },
    inRange(text) {
      const cidr = parseCIDR(text);
      if (cidr === undefined) return undefined;
      return take(cidr.text, cidr.prefixLength >= (cidr.family === 4 ? 31 : 127) ? 0 : 1, 1, (ip) => cidrContains(cidr, ip));
    },
    outsideRanges(family, ranges) {
      const cidrs = ranges.map((r) => parseCIDR(r)).filter((c) => c !== undefined);
      return take(EXTERNAL_POOL[family], 16, 1, (ip) => !cidrs.some((c) => cidrContains(c, ip)))!;
    },
  };
}

/**
 * The cases of every service port. `tracerFor(family)` is kpsim's tracer over the same rules the
 * kernel runs; `reserved` holds the addresses the lab already uses (node, endpoints).
 */
export function planFlows(states: readonly ProxierState[], tracerFor: (family: Family) => NodeTracer, reserved: readonly string[], opts: FlowPlanOptions = {}): FlowPlan {
  const miss = opts.missProbability ?? 1e-6;
  const max = opts.maxTries ?? 2000;
  const alloc = allocator(new Set(reserved));
  const cases: FlowCase[] = [];
  const skipped: string[] = [];
  const endpointIPs = new Set<string>();
  for (const state of states) {
    const tracer = tracerFor(state.family);
    const nodeIP = state.nodeIPs[0];
    const chosen = sampleServicePorts(state.servicePorts, opts.maxServicePorts ?? Infinity);
    if (chosen.length < state.servicePorts.length) skipped.push(`IPv${state.family}: ${chosen.length} of ${state.servicePorts.length} service ports checked (a sample: every kind, then evenly)`);
    for (const sp of chosen) {
      for (const e of sp.categorized.allReachableEndpoints) endpointIPs.add(e.ip);
      const proto = sp.info.protocol.toLowerCase() as L4;
      if (proto === 'sctp') {
        skipped.push(`${sp.info.spn}: SCTP is not probed (Node has no SCTP sockets)`);
        continue;
      }
      const affinity = sp.info.sessionAffinityTimeoutSeconds > 0;
      const add = (kind: CaseKind, dst: string, dport: number, source: (() => string | undefined) | string, fromNode = false): void => {
        const fixed = typeof source === 'string';
        const first = fixed ? source : source();
        if (first === undefined) return;
        const packet: Packet = { proto, src: first, dst, dport };
        const predicted = tracer.trace(packet, { fromNode });
        const categories = predictedCategories(predicted);
        const pMin = Math.min(...categories.values());
        const tries = triesFor(pMin, categories.size, miss, max);
        const spread = categories.size > 1;
        // Under ClientIP affinity only a source's first try is a fresh draw: the draws come from
        // many sources (two tries each, the second checks it sticks) unless the source is fixed.
        const sources = affinity && spread && !fixed ? [first, ...Array.from({ length: tries - 1 }, () => source())].filter((s): s is string => s !== undefined) : [first];
        const triesPerSource = affinity ? (fixed ? 3 : 2) : tries;
        const dropped = categories.has('DROP');
        cases.push({
          name: `${sp.info.spn} ${kind} ${first}${sources.length > 1 ? ` (+${sources.length - 1} more)` : ''} -> ${dst.includes(':') ? `[${dst}]` : dst}:${dport}/${proto}`,
          kind, spn: sp.info.spn, family: state.family, proto, dst, dport, fromNode, sources,
          triesPerSource,
          tracedPerSource: Math.min(triesPerSource, TRACED_PER_CASE),
          tracedSources: Math.max(1, Math.floor(TRACED_PER_CASE / triesPerSource)),
          sequential: affinity,
          coverage: !(affinity && fixed),
          timeoutMs: dropped ? 300 : 2000,
          predicted,
        });
      };
      const { clusterIP, port, nodePort } = sp.info;
      add('external', clusterIP, port, () => alloc.external(state.family));
      if (state.localDetector !== undefined) add('pod', clusterIP, port, () => alloc.pod(state));
      if (nodeIP !== undefined) add('node', clusterIP, port, nodeIP, true);
      // A pod on this node reaching its own service: DNATed back to itself through the bridge.
      const own = sp.categorized.allReachableEndpoints.find((e) => e.isLocal && !state.nodeIPs.includes(e.ip));
      if (own !== undefined) add('hairpin', clusterIP, port, own.ip);
      if (nodePort > 0 && nodeIP !== undefined) {
        add('nodeport', nodeIP, nodePort, () => alloc.external(state.family));
        if (state.family === 4 && state.config.localhostNodePorts) add('localhost-nodeport', '127.0.0.1', nodePort, '127.0.0.1', true);
      }
      const externalIP = sp.info.externalIPs[0];
      if (externalIP !== undefined) add('external-ip', externalIP, port, () => alloc.external(state.family));
      const vip = sp.info.loadBalancerVIPs[0];
      if (vip !== undefined) {
        const ranges = sp.info.loadBalancerSourceRanges;
        if (ranges.length === 0) {
          add('load-balancer', vip, port, () => alloc.external(state.family));
        } else {
          add('lb-inside-range', vip, port, () => alloc.inRange(ranges[0]!));
          add('lb-outside-range', vip, port, () => alloc.outsideRanges(state.family, ranges));
        }
      }
    }
  }
  return { cases, clientSources: alloc.used.filter((ip) => ipFamily(ip) !== undefined && normalizeIP(ip) === ip), skipped, endpointIPs };
}

/**
 * Up to `max` service ports: the first of each kind (protocol, node port, load balancer, source
 * ranges, external IPs, traffic policies, affinity, with or without endpoints), then others
 * evenly spaced; in their own order.
 */
export function sampleServicePorts(ports: readonly ProxierServicePort[], max: number): ProxierServicePort[] {
  if (ports.length <= max) return [...ports];
  const kind = (sp: ProxierServicePort): string => {
    const i = sp.info;
    return [i.protocol, i.nodePort > 0, i.loadBalancerVIPs.length > 0, i.loadBalancerSourceRanges.length > 0, i.externalIPs.length > 0,
      i.externalPolicyLocal, i.internalPolicyLocal, i.sessionAffinityTimeoutSeconds > 0, sp.categorized.allReachableEndpoints.length === 0].join(',');
  };
  const picked = new Set<number>();
  const kinds = new Set<string>();
  ports.forEach((sp, i) => {
    const k = kind(sp);
    if (!kinds.has(k) && picked.size < max) {
      kinds.add(k);
      picked.add(i);
    }
  });
  const step = ports.length / Math.max(1, max - picked.size);
  for (let x = 0; picked.size < max && x < ports.length; x += step) picked.add(Math.floor(x));
  return ports.filter((_, i) => picked.has(i));
}
