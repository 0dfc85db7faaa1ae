/**
 * Walking the first packet of a connection through nftables base chains, as the kernel does:
 *
 *   arriving:  prerouting → routing → input (local) | forward → postrouting
 *   from node: output → postrouting → (back in through lo) prerouting → input (when local)
 *
 * At each hook the base chains of every table of the packet's family run in priority order.
 * In a chain, rules run in order and a rule's statements left to right: a match that fails
 * ends the rule; a verdict ends it (accept ends the base chain, and the packet goes on to the
 * next base chain of the hook; drop and reject end the packet; jump and goto enter a chain;
 * return or the end of a regular chain comes back). The end of a base chain applies its
 * policy. dnat, snat and masquerade accept the packet in their chain, and once a nat chain has
 * set up a mapping the hook's later nat chains are skipped (nf_nat_inet_fn). A DNAT changes
 * the destination later hooks and the routing decision see. A packet the node sends to itself
 * passes prerouting on its way back in through lo, where only non-nat chains run: both of its
 * NAT mappings were set up on the way out (nf_nat_inet_fn skips nat chains once they are).
 *
 * `numgen random mod N` is random. Walking all outcomes, the walk forks there, one path per
 * verdict-map entry, each with the chance the kernel gives it (reciprocal_scale of a 32-bit
 * random number, see nftables/numgen.ts).
 * Walking one sample, a 32-bit draw picks the index. Paths are finished depth first, the
 * first entry before the others; each matched rule is recorded once, in walk order.
 *
 * Simplifications, noted on the hops where they apply: interfaces are unknown unless given;
 * a rule with a statement kpsim does not evaluate is taken as not matching; `update @set`
 * takes effect after the packet (it cannot change this packet's walk).
 */
import { KpsimError } from '../../errors.js';
import { addressValue, intervalContains, parseAddressInterval } from '../../nftables/addresses.js';
import type { Operand, RelOp, Selector, Statement, Verdict as NftVerdict } from '../../nftables/rule-ast.js';
import { statementText, verdictText } from '../../nftables/rule-print.js';
import { elementText } from '../../nftables/render-script.js';
import { numgenIndex, numgenProbabilities } from '../../nftables/numgen.js';
import { tableId, type NftElement } from '../../nftables/types.js';
import { joinHostPort, normalizeIP, splitHostPortText } from '../../util/ip.js';
import type { LocalAddresses } from '../addresses.js';
import type { AddressCache } from '../addresses.js';
import type { RecentSource } from '../recent.js';
import type { DecisionLog, RecentTemplate } from '../decisions.js';
import type { Hop, SetLookup, Verdict } from '../types.js';
import type { PathOutcome } from '../walk.js';
import type { RecentUpdate } from '../types.js';
import { addressTypeBit, sourcePasses } from '../fast-checks.js';
import type { NftSourceMatches, PackedSourceMatch } from './source-matches.js';

/** A path's outcome, with the dynamic-set updates it made. */
export interface NftPathOutcome extends PathOutcome {
  readonly updates: readonly RecentUpdate[];
}
import { type CompiledChain, type CompiledRule, type Hook, keyOf, normalizeKeyPart, NftProgram, PROTOCOL_NAMES } from './program.js';

/** More paths than this is a ruleset that multiplies numgen branches; stop forking. */
export const MAX_NFT_PATHS = 4096;
/** Chains nested deeper than this can only be a loop (nft refuses loops). */
const MAX_DEPTH = 64;

export interface NftFlow {
  readonly proto: 'tcp' | 'udp' | 'sctp';
  readonly src: string;
  readonly sport: number | undefined;
  readonly fromNode: boolean;
  /** Conntrack state words (default ["new"]). */
  readonly ctState: readonly string[];
  readonly inInterface: string | undefined;
  readonly outInterface: string | undefined;
}

export interface NftWalkSetup {
  readonly program: NftProgram;
  readonly flow: NftFlow;
  readonly local: LocalAddresses;
  readonly addresses: AddressCache;
  /** Dynamic sets' members (affinity): by set name, as `recent` lists. */
  readonly dynamic: RecentSource;
  /** Packed forms of source matches, for walks that log their decisions (kept walks' source classes). */
  readonly sourceMatches?: NftSourceMatches;
}

interface Frame {
  readonly chain: CompiledChain;
  next: number;
}

/** One path of the walk: where it is and what has happened to the packet. */
class NftPath {
  dst = '';
  dport = 0;
  mark = 0;
  endpoint: string | undefined;
  masquerade = false;
  accepted = false;
  verdict: Verdict | undefined;
  dnatDone = false;
  /** A nat chain of the current hook set up a mapping: the hook's other nat chains are skipped. */
  natInHook = false;
  /** Sent by the node to itself and come back in through lo: its NAT is settled. */
  looped = false;
  probability = 1;
  hook: Hook | 'done' = 'prerouting';
  /** Index of the current base chain in its hook; -1 before the first. */
  baseIndex = -1;
  stack: Frame[] = [];
  /** `update @set { ip saddr }` statements this path ran, oldest first (kube-proxy's affinity). */
  updates: RecentUpdate[] = [];

