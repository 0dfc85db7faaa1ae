/**
 * The kernel against kpsim's trace, flow by flow (pure once the tries are in): every endpoint the
 * kernel's DNAT chose is one the trace predicts, and, over enough tries, every one it predicts is
 * chosen, as often as its probability says (Pearson's chi-square at a stated alpha); masquerade
 * and REJECT/DROP as predicted; and each traced try's rule path, as nft's trace saw it, equals the
 * path kpsim's trace takes to the endpoint the kernel chose.
 *
 * Rules are compared by place, not by text: a kernel rule is its chain and its position there
 * (from its handle, in the kernel's own listing), a trace hop is its chain and the position of
 * its text in the ruleset that was loaded. The kernel prints rules back in its own syntax; their
 * order is what it was given.
 *
 * ClientIP affinity makes a try depend on the ones before it from the same source: the `recent`
 * lists (or sets) a try's path updates are carried to the next try's prediction, so a second try
 * is predicted to stick where the first went.
 */
import type { NodeTracer } from '../node/trace-context.js';
import { chiSquareTest } from '../simulate/fairness.js';
import type { Hop, Packet, RecentEntry, RecentState, RecentUpdate, TraceResult, TraceSample } from '../trace/types.js';
import { type Family, joinHostPort } from '../util/ip.js';
import type { FlowCase } from './flows.js';
import { predictedCategories } from './flows.js';
import { type ConntrackEntry, type TraceEvent, isDnat, isSnat } from './kernel-text.js';
import type { KernelMode } from './kernel-modes.js';
import type { LoadedRuleset } from './lab.js';
import type { ProbeTry } from './probe.js';

/** One rule on a path, named by its place. */
export interface PathStep {
  /** "ip nat KUBE-SVC-X #2", or "… policy drop". */
  readonly key: string;
  /** The rule's text: the kernel's own printing, or kpsim's. */
  readonly text: string;
}

/** Places kernel rules (by handle) and trace hops (by text) in the loaded rulesets' chains. */
export class PathIndex {
  readonly #rendered = new Map<Family, Map<string, string[]>>();

  constructor(
    private readonly kernel: KernelMode,
    rulesets: readonly LoadedRuleset[],
    private readonly handles: ReadonlyMap<string, readonly number[]>,
    private readonly kernelRules: ReadonlyMap<string, readonly string[]>,
  ) {
    for (const r of rulesets) this.#rendered.set(r.family, kernel.renderedRules(r));
  }

  hop(hop: Hop, family: Family): PathStep {
    const chain = `${this.kernel.kernelTable(hop.table, family)} ${hop.chain}`;
    if (hop.rule.startsWith('policy ')) return { key: `${chain} ${hop.rule}`, text: hop.rule };
    const index = this.#rendered.get(family)?.get(chain)?.indexOf(hop.rule) ?? -1;
    return { key: index >= 0 ? `${chain} #${index + 1}` : `${chain} ${hop.rule}`, text: hop.rule };
  }

  event(event: TraceEvent): PathStep {
    const chain = `${event.table} ${event.chain}`;
    if (event.kind === 'policy') return { key: `${chain} policy ${event.verdict}`, text: `policy ${event.verdict}` };
    const index = event.handle === undefined ? -1 : (this.handles.get(chain)?.indexOf(event.handle) ?? -1);
    const text = index >= 0 ? (this.kernelRules.get(chain)?.[index] ?? event.text) : event.text;
    return { key: index >= 0 ? `${chain} #${index + 1}` : `${chain} ${event.text}`, text };
  }

  /** The kernel's path: the rules the packet matched (and a chain policy that dropped it). */
  kernelPath(events: readonly TraceEvent[]): PathStep[] {
    return events.filter((e) => e.kind === 'rule' || (e.kind === 'policy' && e.verdict === 'drop')).map((e) => this.event(e));
  }

  /** kpsim's path: every hop of the walk that names a rule. */
  tracePath(hops: readonly Hop[], family: Family): PathStep[] {
    return hops.filter((h) => h.table !== '' && h.table !== 'ipvs').map((h) => this.hop(h, family));
  }
}

/**
 * What kernelCategory calls a TCP try that connected while the kernel kept no entry of it: the
 * kernel let it through (REJECT and DROP give no connection), but where to is not known, so the
 * try cannot be judged. The probe hears the entries the kernel evicts (probe.ts), so a lost
 * record is one that went unheard; verifyCase leaves such tries out and counts them.
 */
export const LOST_RECORD = 'LOST';

/** Lost records a case may have: 1% of its tries, at least one, at most three. */
export function lostRecordLimit(tries: number): number {
  return Math.min(3, Math.max(1, Math.floor(tries / 100)));
}

