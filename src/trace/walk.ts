/**
 * Walking a packet through the hooks and chains, as netfilter does for the first packet of a
 * connection:
 *
 *   arriving:  nat PREROUTING → routing → filter INPUT (local) | filter FORWARD → nat POSTROUTING
 *   from node: nat OUTPUT → filter OUTPUT → nat POSTROUTING → filter INPUT (when local)
 *
 * Within a hook the chains run as iptables runs them: rules in order, a jump pushes a
 * chain, RETURN or the end of a chain pops it, the end of a built-in chain applies its policy,
 * ACCEPT ends the table for this hook, DNAT and MASQUERADE end the nat table, DROP and REJECT
 * end the packet. A DNAT changes the destination the later hooks see, and routing then sends
 * the packet to INPUT or FORWARD.
 *
 * A `statistic` rule is random. Walking all outcomes, the walk forks there: one path takes the
 * rule (its chance multiplied by the rule's), the other goes on to the next rule (multiplied by
 * the rest); paths are finished depth first, the taken branch before the other, and each
 * matched rule is recorded once, in the order it was walked. Walking one sample, the random
 * source decides instead, as the kernel's own random draw would (a 31-bit draw below the stored
 * probability). A rule's deterministic checks run before its draw, so draws are made only for
 * rules that can match; the chances are the kernel's, the sequence of draws is kpsim's own.
 *
 * Simplifications, each noted where it applies: `recent --set/--update/--remove` take effect
 * when the whole rule matches; `statistic --mode nth` counts as 1 in `every`; the mangle and raw
 * tables are not walked; interfaces are unknown unless given.
 */
import { KpsimError } from '../errors.js';
import { joinHostPort } from '../util/ip.js';
import type { AddressCache, LocalAddresses } from './addresses.js';
import { ACTION, type CompiledChain, type CompiledRule, type CompiledTarget, type RandomStep } from './compile-rule.js';
import { addressTypeBit, CHECK, checkFlags, passesChecks, passesSourceChecks, randomStored, SOURCE_CHECKS } from './fast-checks.js';
import { PROBABILITY_SCALE } from '../iptables/rule-values.js';
import type { PreparedRuleset } from './prepared-ruleset.js';
import { lookupRecent, recentKey, type RecentChange, RecentLists, type RecentSource } from './recent.js';
import type { DecisionLog, Draw } from './decisions.js';
import { HopLog } from './hop-log.js';
import type { Verdict } from './types.js';
import type { Flow, PathState, Stage } from './walk-state.js';
export type { Draw } from './decisions.js';
import { StageMemo, UNCLEAN_CHECKS } from './stage-memo.js';

/** Lists with nobody in them (a recent check's answer for a client nobody has seen). */
const EMPTY_LISTS = new RecentLists(undefined);

/** More paths than this means a ruleset that multiplies statistic branches; stop forking. */
export const MAX_PATHS = 4096;

/** Jumps deeper than this can only be a loop (iptables-restore refuses loops). */
const MAX_DEPTH = 64;

export interface WalkSetup {
  readonly program: PreparedRuleset;
  readonly flow: Flow;
  readonly recentLists: RecentSource;
  readonly local: LocalAddresses;
  readonly addresses: AddressCache;
  readonly masqueradeMark: number;
  /** false: walk every stage of every path (see StageMemo; the baseline it is tested against). */
  readonly reuseStages?: boolean;
}

export interface PathOutcome {
  readonly verdict: Verdict;
  readonly endpoint: string | undefined;
  readonly masquerade: boolean;
  readonly probability: number;
  /** The path's changes to `recent` lists, newest first (what a sampled walk leaves behind). */
  readonly recent: RecentChange | undefined;
}

export interface WalkResult {
  readonly paths: PathOutcome[];
  /** undefined when the walk was asked not to record hops. */
  readonly hops: HopLog | undefined;
  /** The walk stopped forking at MAX_PATHS. */
  readonly truncated: boolean;
}

