/**
 * The Ruleset compileIptablesRules reads from its text (text-ruleset.ts) is the Ruleset written
 * as rule objects (compileIptablesRuleObjects): the same tables, chains in the same order, the
 * same rules token for token, for every rules/ cluster under every compile option and for a
 * generated large-cluster-mode one; tokens that need quotes (spaces, quotes, backslashes, a
 * newline, empty) read back as written; and once a reader changes it (rules pushed, chains
 * declared, built-in jumps added), it renders as the object Ruleset changed alike.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type IptablesCompileOptions, compileIptablesRuleObjects, compileIptablesRules } from '../../src/iptables/compile.js';
import { countRules, renderIptablesSave, renderTable } from '../../src/iptables/render.js';
import { type RuleSink, RulesetSink } from '../../src/iptables/rule-sink.js';
import { appendRule, chainOf, createRuleset, declareChain, tableOf } from '../../src/iptables/ruleset-builder.js';
import { textBackedRuleset } from '../../src/iptables/text-ruleset.js';
import { IptablesTextSink } from '../../src/iptables/text-sink.js';
import type { Ruleset, TableName } from '../../src/iptables/types.js';
import { addBuiltinJumps } from '../../src/iptables/with-jumps.js';
import { kubeProxyJumpsInChainOrder } from '../../src/trace/default-jumps.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { clusterOf, generateClusterManifests, goldenState, loadRulesClusters } from '../helpers/cluster-builders.js';

/** Every table, chain and rule as plain data, in order: what two rulesets must agree on. */
function plain(ruleset: Ruleset): unknown {
  return {
    family: ruleset.family,
    tables: [...ruleset.tables.values()].map((table) => ({
      name: table.name,
      chains: [...table.chains.entries()].map(([key, chain]) => ({ key, name: chain.name, policy: chain.policy, rules: chain.rules.map((r) => ({ chain: r.chain, args: [...r.args] })) })),
    })),
  };
}

function renderByLines(ruleset: Ruleset): string {
  return [...ruleset.tables.values()].map((table) => renderTable(table)).join('');
}

function assertSame(state: ProxierState, options: IptablesCompileOptions, what: string): void {
  const objects = compileIptablesRuleObjects(state, options);
  const read = compileIptablesRules(state, options);
  const want = renderIptablesSave(objects);
  assert.equal(renderIptablesSave(read), want, `${what}: the text-backed ruleset renders differently before it is read`);
  assert.equal(countRules(read), countRules(objects), `${what}: rule count before it is read`);
  assert.deepEqual(plain(read), plain(objects), `${what}: the rules read from the text differ from the rule objects`);
  assert.equal(countRules(read), countRules(objects), `${what}: rule count after it is read`);
  assert.equal(renderIptablesSave(read), want, `${what}: the text-backed ruleset renders differently after it is read`);
}

const clusters = await loadRulesClusters();
const OPTION_VARIANTS: readonly IptablesCompileOptions[] = [{}, { nfacct: false }, { randomFully: true }];

for (const rc of clusters) {
  for (const family of rc.families) {
    test(`${rc.name} IPv${family}: the ruleset read from the text is the ruleset of rule objects under every option`, () => {
      const state = goldenState(rc.cluster, family);
      for (const options of OPTION_VARIANTS) assertSame(state, options, `${rc.name} IPv${family} ${JSON.stringify(options)}`);
    });
  }
}

const generated = (() => {
  const cluster = clusterOf(generateClusterManifests({ seed: 11, services: 300, endpointsPerService: 5, nodes: 4 }));
  return buildProxierState(cluster, resolveNode(cluster), 4);
})();

test('a generated cluster of 300 services (large-cluster mode): the ruleset read from the text is the ruleset of rule objects', () => {
  assertSame(generated, {}, 'generated 300 services');
});

