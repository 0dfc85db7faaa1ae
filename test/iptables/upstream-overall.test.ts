/**
 * kpsim's compiler against kube-proxy's own expected text: the services of upstream's
 * TestOverallIPTablesRules (rules/kube-proxy-fixture) compiled for IPv4, compared with the
 * `expected` string of that test kept verbatim in test/fixtures/kube-proxy-TestOverallIPTablesRules.txt.
 *
 * Upstream does not compare bytes in kube-proxy's buffer order: assertIPTablesRulesEqual
 * (proxier_test.go) runs the generated rules through sortIPTablesRules and compares the result
 * with `expected` as text. upstreamSort below is that function, step for step, and nothing else is
 * normalised: the same comparison upstream's test makes, so a change in any rule, any rule's
 * position inside its chain, or any chain fails here.
 *
 * Differences that remain after that sort are allowed only when listed in ALLOWED_DIFFERENCES with
 * the reason. There are none: kube-proxy's fake proxier hard-codes the mark as "0x4000", the form
 * kpsim writes (a live kube-proxy writes fmt.Sprintf("%#08x", 1<<14) = "0x00004000"; README
 * "Differences from a live node"), and every other line is the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compile, loadCluster, renderRules } from '../../src/index.js';
import { repoRoot } from '../helpers/cluster-builders.js';

const FIXTURE = join(repoRoot(), 'test', 'fixtures', 'kube-proxy-TestOverallIPTablesRules.txt');
const CLUSTER = join(repoRoot(), 'rules', 'kube-proxy-fixture');

/** A line of upstream's text that kpsim writes otherwise, and why that is right. */
interface Allowance {
  readonly upstream: string;
  readonly kpsim: string;
  readonly reason: string;
}

const ALLOWED_DIFFERENCES: readonly Allowance[] = [];

/** The fixture without kpsim's provenance header: exactly upstream's `expected` string. */
function upstreamExpected(): string {
  const lines = readFileSync(FIXTURE, 'utf8').split('\n');
  let first = 0;
  while (first < lines.length && lines[first]!.startsWith('#')) first++;
  return lines.slice(first).join('\n');
}

// ---------------------------------------------------------------------------------------------
// upstream's sortIPTablesRules (pkg/proxy/iptables/proxier_test.go) over its ParseIPTablesDump
// and IPTablesDump.String (pkg/util/iptables/testing/parse.go).

interface DumpChain { name: string; packets: string; bytes: string; rules: string[] }
interface DumpTable { name: string; chains: DumpChain[] }

const DECLARE_TABLE = /^\*(.*)$/;
const DECLARE_CHAIN = /^:([^ ]*) - \[([0-9]*):([0-9]*)\]$/;
const ADD_RULE = /^-A ([^ ]*) (.*)$/;

/** ParseIPTablesDump: trimmed lines, `#` and blank lines skipped, rules kept raw under their chain. */
function parseDump(data: string): DumpTable[] {
  const tables: DumpTable[] = [];
  let state: 'table' | 'chains' | 'rules' = 'table';
  for (const raw of data.replace(/^\n+|\n+$/g, '').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (state === 'table') {
      const m = DECLARE_TABLE.exec(line);
      if (!m) throw new Error(`table ${tables.length + 1} starts with ${JSON.stringify(line)}, not a table name`);
      tables.push({ name: m[1]!, chains: [] });
      state = 'chains';
      continue;
    }
    const table = tables[tables.length - 1]!;
    if (state === 'chains') {
      const m = DECLARE_CHAIN.exec(line);
      if (m) {
        table.chains.push({ name: m[1]!, packets: String(Number(m[2]!)), bytes: String(Number(m[3]!)), rules: [] });
        continue;
      }
      state = 'rules';
    }
    const rule = ADD_RULE.exec(line);
    if (rule) {
      const chain = table.chains.find((c) => c.name === rule[1]);
      if (!chain) throw new Error(`rule ${JSON.stringify(line)}: no chain ${rule[1]} in ${table.name}`);
      chain.rules.push(line);
    } else if (line === 'COMMIT') {
      state = 'table';
    } else {
      throw new Error(`cannot parse ${JSON.stringify(line)}`);
    }
  }
  if (state !== 'table') throw new Error('no COMMIT line');
  return tables;
}

function renderDump(tables: readonly DumpTable[]): string {
  let out = '';
  for (const t of tables) {
    out += `*${t.name}\n`;
    for (const c of t.chains) out += `:${c.name} - [${c.packets}:${c.bytes}]\n`;
    for (const c of t.chains) for (const r of c.rules) out += `${r}\n`;
    out += 'COMMIT\n';
  }
  return out;
}

/** ParseRule's words: a quoted string is one word, its quotes trimmed. */
function ruleComment(rule: string): string | undefined {
  const words = [...rule.matchAll(/(?:^|\s)("[^"]*"|[^"]\S*)/g)].map((m) => m[1]!.replace(/^"+|"+$/g, ''));
  const i = words.indexOf('--comment');
  return i >= 0 && i + 1 < words.length ? words[i + 1] : undefined;
}

