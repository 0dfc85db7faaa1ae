/**
 * kpsim's agent against kpsim's Kubernetes API, in iptables and IPVS mode: the first sync is
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
    const slice = api.store.get(ENDPOINT_SLICES, 'default', 'web-x7k2p')!;
    const endpoints = slice['endpoints'] as Json[];
    const from = t.events.length;
    await api.store.patch(ENDPOINT_SLICES, 'default', 'web-x7k2p', 'merge', { endpoints: endpoints.slice(1) });
    const partial = await t.nextSync((e) => e.family === 4 && e.updatedServices.length > 0, from);
    assert.equal(partial.full, false, `the change came in a partial sync; log:\n${t.log.join('\n')}`);
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
