/**
 * ChainsByName (chains-by-name.ts): a table's chains looked up by name from its declaration list
 * answer as the table's Map does (every chain, the same rules; names that are no chain), and
 * leave the Map unmade; once it is made (by another reader), lookups go to it. And a tracer of a
 * ruleset whose Maps are not made traces as one whose Maps are.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { pendingChainsOf } from '../../src/iptables/declared-chains.js';
import type { Ruleset, TableName } from '../../src/iptables/types.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { ChainsByName } from '../../src/trace/chains-by-name.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Packet } from '../../src/trace/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { generateClusterManifests } from '../helpers/cluster-builders.js';

function compiled(): { state: ReturnType<typeof buildProxierState>; rules: () => Ruleset } {
  const manifests = generateClusterManifests({ seed: 4242, services: 40, endpointsPerService: 3, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  return { state, rules: () => compileIptablesRules(state) };
}

const { state, rules } = compiled();
const TABLES: readonly TableName[] = ['filter', 'nat'];

for (const name of TABLES) {
  test(`ChainsByName: every chain of the ${name} table found in its declaration list as in its Map, the Map left unmade`, () => {
    const mapped = rules().tables.get(name)!;
    const want = mapped.chains; // read: made
    const fresh = rules().tables.get(name)!;
    assert.ok(pendingChainsOf(fresh) !== undefined, 'a fresh compile keeps its chains as a list');
    const byName = new ChainsByName(fresh);
    assert.ok(want.size > (name === 'nat' ? 100 : 3), `${want.size} chains`);
    for (const [chainName, chain] of want) {
      assert.ok(byName.has(chainName), `has ${chainName}`);
      const got = byName.get(chainName);
      assert.equal(got?.name, chainName, `get ${chainName}`);
      assert.deepEqual(got!.rules.map((r) => r.args), chain.rules.map((r) => r.args), `rules of ${chainName}`);
      assert.equal(got!.policy, chain.policy, `policy of ${chainName}`);
    }
    for (const missing of ['KUBE-SEP-NOTACHAIN00000', 'ACCEPT', 'DNAT', '', 'kube-services']) {
      assert.equal(byName.has(missing), false, `has ${JSON.stringify(missing)}`);
      assert.equal(byName.get(missing), undefined, `get ${JSON.stringify(missing)}`);
    }
    for (const builtin of ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']) {
      assert.equal(byName.has(builtin), want.has(builtin), `built-in ${builtin}`);
    }
    assert.ok(pendingChainsOf(fresh) !== undefined, 'the Map is still not made');
    // Another reader makes the Map: from then on it answers.
    const made = fresh.chains;
    const first = [...made.keys()][0]!;
    assert.equal(byName.get(first), made.get(first), 'the Map\'s chain once it is made');
  });
}

test('a tracer of a ruleset whose Maps are not made traces as one whose Maps are', () => {
  const lazy = rules();
  const eager = rules();
  for (const table of eager.tables.values()) void table.chains;
  const context = { localAddresses: state.localAddresses };
  const a = createTracer(lazy, context);
  const b = createTracer(eager, context);
  const packets: Packet[] = state.servicePorts.map((sp) => ({ proto: 'tcp', src: '10.244.1.7', dst: sp.info.clusterIP, dport: sp.info.port }));
  assert.ok(packets.length >= 40, `${packets.length} packets`);
  for (const p of packets) {
    const got = a.trace(p, { seed: 3 });
    const want = b.trace(p, { seed: 3 });
    assert.deepEqual({ ...got, hops: got.hops }, { ...want, hops: want.hops }, JSON.stringify(p));
  }
  for (const table of lazy.tables.values()) assert.ok(pendingChainsOf(table) !== undefined, `${table.name}: the Map is still not made after tracing`);
});
