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

/** The decisions of one walk, in walk order, with their answers. */
export class DecisionLog {
  readonly decides: Decide[] = [];
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
    this.decides.push(decide);
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

interface DecisionNode<L> {
  readonly decide: Decide;
  yes: Next<L>;
  no: Next<L>;
}

/** A walk's answer; `value` undefined: unpredictable from here (see DecisionLog). */
interface Leaf<L> {
  readonly decide: undefined;
  readonly value: L | undefined;
}

type Next<L> = DecisionNode<L> | Leaf<L> | undefined;

/** Looked up: a walk's answer, or why there is none. */
export const MISS = Symbol('no walk took these decisions yet');
export const UNPREDICTABLE = Symbol('the walk must be made');

export class DecisionTrie<L> {
  private root: Next<L> = undefined;

  /** The answer of the walk that took the same decisions as `flow` would, or MISS / UNPREDICTABLE. */
  find(flow: Flow, lists: RecentLists, draw: Draw | undefined): L | typeof MISS | typeof UNPREDICTABLE {
    let next = this.root;
    while (next !== undefined) {
      const decide = next.decide;
      if (decide === undefined) return next.value === undefined ? UNPREDICTABLE : next.value;
      next = decide(flow, lists, draw) ? next.yes : next.no;
    }
    return MISS;
  }

  /** Keep a walk's decisions and answer; returns how many nodes were added. */
  insert(log: DecisionLog, value: L): number {
    const leaf: Leaf<L> = { decide: undefined, value: log.unpredictable ? undefined : value };
    const n = log.decides.length;
    if (n === 0) {
      this.root = leaf;
      return 1;
    }
    let added = 0;
    let node: DecisionNode<L>;
    if (this.root === undefined || this.root.decide === undefined) {
      node = { decide: log.decides[0]!, yes: undefined, no: undefined };
      this.root = node;
      added++;
    } else {
      node = this.root;
    }
    for (let i = 0; i < n; i++) {
      const yes = log.results[i]!;
      const last = i === n - 1;
      const next = yes ? node.yes : node.no;
      if (last) {
        if (next === undefined) added++;
        if (yes) node.yes = leaf;
        else node.no = leaf;
        break;
      }
      let child: DecisionNode<L>;
      if (next === undefined || next.decide === undefined) {
        child = { decide: log.decides[i + 1]!, yes: undefined, no: undefined };
        if (yes) node.yes = child;
        else node.no = child;
        added++;
      } else {
        child = next;
      }
      node = child;
    }
    return added;
  }
}
