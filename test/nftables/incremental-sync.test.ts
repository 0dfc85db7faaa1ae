/**
 * nftables syncs over time (pkg/proxy/nftables/proxier.go): after any history of changes, the
 * transactions applied to the kernel model leave exactly the table a full compile of the
 * current objects writes (stale service chains flushed, then deleted a second later in a
 * transaction of their own); a partial transaction holds only the changed services' chains
 * and the element changes; the operation counts are those kube-proxy's TestSyncProxyRulesRepeated
 * asserts; the kernel model refuses what nft refuses and then holds what it held before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderNftCanonical } from '../../src/nftables/canonical.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { NftablesRulesWriter, STALE_CHAIN_DELAY_MS } from '../../src/nftables/incremental-sync.js';
import { NftKernel } from '../../src/nftables/kernel-nftables.js';
import { isServiceChainName } from '../../src/nftables/names.js';
import { renderTransaction, type NftTransaction } from '../../src/nftables/transaction.js';
import type { NftRuleset } from '../../src/nftables/types.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { seededRng } from '../../src/util/random.js';
import { TEST_NODE_NAME, ep, fixtureConfig, fixtureNode, makeService, makeSlice, tcpPort } from '../helpers/cluster-builders.js';
import { nftDifference, syncOnce } from '../helpers/nft-sync.js';
import { ProxierDriver } from '../helpers/proxier-driver.js';

/** The kernel's table against a full compile of `state`; stale chains must be empty and not compiled. */
function kernelMatchesCompile(kernel: NftRuleset, state: ProxierState, stale: ReadonlySet<string>): string | undefined {
  const compiled = compileNftablesRules(state);
  for (const name of stale) {
    if (compiled.tables[0]!.chains.has(name)) return `stale chain ${name} is in the compiled table`;
    if ((kernel.tables[0]?.chains.get(name)?.rules.length ?? 0) > 0) return `stale chain ${name} still has rules`;
  }
  for (const name of kernel.tables[0]?.chains.keys() ?? []) {
    if (isServiceChainName(name) && !compiled.tables[0]!.chains.has(name) && !stale.has(name)) return `chain ${name} is neither compiled nor waiting to be deleted`;
  }
  return nftDifference(kernel, compiled);
}

test('after random histories, nftables transactions leave the table a full compile writes', () => {
  for (const seed of [21, 22, 23, 24]) {
    const rng = seededRng(seed);
    const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
    const writer = new NftablesRulesWriter();
    const kernel = new NftKernel();
    const log: string[] = [];
    let now = 1_000_000;
    let first = true;
    for (let step = 0; step < 150; step++) {
      log.push(driver.randomChange(rng, TEST_NODE_NAME));
      if (rng() > 0.35 && step !== 149) continue;
      now += Math.floor(rng() * 2 * STALE_CHAIN_DELAY_MS);
      const update = driver.update();
      // Now and then a full sync in the middle, as after a failure or a node change.
      const full: boolean = first || rng() < 0.1;
      const { tx } = syncOnce(writer, kernel, update.state, full, update.updatedServices, now);
      first = false;
      const diff = kernelMatchesCompile(kernel.ruleset(), update.state, new Set(writer.staleChains.keys()));
      assert.equal(diff, undefined, `seed ${seed} step ${step} (${full ? 'full' : 'partial'}): ${diff}\ntransaction:\n${renderTransaction(tx)}\nevents:\n${log.join('\n')}`);
      if (!full) {
        // Only the changed services' chains are written.
        const written = new Set(tx.ops.flatMap((op) => (op.kind === 'rule' ? [op.chain] : [])));
        const changed = [...written].filter((chain) => !update.state.servicePorts.some((sp) => update.updatedServices.has(`${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}`) && chain.includes(`-${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}/`)));
        assert.deepEqual(changed, [], `seed ${seed} step ${step}: chains of unchanged services written`);
      }
      log.push(`-- sync (${tx.ops.length} ops)`);
    }
  }
});

