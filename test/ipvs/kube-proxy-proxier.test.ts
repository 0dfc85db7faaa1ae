/**
 * kube-proxy's IPVS proxier tests (pkg/proxy/ipvs/proxier_test.go), ported: the same services and
 * slices (built with makeService/makeSlice), the same node, and the same expectations of virtual
 * servers, real servers and weights, ipset entries and IPVS-mode iptables rules, compared the way
 * its checkIPVS, checkIPSet and checkIptables compare them (a chain's rules by target and
 * match-set, nat then filter). kube-proxy's fake proxier stands on node "test-node" with the
 * test's node IPs, scheduler rr, no local detector (NewNoOpLocalDetector, so no clusterCIDR here)
 * and nodePortAddresses matching everything unless the test sets them.
 *
 * Where an upstream test feeds an object the API server would refuse (a service port of 0, a
 * nodePort on a ClusterIP service, one ClusterIP or node port used by several services, a
 * loopback external IP, an IPv4 address in an IPv6 EndpointSlice, a health check node port with
 * externalTrafficPolicy Cluster, a NodePort or Local LoadBalancer service left without the port
 * the API server allocates), the case uses the nearest valid object and says so. Node ports below
 * 30000 are kept: they are valid in a cluster whose --service-node-port-range holds them. A test
 * that syncs several times (add a slice, sync, delete it, sync) becomes one compile per step:
 * kpsim compiles the sync of the objects present at that step. Tests of kube-proxy internals
 * that a sync's output does not show (metrics, the health check server's endpoint counts, the
 * weight reset after a restart, removal of stale kernel objects) are not ported.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type IpvsCompileOptions, type IpvsCompiled, compileIpvs } from '../../src/ipvs/compile.js';
import { KUBE_LOOP_BACK, KUBE_HEALTH_CHECK_NODE_PORT } from '../../src/ipvs/ipsets.js';
import { renderRule } from '../../src/iptables/render.js';
import { isBuiltinChain } from '../../src/iptables/types.js';
import { SVC_F_PERSISTENT, destAddr, virtualServerKey } from '../../src/ipvs/table.js';
import {
  type EndpointManifest, type EndpointSliceManifest, type Manifest, type ServiceManifest, TEST_NODE_NAME, ep, fixtureState, makeNode, makeProxyConfig,
  makeService, makeSlice,
} from '../helpers/cluster-builders.js';

// ---------------------------------------------------------------- kube-proxy's fake proxier

interface FakeProxier {
  /** The node's addresses (the fake netlink handle's eth0); none when left out, as NewFakeProxier(nil). */
  nodeIPs?: string[];
  nodePortAddresses?: string[];
  /** The proxier's family (NewFakeProxier's ipFamily). */
  family?: 4 | 6;
  featureGates?: Record<string, boolean>;
  options?: IpvsCompileOptions;
}

/** One syncProxyRules of the fake proxier over these objects. */
function sync(objects: readonly Manifest[], fp: FakeProxier = {}): IpvsCompiled {
  const state = fixtureState([
    ...objects,
    makeNode(TEST_NODE_NAME, fp.nodeIPs ?? []),
    makeProxyConfig((c) => {
      c.mode = 'ipvs';
      c.hostnameOverride = TEST_NODE_NAME;
      if (fp.nodePortAddresses) c.nodePortAddresses = fp.nodePortAddresses;
      if (fp.featureGates) c.featureGates = fp.featureGates;
    }),
  ], { family: fp.family ?? 4 });
  return compileIpvs(state, fp.options);
}

/** What a test expects of a sync; left-out parts are not checked (as upstream's nil expectations). */
interface Expectation {
  /** Every virtual server ("addr:port/PROTO", kube-proxy's VirtualServer.String()) and its real servers, sorted, at weight 1. */
  ipvs?: Record<string, string[]>;
  /** These sets' entries, by kube-proxy's set name (the IPv4 one). */
  ipsets?: Record<string, string[]>;
  /** These chains' rules, nat then filter, each as "target [match-set] [-s source]". */
  iptables?: Record<string, string[]>;
}

/** FakeIPVS as a map: real servers sorted, any weight but 1 written out so it cannot pass unseen. */
function ipvsOf(compiled: IpvsCompiled): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const vs of compiled.table.services) {
    assert.equal(vs.scheduler, 'rr', `${virtualServerKey(vs)}: kube-proxy's default scheduler`);
    out[virtualServerKey(vs)] = vs.dests.map((d) => (d.weight === 1 ? destAddr(d) : `${destAddr(d)} weight ${d.weight}`)).sort();
  }
  return out;
}

function entriesOf(compiled: IpvsCompiled, baseName: string): string[] {
  const set = [...compiled.ipsets.values()].find((s) => s.baseName === baseName);
  assert.ok(set, `no ipset ${baseName}`);
  return [...set.entries].sort();
}

/** getRules + checkIptables: a chain's rules in nat, then in filter. */
function chainOf(compiled: IpvsCompiled, chain: string): string[] {
  const out: string[] = [];
  for (const table of ['nat', 'filter'] as const) {
    for (const rule of compiled.ruleset.tables.get(table)?.chains.get(chain)?.rules ?? []) {
      const arg = (flag: string) => {
        const i = rule.args.indexOf(flag);
        return i >= 0 && rule.args[i - 1] !== '!' ? rule.args[i + 1] : undefined;
      };
      const parts = [arg('-j') ?? '?', arg('--match-set'), arg('-s') !== undefined ? `-s ${arg('-s')}` : undefined];
      out.push(parts.filter((p) => p !== undefined).join(' '));
    }
  }
  return out;
}

