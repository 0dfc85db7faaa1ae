/**
 * `kpsim nodes` counts each node without compiling it whole: against baseline nodes counted
 * before (a few, one per zone in practice), by the service ports where the node's view differs.
 * Every number of its summary must be what a full compile of that node alone gives: checked for
 * every node of generated clusters (Local policies with local endpoints, topology hints over
 * three zones, dual-stack, a DaemonSet with an endpoint on every node), in every mode, on a
 * fresh view that only ever counts (the baselines then come from counting alone), in input
 * order and in reverse (other nodes become the baselines).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { HealthChecks } from '../../src/cluster/health-check.js';
import { summarizeNode } from '../../src/cluster/node-summary.js';
import type { Cluster } from '../../src/model/types.js';
import { compileNode } from '../../src/node/compile-node.js';
import { RULES_MODES, modeDriver } from '../../src/node/modes.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

/** What the summary says of a node, worked out from the node's own full compile and states. */
function fromFullCompile(cluster: Cluster, name: string): Record<string, unknown> {
  const states = buildProxierStates(cluster, resolveNode(cluster, { node: name }));
  const modes: Record<string, unknown> = {};
  for (const mode of RULES_MODES) modes[mode] = modeDriver(mode).size!(compileNode(cluster, mode, { node: name }));
  const local = new Set<string>();
  const external = new Set<string>();
  const internal = new Set<string>();
  for (const state of states) {
    for (const sp of state.servicePorts) {
      for (const ep of sp.endpoints) if (ep.isLocal) local.add(ep.ip);
      const { hasAnyEndpoints, localEndpoints } = sp.categorized;
      if (!hasAnyEndpoints || (localEndpoints?.length ?? 0) > 0) continue;
      const service = `${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}`;
      if (sp.info.externalPolicyLocal && sp.info.externallyAccessible) external.add(service);
      if (sp.info.internalPolicyLocal) internal.add(service);
    }
  }
  return {
    modes,
    localEndpoints: local.size,
    withoutLocalEndpoints: { externalTrafficPolicyLocal: external.size, internalTrafficPolicyLocal: internal.size },
  };
}

const clusters = [
  { name: 'generate --nodes 20 --pods 600 --services 150', cluster: generatedCluster({ nodes: 20, pods: 600, services: 150, seed: 12 }) },
  { name: 'generate --nodes 20 --pods 2000 --services 600', cluster: generatedCluster({ nodes: 20, pods: 2000, services: 600, seed: 3 }) },
];

test('the generated clusters have what counting must get right: several zones, Local policies, a DaemonSet on every node', () => {
  for (const { name, cluster } of clusters) {
    const zones = new Set(cluster.nodes.map((n) => n.labels['topology.kubernetes.io/zone']));
    assert.ok(zones.size >= 3, `${name}: zones ${[...zones].join(', ')}`);
    assert.ok(cluster.services.some((s) => s.externalTrafficPolicy === 'Local'), `${name}: an eTP Local service`);
    assert.ok(cluster.services.some((s) => s.trafficDistribution === 'PreferClose'), `${name}: a PreferClose service`);
    const perNode = new Map<string, number>();
    for (const slice of cluster.endpointSlices) for (const ep of slice.endpoints) if (ep.nodeName !== undefined) perNode.set(ep.nodeName, (perNode.get(ep.nodeName) ?? 0) + 1);
    assert.equal(perNode.size, cluster.nodes.length, `${name}: every node has endpoints`);
  }
});

for (const { name, cluster } of clusters) {
  for (const order of ['input order', 'reverse order'] as const) {
    test(`kpsim nodes' summary of every node equals the node's full compile: ${name}, ${order}`, () => {
      const view = new ClusterView(cluster);
      const healthChecks = new HealthChecks(cluster);
      const names = cluster.nodes.map((n) => n.name);
      if (order === 'reverse order') names.reverse();
      for (const node of names) {
        const summary = summarizeNode(view, node, healthChecks, { modes: RULES_MODES, compile: {} });
        const got = { modes: summary.modes, localEndpoints: summary.localEndpoints, withoutLocalEndpoints: summary.withoutLocalEndpoints };
        assert.deepStrictEqual(got, fromFullCompile(cluster, node), `${name}, ${order}: node ${node}: the summary differs from a full compile of the node alone`);
      }
    });
  }
}
