/**
 * Packet flows through the compiled rules, ported from kube-proxy's proxier_test.go: the same
 * services and slices (built with makeService/makeSlice on kube-proxy's fixture node), the same
 * packets, the same expected outputs. Each row is traced twice (see runPacketFlowTests): with
 * kube-proxy's test-tracer semantics, which must give kube-proxy's exact output string, and with
 * kpsim's kernel semantics, which must give what that output means on a real node.
 */
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import {
  type Manifest,
  type PacketFlowTest,
  TEST_EXTERNAL_CLIENT,
  TEST_EXTERNAL_CLIENT_BLOCKED,
  TEST_NODE_IP,
  TEST_NODE_IPS,
  TEST_NODE_IPV6,
  TEST_NODE_IPV6_ALT,
  TEST_NODE_IP_ALT,
  type KubeProxyConfigurationManifest,
  type EndpointManifest,
  ep,
  fixtureState,
  makeService,
  makeSlice,
  overallServices,
  runPacketFlowTests,
  tcpPort,
} from '../helpers/cluster-builders.js';

function rules(manifests: readonly Manifest[], opts: { family?: 4 | 6; config?: (c: KubeProxyConfigurationManifest) => void } = {}) {
  return compileIptablesRules(fixtureState(manifests, opts));
}

const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' as const }];
const unnamed80 = [{ name: '', port: 80, protocol: 'TCP' as const }];

