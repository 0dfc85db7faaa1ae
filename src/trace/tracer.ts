/**
 * The packet tracer: where does the first packet of a connection go through a node's iptables
 * rules? `createTracer` prepares a node's rulesets once (chains are compiled and indexed on
 * first use and kept), so that many packets can be traced quickly; `tracePacket` is the
 * one-shot form.
 *
 * Two answers per packet: every outcome, with each endpoint's probability summed over the
 * statistic branches that lead to it; and, with a seed, one outcome drawn the way the kernel
 * draws (repeatable for a given seed). See walk.ts for the hooks and chain semantics.
 */
import { KpsimError } from '../errors.js';
import { ipFamily, normalizeIP, type Family } from '../util/ip.js';
import type { Ruleset } from '../iptables/types.js';
import { AddressCache, LocalAddresses } from './addresses.js';
import { Ipset } from './ipsets.js';
import { traceKubeProxyTest } from './kube-proxy-test.js';
import { PreparedRuleset } from './prepared-ruleset.js';
import { RecentLists } from './recent.js';
import { createSeededRandom } from './seeded-random.js';
import type { Hop, Packet, TraceContext, TraceOptions, TraceResult, TraceSample, Verdict } from './types.js';
import { walk, type PathOutcome, type WalkSetup } from './walk.js';
import { PathState, type Flow } from './walk-state.js';

export const DEFAULT_MASQUERADE_MARK = 0x4000;

export interface Tracer {
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
  /** Compile and index every chain now, rather than on first use. */
  warm(): void;
}

export interface CreateTracerOptions {
  /** false: scan every chain rule by rule (the baseline the index is measured against). */
  readonly useIndex?: boolean;
}

