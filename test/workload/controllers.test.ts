/**
 * --allocate's workload controllers, scheduler and kubelets: pod names as the controllers give
 * them (Deployment -> ReplicaSet name-hash -> pods name-hash-xxxxx; StatefulSet name-0...;
 * DaemonSet name-xxxxx, one per eligible node), placement, addresses from the node's pod CIDR,
 * readiness, the nodes --allocate creates, and the same cluster for the same input.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { type LoadOptions, clusterFromManifests } from '../../src/manifest/load.js';
import type { Cluster, Pod } from '../../src/model/types.js';
import { SAFE_ALPHABET } from '../../src/util/hash.js';

type Manifest = Record<string, unknown>;

function workload(kind: string, name: string, spec: Manifest = {}, template: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Manifest } = {}): Manifest {
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name, namespace: 'default' },
    spec: {
      ...(kind === 'DaemonSet' ? {} : { replicas: 3 }),
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: template.labels ?? { app: name }, ...(template.annotations ? { annotations: template.annotations } : {}) },
        spec: { containers: [{ name: 'app', image: 'app:1', ports: [{ name: 'http', containerPort: 8080 }] }], ...template.spec },
      },
      ...spec,
    },
  };
}

function node(name: string, extra: { labels?: Record<string, string>; taints?: Manifest[]; podCIDRs?: string[]; unschedulable?: boolean; pods?: string } = {}): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...extra.labels } },
    spec: { ...(extra.podCIDRs ? { podCIDRs: extra.podCIDRs } : {}), ...(extra.taints ? { taints: extra.taints } : {}), ...(extra.unschedulable ? { unschedulable: true } : {}) },
    status: { addresses: [{ type: 'InternalIP', address: `192.168.1.${name.length}` }], ...(extra.pods ? { allocatable: { pods: extra.pods } } : {}) },
  };
}

function load(manifests: Manifest[], options: LoadOptions = {}): Cluster {
  return clusterFromManifests([{ file: 'app.yaml', text: manifests.map((m) => stringify(m)).join('---\n') }], { allocate: true, ...options });
}

/** "name node ip,ip ready" per pod, for readable failures. */
function podLines(cluster: Cluster): string[] {
  return (cluster.pods ?? []).map((p) => `${p.name} ${p.spec.nodeName || '-'} ${p.podIPs.join(',') || '-'} ${p.ready ? 'ready' : 'not-ready'}`);
}

const SUFFIX = `[${SAFE_ALPHABET}]{5}`;
const HASH = `[${SAFE_ALPHABET}]{1,10}`;

test('a Deployment of 3: a ReplicaSet named after its pod-template-hash, three pods spread over the three created nodes', () => {
  const cluster = load([workload('Deployment', 'nginx')]);
  const rs = (cluster.workloads ?? []).find((w) => w.kind === 'ReplicaSet')!;
  assert.ok(rs, 'a ReplicaSet was made');
  assert.match(rs.name, new RegExp(`^nginx-${HASH}$`));
  const hash = rs.name.slice('nginx-'.length);
  assert.deepEqual(rs.selector.matchLabels, { app: 'nginx', 'pod-template-hash': hash });
  assert.deepEqual(rs.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'nginx', controller: true }]);
  const pods = cluster.pods ?? [];
  assert.equal(pods.length, 3, podLines(cluster).join('\n'));
  for (const p of pods) {
    assert.match(p.name, new RegExp(`^${rs.name}-${SUFFIX}$`));
    assert.deepEqual(p.labels, { app: 'nginx', 'pod-template-hash': hash });
    assert.deepEqual(p.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.name, controller: true }]);
  }
  assert.deepEqual(
    pods.map((p) => `${p.spec.nodeName} ${p.podIPs.join(',')} ${p.phase} ${String(p.ready)}`),
    ['node-1 10.244.0.2 Running true', 'node-2 10.244.1.2 Running true', 'node-3 10.244.2.2 Running true'],
  );
  assert.deepEqual(cluster.nodes.map((n) => `${n.name} ${n.addresses.map((a) => a.address).join(',')} ${n.podCIDRs.join(',')}`), [
    'node-1 192.168.0.2,node-1 10.244.0.0/24',
    'node-2 192.168.0.3,node-2 10.244.1.0/24',
    'node-3 192.168.0.4,node-3 10.244.2.0/24',
  ]);
});

