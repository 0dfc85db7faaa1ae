/**
 * Structural checks on every golden ruleset, beside the exact golden comparison: the checks
 * kube-proxy's checkIPTablesRuleJumps makes on its own output (every jump goes to a declared
 * chain that has rules, every declared chain is used), plus iptables' own limits and the
 * arithmetic of the --probability ladder. The goldens are read back with the iptables-save
 * parser, so these also show that the parser takes kube-proxy-shaped text.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import type { Ruleset, Table } from '../../src/iptables/types.js';
import { BUILTIN_CHAINS } from '../../src/iptables/types.js';
import { goldenFile, loadRulesClusters } from '../helpers/cluster-builders.js';

/** Targets that are not chains (kube-proxy's list in checkIPTablesRuleJumps). */
const BUILTIN_TARGETS = new Set(['ACCEPT', 'REJECT', 'DROP', 'MARK', 'RETURN', 'DNAT', 'SNAT', 'MASQUERADE']);
/** Chains kube-proxy declares that are entered from the built-in chains, not from its own rules. */
const ENTRY_CHAINS = new Set(['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-FORWARD', 'KUBE-MARK-MASQ', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL']);
const MAX_CHAIN_NAME = 28;

function jumpTarget(args: readonly string[]): string | undefined {
  const i = args.indexOf('-j');
  return i >= 0 ? args[i + 1] : undefined;
}

function optionValue(args: readonly string[], option: string): string | undefined {
  const i = args.indexOf(option);
  return i >= 0 ? args[i + 1] : undefined;
}

/** `:NAME` declarations per table, counted from the text (a Map would hide a repeat). */
function declarationCounts(text: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1);
      out.set(table, new Map());
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      const counts = out.get(table)!;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
  }
  return out;
}

function checkJumps(table: Table): string[] {
  const problems: string[] = [];
  const jumped = new Set<string>();
  for (const chain of table.chains.values()) {
    for (const rule of chain.rules) {
      const target = jumpTarget(rule.args);
      if (target === undefined || BUILTIN_TARGETS.has(target)) continue;
      jumped.add(target);
      const to = table.chains.get(target);
      if (!to) problems.push(`${table.name}: ${chain.name} jumps to ${target}, which is not declared`);
      // An empty chain behind a jump is a bug, except KUBE-NODEPORTS (jumped to even with no node ports).
      else if (to.rules.length === 0 && target !== 'KUBE-NODEPORTS') problems.push(`${table.name}: ${chain.name} jumps to ${target}, which has no rules`);
    }
  }
  const builtin = BUILTIN_CHAINS[table.name];
  for (const name of table.chains.keys()) {
    if (!builtin.includes(name) && !jumped.has(name) && !ENTRY_CHAINS.has(name)) problems.push(`${table.name}: ${name} is declared but nothing jumps to it`);
    if (name.length > MAX_CHAIN_NAME) problems.push(`${table.name}: chain name ${name} is longer than ${MAX_CHAIN_NAME} characters`);
  }
  return problems;
}

/**
 * In each KUBE-SVC/KUBE-SVL chain the endpoint rules (jumps to KUBE-SEP without --rcheck) form
 * a ladder: of n rules, rule i matches with probability 1/(n-i), the last one always.
 */
function checkProbabilities(ruleset: Ruleset): string[] {
  const problems: string[] = [];
  for (const table of ruleset.tables.values()) {
    for (const chain of table.chains.values()) {
      const ladder = chain.rules.filter((r) => jumpTarget(r.args)?.startsWith('KUBE-SEP-') && !r.args.includes('--rcheck'));
      const withProbability = chain.rules.filter((r) => r.args.includes('--probability'));
      if (withProbability.some((r) => !ladder.includes(r))) problems.push(`${chain.name}: a --probability rule that is not an endpoint jump`);
      ladder.forEach((rule, i) => {
        const remaining = ladder.length - i;
        const text = optionValue(rule.args, '--probability');
        if (remaining === 1) {
          if (text !== undefined) problems.push(`${chain.name}: the last endpoint rule has --probability ${text}`);
          return;
        }
        if (text === undefined || !/^\d\.\d{10}$/.test(text)) {
          problems.push(`${chain.name}: endpoint rule ${i + 1} of ${ladder.length} has --probability ${text ?? '(none)'}`);
        } else if (Math.abs(Number(text) - 1 / remaining) > 0.6e-10) {
          problems.push(`${chain.name}: endpoint rule ${i + 1} of ${ladder.length} has --probability ${text}, not 1/${remaining}`);
        }
      });
    }
  }
  return problems;
}

const clusters = await loadRulesClusters();
const goldens = clusters.flatMap((rc) => rc.families.map((family) => ({ name: `${rc.name} IPv${family}`, family, text: readFileSync(goldenFile(rc.dir, family), 'utf8') })));

test('there are goldens to check', () => {
  assert.ok(goldens.length >= 15);
});

for (const g of goldens) {
  test(`${g.name}: structure`, () => {
    const ruleset = parseIptablesSave(g.text, { family: g.family });
    assert.deepEqual([...ruleset.tables.keys()], ['filter', 'nat'], 'kube-proxy writes filter, then nat');

    const repeated = [...declarationCounts(g.text)].flatMap(([table, counts]) => [...counts].filter(([, n]) => n > 1).map(([name, n]) => `${table}: ${name} declared ${n} times`));
    assert.deepEqual(repeated, []);

    for (const table of ruleset.tables.values()) assert.deepEqual(checkJumps(table), [], `${g.name} ${table.name}`);
    assert.deepEqual(checkProbabilities(ruleset), []);

    // The NodePort dispatcher must be the last rule of nat KUBE-SERVICES.
    const natServices = ruleset.tables.get('nat')!.chains.get('KUBE-SERVICES')!;
    const last = natServices.rules.at(-1);
    assert.equal(last && jumpTarget(last.args), 'KUBE-NODEPORTS', 'nat KUBE-SERVICES ends with the jump to KUBE-NODEPORTS');
    const dispatchers = natServices.rules.filter((r) => jumpTarget(r.args) === 'KUBE-NODEPORTS');
    assert.ok(natServices.rules.slice(-dispatchers.length).every((r) => jumpTarget(r.args) === 'KUBE-NODEPORTS'), 'every KUBE-NODEPORTS jump comes after the service rules');
  });
}