  clone(): NftPath {
    const p = new NftPath();
    p.dst = this.dst;
    p.dport = this.dport;
    p.mark = this.mark;
    p.endpoint = this.endpoint;
    p.masquerade = this.masquerade;
    p.accepted = this.accepted;
    p.verdict = this.verdict;
    p.dnatDone = this.dnatDone;
    p.natInHook = this.natInHook;
    p.looped = this.looped;
    p.probability = this.probability;
    p.hook = this.hook;
    p.baseIndex = this.baseIndex;
    p.stack = this.stack.map((f) => ({ chain: f.chain, next: f.next }));
    p.updates = this.updates.length === 0 ? this.updates : [...this.updates];
    return p;
  }
}

/** A matched rule (or a chain's policy), kept compactly until hops are read. */
interface HopRecord {
  readonly rule?: CompiledRule;
  readonly policy?: { readonly table: string; readonly chain: string; readonly policy: string };
  readonly target: string;
  readonly probability: number;
  readonly depth: number;
  readonly lookups?: readonly SetLookup[];
  readonly notes?: readonly string[];
}

export interface NftWalkResult {
  readonly paths: NftPathOutcome[];
  readonly hops: HopRecord[] | undefined;
  readonly truncated: boolean;
  /** Rules evaluated (matched or not), over all paths: the work the kernel does for this packet. */
  readonly rulesEvaluated: number;
}

type Value = { readonly kind: 'value'; readonly parts: readonly string[] } | { readonly kind: 'absent' } | { readonly kind: 'unknown'; readonly why: string };

const ABSENT: Value = { kind: 'absent' };

/** Statement outcome: go on with the rule, the rule does not match, or it could not be evaluated. */
type Step = 'next' | 'nomatch' | { readonly unknown: string };

export function walkNft(
  setup: NftWalkSetup, start: { dst: string; dport: number; mark: number }, draw?: () => number, recordHops = true, log?: DecisionLog<NftFlow>,
): NftWalkResult {
  const walker = new NftWalker(setup, draw, recordHops, log);
  const first = new NftPath();
  first.dst = start.dst;
  first.dport = start.dport;
  first.mark = start.mark >>> 0;
  first.hook = setup.flow.fromNode ? 'output' : 'prerouting';
  const paths: NftPathOutcome[] = [];
  let next: Pending | undefined = { path: first };
  while (next) {
    const { path, branch } = next;
    // A forked numgen branch takes its verdict when it is resumed, so that its hop comes after
    // the hops of the paths walked before it.
    if (branch) walker.takeBranch(path, branch.rule, branch.hit, branch.lookups, branch.notes);
    walker.advance(path);
    paths.push(outcomeOf(path));
    next = walker.pending.pop();
  }
  return { paths, hops: walker.hops, truncated: walker.truncated, rulesEvaluated: walker.rulesEvaluated };
}

function outcomeOf(path: NftPath): NftPathOutcome {
  const verdict: Verdict = path.verdict ?? (path.endpoint !== undefined ? 'DNAT' : path.accepted ? 'ACCEPT' : 'NONE');
  const dropped = verdict === 'DROP' || verdict === 'REJECT';
  return { verdict, endpoint: dropped ? undefined : path.endpoint, masquerade: !dropped && path.masquerade, probability: path.probability, recent: undefined, updates: path.updates };
}

type Hit = { readonly verdict: NftVerdict; readonly element: SetLookup };

interface Pending {
  readonly path: NftPath;
  readonly branch?: { readonly rule: CompiledRule; readonly hit: Hit | undefined; readonly lookups: SetLookup[]; readonly notes: string[] };
}

class NftWalker {
  readonly pending: Pending[] = [];
  readonly hops: HopRecord[] | undefined;
  truncated = false;
  rulesEvaluated = 0;
  private forks = 0;

  constructor(
    private readonly setup: NftWalkSetup, private readonly draw: (() => number) | undefined, recordHops: boolean,
    private readonly log: DecisionLog<NftFlow> | undefined = undefined,
  ) {
    this.hops = recordHops ? [] : undefined;
  }

  advance(path: NftPath): void {
    for (;;) {
      if (path.verdict !== undefined || path.hook === 'done') return;
      if (path.stack.length === 0) {
        this.nextBaseChain(path);
        continue;
      }
      const frame = path.stack[path.stack.length - 1]!;
      if (frame.next >= frame.chain.rules.length) {
        this.leaveChain(path);
        continue;
      }
      const rule = frame.chain.rules[frame.next++]!;
      this.runRule(path, rule);
    }
  }

