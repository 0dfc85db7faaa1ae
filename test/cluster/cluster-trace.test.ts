/**
 * Cluster-wide packet flows, one table row per service kind and traffic policy: the entry nodes
 * and their shares, the endpoints with their probabilities, whether each delivery crossed nodes
 * and the source address the pod sees, in iptables, IPVS and nftables mode.
 *
 * The cluster: three nodes, each with a /24 of the pod network 10.244.0.0/16 (the local
 * detector), and a service for each case.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { type ClusterTraceResult, traceCluster } from '../../src/cluster/cluster-trace.js';
import { HealthChecks, healthCheckBody } from '../../src/cluster/health-check.js';
import { isKpsimError } from '../../src/errors.js';
import type { Cluster } from '../../src/model/types.js';
import { compileNode } from '../../src/node/compile-node.js';
import type { RulesMode } from '../../src/node/mode-driver.js';
import { modeDriver } from '../../src/node/modes.js';
import type { Packet } from '../../src/trace/types.js';
import { type Manifest, clusterOf, ep, makeNode, makeProxyConfig, makeService, makeSlice, tcpPort } from '../helpers/cluster-builders.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

const NODES = [
  { name: 'node-a', ip: '192.168.0.2', podCIDR: '10.244.0.0/24', bridge: '10.244.0.1' },
  { name: 'node-b', ip: '192.168.0.3', podCIDR: '10.244.1.0/24', bridge: '10.244.1.1' },
  { name: 'node-c', ip: '192.168.0.4', podCIDR: '10.244.2.0/24', bridge: '10.244.2.1' },
] as const;
const OUTSIDE = '203.0.113.9';

function service(name: string, mutate: Parameters<typeof makeService>[2]): Manifest {
  return makeService('ns', name, mutate);
}

function endpoints(name: string, eps: ReturnType<typeof ep>[]): Manifest {
  return makeSlice('ns', name, 1, (s) => {
    s.endpoints = eps;
    s.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }];
  });
}

function manifests(clusterCIDR: string | undefined): Manifest[] {
  return [
    ...NODES.map((n) => makeNode(n.name, [n.ip], (node) => { node.spec.podCIDRs = [n.podCIDR]; })),
    makeProxyConfig((c) => { if (clusterCIDR !== undefined) c.clusterCIDR = clusterCIDR; }),
    service('web', (s) => { s.spec.clusterIP = '10.96.0.10'; s.spec.ports = [tcpPort('http', 80)]; }),
    endpoints('web', [ep('10.244.0.5', 'node-a'), ep('10.244.1.5', 'node-b')]),
    service('np', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '10.96.0.11'; s.spec.ports = [tcpPort('http', 80, { nodePort: 30080 })]; }),
    endpoints('np', [ep('10.244.1.6', 'node-b')]),
    service('np-local', (s) => {
      s.spec.type = 'NodePort';
      s.spec.externalTrafficPolicy = 'Local';
      s.spec.clusterIP = '10.96.0.12';
      s.spec.ports = [tcpPort('http', 80, { nodePort: 30081 })];
    }),
    endpoints('np-local', [ep('10.244.1.7', 'node-b')]),
    service('lb-local', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.externalTrafficPolicy = 'Local';
      s.spec.clusterIP = '10.96.0.13';
      s.spec.healthCheckNodePort = 30500;
      s.spec.ports = [tcpPort('http', 80, { nodePort: 30082 })];
      s.status.loadBalancer.ingress = [{ ip: '198.51.100.10' }];
    }),
    endpoints('lb-local', [
      ep('10.244.1.8', 'node-b'),
      ep('10.244.2.8', 'node-c'),
      ep('10.244.2.9', 'node-c', { ready: false, serving: true, terminating: true }),
      ep('10.244.0.8', 'node-a', { ready: false, serving: true, terminating: true }),
    ]),
    service('ext', (s) => { s.spec.clusterIP = '10.96.0.14'; s.spec.externalIPs = ['203.0.113.50']; s.spec.ports = [tcpPort('http', 80)]; }),
    endpoints('ext', [ep('10.244.0.9', 'node-a')]),
    service('itp', (s) => { s.spec.clusterIP = '10.96.0.15'; s.spec.internalTrafficPolicy = 'Local'; s.spec.ports = [tcpPort('http', 80)]; }),
    endpoints('itp', [ep('10.244.0.10', 'node-a'), ep('10.244.1.10', 'node-b')]),
    service('lb', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.clusterIP = '10.96.0.16';
      s.spec.ports = [tcpPort('http', 80, { nodePort: 30083 })];
      s.status.loadBalancer.ingress = [{ ip: '198.51.100.11' }];
    }),
    endpoints('lb', [ep('10.244.0.11', 'node-a')]),
  ];
}

const withDetector = clusterOf(manifests('10.244.0.0/16'));
const withoutDetector = clusterOf(manifests(undefined));

const node = (name: string): (typeof NODES)[number] => NODES.find((n) => n.name === name)!;

interface Want {
  readonly verdict: string;
  /** Entry node → share. */
  readonly entries: Readonly<Record<string, number>>;
  /** Endpoint → total probability. */
  readonly probabilities: Readonly<Record<string, number>>;
  /** One per delivery: entry node, endpoint, its node, crossNode, source seen by the pod. */
  readonly deliveries: readonly (readonly [string, string, string | null, boolean, string])[];
  /** Entry node → [health check status, local endpoints]. */
  readonly healthChecks?: Readonly<Record<string, readonly [number, number]>>;
  /** Whether every reply reaches the client. */
  readonly repliesReach?: boolean;
}

