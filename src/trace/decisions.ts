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
import { CHECK, sourceInterval, sourcePasses, type FastChecks } from './fast-checks.js';
import type { SeededDraws } from '../util/random.js';
import { CELL_ANSWER, CELL_DRAWS, CELL_NODE, ClassTable, MAX_REGION_BOUNDS, NOT_FLAT, PICK_STEP, PICKED_STEP } from './class-table.js';
import { numgenIndex } from '../nftables/numgen.js';
import { recentKey, type RecentChange, RecentLists, type RecentSource } from './recent.js';
import type { Flow } from './walk-state.js';

/** A source of uniform 32-bit integers (a sampled walk's random draws). */
export type Draw = () => number;

/**
 * One decision asked again: for this flow (iptables mode's Flow; the nftables tracer's own),
 * these recent lists, this sample's draws.
 */
export type Decide<F = Flow> = (flow: F, lists: RecentSource, draw: Draw | undefined) => boolean;

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
const RECENT = 4;
/** A numgen draw (`row` its modulus): yes when the index drawn is `flags`; the index is kept for PICKED. */
const PICK = 5;
/** The same numgen draw's index is `flags`. */
const PICKED = 6;

/** The decisions of one walk, in walk order, with their answers. */
export class DecisionLog<F = Flow> {
  /** As trie nodes, so that a kept walk's new part is its own decisions (no copies). */
  readonly decisions: TrieNode<unknown, F>[] = [];
  readonly results: boolean[] = [];
  /** The changes a sampled walk made to recent lists, in order. */
  readonly recent: RecentTemplate[] = [];
  /**
   * From here on the walk read something no decision can ask again (a recent list after the
   * walk changed one itself): the packets that get here are walked, not looked up.
   */
  unpredictable = false;

  add(decide: Decide<F>, result: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push(new TrieNode(CALL, decide, undefined, 0, 0, undefined));
    this.results.push(result);
  }

  /**
   * A rule's `recent` checks, asked again by `decide`, answered `result`; `whenEmpty`: their
   * answer when every list is empty (and the walk changed none, as for every logged one).
   */
  addRecent(decide: Decide<F>, result: boolean, whenEmpty: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push(new TrieNode(RECENT, decide, undefined, 0, whenEmpty ? 1 : 0, undefined));
    this.results.push(result);
  }

  /** A `numgen random mod N` vmap drew index `index` (one draw, asked as a chain of yes/no). */
  addPick(mod: number, index: number): void {
    for (let k = 0; k <= index && !this.unpredictable; k++) {
      this.decisions.push(new TrieNode(k === 0 ? PICK : PICKED, undefined, undefined, mod, k, undefined));
      this.results.push(k === index);
    }
  }

  /** Row `row`'s packed source checks (passesSourceChecks with `flags`) answered `result`. */
  addSourceChecks(checks: FastChecks, row: number, flags: number, result: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push(new TrieNode(PACKED, undefined, checks, row, flags, undefined));
    this.results.push(result);
  }

  /** A `statistic --mode random` draw below `stored` (the kernel's 31-bit comparison) answered `result`. */
  addDraw(stored: number, negated: boolean, result: boolean): void {
    if (this.unpredictable) return;
    this.decisions.push(new TrieNode(DRAW, undefined, undefined, stored, negated ? 1 : 0, undefined));
    this.results.push(result);
  }
}

/** The changes of `templates` made by the packet of `flow`, newest first (as PathState.recent). */
export function recentChangesOf(templates: readonly RecentTemplate[], flow: Pick<Flow, 'src' | 'srcWords'>): RecentChange | undefined {
  let changes: RecentChange | undefined;
  for (const t of templates) {
    const ip = t.ip ?? recentKey(flow.src, flow.srcWords, t.mask);
    changes = { list: t.list, ip, seen: t.removed ? undefined : { ageSeconds: 0, hits: 1 }, previous: changes };
  }
  return changes;
}


/**
 * A decision (PACKED: a packed source check of a rule, FastChecks row and flags, the common
 * case; DRAW: a packed statistic draw, `row` the stored probability, `flags` 1 when negated;
 * RECENT: a rule's recent checks, a function, `flags` 1 when they match while every list is
 * empty, what a client nobody has seen gets, asked without a call; CALL: any other, a function)
 * with where each answer leads (undefined: nobody walked there
 * yet), or a LEAF: a walk's answer (`value` undefined: unpredictable from here, see
 * DecisionLog). One shape for all, so that following the trie stays monomorphic.
 */
