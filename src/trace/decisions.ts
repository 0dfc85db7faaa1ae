/**
 * What a walk's answer depends on, beyond the destination side of the packet: the decisions it
 * took that read the packet's source (a `-s` network, a source address type, a `--sport`, an
 * ipset holding the source, a `recent` list holding it) or a random draw. Everything else a
 * walk reads is fixed by the destination, port, protocol and origin, and by the decisions taken
 * before (the walk is a pure function of them), so two packets that agree on those and take
 * the same decisions walk the same rules to the same answer.
 *
 * A walk can log its decisions (DecisionLog): each one as a function that asks it again for
 * another packet, with the answer it got. A DecisionTrie keeps the logs of the walks made for
 * one destination side, branching where answers differ, with each walk's answer at its leaf;
 * a later packet follows the trie by asking each decision in turn, and reaches the answer of a
 * walk that took exactly its decisions, or a branch nobody walked yet. These are the classes of
 * sources the issue speaks of (inside the cluster CIDR or not, inside each load-balancer source
 * range or not, the endpoint itself or not, a node address or not, which affinity state), found
 * by the walk itself rather than listed, so no check the rules make can be left out.
 *
 * Closures (`Predicate`) may read anything of the path; they are asked again with a frozen copy
 * of the path as it was (PathState.snapshot): the same values the new packet's walk would have
 * there, since every decision before was the same.
 */
import type { Words } from '../util/ip.js';
import { passesSourceChecks, type FastChecks } from './fast-checks.js';
import { recentKey, type RecentChange, type RecentLists } from './recent.js';
import type { Flow } from './walk-state.js';

/** A source of uniform 32-bit integers (a sampled walk's random draws). */
export type Draw = () => number;

/** One decision asked again: for this flow, these recent lists, this sample's draws. */
export type Decide = (flow: Flow, lists: RecentLists, draw: Draw | undefined) => boolean;

/** A `recent --set/--update/--remove` of a walk, with the source's address left open. */
export interface RecentTemplate {
  readonly list: string;
  /** The masked address when it is the destination's (fixed); undefined: the source's, masked with `mask`. */
  readonly ip: string | undefined;
  readonly mask: Words | undefined;
  readonly removed: boolean;
}

const PACKED = 0;
const DRAW = 1;
const CALL = 2;
const LEAF = 3;

/**
 * One decision: a packed source check of a rule (FastChecks row and flags, the common case), a
 * packed statistic draw (`row` the stored probability, `flags` 1 when negated), both asked
 * without a call; or any other as a function.
 */
interface Decision {
  readonly kind: number;
  readonly decide: Decide | undefined;
  readonly checks: FastChecks | undefined;
  readonly row: number;
  readonly flags: number;
}

/** The decisions of one walk, in walk order, with their answers. */
export class DecisionLog {
  readonly decisions: Decision[] = [];
  readonly results: boolean[] = [];
  /** The changes a sampled walk made to recent lists, in order. */
  readonly recent: RecentTemplate[] = [];
  /**
   * From here on the walk read something no decision can ask again (a recent list after the
   * walk changed one itself): the packets that get here are walked, not looked up.
   */
  unpredictable = false;

  add(decide: Decide, result: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push({ kind: CALL, decide, checks: undefined, row: 0, flags: 0 });
    this.results.push(result);
  }

  /** Row `row`'s packed source checks (passesSourceChecks with `flags`) answered `result`. */
  addSourceChecks(checks: FastChecks, row: number, flags: number, result: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push({ kind: PACKED, decide: undefined, checks, row, flags });
    this.results.push(result);
  }

  /** A `statistic --mode random` draw below `stored` (the kernel's 31-bit comparison) answered `result`. */
  addDraw(stored: number, negated: boolean, result: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push({ kind: DRAW, decide: undefined, checks: undefined, row: stored, flags: negated ? 1 : 0 });
    this.results.push(result);
  }
}

/** The changes of `templates` made by the packet of `flow`, newest first (as PathState.recent). */
export function recentChangesOf(templates: readonly RecentTemplate[], flow: Flow): RecentChange | undefined {
  let changes: RecentChange | undefined;
  for (const t of templates) {
    const ip = t.ip ?? recentKey(flow.src, flow.srcWords, t.mask);
    changes = { list: t.list, ip, seen: t.removed ? undefined : { ageSeconds: 0, hits: 1 }, previous: changes };
  }
  return changes;
}


/**
 * A decision (PACKED, DRAW or CALL) with where each answer leads (undefined: nobody walked there
 * yet), or a LEAF: a walk's answer (`value` undefined: unpredictable from here, see
 * DecisionLog). One shape for all, so that following the trie stays monomorphic.
 */
class TrieNode<L> {
  yes: TrieNode<L> | undefined = undefined;
  no: TrieNode<L> | undefined = undefined;

  constructor(
    readonly kind: number,
    readonly decide: Decide | undefined,
    readonly checks: FastChecks | undefined,
    readonly row: number,
    readonly flags: number,
    readonly value: L | undefined,
  ) {}

  static of<L>(d: Decision): TrieNode<L> {
    return new TrieNode<L>(d.kind, d.decide, d.checks, d.row, d.flags, undefined);
  }
}

/** Looked up: a walk's answer, or why there is none. */
export const MISS = Symbol('no walk took these decisions yet');
export const UNPREDICTABLE = Symbol('the walk must be made');

export class DecisionTrie<L> {
  private root: TrieNode<L> | undefined = undefined;

  /** The answer of the walk that took the same decisions as `flow` would, or MISS / UNPREDICTABLE. */
  find(flow: Flow, lists: RecentLists, draw: Draw | undefined): L | typeof MISS | typeof UNPREDICTABLE {
    let node = this.root;
    while (node !== undefined) {
      const kind = node.kind;
      if (kind === PACKED) {
        node = passesSourceChecks(node.checks!, node.row, node.flags, flow) ? node.yes : node.no;
      } else if (kind === DRAW) {
        node = ((draw!() & 0x7fffffff) < node.row) !== (node.flags !== 0) ? node.yes : node.no;
      } else if (kind === CALL) {
        node = node.decide!(flow, lists, draw) ? node.yes : node.no;
      } else {
        return node.value === undefined ? UNPREDICTABLE : node.value;
      }
    }
    return MISS;
  }

  /** Keep a walk's decisions and answer; returns how many nodes were added. */
  insert(log: DecisionLog, value: L): number {
    const leaf = new TrieNode<L>(LEAF, undefined, undefined, 0, 0, log.unpredictable ? undefined : value);
    const n = log.decisions.length;
    if (n === 0) {
      this.root = leaf;
      return 1;
    }
    let added = 0;
    if (this.root === undefined || this.root.kind === LEAF) {
      this.root = TrieNode.of(log.decisions[0]!);
      added++;
    }
    let node = this.root;
    for (let i = 0; i < n; i++) {
      const yes = log.results[i]!;
      const next = yes ? node.yes : node.no;
      let child: TrieNode<L>;
      if (i === n - 1) {
        child = leaf;
      } else if (next === undefined || next.kind === LEAF) {
        child = TrieNode.of(log.decisions[i + 1]!);
      } else {
        child = next;
      }
      if (child !== next) {
        if (yes) node.yes = child;
        else node.no = child;
        added++;
      }
      node = child;
    }
    return added;
  }
}
