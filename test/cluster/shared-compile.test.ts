/**
 * A node compiled through a ClusterView (the node-independent work shared with every other node
 * compiled before it) is exactly the node compiled alone: the same ProxierStates, the same text
 * in every mode and format, the same sizes. Checked for every node of a generated cluster (local
 * endpoints under Local policies, topology hints, rollouts, dual-stack) and of every example
 * cluster under rules/, each compiled in turn so that later nodes reuse what earlier ones wrote.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import type { Cluster } from '../../src/model/types.js';
import { compileNode } from '../../src/node/compile-node.js';
import type { ModeCompileOptions } from '../../src/node/mode-driver.js';
import { RULES_MODES, modeDriver } from '../../src/node/modes.js';
import { buildProxierStates } from '../../src/tracker/proxier-state.js';
import { loadRulesClusters } from '../helpers/cluster-builders.js';
import { firstDifference } from '../helpers/first-difference.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

interface Case {
  readonly name: string;
  readonly cluster: Cluster;
  readonly options: ModeCompileOptions;
}

function checkEveryNode(c: Case): void {
  const view = new ClusterView(c.cluster);
  const nodes = c.cluster.nodes.length > 0 ? c.cluster.nodes.map((n) => n.name) : [undefined];
  for (const name of nodes) {
    const node = name === undefined ? view.resolveDefault() : view.resolve(name);
    const alone = buildProxierStates(c.cluster, node);
    assert.deepStrictEqual(view.statesOf(node), alone, `${c.name}: node ${node.name}: proxier states differ from a build of this node alone`);
    for (const mode of RULES_MODES) {
      const driver = modeDriver(mode);
      const options = mode === 'iptables' ? c.options : {};
      const shared = view.compile(mode, node, options);
      const single = compileNode(c.cluster, mode, { ...options, ...(name !== undefined ? { node: name } : {}) });
      for (const format of driver.formats) {
        const got = driver.render(shared, format);
        const want = driver.render(single, format);
        if (got !== want) assert.fail(`${c.name}: node ${node.name}: ${mode} ${format} differs from compiling the node alone:\n${firstDifference(got, want, ['shared', 'alone'])}`);
      }
      if (driver.size) {
        const sharedWork = view.sharedWork(mode, options);
        const sized = driver.sizeOf?.(node, view.statesOf(node), { ...options, ...(sharedWork ? { shared: sharedWork } : {}) });
        assert.deepEqual(sized, driver.size(single), `${c.name}: node ${node.name}: ${mode} sizeOf with shared work differs from size of the node compiled alone`);
      }
    }
  }
}

test('a generated cluster has what sharing must get right: Local policies with local endpoints, topology hints, terminating endpoints, dual-stack', () => {
  const cluster = generatedCluster({ nodes: 12, pods: 600, services: 150, seed: 12 });
  const svc = cluster.services;
  assert.ok(svc.some((s) => s.externalTrafficPolicy === 'Local' && s.type === 'LoadBalancer'), 'an eTP Local load balancer');
  assert.ok(svc.some((s) => s.internalTrafficPolicy === 'Local'), 'an iTP Local service');
  assert.ok(svc.some((s) => s.trafficDistribution === 'PreferClose'), 'a PreferClose service');
  assert.ok(svc.some((s) => s.clusterIPs.length === 2), 'a dual-stack service');
  assert.ok(cluster.endpointSlices.some((s) => s.endpoints.some((e) => e.conditions.terminating === true)), 'a terminating endpoint');
});

const generated = generatedCluster({ nodes: 12, pods: 600, services: 150, seed: 12 });
const cases: Case[] = [
  { name: 'generated 12 nodes', cluster: generated, options: {} },
  { name: 'generated 12 nodes, --no-nfacct --random-fully', cluster: generated, options: { nfacct: false, randomFully: true } },
  { name: 'generated 12 nodes, --with-jumps', cluster: generated, options: { withJumps: true } },
];
for (const c of cases) test(`every node through a ClusterView equals the node compiled alone: ${c.name}`, () => checkEveryNode(c));

test('every node of every example cluster through a ClusterView equals the node compiled alone', async () => {
  for (const rules of await loadRulesClusters()) checkEveryNode({ name: `rules/${rules.name}`, cluster: rules.cluster, options: {} });
});
