/**
 * compileIptablesRules against kube-proxy's own expectations (pkg/proxy/iptables/proxier_test.go
 * and proxier.go): chain-name hashes, --probability text, the large-cluster threshold, the
 * node-port address variants of TestNodePorts, the options of TestMasqueradeRule and
 * TestDropInvalidRule, single-feature cases (TestBadIPs, ipMode Proxy, ExternalName), and
 * addBuiltinJumps (kube-proxy's EnsureChain / EnsureRule(Prepend) for the built-in chains).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type IptablesCompileOptions, LARGE_CLUSTER_ENDPOINTS_THRESHOLD, compileIptablesRules } from '../../src/iptables/compile.js';
import { chainHash, endpointChainName, servicePortChainNames } from '../../src/iptables/names.js';
import { computeProbability, formatFixed10, formatFixed10Exact } from '../../src/iptables/probability.js';
import { renderRule } from '../../src/iptables/render.js';
import type { Ruleset, TableName } from '../../src/iptables/types.js';
import { type BuiltinJump, addBuiltinJumps } from '../../src/iptables/with-jumps.js';
import type { Protocol } from '../../src/model/types.js';
import { kubeProxyHash } from '../helpers/kube-proxy-hash.js';
import {
  type KubeProxyConfigurationManifest,
  type Manifest,
  ep,
  fixtureState,
  makeService,
  makeSlice,
  overallServices,
  tcpPort,
} from '../helpers/cluster-builders.js';

/** The rendered rules of one chain; [] when the chain is not declared. */
function chainRules(ruleset: Ruleset, table: TableName, chain: string): string[] {
  return ruleset.tables.get(table)?.chains.get(chain)?.rules.map((r) => renderRule(r)) ?? [];
}

function chainNames(ruleset: Ruleset, table: TableName): string[] {
  return [...(ruleset.tables.get(table)?.chains.keys() ?? [])];
}

function compile(manifests: readonly Manifest[], opts: { family?: 4 | 6; config?: (c: KubeProxyConfigurationManifest) => void; compile?: IptablesCompileOptions } = {}): Ruleset {
  const state = fixtureState(manifests, { ...(opts.family ? { family: opts.family } : {}), ...(opts.config ? { config: opts.config } : {}) });
  return compileIptablesRules(state, opts.compile);
}

// ---------------------------------------------------------------------------------------------
// Chain names. Every expected hash below appears in kube-proxy's proxier_test.go.

const serviceChainCases: { spn: string; protocol: Protocol; hash: string }[] = [
  { spn: 'ns1/svc1:p80', protocol: 'TCP', hash: 'XPGD46QRK7WJZT7O' },
  { spn: 'ns2/svc2:p80', protocol: 'TCP', hash: 'GNZBNJ2PO5MGZ6GT' },
  { spn: 'ns3/svc3:p80', protocol: 'TCP', hash: 'X27LE4BHSL4DOUIK' },
  { spn: 'ns4/svc4:p80', protocol: 'TCP', hash: '4SW47YFZTEDKD3PK' },
  { spn: 'ns5/svc5:p80', protocol: 'TCP', hash: 'NUKIZ6OKUXPJNT4C' },
  { spn: 'ns2/svc2:p8080', protocol: 'TCP', hash: '2VJB64SDSIJUP5T6' },
  { spn: 'ns4/svc4:p8082', protocol: 'TCP', hash: 'EBDQOQU5SJFXRIL3' },
];
for (const c of serviceChainCases) {
  test(`service chains of ${c.spn}/${c.protocol} share the hash ${c.hash}`, () => {
    const names = servicePortChainNames(c.spn, c.protocol);
    assert.deepEqual(
      [names.clusterPolicyChain, names.localPolicyChain, names.externalChain, names.firewallChain],
      [`KUBE-SVC-${c.hash}`, `KUBE-SVL-${c.hash}`, `KUBE-EXT-${c.hash}`, `KUBE-FW-${c.hash}`],
    );
  });
}