/**
 * What a try came to, in the trace's terms: an endpoint ("10.0.0.5:80"), REJECT, DROP or NONE (no
 * NAT), or "A|B" when what the kernel left cannot tell A from B; LOST_RECORD when the client
 * connected and the kernel kept nothing to say where to.
 *
 * A trace that ends in a dropping rule decides (kube-proxy's REJECT is iptables' REJECT target,
 * which drops the packet after answering it; the kernel's listing says which rule it was). Else
 * conntrack: a connection that was confirmed before a later rule refused it (a packet the node
 * sends to itself is confirmed on its way out, then refused on its way in) looks like one let
 * through, unless the client was refused.
 */
export function kernelCategory(t: ProbeTry, index: PathIndex): string {
  const last = t.trace?.events.filter((e) => e.kind === 'rule' || e.kind === 'policy').at(-1);
  if (last !== undefined && last.verdict === 'drop') return /\breject\b/i.test(index.event(last).text) ? 'REJECT' : 'DROP';
  if (t.conntrack !== undefined) {
    if (isDnat(t.conntrack)) return joinHostPort(t.conntrack.replySource.ip, t.conntrack.replySource.port);
    return t.outcome === 'refused' && t.trace === undefined ? 'NONE|REJECT' : 'NONE';
  }
  if (t.outcome === 'connected') return LOST_RECORD;
  // Refused with no record in conntrack (the kernel drops a connection's entry when a RST answers
  // its SYN): a traced try whose rules dropped nothing was refused by the stack, nothing listening.
  if (t.outcome === 'refused') return t.trace !== undefined ? 'NONE' : 'REJECT';
  if (t.outcome === 'timeout') return 'DROP';
  // A datagram, or a packet the node's own rules refused to send: refused or dropped, unseen which.
  return 'REJECT|DROP';
}

export interface PathComparison {
  readonly category: string;
  readonly source: string;
  readonly kernel: readonly PathStep[];
  readonly trace: readonly PathStep[];
  /** Index of the first step that differs; -1 when the paths are equal. */
  readonly firstDifference: number;
}

export interface CaseReport {
  readonly name: string;
  readonly tries: number;
  /** Tries left out: a source port in use, a socket error, a lost record. */
  readonly excluded: number;
  /** Of those, tries that connected while the kernel kept no record of them (LOST_RECORD); more than lostRecordLimit is a problem. */
  readonly lost: number;
  /** Tries judged from the entry the kernel evicted during the probe (its destroy event), not its table. */
  readonly evicted: number;
  /** The fresh-client prediction: each category's probability. */
  readonly predicted: Readonly<Record<string, number>>;
  /** What the kernel chose, every try. */
  readonly kernel: Readonly<Record<string, number>>;
  readonly chiSquare?: { readonly statistic: number; readonly degreesOfFreedom: number; readonly pValue: number; readonly alpha: number; readonly tries: number };
  /** One comparison per (category, source) traced, the first try of each. */
  readonly paths: readonly PathComparison[];
  /** Each finding with its evidence; empty when the kernel agreed. */
  readonly problems: readonly string[];
}

export interface VerifyOptions {
  /** Significance level of the chi-square test. */
  readonly alpha: number;
  /** The pods answer: a TCP try the kernel DNATed must connect. */
  readonly servers: boolean;
  /** Seeds tried to find kpsim's walk to a given category. Default 2000. */
  readonly maxSeeds?: number;
}

interface SourceState {
  recent: Record<string, RecentEntry[]>;
}

/**
 * Judges one case from its tries (`triesOf` gives each try's source address). Tries of one source
 * are taken in the order they were made.
 */
