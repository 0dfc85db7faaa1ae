/**
 * kpsim's agent against kpsim's Kubernetes API, in iptables, IPVS and nftables mode: the first sync is
 * full and leaves what `kpsim compile` prints for the same objects; a change written through
 * the API reaches the kernel in a partial sync that writes only the changed Service's chains;
 * the metrics server serves kube-proxy's metrics and the health server answers as kube-proxy's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { formatIpvsadmList } from '../../src/ipvs/ipvsadm-format.js';
import { ENDPOINT_SLICES, SERVICES } from '../../src/api/kube/resources.js';
import type { SyncEvent } from '../../src/agent/proxier.js';
import type { Json } from '../../src/model/fields.js';
import { compileNode } from '../../src/node/compile-node.js';
import type { CompiledIpvsNode } from '../../src/node/modes/ipvs.js';
import { kernelTableOf } from '../../src/node/modes/ipvs.js';
import type { CompiledNftables } from '../../src/node/modes/nftables.js';
import { modeDriver } from '../../src/node/modes.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { nftDifference } from '../helpers/nft-sync.js';
import { type StartedApi, startKubeApi } from '../helpers/kube-api.js';
import { type TestAgent, chainDifferences, chainsOfSave, compiledChains, startTestAgent, stateText } from '../helpers/agent.js';

let api: StartedApi;
before(async () => {
  api = await startKubeApi({ files: ['rules/example'] });
});
after(() => api.close());

/** The example's configuration, syncing as soon as a change comes (minSyncPeriod 0). */
function config() {
  const c = api.store.cluster().config;
  return { ...c, syncPeriods: { ...c.syncPeriods, iptables: { syncPeriodSeconds: 30, minSyncPeriodSeconds: 0 }, ipvs: { syncPeriodSeconds: 30, minSyncPeriodSeconds: 0 } } };
}

/**
 * The example's web Service loses its first endpoint; the IPv4 sync that writes the change,
 * which must be a partial one.
 */
async function dropFirstWebEndpoint(t: TestAgent): Promise<SyncEvent> {
  const slice = api.store.get(ENDPOINT_SLICES, 'default', 'web-x7k2p')!;
  const endpoints = slice['endpoints'] as Json[];
  const from = t.events.length;
  await api.store.patch(ENDPOINT_SLICES, 'default', 'web-x7k2p', 'merge', { endpoints: endpoints.slice(1) });
  const partial = await t.nextSync((e) => e.family === 4 && e.updatedServices.length > 0, from);
  assert.equal(partial.full, false, `the change came in a partial sync; log:\n${t.log.join('\n')}`);
  return partial;
}

test('iptables mode: a full first sync, then a partial one per change, each leaving the compiled tables', async () => {
  let t: TestAgent | undefined;
  try {
    t = await startTestAgent(api.url, { mode: 'iptables', config: config() });
    const node = t.agent.nodeName;
    const first = await t.nextSync(() => true, 0);
    assert.equal(first.full, true, 'the first sync is full');
    assert.ok(first.ok, first.error);
    const families = t.agent.families;
    assert.deepEqual(families, [4, 6], `the example node is dual-stack; log:\n${t.log.join('\n')}`);
    for (const family of families) {
      const event: SyncEvent = t.events.find((e) => e.family === family)!;
      assert.deepEqual(chainDifferences(compiledChains(api.store.cluster(), node, family), chainsOfSave(stateText(event, 'iptables-save'))), [], `IPv${family} after the first sync`);
    }

    // One endpoint of web goes: a partial sync writes web's chains and leaves the others.
    const partial = await dropFirstWebEndpoint(t);
    assert.deepEqual(partial.updatedServices, ['default/web']);
    const payload = partial.payload.find((a) => a.name === 'iptables-restore')!.text();
    assert.match(payload, /^:KUBE-SVC-\S+ - \[0:0\]$/m, 'web\'s service chain is rewritten');
    assert.doesNotMatch(payload, /-A KUBE-SVC-\S+ .*default\/shop:https/, 'shop\'s chains are not in the payload');
    assert.match(payload, /^-X KUBE-SEP-/m, 'the removed endpoint\'s chain is deleted');
    assert.deepEqual(chainDifferences(compiledChains(api.store.cluster(), node, 4), chainsOfSave(stateText(partial, 'iptables-save'))), [], 'IPv4 after the partial sync');

    // Metrics, with kube-proxy's names.
    const metrics = await (await fetch(`http://${t.agent.metricsAddress}/metrics`)).text();
    for (const line of [
      /^kubeproxy_sync_proxy_rules_duration_seconds_bucket\{le="0.001",ip_family="IPv4"\} \d+$/m,
      /^kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]\d*$/m,
      /^kubeproxy_sync_full_proxy_rules_duration_seconds_count\{ip_family="IPv6"\} [1-9]\d*$/m,
      /^kubeproxy_sync_proxy_rules_iptables_total\{table="nat",ip_family="IPv4"\} [1-9]\d*$/m,
      /^kubeproxy_sync_proxy_rules_endpoint_changes_total [1-9]\d*$/m,
      /^# TYPE kubeproxy_network_programming_duration_seconds histogram$/m,
      /^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\} \d/m,
    ]) assert.match(metrics, line);
    assert.equal(await (await fetch(`http://${t.agent.metricsAddress}/proxyMode`)).text(), 'iptables');

    const healthz = await fetch(`http://${t.agent.healthzAddress}/healthz`);
    const body = await healthz.json() as { healthy: boolean; nodeEligible: boolean; status: Record<string, { healthy: boolean }> };
    assert.equal(healthz.status, 200, JSON.stringify(body));
    assert.equal(body.nodeEligible, true);
    assert.deepEqual(Object.keys(body.status).sort(), ['IPv4', 'IPv6']);
    assert.equal((await fetch(`http://${t.agent.healthzAddress}/livez`)).status, 200);
  } finally {
    await t?.stop();
  }
});

