/**
 * The real kubectl (the Debian package: a dispatcher that runs the bundled kubectl of the
 * server's minor version) against kpsim's Kubernetes API: table output, apply (create, change,
 * apply again), create, replace with a stale resourceVersion, delete, edit with an EDITOR
 * script, label, patch of every kind, a 422 in kpsim's own words, and `get -w` seeing another
 * kubectl's change. Skipped, with the reason, where kubectl is not installed.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { SERVICES } from '../../../src/api/kube/resources.js';
import { type Kubectl, type StartedApi, kubectlFor, kubectlMissing, startKubeApi } from '../../helpers/kube-api.js';
import { runCliAsync } from '../../helpers/run-cli.js';

const missing = kubectlMissing();
const work = mkdtempSync(join(tmpdir(), 'kpsim-kubectl-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

function svcYaml(name: string, spec: string, namespace = 'default'): string {
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n  labels: {app: ${name}}\nspec:\n${spec}\n`;
}

function writeFile(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

/** The data rows of a table printed by kubectl, split on runs of spaces. */
function rows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s{2,}/));
}

async function trace(api: StartedApi, packet: Record<string, unknown>): Promise<{ verdict: string; endpoints: string[] }> {
  const res = await fetch(`${api.url}/v1/trace`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(packet) });
  return (await res.json()) as { verdict: string; endpoints: string[] };
}