export function verifyCase(c: FlowCase, tries: readonly (ProbeTry & { readonly src: string })[], tracer: NodeTracer, index: PathIndex, opts: VerifyOptions): CaseReport {
  const problems: string[] = [];
  const freshCategories = predictedCategories(c.predicted);
  const kernelCounts = new Map<string, number>();
  const freshCounts = new Map<string, number>([...freshCategories.keys()].map((k) => [k, 0]));
  let freshTries = 0;
  let excluded = 0;
  let lost = 0;
  let evicted = 0;
  const paths: PathComparison[] = [];
  const compared = new Set<string>();
  const sources = new Map<string, SourceState>();
  const samples = new Map<string, TraceSample | undefined>();
  const ordered = [...tries].sort((a, b) => (a.src < b.src ? -1 : a.src > b.src ? 1 : a.order - b.order));

  for (const t of ordered) {
    if (t.outcome === 'busy' || t.outcome === 'error') {
      excluded++;
      continue;
    }
    const got = kernelCategory(t, index);
    if (got === LOST_RECORD) {
      excluded++;
      lost++;
      continue;
    }
    if (t.evicted) evicted++;
    const state = sources.get(t.src) ?? { recent: {} };
    sources.set(t.src, state);
    const packet: Packet = { proto: c.proto, src: t.src, dst: c.dst, dport: c.dport };
    const recent: RecentState = state.recent;
    const predicted = tracer.trace(packet, { fromNode: c.fromNode, recent });
    const categories = predictedCategories(predicted);
    kernelCounts.set(got, (kernelCounts.get(got) ?? 0) + 1);
    const fresh = sameCategories(categories, freshCategories);
    if (fresh) {
      freshTries++;
      if (freshCounts.has(got)) freshCounts.set(got, freshCounts.get(got)! + 1);
    }
    const allowed = got.split('|').some((k) => categories.has(k));
    if (!allowed) {
      problems.push(`try from ${t.src} port ${t.sport}: the kernel ${describeCategory(got, t.conntrack)}, the client saw ${t.outcome}${t.trace !== undefined ? ', traced' : ''}; kpsim predicts ${[...categories.keys()].join(', ')}`);
      continue;
    }
    checkTry(c, t, got, predicted, index, opts, problems);
    // The walk kpsim takes to the same place: its path, and what it leaves in the affinity lists.
    const sampleKey = `${got} ${t.src} ${JSON.stringify(recent)}`;
    if (!samples.has(sampleKey)) samples.set(sampleKey, findSample(tracer, packet, c.fromNode, recent, got, opts.maxSeeds ?? 2000));
    const sample = samples.get(sampleKey);
    if (sample?.recent !== undefined) applyRecent(state, sample.recent);
    if (t.trace !== undefined && !got.includes('|') && !compared.has(`${got} ${t.src}`)) {
      compared.add(`${got} ${t.src}`);
      if (sample === undefined) {
        problems.push(`try from ${t.src} port ${t.sport}: kpsim's trace found no walk to ${got} in ${opts.maxSeeds ?? 2000} seeds`);
        continue;
      }
      const kernelPath = index.kernelPath(t.trace.events);
      const tracePath = index.tracePath(sample.hops, c.family);
      const firstDifference = firstDifferenceOf(kernelPath, tracePath);
      paths.push({ category: got, source: t.src, kernel: kernelPath, trace: tracePath, firstDifference });
      if (firstDifference >= 0) {
        problems.push(`path to ${got} from ${t.src} differs at step ${firstDifference + 1}:\n${formatPaths(kernelPath, tracePath, firstDifference)}`);
      }
    } else if (t.traced && t.trace === undefined && t.outcome !== 'denied' && got !== 'REJECT|DROP') {
      problems.push(`try from ${t.src} port ${t.sport} was traced but nft's monitor reported nothing for it`);
    }
  }

  if (lost > lostRecordLimit(tries.length)) {
    problems.push(`${lost} of ${tries.length} tries connected, yet the kernel kept no record of them (no conntrack entry, heard or listed, and no trace): more than the ${lostRecordLimit(tries.length)} a case may leave out`);
  }

  let chiSquare: CaseReport['chiSquare'];
  const expected = [...freshCategories.values()];
  const pMin = Math.min(...expected);
  if (freshCategories.size > 1 && freshTries * pMin >= 5) {
    const observed = [...freshCategories.keys()].map((k) => freshCounts.get(k) ?? 0);
    const test = chiSquareTest(observed, expected);
    chiSquare = { statistic: test.statistic, degreesOfFreedom: test.degreesOfFreedom, pValue: test.pValue, alpha: opts.alpha, tries: freshTries };
    if (test.pValue < opts.alpha) {
      problems.push(`the kernel's choices do not follow kpsim's probabilities: chi-square ${test.statistic.toFixed(2)} on ${test.degreesOfFreedom} df, p=${test.pValue.toExponential(2)} < alpha ${opts.alpha.toExponential(0)} (observed ${formatCounts(freshCounts)}; expected shares ${formatShares(freshCategories)})`);
    }
  }
  if (c.coverage) {
    for (const [k, p] of freshCategories) {
      const seen = [...kernelCounts.keys()].some((got) => got.split('|').includes(k));
      if (p > 0 && !seen) problems.push(`kpsim predicts ${k} with p=${p.toPrecision(4)}, the kernel never chose it in ${freshTries} fresh tries`);
    }
  }
  return {
    name: c.name, tries: tries.length, excluded, lost, evicted,
    predicted: Object.fromEntries(freshCategories), kernel: Object.fromEntries(kernelCounts),
    ...(chiSquare !== undefined ? { chiSquare } : {}),
    paths, problems,
  };
}

