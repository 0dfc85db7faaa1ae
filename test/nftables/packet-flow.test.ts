/**
 * Packet flows in the style of kube-proxy's nftables proxier tests (pkg/proxy/nftables/
 * proxier_test.go): each table is one of its tests, each row a packet and what kube-proxy's
 * test expects (the endpoints it can reach, REJECT, DROP, or "" for untouched, and whether it
 * is masqueraded). Every row is traced through kpsim's nftables ruleset, and the same packet
 * through iptables mode compiled from the same cluster: the two modes must agree, except on
 * the rows listed in MODE_DIFFERENCES, where kube-proxy's two modes differ on purpose (and
 * where the test checks that they do).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { createTracer } from '../../src/trace/tracer.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import type { TraceResult } from '../../src/trace/types.js';
import {
  type KubeProxyConfigurationManifest,
  type Manifest,
  type PacketFlowTest,
  TEST_EXTERNAL_CLIENT as EXTERNAL,
  TEST_EXTERNAL_CLIENT_BLOCKED as EXTERNAL_BLOCKED,
  TEST_NODE_IP as NODE_IP,
  TEST_NODE_IP_ALT as NODE_IP_ALT,
  TEST_NODE_IPS,
  TEST_NODE_IPV6,
  TEST_NODE_IPV6_ALT,
  ep,
  fixtureState,
  kernelExpectationOf,
  makeService,
  makeSlice,
  tcpPort,
} from '../helpers/cluster-builders.js';
import { FIXTURE_NODE_PORT_ADDRESSES, FIXTURE_SERVICE_CIDRS } from './fixtures.js';

interface Scenario {
  readonly name: string;
  readonly manifests: readonly Manifest[];
  readonly family?: 4 | 6;
  readonly config?: (c: KubeProxyConfigurationManifest) => void;
  readonly flows: readonly PacketFlowTest[];
}

/**
 * Rows where iptables mode answers differently, by "scenario / row", with kube-proxy's reason
 * and what iptables mode does instead.
 */
const MODE_DIFFERENCES: Readonly<Record<string, { readonly why: string; readonly iptables: { verdict: string; masq: boolean } }>> = {
  'TestClusterIPGeneral / TCP-only port does not match UDP traffic': {
    why: 'nftables mode rejects traffic to a ClusterIP on a port (or protocol) no service defines (cluster-ips-check); iptables mode leaves it alone',
    iptables: { verdict: 'NONE', masq: false },
  },
  'TestClusterIPGeneral / svc1 does not accept svc2\'s ports': {
    why: 'nftables mode rejects traffic to a ClusterIP on a port no service defines; iptables mode leaves it alone',
    iptables: { verdict: 'NONE', masq: false },
  },
  'TestClusterIPGeneral / packet to unallocated cluster ip': {
    why: 'nftables mode drops traffic to an address of a ServiceCIDR that no service holds; iptables mode does not know the ServiceCIDRs',
    iptables: { verdict: 'NONE', masq: false },
  },
};

const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' as const }];
const unnamed80 = [{ name: '', port: 80, protocol: 'TCP' as const }];

