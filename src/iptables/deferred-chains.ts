/**
 * KUBE-SVC, KUBE-SVL and KUBE-SEP chains of a Ruleset whose rule objects are made when first read.
 *
 * A 10k-service sync declares 110k KUBE-SEP chains and 10k policy chains, which hold 330k of
 * its 370k rules. As rule objects they cost six allocations per endpoint chain (the chain, its
 * rule list, two rules, two argument arrays) and three per policy rule (with its comment),
 * most of a compile, and renderIptablesSave reads them only to write them out as text again.
 * These chains keep what their rules are made of (the port's comment, protocol and affinity;
 * the endpoints and their chain names) and write their text from that. A reader of `rules` (the
 * tracer, the rules graph, an incremental sync) gets the very rules the chain stands for, all of
 * them made in one loop on first read and kept: from then on the chain is an ordinary one, whose
 * rule list may be read and changed like any other's.
 *
 * The arguments are made by one writer per kind of chain (endpointChainArgs,
 * writeServiceToEndpointRules), which the text sinks use too: every path says the same thing.
 */
import type { EndpointInfo } from '../tracker/types.js';
import { KUBE_MARK_MASQ } from './names.js';
import { ENCODED_WIDTH, type ProbabilityCache } from './probability.js';
import { LINE_SCRATCH, type LineScratch, asciiBytes } from './line-scratch.js';
import type { TextBuffer } from './save-text.js';
import type { Chain, Rule, Ruleset } from './types.js';

/** A chain whose rules are made on first read (see the top of this file). */
export abstract class DeferredChain implements Chain {
  /** The rules once made; until then the chain writes its text from its own data. */
  #made: Rule[] | undefined = undefined;

  constructor(readonly name: string) {}

  get rules(): Rule[] {
    return this.#made ??= this.makeRules();
  }

  /** Make the rules now (see makeDeferredRules). */
  make(): void {
    this.#made ??= this.makeRules();
  }

  /** How many rules the chain holds, without making them. */
  get ruleCount(): number {
    return this.#made === undefined ? this.plannedRuleCount() : this.#made.length;
  }

  /** The chain's rules as iptables-save lines (`-A NAME ...`), as renderIptablesSave writes them. */
  writeRules(out: TextBuffer): void {
    const made = this.#made;
    if (made === undefined) {
      this.writePlannedRules(out);
      return;
    }
    for (let i = 0; i < made.length; i++) out.writeRule(made[i]!.chain, made[i]!.args);
  }

  /** About the bytes writeRules writes (a size estimate for the render's buffer). */
  estimatedTextBytes(): number {
    const made = this.#made;
    if (made === undefined) return this.plannedTextBytes();
    let bytes = 0;
    for (const rule of made) {
      bytes += rule.chain.length + 6;
      for (const arg of rule.args) bytes += arg.length + 1;
    }
    return bytes;
  }

  protected abstract makeRules(): Rule[];
  protected abstract plannedRuleCount(): number;
  protected abstract writePlannedRules(out: TextBuffer): void;
  protected abstract plannedTextBytes(): number;
}

/**
 * Make the rules of every deferred chain of the ruleset now, chain after chain in one pass: for
 * a reader about to read them all (the tracer's warm), which then finds them laid out together
 * in memory as a compile that made them at once would have left them, not spread among its
 * own objects.
 */
export function makeDeferredRules(ruleset: Ruleset): void {
  for (const table of ruleset.tables.values()) {
    for (const chain of table.chains.values()) {
      if (chain instanceof DeferredChain) chain.make();
    }
  }
}

/** Rules in a chain, read without making a deferred chain's rules. */
export function ruleCountOf(chain: Chain): number {
  return chain instanceof DeferredChain ? chain.ruleCount : chain.rules.length;
}

