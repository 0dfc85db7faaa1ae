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
import { type Family, type Words, familyOfValidIP } from '../util/ip.js';
import type { Ruleset } from '../iptables/types.js';
import { countRules } from '../iptables/render.js';
import { AddressCache, LocalAddresses, normalizeAddress } from './addresses.js';
import { Ipset } from './ipsets.js';
import { traceKubeProxyTest } from './kube-proxy-test.js';
import { PreparedRuleset } from './prepared-ruleset.js';
import { ctStateBits, protocolCode } from './fast-checks.js';
import { callerRecentLists, type RecentChange, recentKey, RecentLists, type RecentSource } from './recent.js';
import { SeededDraws, seededUint32 } from '../util/random.js';
import type { Hop, Packet, RecentLookup, RecentUpdate, TraceContext, TraceOptions, TraceResult, TraceSample, Verdict } from './types.js';
import { walk, type PathOutcome, type WalkResult, type WalkSetup } from './walk.js';
import { DecisionLog, type DecisionTrie, MISS, recentChangesOf, type RecentTemplate, UNPREDICTABLE } from './decisions.js';
import { type CacheSlot, findSlot, type SampleLeaf, WalkCache } from './walk-cache.js';
import { CLASS_NUMBERS_PER_RULE } from './class-table.js';
import { PathState, type Flow } from './walk-state.js';
import { defineLazyHops } from './lazy-hops.js';
import { type AddressFacts, AddressFactsCache, CELL_INFO, CELL_STRIDE, CELL_V4, INFO_IPV6, INFO_LOCAL, INFO_TYPE } from './address-facts.js';
import { isPort, PlainPacket } from './plain-packet.js';

// Where they were first exported from (the nftables tracer and others import them from here).
export { type AddressFacts, AddressFactsCache, CELL_INFO, CELL_STRIDE, CELL_V4, INFO_IPV6, INFO_LOCAL, INFO_TYPE, isPort };

/** A result being built (its fields are read only once it is handed out). */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

export const DEFAULT_MASQUERADE_MARK = 0x4000;

export interface Tracer {
  /** Every outcome, and a seeded sample when `opts.seed` is given. */
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
  /** Only the one walk drawn with `seed`: cheaper than `trace` when one outcome is enough. */
  sample(packet: Packet, seed: number, opts?: TraceOptions): TraceSample;
  /** Compile and index every chain now, rather than on first use. */
  warm(): void;
  /** Lookups that could be answered from kept walks, and how many were (see walk-cache.ts). */
  cacheStats(): { readonly lookups: number; readonly hits: number };
}

export interface CreateTracerOptions {
  /** false: scan every chain rule by rule (the baseline the index is measured against). */
  readonly useIndex?: boolean;
  /** false: every path walks every stage itself (the baseline stage reuse is tested against). */
  readonly reuseStages?: boolean;
  /**
   * false: walk every packet, keeping no walk for later packets (the baseline the cache is
   * measured and tested against; see walk-cache.ts).
   */
  readonly cache?: boolean;
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
  const facts = new AddressFactsCache(addresses, local, () => cache?.classes.clearSides());
  const contextRecent = new RecentLists(context.recent);
  /** The last caller's lookup, as a walk asks it (a simulator passes the same one every time). */
  let lastLookup: RecentLookup | undefined;
  let lastLists: RecentSource | undefined;
  const callerLists = (lookup: RecentLookup): RecentSource => {
    if (lookup !== lastLookup) {
      lastLookup = lookup;
      lastLists = callerRecentLists(lookup);
    }
    return lastLists!;
  };
  const cache = options.cache === false ? undefined : new WalkCache(list.reduce((n, ruleset) => n + countRules(ruleset), 0) * CLASS_NUMBERS_PER_RULE);
  let lookups = 0;
  let hits = 0;
  /** The draws of a seeded lookup (one object, started over for each seed). */
  const draws = new SeededDraws();

