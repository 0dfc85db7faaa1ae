/**
 * The EndpointSlice controller's rules, table by table, from Pods as stored (what kubectl get
 * pods -o yaml prints) through kpsim's decoder: the cases of podToEndpoint, getEndpointPorts,
 * ShouldPodBeInEndpoints and the reconciler's slice splitting in kubernetes/kubernetes
 * (staging/src/k8s.io/endpointslice: utils_test.go TestPodToEndpoint, reconciler_test.go),
 * plus topology hints (trafficdist_test.go, topologycache_test.go).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { deriveEndpointSlices } from '../../src/controller/endpoint-slice-controller.js';
import { CONTROLLER_NAME, MANAGED_BY_LABEL } from '../../src/controller/slice-meta.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import type { Cluster, EndpointSlice } from '../../src/model/types.js';
import { SAFE_ALPHABET } from '../../src/util/hash.js';

type Manifest = Record<string, unknown>;

function svc(name: string, spec: Manifest, meta: Manifest = {}): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', ...meta },
    spec: { clusterIP: '10.96.0.10', ipFamilies: ['IPv4'], selector: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], ...spec },
  };
}

interface PodOptions {
  ips?: string[];
  node?: string;
  ready?: boolean;
  deleting?: boolean;
  phase?: string;
  labels?: Record<string, string>;
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  hostname?: string;
  subdomain?: string;
}

function pod(name: string, o: PodOptions = {}): Manifest {
  const ips = o.ips ?? ['10.244.0.5'];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: o.labels ?? { app: 'web' }, ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: {
      nodeName: o.node ?? 'node-a',
      ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      ...(o.subdomain !== undefined ? { subdomain: o.subdomain } : {}),
      containers: [{ name: 'app', image: 'app', ports: o.ports ?? [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }],
    },
    status: {
      phase: o.phase ?? 'Running',
      ...(ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [{ type: 'Ready', status: (o.ready ?? true) ? 'True' : 'False' }],
    },
  };
}

function node(name: string, labels: Record<string, string> = {}, status: Manifest = {}): Manifest {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } }, spec: { podCIDRs: ['10.244.0.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }], ...status } };
}

const NODES = [node('node-a', { 'topology.kubernetes.io/zone': 'zone-a' }), node('node-b', { 'topology.kubernetes.io/zone': 'zone-b' })];

function load(manifests: Manifest[]): Cluster {
  return clusterFromManifests([{ file: 'test.yaml', text: manifests.map((m) => stringify(m)).join('---\n') }]);
}

function derived(cluster: Cluster): EndpointSlice[] {
  return cluster.endpointSlices.filter((s) => s.labels[MANAGED_BY_LABEL] === CONTROLLER_NAME);
}

/** One line per endpoint: "address ready/serving/terminating node zone hostname hints ports". */
function endpointLines(slices: readonly EndpointSlice[]): string[] {
  return slices.flatMap((s) =>
    s.endpoints.map((e) =>
      [
        `${s.addressType} ${e.addresses.join(',')}`,
        `r=${String(e.conditions.ready)} s=${String(e.conditions.serving)} t=${String(e.conditions.terminating)}`,
        `node=${e.nodeName ?? '-'} zone=${e.zone ?? '-'}`,
        ...(e.hostname !== undefined ? [`hostname=${e.hostname}`] : []),
        ...(e.hints ? [`hints=${e.hints.forZones.join('+') || '-'}/${e.hints.forNodes.join('+') || '-'}`] : []),
        `ports=${s.ports.map((p) => `${p.name}:${String(p.port)}/${p.protocol}`).join(',') || '-'}`,
        `pod=${e.targetRef?.kind}/${e.targetRef?.namespace}/${e.targetRef?.name}`,
      ].join(' '),
    ),
  );
}

function evidence(slices: readonly EndpointSlice[]): string {
  return JSON.stringify(slices.map((s) => ({ name: s.name, addressType: s.addressType, ports: s.ports, endpoints: s.endpoints })), null, 1);
}

interface Case {
  name: string;
  manifests: Manifest[];
  want: string[];
}