/** orderByCommentServiceName: the comment up to its first space or colon; rules without one tie. */
function byServiceName(a: string, b: string): number {
  const ca = ruleComment(a);
  const cb = ruleComment(b);
  if (ca === undefined || cb === undefined) return 0;
  const name = (c: string): string => { const i = c.search(/[ :]/); return i === -1 ? c : c.slice(0, i); };
  const na = name(ca);
  const nb = name(cb);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
const KUBE_SERVICES = 'KUBE-SERVICES';

/** The chain order: KUBE-NODEPORTS, KUBE-SERVICES, other KUBE-* by name, then the rest by name. */
function chainOrder(a: DumpChain, b: DumpChain): number {
  const rank = (c: DumpChain): number => (c.name === KUBE_NODEPORTS ? 0 : c.name === KUBE_SERVICES ? 1 : c.name.startsWith('KUBE-') ? 2 : 3);
  return rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function upstreamSort(ruleData: string): string {
  const tables = parseDump(ruleData);
  tables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const t of tables) t.chains.sort(chainOrder);
  const chain = (table: string, name: string): DumpChain | undefined => tables.find((t) => t.name === table)?.chains.find((c) => c.name === name);
  // Array.prototype.sort is stable, as sort.SliceStable.
  for (const table of ['filter', 'nat']) chain(table, KUBE_NODEPORTS)?.rules.sort(byServiceName);
  chain('filter', KUBE_SERVICES)?.rules.sort(byServiceName);
  const lastRule = (r: string): boolean => ruleComment(r)?.includes('must be the last rule') ?? false;
  chain('nat', KUBE_SERVICES)?.rules.sort((a, b) => (lastRule(a) ? 1 : 0) - (lastRule(b) ? 1 : 0) || byServiceName(a, b));
  return renderDump(tables);
}

// ---------------------------------------------------------------------------------------------

/** Lines where `got` (sorted) differs from `want`, each either allowed or reported. */
function compareWithUpstream(want: string, got: string): { unexplained: string[]; used: Set<Allowance> } {
  const a = want.split('\n');
  const b = got.split('\n');
  const unexplained: string[] = [];
  const used = new Set<Allowance>();
  if (a.length !== b.length) unexplained.push(`upstream has ${a.length} lines, kpsim ${b.length}`);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    const allowance = ALLOWED_DIFFERENCES.find((x) => x.upstream === a[i] && x.kpsim === b[i]);
    if (allowance) used.add(allowance);
    else unexplained.push(`line ${i + 1}:\n  upstream: ${a[i] ?? '(none)'}\n  kpsim:    ${b[i] ?? '(none)'}`);
  }
  return { unexplained, used };
}

/** The rules with each service's run of rules moved as one block, blocks in reverse order. */
function reverseServiceGroups(rules: readonly string[]): string[] {
  const groups: string[][] = [];
  for (const r of rules) {
    const last = groups[groups.length - 1];
    if (last && byServiceName(last[0]!, r) === 0) last.push(r);
    else groups.push([r]);
  }
  return groups.reverse().flat();
}

const expected = upstreamExpected();
const cluster = await loadCluster(CLUSTER);
const compiled = renderRules(compile(cluster, 'iptables', { family: 4 }));

test('the fixture holds upstream\'s text in upstream\'s sorted form (the port of sortIPTablesRules leaves it as it is)', () => {
  assert.ok(expected.startsWith('*filter\n:KUBE-NODEPORTS - [0:0]\n'), `unexpected start of ${FIXTURE}:\n${expected.slice(0, 200)}`);
  assert.ok(expected.endsWith('\nCOMMIT\n'), `${FIXTURE} does not end with COMMIT and a newline`);
  assert.equal(upstreamSort(expected), expected);
});

test('the sort undoes only what upstream sorts: table, chain and service order', () => {
  // Shuffle the upstream text the ways kube-proxy's buffers may: nat before filter, chains
  // declared in any order, services' KUBE-SERVICES and KUBE-NODEPORTS rules in another order.
  const tables = parseDump(expected).reverse();
  for (const t of tables) {
    t.chains.reverse();
    for (const c of t.chains) if (c.name === KUBE_SERVICES || c.name === KUBE_NODEPORTS) c.rules = reverseServiceGroups(c.rules);
  }
  const shuffled = renderDump(tables);
  assert.notEqual(shuffled, expected);
  assert.equal(upstreamSort(shuffled), expected);
  // Inside any other chain the order is the rule order the kernel walks: it must survive.
  const svc = tables.find((t) => t.name === 'nat')!.chains.find((c) => c.name === 'KUBE-SVC-4SW47YFZTEDKD3PK')!;
  svc.rules.reverse();
  const { unexplained } = compareWithUpstream(expected, upstreamSort(renderDump(tables)));
  assert.equal(unexplained.length, 2, `reversing KUBE-SVC-4SW47YFZTEDKD3PK (3 rules) should show as its first and last lines changed:\n${unexplained.join('\n')}`);
});

test('kpsim compiles rules/kube-proxy-fixture to upstream TestOverallIPTablesRules\' expected rules', () => {
  const got = upstreamSort(compiled);
  const { unexplained, used } = compareWithUpstream(expected, got);
  assert.deepEqual(unexplained, [], `kpsim differs from ${FIXTURE} after upstream's sort:\n${unexplained.join('\n')}\n\nkpsim, sorted:\n${got}`);
  const stale = ALLOWED_DIFFERENCES.filter((x) => !used.has(x));
  assert.deepEqual(stale, [], `allowances that no longer apply (remove them): ${JSON.stringify(stale, null, 2)}`);
});

test('a changed rule is caught: the comparison is not blind', () => {
  const mutations: { name: string; from: string; to: string }[] = [
    { name: 'probability', from: '--probability 0.5000000000', to: '--probability 0.5000000001' },
    { name: 'masquerade mark form', from: '--or-mark 0x4000', to: '--or-mark 0x00004000' },
    { name: 'no-endpoints verdict', from: 'has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT', to: 'has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j DROP' },
  ];
  for (const m of mutations) {
    assert.ok(compiled.includes(m.from), `${m.name}: "${m.from}" is not in kpsim's output`);
    const { unexplained } = compareWithUpstream(expected, upstreamSort(compiled.replace(m.from, m.to)));
    assert.equal(unexplained.length, 1, `${m.name}: expected exactly one reported line, got:\n${unexplained.join('\n')}`);
  }
});