  /** A packet checked, with its flow and recent lists; the walk's setup is made only if it walks. */
  const prepare = (packet: Packet, opts: TraceOptions): Prepared => {
    const known = checkKnownPacket(packet, facts);
    const checked = known ?? checkPacket(packet);
    const program = programs.get(checked.family);
    if (!program) {
      throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${checked.family} packet, but there is no IPv${checked.family} ruleset`, { path: 'packet.dst' });
    }
    const flow = flowOf(checked, opts, facts);
    const recentLists = opts.recentLookup !== undefined ? callerLists(opts.recentLookup) : opts.recent ? new RecentLists(opts.recent) : contextRecent;
    const slot = cache !== undefined && keptWalks(opts)
      ? cache.slot(known?.dstFacts ?? facts.of(checked.dst), flow.protoCode, checked.dport, flow.fromNode, (opts.mark ?? 0) >>> 0)
      : undefined;
    return { program, checked, opts, flow, recentLists, slot };
  };

  const walkSetup = (p: Prepared): WalkSetup => ({
    program: p.program, flow: p.flow, local, addresses, masqueradeMark, reuseStages: options.reuseStages ?? true, recentLists: p.recentLists,
  });

  /**
   * Every outcome, without a sample: a walk kept earlier when one took the same decisions (the
   * kept result itself, shared: results are read only).
   */
  const allOutcomes = (p: Prepared): TraceResult => {
    const flow = p.flow;
    const found = p.slot?.all.find(flow.src32, flow.srcTypeBit, flow, listsOf(p), undefined) ?? UNPREDICTABLE;
    if (p.slot !== undefined) lookups++;
    if (found !== MISS && found !== UNPREDICTABLE) {
      hits++;
      return found;
    }
    const log = found === MISS ? new DecisionLog() : undefined;
    const setup = walkSetup(p);
    const start = (): PathState => startState(p.checked, p.flow, p.opts, facts);
    // Hops are left out of this walk and made by walking again when read: most callers (a load
    // test, the bench) never read them, and recording ~100 hops for a 10-endpoint service
    // was half the bytes a trace allocated (13.6 kB per trace at 1k services before).
    const all = walk(setup, start(), undefined, false, log);
    const result = summarize(all.paths, () => hopsOf(walk(setup, start())), p.flow.fromNode ? 'OUTPUT' : 'PREROUTING', undefined);
    if (log !== undefined) {
      Object.freeze(result);
      cache!.added(p.slot!.all.insert(log, result));
    }
    return result;
  };

  /** The one walk drawn with `seed`: a walk kept earlier when one took the same decisions and draws. */
  const seededLeaf = (p: Prepared, seed: number): SampleLeaf | TraceSample => {
    const flow = p.flow;
    const found = p.slot?.one.find(flow.src32, flow.srcTypeBit, flow, listsOf(p), draws.reset(seed)) ?? UNPREDICTABLE;
    if (p.slot !== undefined) lookups++;
    if (found !== MISS && found !== UNPREDICTABLE) {
      hits++;
      return found;
    }
    const log = found === MISS ? new DecisionLog() : undefined;
    const one = walk(walkSetup(p), startState(p.checked, p.flow, p.opts, facts), seededUint32(seed), true, log);
    if (log === undefined) return sampleOf(one);
    const leaf = leafOf(keptSampleOf(one), log);
    cache!.added(p.slot!.one.insert(log, leaf));
    return leaf;
  };

  const seeded = (p: Prepared, seed: number): TraceSample => {
    const got = seededLeaf(p, seed);
    return isLeaf(got) ? sampleFromLeaf(got, p.flow.src, p.flow.srcWords) : got;
  };

  /** A plain packet's side, read without a flow (plain-packet.ts). */
  const plain = new PlainPacket(facts, local);
  const plainSide = (packet: Packet, opts: TraceOptions, lookupAllowed = false): boolean => cache !== undefined && plain.read(packet, opts, lookupAllowed);
  /** A plain packet's kept walks (after plainSide). */
  const plainSlot = (packet: Packet): CacheSlot | undefined => findSlot(plain.dstFacts(packet), plain.key, plain.mark);
  /** A trie a plain packet can look up with its source's address and type alone. */
  const plainLookup = (trie: DecisionTrie<unknown>): boolean => !trie.calls && (contextRecent.empty || !trie.recentReads);

  /**
   * A plain packet's kept answer read from the class table alone (after plainSide; `which` 0:
   * every outcome, 1: samples, drawn with `seeded`): undefined when the table does not have it.
   */
  const flatLookup = <L>(which: 0 | 1, seeded: SeededDraws | undefined): L | undefined => plain.fromTable(cache!.classes, which, seeded) as L | undefined;

  /**
   * A plain packet's kept answer from its slot's trie (after plainSide, when the table did not
   * have it), recording the trie's region for the side so that the next lookup reads the table.
   */
  const trieLookup = <L>(packet: Packet, which: 0 | 1, seeded: number | undefined): L | undefined => {
    const slot = plainSlot(packet);
    if (slot === undefined) return undefined;
    const trie: DecisionTrie<L> = (which === 0 ? slot.all : slot.one) as unknown as DecisionTrie<L>;
    if (!plainLookup(trie)) return undefined;
    const found = trie.find(plain.src32, plain.srcTypeBit, undefined, undefined, seeded === undefined ? undefined : draws.reset(seeded));
    plain.recordRegion(cache!.classes, which, trie.region());
    return found === MISS || found === UNPREDICTABLE ? undefined : found;
  };

  /**
   * A sample of a kept walk that changed recent lists: its changes made by this packet's source
   * (whose words are read only when a change masks the address: kube-proxy's affinity does not).
   */
  const plainSample = (found: SampleLeaf, packet: Packet): TraceSample =>
    sampleFromLeaf(found, packet.src, found.recentMasks ? plain.srcFacts(packet).words : NO_WORDS);

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    cacheStats: () => ({ lookups, hits }),
    sample: (packet, seed, opts = NO_OPTIONS) => {
      const lookup = opts.recentLookup;
      if (plainSide(packet, opts, true)) {
        let found: SampleLeaf | undefined;
        if (lookup === undefined) {
          found = flatLookup<SampleLeaf>(1, draws.reset(seed)) ?? trieLookup<SampleLeaf>(packet, 1, seed);
        } else {
          // A caller's own lists (the simulator's returning clients) are asked by the recent checks
          // alone, which read nothing of the flow but the source's address.
          const slot = plainSlot(packet);
          if (slot !== undefined && !slot.one.calls) {
            const src = plain.srcFacts(packet);
            const got = slot.one.find(src.src32, src.typeBit, (src.recentFlow ??= recentFlowOf(packet, src)), callerLists(lookup), draws.reset(seed));
            if (got !== MISS && got !== UNPREDICTABLE) found = got;
          }
        }
        if (found !== undefined) {
          lookups++;
          hits++;
          return found.recent === undefined ? found.sample : plainSample(found, packet);
        }
      }
      return seeded(prepare(packet, opts), seed);
    },
    trace: (packet, opts = NO_OPTIONS) => {
      if (plainSide(packet, opts)) {
        // A kept answer, found without a flow: the hit path of a load test or a simulation.
        if (opts.sampleOnly) {
          const seed = opts.seed;
          if (seed !== undefined) {
            const found = flatLookup<SampleLeaf>(1, draws.reset(seed)) ?? trieLookup<SampleLeaf>(packet, 1, seed);
            if (found !== undefined) {
              lookups++;
              hits++;
              const origin = plain.fromNode ? 'OUTPUT' : 'PREROUTING';
              const kept = (found.sampleOnly ??= keptSampleOnlyResult(found.sample, origin));
              return found.recent === undefined ? kept : withOwnSample(kept, plainSample(found, packet));
            }
          }
        } else if (opts.seed === undefined) {
          const found = flatLookup<TraceResult>(0, undefined) ?? trieLookup<TraceResult>(packet, 0, undefined);
          if (found !== undefined) {
            lookups++;
            hits++;
            return found;
          }
        }
      }
      const prepared = prepare(packet, opts);
      if (opts.semantics === 'kube-proxy-test') {
        return kubeProxyTestResult(prepared.program.ruleset, packet, context.localAddresses);
      }
      const origin = prepared.flow.fromNode ? 'OUTPUT' : 'PREROUTING';
      if (opts.sampleOnly) {
        const got = seededLeaf(prepared, seedOfSampleOnly(opts));
        if (!isLeaf(got)) return sampleOnlyResult(got, origin);
        const kept = (got.sampleOnly ??= keptSampleOnlyResult(got.sample, origin));
        return got.recent === undefined ? kept : withOwnSample(kept, sampleFromLeaf(got, prepared.flow.src, prepared.flow.srcWords));
      }
      const all = allOutcomes(prepared);
      return opts.seed === undefined ? all : withSample(all, seeded(prepared, opts.seed));
    },
  };
}

const NO_OPTIONS: TraceOptions = Object.freeze({});

/** The packet's recent lists for a trie lookup: undefined when nobody is in them. */
function listsOf(p: Prepared): RecentSource | undefined {
  return p.recentLists.empty ? undefined : p.recentLists;
}

function isLeaf(value: SampleLeaf | TraceSample): value is SampleLeaf {
  return 'sampleOnly' in value && 'recent' in value && 'sample' in value;
}

/** A packet ready to walk, and its cache slot when its walks are kept. */
interface Prepared {
  readonly program: PreparedRuleset;
  readonly checked: CheckedPacket;
  readonly opts: TraceOptions;
  readonly flow: Flow;
  readonly recentLists: RecentSource;
  readonly slot: CacheSlot | undefined;
}

/** Walks with the default conntrack state and interfaces are kept (see walk-cache.ts). */
function keptWalks(opts: TraceOptions): boolean {
  return opts.ctstate === undefined && opts.inInterface === undefined && opts.outInterface === undefined;
}

/** The seed of a `sampleOnly` trace, which has to have one (shared with the nftables tracer). */
export function seedOfSampleOnly(opts: TraceOptions): number {
  if (opts.seed === undefined) {
    throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'sampleOnly walks the one outcome drawn with a seed: give a seed too', { path: 'seed' });
  }
  return opts.seed;
}

/**
 * The answer of a `sampleOnly` trace (shared with the nftables tracer): the sampled walk's
 * verdict, endpoint, masquerade and hops in the fields of every outcome, which it stands for;
 * no probabilities (none were worked out), `sample` as with a seed, and `sampleOnly: true`.
 */
export function sampleOnlyResult(sample: TraceSample, origin: 'PREROUTING' | 'OUTPUT'): TraceResult {
  const endpoint = sample.endpoint;
  const masqueradeByEndpoint: Record<string, boolean> = keyedRecord();
  if (endpoint !== undefined) masqueradeByEndpoint[endpoint] = sample.masquerade;
  return {
    verdict: sample.verdict,
    endpoints: endpoint === undefined ? [] : [endpoint],
    probabilities: {},
    masquerade: sample.masquerade,
    masqueradeByEndpoint,
    hops: sample.hops,
    origin,
    sample,
    sampleOnly: true,
  };
}

/**
 * sampleOnlyResult of a kept sample, kept with it (frozen): its hops read from the sample when
 * read (a kept sample's are made when first read: most callers never read them).
 */
function keptSampleOnlyResult(sample: TraceSample, origin: 'PREROUTING' | 'OUTPUT'): TraceResult {
  const endpoint = sample.endpoint;
  const masqueradeByEndpoint: Record<string, boolean> = keyedRecord();
  if (endpoint !== undefined) masqueradeByEndpoint[endpoint] = sample.masquerade;
  const result = defineLazyHops({
    verdict: sample.verdict,
    endpoints: endpoint === undefined ? [] : [endpoint],
    probabilities: {},
    masquerade: sample.masquerade,
    masqueradeByEndpoint,
  }, sample) as Writable<TraceResult>;
  result.origin = origin;
  result.sample = sample;
  result.sampleOnly = true;
  return Object.freeze(result);
}

/**
 * A kept sampleOnly answer with a packet's own sample (a walk that changed recent lists: its
 * changes name the packet's source); what does not depend on the source is the kept answer's,
 * shared (answers are read only).
 */
export function withOwnSample(kept: TraceResult, sample: TraceSample): TraceResult {
  return {
    verdict: kept.verdict,
    endpoints: kept.endpoints,
    probabilities: kept.probabilities,
    masquerade: kept.masquerade,
    masqueradeByEndpoint: kept.masqueradeByEndpoint,
    hops: sample.hops,
    origin: kept.origin,
    sample,
    sampleOnly: true,
  };
}

/**
 * A result of its own for the caller, with `sample` when given: the every-outcome result may be
 * a kept walk's, whose fields (read only) it shares, hops included (made once, when first read).
 */
export function withSample(base: TraceResult, sample: TraceSample | undefined): TraceResult {
  const result = defineLazyHops({
    verdict: base.verdict, endpoints: base.endpoints, probabilities: base.probabilities, masquerade: base.masquerade,
    masqueradeByEndpoint: base.masqueradeByEndpoint,
  }, base) as Writable<TraceResult>;
  result.origin = base.origin;
  if (base.outcomes !== undefined) result.outcomes = base.outcomes;
  if (sample !== undefined) result.sample = sample;
  return result;
}

/** A sampled walk's answer as kept: the sample itself (shared) unless it changed recent lists. */
function leafOf(sample: TraceSample, log: DecisionLog): SampleLeaf {
  const recent = log.recent.length > 0 ? [...log.recent] : undefined;
  const recentMasks = recent !== undefined && recent.some((t) => t.ip === undefined && t.mask !== undefined);
  return { sample, recent, recentMasks, sampleOnly: undefined, hops: undefined };
}

/** The words of a source whose words are not read (recentKey reads them only with a mask). */
const NO_WORDS: Words = new Uint32Array(0);

/**
 * A kept sampled walk as this packet's sample: its recent changes made with this packet's
 * source. Its hops are the leaf's, made once and shared (a getter per packet's sample was a
 * closure and an accessor made per lookup, slow to make and to collect).
 */
function sampleFromLeaf(leaf: SampleLeaf, src: string, srcWords: Words): TraceSample {
  const base = leaf.sample;
  const templates = leaf.recent;
  if (templates === undefined) return base;
  // kube-proxy's one change (the endpoint's affinity --set) is made straight into its update:
  // through recentChangesOf and recentUpdatesOf it was two more objects per lookup.
  const recent = templates.length === 1 ? [updateOf(templates[0]!, src, srcWords)] : recentUpdatesOf(recentChangesOf(templates, { src, srcWords })!);
  const hops = (leaf.hops ??= base.hops);
  return base.endpoint !== undefined
    ? { endpoint: base.endpoint, verdict: base.verdict, masquerade: base.masquerade, hops, recent }
    : { verdict: base.verdict, masquerade: base.masquerade, hops, recent };
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
  const family: Family = familyOfValidIP(dst);
  if (familyOfValidIP(src) !== family) throw bad('packet.src', `${packet.src} and ${packet.dst} are of different families`);
  if (!isPort(packet.dport, false)) throw bad('packet.dport', `${packet.dport} is not a port (1-65535)`);
  if (packet.sport !== undefined && !isPort(packet.sport, false)) throw bad('packet.sport', `${packet.sport} is not a port (1-65535)`);
  return { proto, src, dst, dport: packet.dport, sport: packet.sport, family };
}


/**
 * The packet checked as checkPacket would, when both its addresses were seen before (so are
 * normalised addresses) and the rest is plainly right; undefined: let checkPacket check it
 * (and word what is wrong).
 */
function checkKnownPacket(packet: Packet, facts: AddressFactsCache): (CheckedPacket & { readonly dstFacts: AddressFacts }) | undefined {
  const { proto, src, dst, dport, sport } = packet;
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') return undefined;
  if (typeof src !== 'string' || typeof dst !== 'string') return undefined;
  const srcFacts = facts.known(src);
  const dstFacts = facts.known(dst);
  if (srcFacts === undefined || dstFacts === undefined || srcFacts.words.length !== dstFacts.words.length) return undefined;
  if (!isPort(dport, false) || (sport !== undefined && !isPort(sport, false))) return undefined;
  return { proto, src, dst, dport, sport, family: dstFacts.words.length === 1 ? 4 : 6, dstFacts };
}



/** The first packet of a connection. */
const FIRST_PACKET_STATES = ctStateBits(['NEW']);

/**
 * A flow from the packet's source with no port, for a kept walk's recent checks alone: they
 * read the source's address and nothing else of the flow (recentMatches).
 */
function recentFlowOf(packet: Packet, src: AddressFacts): Flow {
  return {
    proto: packet.proto, protoCode: protocolCode(packet.proto), src: packet.src, srcWords: src.words, src32: src.src32,
    srcType: src.type, srcTypeBit: src.typeBit, sport: undefined, inInterface: undefined, outInterface: undefined,
    ctBits: FIRST_PACKET_STATES, fromNode: src.local,
  };
}

/**
 * The packet's flow. With the default options (what load tests and the simulator trace) the
 * source's last flow serves again when it had the same protocol, port and origin: flows are
 * read only.
 */
function flowOf(packet: CheckedPacket, opts: TraceOptions, facts: AddressFactsCache): Flow {
  if (opts.inInterface !== undefined || opts.outInterface !== undefined || opts.ctstate !== undefined) return makeFlow(packet, opts, facts);
  const src = facts.of(packet.src);
  const last = src.flow;
  const fromNode = opts.fromNode ?? src.local;
  if (last !== undefined && last.proto === packet.proto && last.sport === packet.sport && last.fromNode === fromNode) return last;
  return (src.flow = makeFlow(packet, opts, facts));
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
  const result = defineLazyHops({ verdict, endpoints, probabilities, masquerade, masqueradeByEndpoint }, makeHops) as Writable<TraceResult>;
  result.origin = origin;
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

/**
 * sampleOf for a walk that is kept: its hops are made when first read. A kept sample lives as
 * long as the cache, and most are never read for their hops (a load test, a simulation): the
 * compact hop log is all it holds until then, rather than a dozen objects the GC must copy.
 */
function keptSampleOf(one: WalkResult): TraceSample {
  const path = one.paths[0]!;
  const log = one.hops!;
  const fields = path.verdict === 'DNAT' && path.endpoint !== undefined
    ? { endpoint: path.endpoint, verdict: path.verdict, masquerade: path.masquerade }
    : { verdict: path.verdict, masquerade: path.masquerade };
  const sample = defineLazyHops(fields, log) as Writable<TraceSample>;
  if (path.recent !== undefined) sample.recent = recentUpdatesOf(path.recent);
  return sample;
}

/** The update one recent change makes for a packet from `src` (as recentChangesOf, then recentUpdatesOf). */
function updateOf(t: RecentTemplate, src: string, srcWords: Words): RecentUpdate {
  const address = t.ip ?? recentKey(src, srcWords, t.mask);
  return t.removed ? { list: t.list, address, removed: true } : { list: t.list, address };
}

/** A walk's changes to `recent` lists, oldest first, the last change of each (list, address) only. */
function recentUpdatesOf(newestFirst: RecentChange): RecentUpdate[] {
  const c = newestFirst;
  // One change (kube-proxy's affinity: the endpoint's --set) needs no sorting out.
  if (c.previous === undefined) return [c.seen === undefined ? { list: c.list, address: c.ip, removed: true } : { list: c.list, address: c.ip }];
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