test('the same input gives the same cluster; a changed template gives another pod-template-hash', () => {
  const a = load([workload('Deployment', 'web'), workload('StatefulSet', 'db'), workload('DaemonSet', 'agent')]);
  const b = load([workload('Deployment', 'web'), workload('StatefulSet', 'db'), workload('DaemonSet', 'agent')]);
  assert.deepEqual(podLines(a), podLines(b));
  assert.deepEqual(a.endpointSlices, b.endpointSlices);
  const changed = load([workload('Deployment', 'web', {}, { spec: { containers: [{ name: 'app', image: 'app:2' }] } })]);
  const hashOf = (c: Cluster): string => (c.workloads ?? []).find((w) => w.kind === 'ReplicaSet')!.name;
  assert.notEqual(hashOf(changed), hashOf(a));
});

test('more replicas than nodes: the pods go round the nodes, fewest of the workload first', () => {
  const cluster = load([workload('Deployment', 'web', { replicas: 7 })], { nodes: 3 });
  const perNode = new Map<string, number>();
  for (const p of cluster.pods ?? []) perNode.set(p.spec.nodeName, (perNode.get(p.spec.nodeName) ?? 0) + 1);
  assert.deepEqual([...perNode], [['node-1', 3], ['node-2', 2], ['node-3', 2]], podLines(cluster).join('\n'));
  // Addresses count up within each node's pod CIDR.
  assert.deepEqual((cluster.pods ?? []).filter((p) => p.spec.nodeName === 'node-1').map((p) => p.podIPs[0]), ['10.244.0.2', '10.244.0.3', '10.244.0.4']);
});

test('a second workload goes first to the nodes with the fewest pods', () => {
  const cluster = load([workload('Deployment', 'a', { replicas: 2 }), workload('Deployment', 'b', { replicas: 2 })]);
  const nodesOf = (prefix: string): string[] => (cluster.pods ?? []).filter((p) => p.name.startsWith(prefix)).map((p) => p.spec.nodeName);
  assert.deepEqual([nodesOf('a-'), nodesOf('b-')], [['node-1', 'node-2'], ['node-3', 'node-1']]);
});

test('a StatefulSet: pods name-0, name-1, name-2 with hostname, subdomain and the controller labels', () => {
  const cluster = load([workload('StatefulSet', 'db', { serviceName: 'db' })]);
  const pods = cluster.pods ?? [];
  assert.deepEqual(pods.map((p) => `${p.name} ${p.spec.hostname}.${p.spec.subdomain}`), ['db-0 db-0.db', 'db-1 db-1.db', 'db-2 db-2.db']);
  const labels = pods[1]!.labels;
  assert.equal(labels['statefulset.kubernetes.io/pod-name'], 'db-1');
  assert.equal(labels['apps.kubernetes.io/pod-index'], '1');
  assert.match(labels['controller-revision-hash']!, new RegExp(`^db-${HASH}$`));
});

test('a StatefulSet with spec.ordinals.start counts from there', () => {
  const cluster = load([workload('StatefulSet', 'db', { replicas: 2, ordinals: { start: 5 } })]);
  assert.deepEqual((cluster.pods ?? []).map((p) => p.name), ['db-5', 'db-6']);
});

test('OrderedReady: a StatefulSet whose pods are not Ready stops after the first; Parallel makes them all', () => {
  const notReady = { annotations: { 'kpsim.io/ready': 'false' } };
  const ordered = load([workload('StatefulSet', 'db', {}, notReady)]);
  assert.deepEqual(podLines(ordered), ['db-0 node-1 10.244.0.2 not-ready']);
  assert.ok(ordered.warnings.some((w) => w.object === 'StatefulSet default/db' && w.message === 'pod db-0 is not Ready, so OrderedReady creates no pod after it (1 of 3 ordinals)'));
  const parallel = load([workload('StatefulSet', 'db', { podManagementPolicy: 'Parallel' }, notReady)]);
  assert.deepEqual((parallel.pods ?? []).map((p) => `${p.name} ${String(p.ready)}`), ['db-0 false', 'db-1 false', 'db-2 false']);
});