/**
 * Walk every outcome, or, given `draw`, the one outcome its draws pick. With `recordHops`
 * false the hops are not kept: the walk is a pure function of its setup and start, so a caller
 * can walk again with hops when someone asks for them. Given `log`, every decision that reads
 * the packet's source or a random draw is logged there (see decisions.ts).
 */
export function walk(setup: WalkSetup, start: PathState, draw?: Draw, recordHops = true, log?: DecisionLog): WalkResult {
  const walker = new Walker(setup, draw, recordHops, log);
  const paths: PathOutcome[] = [];
  let state: PathState | undefined = start;
  while (state) {
    walker.advance(state);
    paths.push(outcomeOf(state));
    // Finished: its object (and stack arrays) serve the next fork, so a walk of n branches
    // makes about two PathStates rather than n.
    walker.spare.push(state);
    state = walker.pending.pop();
  }
  return { paths, hops: walker.hops, truncated: walker.truncated };
}

function outcomeOf(state: PathState): PathOutcome {
  const verdict: Verdict = state.verdict ?? (state.endpoint !== undefined ? 'DNAT' : state.accepted ? 'ACCEPT' : 'NONE');
  const dropped = verdict === 'DROP' || verdict === 'REJECT';
  return {
    verdict,
    endpoint: dropped ? undefined : state.endpoint,
    masquerade: !dropped && state.masquerade,
    probability: state.probability,
    recent: state.recent,
  };
}

class Walker {
  readonly pending: PathState[] = [];
  /** Finished paths, to be reused by forks. */
  readonly spare: PathState[] = [];
  readonly hops: HopLog | undefined;
  truncated = false;
  private forks = 0;
  /** Stages recorded by one path for the next (all outcomes, no hops). */
  private readonly memo: StageMemo | undefined;
  private readonly lookup = (chain: CompiledChain, state: PathState): readonly number[] => this.candidates(chain, state);

  constructor(
    private readonly setup: WalkSetup, private readonly draw: Draw | undefined, recordHops: boolean,
    private readonly log: DecisionLog | undefined,
  ) {
    this.hops = recordHops ? new HopLog(draw === undefined) : undefined;
    this.memo = !recordHops && draw === undefined && setup.reuseStages !== false ? new StageMemo() : undefined;
  }

  /** Run one path until it ends, leaving the other branches of its forks in `pending`. */
  advance(state: PathState): void {
    const { flow } = this.setup;
    const memo = this.memo;
    for (;;) {
      if (state.verdict !== undefined || state.stage === 'done') {
        memo?.end(state);
        return;
      }
      const top = state.depth - 1;
      if (top < 0) {
        if (state.stageStarted) {
          memo?.end(state);
          state.stage = this.nextStage(state.stage, state);
          state.stageStarted = false;
          continue;
        }
        if (memo) {
          state.stageStarted = true;
          if (memo.replay(state, this.lookup)) continue;
          memo.begin(state);
        }
        const builtin = this.setup.program.stageBuiltin(state.stage);
        state.push(builtin, this.candidates(builtin, state));
        state.stageStarted = true;
        continue;
      }
      const candidates = state.candidates[top]!;
      const next = state.nexts[top]!;
      if (next >= candidates.length) {
        this.leaveChain(state);
        continue;
      }
      state.nexts[top] = next + 1;
      const chain = state.chains[top]!;
      const at = candidates[next]!;
      // The packed checks first; the rule's own object (cold memory in a big ruleset) is read
      // only when they pass and something else is needed. Every deterministic check runs
      // before a random one, so a fork is made only for a rule that can match.
      const row = chain.checksRow + at;
      const flags = checkFlags(chain.checks, row);
      if ((flags & UNCLEAN_CHECKS) !== 0 && memo?.recording) memo.spoil();
      if (this.log !== undefined) {
        if (!this.passesLogged(chain, row, at, flags, state)) continue;
      } else {
        if (flags !== 0 && !passesChecks(chain.checks, row, flags, flow, state)) continue;
        if ((flags & CHECK.SLOW) !== 0 && !chain.rules[at]!.test!(flow, state)) continue;
        if ((flags & CHECK.RECENT) !== 0 && !recentMatches(chain.rules[at]!, flow, this.setup.recentLists, state)) continue;
        if ((flags & CHECK.RANDOM) !== 0 && !this.takePackedRandom(chain, row, flags, state)) continue;
        if ((flags & CHECK.MORE_RANDOM) !== 0 && !this.takeRandom(chain.rules[at]!, state)) continue;
      }
      const rule = chain.rules[at]!;
      if (!rule.silent) this.record(rule, state);
      if ((flags & CHECK.RECENT) !== 0) this.applyRecent(rule, state);
      this.applyTarget(rule, state);
    }
  }

