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
import { normalizeIP, type Family, type Words } from '../util/ip.js';
import type { Ruleset } from '../iptables/types.js';
import { AddressCache, LocalAddresses } from './addresses.js';
import { Ipset } from './ipsets.js';
import { traceKubeProxyTest } from './kube-proxy-test.js';
import { PreparedRuleset } from './prepared-ruleset.js';
import { addressTypeBit, ctStateBits, protocolCode } from './fast-checks.js';
import { type RecentChange, RecentLists } from './recent.js';
import { seededUint32 } from '../util/random.js';
import type { Hop, Packet, RecentUpdate, TraceContext, TraceOptions, TraceResult, TraceSample, Verdict } from './types.js';
import { walk, type PathOutcome, type WalkResult, type WalkSetup } from './walk.js';
import { PathState, type Flow } from './walk-state.js';

export const DEFAULT_MASQUERADE_MARK = 0x4000;

export interface Tracer {
  /** Every outcome, and a seeded sample when `opts.seed` is given. */
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
  /** Only the one walk drawn with `seed`: cheaper than `trace` when one outcome is enough. */
  sample(packet: Packet, seed: number, opts?: TraceOptions): TraceSample;
  /** Compile and index every chain now, rather than on first use. */
  warm(): void;
}

export interface CreateTracerOptions {
  /** false: scan every chain rule by rule (the baseline the index is measured against). */
  readonly useIndex?: boolean;
  /** false: every path walks every stage itself (the baseline stage reuse is tested against). */
  readonly reuseStages?: boolean;
}