// TestTracePacket's flows, against the services of TestOverallIPTablesRules (its static rules
// are those services' rules).
test('TestOverallIPTablesRules / TestTracePacket', async (t) => {
  await runPacketFlowTests(t, rules(overallServices()), TEST_NODE_IPS, [
    { name: 'no match', sourceIP: '10.0.0.2', destIP: '10.0.0.3', destPort: 80, output: '' },
    { name: 'single endpoint', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
    { name: 'multiple endpoints', sourceIP: '10.0.0.2', destIP: '172.30.0.44', destPort: 80, output: '10.180.0.4:80, 10.180.0.5:80' },
    { name: 'LOCAL, KUBE-MARK-MASQ', sourceIP: TEST_NODE_IP, destIP: '192.168.99.22', destPort: 80, output: '10.180.0.2:80', masq: true },
    { name: 'DROP', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '192.168.99.22', destPort: 80, output: 'DROP' },
    { name: 'ACCEPT (NodePortHealthCheck)', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 30000, output: 'ACCEPT' },
    { name: 'REJECT', sourceIP: '10.0.0.2', destIP: '172.30.0.46', destPort: 80, output: 'REJECT' },
  ]);
});

test('TestNoEndpointsReject', async (t) => {
  const svcIP = '172.30.0.41';
  const svcExternalIP = '192.168.99.11';
  const svcLBIP = '1.2.3.4';
  const ruleset = rules([
    makeService('ns1', 'svc1', (svc) => {
      svc.spec.type = 'LoadBalancer';
      svc.spec.clusterIP = svcIP;
      svc.spec.externalIPs = [svcExternalIP];
      svc.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      svc.status.loadBalancer.ingress = [{ ip: svcLBIP }];
    }),
  ]);
  await runPacketFlowTests(t, ruleset, TEST_NODE_IPS, [
    { name: 'pod to cluster IP with no endpoints', sourceIP: '10.0.0.2', destIP: svcIP, destPort: 80, output: 'REJECT' },
    { name: 'external to external IP with no endpoints', sourceIP: TEST_EXTERNAL_CLIENT, destIP: svcExternalIP, destPort: 80, output: 'REJECT' },
    { name: 'pod to NodePort with no endpoints', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: 'REJECT' },
    { name: 'external to NodePort with no endpoints', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: 'REJECT' },
    { name: 'pod to LoadBalancer IP with no endpoints', sourceIP: '10.0.0.2', destIP: svcLBIP, destPort: 80, output: 'REJECT' },
    { name: 'external to LoadBalancer IP with no endpoints', sourceIP: TEST_EXTERNAL_CLIENT, destIP: svcLBIP, destPort: 80, output: 'REJECT' },
  ]);
});

test('TestClusterIPGeneral', async (t) => {
  const ruleset = rules([
    makeService('ns1', 'svc1', (svc) => { svc.spec.clusterIP = '172.30.0.41'; svc.spec.ports = [tcpPort('http', 80)]; }),
    makeService('ns2', 'svc2', (svc) => {
      svc.spec.clusterIP = '172.30.0.42';
      svc.spec.ports = [
        tcpPort('http', 80),
        tcpPort('https', 443, { targetPort: 8443 }),
        { name: 'dns-udp', port: 53, protocol: 'UDP' },
        tcpPort('dns-tcp', 53, { targetPort: 5353 }),
        { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
      ];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1', 'test-node')]; eps.ports = [{ name: 'http', port: 80, protocol: 'TCP' }]; }),
    makeSlice('ns2', 'svc2', 1, (eps) => {
      eps.endpoints = [ep('10.180.0.1', 'test-node'), ep('10.180.2.1', 'node2')];
      eps.ports = [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'https', port: 8443, protocol: 'TCP' },
        { name: 'dns-udp', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 5353, protocol: 'TCP' },
        { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
      ];
    }),
  ]);
  await runPacketFlowTests(t, ruleset, TEST_NODE_IPS, [
    { name: 'simple clusterIP', sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
    { name: 'hairpin to cluster IP', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
    { name: 'clusterIP with multiple endpoints', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
    { name: 'clusterIP with TargetPort', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 443, output: '10.180.0.1:8443, 10.180.2.1:8443' },
    { name: 'clusterIP with TCP, UDP, and SCTP on same port (TCP)', sourceIP: '10.180.0.2', protocol: 'TCP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:5353, 10.180.2.1:5353' },
    { name: 'clusterIP with TCP, UDP, and SCTP on same port (UDP)', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53' },
    { name: 'clusterIP with TCP, UDP, and SCTP on same port (SCTP)', sourceIP: '10.180.0.2', protocol: 'SCTP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53' },
    { name: 'TCP-only port does not match UDP traffic', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 80, output: '' },
    { name: "svc1 does not accept svc2's ports", sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 443, output: '' },
  ]);
});

test('TestLoadBalancer', async (t) => {
  const svcIP = '172.30.0.41';
  const lb1 = '1.2.3.4';
  const lb2 = '5.6.7.8';
  const epOut = '10.180.0.1:80';
  const ruleset = rules([
    makeService('ns1', 'svc1', (svc) => {
      svc.spec.type = 'LoadBalancer';
      svc.spec.clusterIP = svcIP;
      svc.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      svc.status.loadBalancer.ingress = [{ ip: lb1 }, { ip: lb2 }];
      // The leading space is kube-proxy's regression test for whitespace in source ranges.
      svc.spec.loadBalancerSourceRanges = ['192.168.0.0/24', ' 203.0.113.0/25'];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = p80; }),
  ]);
  await runPacketFlowTests(t, ruleset, TEST_NODE_IPS, [
    { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: svcIP, destPort: 80, output: epOut },
    { name: 'external to nodePort', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: epOut, masq: true },
    { name: 'nodePort bypasses LoadBalancerSourceRanges', sourceIP: TEST_EXTERNAL_CLIENT_BLOCKED, destIP: TEST_NODE_IP, destPort: 3001, output: epOut, masq: true },
    { name: 'accepted external to LB1', sourceIP: TEST_EXTERNAL_CLIENT, destIP: lb1, destPort: 80, output: epOut, masq: true },
    { name: 'accepted external to LB2', sourceIP: TEST_EXTERNAL_CLIENT, destIP: lb2, destPort: 80, output: epOut, masq: true },
    { name: 'blocked external to LB1', sourceIP: TEST_EXTERNAL_CLIENT_BLOCKED, destIP: lb1, destPort: 80, output: 'DROP' },
    { name: 'blocked external to LB2', sourceIP: TEST_EXTERNAL_CLIENT_BLOCKED, destIP: lb2, destPort: 80, output: 'DROP' },
    { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: lb1, destPort: 80, output: 'DROP' },
    { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: lb2, destPort: 80, output: 'DROP' },
    { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', sourceIP: TEST_NODE_IP, destIP: lb1, destPort: 80, output: epOut, masq: true },
    { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', sourceIP: TEST_NODE_IP, destIP: lb2, destPort: 80, output: epOut, masq: true },
    // A node reaching a VIP is assumed to be SNATted to the VIP by something outside kube-proxy.
    { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', sourceIP: lb1, destIP: lb1, destPort: 80, output: epOut, masq: true },
    { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', sourceIP: lb2, destIP: lb2, destPort: 80, output: epOut, masq: true },
  ]);
});

// TestNodePorts: NodePort services under --nodeport-addresses and --iptables-localhost-nodeports.
const nodePortCases: { name: string; family: 4 | 6; localhostNodePorts: boolean; nodePortAddresses?: string[]; allowAltNodeIP: boolean }[] = [
  { name: 'ipv4, localhost-nodeports enabled', family: 4, localhostNodePorts: true, allowAltNodeIP: true },
  { name: 'ipv4, localhost-nodeports disabled', family: 4, localhostNodePorts: false, allowAltNodeIP: true },
  { name: 'ipv4, localhost-nodeports disabled, localhost in nodeport-addresses', family: 4, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '127.0.0.1/32'], allowAltNodeIP: false },
  { name: 'ipv4, localhost-nodeports enabled, multiple nodeport-addresses', family: 4, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: true },
  { name: 'ipv6, localhost-nodeports enabled', family: 6, localhostNodePorts: true, allowAltNodeIP: true },
  { name: 'ipv6, localhost-nodeports disabled', family: 6, localhostNodePorts: false, allowAltNodeIP: true },
  { name: 'ipv6, localhost-nodeports disabled, multiple nodeport-addresses', family: 6, localhostNodePorts: false, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: false },
];
for (const c of nodePortCases) {
  test(`TestNodePorts: ${c.name}`, async (t) => {
    const v4 = c.family === 4;
    const svcIP = v4 ? '172.30.0.41' : 'fd00:172:30::41';
    const [epIP1, epIP2] = v4 ? ['10.180.0.1', '10.180.2.1'] : ['fd00:10:180::1', 'fd00:10:180::2:1'];
    const ruleset = rules([
      makeService('ns1', 'svc1', (svc) => { svc.spec.type = 'NodePort'; svc.spec.clusterIP = svcIP; svc.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.addressType = v4 ? 'IPv4' : 'IPv6'; eps.endpoints = [ep(epIP1), ep(epIP2, 'test-node')]; eps.ports = p80; }),
    ], {
      family: c.family,
      config: (cfg) => {
        cfg.iptables = { ...cfg.iptables, localhostNodePorts: c.localhostNodePorts };
        if (c.nodePortAddresses) cfg.nodePortAddresses = c.nodePortAddresses;
      },
    });
    const podIP = v4 ? '10.0.0.2' : 'fd00:10::2';
    const externalClientIP = v4 ? TEST_EXTERNAL_CLIENT : '2600:5200::1';
    const nodeIP = v4 ? TEST_NODE_IP : TEST_NODE_IPV6;
    const altNodeIP = v4 ? TEST_NODE_IP_ALT : TEST_NODE_IPV6_ALT;
    const localhostIP = v4 ? '127.0.0.1' : '::1';
    const output = v4 ? `${epIP1}:80, ${epIP2}:80` : `[${epIP1}]:80, [${epIP2}]:80`;
    const flows: PacketFlowTest[] = [
      { name: 'pod to cluster IP', sourceIP: podIP, destIP: svcIP, destPort: 80, output },
      { name: 'external to nodePort', sourceIP: externalClientIP, destIP: nodeIP, destPort: 3001, output, masq: true },
      { name: 'node to nodePort', sourceIP: nodeIP, destIP: nodeIP, destPort: 3001, output, masq: true },
    ];
    // Localhost node ports work only for IPv4, and only when enabled.
    if (v4 && c.localhostNodePorts) flows.push({ name: 'localhost to nodePort gets masqueraded', sourceIP: localhostIP, destIP: localhostIP, destPort: 3001, output, masq: true });
    else flows.push({ name: 'localhost to nodePort is ignored', sourceIP: localhostIP, destIP: localhostIP, destPort: 3001, output: '' });
    if (c.allowAltNodeIP) flows.push({ name: 'external to nodePort on secondary IP', sourceIP: externalClientIP, destIP: altNodeIP, destPort: 3001, output, masq: true });
    else flows.push({ name: 'secondary nodeIP ignores NodePorts', sourceIP: externalClientIP, destIP: altNodeIP, destPort: 3001, output: '' });
    await runPacketFlowTests(t, ruleset, TEST_NODE_IPS, flows);
  });
}

test('TestHealthCheckNodePort', async (t) => {
  const svc = makeService('ns1', 'svc1', (s) => {
    s.spec.type = 'LoadBalancer';
    s.spec.clusterIP = '172.30.0.42';
    s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
    s.spec.healthCheckNodePort = 30000;
    s.spec.externalTrafficPolicy = 'Local';
  });
  const loopbackOnly = (cfg: KubeProxyConfigurationManifest) => { cfg.nodePortAddresses = ['127.0.0.0/8']; };
  await runPacketFlowTests(t, rules([svc], { config: loopbackOnly }), TEST_NODE_IPS, [
    { name: 'firewall accepts HealthCheckNodePort', sourceIP: '1.2.3.4', destIP: TEST_NODE_IP, destPort: 30000, output: 'ACCEPT' },
  ]);
  // After the service is deleted.
  await runPacketFlowTests(t, rules([], { config: loopbackOnly }), TEST_NODE_IPS, [
    { name: 'HealthCheckNodePort no longer has any rule', sourceIP: '1.2.3.4', destIP: TEST_NODE_IP, destPort: 30000, output: '' },
  ]);
});

function lbWithExternalIP(policy: 'Local' | 'Cluster'): Manifest[] {
  return [
    makeService('ns1', 'svc1', (svc) => {
      svc.spec.type = 'LoadBalancer';
      svc.spec.externalTrafficPolicy = policy;
      svc.spec.clusterIP = '172.30.0.41';
      svc.spec.externalIPs = ['192.168.99.11'];
      svc.spec.ports = [tcpPort('p80', 80, { nodePort: 3001, targetPort: 80 })];
      if (policy === 'Local') svc.spec.healthCheckNodePort = 30000;
      svc.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1'), ep('10.180.2.1', 'test-node')]; eps.ports = p80; }),
  ];
}

test('TestExternalTrafficPolicyLocal', async (t) => {
  const both = '10.180.0.1:80, 10.180.2.1:80';
  const local = '10.180.2.1:80';
  await runPacketFlowTests(t, rules(lbWithExternalIP('Local')), TEST_NODE_IPS, [
    { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both },
    { name: 'pod to external IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '192.168.99.11', destPort: 80, output: both },
    { name: 'external to external IP hits only local endpoint, unmasqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '192.168.99.11', destPort: 80, output: local },
    { name: 'pod to LB IP hits only both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: both },
    { name: 'external to LB IP hits only local endpoint, unmasqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: local },
    { name: 'pod to NodePort hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: both },
    { name: 'external to NodePort hits only local endpoint, unmasqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: local },
  ]);
});

test('TestExternalTrafficPolicyCluster', async (t) => {
  const both = '10.180.0.1:80, 10.180.2.1:80';
  await runPacketFlowTests(t, rules(lbWithExternalIP('Cluster')), TEST_NODE_IPS, [
    { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both },
    { name: 'pod to external IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: '192.168.99.11', destPort: 80, output: both, masq: true },
    { name: 'external to external IP hits both endpoints, masqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '192.168.99.11', destPort: 80, output: both, masq: true },
    { name: 'pod to LB IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: both, masq: true },
    { name: 'external to LB IP hits both endpoints, masqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: both, masq: true },
    { name: 'pod to NodePort hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: both, masq: true },
    { name: 'external to NodePort hits both endpoints, masqueraded', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: both, masq: true },
  ]);
});

function unnamedService(mutate: (svc: ReturnType<typeof makeService>) => void): ReturnType<typeof makeService> {
  return makeService('ns1', 'svc1', (svc) => {
    svc.spec.clusterIP = '172.30.1.1';
    svc.spec.selector = { foo: 'bar' };
    svc.spec.ports = [{ name: '', port: 80, protocol: 'TCP' }];
    mutate(svc);
  });
}

const readyOn = (ip: string, nodeName: string): EndpointManifest => ep(ip, nodeName, { ready: true });

const internalTrafficPolicyCases: { name: string; policy: 'Cluster' | 'Local'; endpoints: [string, string][]; flows: PacketFlowTest[] }[] = [
  {
    name: 'internalTrafficPolicy is cluster',
    policy: 'Cluster',
    endpoints: [['10.0.1.1', 'test-node'], ['10.0.1.2', 'node1'], ['10.0.1.3', 'node2']],
    flows: [{ name: 'pod to ClusterIP hits all endpoints', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80' }],
  },
  {
    name: 'internalTrafficPolicy is local and there is one local endpoint',
    policy: 'Local',
    endpoints: [['10.0.1.1', 'test-node'], ['10.0.1.2', 'node1'], ['10.0.1.3', 'node2']],
    flows: [{ name: 'pod to ClusterIP hits only local endpoint', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: '10.0.1.1:80' }],
  },
  {
    name: 'internalTrafficPolicy is local and there are multiple local endpoints',
    policy: 'Local',
    endpoints: [['10.0.1.1', 'test-node'], ['10.0.1.2', 'test-node'], ['10.0.1.3', 'node2']],
    flows: [{ name: 'pod to ClusterIP hits all local endpoints', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: '10.0.1.1:80, 10.0.1.2:80' }],
  },
  {
    name: 'internalTrafficPolicy is local and there are no local endpoints',
    policy: 'Local',
    endpoints: [['10.0.1.1', 'node0'], ['10.0.1.2', 'node1'], ['10.0.1.3', 'node2']],
    flows: [{ name: 'no endpoints', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: 'DROP' }],
  },
];
for (const c of internalTrafficPolicyCases) {
  test(`TestInternalTrafficPolicy: ${c.name}`, async (t) => {
    const svc = unnamedService((s) => { s.spec.internalTrafficPolicy = c.policy; });
    const slice = makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = c.endpoints.map(([ip, node]) => readyOn(ip, node)); eps.ports = unnamed80; });
    await runPacketFlowTests(t, rules([svc, slice]), TEST_NODE_IPS, c.flows);
    await runPacketFlowTests(t, rules([svc]), TEST_NODE_IPS, [
      { name: 'endpoints deleted', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: 'REJECT' },
    ]);
  });
}

// TestTerminatingEndpointsTrafficPolicyLocal / ...Cluster: an LB service without a node port.
function terminatingService(policy: 'Local' | 'Cluster'): ReturnType<typeof makeService> {
  return makeService('ns1', 'svc1', (svc) => {
    svc.spec.clusterIP = '172.30.1.1';
    svc.spec.type = 'LoadBalancer';
    svc.spec.externalTrafficPolicy = policy;
    svc.spec.ports = [{ name: '', port: 80, protocol: 'TCP', targetPort: 80 }];
    svc.spec.healthCheckNodePort = 30000;
    svc.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
  });
}
const cond = (ready: boolean, serving: boolean, terminating: boolean) => ({ ready, serving, terminating });
const READY = cond(true, true, false);
const SERVING_TERMINATING = cond(false, true, true);
const TERMINATING = cond(false, false, true);

const terminatingCases: { policy: 'Local' | 'Cluster'; name: string; endpoints: EndpointManifest[]; clusterIP: string; lb: string; lbMasq: boolean }[] = [
  {
    policy: 'Local',
    name: 'ready endpoints exist',
    endpoints: [ep('10.0.1.1', 'test-node', READY), ep('10.0.1.2', 'test-node', READY), ep('10.0.1.3', 'test-node', SERVING_TERMINATING), ep('10.0.1.4', 'test-node', TERMINATING), ep('10.0.1.5', 'node-1', READY)],
    clusterIP: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80',
    lb: '10.0.1.1:80, 10.0.1.2:80',
    lbMasq: false,
  },
  {
    policy: 'Local',
    name: 'only terminating endpoints exist',
    endpoints: [ep('10.0.1.2', 'test-node', SERVING_TERMINATING), ep('10.0.1.3', 'test-node', SERVING_TERMINATING), ep('10.0.1.4', 'test-node', TERMINATING), ep('10.0.1.5', 'node-1', READY)],
    clusterIP: '10.0.1.5:80',
    lb: '10.0.1.2:80, 10.0.1.3:80',
    lbMasq: false,
  },
  {
    policy: 'Local',
    name: 'terminating endpoints on remote node',
    endpoints: [ep('10.0.1.5', 'node-1', SERVING_TERMINATING)],
    clusterIP: '10.0.1.5:80',
    lb: 'DROP',
    lbMasq: false,
  },
  {
    policy: 'Local',
    name: 'no usable endpoints on any node',
    endpoints: [ep('10.0.1.5', 'test-node', TERMINATING), ep('10.0.1.5', 'node-1', TERMINATING)],
    clusterIP: 'REJECT',
    lb: 'REJECT',
    lbMasq: false,
  },
  {
    policy: 'Cluster',
    name: 'ready endpoints exist',
    endpoints: [ep('10.0.1.1', 'test-node', READY), ep('10.0.1.2', 'test-node', READY), ep('10.0.1.3', 'another-node', SERVING_TERMINATING), ep('10.0.1.4', 'another-node', TERMINATING), ep('10.0.1.5', 'another-node', READY)],
    clusterIP: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80',
    lb: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80',
    lbMasq: true,
  },
  {
    policy: 'Cluster',
    name: 'only terminating endpoints exist',
    endpoints: [ep('10.0.1.2', 'test-node', SERVING_TERMINATING), ep('10.0.1.3', 'test-node', SERVING_TERMINATING), ep('10.0.1.4', 'another-node', TERMINATING), ep('10.0.1.5', 'another-node', SERVING_TERMINATING)],
    clusterIP: '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80',
    lb: '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80',
    lbMasq: true,
  },
  {
    policy: 'Cluster',
    name: 'terminating endpoints on remote node',
    endpoints: [ep('10.0.1.5', 'node-1', SERVING_TERMINATING)],
    clusterIP: '10.0.1.5:80',
    lb: '10.0.1.5:80',
    lbMasq: true,
  },
  {
    policy: 'Cluster',
    name: 'no usable endpoints on any node',
    endpoints: [ep('10.0.1.5', 'test-node', TERMINATING), ep('10.0.1.5', 'node-1', TERMINATING)],
    clusterIP: 'REJECT',
    lb: 'REJECT',
    lbMasq: false,
  },
];
for (const c of terminatingCases) {
  test(`TestTerminatingEndpointsTrafficPolicy${c.policy}: ${c.name}`, async (t) => {
    const svc = terminatingService(c.policy);
    const slice = makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = c.endpoints; eps.ports = unnamed80; });
    await runPacketFlowTests(t, rules([svc, slice]), TEST_NODE_IPS, [
      { name: 'pod to clusterIP', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: c.clusterIP },
      { name: 'external to LB', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: c.lb, masq: c.lbMasq },
    ]);
    await runPacketFlowTests(t, rules([svc]), TEST_NODE_IPS, [
      { name: 'pod to clusterIP after endpoints deleted', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: 'REJECT' },
      { name: 'external to LB after endpoints deleted', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
    ]);
  });
}

// TestInternalExternalMasquerade: one set of flows, with overrides per configuration.
function masqueradeServices(): Manifest[] {
  const lb = (ns: string, ip: string, nodePort: number, hc: number, vip: string, mutate: (svc: ReturnType<typeof makeService>) => void = () => {}) =>
    makeService(ns, ns.replace('ns', 'svc'), (svc) => {
      svc.spec.type = 'LoadBalancer';
      svc.spec.clusterIP = ip;
      svc.spec.ports = [tcpPort('p80', 80, { nodePort })];
      svc.spec.healthCheckNodePort = hc;
      svc.status.loadBalancer.ingress = [{ ip: vip }];
      mutate(svc);
    });
  const slice = (ns: string, local: string, remote: string) =>
    makeSlice(ns, ns.replace('ns', 'svc'), 1, (eps) => { eps.endpoints = [ep(local, 'test-node'), ep(remote, 'remote')]; eps.ports = p80; });
  return [
    lb('ns1', '172.30.0.41', 3001, 30001, '1.2.3.4'),
    lb('ns2', '172.30.0.42', 3002, 30002, '5.6.7.8', (svc) => { svc.spec.externalTrafficPolicy = 'Local'; }),
    lb('ns3', '172.30.0.43', 3003, 30003, '9.10.11.12', (svc) => { svc.spec.internalTrafficPolicy = 'Local'; }),
    slice('ns1', '10.180.0.1', '10.180.1.1'),
    slice('ns2', '10.180.0.2', '10.180.1.2'),
    slice('ns3', '10.180.0.3', '10.180.1.3'),
  ];
}

const svc1Both = '10.180.0.1:80, 10.180.1.1:80';
const svc2Both = '10.180.0.2:80, 10.180.1.2:80';
const svc3Both = '10.180.0.3:80, 10.180.1.3:80';
const masqueradeFlows: PacketFlowTest[] = [
  { name: 'pod to ClusterIP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: svc1Both, masq: false },
  { name: 'pod to NodePort', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3001, output: svc1Both, masq: true },
  { name: 'pod to LB', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: svc1Both, masq: true },
  { name: 'node to ClusterIP', sourceIP: TEST_NODE_IP, destIP: '172.30.0.41', destPort: 80, output: svc1Both, masq: true },
  { name: 'node to NodePort', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 3001, output: svc1Both, masq: true },
  { name: 'localhost to NodePort', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 3001, output: svc1Both, masq: true },
  { name: 'node to LB', sourceIP: TEST_NODE_IP, destIP: '1.2.3.4', destPort: 80, output: svc1Both, masq: true },
  { name: 'external to ClusterIP', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '172.30.0.41', destPort: 80, output: svc1Both, masq: true },
  { name: 'external to NodePort', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3001, output: svc1Both, masq: true },
  { name: 'external to LB', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '1.2.3.4', destPort: 80, output: svc1Both, masq: true },
  // externalTrafficPolicy does not apply to ClusterIP traffic.
  { name: 'pod to ClusterIP with eTP:Local', sourceIP: '10.0.0.2', destIP: '172.30.0.42', destPort: 80, output: svc2Both, masq: false },
  // Pods are short-circuited to every endpoint, unmasqueraded, as if they went out to the LB and back.
  { name: 'pod to NodePort with eTP:Local', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3002, output: svc2Both, masq: false },
  { name: 'pod to LB with eTP:Local', sourceIP: '10.0.0.2', destIP: '5.6.7.8', destPort: 80, output: svc2Both, masq: false },
  { name: 'node to ClusterIP with eTP:Local', sourceIP: TEST_NODE_IP, destIP: '172.30.0.42', destPort: 80, output: svc2Both, masq: true },
  // kube-proxy's row targets svc1's node port (3001) here, so it expects svc1's endpoints.
  { name: 'node to NodePort with eTP:Local', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 3001, output: svc1Both, masq: true },
  { name: 'localhost to NodePort with eTP:Local', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 3002, output: svc2Both, masq: true },
  { name: 'node to LB with eTP:Local', sourceIP: TEST_NODE_IP, destIP: '5.6.7.8', destPort: 80, output: svc2Both, masq: true },
  { name: 'external to ClusterIP with eTP:Local', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '172.30.0.42', destPort: 80, output: svc2Both, masq: true },
  { name: 'external to NodePort with eTP:Local', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3002, output: '10.180.0.2:80', masq: false },
  { name: 'external to LB with eTP:Local', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.2:80', masq: false },
  // internalTrafficPolicy applies to ClusterIP traffic only, and does not change masquerading.
  { name: 'pod to ClusterIP with iTP:Local', sourceIP: '10.0.0.2', destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: false },
  { name: 'pod to NodePort with iTP:Local', sourceIP: '10.0.0.2', destIP: TEST_NODE_IP, destPort: 3003, output: svc3Both, masq: true },
  { name: 'pod to LB with iTP:Local', sourceIP: '10.0.0.2', destIP: '9.10.11.12', destPort: 80, output: svc3Both, masq: true },
  { name: 'node to ClusterIP with iTP:Local', sourceIP: TEST_NODE_IP, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
  { name: 'node to NodePort with iTP:Local', sourceIP: TEST_NODE_IP, destIP: TEST_NODE_IP, destPort: 3003, output: svc3Both, masq: true },
  { name: 'localhost to NodePort with iTP:Local', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 3003, output: svc3Both, masq: true },
  { name: 'node to LB with iTP:Local', sourceIP: TEST_NODE_IP, destIP: '9.10.11.12', destPort: 80, output: svc3Both, masq: true },
  { name: 'external to ClusterIP with iTP:Local', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
  { name: 'external to NodePort with iTP:Local', sourceIP: TEST_EXTERNAL_CLIENT, destIP: TEST_NODE_IP, destPort: 3003, output: svc3Both, masq: true },
  { name: 'external to LB with iTP:Local', sourceIP: TEST_EXTERNAL_CLIENT, destIP: '9.10.11.12', destPort: 80, output: svc3Both, masq: true },
];

type Override = { output?: string; masq?: boolean };
const masqueradeConfigs: { name: string; masqueradeAll: boolean; localDetector: boolean; overrides: Record<string, Override> }[] = [
  { name: 'base', masqueradeAll: false, localDetector: true, overrides: {} },
  {
    name: 'no LocalTrafficDetector',
    masqueradeAll: false,
    localDetector: false,
    overrides: {
      // Without a detector all ClusterIP traffic is taken to come from pods: no masquerade ...
      'node to ClusterIP': { masq: false },
      'node to ClusterIP with eTP:Local': { masq: false },
      'node to ClusterIP with iTP:Local': { masq: false },
      'external to ClusterIP': { masq: false },
      'external to ClusterIP with eTP:Local': { masq: false },
      'external to ClusterIP with iTP:Local': { masq: false },
      // ... and no short-circuit: pods get only the local endpoints.
      'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' },
      'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
    },
  },
  {
    name: 'masqueradeAll',
    masqueradeAll: true,
    localDetector: true,
    overrides: {
      'pod to ClusterIP': { masq: true },
      'pod to ClusterIP with eTP:Local': { masq: true },
      'pod to ClusterIP with iTP:Local': { masq: true },
    },
  },
  {
    name: 'masqueradeAll, no LocalTrafficDetector',
    masqueradeAll: true,
    localDetector: false,
    overrides: {
      'pod to ClusterIP': { masq: true },
      'pod to ClusterIP with eTP:Local': { masq: true },
      'pod to ClusterIP with iTP:Local': { masq: true },
      'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' },
      'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
    },
  },
];
for (const c of masqueradeConfigs) {
  test(`TestInternalExternalMasquerade: ${c.name}`, async (t) => {
    const ruleset = rules(masqueradeServices(), {
      config: (cfg) => {
        cfg.iptables = { ...cfg.iptables, masqueradeAll: c.masqueradeAll };
        if (!c.localDetector) delete cfg.clusterCIDR;
      },
    });
    const names = new Set(masqueradeFlows.map((f) => f.name));
    for (const name of Object.keys(c.overrides)) if (!names.has(name)) throw new Error(`override for unknown flow ${name}`);
    const flows = masqueradeFlows.map((f) => ({ ...f, ...c.overrides[f.name] }));
    await runPacketFlowTests(t, ruleset, TEST_NODE_IPS, flows);
  });
}