  /**
   * The rule's checks as in `advance`, each decision that reads the source or a draw logged
   * with a way to ask it again (decisions.ts). The checks that read only the path run first:
   * their answers follow from the destination side and the decisions before.
   */
  private passesLogged(chain: CompiledChain, row: number, at: number, flags: number, state: PathState): boolean {
    const log = this.log!;
    const { flow, recentLists } = this.setup;
    const checks = chain.checks;
    if (flags !== 0 && !passesChecks(checks, row, flags & ~SOURCE_CHECKS, flow, state)) return false;
    if ((flags & SOURCE_CHECKS) !== 0) {
      const ok = passesSourceChecks(checks, row, flags, flow);
      log.addSourceChecks(checks, row, flags, ok);
      if (!ok) return false;
    }
    const rule = chain.rules[at]!;
    if ((flags & CHECK.SLOW) !== 0) {
      const test = rule.test!;
      const ok = test(flow, state);
      const frozen = state.snapshot();
      log.add((f) => test(f, frozen), ok);
      if (!ok) return false;
    }
    if ((flags & CHECK.RECENT) !== 0) {
      // The path's own changes hold the source's address: no decision can ask them again.
      if (state.recent !== undefined) log.unpredictable = true;
      const ok = recentMatches(rule, flow, recentLists, state);
      const frozen = state.snapshot();
      const whenEmpty = recentLists.empty ? ok : recentMatches(rule, flow, EMPTY_LISTS, frozen);
      log.addRecent((f, lists) => recentMatches(rule, f, lists, frozen), ok, whenEmpty);
      if (!ok) return false;
    }
    const draw = this.draw;
    if ((flags & CHECK.RANDOM) !== 0) {
      const ok = this.takePackedRandom(chain, row, flags, state);
      if (draw !== undefined) {
        const stored = randomStored(checks, row);
        const negated = (flags & CHECK.RANDOM_NEG) !== 0;
        log.addDraw(stored, negated, ok);
      }
      if (!ok) return false;
    }
    if ((flags & CHECK.MORE_RANDOM) !== 0) {
      const ok = this.takeRandom(rule, state);
      if (draw !== undefined) log.add((_f, _l, d) => rule.randoms.every((step) => drawMatches(step, d!)), ok);
      if (!ok) return false;
    }
    return true;
  }

  private candidates(chain: CompiledChain, state: PathState): readonly number[] {
    if (chain.whole) return chain.whole;
    const found = chain.index.candidates(state.dst, this.setup.flow.proto, state.dport);
    this.memo?.looked(chain, found);
    return found;
  }

  /** Off the end of a chain, or RETURN: back to the caller; off a built-in chain: its policy. */
  private leaveChain(state: PathState): void {
    const left = state.chains[--state.depth]!;
    if (state.depth > 0) return;
    const builtin = left.builtin ? left : this.setup.program.stageBuiltin(this.stage(state));
    if (builtin.policy === 'DROP') {
      this.hops?.policy(builtin, state.probability);
      state.verdict = 'DROP';
    }
  }