function check(compiled: IpvsCompiled, want: Expectation): void {
  if (want.ipvs) assert.deepEqual(ipvsOf(compiled), sortedValues(want.ipvs), 'virtual servers and their real servers');
  for (const [set, entries] of Object.entries(want.ipsets ?? {})) assert.deepEqual(entriesOf(compiled, set), [...entries].sort(), `ipset ${set}`);
  for (const [chain, rules] of Object.entries(want.iptables ?? {})) {
    assert.deepEqual(chainOf(compiled, chain), rules, `chain ${chain}:\n${fullChain(compiled, chain)}`);
  }
}

function sortedValues(map: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, [...v].sort()]));
}

function fullChain(compiled: IpvsCompiled, chain: string): string {
  return [...compiled.ruleset.tables.values()].flatMap((t) => t.chains.get(chain)?.rules.map((r) => `${t.name}: ${renderRule(r)}`) ?? []).join('\n');
}

// ---------------------------------------------------------------- builders in the tests' words

type Protocol = 'TCP' | 'UDP' | 'SCTP';

function slicePorts(name: string, port: number, protocol: Protocol = 'TCP'): EndpointSliceManifest['ports'] {
  return [{ name, port, protocol }];
}

/** makeTestEndpointSlice(ns, name, n, ...) with these endpoints and one port. */
function slice(ns: string, name: string, n: number, endpoints: EndpointManifest[], port: { name?: string; port?: number; protocol?: Protocol; addressType?: 'IPv4' | 'IPv6' } = {}): EndpointSliceManifest {
  return makeSlice(ns, name, n, (eps) => {
    eps.addressType = port.addressType ?? 'IPv4';
    eps.endpoints = endpoints;
    eps.ports = slicePorts(port.name ?? 'p80', port.port ?? 80, port.protocol ?? 'TCP');
  });
}

/** ns1/svc1 on 10.20.30.41 with one port p80 (kube-proxy's usual test service). */
function svc1(mutate: (svc: ServiceManifest) => void, port: { protocol?: Protocol; nodePort?: number } = {}): ServiceManifest {
  return makeService('ns1', 'svc1', (s) => {
    s.spec.clusterIP = '10.20.30.41';
    s.spec.ports = [{ name: 'p80', port: 80, protocol: port.protocol ?? 'TCP', ...(port.nodePort !== undefined ? { nodePort: port.nodePort } : {}) }];
    mutate(s);
  });
}

const READY = { ready: true, serving: true, terminating: false };
const SERVING_TERMINATING = { ready: false, serving: true, terminating: true };
const TERMINATING = { ready: false, serving: false, terminating: true };
const NOT_READY = { ready: false, serving: false, terminating: false };
const NOT_READY_NIL = { ready: false };