export function createTracer(
  rulesets: Ruleset | readonly Ruleset[], context: TraceContext, options: CreateTracerOptions = {},
): Tracer {
  const list: readonly Ruleset[] = isRuleset(rulesets) ? [rulesets] : rulesets;
  const masqueradeMark = context.masqueradeMark ?? DEFAULT_MASQUERADE_MARK;
  const ipsets = new Map(Object.entries(context.ipsets ?? {}).map(([name, members]) => [name, new Ipset(name, members)]));
  const local = new LocalAddresses(context.localAddresses);
  const programs = new Map<Family, PreparedRuleset>();
  for (const ruleset of list) {
    if (programs.has(ruleset.family)) throw new Error(`createTracer: two IPv${ruleset.family} rulesets`);
    programs.set(ruleset.family, new PreparedRuleset(ruleset, ipsets, masqueradeMark, local, options.useIndex ?? true));
  }
  const addresses = new AddressCache();
  const facts = new AddressFactsCache(addresses, local);
  const contextRecent = new RecentLists(context.recent);

  const prepare = (packet: Packet, opts: TraceOptions): { program: PreparedRuleset; setup: WalkSetup; start: () => PathState } => {
    const checked = checkPacket(packet);
    const program = programs.get(checked.family);
    if (!program) {
      throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${checked.family} packet, but there is no IPv${checked.family} ruleset`, { path: 'packet.dst' });
    }
    const flow = makeFlow(checked, opts, facts);
    const setup: WalkSetup = {
      program, flow, local, addresses, masqueradeMark, reuseStages: options.reuseStages ?? true,
      recentLists: opts.recent ? new RecentLists(opts.recent) : contextRecent,
    };
    return { program, setup, start: () => startState(checked, flow, opts, facts) };
  };

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    sample: (packet, seed, opts = {}) => {
      const { setup, start } = prepare(packet, opts);
      return sampleOf(walkSample(setup, start(), seed));
    },
    trace: (packet, opts = {}) => {
      const { program, setup, start } = prepare(packet, opts);
      if (opts.semantics === 'kube-proxy-test') {
        return kubeProxyTestResult(program.ruleset, packet, context.localAddresses);
      }
      // Hops are left out of this walk and made by walking again when read: most callers (a load
      // test, the bench) never read them, and recording ~100 hops for a 10-endpoint service
      // was half the bytes a trace allocated (13.6 kB per trace at 1k services before).
      const all = walk(setup, start(), undefined, false);
      const sample = opts.seed === undefined ? undefined : sampleOf(walkSample(setup, start(), opts.seed));
      return summarize(all.paths, () => hopsOf(walk(setup, start())), setup.flow.fromNode ? 'OUTPUT' : 'PREROUTING', sample);
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

export interface CheckedPacket {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
  readonly sport: number | undefined;
  readonly family: Family;
}

/** A packet checked and normalised (shared with the nftables tracer). */
export function checkPacket(packet: Packet): CheckedPacket {
  const bad = (path: string, detail: string): KpsimError => new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', detail, { path });
  const proto = String(packet.proto).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw bad('packet.proto', `${packet.proto} is not tcp, udp or sctp`);
  const src = normalizeAddress(String(packet.src));
  if (src === undefined) throw bad('packet.src', `${packet.src} is not an IP address`);
  const dst = normalizeAddress(String(packet.dst));
  if (dst === undefined) throw bad('packet.dst', `${packet.dst} is not an IP address`);
  const family: Family = dst.includes(':') ? 6 : 4;
  if ((src.includes(':') ? 6 : 4) !== family) throw bad('packet.src', `${packet.src} and ${packet.dst} are of different families`);
  if (!isPort(packet.dport, false)) throw bad('packet.dport', `${packet.dport} is not a port (1-65535)`);
  if (packet.sport !== undefined && !isPort(packet.sport, false)) throw bad('packet.sport', `${packet.sport} is not a port (1-65535)`);
  return { proto, src, dst, dport: packet.dport, sport: packet.sport, family };
}


/** An IPv4 address already in normal form (no leading zeros): the common case, checked cheaply. */
const PLAIN_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function normalizeAddress(text: string): string | undefined {
  return PLAIN_IPV4.test(text) ? text : normalizeIP(text);
}

function isPort(value: unknown, allowZero: boolean): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value <= 65535 && (allowZero ? value >= 0 : value >= 1);
}

/** The first packet of a connection. */
const FIRST_PACKET_STATES = ctStateBits(['NEW']);

/** What a packet's addresses are to the node. */
interface AddressFacts {
  readonly words: Words;
  readonly type: string;
  readonly typeBit: number;
  readonly local: boolean;
}

/**
 * An address's words, type and locality, worked out once: each trace looked them up in four
 * maps and sets for its source and destination, a tenth of a sampled walk at 10k services.
 */
class AddressFactsCache {
  private readonly cache = new Map<string, AddressFacts>();

  constructor(private readonly addresses: AddressCache, private readonly local: LocalAddresses) {}

  of(ip: string): AddressFacts {
    let facts = this.cache.get(ip);
    if (!facts) {
      const words = this.addresses.words(ip);
      const type = this.local.addressType(ip, words);
      facts = { words, type, typeBit: addressTypeBit(type), local: this.local.isLocal(ip, words) };
      if (this.cache.size > 100_000) this.cache.clear(); // bounded, as AddressCache is
      this.cache.set(ip, facts);
    }
    return facts;
  }
}

function makeFlow(packet: CheckedPacket, opts: TraceOptions, facts: AddressFactsCache): Flow {
  const src = facts.of(packet.src);
  const srcWords = src.words;
  const srcType = src.type;
  return {
    proto: packet.proto,
    protoCode: protocolCode(packet.proto),
    src: packet.src,
    srcWords,
    src32: srcWords.length === 1 ? srcWords[0]! : -1,
    srcType,
    srcTypeBit: src.typeBit,
    sport: packet.sport,
    inInterface: opts.inInterface,
    outInterface: opts.outInterface,
    ctBits: opts.ctstate ? ctStateBits(opts.ctstate.map((s) => s.toUpperCase())) : FIRST_PACKET_STATES,
    fromNode: opts.fromNode ?? src.local,
  };
}

function startState(packet: CheckedPacket, flow: Flow, opts: TraceOptions, facts: AddressFactsCache): PathState {
  const dst = facts.of(packet.dst);
  return new PathState({
    dst: packet.dst,
    dstWords: dst.words,
    dstType: dst.type,
    dstTypeBit: dst.typeBit,
    dport: packet.dport,
    mark: (opts.mark ?? 0) >>> 0,
    stage: flow.fromNode ? 'nat OUTPUT' : 'nat PREROUTING',
  });
}

// ---------------------------------------------------------------- the answer

/** When branches end differently and tie, the first of these wins. */
/** Verdicts in the order ties are broken (and `outcomes` are listed). */
export const VERDICT_ORDER: readonly Verdict[] = ['DNAT', 'REJECT', 'DROP', 'ACCEPT', 'NONE'];

/** The verdict with the largest total probability, ties to the first in VERDICT_ORDER; NONE when there is none. */
export function mostLikelyVerdict(byVerdict: Readonly<Partial<Record<Verdict, number>>>): Verdict {
  let verdict: Verdict = 'NONE';
  let best = -1;
  for (const candidate of VERDICT_ORDER) {
    const p = byVerdict[candidate];
    if (p !== undefined && p > best) {
      verdict = candidate;
      best = p;
    }
  }
  return verdict;
}

/**
 * A plain object meant for arbitrary keys (endpoints). Deleting a property that is not the
 * last one added puts V8 objects in dictionary mode at once, so that adding thousands of
 * different endpoint keys over many traces does not grow a tree of hidden classes.
 */
function keyedRecord<T>(): Record<string, T> {
  const record: Record<string, unknown> = { a: 0, b: 0 };
  delete record.a;
  delete record.b;
  return record as Record<string, T>;
}

/** The hops of an all-outcomes walk, with a note when it stopped forking. */
function hopsOf(all: WalkResult): Hop[] {
  const hops = all.hops!;
  if (all.truncated) {
    hops.note({ table: '', chain: '', rule: '', target: '', notes: [`more than ${all.paths.length} branches: the rest were not walked`] });
  }
  return hops.toHops();
}

function walkSample(setup: WalkSetup, start: PathState, seed: number): WalkResult {
  return walk(setup, start, seededUint32(seed));
}

/**
 * Stable insertion sort by endpoint (as Array.prototype.sort would, so that equal endpoints keep
 * walk order and their probabilities add up in the same order). A trace has a few paths; the
 * built-in sort copied them into a work array each time.
 */
function sortByEndpoint(paths: PathOutcome[]): void {
  for (let i = 1; i < paths.length; i++) {
    const path = paths[i]!;
    const key = path.endpoint!;
    let j = i - 1;
    while (j >= 0 && paths[j]!.endpoint! > key) {
      paths[j + 1] = paths[j]!;
      j--;
    }
    paths[j + 1] = path;
  }
}

/** Every path's outcome → the TraceResult (shared with the nftables tracer). */
export function summarize(paths: readonly PathOutcome[], makeHops: () => Hop[], origin: 'PREROUTING' | 'OUTPUT', sample: TraceSample | undefined): TraceResult {
  let hops: Hop[] | undefined;
  const byVerdict: Partial<Record<Verdict, number>> = {};
  let verdicts = 0;
  const dnat: PathOutcome[] = [];
  let masquerade = false;
  for (const path of paths) {
    const sum = byVerdict[path.verdict];
    if (sum === undefined) verdicts++;
    byVerdict[path.verdict] = (sum ?? 0) + path.probability;
    masquerade ||= path.masquerade;
    if (path.endpoint !== undefined && path.verdict === 'DNAT') dnat.push(path);
  }
  const verdict = mostLikelyVerdict(byVerdict);
  // Records keyed in endpoint order, so JSON output lists them sorted.
  sortByEndpoint(dnat);
  const endpoints: string[] = [];
  const probabilities: Record<string, number> = keyedRecord();
  const masqueradeByEndpoint: Record<string, boolean> = keyedRecord();
  for (const path of dnat) {
    const endpoint = path.endpoint!;
    if (probabilities[endpoint] === undefined) {
      endpoints.push(endpoint);
      probabilities[endpoint] = path.probability;
      masqueradeByEndpoint[endpoint] = path.masquerade;
    } else {
      probabilities[endpoint] += path.probability;
      masqueradeByEndpoint[endpoint] ||= path.masquerade;
    }
  }
  const result: TraceResult & { outcomes?: Partial<Record<Verdict, number>>; sample?: TraceSample } = {
    verdict, endpoints, probabilities, masquerade, masqueradeByEndpoint,
    get hops() { return (hops ??= makeHops()); },
    origin,
  };
  if (verdicts > 1) {
    const outcomes: Partial<Record<Verdict, number>> = {};
    for (const v of VERDICT_ORDER) if (byVerdict[v] !== undefined) outcomes[v] = byVerdict[v];
    result.outcomes = outcomes;
  }
  if (sample) result.sample = sample;
  return result;
}

/**
 * The sampled walk's outcome. Its few hops are made at once (cheaper than a lazy getter in an
 * object literal); they carry no probability (the hop log leaves it out in sample mode).
 */
function sampleOf(one: WalkResult): TraceSample {
  const path = one.paths[0]!;
  const hops = one.hops!.toHops();
  const sample: { -readonly [K in keyof TraceSample]: TraceSample[K] } = path.verdict === 'DNAT' && path.endpoint !== undefined
    ? { endpoint: path.endpoint, verdict: path.verdict, masquerade: path.masquerade, hops }
    : { verdict: path.verdict, masquerade: path.masquerade, hops };
  if (path.recent !== undefined) sample.recent = recentUpdatesOf(path.recent);
  return sample;
}

/** A walk's changes to `recent` lists, oldest first, the last change of each (list, address) only. */
function recentUpdatesOf(newestFirst: RecentChange): RecentUpdate[] {
  const updates: RecentUpdate[] = [];
  const seen = new Set<string>();
  for (let c: RecentChange | undefined = newestFirst; c; c = c.previous) {
    const key = `${c.list} ${c.ip}`;
    if (seen.has(key)) continue;
    seen.add(key);
    updates.push(c.seen === undefined ? { list: c.list, address: c.ip, removed: true } : { list: c.list, address: c.ip });
  }
  return updates.reverse();
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
