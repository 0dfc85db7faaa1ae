/**
 * --data-dir: every acknowledged write is on disk as a manifest before the answer, a restart
 * reloads the same objects and continues the resourceVersion counter, an unfinished write's
 * temporary is dropped, and a write the disk refuses is a 500 that changes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DataDir, KubeStore, admissionOptions } from '../../../src/api/kube/index.js';
import { ENDPOINT_SLICES, NAMESPACES, NODES, SERVICES } from '../../../src/api/kube/resources.js';
import { isStatusError } from '../../../src/api/kube/status.js';
import type { JsonObject } from '../../../src/model/fields.js';
import { manifestObjects } from '../../helpers/kube-api.js';

const root = mkdtempSync(join(tmpdir(), 'kpsim-data-dir-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function openStore(dir: string, seeds: boolean): Promise<{ store: KubeStore; dataDir: DataDir }> {
  const { dataDir, contents } = await DataDir.open(dir);
  const store = new KubeStore({ admission: admissionOptions(), persistence: dataDir });
  if (contents.objects.length > 0) store.seed(contents.objects, { resourceVersion: contents.resourceVersion });
  else if (seeds) {
    store.seed(manifestObjects(['rules/example']));
    await dataDir.writeAll(store.entries(), store.resourceVersion);
  }
  return { store, dataDir };
}

const svc = (name: string, ip: string): JsonObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'team-c' }, spec: { clusterIP: ip, ports: [{ port: 80, protocol: 'TCP' }] } });

test('writes are on disk when acknowledged; a restart reloads them and continues the counter', async () => {
  const dir = join(root, 'restart');
  const first = await openStore(dir, true);
  assert.ok(existsSync(join(dir, 'services', 'default', 'web.yaml')), 'seeds written');
  assert.ok(existsSync(join(dir, 'nodes', 'node-a.yaml')));
  const created = await first.store.create(SERVICES, 'team-c', svc('kept', '10.96.8.1'));
  assert.match(readFileSync(join(dir, 'services', 'team-c', 'kept.yaml'), 'utf8'), /clusterIP: 10\.96\.8\.1/, 'on disk before create() resolved');
  assert.ok(existsSync(join(dir, 'namespaces', 'team-c.yaml')), 'the implicit namespace too');
  await first.store.patch(SERVICES, 'team-c', 'kept', 'merge', { metadata: { labels: { v: '2' } } });
  await first.store.create(SERVICES, 'team-c', svc('dropped', '10.96.8.2'));
  await first.store.delete(SERVICES, 'team-c', 'dropped');
  assert.ok(!existsSync(join(dir, 'services', 'team-c', 'dropped.yaml')));
  const lastRV = first.store.resourceVersion;
  assert.equal(readFileSync(join(dir, '.resource-version'), 'utf8'), `${lastRV}\n`);

  writeFileSync(join(dir, 'services', 'team-c', '.tmp-torn.yaml'), 'apiVersion: v1\nkind: Serv'); // a crash mid-write
  const second = await openStore(dir, true);
  const kept = second.store.get(SERVICES, 'team-c', 'kept')!;
  assert.equal((kept['metadata'] as JsonObject)['uid'], (created.object['metadata'] as JsonObject)['uid']);
  assert.deepEqual((kept['metadata'] as { labels: Record<string, string> }).labels, { v: '2' });
  assert.equal(second.store.get(SERVICES, 'team-c', 'dropped'), undefined);
  assert.equal(second.store.resourceVersion, lastRV, 'the counter continues where it was');
  assert.ok(!existsSync(join(dir, 'services', 'team-c', '.tmp-torn.yaml')), 'the unfinished write is dropped');
  for (const type of [SERVICES, ENDPOINT_SLICES, NODES, NAMESPACES]) {
    assert.deepEqual(second.store.list(type).map((o) => JSON.stringify(o)), first.store.list(type).map((o) => JSON.stringify(o)), type.resource);
  }
  const next = await second.store.create(SERVICES, 'team-c', svc('later', '10.96.8.3'));
  assert.equal((next.object['metadata'] as JsonObject)['resourceVersion'], String(lastRV + 1));
});

test('a write the disk refuses is a 500 and changes nothing', async () => {
  const store = new KubeStore({
    admission: admissionOptions(),
    persistence: {
      write: async () => {
        throw new Error('EIO: disk on fire');
      },
    },
  });
  store.seed(manifestObjects(['rules/example']));
  const rv = store.resourceVersion;
  const events: unknown[] = [];
  store.onChange((e) => events.push(e));
  await assert.rejects(store.create(SERVICES, 'default', { ...svc('x', '10.96.8.9'), metadata: { name: 'x', namespace: 'default' } }), (e: unknown) => isStatusError(e) && e.status.code === 500 && /disk on fire/.test(e.message));
  assert.equal(store.get(SERVICES, 'default', 'x'), undefined);
  assert.deepEqual([store.resourceVersion, events.length], [rv, 0]);
});
