/**
 * The agent when things go wrong, as kube-proxy behaves:
 * - the API server goes away and comes back (with its history, then with the history compacted
 *   so the informers get a 410 and relist): the agent reconnects with backoff, catches up on what
 *   changed meanwhile, and its tables equal a full compile of the API's objects (no lost, stale
 *   or duplicated rule);
 * - objects kpsim cannot read: each is logged with its name and skipped, the rest is synced;
 * - a sync the kernel refuses (iptables-restore, nft -f): counted as a (partial) restore failure
 *   or an nftables sync failure, and the next sync is full and leaves the right tables.
 * Every wait is for an event (a sync, a log line), never for a time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { WatchHub } from '../../src/api/kube/watch.js';
import { ENDPOINT_SLICES, SERVICES } from '../../src/api/kube/resources.js';
import { buildApiServer } from '../../src/api/server.js';
import type { Json, JsonObject } from '../../src/model/fields.js';
import type { SyncEvent } from '../../src/agent/proxier.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { compileNode } from '../../src/node/compile-node.js';
import type { CompiledNftables } from '../../src/node/modes/nftables.js';
import { type StartedApi, startKubeApi } from '../helpers/kube-api.js';
import { nftDifference } from '../helpers/nft-sync.js';
import { type TestAgent, chainDifferences, chainsOfSave, compiledChains, startTestAgent, stateText } from '../helpers/agent.js';

function fastConfig(api: StartedApi, syncPeriodSeconds = 30) {
  const c = api.store.cluster().config;
  return { ...c, syncPeriods: { ...c.syncPeriods, iptables: { syncPeriodSeconds, minSyncPeriodSeconds: 0 }, nftables: { syncPeriodSeconds, minSyncPeriodSeconds: 0 } } };
}

function svc(name: string, clusterIP: string): JsonObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { clusterIP, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } };
}

function slice(name: string, service: string, ips: string[]): JsonObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4', endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })) as Json[], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

/** The agent's IPv4 tables equal a full compile of what the API holds now. */
function assertConverged(t: TestAgent, api: StartedApi, what: string): void {
  const last = [...t.events].reverse().find((e) => e.family === 4 && e.ok)!;
  const diff = chainDifferences(compiledChains(api.store.cluster(), t.agent.nodeName, 4), chainsOfSave(stateText(last, 'iptables-save')));
  assert.deepEqual(diff, [], `${what}:\n${diff.join('\n')}\nlog:\n${t.log.join('\n')}`);
}

/**
 * Wait for the sync after which the IPv4 tables equal a full compile of the API's objects (the
 * informers reconnect one by one, so catching up can take several syncs). A run that never
 * converges ends at the test's timeout.
 */
async function convergence(t: TestAgent, api: StartedApi, from: number): Promise<void> {
  for (let next = from; ; next = t.events.length) {
    const event = await t.nextSync((e) => e.family === 4 && e.ok, next);
    const diff = chainDifferences(compiledChains(api.store.cluster(), t.agent.nodeName, 4), chainsOfSave(stateText(event, 'iptables-save')));
    if (diff.length === 0) return;
  }
}

test('the API server restarts (its history kept, then compacted): the agent relists and converges', { timeout: 180_000 }, async () => {
  const api = await startKubeApi({ files: ['rules/example'] });
  const port = api.port;
  let app: FastifyInstance | undefined;
  let hub: WatchHub | undefined;
  let t: TestAgent | undefined;
  try {
    t = await startTestAgent(api.url, { mode: 'iptables', config: fastConfig(api) });
    assertConverged(t, api, 'after the first sync');

    for (const [round, compact] of [[1, false], [2, true]] as const) {
      const lines = t.log.length;
      // The server goes away: its watches end, and the informers find nothing to reconnect to.
      if (app === undefined) await api.close();
      else {
        hub!.stop();
        await app.close();
      }
      await t.logged(/^Services: cannot reach .*; trying again in \d+ ms$/, lines);
      // Meanwhile the cluster changes.
      await api.store.create(SERVICES, 'default', svc(`while-down-${round}`, `10.96.${50 + round}.1`));
      await api.store.create(ENDPOINT_SLICES, 'default', slice(`while-down-${round}-abc`, `while-down-${round}`, [`10.244.${50 + round}.1`, `10.244.${50 + round}.2`]));
      await api.store.delete(ENDPOINT_SLICES, 'default', round === 1 ? 'api-m4n5b' : 'shop-q8w3e');
      if (compact) api.store.compact();
      // The server comes back on the same port, with the same store.
      const from = t.events.length;
      hub = new WatchHub(api.store);
      app = buildApiServer({ currentCluster: () => api.store.cluster(), kube: { store: api.store, hub } });
      await app.listen({ port, host: '127.0.0.1' });
      await convergence(t, api, from);
      for (const informer of ['Services', 'EndpointSlices', 'Node node-a']) {
        assert.ok(t.log.slice(lines).some((l) => l === `${informer}: connected to ${api.url} again`), `round ${round}: ${informer} reconnected; log:\n${t.log.slice(lines).join('\n')}`);
      }
      assertConverged(t, api, `round ${round} (${compact ? 'compacted: relist' : 'watch resumed'})`);
    }
  } finally {
    await t?.stop();
    hub?.stop();
    await app?.close();
  }
});

