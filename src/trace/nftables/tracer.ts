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
import { seededUint32 } from '../../util/random.js';
import type { Family } from '../../util/ip.js';
import { AddressCache, LocalAddresses } from '../addresses.js';
import { callerRecentLists, RecentLists } from '../recent.js';
import { checkPacket, sampleOnlyResult, seedOfSampleOnly, summarize } from '../tracer.js';
import type { Hop, Packet, TraceContext, TraceOptions, TraceResult, TraceSample } from '../types.js';
import { KpsimError } from '../../errors.js';
import { NftProgram } from './program.js';
import { hopsOf, MAX_NFT_PATHS, type NftWalkResult, type NftWalkSetup, walkNft } from './walk.js';

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
}

function isRuleset(value: NftRuleset | readonly NftRuleset[]): value is NftRuleset {
  return !Array.isArray(value);
}

export function createNftTracer(rulesets: NftRuleset | readonly NftRuleset[], context: TraceContext): NftTracer {
  const list: readonly NftRuleset[] = isRuleset(rulesets) ? [rulesets] : rulesets;
  const programs = new Map<Family, NftProgram>([[4, new NftProgram(list, 4)], [6, new NftProgram(list, 6)]]);
  const local = new LocalAddresses(context.localAddresses);
  const addresses = new AddressCache();
  const contextDynamic = new RecentLists(context.recent);

  const prepare = (packet: Packet, opts: TraceOptions): { setup: NftWalkSetup; start: { dst: string; dport: number; mark: number } } => {
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
    return { setup, start: { dst: checked.dst, dport: checked.dport, mark: opts.mark ?? 0 } };
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

  return {
    warm: () => {
      for (const program of programs.values()) program.warm();
    },
    sample: (packet, seed, opts = {}) => {
      const { setup, start } = prepare(packet, opts);
      return sampleOf(walkNft(setup, start, seededUint32(seed)));
    },
    rulesEvaluated: (packet, opts = {}) => {
      const { setup, start } = prepare(packet, opts);
      return walkNft(setup, start, seededUint32(opts.seed ?? 1), false).rulesEvaluated;
    },
    trace: (packet, opts = {}) => {
      const { setup, start } = prepare(packet, opts);
      const origin = setup.flow.fromNode ? 'OUTPUT' : 'PREROUTING';
      if (opts.sampleOnly) return sampleOnlyResult(sampleOf(walkNft(setup, start, seededUint32(seedOfSampleOnly(opts)))), origin);
      const all = walkNft(setup, start, undefined, false);
      const sample = opts.seed === undefined ? undefined : sampleOf(walkNft(setup, start, seededUint32(opts.seed)));
      const makeHops = (): Hop[] => {
        const walk = walkNft(setup, start);
        const hops = hopsOf(walk.hops!, true);
        if (walk.truncated) hops.push({ table: '', chain: '', rule: '', target: '', notes: [`more than ${MAX_NFT_PATHS} branches: the rest were not walked`] });
        return hops;
      };
      return summarize(all.paths, makeHops, origin, sample);
    },
  };
}

/** Trace one packet through nftables rulesets (IPv4 and/or IPv6 tables). */
export function traceNftPacket(rulesets: NftRuleset | readonly NftRuleset[], packet: Packet, opts: TraceContext & TraceOptions): TraceResult {
  return createNftTracer(rulesets, opts).trace(packet, opts);
}