const endpointChainCases: { spn: string; endpoint: string; chain: string }[] = [
  { spn: 'ns1/svc1:p80', endpoint: '10.180.0.1:80', chain: 'KUBE-SEP-SXIVWICOYRO3J4NJ' },
  { spn: 'ns2/svc2:p80', endpoint: '10.180.0.2:80', chain: 'KUBE-SEP-RS4RBKLTHTF2IUXJ' },
  { spn: 'ns3/svc3:p80', endpoint: '10.180.0.3:80', chain: 'KUBE-SEP-OYPFS5VJICHGATKP' },
  { spn: 'ns4/svc4:p80', endpoint: '10.180.0.4:80', chain: 'KUBE-SEP-UKSFD7AGPMPPLUHC' },
  { spn: 'ns4/svc4:p80', endpoint: '10.180.0.5:80', chain: 'KUBE-SEP-C6EBXVWJJZMIWKLZ' },
  { spn: 'ns5/svc5:p80', endpoint: '10.180.0.3:80', chain: 'KUBE-SEP-I77PXRDZVX7PMWMN' },
  { spn: 'ns1/svc1:p80', endpoint: '10.0.0.0:80', chain: 'KUBE-SEP-DKGQUZGBKLTPAR56' },
  { spn: 'ns3/svc3:p8081', endpoint: '203.0.113.4:8081', chain: 'KUBE-SEP-RUVVH7YV3PHQBDOS' },
  { spn: 'ns4/svc4:p8082', endpoint: '10.4.0.1:8082', chain: 'KUBE-SEP-SU5STNODRYEWJAUF' },
  { spn: 'ns3/svc3:p80', endpoint: '10.0.3.3:80', chain: 'KUBE-SEP-JVVZVJ7BSEPPRNBS' },
];
for (const c of endpointChainCases) {
  test(`endpoint chain of ${c.spn} -> ${c.endpoint} is ${c.chain}`, () => {
    assert.equal(endpointChainName(c.spn, 'TCP', c.endpoint), c.chain);
  });
}

test('the chain hash agrees with base32(sha256) from node:crypto, at every block boundary', () => {
  const inputs = ['', 'a', 'ns1/svc1:p80tcp', 'kube-system/kube-dns:dns-tcptcp[fd00:10:244::2]:53', 'x'.repeat(300), 'ns1/ünïcode:p80tcp'];
  for (const length of [54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128]) inputs.push('k'.repeat(length));
  for (let i = 0; i < 200; i++) inputs.push(`ns${i}/svc-${i * 7}:p${i}udp10.${i % 256}.${(i * 3) % 256}.1:${1000 + i}`);
  for (const input of inputs) assert.equal(chainHash(input), kubeProxyHash(input), input);
});

test('the protocol is part of the hash, lower case', () => {
  assert.notEqual(servicePortChainNames('ns2/svc2:dns', 'UDP').hash, servicePortChainNames('ns2/svc2:dns', 'TCP').hash);
  assert.equal(servicePortChainNames('ns2/svc2:dns', 'UDP').hash, kubeProxyHash('ns2/svc2:dnsudp'));
  assert.equal(servicePortChainNames('ns2/svc2:dns', 'SCTP').hash, kubeProxyHash('ns2/svc2:dnssctp'));
});

// ---------------------------------------------------------------------------------------------
// Probabilities: kube-proxy's TestComputeProbability, plus Go's round-half-to-even.

const probabilityCases: [number, string][] = [
  [1, '1.0000000000'],
  [2, '0.5000000000'],
  [3, '0.3333333333'],
  [10, '0.1000000000'],
  [100, '0.0100000000'],
  [1000, '0.0010000000'],
  [10000, '0.0001000000'],
  [100000, '0.0000100000'],
  [100001, '0.0000099999'],
  // 1/2048 = 0.00048828125 exactly: Go's %0.10f rounds the tie to even (toFixed would give ...813).
  [2048, '0.0004882812'],
  [6, '0.1666666667'],
  [7, '0.1428571429'],
];
for (const [n, want] of probabilityCases) {
  test(`probability 1/${n} is ${want}`, () => assert.equal(computeProbability(n), want));
}

test('probabilities strictly grow as n falls from 100000 to 2 (as kube-proxy checks)', () => {
  let previous = 0;
  for (let n = 100000; n > 1; n--) {
    const p = Number.parseFloat(computeProbability(n));
    assert.ok(p > previous, `1/${n} = ${p} is not above 1/${n + 1} = ${previous}`);
    previous = p;
  }
});

