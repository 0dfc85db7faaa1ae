/**
 * A trace for people, by outcome: the hops every path shares once, then one branch per path
 * (its chance and how it ended, the rules that made it: KUBE-SVC's pick, the KUBE-SEP chain and
 * its DNAT), then what the later hooks (filter, nat POSTROUTING) did, once when every branch
 * went through them alike, and the verdict as a table. `formatTrace` (format.ts) keeps the full
 * walk in walk order, for --verbose.
 *
 *   arriving at the node (nat PREROUTING)
 *   nat PREROUTING: -A PREROUTING ... -j KUBE-SERVICES  (assumed)
 *     nat KUBE-SERVICES: -A KUBE-SERVICES ... -j KUBE-SVC-CDGGSHYLG3RE2FKL
 *   branch 1 of 3, p=0.3333333335: DNAT to 10.244.0.5:8080
 *         nat KUBE-SVC-CDGGSHYLG3RE2FKL: ... -j KUBE-SEP-7U6MWNJWR3SADOJA
 *           nat KUBE-SEP-7U6MWNJWR3SADOJA: ... -j DNAT --to-destination 10.244.0.5:8080
 *   ...
 *   then, on every branch:
 *   filter FORWARD: ...
 *   verdict: DNAT
 *   masquerade: no
 *     outcome  endpoint         probability   masquerade  branch
 *     DNAT     10.244.0.5:8080  0.3333333335  no          1
 *
 * Works off the trace result alone (the JSON contract), in every mode: the branches are read
 * back from the hops (branches.ts). Pure: the style (plain or ANSI colours) is passed in.
 */
import { joinHostPort } from '../util/ip.js';
import { type TraceBranch, traceBranches } from './branches.js';
import { formatHop, formatProbability } from './format.js';
import { PLAIN_STYLE, type TextStyle } from './text-style.js';
import type { Hop, Packet, TraceResult, Verdict } from './types.js';

export interface BranchFormatOptions {
  readonly style?: TextStyle;
  /** The packet traced: named on the first line when given. */
  readonly packet?: Packet;
}

/** Branch content sits this much to the right of its heading. */
const BRANCH_INDENT = '  ';

export function formatTraceBranches(result: TraceResult, options: BranchFormatOptions = {}): string[] {
  const style = options.style ?? PLAIN_STYLE;
  const { branches, shared, notes } = traceBranches(result);
  const hop = (i: number): Hop => result.hops[i]!;
  const lines: string[] = [];
  const header = headerOf(result, options.packet);
  if (header !== '') lines.push(style.strong(header));
  const first = branches[0];
  if (first) for (const i of first.hops.slice(0, shared)) lines.push(formatHop(hop(i), false, style));

  if (branches.length > 1) {
    const parts = branches.map((b) => splitBranch(result.hops, b, shared));
    const tailKeys = parts.map((p) => p.tail.map((i) => hopKey(hop(i))).join('\n'));
    const oneTail = parts.every((p) => p.tail.length > 0) && tailKeys.every((k) => k === tailKeys[0]);
    branches.forEach((branch, k) => {
      lines.push(`${style.strong(`branch ${k + 1} of ${branches.length}`)}${branch.probability === undefined ? '' : `, p=${formatProbability(branch.probability)}`}: ${outcomeText(branch, style)}`);
      for (const i of parts[k]!.head) lines.push(BRANCH_INDENT + formatHop(hop(i), false, style));
      if (oneTail || parts[k]!.tail.length === 0) return;
      const earlier = tailKeys.indexOf(tailKeys[k]!);
      if (earlier < k) {
        lines.push(BRANCH_INDENT + style.faint(`then as branch ${earlier + 1}`));
        return;
      }
      for (const i of parts[k]!.tail) lines.push(BRANCH_INDENT + formatHop(hop(i), false, style));
    });
    if (oneTail) {
      lines.push(style.strong(`then, on every branch:`));
      for (const i of parts[0]!.tail) lines.push(formatHop(hop(i), false, style));
    }
  } else if (first) {
    for (const i of first.hops.slice(shared)) lines.push(formatHop(hop(i), false, style));
  }
  for (const note of notes) lines.push(style.faint(`note: ${[note.rule, ...(note.notes ?? [])].filter((t) => t !== '').join('; ')}`));

  lines.push(...summaryLines(result, branches, style));
  if (result.kubeProxyTest) {
    lines.push(`kube-proxy test output: ${JSON.stringify(result.kubeProxyTest.output)}, masq: ${result.kubeProxyTest.masq}`);
  }
  if (result.sample) lines.push(...sampleLines(result, branches, style));
  return lines;
}

function headerOf(result: TraceResult, packet: Packet | undefined): string {
  const origin = result.origin === undefined ? '' : result.origin === 'OUTPUT' ? 'from the node (nat OUTPUT)' : 'arriving at the node (nat PREROUTING)';
  if (!packet) return origin;
  const flow = `${packet.proto} ${packet.src} -> ${joinHostPort(packet.dst, packet.dport)}`;
  return origin === '' ? flow : `${flow}, ${origin}`;
}

/**
 * A branch's own hops (after those every path shares, and those it shares with the branches
 * before it: a path resumed at an inner fork) in two parts: the head, in the hook where it
 * parted from the others (the pick and the DNAT), and the tail, the later hooks.
 */
