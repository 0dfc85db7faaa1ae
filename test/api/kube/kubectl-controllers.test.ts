/**
 * The real kubectl against kpsim serve's live controllers, on the architecture guide's nginx
 * Deployment and Service (rules/nginx-deployment, seeded with --allocate): `kubectl get` tables
 * for pods and workloads, `kubectl scale` up and down with the EndpointSlice and the traced DNAT
 * following, `kubectl delete pod` and its replacement, `kubectl patch --subresource=status`
 * taking a pod out of the ready endpoints, a StatefulSet and a DaemonSet applied from YAML,
 * `kubectl get pods -w` printing the controllers' writes. Skipped, with the reason, where
 * kubectl is not installed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Kubectl, type StartedApi, kubectlFor, kubectlMissing, startKubeApi } from '../../helpers/kube-api.js';

const missing = kubectlMissing();
const work = mkdtempSync(join(tmpdir(), 'kpsim-kubectl-controllers-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Pod {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { podIP?: string; phase?: string };
}

interface Slice {
  metadata: { name: string };
  endpoints?: { addresses: string[]; conditions: { ready?: boolean }; targetRef?: { name: string } }[];
}

/** The data rows of a table printed by kubectl, split on runs of spaces. */
function rows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.trim().split(/\s{2,}/));
}

