/**
 * A rule turned into what a walk needs, once per ruleset: one closure for the checks that only
 * depend on the packet (addresses, protocol, ports, addrtype, mark, conntrack state, ipsets),
 * the stateful steps (`recent`), the random steps (`statistic`, with the kernel's probability),
 * and the target, resolved against the table's chains.
 */
import { renderRule } from '../iptables/render.js';
import type { RecentCheck } from '../iptables/matches/module.js';
import { matchModuleOf } from '../iptables/matches/registry.js';
import { readRuleSpec, type RuleSpec, type TargetSpec } from '../iptables/rule-spec.js';
import { addressTypeBit, CHECK, emptyRow, packChecks, protocolCode, type ChecksSlab, type FastChecks, type FastRow } from './fast-checks.js';
import { RuleChecks } from './match-checks.js';
import { PROBABILITY_SCALE, type AddressSpec } from '../iptables/rule-values.js';
import { indexChain, type ChainIndex } from '../iptables/rule-index.js';
import type { Rule, TableName } from '../iptables/types.js';
import { inNetwork, networkOf, type LocalAddresses, type Network } from './addresses.js';
import { ipToWords, joinHostPort, type Family, type Words } from '../util/ip.js';
import type { Ipset } from './ipsets.js';
import type { Flow, PathState } from './walk-state.js';

export type Predicate = (flow: Flow, state: PathState) => boolean;

/** A `-m recent` step as the recent module states it (src/iptables/matches/recent.ts). */
export type RecentStep = RecentCheck;

export interface RandomStep {
  /** random: stored probability (matches when a 31-bit draw is below it); nth: 1 in `every`. */
  readonly mode: 'random' | 'nth';
  readonly stored: number;
  readonly every: number;
  readonly negated: boolean;
}