/** Masquerade, and what the client saw, for a try whose category the trace allows. */
function checkTry(c: FlowCase, t: ProbeTry & { src: string }, got: string, predicted: TraceResult, index: PathIndex, opts: VerifyOptions, problems: string[]): void {
  const where = `try from ${t.src} port ${t.sport}`;
  if (t.conntrack !== undefined) {
    const want = got === 'NONE' ? predicted.masquerade : predicted.masqueradeByEndpoint[got] ?? false;
    const masqueraded = kernelMasqueraded(c, t, index);
    if (masqueraded !== undefined && masqueraded !== want) {
      problems.push(`${where} to ${got}: the kernel ${masqueraded ? `masqueraded it (to ${t.conntrack.replyDestination.ip})` : 'did not masquerade it'}; kpsim predicts masquerade=${want}`);
    }
  }
  if (c.proto === 'tcp' && opts.servers && got !== 'NONE' && got !== 'REJECT' && got !== 'DROP' && t.outcome !== 'connected') {
    problems.push(`${where} was DNATed to ${got} but did not connect (${t.outcome})`);
  }
  if (got === 'REJECT' && c.proto === 'tcp' && t.outcome !== 'refused') problems.push(`${where}: REJECTed, yet the client saw ${t.outcome}`);
}

/**
 * Whether the kernel masqueraded a try: conntrack shows the new source, or the trace shows the
 * MASQUERADE rule. A packet the node itself sends may already carry the address masquerading
 * would give it (its own, on the way out): then conntrack shows nothing, and only a trace tells;
 * undefined when neither can.
 */
function kernelMasqueraded(c: FlowCase, t: ProbeTry, index: PathIndex): boolean | undefined {
  if (t.conntrack !== undefined && isSnat(t.conntrack)) return true;
  // The MASQUERADE target or masquerade statement itself, not a jump to a chain named for it (mark-for-masquerade).
  if (t.trace !== undefined) return index.kernelPath(t.trace.events).some((step) => /(^|\s)masquerade(\s|$)/i.test(step.text));
  return c.fromNode ? undefined : false;
}

function describeCategory(category: string, entry: ConntrackEntry | undefined): string {
  if (entry !== undefined && isDnat(entry)) return `DNATed it to ${category}${isSnat(entry) ? ' and masqueraded it' : ''}`;
  if (category === 'NONE') return 'let it through without NAT';
  if (category.includes('|')) return `${category.split('|').join(' or ')} (the kernel's records cannot tell which)`;
  return `${category === 'REJECT' ? 'rejected' : 'dropped'} it`;
}

function sameCategories(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, p] of a) if (Math.abs((b.get(k) ?? -1) - p) > 1e-12) return false;
  return true;
}

/** kpsim's walk to `category`: the first seed whose sample lands there. */
function findSample(tracer: NodeTracer, packet: Packet, fromNode: boolean, recent: RecentState, category: string, maxSeeds: number): TraceSample | undefined {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const sample = tracer.trace(packet, { fromNode, recent, seed }).sample;
    if (sample === undefined) return undefined;
    const landed = sample.verdict === 'DNAT' && sample.endpoint !== undefined ? sample.endpoint : sample.verdict === 'ACCEPT' || sample.verdict === 'NONE' ? 'NONE' : sample.verdict;
    if (category.split('|').includes(landed)) return sample;
  }
  return undefined;
}

function applyRecent(state: SourceState, updates: readonly RecentUpdate[]): void {
  for (const u of updates) {
    const list = (state.recent[u.list] ?? []).filter((e) => (typeof e === 'string' ? e : e.address) !== u.address);
    state.recent[u.list] = u.removed ? list : [...list, u.address];
  }
}

export function firstDifferenceOf(a: readonly PathStep[], b: readonly PathStep[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i]?.key !== b[i]?.key) return i;
  return -1;
}

/** Kernel and kpsim side by side, the first difference marked with ">>". */
export function formatPaths(kernel: readonly PathStep[], trace: readonly PathStep[], firstDifference: number): string {
  const n = Math.max(kernel.length, trace.length);
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const mark = i === firstDifference ? '>>' : '  ';
    const k = kernel[i];
    const t = trace[i];
    lines.push(`${mark} ${String(i + 1).padStart(2)} kernel: ${k ? `${k.key}  ${k.text}` : '(none)'}`);
    if (k?.key !== t?.key) lines.push(`${mark}    kpsim:  ${t ? `${t.key}  ${t.text}` : '(none)'}`);
  }
  return lines.join('\n');
}

function formatCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts].map(([k, n]) => `${k}=${n}`).join(', ');
}

function formatShares(shares: ReadonlyMap<string, number>): string {
  return [...shares].map(([k, p]) => `${k}=${p.toPrecision(4)}`).join(', ');
}