/** What a port's KUBE-SEP chains have in common: everything but the endpoint and the chain's name. */
export interface EndpointChainShape {
  readonly spn: string;
  /** "tcp", "udp" or "sctp". */
  readonly protocol: string;
  /** Session affinity: the DNAT rule also records the client in the endpoint's `recent` list. */
  readonly affinity: boolean;
  /** largeClusterMode: no comments. */
  readonly large: boolean;
}

/**
 * KUBE-SEP: hairpin masquerade (a pod reaching itself through the service), then DNAT. Each
 * array is one literal of exactly its length (a Ruleset keeps 220k of them for a big cluster).
 */
export function endpointChainArgs(shape: EndpointChainShape, ip: string, endpoint: string, sep: string): [string[], string[]] {
  const { spn, protocol, large } = shape;
  const hairpin = large ? ['-s', ip, '-j', KUBE_MARK_MASQ] : ['-m', 'comment', '--comment', spn, '-s', ip, '-j', KUBE_MARK_MASQ];
  let dnat: string[];
  if (shape.affinity) {
    dnat = large
      ? ['-m', 'recent', '--name', sep, '--set', '-m', protocol, '-p', protocol, '-j', 'DNAT', '--to-destination', endpoint]
      : ['-m', 'comment', '--comment', spn, '-m', 'recent', '--name', sep, '--set', '-m', protocol, '-p', protocol, '-j', 'DNAT', '--to-destination', endpoint];
  } else {
    dnat = large
      ? ['-m', protocol, '-p', protocol, '-j', 'DNAT', '--to-destination', endpoint]
      : ['-m', 'comment', '--comment', spn, '-m', protocol, '-p', protocol, '-j', 'DNAT', '--to-destination', endpoint];
  }
  return [hairpin, dnat];
}

/**
 * One pair of KUBE-SEP argument arrays, filled anew for each endpoint, for a writer that copies
 * them (text): made for a port's first endpoint, then only the endpoint's values put in.
 */
export class EndpointArgsScratch {
  #shape: EndpointChainShape | undefined = undefined;
  #args: [string[], string[]] = [[], []];
  /** Where the chain's own name is in the DNAT rule (-m recent --name), or -1. */
  #nameIndex = -1;