describe('kubectl against a server seeded with rules/example', { skip: missing }, () => {
  let api: StartedApi;
  let k: Kubectl;
  before(async () => {
    api = await startKubeApi({ files: ['rules/example'] });
    k = kubectlFor(api.url);
  });
  after(async () => {
    k.cleanup();
    await api.close();
  });

  test('kubectl version names the server version the dispatcher picked', async () => {
    const got = await k.run(['version']);
    assert.equal(got.status, 0, got.stderr);
    assert.match(got.stdout, /Client Version: v1\.33\.\d+/);
    assert.match(got.stdout, /Server Version: v1\.33\.1/);
  });

  test('get svc,endpointslices,nodes -A prints the server-side tables', async () => {
    const got = await k.run(['get', 'svc,endpointslices,nodes', '-A']);
    assert.equal(got.status, 0, got.stderr);
    const table = rows(got.stdout);
    const header = table.find((r) => r[0] === 'NAMESPACE' && r[2] === 'TYPE');
    assert.deepEqual(header, ['NAMESPACE', 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'], got.stdout);
    const expected = api.store.list(SERVICES);
    const services = table.filter((r) => r[1]?.startsWith('service/'));
    assert.equal(services.length, expected.length, got.stdout);
    assert.deepEqual(services.find((r) => r[1] === 'service/web')?.slice(0, 6), ['default', 'service/web', 'NodePort', '10.96.100.20', '<none>', '80:30080/TCP'], got.stdout);
    assert.deepEqual(services.find((r) => r[1] === 'service/shop')?.slice(0, 6), ['default', 'service/shop', 'LoadBalancer', '10.96.200.30', '203.0.113.50', '443:31443/TCP'], got.stdout);
    const slice = table.find((r) => r[1] === 'endpointslice.discovery.k8s.io/web-x7k2p');
    assert.deepEqual(slice?.slice(0, 5), ['default', 'endpointslice.discovery.k8s.io/web-x7k2p', 'IPv4', '8080', '10.244.0.5,10.244.1.6,10.244.1.7'], got.stdout);
    assert.ok(table.some((r) => r[0] === 'node/node-a'), `nodes are cluster-scoped (no namespace):\n${got.stdout}`);
  });

  test('a stale resourceVersion on replace is a 409 Conflict', async () => {
    const live = await k.run(['get', 'svc', 'web', '-o', 'json']);
    assert.equal(live.status, 0, live.stderr);
    const obj = JSON.parse(live.stdout) as { metadata: { resourceVersion: string; labels?: Record<string, string> } };
    const label = await k.run(['label', 'svc', 'web', 'touched=yes']);
    assert.equal(label.status, 0, label.stderr);
    const stale = writeFile('stale.json', JSON.stringify(obj));
    const got = await k.run(['replace', '-f', stale]);
    assert.equal(got.status, 1);
    assert.match(got.stderr, /Error from server \(Conflict\): error when replacing ".*stale\.json": Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again/);
  });

  test('a Service kpsim refuses is a 422 with its own words', async () => {
    const bad = writeFile('bad.yaml', svcYaml('bad', '  ports: [{port: 70000, protocol: TCP}]'));
    const got = await k.run(['create', '-f', bad]);
    assert.equal(got.status, 1);
    assert.equal(got.stderr, 'The Service "bad" is invalid: spec.ports[0].port: 70000 is not a port\n');
    const fromFile = await runCliAsync(['compile', '-f', bad]);
    assert.equal(fromFile.stderr, `kpsim: ${bad}: Service default/bad: spec.ports[0].port: 70000 is not a port\n`, 'the same words as for the file');
    const absent = await k.run(['get', 'svc', 'bad']);
    assert.match(absent.stderr, /Error from server \(NotFound\): services "bad" not found/, 'nothing half-written');
  });
});

describe('kubectl writes to an empty server', { skip: missing }, () => {
  let api: StartedApi;
  let k: Kubectl;
  before(async () => {
    api = await startKubeApi();
    k = kubectlFor(api.url);
  });
  after(async () => {
    k.cleanup();
    await api.close();
  });

  test('apply -f rules/example creates, apply again leaves unchanged, a changed file is configured and traced at once', async () => {
    const first = await k.run(['apply', '-f', 'rules/example']);
    // A KubeProxyConfiguration is not a kind this API serves: kubectl says so for that file only.
    assert.deepEqual(first.stderr.split('\n').filter((l) => l !== '').map((l) => /"(rules\/example\/[^"]+)"/.exec(l)?.[1] ?? l), ['rules/example/kube-proxy.yaml'], first.stderr);
    assert.match(first.stdout, /^deployment\.apps\/web created$/m);
    for (const name of ['web', 'shop', 'api', 'kube-dns']) assert.match(first.stdout, new RegExp(`^service/${name} created$`, 'm'), first.stdout);
    assert.match(first.stdout, /^endpointslice\.discovery\.k8s\.io\/web-x7k2p created$/m);
    assert.match(first.stdout, /^node\/node-a created$/m);
    const again = await k.run(['apply', '-f', 'rules/example']);
    // shop's manifest carries status.loadBalancer, which the API server keeps for itself (a
    // Service's status is dropped on create and kept on update): kubectl sends it again on every
    // apply and says "configured", as against a real cluster. Everything else is unchanged.
    const changedAgain = again.stdout.split('\n').filter((l) => l !== '' && !l.endsWith(' unchanged'));
    assert.deepEqual(changedAgain, ['service/shop configured'], again.stdout);
    assert.match(again.stdout, /^service\/web unchanged$/m);

    const before = await trace(api, { src: '10.244.1.20', dst: '10.96.100.20', dport: 80 });
    assert.deepEqual(before.endpoints, ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']);
    const text = readFileSync('rules/example/endpointslices.yaml', 'utf8');
    assert.match(text, /- addresses: \[10\.244\.1\.7\]/, 'the example slice this test edits');
    writeFileSync(join(work, 'endpointslices.yaml'), text.replace('- addresses: [10.244.1.7]', '- addresses: [10.244.1.77]'));
    const third = await k.run(['apply', '-f', join(work, 'endpointslices.yaml')]);
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stdout, /^endpointslice\.discovery\.k8s\.io\/web-x7k2p configured$/m);
    const after = await trace(api, { src: '10.244.1.20', dst: '10.96.100.20', dport: 80 });
    assert.deepEqual(after.endpoints, ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.77:8080'], 'the trace right after apply sees the new endpoint');
  });

  test('create, AlreadyExists, label, patch (strategic, merge, json), delete', async () => {
    const file = writeFile('fresh.yaml', svcYaml('fresh', '  type: NodePort\n  selector: {app: fresh}\n  ports: [{name: http, port: 80, targetPort: 8080}]', 'team-a'));
    const created = await k.run(['create', '-f', file]);
    assert.equal(created.status, 0, created.stderr);
    assert.equal(created.stdout, 'service/fresh created\n');
    const twice = await k.run(['create', '-f', file]);
    assert.equal(twice.status, 1);
    assert.match(twice.stderr, /Error from server \(AlreadyExists\): error when creating ".*fresh\.yaml": services "fresh" already exists/);

    const got = JSON.parse((await k.run(['get', 'svc', 'fresh', '-n', 'team-a', '-o', 'json'])).stdout) as { spec: { clusterIP: string; ports: { nodePort: number; protocol: string }[] } };
    assert.match(got.spec.clusterIP, /^10\.(9[6-9]|10\d|11[01])\./, 'a ClusterIP from the service CIDR, as the API server allocates');
    assert.ok(got.spec.ports[0]!.nodePort >= 30000 && got.spec.ports[0]!.nodePort <= 32767, JSON.stringify(got.spec));
    assert.equal(got.spec.ports[0]!.protocol, 'TCP');

    const steps: { args: string[]; stdout: RegExp }[] = [
      { args: ['label', 'svc', 'fresh', '-n', 'team-a', 'tier=web'], stdout: /service\/fresh labeled/ },
      { args: ['patch', 'svc', 'fresh', '-n', 'team-a', '-p', '{"spec":{"ports":[{"port":80,"targetPort":9090}]}}'], stdout: /service\/fresh patched/ },
      { args: ['patch', 'svc', 'fresh', '-n', 'team-a', '--type=merge', '-p', '{"metadata":{"annotations":{"note":"merged"}}}'], stdout: /service\/fresh patched/ },
      { args: ['patch', 'svc', 'fresh', '-n', 'team-a', '--type=json', '-p', '[{"op":"replace","path":"/spec/ports/0/port","value":81}]'], stdout: /service\/fresh patched/ },
    ];
    for (const step of steps) {
      const out = await k.run(step.args);
      assert.equal(out.status, 0, `${step.args.join(' ')}: ${out.stderr}`);
      assert.match(out.stdout, step.stdout);
    }
    const patched = JSON.parse((await k.run(['get', 'svc', 'fresh', '-n', 'team-a', '-o', 'json'])).stdout) as {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: { ports: { port: number; targetPort: number; name: string }[] };
    };
    assert.equal(patched.metadata.labels['tier'], 'web');
    assert.equal(patched.metadata.annotations['note'], 'merged');
    assert.deepEqual(patched.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['http', 81, 9090]], 'the strategic patch merged on port, the JSON patch replaced it');

    const failedTest = await k.run(['patch', 'svc', 'fresh', '-n', 'team-a', '--type=json', '-p', '[{"op":"test","path":"/spec/ports/0/port","value":1}]']);
    assert.equal(failedTest.status, 1);
    assert.match(failedTest.stderr, /^The request is invalid: .*json patch: Test operation failed$/m);

    const deleted = await k.run(['delete', 'svc', 'fresh', '-n', 'team-a']);
    assert.equal(deleted.status, 0, deleted.stderr);
    assert.equal(deleted.stdout, 'service "fresh" deleted\n');
    const gone = await k.run(['get', 'svc', 'fresh', '-n', 'team-a']);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /Error from server \(NotFound\): services "fresh" not found/);
  });

  test('edit with an EDITOR script changes the object', async () => {
    await k.run(['create', '-f', writeFile('edit-me.yaml', svcYaml('edit-me', '  ports: [{port: 80, targetPort: 8080}]'))]);
    const editor = writeFile('editor.sh', '#!/bin/sh\nsed -i "s/targetPort: 8080/targetPort: 7070/" "$1"\n');
    chmodSync(editor, 0o755);
    const edited = await k.run(['edit', 'svc', 'edit-me'], { env: { EDITOR: editor, KUBE_EDITOR: editor } });
    assert.equal(edited.status, 0, edited.stderr);
    assert.match(edited.stdout, /service\/edit-me edited/);
    const got = JSON.parse((await k.run(['get', 'svc', 'edit-me', '-o', 'json'])).stdout) as { spec: { ports: { targetPort: number }[] } };
    assert.equal(got.spec.ports[0]!.targetPort, 7070);
  });

  test('get svc -w prints a change another kubectl makes', async () => {
    const watcher = spawn('kubectl', ['--server', api.url, '--cache-dir', join(k.home, 'cache'), 'get', 'svc', '-w'], { env: k.env });
    let out = '';
    watcher.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const closed = new Promise<void>((resolve) => watcher.on('close', () => resolve()));
    try {
      const until = async (re: RegExp): Promise<void> => {
        for (let i = 0; i < 300 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100));
        assert.match(out, re, 'kubectl get -w printed');
      };
      await until(/^web\s/m);
      copyFileSync(writeFile('watched.yaml', svcYaml('watched', '  ports: [{port: 80, targetPort: 8080}]')), join(work, 'watched-copy.yaml'));
      const created = await k.run(['create', '-f', join(work, 'watched-copy.yaml')]);
      assert.equal(created.status, 0, created.stderr);
      await until(/^watched\s+ClusterIP\s+10\./m);
    } finally {
      watcher.kill('SIGTERM');
      await closed;
    }
  });
});
