/**
 * compileNftablesRules against kube-proxy's own expectations (pkg/proxy/nftables/proxier_test.go
 * after kubernetes#132456, and proxier.go): the whole table of TestOverallNFTablesRules and of
 * TestSyncProxyRulesRepeated's first sync, chain-name hashes, and one case per feature where the
 * tests only trace packets (node-port addresses, masqueradeAll, no local detector, IPv6, ipMode
 * Proxy, source ranges, traffic policies, terminating endpoints, topology, ServiceCIDRs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { ChainMap } from '../../src/nftables/chain-map.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { EndpointChain } from '../../src/nftables/endpoint-chain.js';
import { endpointChainName, endpointChainNameBase, hashAndTruncate, servicePortChainNameBase } from '../../src/nftables/names.js';
import { elementText, renderNftScript } from '../../src/nftables/render-script.js';
import type { NftRuleset } from '../../src/nftables/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import {
  type KubeProxyConfigurationManifest,
  type Manifest,
  ep,
  fixtureState,
  makeService,
  makeSlice,
  manifestsToYAML,
  overallServices,
  tcpPort,
  fixtureNode,
  fixtureConfig,
} from '../helpers/cluster-builders.js';
import { BASE_RULES, FIXTURE_NODE_PORT_ADDRESSES, FIXTURE_SERVICE_CIDRS, OVERALL_SERVICES, REPEATED_FIRST_SYNC, sortTransaction } from './fixtures.js';

interface CompileOpts {
  family?: 4 | 6;
  config?: (c: KubeProxyConfigurationManifest) => void;
  serviceCIDRs?: readonly string[];
}

/** Compile on kube-proxy's fake proxier (its node-port addresses unless the config says otherwise). */
function compile(manifests: readonly Manifest[], opts: CompileOpts = {}): NftRuleset {
  const state = fixtureState(manifests, {
    ...(opts.family ? { family: opts.family } : {}),
    config: (c) => {
      c.nodePortAddresses = FIXTURE_NODE_PORT_ADDRESSES;
      opts.config?.(c);
    },
  });
  return compileNftablesRules(state, { serviceCIDRs: opts.serviceCIDRs ?? FIXTURE_SERVICE_CIDRS });
}

/** ns1/svc1: IPv6 only, port p80, ClientIP affinity for 300 s. */
function ipv6AffinityService(): Manifest {
  return makeService('ns1', 'svc1', (s) => {
    s.spec.clusterIP = 'fd00:172:30::41';
    s.spec.ipFamilies = ['IPv6'];
    s.spec.ports = [tcpPort('p80', 80)];
    s.spec.sessionAffinity = 'ClientIP';
    s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 300 } };
  });
}

function chainRules(rs: NftRuleset, chain: string): string[] | undefined {
  return rs.tables[0]!.chains.get(chain)?.rules.map((r) => (r.comment === undefined ? r.text : `${r.text} comment "${r.comment}"`));
}

function elements(rs: NftRuleset, set: string): string[] | undefined {
  return rs.tables[0]!.sets.get(set)?.elements.map(elementText);
}

function chainNames(rs: NftRuleset): string[] {
  return [...rs.tables[0]!.chains.keys()];
}

function diffLines(want: string[], got: string[]): string {
  const missing = want.filter((l) => !got.includes(l));
  const extra = got.filter((l) => !want.includes(l));
  return `missing:\n  ${missing.join('\n  ')}\nextra:\n  ${extra.join('\n  ')}`;
}

test('TestOverallNFTablesRules: the whole table, as kube-proxy\'s test compares it', () => {
  const got = sortTransaction(renderNftScript(compile(overallServices())));
  const want = sortTransaction(BASE_RULES + OVERALL_SERVICES);
  assert.deepEqual(got, want, diffLines(want, got));
});

