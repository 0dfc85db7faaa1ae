/**
 * The walks inside a trace's hops. The tracers walk every outcome depth first and record each
 * matched rule once, in walk order: the first path in full, then each later path from the rule
 * where it forked off (the next `statistic` rule of a KUBE-SVC chain, the nftables `numgen`
 * rule again with its other element, the next IPVS real server). The JSON says nothing more, so
 * the paths are read back from the hops' chains and depths, as the walk made them:
 *
 *   - a hop at depth d > 0 is in the chain the path entered at depth d: the chain the previous
 *     hop jumped (or went) to, or the chain of the path's last hop at depth d, returned to;
 *   - a hop at depth 0 starts or goes on with a hook's base chain;
 *   - a path's chance only shrinks as it goes.
 *
 * A hop that breaks these starts a path resumed at a fork: the path walked before it, up to the
 * last hop of that path in the same chain at the same depth (the rule that took the branch
 * this path did not), and then the new hops. A path resumed in a hook's base chain itself (at
 * depth 0: no kube-proxy rule forks there, a hand-written `statistic` rule in PREROUTING could)
 * is told apart only when its chance is larger than the path's before; `formatTrace` (--verbose)
 * prints the walk as it was recorded, whatever it holds.
 *
 * Pure: only the hops are read (no mode-specific knowledge beyond the target's spelling).
 */
import type { Hop, TraceResult, Verdict } from './types.js';

/** One outcome of the walk. */
export interface TraceBranch {
  /** The path's hops, as indexes into the trace's hops, in walk order. */
  readonly hops: readonly number[];
  /**
   * How many of them the path shares with the paths walked before it (0 for the first path):
   * its own hops, those the JSON lists for it alone, start there.
   */
  readonly resumedAt: number;
  /** The path's chance (its last hop's); undefined when the hops carry none. */
  readonly probability: number | undefined;
  readonly verdict: Verdict;
  /** The endpoint the path was DNATed to, when it was. */
  readonly endpoint: string | undefined;
  readonly masquerade: boolean;
}

export interface TraceBranches {
  /** The paths, in walk order. */
  readonly branches: readonly TraceBranch[];
  /** How many hops at the start every path shares. */
  readonly shared: number;
  /** Hops that are remarks, not rules (table ""): a walk stopped forking, and so on. */
  readonly notes: readonly Hop[];
}

/** A chance that grew by more than rounding is a new path. */
const RELATIVE_SLACK = 1e-9;

/** The paths of a trace. */
export function traceBranches(result: TraceResult): TraceBranches {
  const hops = result.hops;
  const paths: number[][] = [];
  const resumedAt: number[] = [];
  const notes: Hop[] = [];
  let current: number[] = [];
  hops.forEach((hop, i) => {
    if (hop.table === '') {
      notes.push(hop);
      return;
    }
    if (current.length === 0 || continuesPath(hops, current, hop)) {
      current.push(i);
      return;
    }
    paths.push(current);
    current = forkPrefix(hops, current, hop);
    resumedAt.push(current.length);
    current.push(i);
  });
  if (current.length > 0) paths.push(current);
  const shared = sharedLength(paths);
  return {
    branches: paths.map((path, k) => branchOf(result, path, k === 0 ? 0 : resumedAt[k - 1]!)),
    shared,
    notes,
  };
}

/** Whether `hop` can come next on the path walked so far. */
function continuesPath(hops: readonly Hop[], path: readonly number[], hop: Hop): boolean {
  const previous = hops[path[path.length - 1]!]!;
  const before = previous.probability ?? 1;
  const now = hop.probability ?? 1;
  if (now > before * (1 + RELATIVE_SLACK)) return false;
  const depth = hop.depth ?? 0;
  if (depth === 0) return true;
  const previousDepth = previous.depth ?? 0;
  if (depth > previousDepth + 1) return false;
  // Into a chain: a jump goes one deeper, a goto stays at the jumping rule's depth.
  if (depth >= previousDepth && previous.table === hop.table && entersChain(previous.target, hop.chain)) return true;
  const frame = chainAt(hops, path, depth);
  return frame !== undefined && frame.table === hop.table && frame.chain === hop.chain;
}

/** iptables names the chain (`KUBE-SEP-...`), nftables the verdict (`jump services`, `goto ...`), IPVS the virtual server. */
function entersChain(target: string, chain: string): boolean {
  return target === chain || target.endsWith(` ${chain}`);
}

