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
import { countNftRules } from '../../nftables/render-script.js';
import { SeededDraws, seededUint32 } from '../../util/random.js';
import type { Family } from '../../util/ip.js';
import { AddressCache, LocalAddresses } from '../addresses.js';
import { CLASS_NUMBERS_PER_RULE } from '../class-table.js';
import { callerRecentLists, RecentLists } from '../recent.js';
import { DecisionLog, type DecisionTrie, MISS, UNPREDICTABLE } from '../decisions.js';
import { protocolCode } from '../fast-checks.js';
import { AddressFactsCache } from '../address-facts.js';
import { PlainPacket } from '../plain-packet.js';
import { checkPacket, sampleOnlyResult, seedOfSampleOnly, summarize, withOwnSample, withSample } from '../tracer.js';
import type { Hop, Packet, TraceContext, TraceOptions, TraceResult, TraceSample } from '../types.js';
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
  // The class table sized by the rules, as iptables mode's (see ClassTable: a table that doubles
  // mid-stream made V8 collect the whole heap, and sampleOnly lookups ran at a third of their rate).
  const kept = options.cache === false ? undefined : new NftKeptWalks(list.reduce((n, ruleset) => n + countNftRules(ruleset).rules, 0) * CLASS_NUMBERS_PER_RULE);
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

  /** A plain packet's side, read without a flow (plain-packet.ts, as iptables mode's). */
  const plain = new PlainPacket(facts, local);
  const plainSide = (packet: Packet, opts: TraceOptions): boolean => kept !== undefined && plain.read(packet, opts, false);

  /** A plain packet's kept answer from the class table alone (`which` 0: every outcome, 1: samples). */
  const flatLookup = <L>(which: 0 | 1, seededDraws: SeededDraws | undefined): L | undefined => {
    const found = plain.fromTable(kept!.classes, which, seededDraws);
    if (found === undefined) return undefined;
    tableHits++;
    return found as L;
  };

  /**
   * A plain packet's kept answer from its side's trie, when the table did not have it; the
   * trie's region is recorded for the side, so that the next lookup reads the table.
   */
  const trieLookup = <L>(packet: Packet, which: 0 | 1, seed: number | undefined): L | undefined => {
    const slot = kept!.find(plain.dstFacts(packet).id, plain.key, plain.mark);
    if (slot === undefined) return undefined;
    const trie = (which === 0 ? slot.all : slot.one) as unknown as DecisionTrie<L, NftFlow>;
    // Closures need the whole flow, and recent checks the lists when they are not empty.
    if (trie.calls || (!contextDynamic.empty && trie.recentReads)) return undefined;
    const found = trie.find(plain.src32, plain.srcTypeBit, undefined, undefined, seed === undefined ? undefined : draws.reset(seed));
    plain.recordRegion(kept!.classes, which, trie.region());
    return found === MISS || found === UNPREDICTABLE ? undefined : found;
  };

  const plainLeaf = (packet: Packet, seed: number): NftSampleLeaf | undefined => flatLookup<NftSampleLeaf>(1, draws.reset(seed)) ?? trieLookup<NftSampleLeaf>(packet, 1, seed);

  /**
   * A packet the plain path did not answer: prepared with its flow, then kept walks or a walk.
   * A function of its own: `makeHops` closes over its variables, and a function with a closure
   * makes its context on every call, 40 bytes per lookup on the plain path when they shared one.
   */
  const traceWalked = (packet: Packet, opts: TraceOptions): TraceResult => {
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
  };

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    cacheStats: () => ({ lookups, hits, tableHits }),
    sample: (packet, seed, opts = NO_OPTIONS) => {
      if (plainSide(packet, opts)) {
        const found = plainLeaf(packet, seed);
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
            const found = plainLeaf(packet, opts.seed);
            if (found !== undefined) {
              lookups++;
              hits++;
              return sampleOnlyOf(found, packet.src, plain.fromNode ? 'OUTPUT' : 'PREROUTING');
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
      return traceWalked(packet, opts);
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
