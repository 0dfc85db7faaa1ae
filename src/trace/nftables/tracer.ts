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
import { callerRecentLists, RecentLists } from '../recent.js';
import { DecisionLog, DecisionTrie, MISS, type RecentTemplate, UNPREDICTABLE } from '../decisions.js';
import { checkPacket, sampleOnlyResult, seedOfSampleOnly, summarize, withSample } from '../tracer.js';
import type { Hop, Packet, TraceContext, TraceOptions, TraceResult, TraceSample } from '../types.js';
import { KpsimError } from '../../errors.js';
import { NftProgram } from './program.js';
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
  /** Lookups that could be answered from kept walks, and how many were (as iptables mode's). */
  cacheStats(): { readonly lookups: number; readonly hits: number };
}

function isRuleset(value: NftRuleset | readonly NftRuleset[]): value is NftRuleset {
  return !Array.isArray(value);
}

export interface CreateNftTracerOptions {
  /** false: walk every packet, keeping no walk for later packets (the baseline; see walk-cache.ts). */
  readonly cache?: boolean;
}

/** A sampled walk kept: the sample, and the dynamic-set updates with the source left open. */
interface NftSampleLeaf {
  readonly sample: TraceSample;
  readonly updates: readonly RecentTemplate[] | undefined;
  sampleOnly: TraceResult | undefined;
}

/** The walks kept for one destination side (as iptables mode's CacheSlot). */
interface NftSlot {
  readonly all: DecisionTrie<TraceResult, NftFlow>;
  readonly one: DecisionTrie<NftSampleLeaf, NftFlow>;
}

/** Trie nodes kept before the kept walks are let go (as iptables mode's). */
const MAX_NODES = 1_000_000;

export function createNftTracer(rulesets: NftRuleset | readonly NftRuleset[], context: TraceContext, options: CreateNftTracerOptions = {}): NftTracer {
  const list: readonly NftRuleset[] = isRuleset(rulesets) ? [rulesets] : rulesets;
  const programs = new Map<Family, NftProgram>([[4, new NftProgram(list, 4)], [6, new NftProgram(list, 6)]]);
  const local = new LocalAddresses(context.localAddresses);
  const addresses = new AddressCache();
  const contextDynamic = new RecentLists(context.recent);
  // Walks are kept by destination side and by the decisions that read the source or a draw,
  // as in iptables mode (decisions.ts): the nftables walk logs its matches on the source
  // (addresses, ports, fib types, dynamic sets) and its numgen draws.
  const slots = options.cache === false ? undefined : new Map<string, NftSlot>();
  let nodes = 0;
  let lookups = 0;
  let hits = 0;
  const draws = new SeededDraws();
  const keep = (added: number): void => {
    nodes += added;
    if (nodes > MAX_NODES) {
      slots!.clear();
      nodes = 0;
    }
  };

  const prepare = (packet: Packet, opts: TraceOptions): { setup: NftWalkSetup; start: { dst: string; dport: number; mark: number }; slot: NftSlot | undefined } => {
    const checked = checkPacket(packet);
    const program = programs.get(checked.family)!;
    if (program.tables.length === 0) {
      throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${checked.family} packet, but there is no ${checked.family === 4 ? 'ip or inet' : 'ip6 or inet'} table`, { path: 'packet.dst' });
    }
    const fromNode = opts.fromNode ?? local.isLocal(checked.src, addresses.words(checked.src));
    const setup: NftWalkSetup = {
      program, local, addresses,
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
    let slot: NftSlot | undefined;
    if (slots !== undefined && opts.ctstate === undefined && opts.inInterface === undefined && opts.outInterface === undefined) {
      const key = `${checked.dst} ${checked.proto} ${checked.dport} ${fromNode ? 1 : 0} ${mark >>> 0}`;
      slot = slots.get(key);
      if (slot === undefined) slots.set(key, (slot = { all: new DecisionTrie(), one: new DecisionTrie() }));
    }
    return { setup, start: { dst: checked.dst, dport: checked.dport, mark }, slot };
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
  const seeded = (setup: NftWalkSetup, start: { dst: string; dport: number; mark: number }, slot: NftSlot | undefined, seed: number): NftSampleLeaf | TraceSample => {
    const lists = setup.dynamic.empty ? undefined : setup.dynamic;
    const found = slot?.one.find(-1, 0, setup.flow, lists, draws.reset(seed)) ?? UNPREDICTABLE;
    if (slot !== undefined) lookups++;
    if (found !== MISS && found !== UNPREDICTABLE) {
      hits++;
      return found;
    }
    const log = found === MISS ? new DecisionLog<NftFlow>() : undefined;
    const sample = sampleOf(walkNft(setup, start, seededUint32(seed), true, log));
    if (log === undefined) return sample;
    const leaf: NftSampleLeaf = { sample, updates: log.recent.length > 0 ? [...log.recent] : undefined, sampleOnly: undefined };
    keep(slot!.one.insert(log, leaf));
    return leaf;
  };

  const sampleFor = (got: NftSampleLeaf | TraceSample, src: string): TraceSample => {
    if (!('sampleOnly' in got && 'updates' in got)) return got;
    if (got.updates === undefined) return got.sample;
    const { recent: _recent, ...rest } = got.sample;
    return { ...rest, recent: updatesFor(got.updates, src) };
  };

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    cacheStats: () => ({ lookups, hits }),
    sample: (packet, seed, opts = {}) => {
      const { setup, start, slot } = prepare(packet, opts);
      return sampleFor(seeded(setup, start, slot, seed), setup.flow.src);
    },
    rulesEvaluated: (packet, opts = {}) => {
      const { setup, start } = prepare(packet, opts);
      return walkNft(setup, start, seededUint32(opts.seed ?? 1), false).rulesEvaluated;
    },
    trace: (packet, opts = {}) => {
      const { setup, start, slot } = prepare(packet, opts);
      const origin = setup.flow.fromNode ? 'OUTPUT' : 'PREROUTING';
      if (opts.sampleOnly) {
        const got = seeded(setup, start, slot, seedOfSampleOnly(opts));
        if ('sampleOnly' in got && 'updates' in got && got.updates === undefined) {
          return (got.sampleOnly ??= Object.freeze(sampleOnlyResult(got.sample, origin)));
        }
        return sampleOnlyResult(sampleFor(got, setup.flow.src), origin);
      }
      const lists = setup.dynamic.empty ? undefined : setup.dynamic;
      const found = slot?.all.find(-1, 0, setup.flow, lists, undefined) ?? UNPREDICTABLE;
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
        if (log !== undefined) keep(slot!.all.insert(log, Object.freeze(all)));
      }
      return opts.seed === undefined ? all : withSample(all, sampleFor(seeded(setup, start, slot, opts.seed), setup.flow.src));
    },
  };
}

/** Trace one packet through nftables rulesets (IPv4 and/or IPv6 tables). */
export function traceNftPacket(rulesets: NftRuleset | readonly NftRuleset[], packet: Packet, opts: TraceContext & TraceOptions): TraceResult {
  return createNftTracer(rulesets, opts).trace(packet, opts);
}