/** KUBE-SERVICES of a fake proxier (no local detector) with only ClusterIP sets filled. */
const SERVICES_CLUSTER_IP = ['RETURN -s 127.0.0.0/8', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP'];
/** ... and with a load balancer ingress. */
const SERVICES_LOAD_BALANCER = [
  'RETURN -s 127.0.0.0/8', 'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ KUBE-CLUSTER-IP', 'KUBE-NODE-PORT', 'ACCEPT KUBE-CLUSTER-IP', 'ACCEPT KUBE-LOAD-BALANCER',
];

interface SyncCase {
  name: string;
  objects: Manifest[];
  fp?: FakeProxier;
  want: Expectation;
}

function runCases(prefix: string, cases: readonly SyncCase[]): void {
  for (const c of cases) test(`${prefix}: ${c.name}`, () => check(sync(c.objects, c.fp), c.want));
}

// ---------------------------------------------------------------- TestNodePortIPv4, TestNodePortIPv6

const nodePortService = (protocol: Protocol, clusterIP = '10.20.30.41', mutate: (s: ServiceManifest) => void = () => {}) =>
  svc1((s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = clusterIP; mutate(s); }, { protocol, nodePort: 3001 });

runCases('TestNodePortIPv4', [
  {
    name: '1 service with node port, has 2 endpoints',
    objects: [
      nodePortService('TCP'),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1')]),
      slice('ns1', 'svc1', 2, [ep('1002:ab8::2:10')], { addressType: 'IPv6' }),
    ],
    fp: { nodeIPs: ['100.101.102.103', '2001:db8::1:1'], nodePortAddresses: [] },
    want: { ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80'], '100.101.102.103:3001/TCP': ['10.180.0.1:80'] } },
  },
  {
    name: '1 UDP service with node port, has endpoints',
    objects: [nodePortService('UDP'), slice('ns1', 'svc1', 1, [ep('10.180.0.1')], { protocol: 'UDP' })],
    fp: { nodeIPs: ['100.101.102.103'], nodePortAddresses: ['0.0.0.0/0'] },
    want: {
      ipvs: { '10.20.30.41:80/UDP': ['10.180.0.1:80'], '100.101.102.103:3001/UDP': ['10.180.0.1:80'] },
      ipsets: { 'KUBE-NODE-PORT-UDP': ['3001'] },
      iptables: {
        'KUBE-NODE-PORT': ['KUBE-MARK-MASQ KUBE-NODE-PORT-UDP', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'],
        'KUBE-SERVICES': SERVICES_CLUSTER_IP,
      },
    },
  },
  {
    name: 'service has node port but no endpoints',
    objects: [nodePortService('TCP')],
    fp: { nodeIPs: ['100.101.102.103'], nodePortAddresses: [] },
    want: { ipvs: { '10.20.30.41:80/TCP': [], '100.101.102.103:3001/TCP': [] } },
  },
  {
    name: 'node port service with protocol sctp on a node with multiple nodeIPs',
    objects: [nodePortService('SCTP'), slice('ns1', 'svc1', 1, [ep('10.180.0.1')], { protocol: 'SCTP' })],
    fp: { nodeIPs: ['100.101.102.103', '100.101.102.104', '100.101.102.105', '2001:db8::1:1', '2001:db8::1:2', '2001:db8::1:3'], nodePortAddresses: [] },
    want: {
      ipvs: {
        '10.20.30.41:80/SCTP': ['10.180.0.1:80'],
        '100.101.102.103:3001/SCTP': ['10.180.0.1:80'],
        '100.101.102.104:3001/SCTP': ['10.180.0.1:80'],
        '100.101.102.105:3001/SCTP': ['10.180.0.1:80'],
      },
      ipsets: { 'KUBE-NODE-PORT-SCTP-HASH': ['100.101.102.103,sctp:3001', '100.101.102.104,sctp:3001', '100.101.102.105,sctp:3001'] },
    },
  },
  {
    name: 'node port service with protocol sctp and externalTrafficPolicy local',
    objects: [
      nodePortService('SCTP', '10.20.30.41', (s) => { s.spec.externalTrafficPolicy = 'Local'; }),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1', TEST_NODE_NAME), ep('10.180.1.1', 'other-node')], { protocol: 'SCTP' }),
    ],
    fp: { nodeIPs: ['100.101.102.103'], nodePortAddresses: [] },
    want: {
      ipvs: { '10.20.30.41:80/SCTP': ['10.180.0.1:80', '10.180.1.1:80'], '100.101.102.103:3001/SCTP': ['10.180.0.1:80'] },
      ipsets: { 'KUBE-NODE-PORT-SCTP-HASH': ['100.101.102.103,sctp:3001'], 'KUBE-NODE-PORT-LOCAL-SCTP-HASH': ['100.101.102.103,sctp:3001'] },
      iptables: { 'KUBE-NODE-PORT': ['RETURN KUBE-NODE-PORT-LOCAL-SCTP-HASH', 'KUBE-MARK-MASQ KUBE-NODE-PORT-SCTP-HASH', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'] },
    },
  },
]);

runCases('TestNodePortIPv6', [
  {
    name: '1 service with node port, has 2 endpoints',
    objects: [
      nodePortService('TCP', '2020::1'),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1')]),
      slice('ns1', 'svc1', 2, [ep('1002:ab8::2:10')], { addressType: 'IPv6' }),
    ],
    fp: { family: 6, nodeIPs: ['100.101.102.103', '2001:db8::1:1'], nodePortAddresses: [] },
    want: { ipvs: { '[2001:db8::1:1]:3001/TCP': ['[1002:ab8::2:10]:80'], '[2020::1]:80/TCP': ['[1002:ab8::2:10]:80'] } },
  },
  {
    // Upstream's slice is of type IPv6 with the IPv4 address 10.180.0.1, which the API server
    // refuses; an IPv4 slice is the nearest valid one. Either way the IPv6 proxier has nothing to do.
    name: '1 UDP service with node port, has endpoints (no action on IPv6 Proxier)',
    objects: [nodePortService('UDP'), slice('ns1', 'svc1', 1, [ep('10.180.0.1')], { protocol: 'UDP' })],
    fp: { family: 6, nodeIPs: ['100.101.102.103'], nodePortAddresses: ['0.0.0.0/0'] },
    want: { ipvs: {} },
  },
  {
    name: 'service has node port but no endpoints',
    objects: [nodePortService('TCP', '2020::1')],
    fp: { family: 6, nodeIPs: ['100.101.102.103', '2001:db8::1:1'], nodePortAddresses: [] },
    want: { ipvs: { '[2001:db8::1:1]:3001/TCP': [], '[2020::1]:80/TCP': [] } },
  },
  {
    name: 'node port service with protocol sctp on a node with multiple nodeIPs',
    objects: [nodePortService('SCTP', '2020::1'), slice('ns1', 'svc1', 1, [ep('2001::1')], { protocol: 'SCTP', addressType: 'IPv6' })],
    fp: { family: 6, nodeIPs: ['2001:db8::1:1', '2001:db8::1:2'], nodePortAddresses: [] },
    want: {
      ipvs: { '[2001:db8::1:1]:3001/SCTP': ['[2001::1]:80'], '[2001:db8::1:2]:3001/SCTP': ['[2001::1]:80'], '[2020::1]:80/SCTP': ['[2001::1]:80'] },
      // The IPv6 proxier's set is KUBE-6-NODE-PORT-SCTP-HASH.
      ipsets: { 'KUBE-NODE-PORT-SCTP-HASH': ['2001:db8::1:1,sctp:3001', '2001:db8::1:2,sctp:3001'] },
    },
  },
]);

// ---------------------------------------------------------------- TestIPv4Proxier, TestIPv6Proxier

const twoFamilies = (): Manifest[] => [
  svc1(() => {}),
  makeService('ns2', 'svc2', (s) => { s.spec.clusterIP = '1002:ab8::2:1'; s.spec.ports = [{ name: 'p8080', port: 8080, protocol: 'TCP' }]; }),
  slice('ns1', 'svc1', 1, [ep('10.180.0.1')]),
  slice('ns2', 'svc2', 1, [ep('1009:ab8::5:6')], { name: 'p8080', port: 8080, addressType: 'IPv6' }),
];

runCases('TestIPv4Proxier', [
  { name: '2 services with Cluster IP, each with endpoints', objects: twoFamilies(), want: { ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80'] } } },
  { name: 'cluster IP service with no endpoints', objects: [svc1(() => {})], want: { ipvs: { '10.20.30.41:80/TCP': [] } } },
]);

runCases('TestIPv6Proxier', [
  { name: '2 services with Cluster IP, each with endpoints', objects: twoFamilies(), fp: { family: 6 }, want: { ipvs: { '[1002:ab8::2:1]:8080/TCP': ['[1009:ab8::5:6]:8080'] } } },
  { name: 'cluster IP service with no endpoints', objects: [svc1((s) => { s.spec.clusterIP = '2001::1'; })], fp: { family: 6 }, want: { ipvs: { '[2001::1]:80/TCP': [] } } },
]);

// ---------------------------------------------------------------- TestMasqueradeRule

for (const randomFully of [false, true]) {
  test(`TestMasqueradeRule: HasRandomFully() ${randomFully}: KUBE-POSTROUTING's MASQUERADE ${randomFully ? 'has' : 'has no'} --random-fully`, () => {
    const compiled = sync([], { options: { randomFully } });
    const rules = compiled.ruleset.tables.get('nat')!.chains.get('KUBE-POSTROUTING')!.rules.map((r) => renderRule(r));
    const masquerade = rules.find((r) => / -j MASQUERADE( |$)/.test(r));
    assert.ok(masquerade, `no -j MASQUERADE in KUBE-POSTROUTING:\n${rules.join('\n')}`);
    assert.equal(masquerade.includes('--random-fully'), randomFully, masquerade);
  });
}

// ---------------------------------------------------------------- external IPs

const externalIPService = (mutate: (s: ServiceManifest) => void = () => {}) => svc1((s) => {
  s.spec.type = 'ClusterIP';
  s.spec.externalIPs = ['50.60.70.81'];
  s.spec.ports![0]!.targetPort = 80;
  mutate(s);
});

runCases('TestExternalIPsNoEndpoint', [
  { name: 'the external IP gets a virtual server without real servers', objects: [externalIPService()], want: { ipvs: { '10.20.30.41:80/TCP': [], '50.60.70.81:80/TCP': [] } } },
]);

runCases('TestExternalIPs', [
  {
    // Upstream's external IPs include 127.0.0.1, which the API server refuses (a loopback
    // address); left out, so 2 virtual servers instead of 3. 2012::51 is not the IPv4 proxier's.
    // Upstream's slice port is UDP: it joins no port of the TCP service, so no real servers
    // (upstream's per-destination check passes over none).
    name: 'external IPs of both families, the slice port UDP',
    objects: [externalIPService((s) => { s.spec.externalIPs = ['50.60.70.81', '2012::51']; }), slice('ns1', 'svc1', 1, [ep('10.180.0.1')], { protocol: 'UDP' })],
    want: { ipvs: { '10.20.30.41:80/TCP': [], '50.60.70.81:80/TCP': [] } },
  },
  {
    name: 'the same with a TCP slice port: the endpoint behind every virtual server',
    objects: [externalIPService((s) => { s.spec.externalIPs = ['50.60.70.81', '2012::51']; }), slice('ns1', 'svc1', 1, [ep('10.180.0.1')])],
    want: { ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80'], '50.60.70.81:80/TCP': ['10.180.0.1:80'] } },
  },
]);

runCases('TestOnlyLocalExternalIPs', [
  {
    // 127.0.0.1 left out as above; the NodePort service gets the node port the API server would
    // allocate (upstream leaves it 0). The fake node has no address, so no NodePort server.
    name: 'externalTrafficPolicy Local: the external IP gets the local endpoint only',
    objects: [
      externalIPService((s) => { s.spec.type = 'NodePort'; s.spec.externalIPs = ['50.60.70.81', '2012::51']; s.spec.externalTrafficPolicy = 'Local'; s.spec.ports![0]!.nodePort = 30001; }),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1', TEST_NODE_NAME), ep('10.180.1.1', 'other-node')]),
    ],
    want: { ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80', '10.180.1.1:80'], '50.60.70.81:80/TCP': ['10.180.0.1:80'] } },
  },
]);

// ---------------------------------------------------------------- load balancers

const loadBalancerService = (mutate: (s: ServiceManifest) => void = () => {}, nodePort: number | undefined = 3001) => svc1((s) => {
  s.spec.type = 'LoadBalancer';
  s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
  mutate(s);
}, nodePort !== undefined ? { nodePort } : {});

runCases('TestLoadBalancer', [
  {
    // The slice port is UDP upstream, so no real servers; upstream's destination check looks for
    // a server 1.2.3.4:3001, which does not exist, and checks nothing.
    name: 'an ingress IP: its virtual server, the KUBE-LOAD-BALANCER set and chain',
    objects: [loadBalancerService(), slice('ns1', 'svc1', 1, [ep('10.180.0.1')], { protocol: 'UDP' })],
    want: {
      ipvs: { '10.20.30.41:80/TCP': [], '1.2.3.4:80/TCP': [] },
      ipsets: { 'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'] },
      iptables: { 'KUBE-SERVICES': SERVICES_LOAD_BALANCER, 'KUBE-LOAD-BALANCER': ['KUBE-MARK-MASQ'] },
    },
  },
]);

runCases('TestOnlyLocalNodePorts', [
  {
    // Upstream puts 100.101.102.103/24 on eth0 and 2001:db8::/64 on eth1 of the fake network:
    // the node's addresses here.
    name: 'externalTrafficPolicy Local, nodePortAddresses 100.101.102.0/24',
    objects: [
      nodePortService('TCP', '10.20.30.41', (s) => { s.spec.externalTrafficPolicy = 'Local'; }),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1', TEST_NODE_NAME), ep('10.180.1.1', 'other-node')]),
    ],
    fp: { nodeIPs: ['100.101.102.103', '2001:db8::'], nodePortAddresses: ['100.101.102.0/24'] },
    want: {
      ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80', '10.180.1.1:80'], '100.101.102.103:3001/TCP': ['10.180.0.1:80'] },
      ipsets: { 'KUBE-NODE-PORT-TCP': ['3001'], 'KUBE-NODE-PORT-LOCAL-TCP': ['3001'] },
      iptables: {
        'KUBE-SERVICES': SERVICES_CLUSTER_IP,
        'KUBE-NODE-PORT': ['RETURN KUBE-NODE-PORT-LOCAL-TCP', 'KUBE-MARK-MASQ KUBE-NODE-PORT-TCP', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'],
      },
    },
  },
]);

const healthCheckService = (name: string, clusterIP: string, nodePort: number, mutate: (s: ServiceManifest) => void) => makeService('ns1', name, (s) => {
  s.spec.type = 'LoadBalancer';
  s.spec.clusterIP = clusterIP;
  s.spec.ports = [{ name: 'p80', port: 80, protocol: 'TCP', nodePort }];
  s.spec.externalTrafficPolicy = 'Local';
  mutate(s);
});

runCases('TestHealthCheckNodePort', [
  {
    // Upstream's three services share ClusterIP 10.20.30.41 and node port 3000, and the third
    // sets healthCheckNodePort 30002 with externalTrafficPolicy Cluster: the API server refuses
    // all three. Here each has its own ClusterIP and node port, and the third no health check port.
    name: 'only the valid health check node ports are in the set',
    objects: [
      healthCheckService('valid-svc1', '10.20.30.41', 3000, (s) => { s.spec.healthCheckNodePort = 30000; }),
      healthCheckService('valid-svc2', '10.20.30.42', 3001, (s) => { s.spec.healthCheckNodePort = 30001; }),
      healthCheckService('invalid-svc3', '10.20.30.43', 3002, (s) => { s.spec.externalTrafficPolicy = 'Cluster'; }),
    ],
    fp: { nodeIPs: ['100.101.102.103', '2001:db8::'], nodePortAddresses: ['100.101.102.0/24'] },
    want: {
      ipsets: { 'KUBE-HEALTH-CHECK-NODE-PORT': ['30000', '30001'] },
      iptables: { 'KUBE-NODE-PORT': ['RETURN KUBE-NODE-PORT-LOCAL-TCP', 'KUBE-MARK-MASQ KUBE-NODE-PORT-TCP', 'ACCEPT KUBE-HEALTH-CHECK-NODE-PORT'] },
    },
  },
]);

runCases('TestLoadBalancerSourceRanges', [
  {
    // No node port: valid with allocateLoadBalancerNodePorts false.
    name: 'source range 10.0.0.0/8: the FW and SOURCE-CIDR sets, KUBE-SOURCE-RANGES-FIREWALL returns then drops',
    objects: [loadBalancerService((s) => { s.spec.loadBalancerSourceRanges = ['10.0.0.0/8']; }, undefined), slice('ns1', 'svc1', 1, [ep('10.180.0.1')])],
    want: {
      ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80'], '1.2.3.4:80/TCP': ['10.180.0.1:80'] },
      ipsets: {
        'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'],
        'KUBE-LOAD-BALANCER-FW': ['1.2.3.4,tcp:80'],
        'KUBE-LOAD-BALANCER-SOURCE-CIDR': ['1.2.3.4,tcp:80,10.0.0.0/8'],
      },
      iptables: {
        'KUBE-SERVICES': SERVICES_LOAD_BALANCER,
        'KUBE-PROXY-FIREWALL': ['KUBE-SOURCE-RANGES-FIREWALL KUBE-LOAD-BALANCER-FW'],
        'KUBE-SOURCE-RANGES-FIREWALL': ['RETURN KUBE-LOAD-BALANCER-SOURCE-CIDR', 'DROP'],
      },
    },
  },
]);

runCases('TestAcceptIPVSTraffic', [
  {
    // Upstream gives all three services node port 80, the ClusterIP one included: the API
    // server refuses a node port on a ClusterIP service and one node port for two services.
    // Here the ClusterIP service has none and the others 30080 and 30081. Upstream's slices
    // belong to a service "p80" that does not exist; left out.
    name: 'KUBE-SERVICES ends by accepting the cluster IP and load balancer sets',
    objects: [
      makeService('ns1', 'svc1', (s) => { s.spec.type = 'ClusterIP'; s.spec.clusterIP = '10.20.30.40'; s.spec.externalIPs = ['5.6.7.8']; s.spec.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
      makeService('ns1', 'svc2', (s) => {
        s.spec.type = 'LoadBalancer'; s.spec.clusterIP = '10.20.30.41'; s.spec.ports = [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30080 }];
        s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
      }),
      makeService('ns1', 'svc3', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '10.20.30.42'; s.spec.ports = [{ name: 'p80', port: 80, protocol: 'TCP', nodePort: 30081 }]; }),
    ],
    want: {
      iptables: {
        'KUBE-SERVICES': [
          'RETURN -s 127.0.0.0/8',
          'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER',
          'KUBE-MARK-MASQ KUBE-CLUSTER-IP',
          'KUBE-MARK-MASQ KUBE-EXTERNAL-IP',
          'ACCEPT KUBE-EXTERNAL-IP', // from off the machine (externalTrafficOnlyArgs)
          'ACCEPT KUBE-EXTERNAL-IP', // to a local address (dstLocalOnlyArgs)
          'KUBE-NODE-PORT',
          'ACCEPT KUBE-CLUSTER-IP',
          'ACCEPT KUBE-LOAD-BALANCER',
        ],
      },
    },
  },
]);

runCases('TestOnlyLocalLoadBalancing', [
  {
    // The API server allocates a health check node port to a Local LoadBalancer service;
    // upstream leaves it out, here it is 30000.
    name: 'externalTrafficPolicy Local: the ingress gets the local endpoint only, KUBE-LOAD-BALANCER returns for it',
    objects: [
      loadBalancerService((s) => { s.spec.externalTrafficPolicy = 'Local'; s.spec.healthCheckNodePort = 30000; }),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1', TEST_NODE_NAME), ep('10.180.1.1', 'other-node')]),
    ],
    want: {
      ipvs: { '10.20.30.41:80/TCP': ['10.180.0.1:80', '10.180.1.1:80'], '1.2.3.4:80/TCP': ['10.180.0.1:80'] },
      ipsets: { 'KUBE-LOAD-BALANCER': ['1.2.3.4,tcp:80'], 'KUBE-LOAD-BALANCER-LOCAL': ['1.2.3.4,tcp:80'] },
      iptables: { 'KUBE-SERVICES': SERVICES_LOAD_BALANCER, 'KUBE-LOAD-BALANCER': ['RETURN KUBE-LOAD-BALANCER-LOCAL', 'KUBE-MARK-MASQ'] },
    },
  },
]);

// ---------------------------------------------------------------- TestSessionAffinity

test('TestSessionAffinity: every virtual server of a ClientIP service is persistent with the affinity timeout', () => {
  const compiled = sync([
    nodePortService('TCP', '10.20.30.41', (s) => {
      s.spec.externalIPs = ['50.60.70.81'];
      s.spec.sessionAffinity = 'ClientIP';
      s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
    }),
  ], { nodeIPs: ['100.101.102.103'] });
  assert.deepEqual(Object.keys(ipvsOf(compiled)).sort(), ['10.20.30.41:80/TCP', '100.101.102.103:3001/TCP', '50.60.70.81:80/TCP']);
  for (const vs of compiled.table.services) {
    assert.equal(vs.timeoutSeconds, 10800, virtualServerKey(vs));
    assert.equal(vs.flags & SVC_F_PERSISTENT, SVC_F_PERSISTENT, virtualServerKey(vs));
  }
});

// ---------------------------------------------------------------- the end-to-end syncs

/** ns1/svc1 on 172.20.1.1, one unnamed TCP port. Upstream leaves the port number 0 (only targetPort 80), which the API server refuses: port 80 here. */
const e2eService = (mutate: (s: ServiceManifest) => void = () => {}) => makeService('ns1', 'svc1', (s) => {
  s.spec.clusterIP = '172.20.1.1';
  s.spec.selector = { foo: 'bar' };
  s.spec.ports = [{ name: '', port: 80, targetPort: 80, protocol: 'TCP' }];
  mutate(s);
});
const e2eSlice = (endpoints: EndpointManifest[]) => slice('ns1', 'svc1', 1, endpoints, { name: '' });

interface Step {
  name: string;
  objects: Manifest[];
  fp?: FakeProxier;
  want: Expectation & { loopBack?: string[] };
}

function runSteps(name: string, steps: readonly Step[]): void {
  test(name, async (t) => {
    for (const step of steps) {
      await t.test(step.name, () => {
        const compiled = sync(step.objects, step.fp);
        check(compiled, step.want);
        if (step.want.loopBack) assert.deepEqual(entriesOf(compiled, KUBE_LOOP_BACK), [...step.want.loopBack].sort(), 'KUBE-LOOP-BACK');
      });
    }
  });
}

runSteps('TestEndpointSliceE2E', [
  {
    name: 'slice added: the ready endpoints are real servers, the local one is in KUBE-LOOP-BACK, the not-ready one is ignored',
    objects: [e2eService(), e2eSlice([ep('10.0.1.1', TEST_NODE_NAME, { ready: true }), ep('10.0.1.2', 'node2', { ready: true }), ep('10.0.1.3', 'node3', { ready: true }), ep('10.0.1.4', 'node3', NOT_READY_NIL)])],
    want: { loopBack: ['10.0.1.1,tcp:80,10.0.1.1'], ipvs: { '172.20.1.1:80/TCP': ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:80'] } },
  },
  { name: 'slice deleted: the virtual server stays, empty', objects: [e2eService()], want: { loopBack: [], ipvs: { '172.20.1.1:80/TCP': [] } } },
]);

const healthCheckE2E = (port: number) => e2eService((s) => { s.spec.type = 'LoadBalancer'; s.spec.externalTrafficPolicy = 'Local'; s.spec.healthCheckNodePort = port; });
runSteps('TestHealthCheckNodePortE2E', [
  // No node port: valid with allocateLoadBalancerNodePorts false.
  { name: 'service created', objects: [healthCheckE2E(30000)], want: { ipsets: { [KUBE_HEALTH_CHECK_NODE_PORT]: ['30000'] } } },
  { name: 'health check node port updated', objects: [healthCheckE2E(30001)], want: { ipsets: { [KUBE_HEALTH_CHECK_NODE_PORT]: ['30001'] } } },
  { name: 'service deleted', objects: [], want: { ipsets: { [KUBE_HEALTH_CHECK_NODE_PORT]: [] } } },
]);

const itpCases: { name: string; policy: 'Cluster' | 'Local'; nodes: string[]; loopBack: boolean; realServers: string[] }[] = [
  { name: 'internalTrafficPolicy is cluster with non-zero local endpoints', policy: 'Cluster', nodes: [TEST_NODE_NAME, 'node1', 'node2'], loopBack: true, realServers: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:80'] },
  { name: 'internalTrafficPolicy is cluster with zero local endpoints', policy: 'Cluster', nodes: ['node0', 'node1', 'node2'], loopBack: false, realServers: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:80'] },
  { name: 'internalTrafficPolicy is local with non-zero local endpoints', policy: 'Local', nodes: [TEST_NODE_NAME, 'node1', 'node2'], loopBack: true, realServers: ['10.0.1.1:80'] },
  { name: 'internalTrafficPolicy is local with zero local endpoints', policy: 'Local', nodes: ['node0', 'node1', 'node2'], loopBack: false, realServers: [] },
];
for (const c of itpCases) {
  const service = e2eService((s) => { s.spec.internalTrafficPolicy = c.policy; });
  runSteps(`TestTestInternalTrafficPolicyE2E: ${c.name}`, [
    {
      name: 'slice added',
      objects: [service, e2eSlice(c.nodes.map((node, i) => ep(`10.0.1.${i + 1}`, node, { ready: true })))],
      want: { loopBack: c.loopBack ? ['10.0.1.1,tcp:80,10.0.1.1'] : [], ipvs: { '172.20.1.1:80/TCP': c.realServers } },
    },
    { name: 'slice deleted', objects: [service], want: { loopBack: [], ipvs: { '172.20.1.1:80/TCP': [] } } },
  ]);
}

// ---------------------------------------------------------------- ready and terminating endpoints

/** A NodePort service with external IP 1.2.3.4. Upstream leaves its node port 0; the API server allocates one (30001 here). The fake node has no address, so no NodePort server either way. */
const terminatingService = (externalTrafficPolicy: 'Cluster' | 'Local') => e2eService((s) => {
  s.spec.type = 'NodePort';
  s.spec.externalTrafficPolicy = externalTrafficPolicy;
  s.spec.internalTrafficPolicy = 'Cluster';
  s.spec.externalIPs = ['1.2.3.4'];
  s.spec.ports![0]!.nodePort = 30001;
});
const loopBack = (...last: number[]) => last.map((n) => `10.0.1.${n},tcp:80,10.0.1.${n}`);

const terminatingCases: { name: string; policy: 'Cluster' | 'Local'; endpoints: EndpointManifest[]; loopBack: string[]; clusterIP: string[]; externalIP: string[] }[] = [
  {
    name: 'Test_EndpointSliceReadyAndTerminatingCluster: ready and ready+terminating endpoints, Cluster: only the ready ones',
    policy: 'Cluster',
    endpoints: [ep('10.0.1.1', TEST_NODE_NAME, READY), ep('10.0.1.2', TEST_NODE_NAME, READY), ep('10.0.1.3', TEST_NODE_NAME, SERVING_TERMINATING), ep('10.0.1.4', TEST_NODE_NAME, TERMINATING), ep('10.0.1.5', 'another-node', READY)],
    loopBack: loopBack(1, 2, 3, 4),
    clusterIP: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.5:80'],
    externalIP: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.5:80'],
  },
  {
    name: 'Test_EndpointSliceReadyAndTerminatingLocal: local ready and ready+terminating endpoints: only the ready ones',
    policy: 'Local',
    endpoints: [ep('10.0.1.1', TEST_NODE_NAME, READY), ep('10.0.1.2', TEST_NODE_NAME, READY), ep('10.0.1.3', TEST_NODE_NAME, SERVING_TERMINATING), ep('10.0.1.4', TEST_NODE_NAME, TERMINATING), ep('10.0.1.5', 'another-node', READY)],
    loopBack: loopBack(1, 2, 3, 4),
    clusterIP: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.5:80'],
    externalIP: ['10.0.1.1:80', '10.0.1.2:80'],
  },
  {
    name: 'Test_EndpointSliceOnlyReadyAndTerminatingCluster: only ready+terminating endpoints, Cluster: fall back to them',
    policy: 'Cluster',
    endpoints: [ep('10.0.1.1', TEST_NODE_NAME, SERVING_TERMINATING), ep('10.0.1.2', TEST_NODE_NAME, SERVING_TERMINATING), ep('10.0.1.3', TEST_NODE_NAME, TERMINATING), ep('10.0.1.4', 'another-node', SERVING_TERMINATING), ep('10.0.1.5', 'another-node', NOT_READY)],
    loopBack: loopBack(1, 2, 3),
    clusterIP: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.4:80'],
    externalIP: ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.4:80'],
  },
  {
    name: 'Test_EndpointSliceOnlyReadyAndTerminatingLocal: only local ready+terminating endpoints: the external IP falls back to them',
    policy: 'Local',
    endpoints: [ep('10.0.1.1', TEST_NODE_NAME, SERVING_TERMINATING), ep('10.0.1.2', TEST_NODE_NAME, SERVING_TERMINATING), ep('10.0.1.3', TEST_NODE_NAME, TERMINATING), ep('10.0.1.4', 'another-node', SERVING_TERMINATING), ep('10.0.1.5', 'another-node', READY)],
    loopBack: loopBack(1, 2, 3),
    clusterIP: ['10.0.1.5:80'],
    externalIP: ['10.0.1.1:80', '10.0.1.2:80'],
  },
];
for (const c of terminatingCases) {
  const service = terminatingService(c.policy);
  runSteps(c.name, [
    {
      name: 'slice added',
      objects: [service, e2eSlice(c.endpoints)],
      want: { loopBack: c.loopBack, ipvs: { '172.20.1.1:80/TCP': c.clusterIP, '1.2.3.4:80/TCP': c.externalIP } },
    },
    { name: 'slice deleted', objects: [service], want: { loopBack: [], ipvs: { '172.20.1.1:80/TCP': [], '1.2.3.4:80/TCP': [] } } },
  ]);
}

// ---------------------------------------------------------------- rules every proxier writes

for (const [family, source] of [[4, '127.0.0.0/8'], [6, '::1/128']] as const) {
  test(`TestDismissLocalhostRuleExist: IPv${family}: KUBE-SERVICES starts by returning ${source}`, () => {
    const rules = chainOf(sync([], { family }), 'KUBE-SERVICES');
    assert.equal(rules[0], `RETURN -s ${source}`, rules.join('\n'));
  });
}

test('TestCreateAndLinkKubeChain: the KUBE- chains kube-proxy declares, nat then filter', () => {
  const compiled = sync([]);
  const declared = (table: 'nat' | 'filter') => [...compiled.ruleset.tables.get(table)!.chains.keys()].filter((name) => !isBuiltinChain(table, name));
  assert.deepEqual(declared('nat'), ['KUBE-SERVICES', 'KUBE-POSTROUTING', 'KUBE-NODE-PORT', 'KUBE-LOAD-BALANCER', 'KUBE-MARK-MASQ']);
  assert.deepEqual(declared('filter'), ['KUBE-FORWARD', 'KUBE-NODE-PORT', 'KUBE-PROXY-FIREWALL', 'KUBE-SOURCE-RANGES-FIREWALL', 'KUBE-IPVS-FILTER', 'KUBE-IPVS-OUT-FILTER']);
});

const multiPort = (ports: [string, Protocol, number][]) => makeService('ns1', 'svc1', (s) => {
  s.spec.type = 'ClusterIP';
  s.spec.clusterIP = '172.16.55.4';
  s.spec.ports = ports.map(([name, protocol, port]) => ({ name, protocol, port }));
});
for (const [name, objects, bound] of [
  ['multi-port service: its address bound once', [multiPort([['port1', 'TCP', 1234], ['port2', 'TCP', 1235]])], ['172.16.55.4']],
  ['updated to a single port', [multiPort([['port1', 'TCP', 1234]])], ['172.16.55.4']],
  ['updated to three ports, one UDP', [multiPort([['port1', 'TCP', 1234], ['port2', 'TCP', 1235], ['port3', 'UDP', 1236]])], ['172.16.55.4']],
  ['deleted: nothing bound', [], []],
] as const) {
  test(`TestMultiPortServiceBindAddr: ${name}`, () => assert.deepEqual([...sync(objects).boundAddresses], bound));
}

// ---------------------------------------------------------------- TestLoadBalancerIngressRouteTypeProxy

// The gate off needs kube-proxy 1.31 or older (upstream emulates 1.31 for those cases).
const ingressModeCases: { name: string; ipModeEnabled: boolean; ipMode?: 'VIP' | 'Proxy'; expectedServices: string[] }[] = [
  { name: 'LoadBalancerIPMode disabled, ipMode Proxy', ipModeEnabled: false, ipMode: 'Proxy', expectedServices: ['1.2.3.4:80/TCP', '10.20.30.41:80/TCP'] },
  { name: 'LoadBalancerIPMode disabled, ipMode VIP', ipModeEnabled: false, ipMode: 'VIP', expectedServices: ['1.2.3.4:80/TCP', '10.20.30.41:80/TCP'] },
  { name: 'LoadBalancerIPMode disabled, ipMode nil', ipModeEnabled: false, expectedServices: ['1.2.3.4:80/TCP', '10.20.30.41:80/TCP'] },
  { name: 'LoadBalancerIPMode enabled, ipMode Proxy', ipModeEnabled: true, ipMode: 'Proxy', expectedServices: ['10.20.30.41:80/TCP'] },
  { name: 'LoadBalancerIPMode enabled, ipMode VIP', ipModeEnabled: true, ipMode: 'VIP', expectedServices: ['1.2.3.4:80/TCP', '10.20.30.41:80/TCP'] },
  { name: 'LoadBalancerIPMode enabled, ipMode nil', ipModeEnabled: true, expectedServices: ['1.2.3.4:80/TCP', '10.20.30.41:80/TCP'] },
];
for (const c of ingressModeCases) {
  test(`TestLoadBalancerIngressRouteTypeProxy: ${c.name}`, () => {
    const compiled = sync([
      loadBalancerService((s) => { s.status.loadBalancer.ingress = [{ ip: '1.2.3.4', ...(c.ipMode ? { ipMode: c.ipMode } : {}) }]; }),
      slice('ns1', 'svc1', 1, [ep('10.180.0.1')]),
    ], c.ipModeEnabled ? {} : { featureGates: { LoadBalancerIPMode: false } });
    assert.deepEqual(Object.keys(ipvsOf(compiled)).sort(), c.expectedServices);
    assert.deepEqual(entriesOf(compiled, 'KUBE-LOAD-BALANCER'), c.expectedServices.includes('1.2.3.4:80/TCP') ? ['1.2.3.4,tcp:80'] : []);
  });
}
