/**
 * The ipsets of kube-proxy's IPVS mode: which set each service address goes to (syncProxyRules in
 * pkg/proxy/ipvs/proxier.go), their names per family (NewIPSet in ipset.go), the create options
 * of kube-proxy's ipset util, and membership as xt_set reads it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIpvs } from '../../src/ipvs/compile.js';
import {
  type IPSet,
  IPSET_DEFINITIONS,
  ipsetContains,
  ipsetCreateLine,
  ipsetName,
  orderedEntries,
  renderIPSets,
} from '../../src/ipvs/ipsets.js';
import { ep, fixtureState, makeNode, makeService, makeSlice, overallServices, tcpPort } from '../helpers/cluster-builders.js';

function entriesByName(sets: Iterable<IPSet>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const set of sets) if (set.entries.size > 0) out[set.name] = orderedEntries(set);
  return out;
}

test('kube-proxy\'s overall fixture: every address lands in the set syncProxyRules puts it in', () => {
  const compiled = compileIpvs(fixtureState(overallServices()));
  assert.deepEqual(entriesByName(compiled.ipsets.values()), {
    // Only svc4's endpoint 10.180.0.5 is on test-node: hairpin traffic to it is masqueraded.
    'KUBE-LOOP-BACK': ['10.180.0.5,tcp:80,10.180.0.5'],
    'KUBE-CLUSTER-IP': ['172.30.0.41,tcp:80', '172.30.0.42,tcp:80', '172.30.0.43,tcp:80', '172.30.0.44,tcp:80', '172.30.0.45,tcp:80', '172.30.0.46,tcp:80'],
    // svc4 has externalTrafficPolicy Cluster, svc2 Local.
    'KUBE-EXTERNAL-IP': ['192.168.99.33,tcp:80'],
    'KUBE-EXTERNAL-IP-LOCAL': ['192.168.99.22,tcp:80'],
    'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80', '5.6.7.8,tcp:80'],
    // Only svc5 has source ranges; the node (192.168.0.2) is outside 203.0.113.0/25, so no SOURCE-IP entry.
    'KUBE-LOAD-BALANCER-FW': ['5.6.7.8,tcp:80'],
    'KUBE-LOAD-BALANCER-LOCAL': ['1.2.3.4,tcp:80'],
    'KUBE-LOAD-BALANCER-SOURCE-CIDR': ['5.6.7.8,tcp:80,203.0.113.0/25'],
    // svc4 has no node port (0 without --allocate); bitmaps list ports in numeric order.
    'KUBE-NODE-PORT-TCP': ['3001', '3002', '3003'],
    'KUBE-NODE-PORT-LOCAL-TCP': ['3001'],
    // svc5's health check port is ignored: it is not externalTrafficPolicy Local.
    'KUBE-HEALTH-CHECK-NODE-PORT': ['30000'],
    // Every ClusterIP, and the external and LB IPs that are not the node's own addresses.
    'KUBE-IPVS-IPS': ['1.2.3.4', '172.30.0.41', '172.30.0.42', '172.30.0.43', '172.30.0.44', '172.30.0.45', '172.30.0.46', '192.168.99.22', '192.168.99.33', '5.6.7.8'],
  });
});

const setCases: { name: string; manifests: Parameters<typeof fixtureState>[0]; family?: 4 | 6; want: Record<string, string[]> }[] = [
  {
    name: 'an external IP that is a node address is not bound to kube-ipvs0',
    manifests: [makeService('ns1', 'ext', (s) => { s.spec.clusterIP = '172.30.0.50'; s.spec.externalIPs = ['192.168.99.11']; s.spec.ports = [tcpPort('p80', 80)]; })],
    want: { 'KUBE-CLUSTER-IP': ['172.30.0.50,tcp:80'], 'KUBE-EXTERNAL-IP': ['192.168.99.11,tcp:80'], 'KUBE-IPVS-IPS': ['172.30.0.50'] },
  },
  {
    name: 'an SCTP node port goes to the hash set, once per node address',
    manifests: [makeService('ns1', 'sctp', (s) => {
      s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.51'; s.spec.externalTrafficPolicy = 'Local';
      s.spec.ports = [{ name: 'p', protocol: 'SCTP', port: 7777, nodePort: 30777 }];
    })],
    want: {
      'KUBE-CLUSTER-IP': ['172.30.0.51,sctp:7777'],
      'KUBE-NODE-PORT-SCTP-HASH': ['192.168.0.2,sctp:30777', '192.168.1.2,sctp:30777', '192.168.99.11,sctp:30777'],
      'KUBE-NODE-PORT-LOCAL-SCTP-HASH': ['192.168.0.2,sctp:30777', '192.168.1.2,sctp:30777', '192.168.99.11,sctp:30777'],
      'KUBE-IPVS-IPS': ['172.30.0.51'],
    },
  },
  {
    name: 'UDP node ports have their own bitmaps; every local endpoint, ready or not, is in KUBE-LOOP-BACK',
    manifests: [
      makeService('ns1', 'dns', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.53'; s.spec.ports = [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 }]; }),
      makeSlice('ns1', 'dns', 1, (eps) => {
        eps.endpoints = [ep('10.180.0.7', 'test-node'), ep('10.180.0.8', 'test-node', { ready: false, serving: false, terminating: true }), ep('10.180.0.9', 'other-node')];
        eps.ports = [{ name: 'dns', protocol: 'UDP', port: 5353 }];
      }),
    ],
    want: {
      'KUBE-LOOP-BACK': ['10.180.0.7,udp:5353,10.180.0.7', '10.180.0.8,udp:5353,10.180.0.8'],
      'KUBE-CLUSTER-IP': ['172.30.0.53,udp:53'],
      'KUBE-NODE-PORT-UDP': ['30053'],
      'KUBE-IPVS-IPS': ['172.30.0.53'],
    },
  },
  {
    name: 'a source range holding the node adds the VIP as its own allowed source',
    manifests: [makeService('ns1', 'lb', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.60'; s.spec.ports = [tcpPort('p443', 443, { nodePort: 31443 })];
      s.status.loadBalancer.ingress = [{ ip: '198.51.100.9' }];
      s.spec.loadBalancerSourceRanges = ['192.168.0.0/16', '203.0.113.0/24'];
    })],
    want: {
      'KUBE-CLUSTER-IP': ['172.30.0.60,tcp:443'],
      'KUBE-LOAD-BALANCER': ['198.51.100.9,tcp:443'],
      'KUBE-LOAD-BALANCER-FW': ['198.51.100.9,tcp:443'],
      'KUBE-LOAD-BALANCER-SOURCE-IP': ['198.51.100.9,tcp:443,198.51.100.9'],
      'KUBE-LOAD-BALANCER-SOURCE-CIDR': ['198.51.100.9,tcp:443,192.168.0.0/16', '198.51.100.9,tcp:443,203.0.113.0/24'],
      'KUBE-NODE-PORT-TCP': ['31443'],
      'KUBE-IPVS-IPS': ['172.30.0.60', '198.51.100.9'],
    },
  },
  {
    name: 'a node with no address gets no node-port entries, and its health check port is skipped too',
    manifests: [
      makeNode('test-node', []),
      makeService('ns1', 'lb', (s) => {
        s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '172.30.0.61'; s.spec.externalTrafficPolicy = 'Local'; s.spec.healthCheckNodePort = 32000;
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 30080 })];
      }),
    ],
    want: { 'KUBE-CLUSTER-IP': ['172.30.0.61,tcp:80'], 'KUBE-IPVS-IPS': ['172.30.0.61'] },
  },
  {
    name: 'IPv6: KUBE-6- names, cut to 31 characters',
    family: 6,
    manifests: [makeService('ns1', 'v6', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.clusterIP = 'fd00:172:30::41'; s.spec.ipFamilies = ['IPv6'];
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 30080 })];
      s.status.loadBalancer.ingress = [{ ip: '2001:db8:ff::9' }];
      s.spec.loadBalancerSourceRanges = ['2001:db8:aa::/48'];
    })],
    want: {
      'KUBE-6-CLUSTER-IP': ['fd00:172:30::41,tcp:80'],
      'KUBE-6-LOAD-BALANCER': ['2001:db8:ff::9,tcp:80'],
      'KUBE-6-LOAD-BALANCER-FW': ['2001:db8:ff::9,tcp:80'],
      'KUBE-6-LOAD-BALANCER-SOURCE-CID': ['2001:db8:ff::9,tcp:80,2001:db8:aa::/48'],
      'KUBE-6-NODE-PORT-TCP': ['30080'],
      'KUBE-6-IPVS-IPS': ['2001:db8:ff::9', 'fd00:172:30::41'],
    },
  },
];

for (const c of setCases) {
  test(c.name, () => {
    const compiled = compileIpvs(fixtureState(c.manifests, c.family !== undefined ? { family: c.family } : {}));
    assert.deepEqual(entriesByName(compiled.ipsets.values()), c.want);
  });
}

const nameCases: { base: string; family: 4 | 6; want: string }[] = [
  { base: 'KUBE-CLUSTER-IP', family: 4, want: 'KUBE-CLUSTER-IP' },
  { base: 'KUBE-CLUSTER-IP', family: 6, want: 'KUBE-6-CLUSTER-IP' },
  { base: 'KUBE-LOAD-BALANCER-SOURCE-CIDR', family: 6, want: 'KUBE-6-LOAD-BALANCER-SOURCE-CID' },
  { base: 'KUBE-NODE-PORT-LOCAL-SCTP-HASH', family: 6, want: 'KUBE-6-NODE-PORT-LOCAL-SCTP-HAS' },
  { base: 'KUBE-HEALTH-CHECK-NODE-PORT', family: 6, want: 'KUBE-6-HEALTH-CHECK-NODE-PORT' },
];
for (const c of nameCases) {
  test(`ipset name of ${c.base} on the IPv${c.family} proxier is ${c.want}`, () => {
    assert.equal(ipsetName(c.base, c.family), c.want);
    assert.ok(ipsetName(c.base, c.family).length <= 31);
  });
}

test('create lines carry the ipset util\'s options: family, hashsize 1024, maxelem 65536; bitmaps a range', () => {
  const compiled = compileIpvs(fixtureState(overallServices()));
  const lines = [...compiled.ipsets.values()].map(ipsetCreateLine);
  assert.equal(lines.length, IPSET_DEFINITIONS.length);
  assert.deepEqual(lines, [
    'create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536',
    'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-EXTERNAL-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-EXTERNAL-IP-LOCAL hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-LOAD-BALANCER hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-LOAD-BALANCER-FW hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-LOAD-BALANCER-LOCAL hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-LOAD-BALANCER-SOURCE-IP hash:ip,port,ip family inet hashsize 1024 maxelem 65536',
    'create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536',
    'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
    'create KUBE-NODE-PORT-LOCAL-TCP bitmap:port range 0-65535',
    'create KUBE-NODE-PORT-UDP bitmap:port range 0-65535',
    'create KUBE-NODE-PORT-LOCAL-UDP bitmap:port range 0-65535',
    'create KUBE-NODE-PORT-SCTP-HASH hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-NODE-PORT-LOCAL-SCTP-HASH hash:ip,port family inet hashsize 1024 maxelem 65536',
    'create KUBE-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535',
    'create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536',
  ]);
});

test('ipset save text: each create line followed by its adds', () => {
  const state = fixtureState([makeService('ns1', 'a', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 30080 })]; })]);
  const text = renderIPSets([...compileIpvs(state).ipsets.values()].filter((s) => s.entries.size > 0));
  assert.equal(text, [
    'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
    'add KUBE-CLUSTER-IP 172.30.0.41,tcp:80',
    'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
    'add KUBE-NODE-PORT-TCP 30080',
    'create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536',
    'add KUBE-IPVS-IPS 172.30.0.41',
    '',
  ].join('\n'));
});

function setOf(type: IPSet['type'], entries: string[]): IPSet {
  return { name: 'TEST', baseName: 'KUBE-CLUSTER-IP', type, family: 4, comment: '', entries: new Set(entries) };
}

const memberCases: { name: string; set: IPSet; flags: ('src' | 'dst')[]; packet: { src: string; dst: string; protocol: string; dport: number; sport?: number }; want: boolean }[] = [
  { name: 'hash:ip,port dst,dst matches address, protocol and port', set: setOf('hash:ip,port', ['10.96.0.10,udp:53']), flags: ['dst', 'dst'], packet: { src: '10.0.0.1', dst: '10.96.0.10', protocol: 'udp', dport: 53 }, want: true },
  { name: 'hash:ip,port: the protocol is part of the member', set: setOf('hash:ip,port', ['10.96.0.10,udp:53']), flags: ['dst', 'dst'], packet: { src: '10.0.0.1', dst: '10.96.0.10', protocol: 'tcp', dport: 53 }, want: false },
  { name: 'hash:ip,port src,dst reads the source address', set: setOf('hash:ip,port', ['10.96.0.10,tcp:80']), flags: ['src', 'dst'], packet: { src: '10.96.0.10', dst: '10.96.0.10', protocol: 'tcp', dport: 80 }, want: true },
  { name: 'hash:ip,port,ip dst,dst,src: hairpin from the endpoint itself', set: setOf('hash:ip,port,ip', ['10.180.0.5,tcp:80,10.180.0.5']), flags: ['dst', 'dst', 'src'], packet: { src: '10.180.0.5', dst: '10.180.0.5', protocol: 'tcp', dport: 80 }, want: true },
  { name: 'hash:ip,port,ip: another source is not hairpin', set: setOf('hash:ip,port,ip', ['10.180.0.5,tcp:80,10.180.0.5']), flags: ['dst', 'dst', 'src'], packet: { src: '10.180.0.6', dst: '10.180.0.5', protocol: 'tcp', dport: 80 }, want: false },
  { name: 'hash:ip,port,net: a source inside the CIDR', set: setOf('hash:ip,port,net', ['5.6.7.8,tcp:80,203.0.113.0/25']), flags: ['dst', 'dst', 'src'], packet: { src: '203.0.113.99', dst: '5.6.7.8', protocol: 'tcp', dport: 80 }, want: true },
  { name: 'hash:ip,port,net: a source outside the CIDR', set: setOf('hash:ip,port,net', ['5.6.7.8,tcp:80,203.0.113.0/25']), flags: ['dst', 'dst', 'src'], packet: { src: '203.0.113.130', dst: '5.6.7.8', protocol: 'tcp', dport: 80 }, want: false },
  { name: 'bitmap:port holds bare ports, whatever the protocol', set: setOf('bitmap:port', ['30080']), flags: ['dst'], packet: { src: '1.1.1.1', dst: '192.168.0.2', protocol: 'udp', dport: 30080 }, want: true },
  { name: 'hash:ip dst', set: setOf('hash:ip', ['10.96.0.1']), flags: ['dst'], packet: { src: '1.1.1.1', dst: '10.96.0.1', protocol: 'tcp', dport: 22 }, want: true },
];
for (const c of memberCases) {
  test(`xt_set: ${c.name}`, () => {
    assert.equal(ipsetContains(c.set, c.flags, c.packet), c.want);
  });
}