  /** Enter the hook's next base chain, or go on to the next hook. */
  private nextBaseChain(path: NftPath): void {
    const hook = path.hook as Hook;
    const chains = this.setup.program.baseChains(hook);
    for (let i = path.baseIndex + 1; i < chains.length; i++) {
      const entry = chains[i]!;
      // nat chains see only a connection's first packet, and only until one sets up a mapping.
      if (entry.base.type === 'nat' && (path.natInHook || path.looped || !this.setup.flow.ctState.includes('new'))) continue;
      path.baseIndex = i;
      path.stack.push({ chain: this.setup.program.compile(entry.table, entry.chain), next: 0 });
      return;
    }
    path.hook = this.nextHook(path, hook);
    if (hook === 'postrouting' && path.hook === 'prerouting') path.looped = true;
    path.baseIndex = -1;
    path.natInHook = false;
  }

  private isLocal(ip: string): boolean {
    return this.setup.local.isLocal(ip, this.setup.addresses.words(ip));
  }

  private nextHook(path: NftPath, hook: Hook): Hook | 'done' {
    const local = this.isLocal(path.dst);
    switch (hook) {
      case 'prerouting': return local || path.looped ? 'input' : 'forward';
      case 'forward': return 'postrouting';
      case 'output': return 'postrouting';
      case 'postrouting': return this.setup.flow.fromNode && local ? 'prerouting' : 'done';
      case 'input': return 'done';
    }
  }

  /** Off the end of a chain, or return: back to the caller; off a base chain: its policy. */
  private leaveChain(path: NftPath): void {
    const left = path.stack.pop()!;
    if (path.stack.length > 0) return;
    const base = left.chain.chain.base;
    if (base?.policy === 'drop') {
      this.hops?.push({ policy: { table: tableId(left.chain.table), chain: left.chain.chain.name, policy: 'drop' }, target: 'drop', probability: path.probability, depth: 0 });
      path.verdict = 'DROP';
    }
  }

  private record(path: NftPath, rule: CompiledRule, target: string, lookups: SetLookup[], notes: string[]): void {
    if (!this.hops) return;
    this.hops.push({
      rule, target, probability: path.probability, depth: path.stack.length - 1,
      ...(lookups.length > 0 ? { lookups } : {}), ...(notes.length > 0 ? { notes } : {}),
    });
  }

  private runRule(path: NftPath, rule: CompiledRule): void {
    this.rulesEvaluated++;
    if (rule.parsed.unknown !== undefined) {
      this.record(path, rule, '', [], [`not evaluated (${rule.parsed.unknown}): taken as not matching`]);
      return;
    }
    const lookups: SetLookup[] = [];
    const notes: string[] = [];
    const statements = rule.parsed.statements;
    for (let s = 0; s < statements.length; s++) {
      const st = statements[s]!;
      const step = this.statement(path, rule, st, lookups, notes);
      if (step === 'nomatch') return;
      if (step === 'stop') return;
      if (typeof step === 'object') {
        this.record(path, rule, '', lookups, [...notes, `not evaluated (${step.unknown}): taken as not matching`]);
        return;
      }
    }
    // Every statement passed and none ended the rule with a verdict.
    this.record(path, rule, '', lookups, notes);
  }

  /**
   * One statement. 'stop' when it decided the rule (a verdict taken: the hop is recorded);
   * 'next' to go on with the rule's next statement.
   */
  private statement(path: NftPath, rule: CompiledRule, st: Statement, lookups: SetLookup[], notes: string[]): Step | 'stop' {
    switch (st.kind) {
      case 'match': {
        if (this.log !== undefined && readsSource(st.left)) return this.loggedMatch(path, rule, st, lookups, notes);
        const ok = this.match(path, rule, st.left, st.op, st.right, lookups, notes);
        return typeof ok === 'object' ? ok : ok ? 'next' : 'nomatch';
      }
      case 'vmap':
        return this.vmap(path, rule, st, lookups, notes);
      case 'mark-set':
        if (st.target === 'meta') path.mark = applyMark(path.mark, st.op, st.value);
        return 'next';
      case 'dynset': {
        notes.push(`@${st.set} is updated with this packet's ${selectorWords(st.key)}`);
        // Remembered for the packets after this one (a sample reports it as a `recent` update).
        const key = this.value(path, st.key);
        if (key.kind === 'value' && key.parts.length === 1) {
          const address = normalizeIP(key.parts[0]!);
          if (address !== undefined) {
            path.updates = [...path.updates.filter((u) => u.list !== st.set || u.address !== address), { list: st.set, address }];
            this.logUpdate(st.set, st.key, address);
          }
        }
        return 'next';
      }
      case 'noop':
        return 'next';
      case 'verdict':
        this.record(path, rule, verdictText(st.verdict), lookups, notes);
        this.applyVerdict(path, rule, st.verdict);
        return 'stop';
      case 'reject':
        this.record(path, rule, statementText(st), lookups, notes);
        path.verdict = 'REJECT';
        return 'stop';
      case 'nat': {
        if (st.type === 'snat') {
          path.masquerade = true;
          notes.push('snat: counted as masquerading (the source is rewritten)');
        } else {
          const to = this.dnatTarget(st.to, path.dport);
          if (!to) return { unknown: `dnat to ${st.to}` };
          path.dst = to.ip;
          path.dport = to.port;
          path.endpoint = joinHostPort(to.ip, to.port);
          path.dnatDone = true;
        }
        this.record(path, rule, statementText(st), lookups, notes);
        path.natInHook = true;
        path.stack.length = 0;
        return 'stop';
      }
      case 'masquerade':
        this.record(path, rule, statementText(st), lookups, notes);
        path.masquerade = true;
        path.natInHook = true;
        path.stack.length = 0;
        return 'stop';
    }
  }

