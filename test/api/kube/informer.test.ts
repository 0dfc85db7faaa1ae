/**
 * A @kubernetes/client-node 1.x informer (what an agent or controller uses) against kpsim's
 * Kubernetes API: it lists, watches, sees add, update and delete, and when its resourceVersion
 * has been compacted away it gets a 410 and recovers by relisting, catching up on what it missed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, type V1Service, makeInformer } from '@kubernetes/client-node';
import { SERVICES } from '../../../src/api/kube/resources.js';
import type { JsonObject } from '../../../src/model/fields.js';
import { type StartedApi, startKubeApi } from '../../helpers/kube-api.js';

let api: StartedApi;
const requests: string[] = [];

before(async () => {
  api = await startKubeApi({ files: ['rules/example'], prepare: (app) => app.addHook('onRequest', async (request) => void requests.push(`${request.method} ${request.url}`)) });
});
after(() => api.close());

function clientFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  // client-node refuses plain http:// unless the cluster skips TLS verification.
  kc.loadFromOptions({ clusters: [{ name: 'kpsim', server: url, skipTLSVerify: true }], users: [{ name: 'test' }], contexts: [{ name: 'kpsim', cluster: 'kpsim', user: 'test' }], currentContext: 'kpsim' });
  return kc;
}

function svc(name: string, clusterIP: string, port = 80): JsonObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { clusterIP, ports: [{ port, protocol: 'TCP' }] } };
}

async function until(what: string, check: () => boolean, log: () => string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(check(), `${what}; events so far:\n${log()}`);
}

test('an informer lists, watches add/update/delete, and relists after a 410', async () => {
  const kc = clientFor(api.url);
  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Service>(kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
  const events: string[] = [];
  let connects = 0;
  let errors = 0;
  informer.on('add', (s) => events.push(`add ${s.metadata?.name}`));
  informer.on('update', (s) => events.push(`update ${s.metadata?.name} ${s.metadata?.labels?.['v'] ?? ''}`));
  informer.on('delete', (s) => events.push(`delete ${s.metadata?.name}`));
  informer.on('connect', () => connects++);
  informer.on('error', () => errors++);
  const log = (): string => events.join('\n');
  await informer.start();
  try {
    const initial = api.store.list(SERVICES).length;
    await until('the list gave every service', () => events.filter((e) => e.startsWith('add ')).length === initial, log);
    assert.ok(requests.some((r) => /^GET \/api\/v1\/services\?watch=true&resourceVersion=\d+$/.test(r)), requests.join('\n'));

    await api.store.create(SERVICES, 'default', svc('added', '10.96.7.1'));
    await until('add', () => events.includes('add added'), log);
    await api.store.patch(SERVICES, 'default', 'added', 'merge', { metadata: { labels: { v: '2' } } });
    await until('update', () => events.includes('update added 2'), log);
    await api.store.delete(SERVICES, 'default', 'added');
    await until('delete', () => events.includes('delete added'), log);

    // The informer's watch ends; meanwhile a service comes and the history it would resume from is gone.
    const listsBefore = requests.filter((r) => r === 'GET /api/v1/services').length;
    api.hub.closeAll();
    await api.store.create(SERVICES, 'default', svc('missed', '10.96.7.2'));
    api.store.compact();
    await until('the relist found the service created while it was away', () => events.includes('add missed'), log);
    assert.ok(requests.filter((r) => r === 'GET /api/v1/services').length > listsBefore, `relisted:\n${requests.join('\n')}`);
    assert.ok(connects >= 2, `connect fired for each list-and-watch cycle (${connects})`);
    await api.store.create(SERVICES, 'default', svc('after', '10.96.7.3'));
    await until('it watches again after the relist', () => events.includes('add after'), log);
    assert.equal(errors, 0, 'a 410 is handled by relisting, not reported as an error');
  } finally {
    await informer.stop();
  }
});