test('objects kpsim cannot read are logged by name and skipped; the rest is synced', async () => {
  const bad: Record<string, JsonObject> = {
    '/api/v1/services': { metadata: { name: 'bad-port', namespace: 'default', resourceVersion: '1' }, spec: { clusterIP: '10.96.77.1', ports: [{ name: 'http', port: 70000, protocol: 'TCP' }] } },
    '/apis/discovery.k8s.io/v1/endpointslices': { metadata: { name: 'bad-address', namespace: 'default', resourceVersion: '1', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.300'] }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
  };
  // The lists the agent reads each carry one object kpsim's decoder refuses.
  const api = await startKubeApi({
    files: ['rules/example'],
    prepare: (server) => server.addHook('onSend', async (request, _reply, payload) => {
      const path = request.url.split('?')[0]!;
      const extra = bad[path];
      if (extra === undefined || request.url.includes('watch=') || typeof payload !== 'string') return payload;
      const list = JSON.parse(payload) as { items: JsonObject[] };
      list.items.push(extra);
      return JSON.stringify(list);
    }),
  });
  let t: TestAgent | undefined;
  try {
    t = await startTestAgent(api.url, { mode: 'iptables', config: fastConfig(api) });
    assert.ok(t.log.some((l) => /^skipping Service default\/bad-port: .*spec\.ports\[0\]\.port: 70000 is not a port/.test(l)), t.log.join('\n'));
    assert.ok(t.log.some((l) => /^skipping EndpointSlice default\/bad-address: .*10\.244\.0\.300/.test(l)), t.log.join('\n'));
    assertConverged(t, api, 'the readable objects are all synced');
  } finally {
    await t?.stop();
    await api.close();
  }
});

/**
 * A refused sync in each mode: the kernel (its hook) refuses the IPv4 sync that carries a new
 * Service; the refused sync was a partial one, the runner's retry is full and comes out right.
 */
const REFUSED_SYNCS: {
  name: string;
  mode: 'iptables' | 'nftables';
  refusal: string;
  /** Wait for the first IPv6 sync before refusing (the nftables writers sync each family on its own). */
  afterIPv6Sync: boolean;
  /** What must hold after the full retry. */
  check(t: TestAgent, api: StartedApi, retry: SyncEvent, metrics: string): void;
}[] = [
  {
    name: 'a sync the kernel refuses makes the next one full, and the tables come out right',
    mode: 'iptables',
    refusal: 'iptables-restore: line 42 failed',
    afterIPv6Sync: false,
    check(t, api, _retry, metrics) {
      assertConverged(t, api, 'after the full sync that followed the failure');
      assert.match(metrics, /^kubeproxy_sync_proxy_rules_iptables_restore_failures_total\{ip_family="IPv4"\} 1$/m);
      assert.match(metrics, /^kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total\{ip_family="IPv4"\} 1$/m);
    },
  },
  {
    name: 'nftables mode: a transaction the kernel refuses makes the next one full, and the table comes out right',
    mode: 'nftables',
    refusal: 'Error: Could not process rule: No such file or directory',
    afterIPv6Sync: true,
    check(t, api, retry, metrics) {
      assert.match(retry.payload.find((a) => a.name === 'nft')!.text(), /^add element ip kube-proxy no-endpoint-services \{ 10\.96\.88\.1 \. tcp \. 80 comment "default\/refused:http" : goto reject-chain \}$/m, 'the Service the refused transaction carried (no endpoints: rejected) is written');
      const listed = parseNftRuleset(stateText(retry, 'nft-ruleset'));
      const compiled = compileNode(api.store.cluster(), 'nftables', { node: t.agent.nodeName }) as CompiledNftables;
      assert.equal(nftDifference({ ...listed, tables: listed.tables.filter((tb) => tb.family === 'ip') }, compiled.rulesets[0]!), undefined, 'after the full sync that followed the failure');
      assert.match(metrics, /^kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv4"\} 1$/m);
    },
  },
];

for (const c of REFUSED_SYNCS) {
  test(c.name, async () => {
    const api = await startKubeApi({ files: ['rules/example'] });
    let t: TestAgent | undefined;
    let refuse = false;
    try {
      t = await startTestAgent(api.url, {
        mode: c.mode,
        config: fastConfig(api, 1),
        kernelHook: ({ family }) => {
          if (refuse && family === 4) {
            refuse = false;
            throw new Error(c.refusal);
          }
        },
      });
      if (c.afterIPv6Sync) await t.nextSync((e) => e.family === 6, 0);
      refuse = true;
      const from = t.events.length;
      await api.store.create(SERVICES, 'default', svc('refused', '10.96.88.1'));
      const failed = await t.nextSync((e) => e.family === 4, from);
      assert.equal(failed.ok, false);
      assert.equal(failed.full, false, 'the refused sync was a partial one');
      // The runner retries within syncPeriod (1 s here): the retry is a full sync.
      const retry = await t.nextSync((e) => e.family === 4, t.events.indexOf(failed) + 1);
      assert.equal(retry.full, true, `after a failure the next sync is full; log:\n${t.log.join('\n')}`);
      assert.ok(retry.ok, retry.error);
      const metrics = await (await fetch(`http://${t.agent.metricsAddress}/metrics`)).text();
      c.check(t, api, retry, metrics);
    } finally {
      await t?.stop();
      await api.close();
    }
  });
}
