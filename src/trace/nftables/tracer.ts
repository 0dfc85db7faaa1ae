/**
 * The packet tracer for nftables rulesets, compiled (compileNftablesRules) or parsed from a
 * node's `nft list ruleset` (parseNftRuleset): the same TraceResult as iptables mode (verdict,
 * endpoints with their chances, masquerade, hops, outcomes, a seeded sample). Hops name the
 * table ("ip kube-proxy"), the chain and the rule as nft prints it, with the set and map
 * lookups and the element that matched.
 *
 * Every table of the packet's family is walked (ip or ip6, and inet): in a real node's dump
 * the verdict can come from another table's rule (a host firewall's drop). Rules kpsim cannot
 * evaluate are taken as not matching, and the hop says so.
 */
import type { NftRuleset } from '../../nftables/types.js';
import { SeededDraws, seededUint32 } from '../../util/random.js';
import type { Family } from '../../util/ip.js';
import { AddressCache, LocalAddresses } from '../addresses.js';
import { NOT_FLAT } from '../class-table.js';
import { callerRecentLists, RecentLists } from '../recent.js';
import { DecisionLog, type DecisionTrie, MISS, UNPREDICTABLE } from '../decisions.js';
import { protocolCode } from '../fast-checks.js';
import { AddressFactsCache, CELL_INFO, CELL_STRIDE, CELL_V4, checkPacket, INFO_IPV6, INFO_LOCAL, INFO_TYPE, isPort, sampleOnlyResult, seedOfSampleOnly, summarize, withOwnSample, withSample } from '../tracer.js';
import type { Hop, Packet, TraceContext, TraceOptions, TraceResult, TraceSample } from '../types.js';
import { slotKey } from '../walk-cache.js';
import { KpsimError } from '../../errors.js';
import { type NftSampleLeaf, type NftSlot, NftKeptWalks } from './kept-walks.js';
import { NftProgram } from './program.js';
import { NftSourceMatches } from './source-matches.js';
import { hopsOf, MAX_NFT_PATHS, type NftFlow, type NftWalkResult, type NftWalkSetup, updatesFor, walkNft } from './walk.js';

export interface NftTracer {
  /** Every outcome, and a seeded sample when `opts.seed` is given. */
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
  /** Only the one walk drawn with `seed`. */
  sample(packet: Packet, seed: number, opts?: TraceOptions): TraceSample;
  /**
   * Rules the kernel evaluates for this packet, matched or not, on one walk (drawn with
   * `opts.seed`, default 1): what a first packet costs, for comparisons with iptables mode.
   */
  rulesEvaluated(packet: Packet, opts?: TraceOptions): number;
  /** Index every set and read every rule now, rather than on first use. */
  warm(): void;
  /**
   * Lookups that could be answered from kept walks, and how many were (as iptables mode's);
   * `tableHits`: how many of those were read from the class table alone (a source class's
   * answer, no trie asked).
   */
  cacheStats(): { readonly lookups: number; readonly hits: number; readonly tableHits: number };
}

function isRuleset(value: NftRuleset | readonly NftRuleset[]): value is NftRuleset {
  return !Array.isArray(value);
}

export interface CreateNftTracerOptions {
  /** false: walk every packet, keeping no walk for later packets (the baseline; see walk-cache.ts). */
  readonly cache?: boolean;
}

/** A packet ready to walk: its walk's setup and start, its kept walks' slot, and its source as packed checks read it. */
interface Prepared {
  readonly setup: NftWalkSetup;
  readonly start: { dst: string; dport: number; mark: number };
  readonly slot: NftSlot | undefined;
  /** The source's IPv4 address (unsigned; -1 for IPv6) and its address type's bit. */
  readonly src32: number;
  readonly typeBit: number;
}

/** What plainSide leaves for a lookup: the addresses' ids, the side's origin (1: the node), key and mark. */
const PLAIN_DST = 0;
const PLAIN_SRC = 1;
const PLAIN_FROM_NODE = 2;
const PLAIN_KEY = 3;
const PLAIN_MARK = 4;
const PLAIN_FIELDS = 5;

const NO_OPTIONS: TraceOptions = Object.freeze({});

