/**
 * iptables syncs over time (pkg/proxy/iptables/proxier.go, KEP-3453): a full sync's restore
 * input is exactly the compiled ruleset; after any history of changes, partial restores applied
 * with --noflush leave the kernel's tables exactly as a full compile of the current objects
 * (no lost, duplicated or stale chains); a partial payload holds only the changed services'
 * chains; the rule-count metrics add up as kube-proxy's do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { IptablesRulesWriter } from '../../src/iptables/incremental-sync.js';
import { IptablesKernel } from '../../src/iptables/kernel-tables.js';
import { endpointChainName, isServiceChainName, servicePortChainNames } from '../../src/iptables/names.js';
import { renderRule, renderIptablesSave } from '../../src/iptables/render.js';
import { renderRestore } from '../../src/iptables/restore.js';
import type { TableName } from '../../src/iptables/types.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { seededRng } from '../../src/util/random.js';
import { TEST_NODE_NAME, fixtureConfig, fixtureNode, goldenState, loadRulesClusters, makeService, makeSlice, ep, tcpPort } from '../helpers/cluster-builders.js';
import { chainDifferences } from '../helpers/agent.js';
import { ProxierDriver } from '../helpers/proxier-driver.js';

const clusters = await loadRulesClusters();

for (const rc of clusters) {
  for (const family of rc.families) {
    test(`${rc.name} IPv${family}: a full sync's restore input is the compiled ruleset`, () => {
      const state = goldenState(rc.cluster, family);
      const result = new IptablesRulesWriter().sync({ state, full: true, updatedServices: new Set() });
      const want = renderIptablesSave(compileIptablesRules(state));
      const got = renderRestore(result.payload);
      assert.equal(got, want);
      assert.equal(result.natRulesSkipped, 0);
      assert.equal(result.servicePortsWritten, state.servicePorts.length);
    });
  }
}

/** table → chain → rule lines, of a full compile. */
function compiledChains(state: ProxierState): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const table of compileIptablesRules(state).tables.values()) {
    for (const chain of table.chains.values()) out.set(`${table.name} ${chain.name}`, chain.rules.map((r) => renderRule(r)));
  }
  return out;
}

function kernelChains(kernel: IptablesKernel): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const table of ['filter', 'nat'] as TableName[]) {
    for (const chain of kernel.chains(table)) out.set(`${table} ${chain}`, [...kernel.rules(table, chain)!]);
  }
  return out;
}


test('after random histories, partial restores leave the tables a full compile writes', () => {
  for (const seed of [11, 12, 13, 14]) {
    const rng = seededRng(seed);
    const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
    const writer = new IptablesRulesWriter();
    const kernel = new IptablesKernel(4);
    const log: string[] = [];
    let first = true;
    for (let step = 0; step < 150; step++) {
      log.push(driver.randomChange(rng, TEST_NODE_NAME));
      if (rng() > 0.35 && step !== 149) continue;
      const update = driver.update();
      const result = writer.sync({ state: update.state, full: first, updatedServices: update.updatedServices, existingNatChains: kernel.chains('nat') });
      first = false;
      kernel.restore(result.payload);
      const want = compiledChains(update.state);
      const diff = chainDifferences(want, kernelChains(kernel));
      assert.deepEqual(diff, [], `seed ${seed} step ${step}:\n${diff.join('\n')}\nevents:\n${log.join('\n')}`);
      // The payload's own chains are those of the changed services only.
      const changedPorts = update.state.servicePorts.filter((sp) => update.updatedServices.has(`${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}`)).length;
      assert.equal(result.servicePortsWritten, changedPorts, `seed ${seed} step ${step}: service ports written`);
      // kube-proxy's sync_proxy_rules_iptables_total{table="nat"}: written + skipped (the -X lines are not rules here).
      let natTotal = 0;
      for (const [chain, rules] of want) if (chain.startsWith('nat ')) natTotal += rules.length;
      assert.equal(result.natRulesWritten + result.natRulesSkipped, natTotal, `seed ${seed} step ${step}: nat rules`);
      log.push(`-- sync (${result.deletedChains} chains deleted)`);
    }
  }
});