interface DaemonSetCase {
  name: string;
  nodes: Manifest[];
  template?: Manifest;
  want: string[];
  warning?: string;
}

const CONTROL_PLANE_TAINT = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };
const daemonSetCases: DaemonSetCase[] = [
  { name: 'one pod on every node', nodes: [node('n1'), node('n2'), node('n3')], want: ['n1', 'n2', 'n3'] },
  { name: 'not on a tainted control-plane node', nodes: [node('cp', { taints: [CONTROL_PLANE_TAINT] }), node('n1'), node('n2')], want: ['n1', 'n2'] },
  {
    name: 'on it with a toleration',
    nodes: [node('cp', { taints: [CONTROL_PLANE_TAINT] }), node('n1'), node('n2')],
    template: { tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] },
    want: ['cp', 'n1', 'n2'],
  },
  { name: 'cordoned nodes too (the controller tolerates unschedulable)', nodes: [node('n1', { unschedulable: true }), node('n2')], want: ['n1', 'n2'] },
  { name: 'only where the nodeSelector matches', nodes: [node('n1', { labels: { disk: 'ssd' } }), node('n2'), node('n3', { labels: { disk: 'ssd' } })], template: { nodeSelector: { disk: 'ssd' } }, want: ['n1', 'n3'] },
  {
    name: 'nowhere, and kpsim says why in the scheduler\'s words',
    nodes: [node('n1'), node('n2', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoExecute' }] })],
    template: { nodeSelector: { disk: 'ssd' } },
    want: [],
    warning: "runs on no node: 0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
  },
];

for (const c of daemonSetCases) {
  test(`a DaemonSet: ${c.name}`, () => {
    const nodes = c.nodes.map((n, i) => ({ ...n, spec: { ...(n['spec'] as Manifest), podCIDRs: [`10.244.${i}.0/24`] } }));
    const cluster = load([workload('DaemonSet', 'agent', {}, c.template ? { spec: c.template } : {}), ...nodes]);
    const pods = cluster.pods ?? [];
    assert.deepEqual(pods.map((p) => p.spec.nodeName), c.want, podLines(cluster).join('\n'));
    for (const p of pods) {
      assert.match(p.name, new RegExp(`^agent-${SUFFIX}$`));
      assert.match(p.labels['controller-revision-hash']!, new RegExp(`^${HASH}$`));
      assert.equal(p.labels['pod-template-generation'], '1');
      assert.equal(p.podIPs.length, 1);
    }
    const warnings = cluster.warnings.filter((w) => w.object === 'DaemonSet default/agent').map((w) => w.message);
    assert.deepEqual(warnings, c.warning ? [c.warning] : []);
  });
}

interface SchedulingCase {
  name: string;
  nodes: Manifest[];
  replicas: number;
  template?: Manifest;
  want: string[];
  warning?: string;
}

const schedulingCases: SchedulingCase[] = [
  { name: 'nodeSelector', nodes: [node('n1'), node('n2', { labels: { pool: 'web' } })], replicas: 2, template: { nodeSelector: { pool: 'web' } }, want: ['n2', 'n2'] },
  {
    name: 'required node affinity (matchExpressions, matchFields)',
    nodes: [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'b' } }), node('n3', { labels: { zone: 'c' } })],
    replicas: 2,
    template: {
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n3'] }] }],
          },
        },
      },
    },
    want: ['n1', 'n2'],
  },
  { name: 'a taint keeps pods off unless tolerated', nodes: [node('n1', { taints: [{ key: 'gpu', value: 'yes', effect: 'NoSchedule' }] }), node('n2')], replicas: 2, want: ['n2', 'n2'] },
  { name: 'PreferNoSchedule does not filter', nodes: [node('n1', { taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] })], replicas: 1, want: ['n1'] },
  { name: 'a cordoned node gets no new pods', nodes: [node('n1', { unschedulable: true }), node('n2')], replicas: 2, want: ['n2', 'n2'] },
  { name: 'a full node (allocatable pods) gets no more', nodes: [node('n1', { pods: '1' }), node('n2')], replicas: 3, want: ['n1', 'n2', 'n2'] },
  {
    name: 'no node fits: the pods stay Pending, and kpsim says why',
    nodes: [node('n1', { taints: [{ key: 'gpu', value: 'yes', effect: 'NoSchedule' }] }), node('n2', { unschedulable: true })],
    replicas: 2,
    want: ['-', '-'],
    warning: '2 of its 2 pods cannot be scheduled, so they get no address: 0/2 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 1 node(s) were unschedulable.',
  },
];