  private dnatTarget(to: string, dport: number): { ip: string; port: number } | undefined {
    const hp = splitHostPortText(to);
    if (hp) {
      const ip = normalizeIP(hp.host);
      return ip === undefined ? undefined : { ip, port: Number(hp.portText) };
    }
    const ip = normalizeIP(to.replace(/^\[|\]$/g, ''));
    return ip === undefined ? undefined : { ip, port: dport };
  }

  private applyVerdict(path: NftPath, rule: CompiledRule, verdict: NftVerdict): void {
    switch (verdict.kind) {
      case 'accept':
      case 'queue':
        // An explicit accept in a filter chain lets the packet through this base chain.
        if (this.baseType(path) === 'filter') path.accepted = true;
        path.stack.length = 0;
        return;
      case 'drop':
        path.verdict = 'DROP';
        return;
      case 'continue':
        return;
      case 'return':
        this.leaveChain(path);
        return;
      case 'jump':
      case 'goto': {
        const target = this.setup.program.chain(rule.table, verdict.chain!);
        if (!target) {
          throw new KpsimError('KPSIM_ERR_NFTABLES_PARSE', `a rule of chain ${rule.chain.name} goes to chain ${verdict.chain}, which is not in the table`, { object: `table ${tableId(rule.table)}` });
        }
        if (path.stack.length >= MAX_DEPTH) {
          throw new KpsimError('KPSIM_ERR_NFTABLES_PARSE', `chain ${verdict.chain} is reached through a loop of jumps (nft refuses loops)`, { object: `table ${tableId(rule.table)}` });
        }
        // goto replaces the current chain (but a base chain stays, so that its policy applies).
        if (verdict.kind === 'goto' && path.stack.length > 1) path.stack.pop();
        path.stack.push({ chain: target, next: 0 });
        return;
      }
    }
  }

  private baseType(path: NftPath): string | undefined {
    return path.stack[0]?.chain.chain.base?.type;
  }

  // ---------------------------------------------------------------- kept walks

  /**
   * A match that reads the source, logged as decisions that can be asked again for another
   * packet (decisions.ts). An IPv4 source network or address-type match is logged as packed
   * source checks (source-matches.ts), which give the kept walks their source classes; a match
   * on a dynamic set (affinity) as recent checks; any other as two closures: whether it answers
   * without a lookup or a note of its own (which would name the source: the walk is then made
   * every time from here), and what it answers.
   */
  private loggedMatch(path: NftPath, rule: CompiledRule, st: Extract<Statement, { kind: 'match' }>, lookups: SetLookup[], notes: string[]): Step {
    const packed = this.setup.program.family === 4 ? this.setup.sourceMatches?.of(st) : undefined;
    if (packed !== undefined) {
      const step = this.loggedPacked(path, rule, st, packed, lookups, notes);
      if (step !== undefined) return step;
    }
    const log = this.log!;
    const lookupsBefore = lookups.length;
    const notesBefore = notes.length;
    const ok = this.match(path, rule, st.left, st.op, st.right, lookups, notes);
    const clean = typeof ok === 'boolean' && lookups.length === lookupsBefore && notes.length === notesBefore;
    const ask = this.askAgain(path, rule, st);
    let last: boolean | undefined;
    const decideClean = (flow: NftFlow, lists: RecentSource): boolean => {
      last = ask(flow, lists);
      return last !== undefined;
    };
    if (this.isEmptyDynamicSet(rule, st)) {
      // With every list empty such a match answers the same for every source, cleanly (no
      // element, no note): recent checks, which a lookup with empty lists answers without a call.
      log.addRecent(decideClean, clean, true);
      if (clean) log.addRecent(() => last === true, ok === true, st.op === '!=');
      else log.unpredictable = true;
    } else {
      log.add(decideClean, clean);
      if (clean) log.add(() => last === true, ok === true);
      else log.unpredictable = true;
    }
    return typeof ok === 'object' ? ok : ok ? 'next' : 'nomatch';
  }

  /**
   * The match asked again for another packet (its flow and lists): its answer when it makes no
   * lookup or note of its own, else undefined. One walker asks it for every later packet.
   */
  private askAgain(path: NftPath, rule: CompiledRule, st: Extract<Statement, { kind: 'match' }>): (flow: NftFlow, lists: RecentSource) => boolean | undefined {
    const frozen = path.clone();
    const asked: { -readonly [K in keyof NftWalkSetup]: NftWalkSetup[K] } = { ...this.setup };
    const again = new NftWalker(asked, undefined, false);
    const ownLookups: SetLookup[] = [];
    const ownNotes: string[] = [];
    return (flow, lists) => {
      asked.flow = flow;
      asked.dynamic = lists;
      ownLookups.length = 0;
      ownNotes.length = 0;
      const answer = again.match(frozen, rule, st.left, st.op, st.right, ownLookups, ownNotes);
      return typeof answer === 'boolean' && ownLookups.length === 0 && ownNotes.length === 0 ? answer : undefined;
    };
  }