test('TestSyncProxyRulesRepeated: the first sync', () => {
  const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' as const }];
  const p8080 = [{ name: 'p8080', port: 8080, protocol: 'TCP' as const }];
  const rs = compile([
    makeService('ns1', 'svc1', (s) => { s.spec.type = 'ClusterIP'; s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns2', 'svc2', (s) => { s.spec.type = 'ClusterIP'; s.spec.clusterIP = '172.30.0.42'; s.spec.ports = [tcpPort('p8080', 8080)]; }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.0.1.1')]; eps.ports = p80; }),
    makeSlice('ns2', 'svc2', 1, (eps) => { eps.endpoints = [ep('10.0.2.1')]; eps.ports = p8080; }),
  ]);
  const got = sortTransaction(renderNftScript(rs));
  const want = sortTransaction(BASE_RULES + REPEATED_FIRST_SYNC);
  assert.deepEqual(got, want, diffLines(want, got));
});

const HASHES: { name: string; base: string }[] = [
  { name: 'ns1/svc1/tcp/p80', base: 'ULMVA6XW-ns1/svc1/tcp/p80' },
  { name: 'ns1/svc1/tcp/p80__10.180.0.1/80', base: '5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80' },
  { name: 'ns5/svc5/tcp/p80__10.180.0.3/80', base: 'GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80' },
  { name: 'testing/service/tcp/http', base: 'P4ZYZVCF-testing/service/tcp/http' },
  { name: 'testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80', base: 'U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80' },
];

for (const h of HASHES) {
  test(`hashAndTruncate(${h.name}) is kube-proxy's`, () => assert.equal(hashAndTruncate(h.name), h.base));
}

test('chain names: service port and IPv6 endpoint (":" becomes ".")', () => {
  const spn = { namespace: 'testing', name: 'service', port: 'http', protocol: 'TCP' as const };
  assert.equal(servicePortChainNameBase(spn), 'P4ZYZVCF-testing/service/tcp/http');
  assert.equal(endpointChainNameBase(spn, '[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:80'), 'U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80');
});

// endpointChainName makes the name from the port's text and the endpoint's parts without the
// general path's intermediate strings: it must name every endpoint as that path does.
const ENDPOINT_NAME_CASES: { spn: { namespace: string; name: string; port: string; protocol: 'TCP' | 'UDP' | 'SCTP' }; endpoint: string }[] = [
  { spn: { namespace: 'ns1', name: 'svc1', port: 'p80', protocol: 'TCP' }, endpoint: '10.180.0.1:80' },
  { spn: { namespace: 'ns1', name: 'svc1', port: '', protocol: 'UDP' }, endpoint: '10.180.0.1:53' },
  // The "/port" of the endpoint named before is reused only for the same digits.
  { spn: { namespace: 'ns1', name: 'svc1', port: '', protocol: 'UDP' }, endpoint: '10.180.0.2:54' },
  { spn: { namespace: 'ns1', name: 'svc1', port: '', protocol: 'UDP' }, endpoint: '10.180.0.3:54' },
  { spn: { namespace: 'ns1', name: 'svc1', port: '', protocol: 'UDP' }, endpoint: '10.180.0.4:5' },
  { spn: { namespace: 'ns1', name: 'svc1', port: '', protocol: 'UDP' }, endpoint: '[fd00::5]:5' },
  { spn: { namespace: 'ns1', name: 'svc1', port: '', protocol: 'UDP' }, endpoint: '[fd00::6]:6' },
  { spn: { namespace: 'testing', name: 'service', port: 'http', protocol: 'SCTP' }, endpoint: '[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:80' },
  { spn: { namespace: 'testing', name: 'service', port: 'http', protocol: 'TCP' }, endpoint: '[::ffff:10.0.0.1]:8080' },
  // Long enough to be cut (the general path); a base of exactly 240 characters, and of 241 (cut).
  { spn: { namespace: 'n'.repeat(63), name: 's'.repeat(63), port: 'p'.repeat(63), protocol: 'TCP' }, endpoint: '[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:65535' },
  { spn: { namespace: 'n'.repeat(63), name: 's'.repeat(63), port: 'p'.repeat(77), protocol: 'TCP' }, endpoint: '10.180.100.200:65535' },
  { spn: { namespace: 'n'.repeat(63), name: 's'.repeat(63), port: 'p'.repeat(78), protocol: 'TCP' }, endpoint: '10.180.100.200:65535' },
];

for (const c of ENDPOINT_NAME_CASES) {
  test(`endpointChainName(${c.spn.namespace.slice(0, 8)}/${c.spn.name.slice(0, 8)}, ${c.endpoint}) is "endpoint-" + endpointChainNameBase`, () => {
    assert.equal(endpointChainName(c.spn, c.endpoint), `endpoint-${endpointChainNameBase(c.spn, c.endpoint)}`);
  });
}

