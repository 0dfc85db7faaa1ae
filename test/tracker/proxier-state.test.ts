/**
 * buildProxierState: what kube-proxy's ServicePortMap and EndpointsMap hold for one node and
 * family (pkg/proxy/serviceport.go, pkg/proxy/endpointslicecache.go).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { buildFamilyServicePorts, buildProxierState, buildProxierStates, collectEndpoints, familiesInUse, resolveNode, servicePortKey, servicesPerFamily } from '../../src/tracker/proxier-state.js';

const node = `apiVersion: v1
kind: Node
metadata: {name: test-node}
status:
  addresses: [{type: InternalIP, address: 192.168.0.2}, {type: InternalIP, address: "2001:db8::1"}]
`;
const config = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clusterCIDR: 10.0.0.0/8,fd00:10::/64
`;

function state(manifests: string, family: 4 | 6 = 4) {
  const cluster = clusterFromManifests([
    { file: 'node.yaml', text: node },
    { file: 'kp.yaml', text: config },
    { file: 'objects.yaml', text: manifests },
  ]);
  return buildProxierState(cluster, resolveNode(cluster, { node: 'test-node' }), family);
}

const summary = (s: ReturnType<typeof state>) =>
  s.servicePorts.map((sp) => `${sp.info.spn}/${sp.info.protocol} ${sp.info.clusterIP}:${sp.info.port} -> ${sp.endpoints.map((e) => `${e.endpoint}${e.terminating ? '(t)' : ''}${e.isLocal ? '(l)' : ''}`).join(' ')}`);

test('slice ports join service ports by name and protocol; endpoints sort as text', () => {
  const s = state(`apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec:
  clusterIP: 172.30.0.41
  ports: [{name: p80, port: 80, protocol: TCP}, {name: p53, port: 53, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc1-a, namespace: ns1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
endpoints:
- {addresses: [10.1.1.1], nodeName: test-node}
- {addresses: [10.1.1.11]}
ports: [{name: p80, port: 8080, protocol: TCP}, {name: p53, port: 5353, protocol: TCP}, {name: p99, port: 99, protocol: UDP}]
`);
  // "10.1.1.11:8080" sorts before "10.1.1.1:8080" as text, as kube-proxy sorts them.
  assert.deepEqual(summary(s), ['ns1/svc1:p53/UDP 172.30.0.41:53 -> ', 'ns1/svc1:p80/TCP 172.30.0.41:80 -> 10.1.1.11:8080 10.1.1.1:8080(l)']);
});

test('a non-terminating endpoint replaces a terminating one with the same address', () => {
  const slices = (first: string, second: string) => `apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec: {clusterIP: 172.30.0.41, ports: [{name: p80, port: 80, protocol: TCP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a, namespace: ns1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {terminating: ${first}}}]
ports: [{name: p80, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b, namespace: ns1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {terminating: ${second}}}]
ports: [{name: p80, port: 80, protocol: TCP}]
`;
  assert.deepEqual(summary(state(slices('false', 'true'))), ['ns1/svc1:p80/TCP 172.30.0.41:80 -> 10.0.0.1:80']);
  assert.deepEqual(summary(state(slices('true', 'false'))), ['ns1/svc1:p80/TCP 172.30.0.41:80 -> 10.0.0.1:80']);
  assert.deepEqual(summary(state(slices('true', 'true'))), ['ns1/svc1:p80/TCP 172.30.0.41:80 -> 10.0.0.1:80(t)']);
});

test('of endpoints with one address in several slices, the cluster-wide build keeps the one the endpoint map keeps', () => {
  // Three slices list 10.0.0.1 (told apart by zone), with every mix of terminating; 10.0.0.2 once.
  // collectEndpoints is the endpoint map's rule (a later non-terminating entry wins, a
  // terminating one never replaces); buildProxierState sorts each port's list and keeps the same one.
  for (let mix = 0; mix < 8; mix++) {
    const terminating = [0, 1, 2].map((k) => ((mix >> k) & 1) === 1);
    const slice = (k: number) => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s${k}, namespace: ns1, labels: {kubernetes.io/service-name: svc1}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], zone: z${k}, conditions: {terminating: ${terminating[k]}}}${k === 1 ? ', {addresses: [10.0.0.2], zone: only}' : ''}]
ports: [{name: p80, port: 80, protocol: TCP}]
`;
    const text = `apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec: {clusterIP: 172.30.0.41, ports: [{name: p80, port: 80, protocol: TCP}]}
---
${[0, 1, 2].map(slice).join('---\n')}`;
    const cluster = clusterFromManifests([{ file: 'node.yaml', text: node }, { file: 'objects.yaml', text }]);
    const built = buildProxierState(cluster, resolveNode(cluster, { node: 'test-node' }), 4).servicePorts[0]!.endpoints;
    const kept = [...collectEndpoints(cluster.endpointSlices, 4, 'test-node').get(servicePortKey({ namespace: 'ns1', name: 'svc1', port: 'p80', protocol: 'TCP' }))!.values()];
    const show = (eps: readonly { endpoint: string; zone?: string; terminating: boolean }[]) => eps.map((e) => `${e.endpoint} ${e.zone}${e.terminating ? ' (t)' : ''}`).sort();
    assert.deepEqual(show(built), show(kept), `terminating ${terminating.join(', ')}`);
  }
});

test('headless, ExternalName and other-family services get no service ports', () => {
  const objects = `apiVersion: v1
kind: Service
metadata: {name: headless, namespace: ns1}
spec: {clusterIP: None, ports: [{port: 80, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: ns1}
spec: {type: ExternalName, externalName: example.com}
---
apiVersion: v1
kind: Service
metadata: {name: v6only, namespace: ns1}
spec: {clusterIP: "fd00:172:30::41", ports: [{port: 80, protocol: TCP}]}
---
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: ns1}
spec: {clusterIPs: [172.30.0.42, "fd00:172:30::42"], ports: [{port: 80, protocol: TCP}]}
`;
  assert.deepEqual(summary(state(objects, 4)), ['ns1/dual/TCP 172.30.0.42:80 -> ']);
  assert.deepEqual(summary(state(objects, 6)), ['ns1/dual/TCP fd00:172:30::42:80 -> ', 'ns1/v6only/TCP fd00:172:30::41:80 -> ']);
});

test('policies, VIPs and source ranges are filtered per family', () => {
  const objects = `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ns1}
spec:
  type: LoadBalancer
  clusterIPs: [172.30.0.50, "fd00:172:30::50"]
  externalTrafficPolicy: Local
  healthCheckNodePort: 30000
  externalIPs: [192.168.99.11, "2001:db8::99"]
  loadBalancerSourceRanges: [" 203.0.113.0/25 ", "2001:db8:1::/64"]
  ports: [{name: p80, port: 80, protocol: TCP, nodePort: 3001}]
status:
  loadBalancer:
    ingress: [{ip: 1.2.3.4}, {ip: 5.6.7.8, ipMode: Proxy}, {ip: "2001:db8:2::1"}]
`;
  const info = state(objects, 4).servicePorts[0]!.info;
  assert.deepEqual(
    [info.externalIPs, info.loadBalancerVIPs, info.loadBalancerSourceRanges, info.externalPolicyLocal, info.healthCheckNodePort, info.usesLocalEndpoints],
    [['192.168.99.11'], ['1.2.3.4'], ['203.0.113.0/25'], true, 30000, true],
  );
  const info6 = state(objects, 6).servicePorts[0]!.info;
  assert.deepEqual([info6.externalIPs, info6.loadBalancerVIPs, info6.loadBalancerSourceRanges], [['2001:db8::99'], ['2001:db8:2::1'], ['2001:db8:1::/64']]);
});

test('the node, its addresses and the local detector', () => {
  const s4 = state('');
  const s6 = state('', 6);
  assert.deepEqual(
    [s4.nodeName, s4.nodeIPs, s4.localAddresses, s4.localDetector, s4.masqueradeMark],
    ['test-node', ['192.168.0.2'], ['192.168.0.2', '127.0.0.1'], { mode: 'ClusterCIDR', cidrs: ['10.0.0.0/8'] }, '0x4000'],
  );
  assert.deepEqual([s6.nodeIPs, s6.localAddresses, s6.localDetector?.cidrs], [['2001:db8::1'], ['2001:db8::1', '::1'], ['fd00:10::/64']]);
});

test('an unknown --node is an error naming the known nodes', () => {
  const cluster = clusterFromManifests([{ file: 'node.yaml', text: node }]);
  assert.throws(
    () => resolveNode(cluster, { node: 'nope' }),
    (e: unknown) => e instanceof KpsimError && e.code === 'KPSIM_ERR_CONFIG_UNKNOWN_NODE' && e.message === 'node "nope" is not in the cluster (nodes: test-node); give its addresses with --node-ip',
  );
  assert.deepEqual(resolveNode(cluster, { node: 'nope', nodeIPs: ['10.9.9.9'] }).ips, ['10.9.9.9']);
});

// proxyutil.IsVIPMode: the LoadBalancerIPMode gate decides whether an ipMode Proxy ingress is
// programmed; every proxy mode takes ServicePortInfo.loadBalancerVIPs, so they agree.
const ipModeGateCases: { gate: string; want: string[]; warns: boolean }[] = [
  { gate: '', want: ['1.2.3.4', '1.2.3.6'], warns: false },
  { gate: 'featureGates: {LoadBalancerIPMode: true}\n', want: ['1.2.3.4', '1.2.3.6'], warns: false },
  { gate: 'featureGates: {LoadBalancerIPMode: false}\n', want: ['1.2.3.4', '1.2.3.5', '1.2.3.6'], warns: true },
];
for (const c of ipModeGateCases) {
  test(`LoadBalancerIPMode ${c.gate === '' ? 'by default' : c.gate.trim()}: load-balancer VIPs ${c.want.join(', ')}`, () => {
    const cluster = clusterFromManifests([
      { file: 'node.yaml', text: node },
      { file: 'kp.yaml', text: `${config}${c.gate}` },
      { file: 'lb.yaml', text: `apiVersion: v1
kind: Service
metadata: {name: lb, namespace: ns1}
spec:
  type: LoadBalancer
  clusterIP: 172.30.0.50
  ports: [{name: p80, port: 80, protocol: TCP, nodePort: 3001}]
status:
  loadBalancer:
    ingress: [{ip: 1.2.3.4, ipMode: VIP}, {ip: 1.2.3.5, ipMode: Proxy}, {ip: 1.2.3.6}]
` },
    ]);
    const info = buildProxierState(cluster, resolveNode(cluster, { node: 'test-node' }), 4).servicePorts[0]!.info;
    assert.deepEqual(info.loadBalancerVIPs, c.want);
    const warning = cluster.warnings.find((w) => w.path === 'featureGates.LoadBalancerIPMode');
    assert.equal(warning !== undefined, c.warns, JSON.stringify(cluster.warnings));
    if (warning) assert.match(warning.message, /kube-proxy 1\.32 and later refuse to start with this gate off/);
  });
}

// kube-proxy runs a proxier per family the host supports, whatever the services; kpsim counts a
// family as running when the cluster says the node is dual-stack.
const familyCases: { name: string; nodeIPs: string[]; podCIDRs?: string[]; kubeProxy: string; serviceIP?: string; want: number[] }[] = [
  { name: 'an IPv4 node with an IPv4 configuration', nodeIPs: ['192.168.0.2'], kubeProxy: 'clusterCIDR: 10.0.0.0/8', want: [4] },
  { name: 'nothing says IPv4 or IPv6: IPv4', nodeIPs: [], kubeProxy: '', want: [4] },
  { name: 'an IPv6 node address, no IPv6 service', nodeIPs: ['192.168.0.2', '2001:db8::1'], kubeProxy: 'clusterCIDR: 10.0.0.0/8', want: [4, 6] },
  { name: 'a dual-stack clusterCIDR, no IPv6 node address or service', nodeIPs: ['192.168.0.2'], kubeProxy: 'clusterCIDR: 10.0.0.0/8,fd00:10::/64', want: [4, 6] },
  { name: 'an IPv6 nodePortAddresses CIDR ("primary" names no family)', nodeIPs: ['192.168.0.2'], kubeProxy: 'nodePortAddresses: [primary, "2001:db8::/64"]', want: [4, 6] },
  { name: 'dual-stack podCIDRs on the Node', nodeIPs: ['192.168.0.2'], podCIDRs: ['10.0.1.0/24', 'fd00:10:0:1::/64'], kubeProxy: '', want: [4, 6] },
  { name: 'an IPv6-only node with an IPv4 service', nodeIPs: ['2001:db8::1'], kubeProxy: 'clusterCIDR: fd00:10::/64', serviceIP: '172.30.0.41', want: [4, 6] },
];
for (const c of familyCases) {
  test(`families with a proxier: ${c.name} -> IPv${c.want.join(', IPv')}`, () => {
    const nodeText = `apiVersion: v1
kind: Node
metadata: {name: test-node}
spec: {podCIDRs: ${JSON.stringify(c.podCIDRs ?? [])}}
status:
  addresses: ${JSON.stringify(c.nodeIPs.map((address) => ({ type: 'InternalIP', address })))}
`;
    const service = c.serviceIP === undefined ? '' : `apiVersion: v1
kind: Service
metadata: {name: svc1, namespace: ns1}
spec: {clusterIP: ${c.serviceIP}, ports: [{name: p80, port: 80, protocol: TCP}]}
`;
    const cluster = clusterFromManifests([
      { file: 'node.yaml', text: nodeText },
      { file: 'kp.yaml', text: `apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n${c.kubeProxy}\n` },
      { file: 'svc.yaml', text: service },
    ]);
    const resolved = resolveNode(cluster, { node: 'test-node' });
    assert.deepEqual(familiesInUse(cluster, resolved), c.want);
  });
}

// The families are built smallest first (util/smallest-first.ts) and listed IPv4 first, whichever is larger.
const sizeCases: { name: string; v4: number; v6: number }[] = [
  { name: 'IPv4 larger', v4: 3, v6: 1 },
  { name: 'IPv6 larger', v4: 1, v6: 4 },
  { name: 'as large', v4: 2, v6: 2 },
];
for (const c of sizeCases) {
  test(`dual-stack states, ${c.name}: IPv4 first, each as built alone`, () => {
    const services = [
      ...Array.from({ length: c.v4 }, (_, i) => `apiVersion: v1\nkind: Service\nmetadata: {name: v4-${i}, namespace: ns1}\nspec: {clusterIP: 172.30.0.${10 + i}, ports: [{port: 80, protocol: TCP}]}\n`),
      ...Array.from({ length: c.v6 }, (_, i) => `apiVersion: v1\nkind: Service\nmetadata: {name: v6-${i}, namespace: ns1}\nspec: {clusterIP: "fd00:172:30::${10 + i}", ports: [{port: 80, protocol: TCP}]}\n`),
    ].join('---\n');
    const cluster = clusterFromManifests([
      { file: 'node.yaml', text: node },
      { file: 'kp.yaml', text: config },
      { file: 'objects.yaml', text: services },
    ]);
    const resolved = resolveNode(cluster, { node: 'test-node' });
    assert.deepEqual([...servicesPerFamily(cluster)].sort(), [[4, c.v4], [6, c.v6]]);
    const portsOf = (states: { family: number; servicePorts: readonly { info: { spn: string } }[] }[]) => states.map((s) => [s.family, s.servicePorts.map((sp) => sp.info.spn)]);
    const alone = portsOf([buildProxierState(cluster, resolved, 4), buildProxierState(cluster, resolved, 6)]);
    assert.deepEqual(portsOf(buildProxierStates(cluster, resolved)), alone, 'buildProxierStates');
    assert.deepEqual(portsOf(new ClusterView(cluster).statesOf(resolved)), alone, 'ClusterView.statesOf');
  });
}

test('an IPv6 proxier on a node without an IPv6 address: no node IP, loopback as its local address, no service ports', () => {
  const cluster = clusterFromManifests([
    { file: 'node.yaml', text: 'apiVersion: v1\nkind: Node\nmetadata: {name: test-node}\nstatus:\n  addresses: [{type: InternalIP, address: 192.168.0.2}]\n' },
    { file: 'kp.yaml', text: config },
  ]);
  const s6 = buildProxierState(cluster, resolveNode(cluster, { node: 'test-node' }), 6);
  assert.deepEqual([s6.nodeIPs, s6.localAddresses, s6.localDetector?.cidrs, s6.servicePorts.length], [[], ['::1'], ['fd00:10::/64'], 0]);
});

// Endpoint texts and spns are joined from parts: IPv6 endpoints are bracketed, unnamed ports have no ":name".
const textCases: { name: string; family: 4 | 6; want: string[] }[] = [
  { name: 'IPv4 endpoints are ip:port; a named port is ns/name:port', family: 4, want: ['ns1/svc6:p80/TCP -> 10.1.1.1:8080', 'ns1/svc7/TCP -> 10.1.1.2:8081'] },
  { name: 'IPv6 endpoints are [ip]:port', family: 6, want: ['ns1/svc6:p80/TCP -> [fd00:10::1]:8080'] },
];
const dualStack = `apiVersion: v1
kind: Service
metadata: {name: svc6, namespace: ns1}
spec:
  clusterIPs: [172.30.0.46, "fd00:30::46"]
  ports: [{name: p80, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: svc7, namespace: ns1}
spec:
  clusterIP: 172.30.0.47
  ports: [{port: 81, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc6-v4, namespace: ns1, labels: {kubernetes.io/service-name: svc6}}
addressType: IPv4
endpoints: [{addresses: [10.1.1.1]}]
ports: [{name: p80, port: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc6-v6, namespace: ns1, labels: {kubernetes.io/service-name: svc6}}
addressType: IPv6
endpoints: [{addresses: ["fd00:10::1"]}]
ports: [{name: p80, port: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc7-a, namespace: ns1, labels: {kubernetes.io/service-name: svc7}}
addressType: IPv4
endpoints: [{addresses: [10.1.1.2]}]
ports: [{name: "", port: 8081, protocol: TCP}]
`;
for (const c of textCases) {
  test(c.name, () => {
    const s = state(dualStack, c.family);
    assert.deepEqual(s.servicePorts.map((sp) => `${sp.info.spn}/${sp.info.protocol} -> ${sp.endpoints.map((e) => e.endpoint).join(' ')}`), c.want);
  });
}

// Which ports have an endpoint on each node: the positions (in the family's port order) of every
// port with an endpoint naming the node, each once, nodes in the order first met. Checked against
// that rule applied to the built ports, and against the lists written out.
const nodeCases: { name: string; ports: (string | undefined)[][]; want: Record<string, number[]> }[] = [
  { name: 'no endpoint names a node', ports: [[undefined, undefined], []], want: {} },
  { name: 'one node, every port', ports: [['n1'], ['n1', 'n1'], ['n1']], want: { n1: [0, 1, 2] } },
  { name: 'two endpoints of one port on one node: the port once', ports: [['n1', 'n2', 'n1'], ['n2']], want: { n1: [0], n2: [0, 1] } },
  { name: 'a port without endpoints in between', ports: [['n2'], [], ['n1', 'n2']], want: { n2: [0, 2], n1: [2] } },
  { name: 'an empty node name counts as none', ports: [[''], ['n3', '']], want: { n3: [1] } },
  { name: 'many nodes (more than the table sized for the cluster\'s one Node)', ports: Array.from({ length: 6 }, (_, p) => Array.from({ length: 40 }, (_, k) => `n${(k * 7 + p) % 300}`)), want: {} },
];

for (const c of nodeCases) {
  test(`ports by node: ${c.name}`, () => {
    const docs: string[] = [];
    c.ports.forEach((nodes, p) => {
      // svc0, svc1, ... sort as their positions (fewer than 10 ports).
      docs.push(`apiVersion: v1
kind: Service
metadata: {name: svc${p}, namespace: ns1}
spec: {clusterIP: 172.30.0.${p + 1}, ports: [{name: p80, port: 80, protocol: TCP}]}
`);
      if (nodes.length === 0) return;
      const eps = nodes.map((n, k) => `{addresses: [10.${p}.${k >> 8}.${k & 255}]${n === undefined ? '' : `, nodeName: "${n}"`}}`);
      docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc${p}-a, namespace: ns1, labels: {kubernetes.io/service-name: svc${p}}}
addressType: IPv4
endpoints: [${eps.join(', ')}]
ports: [{name: p80, port: 80, protocol: TCP}]
`);
    });
    const cluster = clusterFromManifests([{ file: 'node.yaml', text: node }, { file: 'objects.yaml', text: docs.join('---\n') }]);
    const shared = buildFamilyServicePorts(cluster, 4);
    const rule = new Map<string, number[]>();
    shared.servicePorts.forEach((sp, i) => {
      for (const ep of sp.endpoints) {
        if (ep.nodeName === undefined || ep.nodeName === '') continue;
        const list = rule.get(ep.nodeName) ?? [];
        if (list[list.length - 1] !== i) list.push(i);
        rule.set(ep.nodeName, list);
      }
    });
    const got = [...shared.portsByNode].map(([n, list]) => [n, [...list]]);
    assert.deepEqual(got, [...rule], 'the rule applied to the built ports');
    if (Object.keys(c.want).length > 0) assert.deepEqual(Object.fromEntries(got), c.want);
    for (const [n, list] of shared.portsByNode) assert.equal(list.length, rule.get(n)!.length, `${n}: a list of exactly its ports`);
  });
}