class TrieNode<L, F = Flow> {
  yes: TrieNode<L, F> | undefined = undefined;
  no: TrieNode<L, F> | undefined = undefined;

  constructor(
    readonly kind: number,
    readonly decide: Decide<F> | undefined,
    readonly checks: FastChecks | undefined,
    readonly row: number,
    readonly flags: number,
    readonly value: L | undefined,
  ) {}
}

/** Lists with nobody in them. */
const NO_RECENT = new RecentLists(undefined);

/** Looked up: a walk's answer, or why there is none. */
export const MISS = Symbol('no walk took these decisions yet');
export const UNPREDICTABLE = Symbol('the walk must be made');

/**
 * The draws below a source class, flattened for the class table (ClassTable.addDraws): below a
 * class every source check answers the same, so what is left is a tree of draws. `steps` holds
 * 4 numbers per draw (the stored probability, 1 when negated, where yes and no lead: a draw's
 * index, or -(end + 1); a numgen pick: its modulus, PICK_STEP/PICKED_STEP + 4 * its index),
 * `ends` the answers they reach; undefined when a decision there is not a draw, a pick or a
 * source check (it needs a call) or there are too many draws.
 */
function flattenDraws<L, F>(
  from: TrieNode<L, F>, src32: number, srcTypeBit: number,
): { steps: number[]; ends: (L | typeof MISS | typeof UNPREDICTABLE)[]; start: number } | undefined {
  const steps: number[] = [];
  const ends: (L | typeof MISS | typeof UNPREDICTABLE)[] = [];
  const code = (start: TrieNode<L, F> | undefined): number | null => {
    let node = start;
    while (node !== undefined && (node.kind === PACKED || node.kind === RECENT)) {
      const yes = node.kind === PACKED ? sourcePasses(node.checks!, node.row, node.flags, src32, srcTypeBit) : node.flags !== 0;
      node = yes ? node.yes : node.no;
    }
    if (node === undefined || node.kind === LEAF) {
      ends.push(node === undefined ? MISS : answerOf(node));
      return -ends.length;
    }
    if ((node.kind !== DRAW && node.kind !== PICK && node.kind !== PICKED) || steps.length >= MAX_FLAT_DRAWS * 4) return null;
    const at = steps.length / 4;
    // A numgen pick (nftables mode): its modulus, and which index it asks for (see ClassTable).
    if (node.kind === DRAW) steps.push(node.row, node.flags, 0, 0);
    else steps.push(node.row, (node.kind === PICK ? PICK_STEP : PICKED_STEP) + 4 * node.flags, 0, 0);
    const yes = code(node.yes);
    if (yes === null) return null;
    const no = code(node.no);
    if (no === null) return null;
    steps[at * 4 + 2] = yes;
    steps[at * 4 + 3] = no;
    return at;
  };
  const start = code(from);
  return start === null || start < 0 ? undefined : { steps, ends, start };
}

function answerOf<L, F>(leaf: TrieNode<L, F>): L | typeof UNPREDICTABLE {
  return leaf.value === undefined ? UNPREDICTABLE : leaf.value;
}

/** Draws past this many are not flattened (a ruleset that multiplies statistic rules). */
const MAX_FLAT_DRAWS = 256;

const NO_BOUNDS: readonly number[] = [0];

/**
 * The walks of one destination side, branching on their decisions; and, so that a lookup need
 * not ask the packed source checks one by one, the classes of IPv4 sources they draw.
 *
 * Source classes: every packed source check of the trie tests the source address against one
 * network (a prefix: an interval of addresses) and its address type against a set of types.
 * The boundaries of all those intervals, sorted, cut the address space into intervals inside
 * which every such check answers the same; with the address type they make a source's class.
 * Two sources of a class follow the same way down the packed checks, so a class is looked up
 * once (a binary search over the boundaries) and where it leads past the packed checks from
 * the root (the answer itself when the walks read nothing else, else its draws laid out flat,
 * else the node) is kept for it, in the trie's region of the class table (class-table.ts). A
 * new walk that reads a network not seen before adds boundaries: the region is let go and the
 * classes found again. A mask that is not a prefix, or IPv6, turns classes off (every lookup
 * starts at the root, as before).
 */