  fill(shape: EndpointChainShape, ip: string, endpoint: string, sep: string): readonly [readonly string[], readonly string[]] {
    if (this.#shape !== shape) {
      this.#shape = shape;
      this.#args = endpointChainArgs(shape, ip, endpoint, sep);
      this.#nameIndex = shape.affinity ? this.#args[1].indexOf('--name') + 1 : -1;
      return this.#args;
    }
    const [hairpin, dnat] = this.#args;
    // Both rules end with the endpoint's values: `-s IP -j KUBE-MARK-MASQ`, `--to-destination IP:PORT`.
    hairpin[hairpin.length - 3] = ip;
    dnat[dnat.length - 1] = endpoint;
    if (this.#nameIndex >= 0) dnat[this.#nameIndex] = sep;
    return this.#args;
  }
}

/** For rendering: a port's KUBE-SEP chains are declared one after the other, so its shape is met in a run. */
const renderScratch = new EndpointArgsScratch();

/** The text of a KUBE-SEP chain's two lines between the chain's name, the endpoint's IP and the endpoint, as bytes. */
interface EndpointLinePieces {
  /** From after the name to the IP: ` -m comment --comment SPN -s `. */
  readonly hairpin: Uint8Array;
  /** From after the IP to the name: ` -j KUBE-MARK-MASQ\n-A `. */
  readonly dnat: Uint8Array;
  /** From after the name to the endpoint: ` -m comment --comment SPN -m tcp -p tcp -j DNAT --to-destination `. */
  readonly dnatArgs: Uint8Array;
  /** The pieces' length, with `-A ` and the newline. */
  readonly bytes: number;
}

let piecesShape: EndpointChainShape | undefined;
let pieces: EndpointLinePieces | undefined;
/**
 * Pieces by what they are made of (in large-cluster mode, the protocol alone: a big cluster's
 * 10k ports encode them once). Emptied when it grows past PIECES_KEPT: with comments each port
 * has its own.
 */
const piecesByKey = new Map<string, EndpointLinePieces>();
const PIECES_KEPT = 1024;

/**
 * The pieces of the shape's lines, for a port without session affinity whose comment and
 * protocol are written as they are (else undefined: the lines go through the general writer).
 */
function endpointLinePieces(shape: EndpointChainShape): EndpointLinePieces | undefined {
  if (piecesShape === shape) return pieces;
  piecesShape = shape;
  const { spn, protocol, large } = shape;
  if (shape.affinity || !isBareToken(spn) || !isBareToken(protocol)) {
    pieces = undefined;
    return pieces;
  }
  const key = large ? protocol : `${protocol} ${spn}`;
  pieces = piecesByKey.get(key);
  if (pieces === undefined) {
    const comment = large ? '' : ` -m comment --comment ${spn}`;
    const hairpin = asciiBytes(`${comment} -s `);
    const dnat = asciiBytes(` -j ${KUBE_MARK_MASQ}\n-A `);
    const dnatArgs = asciiBytes(`${comment} -m ${protocol} -p ${protocol} -j DNAT --to-destination `);
    pieces = { hairpin, dnat, dnatArgs, bytes: hairpin.length + dnat.length + dnatArgs.length + 4 };
    if (piecesByKey.size >= PIECES_KEPT) piecesByKey.clear();
    piecesByKey.set(key, pieces);
  }
  return pieces;
}

/** The constant pieces of the lines, as bytes. */
const DASH_A = asciiBytes('-A ');
const COMMENT_OPEN = asciiBytes(' -m comment --comment "');
const ARROW = asciiBytes(' -> ');
const STATISTIC = asciiBytes('" -m statistic --mode random --probability ');
const STATISTIC_LARGE = asciiBytes(' -m statistic --mode random --probability ');
const JUMP = asciiBytes(' -j ');
const QUOTE_JUMP = asciiBytes('" -j ');

/** Whether iptables-save writes a token as it is: not empty, ASCII, nothing that needs quotes. */
function isBareToken(token: string): boolean {
  if (token.length === 0) return false;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c <= 39 ? c === 32 || (c >= 9 && c <= 13) || c === 34 || c === 39 : c === 92 || c > 127) return false;
  }
  return true;
}

/** A KUBE-SEP chain: one endpoint of a service port. */
export class EndpointChain extends DeferredChain {
  constructor(
    name: string,
    readonly shape: EndpointChainShape,
    readonly ip: string,
    readonly endpoint: string,
  ) {
    super(name);
  }

  protected makeRules(): Rule[] {
    const name = this.name;
    const [hairpin, dnat] = endpointChainArgs(this.shape, this.ip, this.endpoint, name);
    return [{ chain: name, args: hairpin }, { chain: name, args: dnat }];
  }

  protected plannedRuleCount(): number {
    return 2;
  }

  protected writePlannedRules(out: TextBuffer): void {
    writeEndpointChainRules(out, this.name, this.shape, this.ip, this.endpoint);
  }

  protected plannedTextBytes(): number {
    return endpointChainTextBytes(this.name, this.shape, this.ip, this.endpoint);
  }
}

/** A KUBE-SEP chain's two lines, written from what they are made of (EndpointChain). */
export function writeEndpointChainRules(out: TextBuffer, name: string, shape: EndpointChainShape, ip: string, endpoint: string): void {
  writeEndpointChainLines(LINE_SCRATCH, out, name, shape, ip, endpoint);
  LINE_SCRATCH.flush(out);
}

/**
 * writeEndpointChainRules through `scratch`, which it may leave holding the lines (the caller
 * flushes it before writing to `out` itself): ServicePortChains writes a port's chains so.
 */