export function createNftTracer(rulesets: NftRuleset | readonly NftRuleset[], context: TraceContext, options: CreateNftTracerOptions = {}): NftTracer {
  const list: readonly NftRuleset[] = isRuleset(rulesets) ? [rulesets] : rulesets;
  const programs = new Map<Family, NftProgram>([[4, new NftProgram(list, 4)], [6, new NftProgram(list, 6)]]);
  const local = new LocalAddresses(context.localAddresses);
  const addresses = new AddressCache();
  const contextDynamic = new RecentLists(context.recent);
  // Walks are kept by destination side and by the decisions that read the source or a draw,
  // as in iptables mode (decisions.ts): the nftables walk logs its matches on the source
  // (packed networks and address types, dynamic sets, else closures) and its numgen draws.
  const kept = options.cache === false ? undefined : new NftKeptWalks();
  // Addresses interned (ids for the class table's side records, the source's facts in typed
  // arrays); ids given again let every kept walk go, since slots are found by id.
  const facts = new AddressFactsCache(addresses, local, () => kept?.clear());
  const sourceMatches = kept === undefined ? undefined : new NftSourceMatches();
  let lookups = 0;
  let hits = 0;
  let tableHits = 0;
  const draws = new SeededDraws();

  const prepare = (packet: Packet, opts: TraceOptions): Prepared => {
    const checked = checkPacket(packet);
    const program = programs.get(checked.family)!;
    if (program.tables.length === 0) {
      throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${checked.family} packet, but there is no ${checked.family === 4 ? 'ip or inet' : 'ip6 or inet'} table`, { path: 'packet.dst' });
    }
    const src = facts.of(checked.src);
    const src32 = src.src32 < 0 ? -1 : src.src32 >>> 0;
    const typeBit = src.typeBit;
    const fromNode = opts.fromNode ?? src.local;
    const setup: NftWalkSetup = {
      program, local, addresses, sourceMatches,
      dynamic: opts.recentLookup !== undefined ? callerRecentLists(opts.recentLookup) : opts.recent ? new RecentLists(opts.recent) : contextDynamic,
      flow: {
        proto: checked.proto,
        src: checked.src,
        sport: checked.sport,
        fromNode,
        ctState: (opts.ctstate ?? ['NEW']).map((s) => s.toLowerCase()),
        inInterface: opts.inInterface,
        outInterface: opts.outInterface,
      },
    };
    const mark = opts.mark ?? 0;
    const slot = kept !== undefined && opts.ctstate === undefined && opts.inInterface === undefined && opts.outInterface === undefined
      ? kept.slot(facts.of(checked.dst).id, protocolCode(checked.proto), checked.dport, fromNode, mark >>> 0)
      : undefined;
    return { setup, start: { dst: checked.dst, dport: checked.dport, mark }, slot, src32, typeBit };
  };

  const sampleOf = (walk: NftWalkResult): TraceSample => {
    const path = walk.paths[0]!;
    const hops = hopsOf(walk.hops!, false);
    const sample = path.verdict === 'DNAT' && path.endpoint !== undefined
      ? { endpoint: path.endpoint, verdict: path.verdict, masquerade: path.masquerade, hops }
      : { verdict: path.verdict, masquerade: path.masquerade, hops };
    // The affinity sets this walk updated: what later packets of the client find there.
    return path.updates.length > 0 ? { ...sample, recent: path.updates } : sample;
  };

  /** The seeded walk: kept (a leaf) when a walk took the same decisions and draws. */
  const seeded = (p: Prepared, seed: number): NftSampleLeaf | TraceSample => {
    const { setup, slot } = p;
    const lists = setup.dynamic.empty ? undefined : setup.dynamic;
    const found = slot?.one.find(p.src32, p.typeBit, setup.flow, lists, draws.reset(seed)) ?? UNPREDICTABLE;
    if (slot !== undefined) lookups++;
    if (found !== MISS && found !== UNPREDICTABLE) {
      hits++;
      return found;
    }
    const log = found === MISS ? new DecisionLog<NftFlow>() : undefined;
    const sample = sampleOf(walkNft(setup, p.start, seededUint32(seed), true, log));
    if (log === undefined) return sample;
    const leaf: NftSampleLeaf = { sample, updates: log.recent.length > 0 ? [...log.recent] : undefined, sampleOnly: undefined };
    kept!.added(slot!.one.insert(log, leaf));
    return leaf;
  };

  /**
   * A kept sample as this packet's: the kept one itself, or (a walk that updated affinity sets)
   * one with the updates made by this packet's source, the rest shared (a literal: a spread
   * of the kept sample per lookup was most of an affinity service's hit).
   */
  const sampleFor = (got: NftSampleLeaf | TraceSample, src: string): TraceSample => {
    if (!isLeaf(got)) return got;
    if (got.updates === undefined) return got.sample;
    const base = got.sample;
    const recent = updatesFor(got.updates, src);
    return base.endpoint !== undefined
      ? { endpoint: base.endpoint, verdict: base.verdict, masquerade: base.masquerade, hops: base.hops, recent }
      : { verdict: base.verdict, masquerade: base.masquerade, hops: base.hops, recent };
  };

  /**
   * A kept sample's sampleOnly answer: made once and shared (frozen); a walk that updated
   * affinity sets gets the packet's own sample in a copy of it (see withOwnSample).
   */
  const sampleOnlyOf = (got: NftSampleLeaf | TraceSample, src: string, origin: 'PREROUTING' | 'OUTPUT'): TraceResult => {
    if (!isLeaf(got)) return sampleOnlyResult(got, origin);
    const kept = (got.sampleOnly ??= Object.freeze(sampleOnlyResult(got.sample, origin)));
    return got.updates === undefined ? kept : withOwnSample(kept, sampleFor(got, src));
  };

  /**
   * The destination side of a plain packet (as iptables mode's): both addresses seen before, of
   * one family, and no option that needs the whole flow (lists, conntrack state, interfaces);
   * false otherwise (the packet then takes the way of every packet). What a lookup needs is
   * left in `plain` (a typed array: see the iptables tracer for why): the addresses' ids, the
   * side's key, origin and mark.
   */
  const plain = new Int32Array(PLAIN_FIELDS);
  const plainSide = (packet: Packet, opts: TraceOptions): boolean => {
    if (kept === undefined || opts.recent !== undefined || opts.recentLookup !== undefined || opts.ctstate !== undefined
      || opts.inInterface !== undefined || opts.outInterface !== undefined) return false;
    const proto = packet.proto;
    const protoCode = proto === 'tcp' ? 6 : proto === 'udp' ? 17 : proto === 'sctp' ? 132 : 0;
    const { src, dst, dport, sport } = packet;
    if (protoCode === 0 || typeof src !== 'string' || typeof dst !== 'string') return false;
    const dstId = facts.idOf(dst);
    const srcId = facts.idOf(src);
    if (dstId === undefined || srcId === undefined) return false;
    const cells = facts.cells;
    const srcInfo = cells[srcId * CELL_STRIDE + CELL_INFO]!;
    if ((srcInfo & INFO_IPV6) !== (cells[dstId * CELL_STRIDE + CELL_INFO]! & INFO_IPV6)) return false;
    if (!isPort(dport, false) || (sport !== undefined && !isPort(sport, false))) return false;
    const fromNode = opts.fromNode ?? (srcInfo & INFO_LOCAL) !== 0;
    plain[PLAIN_DST] = dstId;
    plain[PLAIN_SRC] = srcId;
    plain[PLAIN_FROM_NODE] = fromNode ? 1 : 0;
    plain[PLAIN_KEY] = slotKey(protoCode, dport, fromNode);
    plain[PLAIN_MARK] = opts.mark ?? 0;
    return true;
  };

  /** A plain packet's kept answer from the class table alone (`which` 0: every outcome, 1: samples). */
  const flatLookup = <L>(which: 0 | 1, seededDraws: SeededDraws | undefined): L | undefined => {
    const src = plain[PLAIN_SRC]!;
    const cells = facts.cells;
    const info = cells[src * CELL_STRIDE + CELL_INFO]!;
    if ((info & INFO_IPV6) !== 0) return undefined;
    const table = kept!.classes;
    const region = table.sideRegion(plain[PLAIN_DST]!, plain[PLAIN_KEY]!, plain[PLAIN_MARK]!, which);
    if (region < 0) return undefined;
    const found = table.answer(region, cells[src * CELL_STRIDE + CELL_V4]! >>> 0, info & INFO_TYPE, seededDraws);
    if (found === NOT_FLAT || found === MISS || found === UNPREDICTABLE) return undefined;
    tableHits++;
    return found as L;
  };

  /**
   * A plain packet's kept answer from its side's trie, when the table did not have it; the
   * trie's region is recorded for the side, so that the next lookup reads the table.
   */
  const trieLookup = <L>(which: 0 | 1, seed: number | undefined): L | undefined => {
    const slot = kept!.find(plain[PLAIN_DST]!, plain[PLAIN_KEY]!, plain[PLAIN_MARK]! >>> 0);
    if (slot === undefined) return undefined;
    const trie = (which === 0 ? slot.all : slot.one) as unknown as DecisionTrie<L, NftFlow>;
    // Closures need the whole flow, and recent checks the lists when they are not empty.
    if (trie.calls || (!contextDynamic.empty && trie.recentReads)) return undefined;
    const src = facts.byIdOf(plain[PLAIN_SRC]!);
    const src32 = src.src32 < 0 ? -1 : src.src32 >>> 0;
    const found = trie.find(src32, src.typeBit, undefined, undefined, seed === undefined ? undefined : draws.reset(seed));
    if (src32 >= 0) kept!.classes.setSideRegion(plain[PLAIN_DST]!, plain[PLAIN_KEY]!, plain[PLAIN_MARK]!, which, trie.region());
    return found === MISS || found === UNPREDICTABLE ? undefined : found;
  };

  const plainLeaf = (seed: number): NftSampleLeaf | undefined => flatLookup<NftSampleLeaf>(1, draws.reset(seed)) ?? trieLookup<NftSampleLeaf>(1, seed);

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    cacheStats: () => ({ lookups, hits, tableHits }),
    sample: (packet, seed, opts = NO_OPTIONS) => {
      if (plainSide(packet, opts)) {
        const found = plainLeaf(seed);
        if (found !== undefined) {
          lookups++;
          hits++;
          return sampleFor(found, packet.src);
        }
      }
      const p = prepare(packet, opts);
      return sampleFor(seeded(p, seed), p.setup.flow.src);
    },
    rulesEvaluated: (packet, opts = NO_OPTIONS) => {
      const { setup, start } = prepare(packet, opts);
      return walkNft(setup, start, seededUint32(opts.seed ?? 1), false).rulesEvaluated;
    },
    trace: (packet, opts = NO_OPTIONS) => {
      if (plainSide(packet, opts)) {
        // A kept answer, found without a flow: the hit path of a load test or a simulation.
        if (opts.sampleOnly) {
          if (opts.seed !== undefined) {
            const found = plainLeaf(opts.seed);
            if (found !== undefined) {
              lookups++;
              hits++;
              return sampleOnlyOf(found, packet.src, plain[PLAIN_FROM_NODE] !== 0 ? 'OUTPUT' : 'PREROUTING');
            }
          }
        } else if (opts.seed === undefined) {
          const found = flatLookup<TraceResult>(0, undefined) ?? trieLookup<TraceResult>(0, undefined);
          if (found !== undefined) {
            lookups++;
            hits++;
            return found;
          }
        }
      }
      const p = prepare(packet, opts);
      const { setup, start, slot } = p;
      const origin = setup.flow.fromNode ? 'OUTPUT' : 'PREROUTING';
      if (opts.sampleOnly) return sampleOnlyOf(seeded(p, seedOfSampleOnly(opts)), setup.flow.src, origin);
      const lists = setup.dynamic.empty ? undefined : setup.dynamic;
      const found = slot?.all.find(p.src32, p.typeBit, setup.flow, lists, undefined) ?? UNPREDICTABLE;
      if (slot !== undefined) lookups++;
      let all: TraceResult;
      if (found !== MISS && found !== UNPREDICTABLE) {
        hits++;
        all = found;
      } else {
        const log = found === MISS ? new DecisionLog<NftFlow>() : undefined;
        const walked = walkNft(setup, start, undefined, false, log);
        const makeHops = (): Hop[] => {
          const walk = walkNft(setup, start);
          const hops = hopsOf(walk.hops!, true);
          if (walk.truncated) hops.push({ table: '', chain: '', rule: '', target: '', notes: [`more than ${MAX_NFT_PATHS} branches: the rest were not walked`] });
          return hops;
        };
        all = summarize(walked.paths, makeHops, origin, undefined);
        if (log !== undefined) kept!.added(slot!.all.insert(log, Object.freeze(all)));
      }
      return opts.seed === undefined ? all : withSample(all, sampleFor(seeded(p, opts.seed), setup.flow.src));
    },
  };
}

function isLeaf(got: NftSampleLeaf | TraceSample): got is NftSampleLeaf {
  return 'sampleOnly' in got && 'updates' in got;
}

/** Trace one packet through nftables rulesets (IPv4 and/or IPv6 tables). */
export function traceNftPacket(rulesets: NftRuleset | readonly NftRuleset[], packet: Packet, opts: TraceContext & TraceOptions): TraceResult {
  return createNftTracer(rulesets, opts).trace(packet, opts);
}