/** kube-proxy's TestSyncProxyRulesRepeated, step by step: the operations each sync sends. */
test('each partial sync sends the operations kube-proxy sends (TestSyncProxyRulesRepeated)', () => {
  const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
  const svc = (name: string, ip: string) => makeService('ns1', name, (s) => { s.spec.clusterIP = ip; s.spec.ports = [tcpPort('p80', 80)]; });
  const slice = (name: string, ...ips: string[]) => makeSlice('ns1', name, 1, (s) => { s.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; s.endpoints = ips.map((ip) => ep(ip)); });
  driver.putService(svc('svc1', '172.30.0.41'));
  driver.putSlice(slice('svc1', '10.0.1.1'));
  const writer = new NftablesRulesWriter();
  const kernel = new NftKernel();
  let now = 1_000_000;
  const first = driver.update();
  syncOnce(writer, kernel, first.state, true, first.updatedServices, now);

  // Each step comes 1.5 s after the last: chains flushed as stale by one are deleted before the next.
  const steps: { name: string; change: () => void; ops: number; cleanup?: number }[] = [
    { name: 'add a service with one endpoint', change: () => { driver.putService(svc('svc2', '172.30.0.42')); driver.putSlice(slice('svc2', '10.0.2.1')); }, ops: 10 },
    { name: 'delete it', change: () => { driver.deleteService('ns1', 'svc2'); driver.deleteSlice('ns1', 'svc2-1'); }, ops: 4 },
    { name: 'no change, a second later: the stale chains go in a transaction of their own', change: () => {}, ops: 0, cleanup: 2 },
    { name: 'add a service with no endpoints', change: () => driver.putService(svc('svc3', '172.30.0.43')), ops: 2 },
    { name: 'give it an endpoint', change: () => driver.putSlice(slice('svc3', '10.0.3.1')), ops: 10 },
    { name: 'change the endpoint\'s IP', change: () => driver.putSlice(slice('svc3', '10.0.3.2')), ops: 9 },
    { name: 'add a second endpoint', change: () => driver.putSlice(slice('svc3', '10.0.3.2', '10.0.3.3')), ops: 12, cleanup: 1 },
    { name: 'empty the endpoints', change: () => driver.putSlice(slice('svc3')), ops: 5 },
    { name: 'restore them (after the stale chains are deleted)', change: () => driver.putSlice(slice('svc3', '10.0.3.2', '10.0.3.3')), ops: 14, cleanup: 3 },
    { name: 'no change', change: () => {}, ops: 0 },
  ];
  for (const step of steps) {
    step.change();
    now += 1500;
    const update = driver.update();
    const { cleanup, tx } = syncOnce(writer, kernel, update.state, false, update.updatedServices, now);
    assert.equal(tx.ops.length, step.ops, `${step.name}:\n${renderTransaction(tx)}`);
    assert.equal(cleanup?.ops.length ?? 0, step.cleanup ?? 0, `${step.name}: cleanup\n${cleanup ? renderTransaction(cleanup) : ''}`);
    assert.equal(kernelMatchesCompile(kernel.ruleset(), update.state, new Set(writer.staleChains.keys())), undefined, step.name);
  }
});

test('a full sync on an empty kernel is setup plus every service port, and leaves the compiled table', () => {
  const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
  driver.putService(makeService('ns1', 'web', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.type = 'NodePort'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 30080 })]; s.spec.sessionAffinity = 'ClientIP'; }));
  driver.putSlice(makeSlice('ns1', 'web', 1, (s) => { s.ports = [{ name: 'p80', port: 8080, protocol: 'TCP' }]; s.endpoints = [ep('10.0.1.1', TEST_NODE_NAME), ep('10.0.1.2', 'other')]; }));
  const writer = new NftablesRulesWriter();
  const kernel = new NftKernel();
  const update = driver.update();
  const { tx } = syncOnce(writer, kernel, update.state, true, update.updatedServices, 0);
  const text = renderTransaction(tx);
  assert.match(text, /^add table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\n/, 'the table first');
  assert.match(text, /^add chain ip kube-proxy nat-prerouting\ndelete chain ip kube-proxy nat-prerouting$/m, 'base chains re-created on the first sync');
  assert.match(text, /^flush map ip kube-proxy service-ips$/m, 'element stores reset');
  assert.equal(kernelMatchesCompile(kernel.ruleset(), update.state, new Set()), undefined);
  // A second full sync does not delete the base chains again, and changes nothing.
  const before = renderNftCanonical(kernel.ruleset());
  const again = syncOnce(writer, kernel, update.state, true, new Set(), 1);
  assert.doesNotMatch(renderTransaction(again.tx), /^delete chain/m);
  assert.equal(renderNftCanonical(kernel.ruleset()), before);
});