export function writeEndpointChainLines(scratch: LineScratch, out: TextBuffer, name: string, shape: EndpointChainShape, ip: string, endpoint: string): void {
  const pieces = endpointLinePieces(shape);
  if (pieces !== undefined && scratch.room(out, 2 * name.length + ip.length + endpoint.length + pieces.bytes)) {
    // The common chain, written in pieces: the tokens between the endpoint's values are the
    // same for the whole port; each value is checked for quotes as it is copied.
    const mark = scratch.length;
    scratch.bytes(DASH_A);
    const nameAt = scratch.length;
    if (scratch.bare(name)) {
      const nameEnd = scratch.length;
      scratch.bytes(pieces.hairpin);
      if (scratch.bare(ip)) {
        scratch.bytes(pieces.dnat);
        scratch.again(nameAt, nameEnd);
        scratch.bytes(pieces.dnatArgs);
        if (scratch.bare(endpoint)) {
          scratch.code(10);
          return;
        }
      }
    }
    scratch.length = mark;
  }
  const [hairpin, dnat] = renderScratch.fill(shape, ip, endpoint, name);
  writeRuleLine(scratch, out, name, hairpin);
  writeRuleLine(scratch, out, name, dnat);
}

/** One rule through the scratch, or (a token not ASCII, a line longer than the scratch) through `out`'s own writer. */
function writeRuleLine(scratch: LineScratch, out: TextBuffer, chain: string, args: readonly string[]): void {
  if (scratch.rule(out, chain, args)) return;
  scratch.flush(out);
  out.writeRule(chain, args);
}

/** About the bytes writeEndpointChainRules writes. */
export function endpointChainTextBytes(name: string, shape: EndpointChainShape, ip: string, endpoint: string): number {
  const { spn, protocol, large, affinity } = shape;
  const comment = large ? 0 : 2 * (spn.length + 23);
  const recent = affinity ? name.length + 22 : 0;
  return 2 * (name.length + 4) + comment + recent + ip.length + 26 + 2 * protocol.length + 37 + endpoint.length + 2;
}

/** What a KUBE-SVC or KUBE-SVL chain is made of. */
export interface PolicyChainPlan {
  /** The internal masquerade rule, when this is the internal policy chain and there is one: it comes first. */
  readonly masquerade: readonly string[] | undefined;
  readonly spn: string;
  readonly endpoints: readonly EndpointInfo[];
  /** The KUBE-SEP chain of each endpoint, by position. */
  readonly endpointChains: readonly string[];
  /** The session affinity timeout as written (`--seconds`), or '' without affinity. */
  readonly affinitySeconds: string;
  /** largeClusterMode: no comments. */
  readonly large: boolean;
  readonly probabilities: ProbabilityCache;
}

/** Where writeServiceToEndpointRules hands each rule's arguments. */
export interface RuleArgsWriter {
  /**
   * Whether the writer is done with the arguments when rule() returns: then one array, filled
   * anew for each endpoint, is handed over again and again.
   */
  readonly copiesArgs: boolean;
  rule(args: readonly string[]): void;
}

/**
 * KUBE-SVC / KUBE-SVL after its masquerade rule: session-affinity checks first, then one rule
 * per endpoint with probability 1/(rules left), so the choice is uniform.
 */
export function writeServiceToEndpointRules(plan: PolicyChainPlan, out: RuleArgsWriter): void {
  const { spn, endpoints, endpointChains, large } = plan;
  const n = endpoints.length;
  if (plan.affinitySeconds !== '') {
    const seconds = plan.affinitySeconds;
    for (let i = 0; i < n; i++) {
      const sep = endpointChains[i]!;
      out.rule(large
        ? ['-m', 'recent', '--name', sep, '--rcheck', '--seconds', seconds, '--reap', '-j', sep]
        : ['-m', 'comment', '--comment', `${spn} -> ${endpoints[i]!.endpoint}`, '-m', 'recent', '--name', sep, '--rcheck', '--seconds', seconds, '--reap', '-j', sep]);
    }
  }
  const scratch = out.copiesArgs;
  let random: string[] | undefined;
  for (let i = 0; i < n; i++) {
    if (scratch && random !== undefined && i < n - 1) {
      // The array of the rule before, filled anew: a writer that copies is done with it.
      const sep = endpointChains[i]!;
      const probability = plan.probabilities.get(n - i);
      if (large) {
        random[5] = probability;
        random[7] = sep;
      } else {
        random[3] = `${spn} -> ${endpoints[i]!.endpoint}`;
        random[9] = probability;
        random[11] = sep;
      }
      out.rule(random);
      continue;
    }
    const args = serviceToEndpointArgs(plan, i);
    if (i < n - 1) random = args;
    out.rule(args);
  }
}