interface Case {
  readonly name: string;
  readonly cluster?: Cluster;
  readonly packet: Omit<Packet, 'proto'>;
  readonly via?: readonly string[];
  readonly modes?: readonly RulesMode[];
  readonly want: Want;
  /** IPVS mode's answer, where it is not iptables mode's. */
  readonly ipvs?: Partial<Want> & { readonly why: string };
}

const cases: Case[] = [
  {
    name: 'ClusterIP from a pod on a node with a local endpoint: the pod\'s node, both endpoints, sources kept',
    packet: { src: '10.244.0.20', dst: '10.96.0.10', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-a': 1 },
      probabilities: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      deliveries: [
        ['node-a', '10.244.0.5:8080', 'node-a', false, '10.244.0.20'],
        ['node-a', '10.244.1.5:8080', 'node-b', true, '10.244.0.20'],
      ],
      repliesReach: true,
    },
  },
  {
    name: 'ClusterIP from a pod on a node without a local endpoint: every delivery crosses nodes',
    packet: { src: '10.244.2.20', dst: '10.96.0.10', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-c': 1 },
      probabilities: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      deliveries: [
        ['node-c', '10.244.0.5:8080', 'node-a', true, '10.244.2.20'],
        ['node-c', '10.244.1.5:8080', 'node-b', true, '10.244.2.20'],
      ],
      repliesReach: true,
    },
  },
  {
    name: 'NodePort to a node without endpoints, externalTrafficPolicy Cluster: forwarded to the endpoint\'s node, masqueraded to the entry node\'s address',
    packet: { src: OUTSIDE, dst: node('node-a').ip, dport: 30080 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-a': 1 },
      probabilities: { '10.244.1.6:8080': 1 },
      deliveries: [['node-a', '10.244.1.6:8080', 'node-b', true, node('node-a').ip]],
      repliesReach: true,
    },
  },
  {
    name: 'NodePort to a node without endpoints, externalTrafficPolicy Local: dropped there',
    packet: { src: OUTSIDE, dst: node('node-a').ip, dport: 30081 },
    want: { verdict: 'DROP', entries: { 'node-a': 1 }, probabilities: {}, deliveries: [] },
    ipvs: {
      verdict: 'DNAT',
      probabilities: { '10.244.1.7:8080': 1 },
      deliveries: [['node-a', '10.244.1.7:8080', 'node-b', true, OUTSIDE]],
      repliesReach: false,
      why: 'IPVS mode falls back to the cluster endpoints when a Local virtual server has no local one (kubernetes#97081), without masquerading: the reply leaves node-b straight for the client',
    },
  },
  {
    name: 'NodePort to the node with the endpoint, externalTrafficPolicy Local: delivered there, client source kept',
    packet: { src: OUTSIDE, dst: node('node-b').ip, dport: 30081 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-b': 1 },
      probabilities: { '10.244.1.7:8080': 1 },
      deliveries: [['node-b', '10.244.1.7:8080', 'node-b', false, OUTSIDE]],
      repliesReach: true,
    },
  },
  {
    name: 'LoadBalancer, externalTrafficPolicy Local: the nodes whose health check answers 200 (a ready local endpoint), each to its own endpoints, client source kept',
    packet: { src: OUTSIDE, dst: '198.51.100.10', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-b': 0.5, 'node-c': 0.5 },
      probabilities: { '10.244.1.8:8080': 0.5, '10.244.2.8:8080': 0.5 },
      deliveries: [
        ['node-b', '10.244.1.8:8080', 'node-b', false, OUTSIDE],
        ['node-c', '10.244.2.8:8080', 'node-c', false, OUTSIDE],
      ],
      healthChecks: { 'node-b': [200, 1], 'node-c': [200, 1] },
      repliesReach: true,
    },
  },
  {
    name: 'LoadBalancer, externalTrafficPolicy Cluster: every node in equal shares, masqueraded on each (the bridge address on the endpoint\'s own node)',
    packet: { src: OUTSIDE, dst: '198.51.100.11', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-a': 1 / 3, 'node-b': 1 / 3, 'node-c': 1 / 3 },
      probabilities: { '10.244.0.11:8080': 1 },
      deliveries: [
        ['node-a', '10.244.0.11:8080', 'node-a', false, node('node-a').bridge],
        ['node-b', '10.244.0.11:8080', 'node-a', true, node('node-b').ip],
        ['node-c', '10.244.0.11:8080', 'node-a', true, node('node-c').ip],
      ],
      repliesReach: true,
    },
  },
  {
    name: 'external IP from outside: routed to every node, masqueraded as for node ports',
    packet: { src: OUTSIDE, dst: '203.0.113.50', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-a': 1 / 3, 'node-b': 1 / 3, 'node-c': 1 / 3 },
      probabilities: { '10.244.0.9:8080': 1 },
      deliveries: [
        ['node-a', '10.244.0.9:8080', 'node-a', false, node('node-a').bridge],
        ['node-b', '10.244.0.9:8080', 'node-a', true, node('node-b').ip],
        ['node-c', '10.244.0.9:8080', 'node-a', true, node('node-c').ip],
      ],
      repliesReach: true,
    },
  },
  {
    name: 'internalTrafficPolicy Local from a pod on a node with a local endpoint: only that one',
    packet: { src: '10.244.1.20', dst: '10.96.0.15', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-b': 1 },
      probabilities: { '10.244.1.10:8080': 1 },
      deliveries: [['node-b', '10.244.1.10:8080', 'node-b', false, '10.244.1.20']],
      repliesReach: true,
    },
  },
  {
    name: 'internalTrafficPolicy Local from a pod on a node without one: dropped',
    packet: { src: '10.244.2.20', dst: '10.96.0.15', dport: 80 },
    want: { verdict: 'DROP', entries: { 'node-c': 1 }, probabilities: {}, deliveries: [] },
    ipvs: {
      verdict: 'REJECT',
      why: 'the ClusterIP virtual server has no real servers: without external addresses the port uses no cluster endpoints to fall back to, and IPVS rejects a connection it cannot schedule',
    },
  },
  {
    name: 'hairpin: a pod reaching its own service lands on itself, masqueraded to its node\'s bridge address',
    packet: { src: '10.244.1.6', dst: '10.96.0.11', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-b': 1 },
      probabilities: { '10.244.1.6:8080': 1 },
      deliveries: [['node-b', '10.244.1.6:8080', 'node-b', false, node('node-b').bridge]],
      repliesReach: true,
    },
  },
  {
    name: 'a node reaching a ClusterIP: the node itself, masqueraded (off the pod network)',
    packet: { src: node('node-c').ip, dst: '10.96.0.11', dport: 80 },
    want: {
      verdict: 'DNAT',
      entries: { 'node-c': 1 },
      probabilities: { '10.244.1.6:8080': 1 },
      deliveries: [['node-c', '10.244.1.6:8080', 'node-b', true, node('node-c').ip]],
      repliesReach: true,
    },
  },
  {
    name: 'ClusterIP from outside through a route to node-c: masqueraded (off the pod network), so the reply comes back through node-c',
    packet: { src: OUTSIDE, dst: '10.96.0.10', dport: 80 },
    via: ['node-c'],
    want: {
      verdict: 'DNAT',
      entries: { 'node-c': 1 },
      probabilities: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      deliveries: [
        ['node-c', '10.244.0.5:8080', 'node-a', true, node('node-c').ip],
        ['node-c', '10.244.1.5:8080', 'node-b', true, node('node-c').ip],
      ],
      repliesReach: true,
    },
  },
  {
    name: 'ClusterIP from outside without a local detector: not masqueraded, so the reply skips node-c\'s conntrack and the client drops it',
    cluster: withoutDetector,
    packet: { src: OUTSIDE, dst: '10.96.0.10', dport: 80 },
    via: ['node-c'],
    want: {
      verdict: 'DNAT',
      entries: { 'node-c': 1 },
      probabilities: { '10.244.0.5:8080': 0.5, '10.244.1.5:8080': 0.5 },
      deliveries: [
        ['node-c', '10.244.0.5:8080', 'node-a', true, OUTSIDE],
        ['node-c', '10.244.1.5:8080', 'node-b', true, OUTSIDE],
      ],
      repliesReach: false,
    },
  },
];