export type CompiledTarget =
  | { readonly kind: 'none' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reject' }
  | { readonly kind: 'return' }
  | { readonly kind: 'jump'; readonly chain: string; readonly goto: boolean }
  /** `to`: the new address, its words and type, and the endpoint text when the port is known. */
  | { readonly kind: 'dnat'; readonly to: DnatAddress | undefined; readonly port: number | undefined }
  | { readonly kind: 'snat' }
  | { readonly kind: 'masquerade' }
  | { readonly kind: 'mark'; readonly value: number; readonly mask: number }
  /** A jump to KUBE-MARK-MASQ when the ruleset does not have that chain: kube-proxy's OR-mark. */
  | { readonly kind: 'mark-masq' }
  /** A jump to KUBE-POSTROUTING when the ruleset does not have it: masquerade if marked. */
  | { readonly kind: 'postrouting' }
  /** An extension target kpsim does not model: the walk goes on past it. */
  | { readonly kind: 'other'; readonly name: string };

export interface DnatAddress {
  readonly ip: string;
  readonly words: Words;
  /** The IPv4 address as a number (-1 for IPv6), kept here so a DNAT need not read `words`. */
  readonly dst32: number;
  readonly type: string;
  readonly typeBit: number;
  readonly port: number | undefined;
  /** "ip:port" / "[ip]:port" when the port is given. */
  readonly endpoint: string | undefined;
}

/** What a rule's target does, as a small number the walk switches on. */
export const ACTION = {
  JUMP: 0, DNAT: 1, NONE: 2, ACCEPT: 3, DROP: 4, REJECT: 5, RETURN: 6, MASQUERADE: 7, MARK: 8, MARK_MASQ: 9, POSTROUTING: 10,
} as const;
export type Action = (typeof ACTION)[keyof typeof ACTION];

export interface CompiledRule {
  readonly table: TableName;
  /** The name of the chain the rule is in (for its hop). */
  readonly chain: string;
  /** The target's effect; its details are on the rule too, so a walk reads one object. */
  readonly action: Action;
  readonly goto: boolean;
  readonly dnatTo: DnatAddress | undefined;
  readonly markValue: number;
  readonly markMask: number;
  readonly rule: Rule;
  /** One of kube-proxy's built-in jumps, assumed because the ruleset lacks the chain. */
  readonly assumed: boolean;
  readonly test: Predicate | undefined;
  readonly recent: readonly RecentStep[];
  readonly randoms: readonly RandomStep[];
  /** Chance the random steps all match: the product of theirs. */
  readonly factor: number;
  readonly target: CompiledTarget;
  /** The -j/-g name as written ("" when the rule has none). */
  readonly targetName: string;
  /** Parts assumed to match, for the hop. */
  readonly notes: readonly string[];
  /** An assumed jump into a chain the ruleset lacks (kube-proxy would have made it, empty): no hop. */
  readonly silent: boolean;
  /** The jump target, compiled, once the walk first needs it (kept to skip the lookup after). */
  jumpChain: CompiledChain | undefined;
  /** The rule as kpsim renders it, made on first use (see ruleText). */
  renderedText: string | undefined;
}

export interface CompiledChain {
  readonly table: TableName;
  readonly name: string;
  readonly builtin: boolean;
  readonly policy: string | undefined;
  readonly rules: readonly CompiledRule[];
  readonly index: ChainIndex;
  /**
   * `index.all` when the chain is scanned whole, else undefined: kept here so that entering
   * one of the ~100k small chains reads no second object.
   */
  readonly whole: readonly number[] | undefined;
  /** The common checks of every rule (see FastChecks): rule i is row `checksRow + i`. */
  readonly checks: FastChecks;
  readonly checksRow: number;
}

/** What a rule is compiled against: fixed for a prepared tracer. */
export interface CompileEnv {
  readonly family: Family;
  readonly local: LocalAddresses;
  readonly ipsets: ReadonlyMap<string, Ipset>;
  readonly masqueradeMark: number;
  /** Where the chains' packed checks are kept (see ChecksSlab); each its own array without. */
  readonly slab?: ChecksSlab;
  /** Whether the table has the chain, jumped to from chain `from`. */
  hasChain(table: TableName, chain: string, from: string): boolean;
}

export function compileChain(
  env: CompileEnv, table: TableName, name: string, rules: readonly Rule[],
  info: { builtin: boolean; policy: string | undefined; assumed: boolean; useIndex: boolean },
): CompiledChain {
  const specs = rules.map((rule) => readRuleSpec(rule.args, env.family));
  const rows: FastRow[] = [];
  const compiled = rules.map((rule, i) => {
    const row = emptyRow();
    rows.push(row);
    return compileRule(env, table, rule, specs[i]!, info.assumed, row, name);
  });
  const index = indexChain(specs, { useIndex: info.useIndex });
  const packed = packChecks(rows, env.slab);
  return {
    table, name, builtin: info.builtin, policy: info.policy, rules: compiled, index,
    whole: index.small ? index.all : undefined, checks: packed.words, checksRow: packed.row,
  };
}

export function compileRule(
  env: CompileEnv, table: TableName, rule: Rule, spec: RuleSpec, assumed: boolean, row: FastRow = emptyRow(),
  chain: string = rule.chain,
): CompiledRule {
  // A rule from the parser has no problems; one built by hand might: say what was ignored.
  const notes: string[] = [...spec.notes, ...spec.problems.map((p) => `ignored, iptables would refuse it: ${p}`)];
  const checks = new RuleChecks(spec.protocol, row, env.ipsets, notes);
  const { predicates, recents: recent, randoms } = checks;

  addGenericPredicates(spec, predicates, row);
  // Each match module states its checks (src/iptables/matches/); RuleChecks packs or keeps them.
  for (const match of spec.matches) matchModuleOf(match).compile(match, checks);
  if (predicates.length > 0) row.flags |= CHECK.SLOW;
  if (recent.length > 0) row.flags |= CHECK.RECENT;
  if (randoms.length > 0) row.flags |= CHECK.MORE_RANDOM;

  let factor = 1;
  for (const r of randoms) factor *= randomChance(r);
  const allNotes = notes.length === 0 ? NONE : notes;
  const missingJump = spec.target?.kind === 'jump' && !env.hasChain(table, spec.target.name, chain)
    && !(table === 'nat' && EMULATED_CHAINS.has(spec.target.name));
  const silent = assumed && missingJump;
  const target = silent ? { kind: 'none' as const } : compileTarget(env, table, spec.target, notes, chain);
  return {
    table, chain, rule, assumed, factor, target, silent, jumpChain: undefined,
    action: actionOf(target),
    goto: target.kind === 'jump' && target.goto,
    dnatTo: target.kind === 'dnat' ? target.to : undefined,
    markValue: target.kind === 'mark' ? target.value : 0,
    markMask: target.kind === 'mark' ? target.mask : 0,
    // Most rules have none of these: one shared empty array keeps the walk's memory reads few.
    recent: recent.length === 0 ? NONE : recent,
    randoms: randoms.length === 0 ? NONE : randoms,
    notes: allNotes,
    test: combine(predicates),
    targetName: targetNameOf(spec.target),
    renderedText: undefined,
  };
}

const NONE: readonly never[] = Object.freeze([]);

/** kube-proxy chains whose effect is assumed when a ruleset jumps to them without having them. */
const EMULATED_CHAINS = new Set(['KUBE-MARK-MASQ', 'KUBE-POSTROUTING']);

/** The rule as kpsim renders it (render.ts renderRule), made once: most rules are never shown. */
export function ruleText(rule: CompiledRule): string {
  return (rule.renderedText ??= renderRule(rule.rule));
}

/** The chance a random step matches: stored/2^31 for random (the kernel's comparison). */
export function randomChance(step: RandomStep): number {
  const p = step.mode === 'random' ? step.stored / PROBABILITY_SCALE : 1 / step.every;
  return step.negated ? 1 - p : p;
}

function combine(predicates: readonly Predicate[]): Predicate | undefined {
  if (predicates.length === 0) return undefined;
  if (predicates.length === 1) return predicates[0];
  // Most kube-proxy rules have two or three checks: spelled out, no loop over an array.
  if (predicates.length === 2) {
    const [a, b] = predicates as [Predicate, Predicate];
    return (flow, state) => a(flow, state) && b(flow, state);
  }
  if (predicates.length === 3) {
    const [a, b, c] = predicates as [Predicate, Predicate, Predicate];
    return (flow, state) => a(flow, state) && b(flow, state) && c(flow, state);
  }
  return (flow, state) => {
    for (let i = 0; i < predicates.length; i++) if (!predicates[i]!(flow, state)) return false;
    return true;
  };
}

function actionOf(target: CompiledTarget): Action {
  switch (target.kind) {
    case 'jump': return ACTION.JUMP;
    case 'dnat': return ACTION.DNAT;
    case 'none': case 'other': return ACTION.NONE;
    case 'accept': return ACTION.ACCEPT;
    case 'drop': return ACTION.DROP;
    case 'reject': return ACTION.REJECT;
    case 'return': return ACTION.RETURN;
    case 'snat': case 'masquerade': return ACTION.MASQUERADE;
    case 'mark': return ACTION.MARK;
    case 'mark-masq': return ACTION.MARK_MASQ;
    case 'postrouting': return ACTION.POSTROUTING;
  }
}

function targetNameOf(target: TargetSpec | undefined): string {
  if (!target) return '';
  switch (target.kind) {
    case 'standard': case 'jump': return target.name;
    case 'reject': return 'REJECT';
    case 'dnat': return 'DNAT';
    case 'snat': return 'SNAT';
    case 'masquerade': return 'MASQUERADE';
    case 'mark': return 'MARK';
  }
}

// ---------------------------------------------------------------- generic matches

function addGenericPredicates(spec: RuleSpec, out: Predicate[], row: FastRow): void {
  if (spec.protocol) {
    const { name, negated } = spec.protocol;
    row.flags |= CHECK.PROTO | (negated ? CHECK.PROTO_NEG : 0);
    row.proto = protocolCode(name);
  }
  if (spec.destination) {
    const { addresses, negated } = spec.destination;
    const single = singleIPv4(addresses);
    if (single) {
      // The common case (a cluster IP, a pod): packed as two numbers.
      row.flags |= CHECK.DST | (negated ? CHECK.DST_NEG : 0);
      row.dstNet = single.network;
      row.dstMask = single.mask;
    } else {
      const nets = addresses.map(networkOf);
      out.push((_flow, state) => anyIn(state.dstWords, nets) !== negated);
    }
  }
  if (spec.source) {
    const { addresses, negated } = spec.source;
    const single = singleIPv4(addresses);
    if (single) {
      row.flags |= CHECK.SRC | (negated ? CHECK.SRC_NEG : 0);
      row.srcNet = single.network;
      row.srcMask = single.mask;
    } else {
      const nets = addresses.map(networkOf);
      out.push((flow) => anyIn(flow.srcWords, nets) !== negated);
    }
  }
  if (spec.inInterface) {
    const { name, negated } = spec.inInterface;
    out.push((flow) => interfaceMatches(name, flow.inInterface) !== negated);
  }
  if (spec.outInterface) {
    const { name, negated } = spec.outInterface;
    out.push((flow) => interfaceMatches(name, flow.outInterface) !== negated);
  }
  if (spec.fragment) {
    // The packet traced is a whole first packet, never a later fragment.
    const negated = spec.fragment.negated;
    out.push(() => negated);
  }
}

/** One IPv4 network as two numbers; undefined for IPv6 or a list. */
function singleIPv4(addresses: readonly AddressSpec[]): { network: number; mask: number } | undefined {
  if (addresses.length !== 1 || addresses[0]!.family !== 4) return undefined;
  const net = networkOf(addresses[0]!);
  return { network: net.network[0]!, mask: net.mask[0]! };
}

function anyIn(address: Words, nets: readonly Network[]): boolean {
  for (let i = 0; i < nets.length; i++) if (inNetwork(address, nets[i]!)) return true;
  return false;
}

/** "eth0" exactly, or "veth+" as a prefix; an unknown interface matches no name. */
function interfaceMatches(pattern: string, name: string | undefined): boolean {
  if (name === undefined) return false;
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

// ---------------------------------------------------------------- targets

function compileTarget(env: CompileEnv, table: TableName, target: TargetSpec | undefined, notes: string[], chain: string): CompiledTarget {
  if (!target) return { kind: 'none' };
  switch (target.kind) {
    case 'standard':
      if (target.name === 'QUEUE') {
        notes.push('QUEUE hands the packet to a program: the walk goes on');
        return { kind: 'other', name: 'QUEUE' };
      }
      return { kind: target.name === 'ACCEPT' ? 'accept' : target.name === 'DROP' ? 'drop' : 'return' };
    case 'reject':
      return { kind: 'reject' };
    case 'dnat': {
      const to = target.to;
      if (to && ((to.minIP !== to.maxIP) || (to.minPort !== to.maxPort))) notes.push('DNAT to a range: the first address and port taken');
      const ip = to?.minIP;
      const port = to?.minPort;
      if (ip === undefined) return { kind: 'dnat', to: undefined, port };
      const words = ipToWords(ip);
      const endpoint = port === undefined ? undefined : joinHostPort(ip, port);
      const type = env.local.addressType(ip, words);
      const dst32 = words.length === 1 ? words[0]! : -1;
      return { kind: 'dnat', to: { ip, words, dst32, type, typeBit: addressTypeBit(type), port, endpoint }, port };
    }
    case 'snat':
      return { kind: 'snat' };
    case 'masquerade':
      return { kind: 'masquerade' };
    case 'mark':
      return { kind: 'mark', value: target.value, mask: target.mask };
    case 'jump':
      if (env.hasChain(table, target.name, chain)) return { kind: 'jump', chain: target.name, goto: target.goto };
      if (table === 'nat' && target.name === 'KUBE-MARK-MASQ') {
        notes.push(`KUBE-MARK-MASQ is not in the ruleset: kube-proxy's "-j MARK --or-mark 0x${env.masqueradeMark.toString(16)}" assumed`);
        return { kind: 'mark-masq' };
      }
      if (table === 'nat' && target.name === 'KUBE-POSTROUTING') {
        notes.push('KUBE-POSTROUTING is not in the ruleset: kube-proxy\'s "masquerade if marked" assumed');
        return { kind: 'postrouting' };
      }
      notes.push(`-j ${target.name}: not a chain of this ruleset, not modelled; the walk goes on`);
      return { kind: 'other', name: target.name };
  }
}