  private stage(state: PathState): Exclude<Stage, 'done'> {
    if (state.stage === 'done') throw new Error('walk: no stage after done');
    return state.stage;
  }

  private nextStage(stage: Stage, state: PathState): Stage {
    const local = state.dstType === 'LOCAL';
    switch (stage) {
      case 'nat PREROUTING': return local ? 'filter INPUT' : 'filter FORWARD';
      case 'filter FORWARD': return 'nat POSTROUTING';
      case 'nat OUTPUT': return 'filter OUTPUT';
      case 'filter OUTPUT': return 'nat POSTROUTING';
      case 'nat POSTROUTING': return this.setup.flow.fromNode && local ? 'filter INPUT' : 'done';
      default: return 'done';
    }
  }

  private record(rule: CompiledRule, state: PathState): void {
    this.hops?.rule(rule, state.probability, state.depth - 1);
  }

  // ------------------------------------------------------------ statistic

  /** Whether the path goes on with this rule matched; forks off the other branch. */
  private takeRandom(rule: CompiledRule, state: PathState): boolean {
    const draw = this.draw;
    if (draw) return rule.randoms.every((step) => drawMatches(step, draw));
    return this.branch(rule.factor, state);
  }

  /** The rule's packed `statistic --mode random` match: drawn, or forked on. */
  private takePackedRandom(chain: CompiledChain, row: number, flags: number, state: PathState): boolean {
    const stored = randomStored(chain.checks, row);
    const negated = (flags & CHECK.RANDOM_NEG) !== 0;
    const draw = this.draw;
    if (draw) return ((draw() & 0x7fffffff) < stored) !== negated;
    const p = stored / PROBABILITY_SCALE;
    return this.branch(negated ? 1 - p : p, state);
  }

  /** Go on with the rule matched (chance `chance`), leaving the other branch for later. */
  private branch(chance: number, state: PathState): boolean {
    if (chance <= 0) return false;
    if (chance >= 1) return true;
    if (this.forks >= MAX_PATHS) {
      this.truncated = true;
      return false;
    }
    this.forks++;
    const other = this.spare.pop()?.copyFrom(state) ?? state.fork();
    other.probability *= 1 - chance;
    this.pending.push(other);
    state.probability *= chance;
    return true;
  }

  // ------------------------------------------------------------ recent

  private applyRecent(rule: CompiledRule, state: PathState): void {
    const { flow, recentLists } = this.setup;
    for (const step of rule.recent) {
      if (step.command === 'rcheck') continue;
      const { ip, words } = step.side === 'source' ? { ip: flow.src, words: flow.srcWords } : { ip: state.dst, words: state.dstWords };
      const key = recentKey(ip, words, step.mask);
      const seen = lookupRecent(state.recent, recentLists, step.list, key, words, step.mask);
      const next = step.command === 'remove' ? undefined : { ageSeconds: 0, hits: (seen?.hits ?? 0) + 1 };
      state.recent = { list: step.list, ip: key, seen: next, previous: state.recent };
      this.log?.recent.push({ list: step.list, ip: step.side === 'source' ? undefined : key, mask: step.mask, removed: next === undefined });
    }
  }

  // ------------------------------------------------------------ targets

