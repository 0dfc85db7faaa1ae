/**
 * From the manifests people keep to the rules kube-proxy writes, through the library surface a
 * user's own tests use (loadCluster / clusterFromManifests, compileIptables, compileIpvs,
 * tracePacket): a Deployment, a StatefulSet and a DaemonSet behind Services, with --allocate,
 * traced to a DNAT onto their pods in both proxy modes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { type Cluster, type TraceResult, clusterFromManifests, compileIptables, compileIpvs, deriveEndpointSlices, loadCluster, tracePacket } from '../../src/index.js';

type Manifest = Record<string, unknown>;

const workload = (kind: string, name: string, spec: Manifest = {}): Manifest => ({
  apiVersion: 'apps/v1',
  kind,
  metadata: { name },
  spec: {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: name, ports: [{ name: 'http', containerPort: 8080 }] }] } },
    ...spec,
  },
});

const service = (name: string, spec: Manifest = {}): Manifest => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name },
  spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 'http' }], ...spec },
});

const manifests = [
  workload('Deployment', 'web', { replicas: 3 }),
  service('web'),
  workload('StatefulSet', 'db', { replicas: 3, serviceName: 'db' }),
  service('db'),
  workload('DaemonSet', 'agent'),
  service('agent', { type: 'NodePort' }),
];
const cluster: Cluster = clusterFromManifests([{ file: 'app.yaml', text: manifests.map((m) => stringify(m)).join('---\n') }], { allocate: true });
const POD = '10.244.0.50';

function clusterIP(name: string): string {
  return cluster.services.find((s) => s.name === name)!.clusterIPs[0]!;
}

function podIPs(prefix: string): string[] {
  return (cluster.pods ?? []).filter((p) => p.name.startsWith(prefix)).map((p) => `${p.podIPs[0]}:8080`).sort();
}

function summary(r: TraceResult): { verdict: string; endpoints: string[] } {
  return { verdict: r.verdict, endpoints: [...r.endpoints] };
}

const modes = {
  iptables: compileIptables(cluster),
  ipvs: compileIpvs(cluster),
};

for (const [mode, rules] of Object.entries(modes)) {
  test(`${mode}: a Deployment of 3 behind its Service: DNAT to its 3 pods, each with a third of the new connections`, () => {
    const got = tracePacket(rules, { proto: 'tcp', src: POD, dst: clusterIP('web'), dport: 80 });
    assert.deepEqual(summary(got), { verdict: 'DNAT', endpoints: podIPs('web-') }, got.hops.map((h) => h.rule).join('\n'));
    assert.equal(got.endpoints.length, 3);
    for (const p of Object.values(got.probabilities)) assert.ok(Math.abs(p - 1 / 3) < 1e-6, JSON.stringify(got.probabilities));
  });

  test(`${mode}: a StatefulSet of 3: DNAT to db-0, db-1 and db-2`, () => {
    const got = tracePacket(rules, { proto: 'tcp', src: POD, dst: clusterIP('db'), dport: 80 });
    assert.deepEqual(summary(got), { verdict: 'DNAT', endpoints: podIPs('db-') }, got.hops.map((h) => h.rule).join('\n'));
    assert.equal(got.endpoints.length, 3);
  });

  test(`${mode}: a DaemonSet on the 3 created nodes, through its node port`, () => {
    const nodePort = cluster.services.find((s) => s.name === 'agent')!.ports[0]!.nodePort;
    const got = tracePacket(rules, { proto: 'tcp', src: '203.0.113.9', dst: '192.168.0.2', dport: nodePort });
    assert.deepEqual(summary(got), { verdict: 'DNAT', endpoints: podIPs('agent-') }, got.hops.map((h) => h.rule).join('\n'));
    assert.equal(new Set((cluster.pods ?? []).filter((p) => p.name.startsWith('agent-')).map((p) => p.spec.nodeName)).size, 3);
  });
}

test('rules/nginx-deployment (the guide\'s Deployment and Service) through loadCluster: DNAT to 3 endpoints in both modes', async () => {
  const guide = await loadCluster('rules/nginx-deployment', { allocate: true });
  const ip = guide.services.find((s) => s.name === 'nginx-service')!.clusterIPs[0]!;
  assert.equal(ip, '10.96.0.2', '10.96.0.1 stays default/kubernetes\'s');
  for (const rules of [compileIptables(guide), compileIpvs(guide)]) {
    const got = tracePacket(rules, { proto: 'tcp', src: POD, dst: ip, dport: 80 });
    assert.deepEqual(summary(got), { verdict: 'DNAT', endpoints: ['10.244.0.2:8080', '10.244.1.2:8080', '10.244.2.2:8080'] });
  }
});

test('a pod marked not ready leaves the ready endpoints: a live store re-derives the slices on the change', () => {
  const pods = (cluster.pods ?? []).map((p) => (p.name === podNames('web-')[0] ? { ...p, ready: false } : p));
  const derived = deriveEndpointSlices({ services: cluster.services, pods, nodes: cluster.nodes });
  const changed: Cluster = { ...cluster, pods, endpointSlices: derived.slices };
  for (const rules of [compileIptables(changed), compileIpvs(changed)]) {
    const got = tracePacket(rules, { proto: 'tcp', src: POD, dst: clusterIP('web'), dport: 80 });
    assert.deepEqual(summary(got), { verdict: 'DNAT', endpoints: podIPs('web-').slice(1) }, got.hops.map((h) => h.rule).join('\n'));
  }
});

function podNames(prefix: string): string[] {
  return (cluster.pods ?? []).filter((p) => p.name.startsWith(prefix)).sort((a, b) => (`${a.podIPs[0]}` < `${b.podIPs[0]}` ? -1 : 1)).map((p) => p.name);
}