export function createTracer(
  rulesets: Ruleset | readonly Ruleset[], context: TraceContext, options: CreateTracerOptions = {},
): Tracer {
  const list: readonly Ruleset[] = isRuleset(rulesets) ? [rulesets] : rulesets;
  const masqueradeMark = context.masqueradeMark ?? DEFAULT_MASQUERADE_MARK;
  const ipsets = new Map(Object.entries(context.ipsets ?? {}).map(([name, members]) => [name, new Ipset(name, members)]));
  const programs = new Map<Family, PreparedRuleset>();
  for (const ruleset of list) {
    if (programs.has(ruleset.family)) throw new Error(`createTracer: two IPv${ruleset.family} rulesets`);
    programs.set(ruleset.family, new PreparedRuleset(ruleset, ipsets, masqueradeMark, options.useIndex ?? true));
  }
  const local = new LocalAddresses(context.localAddresses);
  const addresses = new AddressCache();
  const contextRecent = new RecentLists(context.recent);

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    trace: (packet, opts = {}) => {
      const checked = checkPacket(packet);
      const program = programs.get(checked.family);
      if (!program) {
        throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${checked.family} packet, but there is no IPv${checked.family} ruleset`, { path: 'packet.dst' });
      }
      if (opts.semantics === 'kube-proxy-test') {
        return kubeProxyTestResult(program.ruleset, packet, context.localAddresses);
      }
      const flow = makeFlow(checked, opts, local, addresses);
      const setup: WalkSetup = {
        program, flow, local, addresses, masqueradeMark,
        recentLists: opts.recent ? new RecentLists(opts.recent) : contextRecent,
      };
      const start = (): PathState => startState(checked, flow, opts, local, addresses);
      const all = walk(setup, start());
      const result = summarize(all.paths, all.hops, flow.fromNode ? 'OUTPUT' : 'PREROUTING');
      if (all.truncated) {
        (result.hops as Hop[]).push({ table: '', chain: '', rule: '', target: '', notes: [`more than ${all.paths.length} branches: the rest were not walked`] });
      }
      if (opts.seed === undefined) return result;
      const one = walk({ ...setup, draw: createSeededRandom(opts.seed) }, start());
      return { ...result, sample: sampleOf(one.paths[0]!, one.hops) };
    },
  };
}

/** Trace one packet through a node's rulesets (IPv4 and/or IPv6). */
export function tracePacket(
  rulesets: Ruleset | readonly Ruleset[], packet: Packet, opts: TraceContext & TraceOptions,
): TraceResult {
  return createTracer(rulesets, opts).trace(packet, opts);
}

function isRuleset(value: Ruleset | readonly Ruleset[]): value is Ruleset {
  return !Array.isArray(value);
}

// ---------------------------------------------------------------- the packet

interface CheckedPacket {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
  readonly sport: number | undefined;
  readonly family: Family;
}

function checkPacket(packet: Packet): CheckedPacket {
  const bad = (path: string, detail: string): KpsimError => new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', detail, { path });
  const proto = String(packet.proto).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw bad('packet.proto', `${packet.proto} is not tcp, udp or sctp`);
  const src = normalizeIP(String(packet.src));
  if (src === undefined) throw bad('packet.src', `${packet.src} is not an IP address`);
  const dst = normalizeIP(String(packet.dst));
  if (dst === undefined) throw bad('packet.dst', `${packet.dst} is not an IP address`);
  const family = ipFamily(dst)!;
  if (ipFamily(src) !== family) throw bad('packet.src', `${packet.src} and ${packet.dst} are of different families`);
  if (!isPort(packet.dport, false)) throw bad('packet.dport', `${packet.dport} is not a port (1-65535)`);
  if (packet.sport !== undefined && !isPort(packet.sport, false)) throw bad('packet.sport', `${packet.sport} is not a port (1-65535)`);
  return { proto, src, dst, dport: packet.dport, sport: packet.sport, family };
}

function isPort(value: unknown, allowZero: boolean): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value <= 65535 && (allowZero ? value >= 0 : value >= 1);
}

function makeFlow(packet: CheckedPacket, opts: TraceOptions, local: LocalAddresses, addresses: AddressCache): Flow {
  const srcWords = addresses.words(packet.src);
  return {
    proto: packet.proto,
    src: packet.src,
    srcWords,
    srcType: local.addressType(packet.src, srcWords),
    sport: packet.sport,
    inInterface: opts.inInterface,
    outInterface: opts.outInterface,
    ctstates: new Set((opts.ctstate ?? ['NEW']).map((s) => s.toUpperCase())),
    fromNode: opts.fromNode ?? local.isLocal(packet.src, srcWords),
  };
}

function startState(packet: CheckedPacket, flow: Flow, opts: TraceOptions, local: LocalAddresses, addresses: AddressCache): PathState {
  const dstWords = addresses.words(packet.dst);
  return new PathState({
    dst: packet.dst,
    dstWords,
    dstType: local.addressType(packet.dst, dstWords),
    dport: packet.dport,
    mark: (opts.mark ?? 0) >>> 0,
    stage: flow.fromNode ? 'nat OUTPUT' : 'nat PREROUTING',
  });
}

// ---------------------------------------------------------------- the answer

/** When branches end differently and tie, the first of these wins. */
const VERDICT_ORDER: readonly Verdict[] = ['DNAT', 'REJECT', 'DROP', 'ACCEPT', 'NONE'];

function summarize(paths: readonly PathOutcome[], hops: Hop[], origin: 'PREROUTING' | 'OUTPUT'): TraceResult {
  const byVerdict = new Map<Verdict, number>();
  const probabilities: Record<string, number> = {};
  const masqueradeByEndpoint: Record<string, boolean> = {};
  let masquerade = false;
  for (const path of paths) {
    byVerdict.set(path.verdict, (byVerdict.get(path.verdict) ?? 0) + path.probability);
    masquerade ||= path.masquerade;
    if (path.endpoint === undefined || path.verdict !== 'DNAT') continue;
    probabilities[path.endpoint] = (probabilities[path.endpoint] ?? 0) + path.probability;
    masqueradeByEndpoint[path.endpoint] = (masqueradeByEndpoint[path.endpoint] ?? false) || path.masquerade;
  }
  let verdict: Verdict = 'NONE';
  let best = -1;
  for (const candidate of VERDICT_ORDER) {
    const p = byVerdict.get(candidate);
    if (p !== undefined && p > best) {
      verdict = candidate;
      best = p;
    }
  }
  const endpoints = Object.keys(probabilities).sort();
  const result: TraceResult = {
    verdict,
    endpoints,
    probabilities: sortedRecord(probabilities, endpoints),
    masquerade,
    masqueradeByEndpoint: sortedRecord(masqueradeByEndpoint, endpoints),
    hops,
    origin,
  };
  if (byVerdict.size <= 1) return result;
  const outcomes: Partial<Record<Verdict, number>> = {};
  for (const v of VERDICT_ORDER) if (byVerdict.has(v)) outcomes[v] = byVerdict.get(v)!;
  return { ...result, outcomes };
}

function sortedRecord<T>(record: Record<string, T>, keys: readonly string[]): Record<string, T> {
  const out: Record<string, T> = {};
  for (const key of keys) out[key] = record[key]!;
  return out;
}

function sampleOf(path: PathOutcome, hops: readonly Hop[]): TraceSample {
  return {
    ...(path.verdict === 'DNAT' && path.endpoint !== undefined ? { endpoint: path.endpoint } : {}),
    verdict: path.verdict,
    masquerade: path.masquerade,
    hops: hops.map(({ probability: _p, ...rest }) => rest),
  };
}

function kubeProxyTestResult(ruleset: Ruleset, packet: Packet, nodeIPs: readonly string[]): TraceResult {
  const got = traceKubeProxyTest(ruleset, {
    sourceIP: packet.src, protocol: packet.proto, destIP: packet.dst, destPort: packet.dport,
  }, nodeIPs);
  const specials = new Set(['ACCEPT', 'DROP', 'REJECT']);
  const endpoints = got.outputs.filter((o) => !specials.has(o));
  const special = got.outputs.find((o) => specials.has(o)) as Verdict | undefined;
  const verdict: Verdict = endpoints.length > 0 ? 'DNAT' : special ?? 'NONE';
  const sorted = [...new Set(endpoints)].sort();
  return {
    verdict,
    endpoints: sorted,
    probabilities: {},
    masquerade: got.masq,
    masqueradeByEndpoint: Object.fromEntries(sorted.map((e) => [e, got.masq])),
    hops: got.matches.map((m) => ({ table: m.table, chain: m.chain, rule: m.rule, target: m.target })),
    kubeProxyTest: { output: got.output, masq: got.masq },
  };
}