export class DecisionTrie<L, F = Flow> {
  private root: TrieNode<L, F> | undefined = undefined;
  /** Interval starts of the source classes, ascending, from 0 (shared until the first is added). */
  private bounds: readonly number[] = NO_BOUNDS;
  /** This trie's region in the class table (-1: none yet), and the table's generation it is of. */
  private regionAt = -1;
  private regionGeneration = -1;
  /**
   * The region let go last and its number of boundaries (of generation regionGeneration): made
   * again in place when the boundaries are as many (a walk added without a new network, the
   * common case), so that the table does not grow by a region per walk kept. Its growth was
   * what started major collections in the middle of steady lookups (V8's external memory
   * pressure: the table's buffer doubling).
   */
  private deadAt = -1;
  private deadBounds = 0;
  /** Classes can be used (every packed source network is a prefix). */
  private classed = true;
  /** A decision that only a call can ask (a closure): lookups need the whole flow. */
  calls = false;
  /** A recent check: lookups with lists that are not all empty need the whole flow. */
  recentReads = false;

  /** `table`: where the classes are laid out (shared by a tracer's tries; made when first needed if not given). */
  constructor(private table?: ClassTable) {}

  /**
   * The trie's live region in the class table, made when there is none: what a tracer records
   * for a destination side (ClassTable.setSideRegion); -1 when classes are off.
   */
  region(): number {
    if (!this.classed || this.bounds.length > MAX_REGION_BOUNDS) return -1;
    const table = this.table ??= new ClassTable();
    if (this.regionAt >= 0 && this.regionGeneration === table.generation) return this.regionAt;
    const reuse = this.deadAt >= 0 && this.regionGeneration === table.generation && this.deadBounds === this.bounds.length;
    const dead = this.deadAt;
    this.deadAt = -1;
    this.regionGeneration = table.generation;
    return (this.regionAt = reuse ? table.reviveRegion(dead, this.bounds) : table.region(this.bounds));
  }

  /**
   * The answer of the walk that took the same decisions as the packet would, or MISS /
   * UNPREDICTABLE: the source as its IPv4 address (-1 for IPv6) and type bit, its flow
   * (needed only when `calls`), its recent lists (undefined: every list is empty; needed when
   * `recentReads` and they are not); `draws` for a seeded walk's draws.
   */
  find(
    src32: number, srcTypeBit: number, flow: F | undefined, lists: RecentSource | undefined, draws: SeededDraws | undefined,
  ): L | typeof MISS | typeof UNPREDICTABLE {
    let node: TrieNode<L, F> | undefined = this.root;
    const region = src32 >= 0 && lists === undefined ? this.region() : -1;
    if (region >= 0) {
      const table = this.table!;
      const known = table.answer(region, src32, srcTypeBit, draws);
      if (known !== NOT_FLAT) return known as L | typeof MISS | typeof UNPREDICTABLE;
      const cellAt = table.cellOf(region, src32, srcTypeBit);
      const cell = table.data[cellAt]!;
      if (cell === 0) {
        const past = this.pastSourceChecks(src32, srcTypeBit);
        if (past === undefined) return MISS;
        const answer = this.learnClass(table, cellAt, past, src32, srcTypeBit);
        if (answer !== NOT_FLAT) return answer;
        node = past;
      } else if ((cell & 3) === CELL_NODE) {
        node = table.refs[(cell - CELL_NODE) / 4] as TrieNode<L, F>;
      }
      // Else draws and no draws given: from the root (a trie of seeded walks is asked with draws).
    }
    let picked = -1;
    while (node !== undefined) {
      const kind = node.kind;
      if (kind === PACKED) {
        node = sourcePasses(node.checks!, node.row, node.flags, src32, srcTypeBit) ? node.yes : node.no;
      } else if (kind === DRAW) {
        node = ((draws!.next() & 0x7fffffff) < node.row) !== (node.flags !== 0) ? node.yes : node.no;
      } else if (kind === RECENT) {
        const matched = lists === undefined ? node.flags !== 0 : node.decide!(flow!, lists, undefined);
        node = matched ? node.yes : node.no;
      } else if (kind === CALL) {
        node = node.decide!(flow!, lists ?? NO_RECENT, draws?.draw) ? node.yes : node.no;
      } else if (kind === PICK) {
        picked = numgenIndex(draws!.next(), node.row);
        node = picked === node.flags ? node.yes : node.no;
      } else if (kind === PICKED) {
        node = picked === node.flags ? node.yes : node.no;
      } else {
        return node.value === undefined ? UNPREDICTABLE : node.value;
      }
    }
    return MISS;
  }