/** The chain the path is in at `depth`: its last hop there, unless it left that depth since. */
function chainAt(hops: readonly Hop[], path: readonly number[], depth: number): Hop | undefined {
  for (let j = path.length - 1; j >= 0; j--) {
    const hop = hops[path[j]!]!;
    const at = hop.depth ?? 0;
    if (at === depth) return hop;
    if (at < depth) return undefined;
  }
  return undefined;
}

/**
 * The hops a resumed path shares with the one walked before it: that path up to its last hop in
 * the chain, at the depth, where the new hop is (the rule of the branch taken before). Without
 * one (the resumed path left the forking chain before matching anything), the hops before the
 * path's first chance below 1.
 */
function forkPrefix(hops: readonly Hop[], path: readonly number[], hop: Hop): number[] {
  for (let j = path.length - 1; j >= 0; j--) {
    const h = hops[path[j]!]!;
    if (h.table === hop.table && h.chain === hop.chain && (h.depth ?? 0) === (hop.depth ?? 0)) return path.slice(0, j);
  }
  const firstFork = path.findIndex((i) => (hops[i]!.probability ?? 1) < 1);
  return path.slice(0, firstFork < 0 ? 0 : firstFork);
}

function sharedLength(paths: readonly (readonly number[])[]): number {
  if (paths.length === 0) return 0;
  const first = paths[0]!;
  let n = 0;
  while (n < first.length && paths.every((p) => p.length > n && p[n] === first[n])) n++;
  return n;
}

function branchOf(result: TraceResult, path: readonly number[], resumedAt: number): TraceBranch {
  const hops = path.map((i) => result.hops[i]!);
  const last = hops[hops.length - 1];
  const verdict = verdictOf(hops);
  const endpoint = verdict === 'DNAT' || verdict === 'DROP' || verdict === 'REJECT' ? endpointOf(result, hops) : undefined;
  const dnat = verdict === 'DNAT' ? endpoint : undefined;
  const masquerade = verdict === 'DROP' || verdict === 'REJECT'
    ? false
    : dnat !== undefined && result.masqueradeByEndpoint[dnat] !== undefined
      ? result.masqueradeByEndpoint[dnat]!
      : hops.some((h) => /^(MASQUERADE|SNAT)$|^(masquerade|snat)\b/.test(h.target));
  return { hops: path, resumedAt, probability: last?.probability, verdict, endpoint, masquerade };
}

/** How a path ended: the last REJECT or DROP, else a DNAT on the way, else an ACCEPT, else nothing. */
function verdictOf(hops: readonly Hop[]): Verdict {
  const last = hops[hops.length - 1];
  const ending = last === undefined ? '' : last.target.split(' ')[0]!.toUpperCase();
  if (ending === 'REJECT' || ending === 'DROP') return ending;
  if (hops.some(isDnat)) return 'DNAT';
  if (hops.some((h) => h.table === 'filter' && h.target === 'ACCEPT')) return 'ACCEPT';
  return 'NONE';
}

function isDnat(hop: Hop): boolean {
  // IPVS: a real server ("-> 10.244.0.5:8080 Masq 1"), not the virtual server's hop.
  return hop.target === 'DNAT' || hop.target.startsWith('dnat ') || (hop.table === 'ipvs' && hop.rule.startsWith('-> '));
}

/**
 * The endpoint of the result a path reached: the one its DNAT names (kube-proxy's DNAT rules
 * and IPVS real servers name it in full), else one its other hops name.
 */
function endpointOf(result: TraceResult, hops: readonly Hop[]): string | undefined {
  const named = (hop: Hop): string | undefined => result.endpoints.find((e) => mentions(`${hop.rule} ${hop.target}`, e));
  for (let j = hops.length - 1; j >= 0; j--) {
    if (!isDnat(hops[j]!)) continue;
    const found = named(hops[j]!);
    if (found !== undefined) return found;
  }
  for (let j = hops.length - 1; j >= 0; j--) {
    const found = named(hops[j]!);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** `text` names `endpoint` as a whole ("10.0.0.1:80" is not in "10.0.0.1:8080"). */
function mentions(text: string, endpoint: string): boolean {
  let at = text.indexOf(endpoint);
  while (at >= 0) {
    const before = text[at - 1];
    const after = text[at + endpoint.length];
    if ((before === undefined || !/[\w.:]/.test(before)) && (after === undefined || !/[\w.:]/.test(after))) return true;
    at = text.indexOf(endpoint, at + 1);
  }
  return false;
}