test('endpointChainName refuses an endpoint that is not ip:port, as endpointChainNameBase does', () => {
  const spn = { namespace: 'ns1', name: 'svc1', port: 'p80', protocol: 'TCP' as const };
  for (const bad of ['10.180.0.1', '10.180.0.1:', ':80', '10.180.0.1:8a', 'fd80::1:80', '[fd80::1]80', '[]:80', '[fd80::1]:', '[fd80::1]:8a', '[fd80]::80', '[a]b]:80']) {
    assert.throws(() => endpointChainName(spn, bad), /is not ip:port/, bad);
    assert.throws(() => endpointChainNameBase(spn, bad), /is not ip:port/, bad);
  }
});

test('a name longer than 240 characters is cut to 237 and "..."', () => {
  const long = `${'n'.repeat(63)}/${'s'.repeat(63)}/tcp/${'p'.repeat(63)}__fd80.abcd.12..a1b2.c3d4.e5f6.9999/65535`;
  const name = hashAndTruncate(long);
  assert.equal(name.length, 240);
  assert.ok(name.endsWith('...'), name);
  assert.ok(name.startsWith(hashAndTruncate(long).slice(0, 9)));
});

// ------------------------------------------------------------------------------------------
// One feature per case.

const nodePortService = [
  makeService('ns1', 'svc1', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })]; }),
  makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
];

interface NodePortCase {
  name: string;
  family: 4 | 6;
  nodePortAddresses: string[];
  nodePortIPs: string[] | undefined;
  services: string[];
  nodePortCheck: string[];
}

const NODE_PORT_CASES: NodePortCase[] = [
  {
    name: 'unset: nftables mode defaults to the primary node IP',
    family: 4, nodePortAddresses: [], nodePortIPs: ['192.168.0.2'],
    services: ['ip daddr . meta l4proto . th dport vmap @service-ips', 'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports'],
    nodePortCheck: ['ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports'],
  },
  {
    name: 'two CIDRs: every node IP inside them',
    family: 4, nodePortAddresses: ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], nodePortIPs: ['192.168.0.2', '192.168.1.2'],
    services: ['ip daddr . meta l4proto . th dport vmap @service-ips', 'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports'],
    nodePortCheck: ['ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports'],
  },
  {
    name: 'loopback is skipped: localhost node ports are not supported',
    family: 4, nodePortAddresses: ['127.0.0.0/8', '192.168.0.2/32'], nodePortIPs: ['192.168.0.2'],
    services: ['ip daddr . meta l4proto . th dport vmap @service-ips', 'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports'],
    nodePortCheck: ['ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports'],
  },
  {
    name: '0.0.0.0/0: no set, every local address but loopback',
    family: 4, nodePortAddresses: ['0.0.0.0/0'], nodePortIPs: undefined,
    services: ['ip daddr . meta l4proto . th dport vmap @service-ips', 'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports'],
    nodePortCheck: ['ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports'],
  },
  {
    name: 'IPv6, unset: the primary IPv6 node IP',
    family: 6, nodePortAddresses: [], nodePortIPs: ['2001:db8::1'],
    services: ['ip6 daddr . meta l4proto . th dport vmap @service-ips', 'ip6 daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports'],
    nodePortCheck: ['ip6 daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports'],
  },
  {
    name: 'IPv6, only IPv4 CIDRs given: the family matches all',
    family: 6, nodePortAddresses: ['192.168.0.0/24'], nodePortIPs: undefined,
    services: ['ip6 daddr . meta l4proto . th dport vmap @service-ips', 'fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports'],
    nodePortCheck: ['ip6 daddr != ::1 meta l4proto . th dport vmap @no-endpoint-nodeports'],
  },
];

for (const c of NODE_PORT_CASES) {
  test(`node-port addresses: ${c.name}`, () => {
    const rs = compile(nodePortService, { family: c.family, config: (cfg) => { cfg.nodePortAddresses = c.nodePortAddresses; } });
    assert.deepEqual(elements(rs, 'nodeport-ips'), c.nodePortIPs);
    assert.deepEqual(chainRules(rs, 'services'), c.services);
    assert.deepEqual(chainRules(rs, 'nodeport-endpoints-check'), c.nodePortCheck);
  });
}