const cases: Case[] = [
  {
    name: 'a ready pod: ready, serving, not terminating; node, zone from the Node, target ref',
    manifests: [svc('web', {}), pod('web-1'), ...NODES],
    want: ['IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'a not-ready pod is listed, not ready and not serving',
    manifests: [svc('web', {}), pod('web-1', { ready: false }), ...NODES],
    want: ['IPv4 10.244.0.5 r=false s=false t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'a ready terminating pod: serving and terminating, never ready',
    manifests: [svc('web', {}), pod('web-1', { deleting: true }), ...NODES],
    want: ['IPv4 10.244.0.5 r=false s=true t=true node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'a not-ready terminating pod: only terminating',
    manifests: [svc('web', {}), pod('web-1', { deleting: true, ready: false }), ...NODES],
    want: ['IPv4 10.244.0.5 r=false s=false t=true node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'publishNotReadyAddresses: a not-ready pod is ready, still not serving',
    manifests: [svc('web', { publishNotReadyAddresses: true }), pod('web-1', { ready: false }), ...NODES],
    want: ['IPv4 10.244.0.5 r=true s=false t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'publishNotReadyAddresses: a terminating pod is ready too',
    manifests: [svc('web', { publishNotReadyAddresses: true }), pod('web-1', { deleting: true, ready: false }), ...NODES],
    want: ['IPv4 10.244.0.5 r=true s=false t=true node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'finished pods (Succeeded, Failed) and pods without an address are left out',
    manifests: [svc('web', {}), pod('done', { phase: 'Succeeded' }), pod('failed', { phase: 'Failed', ips: ['10.244.0.6'] }), pod('pending', { ips: [], phase: 'Pending' }), pod('web-1', { ips: ['10.244.0.7'] }), ...NODES],
    want: ['IPv4 10.244.0.7 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'pods of other namespaces and labels are not selected',
    manifests: [svc('web', {}), pod('other', { labels: { app: 'api' } }), { ...pod('elsewhere'), metadata: { name: 'elsewhere', namespace: 'prod', labels: { app: 'web' } } }, pod('web-1', { ips: ['10.244.0.8'] }), ...NODES],
    want: ['IPv4 10.244.0.8 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: 'a named targetPort resolves per pod; a pod without it goes into a slice without that port',
    manifests: [
      svc('web', { ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }, { name: 'metrics', port: 9100, protocol: 'TCP', targetPort: 9100 }] }),
      pod('v1', { ips: ['10.244.0.5'], ports: [{ name: 'http', containerPort: 8080 }] }),
      pod('v2', { ips: ['10.244.0.6'], ports: [{ name: 'http', containerPort: 9090 }] }),
      pod('v2b', { ips: ['10.244.0.7'], ports: [{ name: 'http', containerPort: 9090 }] }),
      pod('udp-only', { ips: ['10.244.0.8'], ports: [{ name: 'http', containerPort: 8080, protocol: 'UDP' }] }),
      ...NODES,
    ],
    want: [
      'IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP,metrics:9100/TCP pod=Pod/default/v1',
      'IPv4 10.244.0.6 r=true s=true t=false node=node-a zone=zone-a ports=http:9090/TCP,metrics:9100/TCP pod=Pod/default/v2',
      'IPv4 10.244.0.7 r=true s=true t=false node=node-a zone=zone-a ports=http:9090/TCP,metrics:9100/TCP pod=Pod/default/v2b',
      'IPv4 10.244.0.8 r=true s=true t=false node=node-a zone=zone-a ports=metrics:9100/TCP pod=Pod/default/udp-only',
    ],
  },
  {
    name: 'dual-stack: one slice per address type, each with the pod address of its family',
    manifests: [
      svc('web', { clusterIPs: ['10.96.0.10', 'fd00:10:96::10'], ipFamilies: ['IPv4', 'IPv6'] }),
      pod('both', { ips: ['10.244.0.5', 'fd00:10:244::5'] }),
      pod('v4-only', { ips: ['10.244.0.6'] }),
      ...NODES,
    ],
    want: [
      'IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/both',
      'IPv4 10.244.0.6 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/v4-only',
      'IPv6 fd00:10:244::5 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/both',
    ],
  },
  {
    name: 'an IPv6 service takes only the IPv6 addresses',
    manifests: [svc('web', { clusterIP: 'fd00:10:96::10', ipFamilies: ['IPv6'] }), pod('both', { ips: ['10.244.0.5', 'fd00:10:244::5'] }), ...NODES],
    want: ['IPv6 fd00:10:244::5 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/both'],
  },
  {
    name: "a pod on a node the cluster lacks is left out (the controller skips it until the pod GC removes it)",
    manifests: [svc('web', {}), pod('lost', { node: 'gone', ips: ['10.244.9.5'] }), pod('web-1'), ...NODES],
    want: ['IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/web-1'],
  },
  {
    name: '... unless publishNotReadyAddresses: then it is listed, without a zone',
    manifests: [svc('web', { publishNotReadyAddresses: true }), pod('lost', { node: 'gone', ips: ['10.244.9.5'] }), ...NODES],
    want: ['IPv4 10.244.9.5 r=true s=true t=false node=gone zone=- ports=http:8080/TCP pod=Pod/default/lost'],
  },
  {
    name: 'the hostname goes in when the pod names this service as its subdomain',
    manifests: [svc('db', { clusterIP: 'None' }), pod('db-0', { hostname: 'db-0', subdomain: 'db', ips: ['10.244.0.5'] }), pod('db-x', { hostname: 'db-x', subdomain: 'other', ips: ['10.244.0.6'] }), ...NODES],
    want: [
      'IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a hostname=db-0 ports=http:8080/TCP pod=Pod/default/db-0',
      'IPv4 10.244.0.6 r=true s=true t=false node=node-a zone=zone-a ports=http:8080/TCP pod=Pod/default/db-x',
    ],
  },
  {
    name: 'trafficDistribution PreferClose: every ready endpoint hinted for its own zone',
    manifests: [svc('web', { trafficDistribution: 'PreferClose' }), pod('a', { ips: ['10.244.0.5'] }), pod('b', { node: 'node-b', ips: ['10.244.1.5'] }), pod('c', { node: 'node-b', ips: ['10.244.1.6'], ready: false }), ...NODES],
    want: [
      'IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a hints=zone-a/- ports=http:8080/TCP pod=Pod/default/a',
      'IPv4 10.244.1.5 r=true s=true t=false node=node-b zone=zone-b hints=zone-b/- ports=http:8080/TCP pod=Pod/default/b',
      'IPv4 10.244.1.6 r=false s=false t=false node=node-b zone=zone-b ports=http:8080/TCP pod=Pod/default/c',
    ],
  },
  {
    name: 'trafficDistribution PreferSameNode: zone and node hints',
    manifests: [svc('web', { trafficDistribution: 'PreferSameNode' }), pod('a', { ips: ['10.244.0.5'] }), ...NODES],
    want: ['IPv4 10.244.0.5 r=true s=true t=false node=node-a zone=zone-a hints=zone-a/node-a ports=http:8080/TCP pod=Pod/default/a'],
  },
];

for (const c of cases) {
  test(`controller: ${c.name}`, () => {
    const slices = derived(load(c.manifests));
    assert.deepEqual(endpointLines(slices), c.want, evidence(slices));
  });
}

test('controller: no endpoints at all gives one placeholder slice per address type: no ports, no endpoints', () => {
  const slices = derived(load([svc('web', { clusterIPs: ['10.96.0.10', 'fd00:10:96::10'], ipFamilies: ['IPv4', 'IPv6'] }), ...NODES]));
  assert.deepEqual(slices.map((s) => `${s.addressType} ports=${s.ports.length} endpoints=${s.endpoints.length}`), ['IPv4 ports=0 endpoints=0', 'IPv6 ports=0 endpoints=0'], evidence(slices));
});

test('controller: Services without a selector, ExternalName Services and an empty selector get no slices', () => {
  const slices = derived(
    load([svc('manual', { selector: null }), svc('empty', { selector: {}, clusterIP: '10.96.0.11' }), svc('ext', { type: 'ExternalName', externalName: 'example.com', clusterIP: null, ipFamilies: null }), pod('web-1'), ...NODES]),
  );
  assert.deepEqual(slices, []);
});

const SPLIT_CASES = [
  { pods: 100, max: undefined, want: [100] },
  { pods: 101, max: undefined, want: [100, 1] },
  { pods: 250, max: undefined, want: [100, 100, 50] },
  { pods: 25, max: 10, want: [10, 10, 5] },
];
for (const c of SPLIT_CASES) {
  test(`controller: ${c.pods} endpoints, at most ${c.max ?? 100} per slice: slices of ${c.want.join(', ')}`, () => {
    const pods = Array.from({ length: c.pods }, (_, i) => pod(`web-${i}`, { ips: [`10.244.${i >> 8}.${i & 255}`] }));
    const cluster = clusterFromManifests([{ file: 'test.yaml', text: [svc('web', {}), ...pods, ...NODES].map((m) => stringify(m)).join('---\n') }], c.max !== undefined ? { maxEndpointsPerSlice: c.max } : {});
    const slices = derived(cluster);
    assert.deepEqual(slices.map((s) => s.endpoints.length), c.want);
    // Every pod exactly once, in pod order.
    assert.deepEqual(slices.flatMap((s) => s.endpoints.map((e) => e.targetRef?.name)), pods.map((p) => (p['metadata'] as { name: string }).name));
    assert.equal(new Set(slices.map((s) => s.name)).size, slices.length, 'slice names are unique');
  });
}

test('controller: slice names and labels as the controller writes them', () => {
  const cluster = load([
    svc('web', {}, { labels: { team: 'shop', 'kubernetes.io/service-name': 'evil', 'endpointslice.kubernetes.io/managed-by': 'actor' } }),
    svc('db', { clusterIP: 'None', selector: { app: 'db' } }),
    pod('web-1'),
    ...NODES,
  ]);
  const slices = derived(cluster);
  const suffix = `[${SAFE_ALPHABET}]{5}`;
  assert.match(slices[0]!.name, new RegExp(`^web-${suffix}$`));
  assert.match(slices[1]!.name, new RegExp(`^db-${suffix}$`));
  assert.deepEqual(slices[0]!.labels, { team: 'shop', 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
  assert.deepEqual(slices[1]!.labels, { 'service.kubernetes.io/headless': '', 'kubernetes.io/service-name': 'db', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
  assert.equal(slices[0]!.serviceName, 'web');
});

test('controller: the same input gives the same slices, names included; another seed other names', () => {
  const manifests = [svc('web', {}), ...Array.from({ length: 150 }, (_, i) => pod(`web-${i}`, { ips: [`10.244.0.${i}`] })), ...NODES];
  const a = load(manifests);
  const b = load(manifests);
  assert.deepEqual(derived(a), derived(b));
  const text = manifests.map((m) => stringify(m)).join('---\n');
  const other = clusterFromManifests([{ file: 'test.yaml', text }], { seed: 7 });
  assert.notDeepEqual(derived(other).map((s) => s.name), derived(a).map((s) => s.name));
});

test('controller: given EndpointSlices for a service win over its pods, and kpsim says so', () => {
  const given = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-given', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.244.3.3'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
  const cluster = load([svc('web', {}), pod('web-1'), given, ...NODES]);
  assert.deepEqual(derived(cluster), []);
  assert.deepEqual(cluster.endpointSlices.map((s) => s.name), ['web-given']);
  assert.deepEqual(
    cluster.warnings.map((w) => `${w.object}: ${w.path}: ${w.message}`),
    ['Service default/web: spec.selector: EndpointSlices are given for this service (web-given): they are used, not the 1 pod its selector app=web matches'],
  );
});

test('controller: slices the controller wrote itself (a dump of a running cluster) win without a word', () => {
  const given = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'web-abcde', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.244.3.3'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
  const cluster = load([svc('web', {}), pod('web-1'), given, ...NODES]);
  assert.deepEqual(cluster.endpointSlices.map((s) => s.name), ['web-abcde']);
  assert.deepEqual(cluster.warnings.map((w) => `${w.object}: ${w.path}: ${w.message}`), []);
});

/** Nodes for topology-aware hints: Ready, a zone, allocatable CPU. */
function zonedNode(name: string, zone: string, cpu: string): Manifest {
  return node(name, { 'topology.kubernetes.io/zone': zone }, { conditions: [{ type: 'Ready', status: 'True' }], allocatable: { cpu } });
}

const AUTO = { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } };

interface HintCase {
  name: string;
  nodes: Manifest[];
  /** Node of each ready pod, in order. */
  podNodes: string[];
  /** The zone hint of each endpoint, in pod order; [] when the controller adds none. */
  want: string[];
  warning?: string;
}

// topologycache_test.go's shapes: CPU shares per zone decide each zone's share of the endpoints.
const hintCases: HintCase[] = [
  {
    name: 'equal CPU in two zones, endpoints balanced: each endpoint keeps its own zone',
    nodes: [zonedNode('n-a', 'zone-a', '4'), zonedNode('n-b', 'zone-b', '4')],
    podNodes: ['n-a', 'n-a', 'n-b', 'n-b'],
    want: ['zone-a', 'zone-a', 'zone-b', 'zone-b'],
  },
  {
    name: 'equal CPU, 1 endpoint in zone-a and 3 in zone-b: one of zone-b is given to zone-a',
    nodes: [zonedNode('n-a', 'zone-a', '4'), zonedNode('n-b', 'zone-b', '4')],
    podNodes: ['n-a', 'n-b', 'n-b', 'n-b'],
    want: ['zone-a', 'zone-a', 'zone-b', 'zone-b'],
  },
  {
    name: 'three zones, CPU 2:1:1, 8 endpoints all in zone-a: 4 stay, 2 go to each other zone',
    nodes: [zonedNode('n-a', 'zone-a', '8'), zonedNode('n-b', 'zone-b', '4'), zonedNode('n-c', 'zone-c', '4000m')],
    podNodes: Array.from({ length: 8 }, () => 'n-a'),
    want: ['zone-b', 'zone-b', 'zone-c', 'zone-c', 'zone-a', 'zone-a', 'zone-a', 'zone-a'],
  },
  {
    name: 'fewer endpoints than zones: no hints',
    nodes: [zonedNode('n-a', 'zone-a', '4'), zonedNode('n-b', 'zone-b', '4'), zonedNode('n-c', 'zone-c', '4')],
    podNodes: ['n-a', 'n-b'],
    want: [],
    warning: 'Insufficient number of endpoints (2 endpoints, 3 zones)',
  },
  {
    name: 'a node without allocatable CPU: insufficient node information, no hints',
    nodes: [zonedNode('n-a', 'zone-a', '4'), node('n-b', { 'topology.kubernetes.io/zone': 'zone-b' }, { conditions: [{ type: 'Ready', status: 'True' }] })],
    podNodes: ['n-a', 'n-b'],
    want: [],
    warning: 'Insufficient Node information: allocatable CPU or zone not specified on one or more nodes',
  },
  {
    name: 'nodes in one zone: no hints',
    nodes: [zonedNode('n-a', 'zone-a', '4'), zonedNode('n-a2', 'zone-a', '4')],
    podNodes: ['n-a', 'n-a2'],
    want: [],
    warning: 'Insufficient Node information: allocatable CPU or zone not specified on one or more nodes',
  },
];

for (const c of hintCases) {
  test(`controller: topology-aware hints (topology-mode: Auto): ${c.name}`, () => {
    const pods = c.podNodes.map((n, i) => pod(`web-${i}`, { node: n, ips: [`10.244.0.${10 + i}`] }));
    const cluster = load([svc('web', {}, AUTO), ...pods, ...c.nodes]);
    const slices = derived(cluster);
    const hints = slices.flatMap((s) => s.endpoints.filter((e) => e.hints).map((e) => e.hints!.forZones.join('+')));
    assert.deepEqual(hints, c.want, evidence(slices));
    const warnings = cluster.warnings.filter((w) => w.path === 'metadata.annotations').map((w) => w.message);
    assert.deepEqual(warnings, c.warning ? [`topology-aware hints asked for, but the controller adds none to the IPv4 slices: ${c.warning}`] : []);
  });
}

test('controller: the deprecated topology-aware-hints annotation wins over topology-mode', () => {
  const nodes = [zonedNode('n-a', 'zone-a', '4'), zonedNode('n-b', 'zone-b', '4')];
  const pods = [pod('a', { node: 'n-a', ips: ['10.244.0.5'] }), pod('b', { node: 'n-b', ips: ['10.244.1.5'] })];
  const off = load([svc('web', {}, { annotations: { 'service.kubernetes.io/topology-aware-hints': 'disabled', 'service.kubernetes.io/topology-mode': 'Auto' } }), ...pods, ...nodes]);
  assert.equal(derived(off).flatMap((s) => s.endpoints).filter((e) => e.hints).length, 0);
  const on = load([svc('web', {}, { annotations: { 'service.kubernetes.io/topology-aware-hints': 'auto' } }), ...pods, ...nodes]);
  assert.equal(derived(on).flatMap((s) => s.endpoints).filter((e) => e.hints).length, 2);
});

test('deriveEndpointSlices: a live store calls it with what it holds; a taken name is never reused', () => {
  const cluster = load([svc('web', {}), pod('web-1'), ...NODES]);
  const first = deriveEndpointSlices({ services: cluster.services, pods: cluster.pods ?? [], nodes: cluster.nodes });
  const name = first.slices[0]!.name;
  // Another service's slice already holds that name: the controller draws another.
  const squatter: EndpointSlice = { ...first.slices[0]!, serviceName: 'other', labels: { 'kubernetes.io/service-name': 'other' } };
  const second = deriveEndpointSlices({ services: cluster.services, pods: cluster.pods ?? [], nodes: cluster.nodes, givenSlices: [squatter] });
  assert.notEqual(second.slices[0]!.name, name);
  assert.match(second.slices[0]!.name, /^web-/);
});