/** Endpoint rule `i` of a policy chain, after the affinity rules (a new array, one literal of exactly its length). */
export function serviceToEndpointArgs(plan: PolicyChainPlan, i: number): string[] {
  const { spn, endpoints, endpointChains, large } = plan;
  const n = endpoints.length;
  const sep = endpointChains[i]!;
  if (i < n - 1) {
    const probability = plan.probabilities.get(n - i);
    // An array grown by push keeps spare room.
    return large
      ? ['-m', 'statistic', '--mode', 'random', '--probability', probability, '-j', sep]
      : ['-m', 'comment', '--comment', `${spn} -> ${endpoints[i]!.endpoint}`, '-m', 'statistic', '--mode', 'random', '--probability', probability, '-j', sep];
  }
  return large ? ['-j', sep] : ['-m', 'comment', '--comment', `${spn} -> ${endpoints[i]!.endpoint}`, '-j', sep];
}

/** Makes a policy chain's rules (fresh arrays). */
class RuleMaker implements RuleArgsWriter {
  readonly copiesArgs = false;
  /**
   * Grown by push, as a chain the compiler fills rule by rule: an array made at its length
   * first is a holey one, which the tracer's reads (map, index) take more slowly.
   */
  readonly rules: Rule[] = [];

  constructor(private readonly chain: string) {}

  rule(args: readonly string[]): void {
    this.rules.push({ chain: this.chain, args });
  }
}

/** Writes a policy chain's rules as text, through the scratch (writeRuleLine). */
class ScratchRuleWriter implements RuleArgsWriter {
  readonly copiesArgs = true;

  constructor(
    private readonly scratch: LineScratch,
    private readonly out: TextBuffer,
    private readonly chain: string,
  ) {}

  rule(args: readonly string[]): void {
    writeRuleLine(this.scratch, this.out, this.chain, args);
  }
}

/** A KUBE-SVC or KUBE-SVL chain: the policy's endpoints, each taken with equal chance. */
export class PolicyChain extends DeferredChain {
  constructor(
    name: string,
    readonly plan: PolicyChainPlan,
  ) {
    super(name);
  }

  protected makeRules(): Rule[] {
    const maker = new RuleMaker(this.name);
    if (this.plan.masquerade !== undefined) maker.rule(this.plan.masquerade);
    writeServiceToEndpointRules(this.plan, maker);
    return maker.rules;
  }

  protected plannedRuleCount(): number {
    return policyChainRuleCount(this.plan);
  }

  protected writePlannedRules(out: TextBuffer): void {
    writePolicyChainRules(out, this.name, this.plan);
  }

  protected plannedTextBytes(): number {
    return policyChainTextBytes(this.name, this.plan);
  }
}

/** Rules in a KUBE-SVC or KUBE-SVL chain of this plan. */
export function policyChainRuleCount(plan: PolicyChainPlan): number {
  const n = plan.endpoints.length;
  return (plan.masquerade === undefined ? 0 : 1) + (plan.affinitySeconds === '' ? n : 2 * n);
}

/** A KUBE-SVC or KUBE-SVL chain's lines, written from its plan (PolicyChain). */
export function writePolicyChainRules(out: TextBuffer, name: string, plan: PolicyChainPlan): void {
  writePolicyChainLines(LINE_SCRATCH, out, name, plan);
  LINE_SCRATCH.flush(out);
}