test('IPVS mode: the first sync leaves the compiled table; a new Service adds its virtual servers', async () => {
  let t: TestAgent | undefined;
  try {
    t = await startTestAgent(api.url, { mode: 'ipvs', config: config() });
    const first = await t.nextSync(() => true, 0);
    assert.ok(first.ok, first.error);
    const compiled = compileNode(api.store.cluster(), 'ipvs', { node: t.agent.nodeName }) as CompiledIpvsNode;
    const lastOf = (family: number) => [...t!.events].reverse().find((e) => e.family === family)!;
    assert.equal(stateText(lastOf(6), 'ipvsadm'), formatIpvsadmList(kernelTableOf(compiled)), 'both families\' virtual servers, as compile --mode ipvs lists them');

    const from = t.events.length;
    await api.store.create(SERVICES, 'default', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'added', namespace: 'default' }, spec: { clusterIP: '10.96.200.1', ports: [{ port: 80, protocol: 'TCP' }] } });
    const event = await t.nextSync((e) => e.updatedServices.includes('default/added'), from);
    const payload = event.payload[0]!.text();
    assert.match(payload, /^-A -t 10\.96\.200\.1:80 -s rr$/m, payload);
    assert.match(payload, /^add KUBE-CLUSTER-IP 10\.96\.200\.1,tcp:80$/m);
    assert.match(payload, /^ip addr add 10\.96\.200\.1\/32 dev kube-ipvs0$/m);
  } finally {
    await t?.stop();
    await api.store.delete(SERVICES, 'default', 'added').catch(() => undefined);
  }
});

test('nftables mode: a full first transaction leaves the compiled tables; a change comes as its chains and elements', async () => {
  let t: TestAgent | undefined;
  try {
    const c = config();
    t = await startTestAgent(api.url, { mode: 'nftables', config: { ...c, syncPeriods: { ...c.syncPeriods, nftables: { syncPeriodSeconds: 30, minSyncPeriodSeconds: 0 } } } });
    await t.nextSync((e) => e.family === 6, 0);
    const lastOf = (family: number) => [...t!.events].reverse().find((e) => e.family === family)!;
    assert.ok(lastOf(4).full && lastOf(4).ok, lastOf(4).error);
    const compiled = compileNode(api.store.cluster(), 'nftables', { node: t.agent.nodeName });
    // Both tables in one kernel, listed as `kpsim compile --mode nftables --format canonical` prints them.
    assert.equal(stateText(lastOf(6), 'nft-ruleset'), modeDriver('nftables').render(compiled, 'canonical'), 'the kernel lists what a full compile writes');
    const first = lastOf(4).payload.find((a) => a.name === 'nft')!.text();
    assert.match(first, /^add table ip kube-proxy \{ comment "rules for kube-proxy" ; \}$/m);
    assert.match(first, /^add rule ip kube-proxy cluster-ips-check ip daddr \{ 10\.96\.0\.0\/12 \} drop comment "Drop traffic to unallocated ClusterIPs"$/m, 'the ServiceCIDRs were listed before the first sync');

    // One endpoint of web goes: web's chains are rewritten, the removed endpoint's chain flushed, nothing else.
    const partial = await dropFirstWebEndpoint(t);
    const tx = partial.payload.find((a) => a.name === 'nft')!.text();
    assert.doesNotMatch(tx, /^add table/m, 'no setup in a partial transaction');
    assert.match(tx, /^flush chain ip kube-proxy service-\S+-default\/web\/tcp\/http$/m, `web's service chain is rewritten:\n${tx}`);
    assert.match(tx, /^flush chain ip kube-proxy endpoint-\S+-default\/web\/tcp\/http__/m);
    assert.doesNotMatch(tx, /default\/shop\//, 'shop\'s chains are not in the transaction');
    const listed = parseNftRuleset(stateText(partial, 'nft-ruleset'));
    const now = compileNode(api.store.cluster(), 'nftables', { node: t.agent.nodeName }) as CompiledNftables;
    assert.equal(nftDifference({ ...listed, tables: listed.tables.filter((tb) => tb.family === 'ip') }, now.rulesets[0]!), undefined, 'IPv4 after the partial sync');

    const metrics = await (await fetch(`http://${t.agent.metricsAddress}/metrics`)).text();
    assert.match(metrics, /^kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv4"\} 0$|^# TYPE kubeproxy_sync_proxy_rules_nftables_sync_failures_total counter$/m);
    assert.match(metrics, /^kubeproxy_sync_partial_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]\d*$/m);
    assert.equal(await (await fetch(`http://${t.agent.metricsAddress}/proxyMode`)).text(), 'nftables');
  } finally {
    await t?.stop();
  }
});