test('formatFixed10 without BigInt is formatFixed10Exact (the float\'s exact bits) for 1/n and values near ties', () => {
  const values: number[] = [];
  for (let n = 1; n <= 100000; n++) values.push(1 / n);
  // Ties and near-ties: k + 1/2 ten-thousand-millionths, exactly and one float either side.
  for (const k of [0, 1, 4, 5, 4882812, 4882813, 9999999999]) {
    const tie = (k + 0.5) / 1e10;
    values.push(tie, tie * (1 + Number.EPSILON), tie * (1 - Number.EPSILON));
  }
  values.push(0, 0.25, 0.5, 0.99999999995, 0.999999999949, 1, 12.5, 2 ** -1074, 1 - Number.EPSILON / 2);
  const wrong = values.filter((x) => formatFixed10(x) !== formatFixed10Exact(x)).map((x) => `${x}: ${formatFixed10(x)} != ${formatFixed10Exact(x)}`);
  assert.deepEqual(wrong, []);
});

test('formatFixed10 rounds halves to even and other values to nearest', () => {
  assert.equal(formatFixed10(0.00000000005), '0.0000000001'); // the double is slightly above the half
  assert.equal(formatFixed10(0.25), '0.2500000000');
  assert.equal(formatFixed10(12.5), '12.5000000000');
  assert.equal(formatFixed10(0), '0.0000000000');
});

// ---------------------------------------------------------------------------------------------
// Fixed chains, in kube-proxy's declaration order.

