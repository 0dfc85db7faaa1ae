/**
 * loadCluster reads file by file and decodes a JSON List item by item from its bytes; what it gives
 * must be what decoding the whole texts gives (clusterFromManifests of readManifestTexts): the same
 * cluster, or the same problems with the same messages.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { clusterFromManifests, type LoadOptions, loadCluster, readManifestTexts } from '../../src/manifest/load.js';
import type { Cluster } from '../../src/model/types.js';

const root = mkdtempSync(join(tmpdir(), 'kpsim-load-files-'));
after(() => rmSync(root, { recursive: true, force: true }));

const service = (name: string, clusterIP: string, port: number | string = 80): object => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'ns1' },
  spec: { clusterIP, ports: [{ port, protocol: 'TCP' }] },
});
const node = (name: string, address: string): object => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, status: { addresses: [{ type: 'InternalIP', address }] } });
const list = (items: unknown[], kind = 'List'): string => JSON.stringify({ apiVersion: 'v1', items, kind, metadata: { resourceVersion: '' } });

interface LoadCase {
  name: string;
  /** File name → its text, or its exact bytes. */
  files: Record<string, string | Buffer>;
  options?: LoadOptions;
  /** cluster: both ways give a cluster, summarized as this; else both throw these messages. */
  want: { services: string[]; nodes: string[] } | { problems: string[] };
}

const cases: LoadCase[] = [
  {
    name: 'a List of Services and Nodes',
    files: { 'a.json': list([service('web', '10.96.0.5'), node('n1', '192.168.0.2'), service('db', '10.96.0.6')]) },
    want: { services: ['ns1/web 10.96.0.5', 'ns1/db 10.96.0.6'], nodes: ['n1'] },
  },
  {
    name: 'a ServiceList, a pretty-printed List and a YAML file, in file order',
    files: {
      '1.json': list([service('a', '10.96.0.1')], 'ServiceList'),
      '2.json': JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [service('b', '10.96.0.2')] }, null, 2),
      '3.yaml': 'apiVersion: v1\nkind: Node\nmetadata: {name: n2}\nstatus: {addresses: [{type: InternalIP, address: 192.168.0.3}]}\n',
    },
    want: { services: ['ns1/a 10.96.0.1', 'ns1/b 10.96.0.2'], nodes: ['n2'] },
  },
  {
    name: 'a List inside a List, and an empty List',
    files: { 'a.json': list([JSON.parse(list([service('inner', '10.96.0.7')])), node('n1', '192.168.0.2')]), 'b.json': list([]) },
    want: { services: ['ns1/inner 10.96.0.7'], nodes: ['n1'] },
  },
  {
    name: 'names with non-ASCII characters and bytes that are not UTF-8',
    files: {
      'a.json': Buffer.concat([
        Buffer.from('{"apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"nœud-☃-'),
        Buffer.from([0xff, 0xc3, 0x28, 0xe2, 0x82]),
        Buffer.from('"},"status":{"addresses":[{"type":"InternalIP","address":"192.168.0.9"}]}}],"kind":"List"}'),
      ]),
    },
    // The name is refused; the message shows it decoded the same both ways.
    want: { problems: ['a.json: Node nœud-☃-\ufffd\ufffd(\ufffd: metadata.name: "nœud-☃-\ufffd\ufffd(\ufffd" is not a valid Kubernetes name (lower-case letters, digits, \'-\' and \'.\')'] },
  },
  {
    name: 'problems of every item and every file, all together',
    files: {
      'a.json': list([service('web', '10.96.0.5', 70000), { apiVersion: 'v1', metadata: { name: 'x' } }, 5, service('ok', '10.96.0.8')]),
      'b.yaml': 'apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec: {clusterIP: 10.96.0.9, ports: [{port: 0, protocol: TCP}]}\n',
    },
    want: {
      problems: [
        'a.json: Service ns1/web: spec.ports[0].port: 70000 is not a port',
        'a.json: object x: kind: is required',
        'a.json: List item 2: is not a Kubernetes object (a mapping with apiVersion and kind)',
        'b.yaml: Service default/bad: spec.ports[0].port: 0 is not a port',
      ],
    },
  },
  {
    name: 'a syntax error in the last item: JSON.parse of the whole says it',
    files: { 'a.json': `{"apiVersion":"v1","items":[${JSON.stringify(service('web', '10.96.0.5'))},{"kind":"Service","metadata":tru}],"kind":"List"}` },
    want: { problems: ['(JSON.parse of the whole)'] },
  },
  {
    name: 'items given twice: the whole is decoded, the last items win',
    files: { 'a.json': `{"items":[${JSON.stringify(service('first', '10.96.0.1'))}],"kind":"List","items":[${JSON.stringify(service('second', '10.96.0.2'))}]}` },
    want: { services: ['ns1/second 10.96.0.2'], nodes: [] },
  },
  {
    name: 'a List without a kind',
    files: { 'a.json': JSON.stringify({ apiVersion: 'v1', items: [service('web', '10.96.0.5')] }) },
    want: { problems: ['a.json: object: kind: is required'] },
  },
  {
    name: 'a top-level array of objects',
    files: { 'a.json': JSON.stringify([service('web', '10.96.0.5'), node('n1', '192.168.0.2')]) },
    want: { services: ['ns1/web 10.96.0.5'], nodes: ['n1'] },
  },
  {
    name: 'an empty file and a config file',
    files: { 'a.yaml': '', 'b.json': list([service('web', '10.96.0.5')]) },
    options: { config: 'kp.yaml' },
    want: { services: ['ns1/web 10.96.0.5'], nodes: [] },
  },
];