function splitBranch(hops: readonly Hop[], branch: TraceBranch, shared: number): { head: number[]; tail: number[] } {
  const from = Math.max(shared, branch.resumedAt);
  const own = branch.hops.slice(from);
  let hook: Hop | undefined;
  for (const i of branch.hops.slice(0, from + 1)) if ((hops[i]!.depth ?? 0) === 0) hook = hops[i];
  const split = own.findIndex((i) => {
    const h = hops[i]!;
    return (h.depth ?? 0) === 0 && (hook === undefined || h.table !== hook.table || h.chain !== hook.chain);
  });
  return split < 0 ? { head: own, tail: [] } : { head: own.slice(0, split), tail: own.slice(split) };
}

/** What makes two hops the same rule, whatever the chance of reaching them. */
function hopKey(hop: Hop): string {
  return JSON.stringify([hop.table, hop.chain, hop.rule, hop.target, hop.depth ?? 0, hop.assumed ?? false, hop.notes ?? []]);
}

function outcomeText(branch: TraceBranch, style: TextStyle): string {
  const verdict = style.verdict(branch.verdict);
  const masq = branch.masquerade ? `, ${style.notice('masqueraded')}` : '';
  if (branch.verdict === 'DNAT') return `${verdict}${branch.endpoint === undefined ? '' : ` to ${branch.endpoint}`}${masq}`;
  if ((branch.verdict === 'REJECT' || branch.verdict === 'DROP') && branch.endpoint !== undefined) return `${verdict} (after DNAT to ${branch.endpoint})`;
  if (branch.verdict === 'NONE') return `${verdict} (no rule decided)${masq}`;
  return `${verdict}${masq}`;
}

/** The verdict, masquerading, and a table of outcomes: each endpoint, then each other ending. */
function summaryLines(result: TraceResult, branches: readonly TraceBranch[], style: TextStyle): string[] {
  const lines = [`${style.strong('verdict:')} ${style.verdict(result.verdict)}`];
  if (result.outcomes) {
    const parts = Object.entries(result.outcomes).map(([verdict, p]) => `${style.verdict(verdict)} ${formatProbability(p ?? 0)}`);
    lines.push(`${style.strong('outcomes:')} ${parts.join(', ')}`);
  }
  lines.push(`${style.strong('masquerade:')} ${result.masquerade ? style.notice('yes') : 'no'}`);
  const numbered = branches.length > 1;
  const branchesWhere = (pred: (b: TraceBranch) => boolean): string => branches.flatMap((b, k) => (pred(b) ? [String(k + 1)] : [])).join(',');
  const rows: Row[] = result.endpoints.map((e) => ({
    outcome: 'DNAT',
    endpoint: e,
    probability: result.probabilities[e] === undefined ? '' : formatProbability(result.probabilities[e]),
    masquerade: result.masqueradeByEndpoint[e] ? 'yes' : 'no',
    branch: branchesWhere((b) => b.verdict === 'DNAT' && b.endpoint === e),
  }));
  const others: [string, number | undefined][] = result.outcomes
    ? Object.entries(result.outcomes).filter(([verdict]) => verdict !== 'DNAT')
    : rows.length === 0 ? [[result.verdict, 1]] : [];
  for (const [verdict, p] of others) {
    const ending = branches.filter((b) => b.verdict === verdict);
    const dropped = verdict === 'DROP' || verdict === 'REJECT';
    rows.push({
      outcome: verdict,
      endpoint: '-',
      probability: p === undefined ? '' : formatProbability(p),
      masquerade: dropped ? '-' : (ending.some((b) => b.masquerade) || (ending.length === 0 && result.masquerade)) ? 'yes' : 'no',
      branch: branchesWhere((b) => b.verdict === verdict),
    });
  }
  const columns: (keyof Row)[] = numbered ? ['outcome', 'endpoint', 'probability', 'masquerade', 'branch'] : ['outcome', 'endpoint', 'probability', 'masquerade'];
  const width = (c: keyof Row): number => Math.max(c.length, ...rows.map((r) => r[c].length));
  const cells = (values: readonly string[], paint: (text: string, c: keyof Row) => string): string =>
    `  ${columns.map((c, n) => paint(values[n]!, c) + (n === columns.length - 1 ? '' : ' '.repeat(width(c) - values[n]!.length + 2))).join('')}`;
  lines.push(style.faint(cells(columns, (t) => t).trimEnd()));
  for (const row of rows) {
    lines.push(cells(columns.map((c) => row[c]), (t, c) => (c === 'outcome' ? style.verdict(t) : c === 'masquerade' && t === 'yes' ? style.notice(t) : t)).trimEnd());
  }
  return lines;
}

interface Row {
  outcome: Verdict | string;
  endpoint: string;
  probability: string;
  masquerade: string;
  branch: string;
}

/** The seeded walk: the branch it took when it is one of them, else its hops. */
function sampleLines(result: TraceResult, branches: readonly TraceBranch[], style: TextStyle): string[] {
  const s = result.sample!;
  const text = `${style.strong('sample:')} ${style.verdict(s.verdict)}${s.endpoint ? ` ${s.endpoint}` : ''}${s.masquerade ? `, ${style.notice('masquerade')}` : ''}`;
  const walked = s.hops.map(ruleKey).join('\n');
  const k = branches.findIndex((b) => b.hops.map((i) => ruleKey(result.hops[i]!)).join('\n') === walked);
  if (k >= 0 && branches.length > 1) return [`${text} (branch ${k + 1})`];
  if (k >= 0) return [text];
  return [text, ...s.hops.map((h) => `  ${formatHop(h, false, style)}`)];
}

function ruleKey(hop: Hop): string {
  return JSON.stringify([hop.table, hop.chain, hop.rule, hop.depth ?? 0]);
}