test('an empty IPv4 sync declares the fixed chains in kube-proxy order', () => {
  const ruleset = compile([]);
  assert.deepEqual([...ruleset.tables.keys()], ['filter', 'nat']);
  assert.deepEqual(chainNames(ruleset, 'filter'), ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL']);
  assert.deepEqual(chainNames(ruleset, 'nat'), ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']);
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-MARK-MASQ'), ['-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000']);
});

const optionCases: { name: string; options: IptablesCompileOptions; tcpBeLiberal?: boolean; table: TableName; chain: string; want: string[] }[] = [
  {
    name: 'MASQUERADE without --random-fully by default (TestMasqueradeRule)',
    options: {},
    table: 'nat',
    chain: 'KUBE-POSTROUTING',
    want: [
      '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
    ],
  },
  {
    name: 'MASQUERADE --random-fully when iptables has it (TestMasqueradeRule)',
    options: { randomFully: true },
    table: 'nat',
    chain: 'KUBE-POSTROUTING',
    want: [
      '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ],
  },
  {
    name: 'INVALID drop with the nfacct counter (TestDropInvalidRule)',
    options: {},
    table: 'filter',
    chain: 'KUBE-FORWARD',
    want: [
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ],
  },
  {
    name: 'INVALID drop without nfacct counters (TestDropInvalidRule)',
    options: { nfacct: false },
    table: 'filter',
    chain: 'KUBE-FORWARD',
    want: [
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ],
  },
  {
    name: 'no INVALID drop with conntrack tcp_be_liberal (TestDropInvalidRule)',
    options: {},
    tcpBeLiberal: true,
    table: 'filter',
    chain: 'KUBE-FORWARD',
    want: [
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
      '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ],
  },
];
for (const c of optionCases) {
  test(c.name, () => {
    const ruleset = compile([], { compile: c.options, config: (cfg) => { if (c.tcpBeLiberal) cfg.conntrack = { tcpBeLiberal: true }; } });
    assert.deepEqual(chainRules(ruleset, c.table, c.chain), c.want);
  });
}

// ---------------------------------------------------------------------------------------------
// Node-port addresses and localhost node ports (TestNodePorts, TestHealthCheckNodePort, proxier.go).

const NODEPORTS = '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"';
const FIREWALL_RULE = '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP';

const nodePortCases: {
  name: string;
  family: 4 | 6;
  localhostNodePorts: boolean;
  nodePortAddresses?: string[];
  dispatch: string[];
  firewall: boolean;
  localhostRule: boolean;
}[] = [
  { name: 'ipv4, localhost-nodeports enabled', family: 4, localhostNodePorts: true, dispatch: [`${NODEPORTS} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`], firewall: true, localhostRule: true },
  { name: 'ipv4, localhost-nodeports disabled', family: 4, localhostNodePorts: false, dispatch: [`${NODEPORTS} -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS`], firewall: false, localhostRule: false },
  {
    name: 'ipv4, localhost-nodeports disabled, localhost in nodeport-addresses',
    family: 4,
    localhostNodePorts: false,
    nodePortAddresses: ['192.168.0.0/24', '127.0.0.1/32'],
    dispatch: [`${NODEPORTS} -d 192.168.0.2 -j KUBE-NODEPORTS`],
    firewall: false,
    localhostRule: false,
  },
  {
    name: 'ipv4, multiple nodeport-addresses',
    family: 4,
    localhostNodePorts: false,
    nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'],
    dispatch: [`${NODEPORTS} -d 192.168.0.2 -j KUBE-NODEPORTS`, `${NODEPORTS} -d 192.168.1.2 -j KUBE-NODEPORTS`],
    firewall: false,
    localhostRule: false,
  },
  {
    name: 'ipv4, localhost-nodeports enabled but node-port addresses without loopback turn it off',
    family: 4,
    localhostNodePorts: true,
    nodePortAddresses: ['192.168.0.0/24'],
    dispatch: [`${NODEPORTS} -d 192.168.0.2 -j KUBE-NODEPORTS`],
    firewall: false,
    localhostRule: false,
  },
  {
    name: 'ipv4, only loopback node-port addresses (TestHealthCheckNodePort)',
    family: 4,
    localhostNodePorts: true,
    nodePortAddresses: ['127.0.0.0/8'],
    dispatch: [`${NODEPORTS} -d 127.0.0.1 -j KUBE-NODEPORTS`],
    firewall: true,
    localhostRule: true,
  },
  { name: 'ipv4, primary', family: 4, localhostNodePorts: true, nodePortAddresses: ['primary'], dispatch: [`${NODEPORTS} -d 192.168.0.2 -j KUBE-NODEPORTS`], firewall: false, localhostRule: false },
  { name: 'ipv4, only IPv6 CIDRs mean all IPv4 addresses', family: 4, localhostNodePorts: true, nodePortAddresses: ['2001:db8::/64'], dispatch: [`${NODEPORTS} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`], firewall: true, localhostRule: true },
  { name: 'ipv6, localhost-nodeports enabled', family: 6, localhostNodePorts: true, dispatch: [`${NODEPORTS} -m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS`], firewall: false, localhostRule: false },
  { name: 'ipv6, localhost-nodeports disabled', family: 6, localhostNodePorts: false, dispatch: [`${NODEPORTS} -m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS`], firewall: false, localhostRule: false },
  {
    name: 'ipv6, multiple nodeport-addresses',
    family: 6,
    localhostNodePorts: false,
    nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'],
    dispatch: [`${NODEPORTS} -d 2001:db8::1 -j KUBE-NODEPORTS`],
    firewall: false,
    localhostRule: false,
  },
  { name: 'ipv6, loopback in node-port addresses is skipped', family: 6, localhostNodePorts: true, nodePortAddresses: ['::1/128', '2001:db8::/64'], dispatch: [`${NODEPORTS} -d 2001:db8::1 -j KUBE-NODEPORTS`], firewall: false, localhostRule: false },
  { name: 'ipv6, primary', family: 6, localhostNodePorts: true, nodePortAddresses: ['primary'], dispatch: [`${NODEPORTS} -d 2001:db8::1 -j KUBE-NODEPORTS`], firewall: false, localhostRule: false },
];

function nodePortService(family: 4 | 6): Manifest[] {
  return [
    makeService('ns1', 'svc1', (svc) => {
      svc.spec.type = 'NodePort';
      svc.spec.clusterIP = family === 4 ? '172.30.0.41' : 'fd00:172:30::41';
      svc.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => {
      eps.addressType = family === 4 ? 'IPv4' : 'IPv6';
      eps.endpoints = family === 4 ? [ep('10.180.0.1'), ep('10.180.2.1', 'test-node')] : [ep('fd00:10:180::1'), ep('fd00:10:180::2:1', 'test-node')];
      eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }];
    }),
  ];
}

for (const c of nodePortCases) {
  test(`node ports: ${c.name}`, () => {
    const ruleset = compile(nodePortService(c.family), {
      family: c.family,
      config: (cfg) => {
        cfg.iptables = { ...cfg.iptables, localhostNodePorts: c.localhostNodePorts };
        if (c.nodePortAddresses) cfg.nodePortAddresses = c.nodePortAddresses;
      },
    });
    const dispatch = chainRules(ruleset, 'nat', 'KUBE-SERVICES').filter((r) => r.endsWith('-j KUBE-NODEPORTS'));
    assert.deepEqual(dispatch, c.dispatch);
    assert.deepEqual(chainRules(ruleset, 'filter', 'KUBE-FIREWALL'), c.firewall ? [FIREWALL_RULE] : []);
    assert.equal(chainNames(ruleset, 'filter').includes('KUBE-FIREWALL'), c.firewall, 'KUBE-FIREWALL declared only with its rule');
    const localhost = chainRules(ruleset, 'nat', 'KUBE-NODEPORTS').filter((r) => r.includes('127.0.0.0/8'));
    const ext = servicePortChainNames('ns1/svc1:p80', 'TCP').externalChain;
    assert.deepEqual(localhost, c.localhostRule ? [`-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3001 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j ${ext}`] : []);
  });
}

test('node ports: no localhost rule without the nfacct counter', () => {
  const ruleset = compile(nodePortService(4), { compile: { nfacct: false } });
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-NODEPORTS'), ['-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-XPGD46QRK7WJZT7O']);
});

// ---------------------------------------------------------------------------------------------
// Large-cluster mode (TestSyncProxyRulesLargeClusterMode).

function largeClusterServices(withSvc3: boolean): Manifest[] {
  const half = LARGE_CLUSTER_ENDPOINTS_THRESHOLD / 2 - 1;
  const manifests: Manifest[] = [
    makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns2', 'svc2', (s) => { s.spec.clusterIP = '172.30.0.42'; s.spec.ports = [tcpPort('p8080', 8080)]; }),
    makeService('ns3', 'svc3', (s) => { s.spec.clusterIP = '172.30.0.43'; s.spec.ports = [tcpPort('p8081', 8081)]; }),
    makeSlice('ns1', 'svc1', 1, (eps) => {
      eps.endpoints = Array.from({ length: half }, (_, i) => ep(`10.0.${i % 256}.${Math.floor(i / 256)}`));
      eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }];
    }),
    makeSlice('ns2', 'svc2', 1, (eps) => {
      eps.endpoints = Array.from({ length: half }, (_, i) => ep(`10.1.${i % 256}.${Math.floor(i / 256)}`));
      eps.ports = [{ name: 'p8080', port: 8080, protocol: 'TCP' }];
    }),
  ];
  if (withSvc3) {
    manifests.push(makeSlice('ns3', 'svc3', 1, (eps) => {
      eps.endpoints = [ep('203.0.113.4'), ep('203.0.113.8'), ep('203.0.113.12')];
      eps.ports = [{ name: 'p8081', port: 8081, protocol: 'TCP' }];
    }));
  }
  return manifests;
}

function dnatRules(ruleset: Ruleset): string[] {
  return [...ruleset.tables.get('nat')!.chains.values()].filter((c) => c.name.startsWith('KUBE-SEP-')).flatMap((c) => c.rules.map((r) => renderRule(r))).filter((r) => r.includes('-j DNAT'));
}

test('large-cluster threshold is kube-proxy\'s 1000 endpoints', () => assert.equal(LARGE_CLUSTER_ENDPOINTS_THRESHOLD, 1000));

test('at 998 endpoints every endpoint rule keeps its comment', () => {
  const ruleset = compile(largeClusterServices(false), { config: (c) => { c.iptables = { ...c.iptables, masqueradeAll: true }; } });
  const dnat = dnatRules(ruleset);
  assert.equal(dnat.length, 998);
  assert.ok(dnat.every((r) => r.includes('--comment')));
  assert.ok(dnat.includes('-A KUBE-SEP-DKGQUZGBKLTPAR56 -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80'));
  assert.ok(chainRules(ruleset, 'nat', 'KUBE-SVC-XPGD46QRK7WJZT7O').slice(1).every((r) => r.includes('--comment "ns1/svc1:p80 -> ')));
});

test('above 1000 endpoints SVC->SEP and SEP rules lose their comments, nothing else does', () => {
  const ruleset = compile(largeClusterServices(true), { config: (c) => { c.iptables = { ...c.iptables, masqueradeAll: true }; } });
  const dnat = dnatRules(ruleset);
  assert.equal(dnat.length, 1001);
  assert.ok(dnat.every((r) => !r.includes('--comment')));
  assert.ok(dnat.includes('-A KUBE-SEP-RUVVH7YV3PHQBDOS -m tcp -p tcp -j DNAT --to-destination 203.0.113.4:8081'));
  assert.ok(dnat.includes('-A KUBE-SEP-DKGQUZGBKLTPAR56 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80'));
  const svc = chainRules(ruleset, 'nat', 'KUBE-SVC-XPGD46QRK7WJZT7O');
  // masqueradeAll: the cluster-IP masquerade rule keeps its comment and has no "! -s".
  assert.equal(svc[0], '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-MARK-MASQ');
  assert.ok(svc.slice(1).every((r) => !r.includes('--comment')));
  assert.match(svc[1]!, /^-A KUBE-SVC-XPGD46QRK7WJZT7O -m statistic --mode random --probability 0.0020040080 -j KUBE-SEP-/);
});

test('chain names kept between syncs: the same state again gives the same rules, and a port with a new name or protocol over the same endpoint lists is hashed afresh', () => {
  const state = fixtureState(overallServices());
  const first = compileIptablesRules(state);
  assert.deepEqual(compileIptablesRules(state), first, 'a second sync of the same state differs from the first');
  const sp = state.servicePorts.find((p) => p.categorized.allReachableEndpoints.length > 0)!;
  for (const change of [{ spn: `${sp.info.spn}x` }, { protocol: 'UDP' as const }]) {
    // The same endpoint list objects (where the names are kept) under another service port.
    const info = { ...sp.info, ...change };
    const renamed = { ...state, servicePorts: [{ ...sp, info }] };
    const nat = compileIptablesRules(renamed).tables.get('nat')!;
    const seps = [...nat.chains.keys()].filter((c) => c.startsWith('KUBE-SEP-')).sort();
    const want = sp.categorized.allReachableEndpoints.map((e) => endpointChainName(info.spn, info.protocol, e.endpoint)).sort();
    assert.deepEqual(seps, want, `${JSON.stringify(change)}: KUBE-SEP chains ${seps.join(' ')}, want ${want.join(' ')}`);
    const svc = servicePortChainNames(info.spn, info.protocol).clusterPolicyChain;
    assert.ok(nat.chains.has(svc), `${JSON.stringify(change)}: no ${svc} among ${[...nat.chains.keys()].join(' ')}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Single features.

test('TestOverallIPTablesRules: the nat chains kube-proxy creates', () => {
  const ruleset = compile(overallServices());
  assert.deepEqual(chainNames(ruleset, 'nat').sort(), [
    'KUBE-EXT-4SW47YFZTEDKD3PK', 'KUBE-EXT-GNZBNJ2PO5MGZ6GT', 'KUBE-EXT-NUKIZ6OKUXPJNT4C', 'KUBE-EXT-X27LE4BHSL4DOUIK',
    'KUBE-FW-NUKIZ6OKUXPJNT4C', 'KUBE-MARK-MASQ', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING',
    'KUBE-SEP-C6EBXVWJJZMIWKLZ', 'KUBE-SEP-I77PXRDZVX7PMWMN', 'KUBE-SEP-OYPFS5VJICHGATKP', 'KUBE-SEP-RS4RBKLTHTF2IUXJ',
    'KUBE-SEP-SXIVWICOYRO3J4NJ', 'KUBE-SEP-UKSFD7AGPMPPLUHC', 'KUBE-SERVICES',
    'KUBE-SVC-4SW47YFZTEDKD3PK', 'KUBE-SVC-GNZBNJ2PO5MGZ6GT', 'KUBE-SVC-NUKIZ6OKUXPJNT4C', 'KUBE-SVC-X27LE4BHSL4DOUIK', 'KUBE-SVC-XPGD46QRK7WJZT7O',
  ]);
  // Session affinity on svc5, in kube-proxy's argument order.
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-SVC-NUKIZ6OKUXPJNT4C').slice(1), [
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN',
    '-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN',
  ]);
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-SEP-I77PXRDZVX7PMWMN')[1], '-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80');
  // svc2: eTP=Local with no local endpoint: short-circuit rules but no jump to KUBE-SVL.
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-EXT-GNZBNJ2PO5MGZ6GT'), [
    '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
    '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
    '-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT',
  ]);
  assert.deepEqual(chainRules(ruleset, 'filter', 'KUBE-EXTERNAL-SERVICES'), [
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP',
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP',
    '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP',
  ]);
});

test('TestBadIPs: sloppy addresses and CIDRs are written in canonical form', () => {
  const ruleset = compile([
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.clusterIP = '172.30.0.041';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.status.loadBalancer.ingress = [{ ip: '1.2.3.004' }];
      s.spec.externalIPs = ['192.168.099.022'];
      s.spec.loadBalancerSourceRanges = ['203.0.113.000/025'];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.00.001')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]);
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-SERVICES').slice(0, 3), [
    '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-XPGD46QRK7WJZT7O',
    '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-FW-XPGD46QRK7WJZT7O',
  ]);
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-FW-XPGD46QRK7WJZT7O'), [
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-XPGD46QRK7WJZT7O',
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"',
  ]);
  assert.deepEqual(chainRules(ruleset, 'filter', 'KUBE-PROXY-FIREWALL'), [
    '-A KUBE-PROXY-FIREWALL -m comment --comment "ns1/svc1:p80 traffic not accepted by KUBE-FW-XPGD46QRK7WJZT7O" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP',
  ]);
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-SEP-SXIVWICOYRO3J4NJ'), [
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
    '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
  ]);
});

// With the LoadBalancerIPMode gate off (kube-proxy 1.30 and 1.31 allow it; kube-proxy's test
// emulates 1.31 for it), every ingress IP gets its rules, as before the feature.
const ingressModeCases: { name: string; ipModeEnabled: boolean; ipMode?: 'VIP' | 'Proxy'; expectRule: boolean }[] = [
  { name: 'LoadBalancerIPMode disabled, ipMode Proxy', ipModeEnabled: false, ipMode: 'Proxy', expectRule: true },
  { name: 'LoadBalancerIPMode disabled, ipMode VIP', ipModeEnabled: false, ipMode: 'VIP', expectRule: true },
  { name: 'LoadBalancerIPMode disabled, ipMode unset', ipModeEnabled: false, expectRule: true },
  { name: 'LoadBalancerIPMode enabled, ipMode Proxy', ipModeEnabled: true, ipMode: 'Proxy', expectRule: false },
  { name: 'LoadBalancerIPMode enabled, ipMode VIP', ipModeEnabled: true, ipMode: 'VIP', expectRule: true },
  { name: 'LoadBalancerIPMode enabled, ipMode unset', ipModeEnabled: true, expectRule: true },
];
for (const c of ingressModeCases) {
  test(`TestLoadBalancerIngressRouteTypeProxy: ${c.name}`, () => {
    // Enabled is the default: those cases leave featureGates out.
    const config = c.ipModeEnabled ? undefined : (k: KubeProxyConfigurationManifest) => { k.featureGates = { LoadBalancerIPMode: false }; };
    const ruleset = compile([
      makeService('ns1', 'svc1', (s) => {
        s.spec.type = 'LoadBalancer';
        s.spec.clusterIP = '10.20.30.41';
        s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4', ...(c.ipMode ? { ipMode: c.ipMode } : {}) }];
      }),
      makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
    ], config ? { config } : {});
    const rules = chainRules(ruleset, 'nat', 'KUBE-SERVICES');
    assert.equal(rules.some((r) => r.includes('-d 1.2.3.4 ')), c.expectRule, rules.join('\n'));
  });
}

test('ExternalName and headless services get no rules', () => {
  const ruleset = compile([
    makeService('ns1', 'ext', (s) => { s.spec.type = 'ExternalName'; s.spec.externalName = 'example.com'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns1', 'headless', (s) => { s.spec.clusterIP = 'None'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeSlice('ns1', 'headless', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]);
  assert.deepEqual(compile([]), ruleset);
});

test('a health check node port is accepted once per service port, endpoints or not', () => {
  const ruleset = compile([
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.externalTrafficPolicy = 'Local';
      s.spec.clusterIP = '172.30.0.41';
      s.spec.healthCheckNodePort = 30000;
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 }), tcpPort('p443', 443, { nodePort: 3002 })];
    }),
  ]);
  assert.deepEqual(chainRules(ruleset, 'filter', 'KUBE-NODEPORTS'), [
    '-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p443 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT',
    '-A KUBE-NODEPORTS -m comment --comment "ns1/svc1:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT',
  ]);
});

test('a source range holding the node IP also admits the VIPs as sources', () => {
  const ruleset = compile([
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.clusterIP = '172.30.0.41';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }, { ip: '5.6.7.8' }];
      s.spec.loadBalancerSourceRanges = ['192.168.0.0/24', ' 203.0.113.0/25'];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]);
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-FW-XPGD46QRK7WJZT7O'), [
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 192.168.0.0/24 -j KUBE-EXT-XPGD46QRK7WJZT7O',
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-XPGD46QRK7WJZT7O',
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 1.2.3.4 -j KUBE-EXT-XPGD46QRK7WJZT7O',
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 loadbalancer IP" -s 5.6.7.8 -j KUBE-EXT-XPGD46QRK7WJZT7O',
    '-A KUBE-FW-XPGD46QRK7WJZT7O -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by KUBE-PROXY-FIREWALL"',
  ]);
});

test('IPv6 endpoints are written [ip]:port in DNAT and comments, bare in -s', () => {
  const ruleset = compile([
    makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = 'fd00:172:30::41'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.addressType = 'IPv6'; eps.endpoints = [ep('fd00:10:180::1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ], { family: 6 });
  const sep = endpointChainName('ns1/svc1:p80', 'TCP', '[fd00:10:180::1]:80');
  assert.deepEqual(chainRules(ruleset, 'nat', 'KUBE-SVC-XPGD46QRK7WJZT7O'), [
    '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d fd00:172:30::41 --dport 80 ! -s fd00:10::/64 -j KUBE-MARK-MASQ',
    `-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> [fd00:10:180::1]:80" -j ${sep}`,
  ]);
  assert.deepEqual(chainRules(ruleset, 'nat', sep), [
    `-A ${sep} -m comment --comment ns1/svc1:p80 -s fd00:10:180::1 -j KUBE-MARK-MASQ`,
    `-A ${sep} -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [fd00:10:180::1]:80`,
  ]);
});

// ---------------------------------------------------------------------------------------------
// addBuiltinJumps.

const jumpCases: { name: string; family: 4 | 6; prepend: boolean; jumps: BuiltinJump[]; filterInput: string[]; declaredFilter: string[] }[] = [
  {
    name: 'appends jumps in the given order; built-in chains come first',
    family: 4,
    prepend: false,
    jumps: [
      { table: 'filter', chain: 'INPUT', args: ['-m', 'comment', '--comment', 'kubernetes health check service ports', '-j', 'KUBE-NODEPORTS'] },
      { table: 'filter', chain: 'INPUT', args: ['-j', 'KUBE-FIREWALL'] },
    ],
    filterInput: ['-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS', '-A INPUT -j KUBE-FIREWALL'],
    declaredFilter: ['INPUT', 'FORWARD', 'OUTPUT', 'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL'],
  },
  {
    name: 'prepends like EnsureRule(Prepend), once per identical rule',
    family: 4,
    prepend: true,
    jumps: [
      { table: 'filter', chain: 'INPUT', args: ['-j', 'KUBE-NODEPORTS'] },
      { table: 'filter', chain: 'INPUT', args: ['-j', 'KUBE-PROXY-FIREWALL'] },
      { table: 'filter', chain: 'INPUT', args: ['-j', 'KUBE-NODEPORTS'] },
    ],
    filterInput: ['-A INPUT -j KUBE-PROXY-FIREWALL', '-A INPUT -j KUBE-NODEPORTS'],
    declaredFilter: ['INPUT', 'FORWARD', 'OUTPUT', 'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL'],
  },
  {
    name: 'creates a missing target chain, as EnsureChain does (KUBE-FIREWALL on IPv6)',
    family: 6,
    prepend: false,
    jumps: [{ table: 'filter', chain: 'INPUT', args: ['-j', 'KUBE-FIREWALL'] }],
    filterInput: ['-A INPUT -j KUBE-FIREWALL'],
    declaredFilter: ['INPUT', 'FORWARD', 'OUTPUT', 'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL'],
  },
];
for (const c of jumpCases) {
  test(`addBuiltinJumps ${c.name}`, () => {
    const ruleset = compile([], { family: c.family });
    const before = JSON.stringify([...ruleset.tables.values()].map((t) => [...t.chains.values()]));
    const withJumps = addBuiltinJumps(ruleset, c.jumps, { prepend: c.prepend });
    assert.deepEqual(chainRules(withJumps, 'filter', 'INPUT'), c.filterInput);
    assert.deepEqual(chainNames(withJumps, 'filter'), c.declaredFilter);
    assert.deepEqual(chainNames(withJumps, 'nat'), ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING', 'KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']);
    assert.equal(withJumps.tables.get('filter')!.chains.get('INPUT')!.policy, 'ACCEPT');
    assert.equal(JSON.stringify([...ruleset.tables.values()].map((t) => [...t.chains.values()])), before, 'the compiled ruleset is left as it was');
  });
}

test('addBuiltinJumps refuses a jump from a chain that is not built in', () => {
  assert.throws(() => addBuiltinJumps(compile([]), [{ table: 'nat', chain: 'KUBE-SERVICES', args: ['-j', 'KUBE-NODEPORTS'] }]), /not a built-in chain/);
});