test('a partial sync names only the changed service\'s chains and deletes its stale endpoint chain', () => {
  const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
  const web = makeService('ns1', 'web', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; });
  const api = makeService('ns1', 'api', (s) => { s.spec.clusterIP = '172.30.0.42'; s.spec.ports = [tcpPort('p80', 80)]; });
  const slice = (name: string, ...ips: string[]) => makeSlice('ns1', name, 1, (s) => { s.ports = [{ name: 'p80', port: 8080, protocol: 'TCP' }]; s.endpoints = ips.map((ip) => ep(ip)); });
  driver.putService(web);
  driver.putService(api);
  driver.putSlice(slice('web', '10.0.1.1', '10.0.1.2'));
  driver.putSlice(slice('api', '10.0.2.1'));
  const writer = new IptablesRulesWriter();
  const kernel = new IptablesKernel(4);
  const first = driver.update();
  kernel.restore(writer.sync({ state: first.state, full: true, updatedServices: first.updatedServices, existingNatChains: kernel.chains('nat') }).payload);
  const before = kernel.chains('nat');

  driver.putSlice(slice('web', '10.0.1.1'));
  const second = driver.update();
  const result = writer.sync({ state: second.state, full: false, updatedServices: second.updatedServices, existingNatChains: kernel.chains('nat') });
  const text = renderRestore(result.payload);
  const ownChains = [...result.payload.tables[1]!.chains.keys()].filter(isServiceChainName).sort();
  const webChains = [servicePortChainNames('ns1/web:p80', 'TCP').clusterPolicyChain, endpointChainName('ns1/web:p80', 'TCP', '10.0.1.1:8080')].sort();
  assert.deepEqual(ownChains, webChains, 'the payload holds web\'s chains and no others');
  assert.ok(before.has(endpointChainName('ns1/web:p80', 'TCP', '10.0.1.2:8080')), 'the removed endpoint had a chain');
  assert.match(text, /-A KUBE-SERVICES .*ns1\/api:p80 cluster IP/, 'the top-level chains list every service');
  assert.doesNotMatch(text, /-A KUBE-SVC-\S+ .*ns1\/api:p80/, 'api\'s own chains are left alone');
  assert.equal(result.deletedChains, 1, `one stale KUBE-SEP chain:\n${text}`);
  assert.match(text, /^-X KUBE-SEP-/m);
  assert.deepEqual(result.payload.tables[1]!.deleted, [endpointChainName('ns1/web:p80', 'TCP', '10.0.1.2:8080')]);
  kernel.restore(result.payload);
  assert.deepEqual(chainDifferences(compiledChains(second.state), kernelChains(kernel)), []);
});

test('the kernel model refuses a restore the kernel would refuse, and changes nothing', () => {
  const kernel = new IptablesKernel(4);
  kernel.restore({ tables: [{ name: 'nat', chains: new Map([['KUBE-SERVICES', [['-A KUBE-SERVICES -j KUBE-SVC-A']]], ['KUBE-SVC-A', []]]), deleted: [] }] });
  const cases = [
    { name: 'a jump to a chain that does not exist', payload: { tables: [{ name: 'nat' as const, chains: new Map([['KUBE-NODEPORTS', [['-A KUBE-NODEPORTS -j KUBE-EXT-X']]]]), deleted: [] }] }, error: /Couldn't load target `KUBE-EXT-X'/ },
    { name: 'deleting a chain a rule still jumps to', payload: { tables: [{ name: 'nat' as const, chains: new Map(), deleted: ['KUBE-SVC-A'] }] }, error: /-X KUBE-SVC-A: Device or resource busy/ },
  ];
  const saved = kernel.save();
  for (const c of cases) {
    assert.throws(() => kernel.restore(c.payload), c.error, c.name);
    assert.equal(kernel.save(), saved, `${c.name}: nothing applied`);
  }
});