let dirs = 0;
function writeCase(files: Record<string, string | Buffer>): string {
  const dir = join(root, `case-${dirs++}`);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

type Outcome = { cluster: Cluster } | { problems: string[] };

async function outcome(load: () => Promise<Cluster>): Promise<Outcome> {
  try {
    return { cluster: await load() };
  } catch (e) {
    assert.ok(e instanceof KpsimError, `expected a KpsimError, got ${String(e)}`);
    return { problems: (e.problems.length > 0 ? e.problems : [e]).map((p) => p.message) };
  }
}

/** main's way: every text whole, then decoded. */
function loadWhole(paths: string | string[], options: LoadOptions = {}): () => Promise<Cluster> {
  return async () => clusterFromManifests(await readManifestTexts(paths, options.config), options);
}

const KUBE_PROXY_CONFIG = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n';

for (const c of cases) {
  test(`loadCluster file by file: ${c.name}`, async () => {
    const dir = writeCase(c.files);
    // The config file lives outside the folder, as --config's usually does.
    const options = c.options?.config !== undefined ? { ...c.options, config: `${dir}-${c.options.config}` } : (c.options ?? {});
    if (options.config !== undefined) writeFileSync(options.config, KUBE_PROXY_CONFIG);
    const got = await outcome(() => loadCluster(dir, options));
    const whole = await outcome(loadWhole(dir, options));
    assert.deepEqual(got, whole);
    if ('problems' in c.want) {
      assert.ok('problems' in got, 'expected problems, got a cluster');
      const want = c.want.problems[0] === '(JSON.parse of the whole)' ? got.problems : c.want.problems.map((p) => `${join(dir, p.split(':')[0]!)}:${p.split(':').slice(1).join(':')}`);
      assert.deepEqual(got.problems, want);
      if (c.want.problems[0] === '(JSON.parse of the whole)') assert.match(got.problems[0]!, /: not valid JSON: /);
    } else {
      assert.ok('cluster' in got, `expected a cluster, got ${JSON.stringify(got)}`);
      assert.deepEqual(
        { services: got.cluster.services.map((s) => `${s.namespace}/${s.name} ${s.clusterIPs.join(',')}`), nodes: got.cluster.nodes.map((n) => n.name) },
        c.want,
      );
      if (options.config !== undefined) assert.equal(got.cluster.config.mode, 'ipvs');
    }
  });
}

test('loadCluster file by file: files that cannot be read are the same errors', async () => {
  const dir = writeCase({ 'a.json': list([service('web', '10.96.0.5')]) });
  const big = join(dir, 'big.json');
  writeFileSync(big, '');
  truncateSync(big, 300 * 1024 * 1024); // sparse: stat says 300 MiB, nothing is written
  const missingConfig = { config: join(dir, 'missing.yaml') };
  const cases: { name: string; paths: string[]; options?: LoadOptions; want: string }[] = [
    { name: 'too large', paths: [big], want: `${big}: is 300 MiB; kpsim reads files up to 256 MiB` },
    { name: 'missing', paths: [join(dir, 'nope.json')], want: `${join(dir, 'nope.json')}: cannot read: no such file or folder` },
    { name: 'missing config', paths: [join(dir, 'a.json')], options: missingConfig, want: `${missingConfig.config}: cannot read: no such file or folder` },
  ];
  for (const c of cases) {
    const got = await outcome(() => loadCluster(c.paths, c.options));
    assert.deepEqual(got, await outcome(loadWhole(c.paths, c.options)), c.name);
    assert.deepEqual(got, { problems: [c.want] }, c.name);
  }
});