  /**
   * `ip saddr @set` (or `!=`) on a dynamic set with no elements of its own, of this family:
   * kube-proxy's affinity sets, filled only by the packet path (here: the trace's lists).
   */
  private isEmptyDynamicSet(rule: CompiledRule, st: Extract<Statement, { kind: 'match' }>): boolean {
    const left = st.left;
    if (st.right.kind !== 'ref' || (st.op !== '==' && st.op !== '!=')) return false;
    if (left.kind !== 'payload' || left.field !== 'saddr' || (left.base === 'ip') !== (this.setup.program.family === 4)) return false;
    const set = this.setup.program.set(rule.table, st.right.set);
    return set !== undefined && set.set.flags?.includes('dynamic') === true && set.set.elements.length === 0;
  }

  /**
   * A packed source match (IPv4 networks or address types), logged as its packed checks in the
   * order asked, up to the first that holds. The match is evaluated as every match is, too:
   * should the packed answer differ, or the match make a lookup or note of its own, undefined
   * is returned (and the match is logged as closures): the packed form is only a faster way to
   * ask the same question, never another answer.
   */
  private loggedPacked(
    path: NftPath, rule: CompiledRule, st: Extract<Statement, { kind: 'match' }>, packed: PackedSourceMatch, lookups: SetLookup[], notes: string[],
  ): Step | undefined {
    const lookupsBefore = lookups.length;
    const notesBefore = notes.length;
    const ok = this.match(path, rule, st.left, st.op, st.right, lookups, notes);
    const { src32, typeBit } = this.sourceClass();
    let held = -1;
    for (let i = 0; i < packed.rows.length && held < 0; i++) if (sourcePasses(packed.checks, packed.rows[i]!, packed.flags[i]!, src32, typeBit)) held = i;
    const answer = (held >= 0) !== packed.negated;
    if (typeof ok !== 'boolean' || ok !== answer || lookups.length !== lookupsBefore || notes.length !== notesBefore) {
      lookups.length = lookupsBefore;
      notes.length = notesBefore;
      return undefined;
    }
    const asked = held >= 0 ? held + 1 : packed.rows.length;
    for (let i = 0; i < asked; i++) this.log!.addSourceChecks(packed.checks, packed.rows[i]!, packed.flags[i]!, i === held);
    return ok ? 'next' : 'nomatch';
  }

  /** The source as packed checks read it: its IPv4 address (unsigned) and its address type's bit. */
  private sourceClass(): { src32: number; typeBit: number } {
    const src = this.setup.flow.src;
    const words = this.setup.addresses.words(src);
    return { src32: words.length === 1 ? words[0]! >>> 0 : -1, typeBit: addressTypeBit(this.setup.local.addressType(src, words)) };
  }

  /** A dynamic set updated with `address`: the source's left open (see RecentTemplate). */
  private logUpdate(set: string, key: Selector, address: string): void {
    const log = this.log;
    if (log === undefined) return;
    if (!readsSource(key)) log.recent.push({ list: set, ip: address, mask: undefined, removed: false });
    else if (key.kind === 'payload' && key.field === 'saddr') log.recent.push({ list: set, ip: undefined, mask: undefined, removed: false });
    else log.unpredictable = true;
  }

  // ---------------------------------------------------------------- verdict maps

  private vmap(path: NftPath, rule: CompiledRule, st: Extract<Statement, { kind: 'vmap' }>, lookups: SetLookup[], notes: string[]): Step | 'stop' {
    if (st.key.kind === 'numgen') return this.numgenVmap(path, rule, st, st.key, lookups, notes);
    // A verdict map keyed by the source leads each source its own way: walked every time.
    if (this.log !== undefined && readsSource(st.key)) this.log.unpredictable = true;
    const key = this.value(path, st.key);
    if (key.kind === 'absent') return 'nomatch';
    if (key.kind === 'unknown') return { unknown: key.why };
    let verdictWords: string | undefined;
    if (st.map.kind === 'ref') {
      const set = this.setup.program.set(rule.table, st.map.set);
      if (!set) return { unknown: `@${st.map.set} is not in the table` };
      const element = set.lookup(key.parts);
      if (!element) return 'nomatch';
      lookups.push({ set: st.map.set, element: elementText(element) });
      verdictWords = element.value?.join(' ');
    } else {
      const wanted = keyOf(key.parts);
      const entry = st.map.entries.find((e) => normalizeKeyPart(e.key) === wanted);
      if (!entry) return 'nomatch';
      lookups.push({ element: `${entry.key} : ${verdictText(entry.verdict)}` });
      verdictWords = verdictText(entry.verdict);
    }
    const verdict = verdictWords === undefined ? undefined : readVerdict(verdictWords);
    if (!verdict) return { unknown: `map value "${verdictWords ?? ''}"` };
    this.record(path, rule, verdictText(verdict), lookups, notes);
    this.applyVerdict(path, rule, verdict);
    return 'stop';
  }