for (const c of schedulingCases) {
  test(`scheduling: ${c.name}`, () => {
    const nodes = c.nodes.map((n, i) => ({ ...n, spec: { ...(n['spec'] as Manifest), podCIDRs: [`10.244.${i}.0/24`] } }));
    const cluster = load([workload('ReplicaSet', 'web', { replicas: c.replicas }, c.template ? { spec: c.template } : {}), ...nodes]);
    assert.deepEqual((cluster.pods ?? []).map((p) => p.spec.nodeName || '-'), c.want, podLines(cluster).join('\n'));
    const warnings = cluster.warnings.filter((w) => w.object === 'ReplicaSet default/web').map((w) => w.message);
    assert.deepEqual(warnings, c.warning ? [c.warning] : []);
  });
}

test('a pod template with pod anti-affinity: placed without it, and kpsim says it is not modelled', () => {
  const cluster = load([workload('Deployment', 'web', { replicas: 1 }, { spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname' }] } } } })]);
  assert.equal(cluster.pods?.length, 1);
  assert.ok(cluster.warnings.some((w) => w.path === 'spec.template.spec.affinity.podAntiAffinity' && w.message.startsWith('not modelled')), JSON.stringify(cluster.warnings));
});

test('pods that exist count: owned and adopted orphans; only the rest are made', () => {
  const orphan: Manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hand-made', namespace: 'default', labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'app' }] } };
  const cluster = load([workload('ReplicaSet', 'web'), orphan]);
  const pods = cluster.pods ?? [];
  assert.equal(pods.length, 3, podLines(cluster).join('\n'));
  assert.equal(pods[0]!.name, 'hand-made');
  assert.ok(pods[0]!.podIPs.length === 1 && pods[0]!.spec.nodeName !== '', 'the bare pod was scheduled and started');
  assert.equal(pods.filter((p) => p.name.startsWith('web-')).length, 2);
});

test('a Deployment whose ReplicaSets are in the input makes no other', () => {
  const deployment = workload('Deployment', 'web');
  const rs: Manifest = { ...workload('ReplicaSet', 'web-abc'), metadata: { name: 'web-abc', namespace: 'default', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', controller: true, uid: 'x' }] } };
  (rs['spec'] as Manifest)['selector'] = { matchLabels: { app: 'web' } };
  (rs['spec'] as Manifest)['template'] = (deployment['spec'] as Manifest)['template'];
  const cluster = load([deployment, rs]);
  assert.deepEqual((cluster.workloads ?? []).map((w) => `${w.kind} ${w.name}`), ['Deployment web', 'ReplicaSet web-abc']);
  assert.equal((cluster.pods ?? []).filter((p) => p.name.startsWith('web-abc-')).length, 3);
});

test('given Node objects keep their pod CIDRs; nodes without get one from the cluster CIDR, and kpsim says so', () => {
  const cluster = load([workload('ReplicaSet', 'web', { replicas: 2 }), node('n1', { podCIDRs: ['10.244.0.0/24'] }), node('n2')], { clusterCIDR: '10.244.0.0/16' });
  assert.deepEqual(cluster.nodes.map((n) => `${n.name} ${n.podCIDRs.join(',')}`), ['n1 10.244.0.0/24', 'n2 10.244.1.0/24']);
  assert.ok(cluster.warnings.some((w) => w.object === 'Node n2' && w.path === 'spec.podCIDRs'));
  assert.deepEqual((cluster.pods ?? []).map((p) => p.podIPs[0]), ['10.244.0.2', '10.244.1.2']);
});

test('--nodes and a dual-stack --cluster-cidr: nodes with both families, pods with both addresses', () => {
  const cluster = load([workload('Deployment', 'web', { replicas: 2 })], { nodes: 2, clusterCIDR: '10.100.0.0/16,fd00:10:100::/48' });
  assert.deepEqual(cluster.nodes.map((n) => `${n.name} ${n.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address).join(',')} ${n.podCIDRs.join(',')}`), [
    'node-1 192.168.0.2,2001:db8::2 10.100.0.0/24,fd00:10:100::/64',
    'node-2 192.168.0.3,2001:db8::3 10.100.1.0/24,fd00:10:100:1::/64',
  ]);
  assert.deepEqual((cluster.pods ?? []).map((p) => p.podIPs.join(',')), ['10.100.0.2,fd00:10:100::2', '10.100.1.2,fd00:10:100:1::2']);
  assert.match(cluster.warnings[0]!.message, /^the input has no Node objects: --allocate created 2 \(node-1 192\.168\.0\.2,2001:db8::2 pods 10\.100\.0\.0\/24,fd00:10:100::\/64; node-2/);
});

test('a cluster CIDR too small for the nodes is an error naming the node', () => {
  assert.throws(
    () => load([workload('Deployment', 'web')], { nodes: 3, clusterCIDR: '10.100.0.0/23' }),
    (e: unknown) => e instanceof Error && e.message === '(--allocate): Node node-3: spec.podCIDRs: no pod CIDR could be allocated: the cluster CIDR 10.100.0.0/23 has no free /24 left (--cluster-cidr)',
  );
});

test('without --allocate a workload makes no pods, and kpsim says so', () => {
  const cluster = clusterFromManifests([{ file: 'app.yaml', text: stringify(workload('Deployment', 'web')) }]);
  assert.deepEqual(cluster.pods, []);
  assert.deepEqual(
    cluster.warnings.map((w) => `${w.object}: ${w.message}`),
    ['Deployment default/web: has no pods in the input, and makes none without --allocate (which runs the workload controllers, the scheduler and the kubelets as a cluster would)'],
  );
});

test('without --allocate a workload whose Service has EndpointSlices in the input: the slices stand for its pods, nothing to say', () => {
  const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ port: 80, protocol: 'TCP' }] } };
  const slice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.5'] }], ports: [{ port: 8080, protocol: 'TCP' }] };
  const otherService = { ...service, metadata: { name: 'api', namespace: 'default' }, spec: { ...service.spec, clusterIP: '10.96.0.11', selector: { app: 'api' } } };
  const rows: { name: string; manifests: object[]; warned: boolean }[] = [
    { name: 'Service selecting the pods, with a slice', manifests: [workload('Deployment', 'web'), service, slice], warned: false },
    { name: 'Service selecting the pods, no slice', manifests: [workload('Deployment', 'web'), service], warned: true },
    { name: 'a slice of a Service selecting other pods', manifests: [workload('Deployment', 'web'), otherService, { ...slice, metadata: { ...slice.metadata, labels: { 'kubernetes.io/service-name': 'api' } } }], warned: true },
  ];
  for (const row of rows) {
    const cluster = clusterFromManifests([{ file: 'app.yaml', text: row.manifests.map((m) => stringify(m)).join('---\n') }]);
    const warned = cluster.warnings.some((w) => w.object === 'Deployment default/web' && w.message.startsWith('has no pods in the input'));
    assert.equal(warned, row.warned, `${row.name}: warnings ${JSON.stringify(cluster.warnings.map((w) => `${w.object}: ${w.message}`))}`);
  }
});

test('without --allocate a workload scaled to zero needs no pods: nothing to say', () => {
  const cluster = clusterFromManifests([{ file: 'app.yaml', text: stringify(workload('Deployment', 'web', { replicas: 0 })) }]);
  assert.deepEqual(cluster.warnings.map((w) => `${w.object}: ${w.message}`), []);
});

test('hostNetwork pods take the node address', () => {
  const cluster = load([workload('DaemonSet', 'proxy', {}, { spec: { hostNetwork: true } })], { nodes: 2 });
  assert.deepEqual((cluster.pods ?? []).map((p: Pod) => `${p.spec.nodeName} ${p.podIPs.join(',')}`), ['node-1 192.168.0.2', 'node-2 192.168.0.3']);
});

test('an IPv6-only cluster CIDR: IPv6-only nodes and pods', () => {
  const cluster = load([workload('Deployment', 'web', { replicas: 1 })], { nodes: 1, clusterCIDR: 'fd00:10:244::/56' });
  assert.deepEqual(cluster.nodes.map((n) => `${n.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address).join(',')} ${n.podCIDRs.join(',')}`), ['2001:db8::2 fd00:10:244::/64']);
  assert.deepEqual((cluster.pods ?? []).map((p) => p.podIPs.join(',')), ['fd00:10:244::2']);
});

test("kube-proxy's clusterCIDR: set to the cluster CIDR when kpsim created the nodes, left alone for given Nodes", () => {
  const created = load([workload('Deployment', 'web', { replicas: 1 })]);
  assert.deepEqual(created.config.clusterCIDRs, ['10.244.0.0/16']);
  const given = load([workload('Deployment', 'web', { replicas: 1 }), node('n1', { podCIDRs: ['10.244.0.0/24'] })]);
  assert.deepEqual(given.config.clusterCIDRs, []);
});

test('a dump of a live cluster (Deployment, its ReplicaSet, its running pods): --allocate makes nothing new, the slices come from the pods', () => {
  const deployment = workload('Deployment', 'web', { replicas: 2 });
  const rs: Manifest = {
    ...workload('ReplicaSet', 'web-7d9c', { replicas: 2 }),
    metadata: { name: 'web-7d9c', namespace: 'default', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', controller: true, uid: 'd' }] },
  };
  (rs['spec'] as Manifest)['selector'] = { matchLabels: { app: 'web' } };
  (rs['spec'] as Manifest)['template'] = (deployment['spec'] as Manifest)['template'];
  const running = (name: string, ip: string, nodeName: string): Manifest => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9c', controller: true, uid: 'r' }] },
    spec: { nodeName, containers: [{ name: 'app', image: 'app:1', ports: [{ name: 'http', containerPort: 8080 }] }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] },
  });
  const service: Manifest = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.96.0.50', selector: { app: 'web' }, ports: [{ port: 80, protocol: 'TCP', targetPort: 'http' }] } };
  const manifests = [deployment, rs, running('web-7d9c-aaaaa', '10.244.0.7', 'n1'), running('web-7d9c-bbbbb', '10.244.1.7', 'n2'), service, node('n1', { podCIDRs: ['10.244.0.0/24'] }), node('n2', { podCIDRs: ['10.244.1.0/24'] })];
  for (const allocate of [false, true]) {
    const cluster = clusterFromManifests([{ file: 'dump.yaml', text: manifests.map((m) => stringify(m)).join('---\n') }], { allocate });
    assert.deepEqual(podLines(cluster), ['web-7d9c-aaaaa n1 10.244.0.7 ready', 'web-7d9c-bbbbb n2 10.244.1.7 ready'], `allocate ${String(allocate)}`);
    const endpoints = cluster.endpointSlices.flatMap((s) => s.endpoints.map((e) => `${e.addresses[0]} ${e.targetRef?.name}`));
    assert.deepEqual(endpoints, ['10.244.0.7 web-7d9c-aaaaa', '10.244.1.7 web-7d9c-bbbbb']);
    assert.deepEqual(cluster.warnings.filter((w) => w.object !== undefined), [], JSON.stringify(cluster.warnings));
  }
});