function outcomeOf(r: ClusterTraceResult): Want {
  return {
    verdict: r.verdict,
    entries: Object.fromEntries(r.nodes.map((n) => [n.node, n.share])),
    probabilities: r.probabilities,
    deliveries: r.deliveries.map((d) => [d.entryNode, d.endpoint, d.node, d.crossNode, d.sourceSeenByPod] as const),
    ...(r.nodes.some((n) => n.healthCheck) ? { healthChecks: Object.fromEntries(r.nodes.map((n) => [n.node, [n.healthCheck!.status, n.healthCheck!.localEndpoints] as const])) } : {}),
    ...(r.deliveries.length > 0 ? { repliesReach: r.deliveries.every((d) => d.reply.reachesClient) } : {}),
  };
}

/** Probabilities compared to 1e-9: the kernel keeps 31-bit fractions. */
function rounded(w: Want): Want {
  const round = (p: number): number => Math.round(p * 1e9) / 1e9;
  return {
    ...w,
    entries: Object.fromEntries(Object.entries(w.entries).map(([k, v]) => [k, round(v)])),
    probabilities: Object.fromEntries(Object.entries(w.probabilities).map(([k, v]) => [k, round(v)])),
  };
}

for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
  for (const c of cases) {
    test(`${mode}: ${c.name}`, () => {
      const view = new ClusterView(c.cluster ?? withDetector);
      const result = traceCluster(view, { proto: 'tcp', ...c.packet }, { mode, ...(c.via ? { via: c.via } : {}) });
      const { why, ...ipvsWant } = c.ipvs ?? { why: '' };
      const want: Want = mode === 'ipvs' ? { ...c.want, ...ipvsWant } : c.want;
      const hops = result.nodes.map((n) => `${n.node}:\n${n.trace.hops.map((h) => `  ${h.table} ${h.rule}`).join('\n')}`).join('\n');
      assert.deepEqual(rounded(outcomeOf(result)), rounded(want), `${why ? `(${why}) ` : ''}matched:\n${hops}`);
    });
  }
}