/** Read into a ruleset and change it, the same way for both kinds. */
const CHANGES: readonly { readonly name: string; readonly change: (r: Ruleset) => Ruleset }[] = [
  {
    name: 'a rule pushed onto KUBE-SERVICES in nat (filter never read)',
    change: (r) => {
      appendRule(chainOf(tableOf(r, 'nat'), 'KUBE-SERVICES'), ['-m', 'comment', '--comment', 'added by a reader', '-j', 'RETURN']);
      return r;
    },
  },
  {
    name: 'a chain declared in filter with a rule, and one chain of nat emptied',
    change: (r) => {
      appendRule(declareChain(tableOf(r, 'filter'), 'KPSIM-TEST'), ['-j', 'ACCEPT']);
      chainOf(tableOf(r, 'nat'), 'KUBE-POSTROUTING').rules.length = 0;
      return r;
    },
  },
  {
    name: 'only the Map of nat read (no rules), then a chain deleted from it',
    change: (r) => {
      const nat = tableOf(r, 'nat');
      const sep = [...nat.chains.keys()].find((name) => name.startsWith('KUBE-SEP-'));
      assert.ok(sep, 'the generated cluster has a KUBE-SEP chain');
      nat.chains.delete(sep);
      return r;
    },
  },
  { name: "kube-proxy's jumps added from the built-in chains", change: (r) => addBuiltinJumps(r, kubeProxyJumpsInChainOrder(r.family)) },
  {
    name: 'the filter table dropped',
    change: (r) => {
      r.tables.delete('filter');
      return r;
    },
  },
];

test('a text-backed ruleset changed by a reader renders as the ruleset of rule objects changed alike', async (t) => {
  for (const { name, change } of CHANGES) {
    await t.test(name, () => {
      const objects = change(compileIptablesRuleObjects(generated));
      const read = change(compileIptablesRules(generated));
      const want = renderByLines(objects);
      assert.equal(renderIptablesSave(objects), want, `${name}: the object ruleset's two renderers disagree`);
      assert.equal(renderIptablesSave(read), want, `${name}: the text-backed ruleset renders differently`);
      assert.equal(countRules(read), countRules(objects), `${name}: rule count`);
    });
  }
});

type Step = { declare: string; table: TableName } | { rule: string; args: readonly string[] };

/** Chains written out of declaration order, with tokens iptables-save must quote. */
const AWKWARD: readonly Step[] = [
  { declare: 'A', table: 'filter' },
  { declare: 'B', table: 'nat' },
  { rule: 'B', args: ['-m', 'comment', '--comment', 'with "quotes" and \\ backslash', '-j', 'b'] },
  { rule: 'A', args: ['-m', 'comment', '--comment', '', '-j', 'a'] },
  { declare: 'C', table: 'nat' },
  { rule: 'C', args: ['-m', 'comment', '--comment', 'a\nnewline', '-j', 'c'] },
  { rule: 'C', args: ['-m', 'comment', '--comment', 'tab\there', '-s', '10.0.0.0/8', '-j', 'c2'] },
  { rule: 'B', args: ['-m', 'comment', '--comment', "it's", '-j', 'b2'] },
  { rule: 'C', args: [] },
  { declare: 'D', table: 'nat' },
];

function play<C>(sink: RuleSink<C>, steps: readonly Step[]): void {
  const chains = new Map<string, C>();
  for (const step of steps) {
    if ('declare' in step) chains.set(step.declare, sink.declareChain(step.table, step.declare));
    else sink.appendRule(chains.get(step.rule)!, step.args);
  }
}

test('tokens that need quotes (and a rule without arguments) read back from the text as written', () => {
  const objects = createRuleset(4, ['filter', 'nat']);
  play(new RulesetSink(objects), AWKWARD);
  const sink = new IptablesTextSink(['filter', 'nat'], 16, true);
  play(sink, AWKWARD);
  const layout = sink.finishLayout();
  assert.ok(layout.ascii, 'the steps write ASCII only');
  const read = textBackedRuleset(4, layout);
  assert.equal(renderIptablesSave(read), renderByLines(objects), 'the text-backed ruleset renders differently');
  assert.deepEqual(plain(read), plain(objects), 'the rules read back differ from the rules written');
});

test('text that is not ASCII is not read back by offsets', () => {
  const sink = new IptablesTextSink(['nat'], 16, true);
  play(sink, [{ declare: 'A', table: 'nat' }, { rule: 'A', args: ['-m', 'comment', '--comment', 'café', '-j', 'a'] }]);
  const layout = sink.finishLayout();
  assert.equal(layout.ascii, false, 'a comment with é is not ASCII');
  assert.throws(() => textBackedRuleset(4, layout), /ASCII/);
});
