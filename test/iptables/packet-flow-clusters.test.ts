/**
 * Packet flows through the example clusters under rules/, in kube-proxy's packetFlowTest style:
 * kpsim's own tables for what kube-proxy's unit tests do not trace (node-port addresses,
 * "primary", NodeCIDR detection, dual-stack, topology hints, session affinity, masqueradeAll,
 * no local detector, terminating endpoints on a real node's view). Each expected output is what
 * kube-proxy's test tracer would print for its rules (worked out from proxier.go and
 * topology.go); runPacketFlowTests also checks the kernel meaning of each row.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { endpointChainName } from '../../src/iptables/names.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { createTracer } from '../../src/trace/tracer.js';
import { resolveNode } from '../../src/tracker/proxier-state.js';
import { type PacketFlowTest, type RulesCluster, goldenState, loadRulesClusters, runPacketFlowTests } from '../helpers/cluster-builders.js';

const clusters = new Map((await loadRulesClusters()).map((rc) => [rc.name, rc]));

function cluster(name: string): RulesCluster {
  const rc = clusters.get(name);
  if (!rc) throw new Error(`no rules/${name}`);
  return rc;
}

/** The node's rulesets (one per family) and its addresses, as in the golden files. */
function node(name: string): { rulesets: Ruleset[]; nodeIPs: string[] } {
  const rc = cluster(name);
  return {
    rulesets: rc.families.map((family) => compileIptablesRules(goldenState(rc.cluster, family))),
    nodeIPs: resolveNode(rc.cluster).ips,
  };
}

const NODE = '192.168.0.2';
const OTHER_NODE = '192.168.0.3';
const CLIENT = '203.0.113.2';
const BLOCKED = '203.0.113.130';
const POD = '10.244.0.9';
const REMOTE_POD = '10.244.1.50';