test('the kernel model refuses what nft refuses, and changes nothing', () => {
  const kernel = new NftKernel();
  const base: NftTransaction = { family: 'ip', table: 'kube-proxy', ops: [
    { verb: 'add', kind: 'table' },
    { verb: 'add', kind: 'chain', name: 'a' },
    { verb: 'add', kind: 'chain', name: 'b' },
    { verb: 'add', kind: 'set', set: { kind: 'map', name: 'm', type: 'ipv4_addr : verdict' } },
    { verb: 'add', kind: 'rule', chain: 'a', rule: { text: 'ip daddr vmap @m' } },
    { verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'], value: ['goto b'] } },
  ] };
  kernel.apply(base);
  const cases: { name: string; ops: NftTransaction['ops']; error: RegExp }[] = [
    { name: 'a rule jumping to a missing chain', ops: [{ verb: 'add', kind: 'rule', chain: 'a', rule: { text: 'jump c' } }], error: /No such file or directory/ },
    { name: 'a rule in a missing chain', ops: [{ verb: 'add', kind: 'rule', chain: 'c', rule: { text: 'accept' } }], error: /No such file or directory/ },
    { name: 'an element going to a missing chain', ops: [{ verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.2'], value: ['goto c'] } }], error: /No such file or directory/ },
    { name: 'deleting a chain a map element goes to', ops: [{ verb: 'delete', kind: 'chain', name: 'b' }], error: /line 1: .*Device or resource busy\ndelete chain ip kube-proxy b/ },
    { name: 'deleting a set a rule uses', ops: [{ verb: 'delete', kind: 'set', name: 'm', setKind: 'map' }], error: /Device or resource busy/ },
    { name: 'deleting a missing element', ops: [{ verb: 'delete', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.9.9.9'] } }], error: /No such file or directory/ },
    { name: 'adding a key again with another verdict', ops: [{ verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'], value: ['drop'] } }], error: /File exists/ },
    { name: 'a change of base chain priority', ops: [{ verb: 'add', kind: 'chain', name: 'a', base: { type: 'nat', hook: 'output', priority: -100 } }], error: /Operation not supported/ },
    {
      name: 'good ops before a bad one are undone',
      ops: [
        { verb: 'flush', kind: 'chain', name: 'a' },
        { verb: 'delete', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'] } },
        { verb: 'add', kind: 'chain', name: 'c' },
        { verb: 'delete', kind: 'chain', name: 'b' },
        { verb: 'add', kind: 'rule', chain: 'c', rule: { text: 'jump nowhere' } },
      ],
      error: /line 5: /,
    },
  ];
  const saved = renderNftCanonical(kernel.ruleset());
  for (const c of cases) {
    assert.throws(() => kernel.apply({ family: 'ip', table: 'kube-proxy', ops: c.ops }), c.error, c.name);
    assert.equal(renderNftCanonical(kernel.ruleset()), saved, `${c.name}: nothing applied`);
  }
  // What is allowed: the same element again, deleting a chain once nothing goes to it.
  kernel.apply({ family: 'ip', table: 'kube-proxy', ops: [
    { verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'], value: ['goto b'] } },
    { verb: 'delete', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'] } },
    { verb: 'delete', kind: 'chain', name: 'b' },
  ] });
  assert.deepEqual(kernel.chainNames('ip').filter((c) => !isServiceChainName(c)), ['a']);
});