const SCENARIOS: Scenario[] = [
  {
    name: 'TestNoEndpointsReject',
    manifests: [
      makeService('ns1', 'svc1', (s) => {
        s.spec.type = 'LoadBalancer';
        s.spec.clusterIP = '172.30.0.41';
        s.spec.externalIPs = ['192.168.99.11'];
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
      }),
    ],
    flows: [
      { name: 'pod to cluster IP with no endpoints', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: 'REJECT' },
      { name: 'external to external IP with no endpoints', sourceIP: EXTERNAL, destIP: '192.168.99.11', destPort: 80, output: 'REJECT' },
      { name: 'pod to NodePort with no endpoints', sourceIP: '10.0.0.2', destIP: NODE_IP, destPort: 3001, output: 'REJECT' },
      { name: 'external to NodePort with no endpoints', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3001, output: 'REJECT' },
      { name: 'pod to LoadBalancer IP with no endpoints', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
      { name: 'external to LoadBalancer IP with no endpoints', sourceIP: EXTERNAL, destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
    ],
  },
  {
    name: 'TestClusterIPGeneral',
    manifests: [
      makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('http', 80)]; }),
      makeService('ns2', 'svc2', (s) => {
        s.spec.clusterIP = '172.30.0.42';
        s.spec.ports = [
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
    ],
    flows: [
      { name: 'simple clusterIP', sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
      { name: 'hairpin to cluster IP', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'clusterIP with multiple endpoints', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'clusterIP with TargetPort', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 443, output: '10.180.0.1:8443, 10.180.2.1:8443' },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (TCP)', sourceIP: '10.180.0.2', protocol: 'TCP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:5353, 10.180.2.1:5353' },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (UDP)', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53' },
      { name: 'clusterIP with TCP, UDP, and SCTP on same port (SCTP)', sourceIP: '10.180.0.2', protocol: 'SCTP', destIP: '172.30.0.42', destPort: 53, output: '10.180.0.1:53, 10.180.2.1:53' },
      { name: 'TCP-only port does not match UDP traffic', sourceIP: '10.180.0.2', protocol: 'UDP', destIP: '172.30.0.42', destPort: 80, output: 'REJECT' },
      { name: 'svc1 does not accept svc2\'s ports', sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 443, output: 'REJECT' },
      { name: 'packet to unallocated cluster ip', sourceIP: '10.180.0.2', destIP: '172.30.0.50', destPort: 80, output: 'DROP' },
    ],
  },
  {
    name: 'TestLoadBalancer',
    manifests: [
      makeService('ns1', 'svc1', (s) => {
        s.spec.type = 'LoadBalancer';
        s.spec.clusterIP = '172.30.0.41';
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }, { ip: '5.6.7.8' }];
        s.spec.loadBalancerSourceRanges = ['192.168.0.0/24', ' 203.0.113.0/25'];
      }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = p80; }),
    ],
    flows: [
      { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
      { name: 'external to nodePort', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80', masq: true },
      { name: 'nodePort bypasses LoadBalancerSourceRanges', sourceIP: EXTERNAL_BLOCKED, destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80', masq: true },
      { name: 'accepted external to LB1', sourceIP: EXTERNAL, destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'accepted external to LB2', sourceIP: EXTERNAL, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'blocked external to LB1', sourceIP: EXTERNAL_BLOCKED, destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
      { name: 'blocked external to LB2', sourceIP: EXTERNAL_BLOCKED, destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
      { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
      { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
      { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', sourceIP: NODE_IP, destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', sourceIP: NODE_IP, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', sourceIP: '1.2.3.4', destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80', masq: true },
      { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', sourceIP: '5.6.7.8', destIP: '5.6.7.8', destPort: 80, output: '10.180.0.1:80', masq: true },
    ],
  },
  ...nodePortScenarios(),
  {
    name: 'TestExternalTrafficPolicyLocal',
    manifests: [
      makeService('ns1', 'svc1', (s) => {
        s.spec.type = 'LoadBalancer';
        s.spec.externalTrafficPolicy = 'Local';
        s.spec.clusterIP = '172.30.0.41';
        s.spec.externalIPs = ['192.168.99.11'];
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001, targetPort: 80 })];
        s.spec.healthCheckNodePort = 30000;
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
      }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1'), ep('10.180.2.1', 'test-node')]; eps.ports = p80; }),
    ],
    flows: [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'pod to external IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '192.168.99.11', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'external to external IP hits only local endpoint, unmasqueraded', sourceIP: EXTERNAL, destIP: '192.168.99.11', destPort: 80, output: '10.180.2.1:80' },
      { name: 'pod to LB IP hits only both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'external to LB IP hits only local endpoint, unmasqueraded', sourceIP: EXTERNAL, destIP: '1.2.3.4', destPort: 80, output: '10.180.2.1:80' },
      { name: 'pod to NodePort hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'external to NodePort hits only local endpoint, unmasqueraded', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3001, output: '10.180.2.1:80' },
    ],
  },
  {
    name: 'TestExternalTrafficPolicyCluster',
    manifests: [
      makeService('ns1', 'svc1', (s) => {
        s.spec.type = 'LoadBalancer';
        s.spec.clusterIP = '172.30.0.41';
        s.spec.externalIPs = ['192.168.99.11'];
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001, targetPort: 80 })];
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
        s.spec.externalTrafficPolicy = 'Cluster';
      }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1'), ep('10.180.2.1', 'test-node')]; eps.ports = p80; }),
    ],
    flows: [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80' },
      { name: 'pod to external IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: '192.168.99.11', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to external IP hits both endpoints, masqueraded', sourceIP: EXTERNAL, destIP: '192.168.99.11', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'pod to LB IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to LB IP hits both endpoints, masqueraded', sourceIP: EXTERNAL, destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'pod to NodePort hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
      { name: 'external to NodePort hits both endpoints, masqueraded', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.2.1:80', masq: true },
    ],
  },
  ...internalExternalMasqueradeScenarios(),
  ...terminatingScenarios(),
  ...internalTrafficPolicyScenarios(),
];

function nodePortScenarios(): Scenario[] {
  const cases: { name: string; family: 4 | 6; nodePortAddresses: string[] | undefined; allowAltNodeIP: boolean }[] = [
    { name: 'ipv4', family: 4, nodePortAddresses: undefined, allowAltNodeIP: false },
    { name: 'ipv4, multiple nodeport-addresses', family: 4, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], allowAltNodeIP: true },
    { name: 'ipv6', family: 6, nodePortAddresses: undefined, allowAltNodeIP: false },
    { name: 'ipv6, multiple nodeport-addresses', family: 6, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64', '2001:db8:1::2/128'], allowAltNodeIP: true },
  ];
  return cases.map((c) => {
    const v4 = c.family === 4;
    const svcIP = v4 ? '172.30.0.41' : 'fd00:172:30::41';
    const [ep1, ep2] = v4 ? ['10.180.0.1', '10.180.2.1'] : ['fd00:10:180::1', 'fd00:10:180::2:1'];
    const nodeIP = v4 ? NODE_IP : TEST_NODE_IPV6;
    const podIP = v4 ? '10.0.0.2' : 'fd00:10::2';
    const externalClientIP = v4 ? EXTERNAL : '2600:5200::1';
    const altNodeIP = v4 ? NODE_IP_ALT : TEST_NODE_IPV6_ALT;
    const join = (ip: string): string => (v4 ? `${ip}:80` : `[${ip}]:80`);
    const output = `${join(ep1)}, ${join(ep2)}`;
    return {
      name: `TestNodePorts ${c.name}`,
      family: c.family,
      ...(c.nodePortAddresses ? { config: (cfg: KubeProxyConfigurationManifest) => { cfg.nodePortAddresses = c.nodePortAddresses!; } } : {}),
      manifests: [
        makeService('ns1', 'svc1', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = svcIP; s.spec.ipFamilies = [v4 ? 'IPv4' : 'IPv6']; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; }),
        makeSlice('ns1', 'svc1', 1, (eps) => { eps.addressType = v4 ? 'IPv4' : 'IPv6'; eps.endpoints = [ep(ep1), ep(ep2, 'test-node')]; eps.ports = p80; }),
      ],
      flows: [
        { name: 'pod to cluster IP', sourceIP: podIP, destIP: svcIP, destPort: 80, output },
        { name: 'external to nodePort', sourceIP: externalClientIP, destIP: nodeIP, destPort: 3001, output, masq: true },
        { name: 'node to nodePort', sourceIP: nodeIP, destIP: nodeIP, destPort: 3001, output, masq: true },
        c.allowAltNodeIP
          ? { name: 'external to nodePort on secondary IP', sourceIP: externalClientIP, destIP: altNodeIP, destPort: 3001, output, masq: true }
          : { name: 'secondary nodeIP ignores NodePorts', sourceIP: externalClientIP, destIP: altNodeIP, destPort: 3001, output: '' },
      ],
    };
  });
}

function internalExternalMasqueradeScenarios(): Scenario[] {
  const manifests: Manifest[] = [
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.spec.healthCheckNodePort = 30001; s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
    }),
    makeService('ns2', 'svc2', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.42'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3002 })];
      s.spec.healthCheckNodePort = 30002; s.spec.externalTrafficPolicy = 'Local'; s.status.loadBalancer.ingress = [{ ip: '5.6.7.8' }];
    }),
    makeService('ns3', 'svc3', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })];
      s.spec.healthCheckNodePort = 30003; s.spec.internalTrafficPolicy = 'Local'; s.status.loadBalancer.ingress = [{ ip: '9.10.11.12' }];
    }),
    ...[1, 2, 3].map((n) => makeSlice(`ns${n}`, `svc${n}`, 1, (eps) => { eps.endpoints = [ep(`10.180.0.${n}`, 'test-node'), ep(`10.180.1.${n}`, 'remote')]; eps.ports = p80; })),
  ];
  const flows: PacketFlowTest[] = [
    { name: 'pod to ClusterIP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: false },
    { name: 'pod to NodePort', sourceIP: '10.0.0.2', destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'pod to LB', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to ClusterIP', sourceIP: NODE_IP, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to NodePort', sourceIP: NODE_IP, destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to LB', sourceIP: NODE_IP, destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'external to ClusterIP', sourceIP: EXTERNAL, destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'external to NodePort', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'external to LB', sourceIP: EXTERNAL, destIP: '1.2.3.4', destPort: 80, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'pod to ClusterIP with eTP:Local', sourceIP: '10.0.0.2', destIP: '172.30.0.42', destPort: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: false },
    { name: 'pod to NodePort with eTP:Local', sourceIP: '10.0.0.2', destIP: NODE_IP, destPort: 3002, output: '10.180.0.2:80, 10.180.1.2:80', masq: false },
    { name: 'pod to LB with eTP:Local', sourceIP: '10.0.0.2', destIP: '5.6.7.8', destPort: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: false },
    { name: 'node to ClusterIP with eTP:Local', sourceIP: NODE_IP, destIP: '172.30.0.42', destPort: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: true },
    // kube-proxy's row sends this to port 3001 (svc1), as written there.
    { name: 'node to NodePort with eTP:Local', sourceIP: NODE_IP, destIP: NODE_IP, destPort: 3001, output: '10.180.0.1:80, 10.180.1.1:80', masq: true },
    { name: 'node to LB with eTP:Local', sourceIP: NODE_IP, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: true },
    { name: 'external to ClusterIP with eTP:Local', sourceIP: EXTERNAL, destIP: '172.30.0.42', destPort: 80, output: '10.180.0.2:80, 10.180.1.2:80', masq: true },
    { name: 'external to NodePort with eTP:Local', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3002, output: '10.180.0.2:80', masq: false },
    { name: 'external to LB with eTP:Local', sourceIP: EXTERNAL, destIP: '5.6.7.8', destPort: 80, output: '10.180.0.2:80', masq: false },
    { name: 'pod to ClusterIP with iTP:Local', sourceIP: '10.0.0.2', destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: false },
    { name: 'pod to NodePort with iTP:Local', sourceIP: '10.0.0.2', destIP: NODE_IP, destPort: 3003, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'pod to LB with iTP:Local', sourceIP: '10.0.0.2', destIP: '9.10.11.12', destPort: 80, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'node to ClusterIP with iTP:Local', sourceIP: NODE_IP, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
    { name: 'node to NodePort with iTP:Local', sourceIP: NODE_IP, destIP: NODE_IP, destPort: 3003, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'node to LB with iTP:Local', sourceIP: NODE_IP, destIP: '9.10.11.12', destPort: 80, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'external to ClusterIP with iTP:Local', sourceIP: EXTERNAL, destIP: '172.30.0.43', destPort: 80, output: '10.180.0.3:80', masq: true },
    { name: 'external to NodePort with iTP:Local', sourceIP: EXTERNAL, destIP: NODE_IP, destPort: 3003, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
    { name: 'external to LB with iTP:Local', sourceIP: EXTERNAL, destIP: '9.10.11.12', destPort: 80, output: '10.180.0.3:80, 10.180.1.3:80', masq: true },
  ];
  type Override = { output?: string; masq?: boolean };
  const variants: { name: string; masqueradeAll: boolean; localDetector: boolean; overrides: Record<string, Override> }[] = [
    { name: 'base', masqueradeAll: false, localDetector: true, overrides: {} },
    {
      name: 'no LocalTrafficDetector', masqueradeAll: false, localDetector: false,
      overrides: {
        // With no detector all ClusterIP traffic is taken to come from pods: no masquerade.
        'node to ClusterIP': { masq: false }, 'node to ClusterIP with eTP:Local': { masq: false }, 'node to ClusterIP with iTP:Local': { masq: false },
        'external to ClusterIP': { masq: false }, 'external to ClusterIP with eTP:Local': { masq: false }, 'external to ClusterIP with iTP:Local': { masq: false },
        // And no eTP:Local short-circuit for pods: local endpoints only.
        'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' }, 'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
      },
    },
    {
      name: 'masqueradeAll', masqueradeAll: true, localDetector: true,
      overrides: { 'pod to ClusterIP': { masq: true }, 'pod to ClusterIP with eTP:Local': { masq: true }, 'pod to ClusterIP with iTP:Local': { masq: true } },
    },
    {
      name: 'masqueradeAll, no LocalTrafficDetector', masqueradeAll: true, localDetector: false,
      overrides: {
        'pod to ClusterIP': { masq: true }, 'pod to ClusterIP with eTP:Local': { masq: true }, 'pod to ClusterIP with iTP:Local': { masq: true },
        'pod to NodePort with eTP:Local': { output: '10.180.0.2:80' }, 'pod to LB with eTP:Local': { output: '10.180.0.2:80' },
      },
    },
  ];
  return variants.map((v) => {
    const unused = Object.keys(v.overrides).filter((name) => !flows.some((f) => f.name === name));
    if (unused.length > 0) throw new Error(`overrides for no row: ${unused.join(', ')}`);
    return {
      name: `TestInternalExternalMasquerade ${v.name}`,
      config: (c: KubeProxyConfigurationManifest) => {
        c.iptables = { ...c.iptables, masqueradeAll: v.masqueradeAll };
        if (!v.localDetector) c.clusterCIDR = '';
      },
      manifests,
      flows: flows.map((f) => ({ ...f, ...v.overrides[f.name] })),
    };
  });
}

function terminatingScenarios(): Scenario[] {
  const svc = (policy: 'Local' | 'Cluster'): Manifest => makeService('ns1', 'svc1', (s) => {
    s.spec.clusterIP = '172.30.1.1';
    s.spec.type = 'LoadBalancer';
    s.spec.externalTrafficPolicy = policy;
    s.spec.ports = [tcpPort('', 80, { targetPort: 80 })];
    s.spec.healthCheckNodePort = 30000;
    s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
  });
  const slice = (eps: ReturnType<typeof ep>[]): Manifest => makeSlice('ns1', 'svc1', 1, (s) => { s.endpoints = eps; s.ports = unnamed80; });
  const ready = { ready: true, serving: true, terminating: false };
  const servingTerminating = { ready: false, serving: true, terminating: true };
  const gone = { ready: false, serving: false, terminating: true };
  const flows = (clusterIP: string, lb: string, lbMasq: boolean): PacketFlowTest[] => [
    { name: 'pod to clusterIP', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: clusterIP },
    { name: 'external to LB', sourceIP: EXTERNAL, destIP: '1.2.3.4', destPort: 80, output: lb, masq: lbMasq && lb.includes(':') },
  ];
  return [
    {
      name: 'TestTerminatingEndpointsTrafficPolicyLocal ready endpoints exist',
      manifests: [svc('Local'), slice([ep('10.0.1.1', 'test-node', ready), ep('10.0.1.2', 'test-node', ready), ep('10.0.1.3', 'test-node', servingTerminating), ep('10.0.1.4', 'test-node', gone), ep('10.0.1.5', 'node-1', ready)])],
      flows: flows('10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', '10.0.1.1:80, 10.0.1.2:80', false),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyLocal only terminating endpoints exist',
      manifests: [svc('Local'), slice([ep('10.0.1.2', 'test-node', servingTerminating), ep('10.0.1.3', 'test-node', servingTerminating), ep('10.0.1.4', 'test-node', gone), ep('10.0.1.5', 'node-1', ready)])],
      flows: flows('10.0.1.5:80', '10.0.1.2:80, 10.0.1.3:80', false),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyLocal terminating endpoints on remote node',
      manifests: [svc('Local'), slice([ep('10.0.1.5', 'node-1', servingTerminating)])],
      flows: flows('10.0.1.5:80', 'DROP', false),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyLocal no usable endpoints on any node',
      manifests: [svc('Local'), slice([ep('10.0.1.5', 'test-node', gone), ep('10.0.1.5', 'node-1', gone)])],
      flows: flows('REJECT', 'REJECT', false),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyCluster ready endpoints exist',
      manifests: [svc('Cluster'), slice([ep('10.0.1.1', 'test-node', ready), ep('10.0.1.2', 'test-node', ready), ep('10.0.1.3', 'another-node', servingTerminating), ep('10.0.1.4', 'another-node', gone), ep('10.0.1.5', 'another-node', ready)])],
      flows: flows('10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', '10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80', true),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyCluster only terminating endpoints exist',
      manifests: [svc('Cluster'), slice([ep('10.0.1.2', 'test-node', servingTerminating), ep('10.0.1.3', 'test-node', servingTerminating), ep('10.0.1.4', 'another-node', gone), ep('10.0.1.5', 'another-node', servingTerminating)])],
      flows: flows('10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', '10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80', true),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyCluster terminating endpoints on remote node',
      manifests: [svc('Cluster'), slice([ep('10.0.1.5', 'node-1', servingTerminating)])],
      flows: flows('10.0.1.5:80', '10.0.1.5:80', true),
    },
    {
      name: 'TestTerminatingEndpointsTrafficPolicyCluster no usable endpoints on any node',
      manifests: [svc('Cluster'), slice([ep('10.0.1.5', 'test-node', gone), ep('10.0.1.5', 'node-1', gone)])],
      flows: flows('REJECT', 'REJECT', true),
    },
  ];
}

function internalTrafficPolicyScenarios(): Scenario[] {
  const cases: { name: string; policy: 'Cluster' | 'Local'; nodes: string[]; output: string }[] = [
    { name: 'internalTrafficPolicy is cluster', policy: 'Cluster', nodes: ['test-node', 'node1', 'node2'], output: '10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80' },
    { name: 'internalTrafficPolicy is local and there is one local endpoint', policy: 'Local', nodes: ['test-node', 'node1', 'node2'], output: '10.0.1.1:80' },
    { name: 'internalTrafficPolicy is local and there are multiple local endpoints', policy: 'Local', nodes: ['test-node', 'test-node', 'node2'], output: '10.0.1.1:80, 10.0.1.2:80' },
    { name: 'internalTrafficPolicy is local and there are no local endpoints', policy: 'Local', nodes: ['node0', 'node1', 'node2'], output: 'DROP' },
  ];
  return cases.map((c) => ({
    name: `TestInternalTrafficPolicy ${c.name}`,
    manifests: [
      makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.1.1'; s.spec.ports = [tcpPort('', 80)]; s.spec.internalTrafficPolicy = c.policy; }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = c.nodes.map((n, i) => ep(`10.0.1.${i + 1}`, n, { ready: true })); eps.ports = unnamed80; }),
    ],
    flows: [{ name: 'pod to ClusterIP', sourceIP: '10.0.0.2', destIP: '172.30.1.1', destPort: 80, output: c.output }],
  }));
}

function outcome(r: TraceResult): { verdict: string; endpoints: readonly string[]; masq: boolean } {
  return { verdict: r.verdict, endpoints: r.endpoints, masq: r.masquerade };
}

function evidence(r: TraceResult): string {
  return r.hops.map((h) => `  ${h.table} ${h.chain}: ${h.rule} -> ${h.target}${h.probability !== undefined && h.probability < 1 ? ` (p=${h.probability.toFixed(4)})` : ''}`).join('\n');
}

async function runScenario(t: TestContext, s: Scenario, seen: Set<string>): Promise<void> {
  const state = fixtureState(s.manifests, {
    ...(s.family ? { family: s.family } : {}),
    config: (c) => {
      c.nodePortAddresses = FIXTURE_NODE_PORT_ADDRESSES;
      s.config?.(c);
    },
  });
  const nft = createNftTracer(compileNftablesRules(state, { serviceCIDRs: FIXTURE_SERVICE_CIDRS }), { localAddresses: TEST_NODE_IPS });
  const ipt = createTracer(compileIptablesRules(state, { nfacct: false }), { localAddresses: TEST_NODE_IPS });
  for (const flow of s.flows) {
    await t.test(flow.name, () => {
      const packet = { proto: (flow.protocol ?? 'TCP').toLowerCase() as 'tcp' | 'udp' | 'sctp', src: flow.sourceIP, dst: flow.destIP, dport: flow.destPort };
      const want = kernelExpectationOf(flow);
      const got = nft.trace(packet);
      assert.deepEqual(outcome(got), { verdict: want.verdict, endpoints: want.endpoints ?? [], masq: want.masq }, `nftables mode, ${JSON.stringify(packet)}:\n${evidence(got)}`);
      if (got.verdict === 'DNAT' && got.outcomes === undefined) {
        const n = got.endpoints.length;
        for (const e of got.endpoints) assert.ok(Math.abs(got.probabilities[e]! - 1 / n) < 1e-9, `${e}: ${got.probabilities[e]} is not 1/${n}`);
      }

      const key = `${s.name.replace(/ .*/, '')} / ${flow.name}`;
      const difference = MODE_DIFFERENCES[key];
      const other = ipt.trace(packet);
      if (difference) {
        seen.add(key);
        assert.deepEqual({ verdict: other.verdict, masq: other.masquerade }, difference.iptables, `iptables mode was expected to differ (${difference.why}):\n${evidence(other)}`);
      } else {
        assert.deepEqual(outcome(other), outcome(got), `iptables mode and nftables mode should agree on ${JSON.stringify(packet)}\niptables:\n${evidence(other)}`);
      }
    });
  }
}

test('kube-proxy\'s nftables packet flows, and iptables mode on the same packets', async (t) => {
  const seen = new Set<string>();
  for (const s of SCENARIOS) await t.test(s.name, (st) => runScenario(st, s, seen));
  assert.deepEqual([...seen].sort(), Object.keys(MODE_DIFFERENCES).sort(), 'every listed difference was seen');
});