const flows: Record<string, PacketFlowTest[]> = {
  'clusterip-basic': [
    { name: 'one endpoint', sourceIP: POD, destIP: '10.96.0.11', destPort: 80, output: '10.244.0.5:8080' },
    // Endpoints sort as text, so 10.244.1.11 comes before 10.244.1.1.
    { name: 'three endpoints in text order', sourceIP: POD, destIP: '10.96.0.12', destPort: 80, output: '10.244.0.7:8080, 10.244.1.11:8080, 10.244.1.1:8080' },
    { name: 'UDP 53', sourceIP: POD, protocol: 'UDP', destIP: '10.96.0.10', destPort: 53, output: '10.244.0.2:53, 10.244.1.2:53' },
    { name: 'TCP 53', sourceIP: POD, protocol: 'TCP', destIP: '10.96.0.10', destPort: 53, output: '10.244.0.2:53, 10.244.1.2:53' },
    { name: 'SCTP 53', sourceIP: POD, protocol: 'SCTP', destIP: '10.96.0.10', destPort: 53, output: '10.244.0.2:53, 10.244.1.2:53' },
    { name: 'unnamed port to a named target port', sourceIP: POD, destIP: '10.96.0.13', destPort: 9000, output: '10.244.1.20:9090' },
    { name: 'another node to a cluster IP is masqueraded', sourceIP: OTHER_NODE, destIP: '10.96.0.11', destPort: 80, output: '10.244.0.5:8080', masq: true },
    { name: 'hairpin', sourceIP: '10.244.0.5', destIP: '10.96.0.11', destPort: 80, output: '10.244.0.5:8080', masq: true },
    { name: 'a headless service has no rules', sourceIP: POD, destIP: '10.244.0.30', destPort: 80, output: '' },
  ],
  nodeport: [
    { name: 'external to node port', sourceIP: CLIENT, destIP: NODE, destPort: 30080, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: 'localhost to node port', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 30080, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: 'external to eTP=Local node port: the local endpoint, source kept', sourceIP: CLIENT, destIP: NODE, destPort: 30081, output: '10.244.0.8:8080' },
    { name: 'external to eTP=Local node port without a local endpoint', sourceIP: CLIENT, destIP: NODE, destPort: 30082, output: 'DROP' },
    { name: 'pod to eTP=Local node port without a local endpoint: short-circuit', sourceIP: POD, destIP: NODE, destPort: 30082, output: '10.244.1.12:8080' },
    { name: 'node to eTP=Local node port without a local endpoint', sourceIP: NODE, destIP: NODE, destPort: 30082, output: '10.244.1.12:8080', masq: true },
    { name: 'UDP node port', sourceIP: CLIENT, protocol: 'UDP', destIP: NODE, destPort: 30514, output: '10.244.1.14:514', masq: true },
    { name: 'node port without endpoints', sourceIP: CLIENT, destIP: NODE, destPort: 30090, output: 'REJECT' },
  ],
  'nodeport-addresses': [
    { name: 'node IP inside the node-port CIDRs', sourceIP: CLIENT, destIP: NODE, destPort: 30080, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: 'node IP outside the node-port CIDRs', sourceIP: CLIENT, destIP: '192.168.5.2', destPort: 30080, output: '' },
    { name: 'localhost, listed as 127.0.0.1/32', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 30080, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
  ],
  'nodeport-primary': [
    { name: 'primary node IP', sourceIP: CLIENT, destIP: NODE, destPort: 30080, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: 'secondary node IP', sourceIP: CLIENT, destIP: '192.168.7.2', destPort: 30080, output: '' },
    { name: 'localhost node ports off', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 30080, output: '' },
    { name: "this node's pod to eTP=Local node port: short-circuit to every endpoint", sourceIP: POD, destIP: NODE, destPort: 30081, output: '10.244.0.8:8080, 10.244.1.9:8080' },
    // NodeCIDR detection: pods of other nodes are not local traffic here.
    { name: "another node's pod to eTP=Local node port: local endpoint only", sourceIP: REMOTE_POD, destIP: NODE, destPort: 30081, output: '10.244.0.8:8080' },
    { name: "another node's pod to a cluster IP is masqueraded", sourceIP: REMOTE_POD, destIP: '10.96.1.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: "this node's pod to a cluster IP is not", sourceIP: POD, destIP: '10.96.1.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080' },
  ],
  'loadbalancer-source-ranges': [
    { name: 'allowed client to VIP 1', sourceIP: CLIENT, destIP: '198.51.100.10', destPort: 443, output: '10.244.0.5:8443, 10.244.1.6:8443', masq: true },
    { name: 'allowed client to VIP 2', sourceIP: CLIENT, destIP: '198.51.100.11', destPort: 443, output: '10.244.0.5:8443, 10.244.1.6:8443', masq: true },
    { name: 'blocked client to VIP', sourceIP: BLOCKED, destIP: '198.51.100.10', destPort: 443, output: 'DROP' },
    { name: 'pod outside the ranges', sourceIP: POD, destIP: '198.51.100.10', destPort: 443, output: 'DROP' },
    { name: 'node inside the ranges', sourceIP: NODE, destIP: '198.51.100.10', destPort: 443, output: '10.244.0.5:8443, 10.244.1.6:8443', masq: true },
    { name: 'VIP as source, allowed because a range holds the node IP', sourceIP: '198.51.100.11', destIP: '198.51.100.11', destPort: 443, output: '10.244.0.5:8443, 10.244.1.6:8443', masq: true },
    { name: 'node port ignores source ranges', sourceIP: BLOCKED, destIP: NODE, destPort: 31443, output: '10.244.0.5:8443, 10.244.1.6:8443', masq: true },
    { name: 'eTP=Local VIP: local endpoint, source kept', sourceIP: CLIENT, destIP: '198.51.100.12', destPort: 443, output: '10.244.0.8:8443' },
    { name: 'eTP=Local VIP: the node is outside the range', sourceIP: NODE, destIP: '198.51.100.12', destPort: 443, output: 'DROP' },
    { name: 'health check node port', sourceIP: CLIENT, destIP: NODE, destPort: 32100, output: 'ACCEPT' },
    { name: 'ipMode Proxy ingress is not captured', sourceIP: CLIENT, destIP: '198.51.100.13', destPort: 80, output: '' },
    { name: 'source ranges without a VIP: node port works', sourceIP: BLOCKED, destIP: NODE, destPort: 31081, output: '10.244.0.14:8080', masq: true },
  ],
  'traffic-policy-local': [
    { name: 'external to eTP=Local VIP', sourceIP: CLIENT, destIP: '198.51.100.20', destPort: 80, output: '10.244.0.5:8080' },
    { name: 'pod to eTP=Local VIP: short-circuit', sourceIP: POD, destIP: '198.51.100.20', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080' },
    { name: 'external to eTP=Local node port', sourceIP: CLIENT, destIP: NODE, destPort: 30101, output: '10.244.0.5:8080' },
    { name: 'external to VIP without local endpoints', sourceIP: CLIENT, destIP: '198.51.100.21', destPort: 80, output: 'DROP' },
    { name: 'external to external IP without local endpoints', sourceIP: CLIENT, destIP: '192.0.2.21', destPort: 80, output: 'DROP' },
    { name: 'external to node port without local endpoints', sourceIP: CLIENT, destIP: NODE, destPort: 30102, output: 'DROP' },
    { name: 'pod to VIP without local endpoints: short-circuit', sourceIP: POD, destIP: '198.51.100.21', destPort: 80, output: '10.244.1.9:8080' },
    { name: 'node to VIP without local endpoints', sourceIP: NODE, destIP: '198.51.100.21', destPort: 80, output: '10.244.1.9:8080', masq: true },
    { name: 'iTP=Local cluster IP: local endpoints', sourceIP: POD, destIP: '10.96.3.12', destPort: 80, output: '10.244.0.10:8080, 10.244.0.11:8080' },
    { name: 'iTP=Local cluster IP without local endpoints', sourceIP: POD, destIP: '10.96.3.13', destPort: 80, output: 'DROP' },
    { name: 'both Local: cluster IP', sourceIP: POD, destIP: '10.96.3.14', destPort: 80, output: '10.244.0.15:8080' },
    { name: 'both Local: external to node port', sourceIP: CLIENT, destIP: NODE, destPort: 30104, output: '10.244.0.15:8080' },
    { name: 'both Local: pod to node port is short-circuited to every endpoint', sourceIP: POD, destIP: NODE, destPort: 30104, output: '10.244.0.15:8080, 10.244.1.16:8080' },
  ],
  'session-affinity': [
    // kube-proxy's tracer never matches --rcheck: every endpoint is listed.
    { name: 'fresh client', sourceIP: POD, destIP: '10.96.4.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080, 10.244.1.7:8080' },
    { name: 'eTP=Local with affinity, external', sourceIP: CLIENT, destIP: NODE, destPort: 30200, output: '10.244.0.10:8080, 10.244.0.9:8080' },
  ],
  'terminating-endpoints': [
    { name: 'mixed: cluster IP uses ready endpoints only', sourceIP: POD, destIP: '10.96.5.10', destPort: 80, output: '10.244.0.1:8080, 10.244.0.2:8080, 10.244.1.5:8080' },
    { name: 'mixed: external uses local ready endpoints', sourceIP: CLIENT, destIP: '198.51.100.30', destPort: 80, output: '10.244.0.1:8080, 10.244.0.2:8080' },
    { name: 'draining-local: cluster IP uses the remote ready one', sourceIP: POD, destIP: '10.96.5.11', destPort: 80, output: '10.244.1.15:8080' },
    { name: 'draining-local: external falls back to local serving-terminating', sourceIP: CLIENT, destIP: '198.51.100.31', destPort: 80, output: '10.244.0.12:8080, 10.244.0.13:8080' },
    { name: 'draining-cluster: serving-terminating everywhere', sourceIP: POD, destIP: '10.96.5.12', destPort: 80, output: '10.244.0.22:8080, 10.244.1.23:8080' },
    { name: 'draining-cluster: external too, masqueraded', sourceIP: CLIENT, destIP: '198.51.100.32', destPort: 80, output: '10.244.0.22:8080, 10.244.1.23:8080', masq: true },
    { name: 'draining-remote: cluster IP', sourceIP: POD, destIP: '10.96.5.13', destPort: 80, output: '10.244.1.35:8080' },
    { name: 'draining-remote: external has no local endpoint', sourceIP: CLIENT, destIP: '198.51.100.33', destPort: 80, output: 'DROP' },
    { name: 'dead: cluster IP', sourceIP: POD, destIP: '10.96.5.14', destPort: 80, output: 'REJECT' },
    { name: 'dead: external', sourceIP: CLIENT, destIP: '198.51.100.34', destPort: 80, output: 'REJECT' },
  ],
  'no-endpoints': [
    { name: 'cluster IP', sourceIP: POD, destIP: '10.96.6.10', destPort: 80, output: 'REJECT' },
    { name: 'external IP', sourceIP: CLIENT, destIP: '192.0.2.61', destPort: 80, output: 'REJECT' },
    { name: 'VIP (no firewall chain without endpoints)', sourceIP: BLOCKED, destIP: '198.51.100.61', destPort: 80, output: 'REJECT' },
    { name: 'node port', sourceIP: CLIENT, destIP: NODE, destPort: 30401, output: 'REJECT' },
    { name: 'health check node port is still accepted', sourceIP: CLIENT, destIP: NODE, destPort: 32020, output: 'ACCEPT' },
    { name: 'only not-ready endpoints: UDP cluster IP', sourceIP: POD, protocol: 'UDP', destIP: '10.96.6.12', destPort: 53, output: 'REJECT' },
    { name: 'only not-ready endpoints: UDP node port', sourceIP: CLIENT, protocol: 'UDP', destIP: NODE, destPort: 30402, output: 'REJECT' },
  ],
  'external-ips': [
    { name: 'first external IP', sourceIP: CLIENT, destIP: '192.0.2.10', destPort: 9000, output: '10.244.0.5:9000, 10.244.1.6:9000', masq: true },
    { name: 'second external IP', sourceIP: CLIENT, destIP: '192.0.2.11', destPort: 9000, output: '10.244.0.5:9000, 10.244.1.6:9000', masq: true },
    { name: 'eTP=Local external IP', sourceIP: CLIENT, destIP: '192.0.2.12', destPort: 9000, output: '10.244.0.8:9000' },
    { name: 'eTP=Local external IP without local endpoints', sourceIP: CLIENT, destIP: '192.0.2.13', destPort: 9000, output: 'DROP' },
    { name: 'pod to that external IP: short-circuit', sourceIP: POD, destIP: '192.0.2.13', destPort: 9000, output: '10.244.1.12:9000' },
  ],
  'masquerade-all': [
    { name: 'pod to cluster IP is masqueraded', sourceIP: POD, destIP: '10.96.8.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: 'external to node port', sourceIP: CLIENT, destIP: NODE, destPort: 30600, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    // The masqueradeAll rule matches the cluster IP, not the VIP the pod asked for.
    { name: 'pod to eTP=Local VIP: short-circuit, not masqueraded', sourceIP: POD, destIP: '198.51.100.80', destPort: 80, output: '10.244.0.8:8080, 10.244.1.9:8080' },
  ],
  'no-local-detector': [
    { name: 'pod to cluster IP', sourceIP: POD, destIP: '10.96.9.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080' },
    { name: 'external to cluster IP: no detector, no masquerade', sourceIP: CLIENT, destIP: '10.96.9.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080' },
    { name: 'pod to eTP=Local VIP: no short-circuit', sourceIP: POD, destIP: '198.51.100.90', destPort: 80, output: '10.244.0.8:8080' },
    { name: 'node to eTP=Local VIP', sourceIP: NODE, destIP: '198.51.100.90', destPort: 80, output: '10.244.0.8:8080, 10.244.1.9:8080', masq: true },
    { name: 'localhost node ports off', sourceIP: '127.0.0.1', destIP: '127.0.0.1', destPort: 30701, output: '' },
  ],
  'dual-stack': [
    { name: 'IPv4 pod to IPv4 cluster IP', sourceIP: POD, destIP: '10.96.10.10', destPort: 80, output: '10.244.0.5:8080, 10.244.1.6:8080' },
    { name: 'IPv6 pod to IPv6 cluster IP', sourceIP: 'fd00:10:244::9', destIP: 'fd00:10:96::a', destPort: 80, output: '[fd00:10:244:1::6]:8080, [fd00:10:244::5]:8080' },
    { name: 'IPv6 external to IPv6 node port', sourceIP: '2001:db8:ff::1', destIP: '2001:db8::2', destPort: 30800, output: '[fd00:10:244:1::6]:8080, [fd00:10:244::5]:8080', masq: true },
    { name: 'IPv4 external to IPv4 node port', sourceIP: CLIENT, destIP: NODE, destPort: 30800, output: '10.244.0.5:8080, 10.244.1.6:8080', masq: true },
    { name: 'IPv6 localhost node ports never work', sourceIP: '::1', destIP: '::1', destPort: 30800, output: '' },
    { name: 'IPv6 VIP, allowed client, eTP=Local', sourceIP: '2001:db8:ff::5', destIP: '2001:db8:ff::10', destPort: 80, output: '[fd00:10:244::9]:8080' },
    { name: 'IPv6 VIP, blocked client', sourceIP: '2001:db9::1', destIP: '2001:db8:ff::10', destPort: 80, output: 'DROP' },
    { name: 'an IPv6-only service has no IPv4 rules', sourceIP: POD, destIP: '10.96.10.12', destPort: 80, output: '10.244.1.12:8080' },
  ],
  'topology-hints': [
    { name: 'zone hints: only zone-a endpoints', sourceIP: POD, destIP: '10.96.11.10', destPort: 80, output: '10.244.0.5:8080, 10.244.2.6:8080' },
    { name: 'no hint for this zone: every endpoint', sourceIP: POD, destIP: '10.96.11.11', destPort: 80, output: '10.244.1.8:8080, 10.244.1.9:8080' },
    { name: 'an endpoint without hints: every endpoint', sourceIP: POD, destIP: '10.96.11.12', destPort: 80, output: '10.244.0.10:8080, 10.244.1.11:8080' },
    { name: 'node hints (PreferSameNode): this node only', sourceIP: POD, destIP: '10.96.11.13', destPort: 80, output: '10.244.0.12:8080' },
  ],
  // Manifests as written (kpsim.flags: --allocate): the nginx Deployment's three pods, one per
  // created node (node-1 192.168.0.2 is this one), behind nginx-service's first free ClusterIP.
  'nginx-deployment': [
    { name: 'pod to nginx-service: the three pods the Deployment made', sourceIP: POD, destIP: '10.96.0.2', destPort: 80, output: '10.244.0.2:8080, 10.244.1.2:8080, 10.244.2.2:8080' },
    { name: 'another node to nginx-service is masqueraded', sourceIP: OTHER_NODE, destIP: '10.96.0.2', destPort: 80, output: '10.244.0.2:8080, 10.244.1.2:8080, 10.244.2.2:8080', masq: true },
    { name: 'hairpin from one of its pods', sourceIP: '10.244.0.2', destIP: '10.96.0.2', destPort: 80, output: '10.244.0.2:8080, 10.244.1.2:8080, 10.244.2.2:8080', masq: true },
    { name: "10.96.0.1 is default/kubernetes's, never handed out", sourceIP: POD, destIP: '10.96.0.1', destPort: 80, output: '' },
  ],
  example: [
    { name: 'node port', sourceIP: CLIENT, destIP: NODE, destPort: 30080, output: '10.244.0.5:8080, 10.244.1.6:8080, 10.244.1.7:8080', masq: true },
    { name: 'LB with source range, eTP=Local', sourceIP: '198.51.100.7', destIP: '203.0.113.50', destPort: 443, output: '10.244.0.8:8443' },
    { name: 'LB, client outside the range', sourceIP: CLIENT, destIP: '203.0.113.50', destPort: 443, output: 'DROP' },
    { name: 'external IP', sourceIP: CLIENT, destIP: '192.0.2.10', destPort: 9000, output: '10.244.0.11:9000, 10.244.1.12:9000', masq: true },
    { name: 'no endpoints', sourceIP: POD, destIP: '10.96.40.50', destPort: 80, output: 'REJECT' },
    { name: 'iTP=Local without local endpoints', sourceIP: POD, destIP: '10.96.50.60', destPort: 80, output: 'DROP' },
  ],
};

for (const [name, cases] of Object.entries(flows)) {
  test(`rules/${name}`, async (t) => {
    const { rulesets, nodeIPs } = node(name);
    await runPacketFlowTests(t, rulesets, nodeIPs, cases);
  });
}

test('every iptables-mode example cluster has a packet-flow table (large-cluster and the fixture aside)', () => {
  const covered = new Set([...Object.keys(flows), 'large-cluster', 'kube-proxy-fixture']);
  const iptablesMode = [...clusters.values()].filter((rc) => rc.cluster.config.mode === 'iptables').map((rc) => rc.name);
  assert.deepEqual(iptablesMode.filter((n) => !covered.has(n)), []);
});

// Session affinity needs conntrack-free memory of clients: the recent lists. kube-proxy's own
// tracer cannot follow them (a --rcheck rule never matches there), so these are kernel-only.
const affinityCases: { name: string; ageSeconds?: number; endpoint: string; want: string[] }[] = [
  { name: 'a client seen 10 s ago sticks to its endpoint', ageSeconds: 10, endpoint: '10.244.1.6:8080', want: ['10.244.1.6:8080'] },
  { name: 'at 599 s the entry still holds (timeout 600 s)', ageSeconds: 599, endpoint: '10.244.1.7:8080', want: ['10.244.1.7:8080'] },
  { name: 'after the timeout the client is spread again', ageSeconds: 601, endpoint: '10.244.1.7:8080', want: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'] },
];
for (const c of affinityCases) {
  test(`rules/session-affinity: ${c.name}`, () => {
    const { rulesets, nodeIPs } = node('session-affinity');
    const sep = endpointChainName('default/sticky:http', 'TCP', c.endpoint);
    const tracer = createTracer(rulesets, { localAddresses: nodeIPs, recent: { [sep]: [{ address: POD, ageSeconds: c.ageSeconds ?? 0 }] } });
    const got = tracer.trace({ proto: 'tcp', src: POD, dst: '10.96.4.10', dport: 80 });
    assert.equal(got.verdict, 'DNAT');
    assert.deepEqual(got.endpoints, c.want, got.hops.map((h) => h.rule).join('\n'));
    // Another client is not affected.
    const other = tracer.trace({ proto: 'tcp', src: '10.244.0.99', dst: '10.96.4.10', dport: 80 });
    assert.deepEqual(other.endpoints, ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']);
  });
}