  /** `numgen random mod N vmap {...}`: one branch per entry, forked or drawn. */
  private numgenVmap(
    path: NftPath, rule: CompiledRule, st: Extract<Statement, { kind: 'vmap' }>, sel: Extract<Selector, { kind: 'numgen' }>,
    lookups: SetLookup[], notes: string[],
  ): Step | 'stop' {
    if (sel.mode !== 'random') return { unknown: `numgen ${sel.mode}` };
    const chances = numgenProbabilities(sel.mod);
    const verdictOf = (i: number): Hit | undefined => {
      const k = String(i + sel.offset);
      if (st.map.kind === 'anon') {
        const entry = st.map.entries.find((e) => e.key === k);
        return entry ? { verdict: entry.verdict, element: { element: `${entry.key} : ${verdictText(entry.verdict)}` } } : undefined;
      }
      const element: NftElement | undefined = this.setup.program.set(rule.table, st.map.set)?.lookup([k]);
      const verdict = element?.value ? readVerdict(element.value.join(' ')) : undefined;
      return element && verdict ? { verdict, element: { set: st.map.set, element: elementText(element) } } : undefined;
    };
    if (this.draw) {
      const i = numgenIndex(this.draw(), sel.mod);
      this.log?.addPick(sel.mod, i);
      const hit = verdictOf(i);
      if (!hit) return 'nomatch';
      lookups.push(hit.element);
      this.record(path, rule, verdictText(hit.verdict), lookups, notes);
      this.applyVerdict(path, rule, hit.verdict);
      return 'stop';
    }
    // Group the indices by entry; a miss goes on to the next rule.
    const branches: { chance: number; hit: Hit | undefined }[] = [];
    for (let i = 0; i < sel.mod; i++) {
      const hit = verdictOf(i);
      const same = branches.find((b) => b.hit?.element.element === hit?.element.element);
      if (same) same.chance += chances[i]!;
      else branches.push({ chance: chances[i]!, hit });
    }
    const base = path.clone();
    const frame = path.stack[path.stack.length - 1]!;
    const resumeAt = frame.next;
    // Later branches wait in `pending` (last pushed is walked next: push them in reverse).
    for (let b = branches.length - 1; b >= 1; b--) {
      if (this.forks >= MAX_NFT_PATHS) {
        this.truncated = true;
        continue;
      }
      this.forks++;
      const other = base.clone();
      other.probability *= branches[b]!.chance;
      other.stack[other.stack.length - 1]!.next = resumeAt;
      this.pending.push({ path: other, branch: { rule, hit: branches[b]!.hit, lookups: [...lookups], notes: [...notes] } });
    }
    path.probability *= branches[0]!.chance;
    return this.takeBranch(path, rule, branches[0]!.hit, lookups, notes);
  }

  /** Continue a path with one numgen branch: its verdict, or on to the next rule on a miss. */
  takeBranch(path: NftPath, rule: CompiledRule, hit: Hit | undefined, lookups: SetLookup[], notes: string[]): 'stop' | 'nomatch' {
    if (!hit) return 'nomatch';
    const own = [...lookups, hit.element];
    this.record(path, rule, verdictText(hit.verdict), own, notes);
    this.applyVerdict(path, rule, hit.verdict);
    return 'stop';
  }

  // ---------------------------------------------------------------- matches

  private match(path: NftPath, rule: CompiledRule, left: Selector, op: RelOp, right: Operand, lookups: SetLookup[], notes: string[]): boolean | { unknown: string } {
    const v = this.value(path, left);
    if (v.kind === 'absent') return false;
    if (v.kind === 'unknown') {
      // An unknown source port or interface: iptables mode's convention, said on the hop.
      if (v.why.startsWith('assume:')) {
        notes.push(v.why.slice('assume:'.length).trim());
        return true;
      }
      return { unknown: v.why };
    }
    let found: boolean;
    if (right.kind === 'ref') {
      const set = this.setup.program.set(rule.table, right.set);
      if (!set) return { unknown: `@${right.set} is not in the table` };
      const element = set.lookup(v.parts);
      if (element) lookups.push({ set: right.set, element: elementText(element) });
      found = element !== undefined;
      // A dynamic set (kube-proxy's affinity sets) is filled by the packet path: its members
      // come from the trace context, as `recent` lists do in iptables mode.
      if (!found && set.set.flags?.includes('dynamic')) found = this.dynamicMember(right.set, set.set.timeoutSeconds, v.parts, notes);
    } else {
      const items = right.kind === 'list' ? right.items : [right.text];
      found = items.some((item) => valueMatches(left, v.parts, item, op));
      if (op !== '==' && op !== '!=') return found;
    }
    return op === '!=' ? !found : found;
  }