describe('kubectl and the live controllers on rules/nginx-deployment', { skip: missing }, () => {
  let api: StartedApi;
  let k: Kubectl;
  let clusterIP: string;
  before(async () => {
    api = await startKubeApi({ files: ['rules/nginx-deployment'], seedOptions: { allocate: true }, controllers: true });
    k = kubectlFor(api.url);
    clusterIP = (JSON.parse((await k.run(['get', 'svc', 'nginx-service', '-o', 'json'])).stdout) as { spec: { clusterIP: string } }).spec.clusterIP;
  });
  after(async () => {
    k.cleanup();
    await api.close();
  });

  async function json<T>(args: string[]): Promise<T> {
    const got = await k.run([...args, '-o', 'json']);
    assert.equal(got.status, 0, got.stderr);
    return JSON.parse(got.stdout) as T;
  }

  const pods = async (selector = 'app=nginx'): Promise<Pod[]> => (await json<{ items: Pod[] }>(['get', 'pods', '-l', selector])).items;
  const slices = async (): Promise<Slice[]> => (await json<{ items: Slice[] }>(['get', 'endpointslices', '-l', 'kubernetes.io/service-name=nginx-service'])).items;
  const readyEndpoints = (list: readonly Slice[]): string[] => list.flatMap((s) => (s.endpoints ?? []).filter((e) => e.conditions.ready === true).map((e) => `${e.addresses[0]}:8080`)).sort();

  async function traced(): Promise<{ verdict: string; endpoints: string[] }> {
    const res = await fetch(`${api.url}/v1/trace`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ src: '10.244.0.99', dst: clusterIP, dport: 80 }) });
    return (await res.json()) as { verdict: string; endpoints: string[] };
  }

  test('get pods,deploy,rs: the seeded Deployment runs 3 pods, its tables as the API server prints them', async () => {
    const got = await k.run(['get', 'pods,deploy,rs']);
    assert.equal(got.status, 0, got.stderr);
    const table = rows(got.stdout);
    const podRows = table.filter((r) => r[0]!.startsWith('pod/'));
    assert.equal(podRows.length, 3, got.stdout);
    for (const r of podRows) assert.deepEqual(r.slice(1, 4), ['1/1', 'Running', '0'], got.stdout);
    assert.deepEqual(table.find((r) => r[0] === 'NAME' && r[1] === 'READY' && r[2] === 'UP-TO-DATE'), ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE']);
    assert.deepEqual(table.find((r) => r[0] === 'deployment.apps/nginx')?.slice(0, 4), ['deployment.apps/nginx', '3/3', '3', '3'], got.stdout);
    assert.deepEqual(table.find((r) => r[0]!.startsWith('replicaset.apps/nginx-'))?.slice(1, 4), ['3', '3', '3'], got.stdout);
    assert.deepEqual(readyEndpoints(await slices()), (await pods()).map((p) => `${p.status.podIP}:8080`).sort());
  });

  test('kubectl scale --replicas=5 then 2: pods, the slice (the same one) and the DNAT follow', async () => {
    const [slice] = await slices();
    for (const replicas of [5, 2]) {
      const scaled = await k.run(['scale', 'deployment', 'nginx', `--replicas=${replicas}`]);
      assert.equal(scaled.status, 0, scaled.stderr);
      assert.equal(scaled.stdout, 'deployment.apps/nginx scaled\n');
      const running = (await pods()).filter((p) => p.status.phase === 'Running');
      assert.equal(running.length, replicas);
      const now = await slices();
      assert.deepEqual(now.map((s) => s.metadata.name), [slice!.metadata.name]);
      assert.deepEqual(readyEndpoints(now), running.map((p) => `${p.status.podIP}:8080`).sort());
      const t = await traced();
      assert.equal(t.verdict, 'DNAT');
      assert.deepEqual([...t.endpoints].sort(), readyEndpoints(now), `a DNAT to the ${replicas}`);
    }
    const deploy = rows((await k.run(['get', 'deploy', 'nginx'])).stdout);
    assert.deepEqual(deploy[1]?.slice(0, 4), ['nginx', '2/2', '2', '2']);
  });

  test('kubectl delete pod: the ReplicaSet replaces it under a new name and address', async () => {
    const before = await pods();
    const victim = before[0]!;
    const deleted = await k.run(['delete', 'pod', victim.metadata.name]);
    assert.equal(deleted.status, 0, deleted.stderr);
    const after = await pods();
    assert.equal(after.length, before.length);
    const fresh = after.find((p) => !before.some((b) => b.metadata.name === p.metadata.name));
    assert.ok(fresh, after.map((p) => p.metadata.name).join(' '));
    assert.notEqual(fresh.status.podIP, victim.status.podIP);
    assert.equal(fresh.status.phase, 'Running');
    assert.ok(readyEndpoints(await slices()).includes(`${fresh.status.podIP}:8080`));
    assert.ok(!(await traced()).endpoints.includes(`${victim.status.podIP}:8080`), 'the deleted pod is gone from the rules');
  });

  test('kubectl patch pod --subresource=status Ready=False: the endpoint is not ready, the trace leaves it out', async () => {
    const [pod, other] = await pods();
    const patched = await k.run(['patch', 'pod', pod!.metadata.name, '--subresource=status', '-p', '{"status":{"conditions":[{"type":"Ready","status":"False"}]}}']);
    assert.equal(patched.status, 0, patched.stderr);
    const endpoint = (await slices()).flatMap((s) => s.endpoints ?? []).find((e) => e.targetRef?.name === pod!.metadata.name);
    assert.equal(endpoint?.conditions.ready, false);
    assert.deepEqual((await traced()).endpoints, [`${other!.status.podIP}:8080`]);
    const back = await k.run(['patch', 'pod', pod!.metadata.name, '--subresource=status', '-p', '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}']);
    assert.equal(back.status, 0, back.stderr);
    assert.equal((await traced()).endpoints.length, 2, 'Ready again: back in the rules');
  });

  test('kubectl apply a StatefulSet and a DaemonSet: ordinal pods, one daemon per node, their tables', async () => {
    const file = join(work, 'more.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  clusterIP: None\n  selector: {app: db}\n  ports: [{port: 5432}]\n',
        'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  replicas: 2\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: db, image: postgres:16, ports: [{containerPort: 5432}]}]}\n',
        'apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec: {containers: [{name: agent, image: agent:1}]}\n',
      ].join('---\n'),
    );
    const applied = await k.run(['apply', '-f', file]);
    assert.equal(applied.status, 0, applied.stderr);
    assert.match(applied.stdout, /^statefulset\.apps\/db created$/m);
    assert.match(applied.stdout, /^daemonset\.apps\/agent created$/m);
    assert.deepEqual((await pods('app=db')).map((p) => [p.metadata.name, p.status.phase]), [['db-0', 'Running'], ['db-1', 'Running']]);
    const daemons = await pods('app=agent');
    assert.deepEqual(daemons.map((p) => p.spec.nodeName).sort(), ['node-1', 'node-2', 'node-3']);
    const table = rows((await k.run(['get', 'sts,ds'])).stdout);
    assert.deepEqual(table.find((r) => r[0] === 'statefulset.apps/db')?.slice(0, 2), ['statefulset.apps/db', '2/2']);
    assert.deepEqual(table.find((r) => r[0] === 'daemonset.apps/agent')?.slice(0, 7), ['daemonset.apps/agent', '3', '3', '3', '3', '3', '<none>']);
  });

  test('kubectl get pods -w prints the pods the controllers make after kubectl scale', async () => {
    const watcher = spawn('kubectl', ['--server', api.url, '--cache-dir', join(k.home, 'cache'), 'get', 'pods', '-l', 'app=nginx', '-w'], { env: k.env });
    let out = '';
    watcher.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const closed = new Promise<void>((resolve) => watcher.on('close', () => resolve()));
    try {
      const until = async (what: string, ready: () => boolean): Promise<void> => {
        for (let i = 0; i < 300 && !ready(); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(ready(), `kubectl get -w printed ${what}:\n${out}`);
      };
      const before = new Set((await pods()).map((p) => p.metadata.name));
      await until('the pods there', () => [...before].every((n) => out.includes(n)));
      const scaled = await k.run(['scale', 'deployment', 'nginx', '--replicas=3']);
      assert.equal(scaled.status, 0, scaled.stderr);
      const fresh = (await pods()).map((p) => p.metadata.name).filter((n) => !before.has(n));
      assert.equal(fresh.length, 1);
      const lines = (): string[][] => rows(out).filter((r) => r[0] === fresh[0]);
      await until('the new pod Pending then Running', () => lines().some((r) => r[2] === 'Running'));
      assert.equal(lines()[0]![2], 'Pending', `first seen Pending:\n${out}`);
    } finally {
      watcher.kill('SIGTERM');
      await closed;
    }
  });
});