  /**
   * Fill a class's cell: its answer when its source checks end at a leaf (returned), else its
   * draws laid out, else the node to walk from (NOT_FLAT returned: the caller walks from `past`
   * this time; the next lookup of the class reads the cell).
   */
  private learnClass(table: ClassTable, cellAt: number, past: TrieNode<L, F>, src32: number, srcTypeBit: number): L | typeof UNPREDICTABLE | typeof NOT_FLAT {
    const generation = table.generation;
    if (past.kind === LEAF) {
      const answer = answerOf(past);
      table.data[cellAt] = CELL_ANSWER + 4 * table.ref(answer);
      return answer;
    }
    const flat = past.kind === DRAW || past.kind === PICK ? flattenDraws(past, src32, srcTypeBit) : undefined;
    if (flat !== undefined) {
      const at = table.addDraws(flat.steps, flat.ends, flat.start);
      // No room: everything was let go, this region with it.
      if (at >= 0) table.data[cellAt] = CELL_DRAWS + 4 * at;
    } else if (generation === table.generation) {
      table.data[cellAt] = CELL_NODE + 4 * table.ref(past);
    }
    return NOT_FLAT;
  }

  /**
   * Where a source's packed checks (and recent checks, every list empty) lead from the root:
   * the first node of another kind.
   */
  private pastSourceChecks(src32: number, srcTypeBit: number): TrieNode<L, F> | undefined {
    let node = this.root;
    while (node !== undefined) {
      if (node.kind === PACKED) node = sourcePasses(node.checks!, node.row, node.flags, src32, srcTypeBit) ? node.yes : node.no;
      else if (node.kind === RECENT) node = node.flags !== 0 ? node.yes : node.no;
      else break;
    }
    return node;
  }

/** Keep a walk's decisions and answer; returns how many nodes were added. */
  insert(log: DecisionLog<F>, value: L): number {
    this.learn(log);
    // Flattened draws may end where this walk goes on: start every class again.
    this.forgetClasses();
    const leaf = new TrieNode<L, F>(LEAF, undefined, undefined, 0, 0, log.unpredictable ? undefined : value);
    const n = log.decisions.length;
    if (n === 0) {
      if (this.root !== undefined) this.forgetClasses();
      this.root = leaf;
      return 1;
    }
    let added = 0;
    if (this.root === undefined || this.root.kind === LEAF) {
      if (this.root !== undefined) this.forgetClasses();
      this.root = log.decisions[0] as TrieNode<L, F>;
      added++;
    }
    let node = this.root;
    for (let i = 0; i < n; i++) {
      const yes = log.results[i]!;
      const next = yes ? node.yes : node.no;
      let child: TrieNode<L, F>;
      if (i === n - 1) {
        child = leaf;
      } else if (next === undefined || next.kind === LEAF) {
        child = log.decisions[i + 1] as TrieNode<L, F>;
      } else {
        child = next;
      }
      if (child !== next) {
        // A kept class may lead to the node replaced (a leaf): let the classes go.
        if (next !== undefined) this.forgetClasses();
        if (yes) node.yes = child;
        else node.no = child;
        added++;
      }
      node = child;
    }
    return added;
  }

  /** The source networks and kinds of decision a walk read (see the class comment). */
  private learn(log: DecisionLog<F>): void {
    let changed = false;
    for (const d of log.decisions) {
      if (d.kind === CALL) {
        this.calls = true;
      } else if (d.kind === RECENT) {
        this.recentReads = true;
      } else if (d.kind === PACKED && (d.flags & CHECK.SRC) !== 0 && this.classed) {
        const interval = sourceInterval(d.checks!, d.row);
        if (interval === undefined) {
          this.classed = false;
          changed = true;
          continue;
        }
        if (this.addBound(interval[0])) changed = true;
        if (interval[1] < 0x100000000 && this.addBound(interval[1])) changed = true;
      }
    }
    if (changed) this.forgetClasses();
  }

  private addBound(at: number): boolean {
    const bounds = this.bounds === NO_BOUNDS ? [0] : this.bounds as number[];
    let i = bounds.length;
    while (i > 0 && bounds[i - 1]! > at) i--;
    if (bounds[i - 1] === at) return false;
    bounds.splice(i, 0, at);
    this.bounds = bounds;
    return true;
  }

  /** The trie changed: its region is not answered from again (a new one is made when asked). */
  private forgetClasses(): void {
    if (this.regionAt >= 0 && this.regionGeneration === this.table!.generation) {
      this.deadBounds = this.table!.kill(this.regionAt);
      this.deadAt = this.regionAt;
    }
    this.regionAt = -1;
  }
}