  private applyTarget(rule: CompiledRule, state: PathState): void {
    // Ordered by how often kube-proxy rules reach them: jumps, then DNAT.
    switch (rule.action) {
      case ACTION.JUMP: {
        const chain = rule.jumpChain ??= this.resolveJump(rule);
        if (state.depth >= MAX_DEPTH) {
          throw new KpsimError('KPSIM_ERR_IPTABLES_PARSE', `chain ${chain.name} is reached through a loop of jumps (iptables-restore refuses loops)`, { object: `table ${rule.table}` });
        }
        const candidates = this.candidates(chain, state);
        // A jump into a chain with no rule that can match comes straight back: no frame needed.
        if (candidates.length === 0 && !rule.goto) return;
        if (rule.goto) state.depth--;
        state.push(chain, candidates);
        return;
      }
      case ACTION.DNAT: {
        this.memo?.spoil();
        const to = rule.dnatTo;
        if (to) {
          // The usual case, an address and a port: all worked out when the rule was compiled.
          state.endpoint = to.endpoint ?? joinHostPort(to.ip, state.dport);
          state.dst = to.ip;
          state.dstWords = to.words;
          state.dst32 = to.dst32;
          state.dstType = to.type;
          state.dstTypeBit = to.typeBit;
          state.dport = to.port ?? state.dport;
          state.dnatDone = true;
        } else {
          const target = rule.target as Extract<CompiledTarget, { kind: 'dnat' }>;
          this.dnat(state, state.dst, target.port ?? state.dport);
        }
        state.depth = 0;
        return;
      }
      case ACTION.NONE:
        return;
      case ACTION.ACCEPT:
        if (rule.table === 'filter') state.accepted = true;
        state.depth = 0;
        return;
      case ACTION.DROP:
        state.verdict = 'DROP';
        return;
      case ACTION.REJECT:
        state.verdict = 'REJECT';
        return;
      case ACTION.RETURN:
        this.leaveChain(state);
        return;
      case ACTION.MASQUERADE:
        state.masquerade = true;
        state.depth = 0;
        return;
      case ACTION.MARK:
        state.mark = ((state.mark & ~rule.markMask) ^ rule.markValue) >>> 0;
        return;
      case ACTION.MARK_MASQ:
        state.mark = (state.mark | this.setup.masqueradeMark) >>> 0;
        return;
      case ACTION.POSTROUTING:
        if ((state.mark & this.setup.masqueradeMark) !== 0) {
          state.mark = (state.mark ^ this.setup.masqueradeMark) >>> 0;
          state.masquerade = true;
          state.depth = 0;
        }
        return;
    }
  }

  private resolveJump(rule: CompiledRule): CompiledChain {
    const target = rule.target as Extract<CompiledTarget, { kind: 'jump' }>;
    const chain = this.setup.program.chain(rule.table, target.chain, rule.chain);
    if (!chain) throw new Error(`walk: chain ${target.chain} vanished from table ${rule.table}`);
    return chain;
  }

  private dnat(state: PathState, ip: string, port: number): void {
    const words = this.setup.addresses.words(ip);
    state.endpoint = joinHostPort(ip, port);
    state.dst = ip;
    state.dstWords = words;
    state.dst32 = words.length === 1 ? words[0]! : -1;
    state.dstType = this.setup.local.addressType(ip, words);
    state.dstTypeBit = addressTypeBit(state.dstType);
    state.dport = port;
    state.dnatDone = true;
  }
}

function drawMatches(step: RandomStep, draw: () => number): boolean {
  const value = draw();
  const hit = step.mode === 'random' ? (value & 0x7fffffff) < step.stored : value / 0x100000000 < 1 / step.every;
  return hit !== step.negated;
}

/** Whether the rule's `recent` steps all match, for this flow and these lists. */
function recentMatches(rule: CompiledRule, flow: Flow, recentLists: RecentSource, state: PathState): boolean {
  for (const step of rule.recent) {
    const { ip, words } = step.side === 'source' ? { ip: flow.src, words: flow.srcWords } : { ip: state.dst, words: state.dstWords };
    const key = recentKey(ip, words, step.mask);
    const seen = lookupRecent(state.recent, recentLists, step.list, key, words, step.mask);
    let found: boolean;
    if (step.command === 'set') {
      found = true;
    } else {
      found = seen !== undefined;
      if (found && step.command !== 'remove') {
        if (step.seconds !== undefined && seen!.ageSeconds >= step.seconds) found = false;
        if (step.hitcount !== undefined && seen!.hits < step.hitcount) found = false;
      }
    }
    if (found === step.negated) return false;
  }
  return true;
}