  /**
   * Membership of a dynamic set (an affinity set) from the context's lists: an address added
   * `ageSeconds` ago is still there while that is less than the set's timeout.
   */
  private dynamicMember(set: string, timeoutSeconds: number | undefined, parts: readonly string[], notes: string[]): boolean {
    if (parts.length !== 1) return false;
    const ip = normalizeIP(parts[0]!);
    if (ip === undefined) return false;
    const seen = this.setup.dynamic.find(set, ip, this.setup.addresses.words(ip), undefined);
    if (!seen) return false;
    if (timeoutSeconds !== undefined && seen.ageSeconds >= timeoutSeconds) {
      notes.push(`${ip} was added to @${set} ${seen.ageSeconds} s ago: expired (timeout ${timeoutSeconds} s)`);
      return false;
    }
    notes.push(`${ip} is in @${set} (added ${seen.ageSeconds} s ago)`);
    return true;
  }

  /** The packet's value for a selector. */
  private value(path: NftPath, sel: Selector): Value {
    const flow = this.setup.flow;
    const v4 = this.setup.program.family === 4;
    switch (sel.kind) {
      case 'payload': {
        if ((sel.base === 'ip') !== v4) return ABSENT;
        switch (sel.field) {
          case 'saddr': return one(flow.src);
          case 'daddr': return one(path.dst);
          case 'protocol':
          case 'nexthdr': return one(flow.proto);
          default: return { kind: 'unknown', why: `${sel.base} ${sel.field}` };
        }
      }
      case 'transport': {
        if (sel.proto !== 'th' && sel.proto !== flow.proto) return ABSENT;
        if (sel.field === 'dport') return one(String(path.dport));
        if (sel.field === 'sport') return flow.sport === undefined ? { kind: 'unknown', why: 'assume: source port unknown, assumed to match' } : one(String(flow.sport));
        return { kind: 'unknown', why: `${sel.proto} ${sel.field}` };
      }
      case 'meta':
        switch (sel.key) {
          case 'l4proto': return one(flow.proto);
          case 'mark': return one(String(path.mark));
          case 'nfproto': return one(v4 ? 'ipv4' : 'ipv6');
          case 'protocol': return one(v4 ? 'ip' : 'ip6');
          case 'iifname': return flow.inInterface === undefined ? one('') : one(flow.inInterface);
          case 'oifname': return flow.outInterface === undefined ? one('') : one(flow.outInterface);
          default: return { kind: 'unknown', why: `meta ${sel.key}` };
        }
      case 'ct':
        switch (sel.key) {
          case 'state': return one(flow.ctState.join(','));
          case 'status': return one(path.dnatDone ? 'dnat' : '');
          case 'mark': return one('0');
          case 'direction': return one('original');
          default: return { kind: 'unknown', why: `ct ${sel.key}` };
        }
      case 'fib': {
        if (sel.result !== 'type') return { kind: 'unknown', why: `fib ${sel.result}` };
        const addr = sel.flags.includes('saddr') ? flow.src : sel.flags.includes('daddr') ? path.dst : undefined;
        if (addr === undefined) return { kind: 'unknown', why: `fib ${sel.flags.join(' . ')}` };
        return one(this.setup.local.addressType(addr, this.setup.addresses.words(addr)).toLowerCase());
      }
      case 'concat': {
        const parts: string[] = [];
        for (const part of sel.parts) {
          const v = this.value(path, part);
          if (v.kind !== 'value') return v;
          parts.push(...v.parts);
        }
        return { kind: 'value', parts };
      }
      case 'bitwise': {
        const v = this.value(path, sel.left);
        if (v.kind !== 'value') return v;
        const n = Number(v.parts[0]) >>> 0;
        return one(String(sel.op === '&' ? (n & sel.value) >>> 0 : sel.op === '|' ? (n | sel.value) >>> 0 : (n ^ sel.value) >>> 0));
      }
      case 'numgen':
        return { kind: 'unknown', why: 'numgen outside a verdict map' };
    }
  }
}

function one(value: string): Value {
  return { kind: 'value', parts: [value] };
}

function selectorWords(sel: Selector): string {
  return statementText({ kind: 'dynset', op: 'update', set: '', key: sel }).replace(/^update @ \{ | \}$/g, '');
}

function applyMark(mark: number, op: 'set' | '|' | '^' | '&', value: number): number {
  switch (op) {
    case 'set': return value >>> 0;
    case '|': return (mark | value) >>> 0;
    case '^': return (mark ^ value) >>> 0;
    case '&': return (mark & value) >>> 0;
  }
}

function readVerdict(text: string): NftVerdict | undefined {
  const [kind, chain] = text.trim().split(/\s+/);
  switch (kind) {
    case 'accept': case 'drop': case 'continue': case 'return': case 'queue':
      return { kind };
    case 'jump': case 'goto':
      return chain === undefined ? undefined : { kind, chain };
    default:
      return undefined;
  }
}

function parseNumber(text: string): number | undefined {
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text, 16);
  if (/^\d+$/.test(text)) return Number(text);
  return undefined;
}