test('the health check answer is kube-proxy\'s: 200 with ready local endpoints, 503 with none or only terminating ones, its JSON body', () => {
  const checks = new HealthChecks(withDetector);
  const svc = withDetector.services.find((s) => s.name === 'lb-local')!;
  const got = NODES.map((n) => checks.answer(svc, n.name));
  assert.deepEqual(got.map((a) => [a?.status, a?.localEndpoints]), [[503, 0], [200, 1], [200, 1]], 'node-a has only a terminating endpoint');
  assert.equal(got[1]!.body, '{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "lb-local"\n\t},\n\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}');
  assert.equal(healthCheckBody('ns', 'x', 0), got[0]!.body.replace('lb-local', 'x'));
  assert.equal(checks.answer(withDetector.services.find((s) => s.name === 'lb')!, 'node-a'), undefined, 'no health check for externalTrafficPolicy Cluster');
});

test('an outside client to a ClusterIP needs --via: the error says so', () => {
  const view = new ClusterView(withDetector);
  assert.throws(() => traceCluster(view, { proto: 'tcp', src: OUTSIDE, dst: '10.96.0.10', dport: 80 }, { mode: 'iptables' }), (e: unknown) => {
    assert.ok(isKpsimError(e), String(e));
    assert.equal(e.code, 'KPSIM_ERR_USAGE_MISSING_FLAG');
    assert.match(e.message, /10\.96\.0\.10 is a ClusterIP.*--via NODE/);
    return true;
  });
});

test('each entry node\'s trace is the trace of the node compiled whole and alone (generated cluster, every kind of entry)', () => {
  const cluster = generatedCluster({ nodes: 12, pods: 600, services: 150, seed: 12 });
  const view = new ClusterView(cluster);
  const lbLocal = cluster.services.find((s) => s.name === 'ingress-controller')!;
  const lb = cluster.services.find((s) => s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Cluster')!;
  const np = cluster.services.find((s) => s.type === 'NodePort' && s.externalTrafficPolicy === 'Local')!;
  const nodeIP = cluster.nodes[3]!.addresses[0]!.address;
  const packets: Packet[] = [
    { proto: 'tcp', src: OUTSIDE, dst: lbLocal.loadBalancerIngress[0]!.ip!, dport: 80 },
    { proto: 'tcp', src: OUTSIDE, dst: lb.loadBalancerIngress[0]!.ip!, dport: lb.ports[0]!.port },
    { proto: 'tcp', src: OUTSIDE, dst: nodeIP, dport: np.ports[0]!.nodePort },
    { proto: 'udp', src: cluster.endpointSlices[5]!.endpoints[0]!.addresses[0]!, dst: '10.96.0.10', dport: 53 },
  ];
  for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
    for (const packet of packets) {
      const result = traceCluster(view, packet, { mode });
      assert.ok(result.nodes.length > 0, `${mode} ${JSON.stringify(packet)}: no entry node`);
      for (const entry of result.nodes) {
        const whole = modeDriver(mode).tracer(compileNode(cluster, mode, { node: entry.node })).trace(packet);
        assert.deepStrictEqual(entry.trace, whole, `${mode} ${JSON.stringify(packet)} on ${entry.node}: the cluster trace differs from the node's whole rules`);
      }
    }
  }
});