const lbLocal = [
  makeService('ns2', 'svc2', (s) => {
    s.spec.type = 'LoadBalancer';
    s.spec.externalTrafficPolicy = 'Local';
    s.spec.clusterIP = '172.30.0.42';
    s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
    s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
    s.spec.healthCheckNodePort = 30000;
  }),
  makeSlice('ns2', 'svc2', 1, (eps) => { eps.endpoints = [ep('10.180.0.2', 'test-node'), ep('10.180.1.2', 'other')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
];

test('masqueradeAll: every ClusterIP connection is marked (no detector match)', () => {
  const rs = compile(lbLocal, { config: (c) => { c.iptables = { masqueradeAll: true }; } });
  assert.deepEqual(chainRules(rs, 'service-42NFTM6N-ns2/svc2/tcp/p80')?.[0], 'ip daddr 172.30.0.42 jump mark-for-masquerade');
});

test('no local detector: no ClusterIP masquerade rule and no pod short-circuit', () => {
  const rs = compile(lbLocal, { config: (c) => { c.clusterCIDR = ''; } });
  const rules = chainRules(rs, 'service-42NFTM6N-ns2/svc2/tcp/p80')!;
  assert.ok(rules.every((r) => !r.includes('mark-for-masquerade')), rules.join('\n'));
  assert.deepEqual(chainRules(rs, 'external-42NFTM6N-ns2/svc2/tcp/p80'), [
    'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
    'fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"',
    'goto local-42NFTM6N-ns2/svc2/tcp/p80',
  ]);
  assert.deepEqual(chainRules(rs, 'local-42NFTM6N-ns2/svc2/tcp/p80'), ['numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }']);
});

test('health-check node ports get no rule (nftables mode has no firewall-bypass accepts)', () => {
  const rs = compile(lbLocal);
  const text = renderNftScript(rs);
  assert.ok(!text.includes('30000'), text);
  const accepts = [...rs.tables[0]!.chains.values()].flatMap((c) => c.rules).filter((r) => /\baccept\b/.test(r.text));
  assert.deepEqual(accepts, [], 'no accept verdict anywhere');
});

test('IPv6: ip6 matches, ipv6_addr sets, bracketed DNAT, dots for colons in endpoint names', () => {
  const rs = compile([
    ipv6AffinityService(),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.addressType = 'IPv6'; eps.endpoints = [ep('fd00:10:180::1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ], { family: 6 });
  const table = rs.tables[0]!;
  assert.equal(`${table.family} ${table.name}`, 'ip6 kube-proxy');
  const endpoint = chainNames(rs).find((n) => n.startsWith('endpoint-'))!;
  assert.match(endpoint, /^endpoint-[A-Z2-7]{8}-ns1\/svc1\/tcp\/p80__fd00\.10\.180\.\.1\/80$/);
  const affinity = endpoint.replace('endpoint-', 'affinity-');
  assert.deepEqual(chainRules(rs, endpoint), [
    'ip6 saddr fd00:10:180::1 jump mark-for-masquerade',
    `update @${affinity} { ip6 saddr }`,
    'meta l4proto tcp dnat to [fd00:10:180::1]:80',
  ]);
  const set = table.sets.get(affinity)!;
  assert.deepEqual({ type: set.type, flags: set.flags, timeout: set.timeoutSeconds }, { type: 'ipv6_addr', flags: ['dynamic', 'timeout'], timeout: 300 });
  assert.equal(table.sets.get('service-ips')!.type, 'ipv6_addr . inet_proto . inet_service : verdict');
  assert.deepEqual(chainRules(rs, 'cluster-ips-check'), [
    'ip6 daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    'ip6 daddr { fd00:10:96::/112 } drop comment "Drop traffic to unallocated ClusterIPs"',
  ]);
});

test('a load balancer ingress with ipMode Proxy gets no service-ips element', () => {
  const rs = compile([
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.clusterIP = '10.20.30.41';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.status.loadBalancer.ingress = [{ ip: '1.2.3.4', ipMode: 'Proxy' }, { ip: '1.2.3.5', ipMode: 'VIP' }];
    }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]);
  const keys = elements(rs, 'service-ips')!;
  assert.ok(keys.some((e) => e.startsWith('1.2.3.5 . tcp . 80')), keys.join('\n'));
  assert.ok(!keys.some((e) => e.startsWith('1.2.3.4 ')), keys.join('\n'));
});

test('source ranges: the firewall chain exists without endpoints; VIPs are allowed when a range holds the node IP', () => {
  const lb = (endpoints: boolean): Manifest[] => [
    makeService('ns1', 'svc1', (s) => {
      s.spec.type = 'LoadBalancer';
      s.spec.clusterIP = '172.30.0.41';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3001 })];
      s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }, { ip: '5.6.7.8' }];
      s.spec.loadBalancerSourceRanges = ['192.168.0.0/24', ' 203.0.113.0/25'];
    }),
    ...(endpoints ? [makeSlice('ns1', 'svc1', 1, (eps) => { eps.endpoints = [ep('10.180.0.1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; })] : []),
  ];
  for (const withEndpoints of [true, false]) {
    const rs = compile(lb(withEndpoints));
    const firewall = chainNames(rs).find((n) => n.startsWith('firewall-') && n.includes('/'))!;
    assert.deepEqual(chainRules(rs, firewall), ['ip saddr != { 192.168.0.0/24 , 203.0.113.0/25 , 1.2.3.4 , 5.6.7.8 } drop'], `endpoints: ${withEndpoints}`);
    assert.deepEqual(elements(rs, 'firewall-ips'), [`1.2.3.4 . tcp . 80 : goto ${firewall}`, `5.6.7.8 . tcp . 80 : goto ${firewall}`]);
  }
});

test('internalTrafficPolicy Local without a local endpoint: the ClusterIP drops, the node port still works', () => {
  const rs = compile([
    makeService('ns3', 'svc3', (s) => {
      s.spec.type = 'NodePort';
      s.spec.clusterIP = '172.30.0.43';
      s.spec.internalTrafficPolicy = 'Local';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 3003 })];
    }),
    makeSlice('ns3', 'svc3', 1, (eps) => { eps.endpoints = [ep('10.180.1.3', 'remote')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]);
  assert.deepEqual(elements(rs, 'no-endpoint-services'), ['172.30.0.43 . tcp . 80 comment "ns3/svc3:p80" : drop']);
  assert.deepEqual(elements(rs, 'service-nodeports'), ['tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80']);
  assert.equal(chainRules(rs, 'local-4AT6LBPK-ns3/svc3/tcp/p80'), undefined, 'no local policy chain without local endpoints');
});

test('endpoints: serving-terminating ones when no ready one is left; topology hints of this zone only', () => {
  const rs = compile([
    makeService('ns1', 'term', (s) => { s.spec.clusterIP = '172.30.1.1'; s.spec.ports = [tcpPort('', 80)]; }),
    makeSlice('ns1', 'term', 1, (eps) => {
      eps.endpoints = [
        ep('10.0.1.2', 'test-node', { ready: false, serving: true, terminating: true }),
        ep('10.0.1.4', 'other', { ready: false, serving: false, terminating: true }),
        ep('10.0.1.5', 'other', { ready: false, serving: true, terminating: true }),
      ];
      eps.ports = [{ name: '', port: 80, protocol: 'TCP' }];
    }),
  ]);
  const rule = chainRules(rs, chainNames(rs).find((n) => n.startsWith('service-') && n.includes('term'))!)!.at(-1)!;
  assert.match(rule, /^numgen random mod 2 vmap \{ 0 : goto endpoint-\w+-ns1\/term\/tcp\/__10\.0\.1\.2\/80 , 1 : goto endpoint-\w+-ns1\/term\/tcp\/__10\.0\.1\.5\/80 \}$/);
});

test('a multi-port service adds its cluster IP to cluster-ips once', () => {
  const rs = compile([
    makeService('ns2', 'svc2', (s) => { s.spec.clusterIP = '172.30.0.42'; s.spec.ports = [tcpPort('http', 80), tcpPort('https', 443)]; }),
  ]);
  assert.deepEqual(elements(rs, 'cluster-ips'), ['172.30.0.42']);
  assert.equal(elements(rs, 'no-endpoint-services')!.length, 2);
});

test('ServiceCIDR objects among the manifests give the drop rule; none, no rule', () => {
  const serviceCIDR = 'apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: {name: kubernetes}\nspec:\n  cidrs: [172.30.0.0/16, 172.50.0.0/16, fd00:10:96::/112]\n';
  const cluster = clusterFromManifests([
    { file: 'svc.yaml', text: manifestsToYAML([...overallServices(), fixtureNode(), fixtureConfig()]) },
    { file: 'servicecidr.yaml', text: serviceCIDR },
  ]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  assert.deepEqual(state.serviceCIDRs, ['172.30.0.0/16', '172.50.0.0/16']);
  assert.equal(chainRules(compileNftablesRules(state), 'cluster-ips-check')![1], 'ip daddr { 172.30.0.0/16,172.50.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"');
  assert.equal(chainRules(compile(overallServices(), { serviceCIDRs: [] }), 'cluster-ips-check')!.length, 1);
});

test('a KubeProxyConfiguration with mode: nftables is read (nftables mode\'s node-port default follows)', () => {
  const cluster = clusterFromManifests([
    { file: 'svc.yaml', text: manifestsToYAML([...nodePortService, fixtureNode()]) },
    { file: 'kube-proxy.yaml', text: 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nclusterCIDR: 10.0.0.0/8\nhostnameOverride: test-node\n' },
  ]);
  assert.equal(cluster.config.mode, 'nftables');
  const rs = compileNftablesRules(buildProxierState(cluster, resolveNode(cluster), 4));
  assert.deepEqual(elements(rs, 'nodeport-ips'), ['192.168.0.2']);
});

/** Where the chains of a table compiled without shared work are: fixed chains indexed by name, service ports' as runs. */
function chainLayout(rs: NftRuleset): { own: string[]; runs: string[][]; endpointObjects: number; endpointChains: number } {
  const chains = rs.tables[0]!.chains;
  assert.ok(chains instanceof ChainMap, 'the table keeps its chains in a ChainMap');
  const { own, segments } = chains.runs();
  let endpointObjects = 0;
  let endpointChains = 0;
  for (const run of segments) {
    for (const chain of run) {
      if (!chain.name.startsWith('endpoint-')) continue;
      endpointChains++;
      if (chain instanceof EndpointChain) endpointObjects++;
    }
  }
  return { own: own.map((c) => c.name), runs: segments.map((run) => run.map((c) => c.name)), endpointObjects, endpointChains };
}

test('without shared work a service port\'s chains are declared as runs, its endpoint chains named from their hashes, never indexed by name', () => {
  const cases: { name: string; manifests: Manifest[]; family?: 4 | 6 }[] = [
    { name: 'TestOverallNFTablesRules', manifests: overallServices() },
    {
      name: 'IPv6 with ClientIP affinity',
      family: 6,
      manifests: [
        ipv6AffinityService(),
        makeSlice('ns1', 'svc1', 1, (eps) => {
          eps.addressType = 'IPv6';
          eps.endpoints = [ep('fd00:10:180::1'), ep('fd00:10:180::2')];
          eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }];
        }),
      ],
    },
  ];
  const portChain = /^(service|local|external|firewall|endpoint)-[A-Z2-7]{8}-/;
  for (const c of cases) {
    const rs = compile(c.manifests, c.family !== undefined ? { family: c.family } : {});
    const layout = chainLayout(rs);
    const indexed = layout.own.filter((n) => portChain.test(n));
    assert.deepEqual(indexed, [], `${c.name}: service ports' chains indexed by name: ${indexed.join(', ')}`);
    assert.ok(layout.endpointChains > 0, `${c.name}: no endpoint chain in the runs ${JSON.stringify(layout.runs)}`);
    assert.equal(layout.endpointObjects, layout.endpointChains, `${c.name}: endpoint chains that are not EndpointChain objects, in ${JSON.stringify(layout.runs)}`);
    // Each run is one port's: its endpoint chains (a run of their own), or its other chains.
    for (const run of layout.runs) {
      const kinds = new Set(run.map((n) => (n.startsWith('endpoint-') ? 'endpoint' : 'port')));
      assert.equal(kinds.size, 1, `${c.name}: a run mixes endpoint chains with others: ${run.join(', ')}`);
    }
  }
});