/** Whether the packet's value (parts of a key) equals, or lies in, one operand item. */
function valueMatches(sel: Selector, parts: readonly string[], item: string, op: RelOp): boolean {
  const itemParts = parts.length > 1 ? item.split(/\s+\.\s+/) : [item];
  if (itemParts.length !== parts.length) return false;
  for (let i = 0; i < parts.length; i++) {
    if (!partMatches(partSelector(sel, i), parts[i]!, itemParts[i]!.trim(), op)) return false;
  }
  return true;
}

function partSelector(sel: Selector, i: number): Selector {
  return sel.kind === 'concat' ? sel.parts[i] ?? sel : sel;
}

function partMatches(sel: Selector, value: string, quotedItem: string, op: RelOp): boolean {
  const item = quotedItem.startsWith('"') && quotedItem.endsWith('"') ? quotedItem.slice(1, -1) : quotedItem;
  if (sel.kind === 'payload' && (sel.field === 'saddr' || sel.field === 'daddr')) {
    const iv = intervalOf(item);
    const v = valueOf(value);
    return iv !== undefined && v !== undefined && intervalContains(iv, v.family, v.value);
  }
  if (sel.kind === 'ct' && sel.key === 'state') {
    const states = new Set(value.split(','));
    return item.split(',').some((s) => states.has(s.trim()));
  }
  if (sel.kind === 'meta' && (sel.key === 'iifname' || sel.key === 'oifname')) {
    if (value === '') return false; // interface unknown: never equal (so "!=" matches)
    return item.endsWith('*') ? value.startsWith(item.slice(0, -1)) : value === item;
  }
  if (sel.kind === 'meta' && sel.key === 'l4proto') return protoName(item) === value;
  if (sel.kind === 'payload' && (sel.field === 'protocol' || sel.field === 'nexthdr')) return protoName(item) === value;
  const n = parseNumber(value);
  const range = /^(\w+)-(\w+)$/.exec(item);
  if (n !== undefined && range) {
    const lo = parseNumber(range[1]!);
    const hi = parseNumber(range[2]!);
    return lo !== undefined && hi !== undefined && n >= lo && n <= hi;
  }
  const m = parseNumber(item);
  if (n !== undefined && m !== undefined) {
    switch (op) {
      case '<': return n < m;
      case '>': return n > m;
      case '<=': return n <= m;
      case '>=': return n >= m;
      default: return n === m;
    }
  }
  return value === item;
}

function protoName(item: string): string {
  return /^\d+$/.test(item) ? PROTOCOL_NAMES[Number(item)] ?? item : item;
}

/** Hop records → Hop objects. */
export function hopsOf(records: readonly HopRecord[], withProbability: boolean): Hop[] {
  return records.map((r) => {
    const hop: { -readonly [K in keyof Hop]: Hop[K] } = r.rule
      ? { table: tableId(r.rule.table), chain: r.rule.chain.name, rule: r.rule.text(), target: r.target }
      : { table: r.policy!.table, chain: r.policy!.chain, rule: `policy ${r.policy!.policy}`, target: r.target, notes: ["the chain's policy"] };
    if (withProbability) hop.probability = r.probability;
    if (r.lookups) hop.lookups = r.lookups;
    if (r.notes) hop.notes = r.notes;
    hop.depth = r.depth;
    return hop;
  });
}

/** Whether a selector reads the packet's source (address, port, or the source's address type). */
export function readsSource(sel: Selector): boolean {
  switch (sel.kind) {
    case 'payload': return sel.field === 'saddr';
    case 'transport': return sel.field === 'sport';
    case 'fib': return sel.flags.includes('saddr');
    case 'concat': return sel.parts.some(readsSource);
    case 'bitwise': return readsSource(sel.left);
    default: return false;
  }
}

/** A kept sampled walk's updates for the packet from `src` (as the walk would have made them). */
export function updatesFor(templates: readonly RecentTemplate[], src: string): RecentUpdate[] {
  // kube-proxy's one update (the endpoint's affinity set) needs no sorting out.
  if (templates.length === 1) return [{ list: templates[0]!.list, address: templates[0]!.ip ?? src }];
  let updates: RecentUpdate[] = [];
  for (const t of templates) {
    const address = t.ip ?? src;
    updates = [...updates.filter((u) => u.list !== t.list || u.address !== address), { list: t.list, address }];
  }
  return updates;
}

/**
 * Addresses and intervals as rules and packets write them, each read once: a kept walk's
 * decisions ask `ip saddr` matches again for every packet (decisions.ts), and reading the
 * rule's network from its text each time was most of what they cost. Bounded, as AddressCache is.
 */
const intervals = new Map<string, ReturnType<typeof parseAddressInterval>>();
const values = new Map<string, ReturnType<typeof addressValue>>();

function intervalOf(text: string): ReturnType<typeof parseAddressInterval> {
  return readOnce(intervals, text, parseAddressInterval);
}

function valueOf(text: string): ReturnType<typeof addressValue> {
  return readOnce(values, text, addressValue);
}

function readOnce<T>(cache: Map<string, T>, text: string, read: (text: string) => T): T {
  if (cache.has(text)) return cache.get(text)!;
  const value = read(text);
  if (cache.size > 100_000) cache.clear();
  cache.set(text, value);
  return value;
}