/** writePolicyChainRules through `scratch`, which it may leave holding the lines (as writeEndpointChainLines). */
export function writePolicyChainLines(scratch: LineScratch, out: TextBuffer, name: string, plan: PolicyChainPlan): void {
  if (plan.masquerade !== undefined) writeRuleLine(scratch, out, name, plan.masquerade);
  if (plan.affinitySeconds !== '') {
    writeServiceToEndpointRules(plan, new ScratchRuleWriter(scratch, out, name));
    return;
  }
  // The common chain, written in pieces: each rule's comment ("SPN -> ENDPOINT", quoted for its
  // spaces) would otherwise be a string made for the line alone, 110k of them at 10k services,
  // and the chain's name is copied from its first line. A rule with a token the pieces cannot
  // take (quotes in a chain name or a comment, not ASCII) goes through the general writer.
  const { endpoints, endpointChains, probabilities, spn, large } = plan;
  const n = endpoints.length;
  // Where the chain's name is in the scratch, while it is there (no flush since).
  let nameAt = -1;
  let nameEnd = -1;
  let nameFlushes = -1;
  for (let i = 0; i < n; i++) {
    const sep = endpointChains[i]!;
    const endpoint = endpoints[i]!.endpoint;
    const room = name.length + sep.length + (large ? 0 : spn.length + endpoint.length) + POLICY_LINE_PIECES;
    if (!scratch.room(out, room)) {
      writeRuleLine(scratch, out, name, serviceToEndpointArgs(plan, i));
      continue;
    }
    const mark = scratch.length;
    scratch.bytes(DASH_A);
    let ok = true;
    if (nameAt >= 0 && nameFlushes === scratch.flushes) {
      scratch.again(nameAt, nameEnd);
    } else {
      nameAt = scratch.length;
      ok = scratch.bare(name);
      nameEnd = scratch.length;
      nameFlushes = scratch.flushes;
    }
    if (ok && !large) {
      scratch.bytes(COMMENT_OPEN);
      ok = scratch.inQuotes(spn);
      if (ok) {
        scratch.bytes(ARROW);
        ok = scratch.inQuotes(endpoint);
      }
    }
    if (ok) {
      if (i < n - 1) {
        scratch.bytes(large ? STATISTIC_LARGE : STATISTIC);
        const at = probabilities.bytesAt(n - i);
        scratch.bytesOf(probabilities.encodedBytes, at, at + ENCODED_WIDTH);
        scratch.bytes(JUMP);
      } else {
        scratch.bytes(large ? JUMP : QUOTE_JUMP);
      }
      ok = scratch.bare(sep);
    }
    if (!ok) {
      scratch.length = mark;
      nameAt = -1;
      writeRuleLine(scratch, out, name, serviceToEndpointArgs(plan, i));
      continue;
    }
    scratch.code(10);
  }
}

/** Room for a policy rule's line in pieces: its constant text (72 bytes at most, the probability included) with a margin. */
const POLICY_LINE_PIECES = 96;

/** About the bytes writePolicyChainRules writes (from the first endpoint's lines, times their number). */
export function policyChainTextBytes(name: string, plan: PolicyChainPlan): number {
  const { masquerade, spn, endpoints, endpointChains, affinitySeconds, large } = plan;
  const line = name.length + 4;
  let bytes = 0;
  if (masquerade !== undefined) {
    bytes += line;
    for (const arg of masquerade) bytes += arg.length + 1;
  }
  if (endpoints.length === 0) return bytes;
  const comment = large ? 0 : spn.length + 29;
  const each = line + comment + (large ? 0 : endpoints[0]!.endpoint.length) + endpointChains[0]!.length + 4;
  bytes += endpoints.length * (each + 58);
  if (affinitySeconds !== '') bytes += endpoints.length * (each + endpointChains[0]!.length + 40);
  return bytes;
}
