/**
 * A rule sink that copies each rule's arguments as text (copiesArgs) is handed one array per
 * rule shape, filled anew for each endpoint; a Ruleset keeps every rule's arguments, so it must
 * get an array of its own for each rule. Checked on generated clusters with session affinity
 * (-m recent --name in the KUBE-SEP chains), below and above the large-cluster threshold: the
 * text sinks write exactly what the Ruleset renders, and no two rules of a Ruleset share their
 * arguments.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { IptablesSharedWork, compileIptablesRules, compileIptablesSave } from '../../src/iptables/compile.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import { type RuleSink, RulesetSink } from '../../src/iptables/rule-sink.js';
import { createRuleset } from '../../src/iptables/ruleset-builder.js';
import { TextFragmentArena } from '../../src/iptables/shared-text.js';
import { IptablesTextSink } from '../../src/iptables/text-sink.js';
import type { Cluster } from '../../src/model/types.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { firstDifference } from '../helpers/first-difference.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

const CLUSTERS: readonly { name: string; cluster: Cluster; large: boolean }[] = [
  { name: 'under 1000 endpoints', cluster: generatedCluster({ nodes: 8, pods: 400, services: 120, seed: 31 }), large: false },
  { name: 'over 1000 endpoints (large-cluster mode)', cluster: generatedCluster({ nodes: 16, pods: 1600, services: 150, seed: 32 }), large: true },
];

function statesOf(cluster: Cluster): { node: string; state: ProxierState }[] {
  const view = new ClusterView(cluster);
  return cluster.nodes.slice(0, 3).flatMap((n) => view.statesOf(view.resolve(n.name)).map((state) => ({ node: n.name, state })));
}

test('the text sinks copy the arguments; the Ruleset sink keeps them', () => {
  const sinks: readonly { name: string; sink: RuleSink<unknown>; want: boolean }[] = [
    { name: 'IptablesTextSink', sink: new IptablesTextSink(['filter', 'nat']) as RuleSink<unknown>, want: true },
    { name: 'TextFragmentArena', sink: new TextFragmentArena() as RuleSink<unknown>, want: true },
    { name: 'RulesetSink', sink: new RulesetSink(createRuleset(4, ['filter', 'nat'])) as RuleSink<unknown>, want: false },
  ];
  for (const s of sinks) assert.equal(s.sink.copiesArgs === true, s.want, `${s.name}: copiesArgs ${String(s.sink.copiesArgs)}`);
});

for (const c of CLUSTERS) {
  test(`${c.name}: the cluster has session affinity and ports of several endpoints`, () => {
    const states = statesOf(c.cluster);
    const counts = states.map(({ state }) => state.endpointCount);
    assert.equal(Math.max(...counts) > 1000, c.large, `endpoint counts ${counts.join(', ')}`);
    const ports = states.flatMap(({ state }) => state.servicePorts);
    assert.ok(ports.some((sp) => sp.info.sessionAffinityTimeoutSeconds > 0 && sp.endpoints.length > 2), 'no port with session affinity and 3+ endpoints');
  });

  test(`${c.name}: no two rules of a Ruleset share their arguments, and the text sinks write what it renders`, () => {
    const shared = new IptablesSharedWork();
    for (const { node, state } of statesOf(c.cluster)) {
      const ruleset = compileIptablesRules(state);
      const seen = new Set<readonly string[]>();
      let rules = 0;
      for (const table of ruleset.tables.values()) {
        for (const chain of table.chains.values()) {
          for (const rule of chain.rules) {
            rules++;
            if (seen.has(rule.args)) assert.fail(`node ${node} IPv${state.family}: ${chain.name} rule ${rule.args.join(' ')} shares its arguments with another rule`);
            seen.add(rule.args);
          }
        }
      }
      assert.ok(rules > 0, `node ${node}: no rules`);
      const want = renderIptablesSave(ruleset);
      for (const [what, text] of [['alone', compileIptablesSave(state)], ['shared', compileIptablesSave(state, { shared })]] as const) {
        if (text !== want) assert.fail(`node ${node} IPv${state.family}, text sink (${what}):\n${firstDifference(text, want, ['text sink', 'Ruleset'])}`);
      }
    }
  });
}
