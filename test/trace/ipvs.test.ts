/**
 * Packet flows through kube-proxy's IPVS mode: the iptables rules IPVS mode keeps (walked by the
 * iptables tracer), the ipsets, the virtual server and its real servers. Expectations come from
 * proxier.go's rules and ip_vs_core.c: masquerade when KUBE-MARK-MASQ ran or a local endpoint
 * reaches itself (KUBE-LOOP-BACK); REJECT for a VIP port that is no service (KUBE-IPVS-FILTER) and
 * for a virtual server with no destination (ip_vs_leave's ICMP port unreachable); DROP for a
 * source outside loadBalancerSourceRanges.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type IpvsCompiled, compileIpvs } from '../../src/ipvs/compile.js';
import { traceIpvs } from '../../src/trace/ipvs.js';
import type { Packet, TraceProtocol, Verdict } from '../../src/trace/types.js';
import { ep, fixtureState, makeService, makeSlice, tcpPort } from '../helpers/cluster-builders.js';

const p80 = [{ name: 'p80', port: 80, protocol: 'TCP' as const }];

/** The fixture: node test-node (192.168.0.2, 192.168.1.2, 192.168.99.11), pod CIDR 10.0.0.0/8. */
function fixture(scheduler?: string, gracefulTermination = false): IpvsCompiled {
  return compileIpvs(fixtureState([
    makeService('ns1', 'web', (s) => { s.spec.type = 'NodePort'; s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80, { nodePort: 30080 })]; }),
    makeSlice('ns1', 'web', 1, (eps) => {
      eps.endpoints = [ep('10.180.0.1', 'node-b'), ep('10.180.0.2', 'test-node'), ep('10.180.0.3', 'node-c', { ready: false, serving: true, terminating: true })];
      eps.ports = p80;
    }),
    makeService('ns2', 'local', (s) => {
      s.spec.type = 'LoadBalancer'; s.spec.externalTrafficPolicy = 'Local'; s.spec.clusterIP = '172.30.0.42';
      s.spec.ports = [tcpPort('p80', 80, { nodePort: 30081 })]; s.status.loadBalancer.ingress = [{ ip: '1.2.3.4' }];
      s.spec.loadBalancerSourceRanges = ['203.0.113.0/25'];
    }),
    makeSlice('ns2', 'local', 1, (eps) => { eps.endpoints = [ep('10.180.0.4', 'test-node'), ep('10.180.0.5', 'node-b')]; eps.ports = p80; }),
    makeService('ns3', 'empty', (s) => { s.spec.clusterIP = '172.30.0.46'; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeService('ns4', 'dns', (s) => { s.spec.clusterIP = '172.30.0.10'; s.spec.ports = [{ name: 'dns', protocol: 'UDP', port: 53 }]; }),
    makeSlice('ns4', 'dns', 1, (eps) => { eps.endpoints = [ep('10.180.0.8'), ep('10.180.0.9')]; eps.ports = [{ name: 'dns', protocol: 'UDP', port: 53 }]; }),
  ]), { ...(scheduler !== undefined ? { scheduler } : {}), gracefulTermination });
}

interface FlowCase {
  name: string;
  packet: { proto: TraceProtocol; src: string; dst: string; dport: number; sport?: number };
  want: {
    verdict: Verdict;
    endpoints: string[];
    masqueradeByEndpoint?: Record<string, boolean>;
    masquerade: boolean;
    /** The concrete pick of a fresh rr table: the first dest in list order. */
    sample?: string;
    origin?: 'PREROUTING' | 'OUTPUT';
    /** A hop that must be there, as "table chain target". */
    hop?: string;
  };
}

const half = { '10.180.0.1:80': false, '10.180.0.2:80': false };

const flows: FlowCase[] = [
  {
    name: 'pod to ClusterIP: both ready endpoints, no masquerade; the terminating one is no real server',
    packet: { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 },
    // Dests were added .1, .2 (text order): the list is .2, .1, and rr's first pick is the front.
    want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80', '10.180.0.2:80'], masqueradeByEndpoint: half, masquerade: false, sample: '10.180.0.2:80', origin: 'PREROUTING', hop: 'ipvs LOCAL_IN TCP  172.30.0.41:80 rr' },
  },
  {
    name: 'off-cluster client to ClusterIP: KUBE-CLUSTER-IP with ! -s 10.0.0.0/8 marks it, KUBE-POSTROUTING masquerades',
    packet: { proto: 'tcp', src: '203.0.113.2', dst: '172.30.0.41', dport: 80 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80', '10.180.0.2:80'], masqueradeByEndpoint: { '10.180.0.1:80': true, '10.180.0.2:80': true }, masquerade: true, hop: 'nat KUBE-MARK-MASQ MARK' },
  },
  {
    name: 'a local endpoint reaching its own service is masqueraded to itself only (KUBE-LOOP-BACK)',
    packet: { proto: 'tcp', src: '10.180.0.2', dst: '172.30.0.41', dport: 80 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80', '10.180.0.2:80'], masqueradeByEndpoint: { '10.180.0.1:80': false, '10.180.0.2:80': true }, masquerade: true, hop: 'nat KUBE-POSTROUTING MASQUERADE' },
  },
  {
    name: 'external client to a node port: KUBE-NODE-PORT-TCP marks it',
    packet: { proto: 'tcp', src: '203.0.113.2', dst: '192.168.1.2', dport: 30080 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80', '10.180.0.2:80'], masqueradeByEndpoint: { '10.180.0.1:80': true, '10.180.0.2:80': true }, masquerade: true, hop: 'ipset KUBE-NODE-PORT-TCP match' },
  },
  {
    name: 'externalTrafficPolicy Local node port: the local endpoint only, source kept (KUBE-NODE-PORT-LOCAL-TCP returns)',
    packet: { proto: 'tcp', src: '203.0.113.2', dst: '192.168.0.2', dport: 30081 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.4:80'], masqueradeByEndpoint: { '10.180.0.4:80': false }, masquerade: false, sample: '10.180.0.4:80' },
  },
  {
    name: 'LoadBalancer from an allowed source: the local endpoint, source kept (KUBE-LOAD-BALANCER-LOCAL returns)',
    packet: { proto: 'tcp', src: '203.0.113.9', dst: '1.2.3.4', dport: 80 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.4:80'], masqueradeByEndpoint: { '10.180.0.4:80': false }, masquerade: false, hop: 'filter KUBE-SOURCE-RANGES-FIREWALL RETURN' },
  },
  {
    name: 'LoadBalancer from outside the source ranges: KUBE-SOURCE-RANGES-FIREWALL drops it',
    packet: { proto: 'tcp', src: '203.0.113.200', dst: '1.2.3.4', dport: 80 },
    want: { verdict: 'DROP', endpoints: [], masquerade: false, hop: 'filter KUBE-SOURCE-RANGES-FIREWALL DROP' },
  },
  {
    name: 'a virtual server without destinations: ip_vs_leave answers ICMP port unreachable (REJECT)',
    packet: { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.46', dport: 80 },
    want: { verdict: 'REJECT', endpoints: [], masquerade: false, hop: 'ipvs LOCAL_IN REJECT' },
  },
  {
    name: 'a VIP on a port that is no service: KUBE-IPVS-FILTER rejects the new connection (#72236)',
    packet: { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 22 },
    want: { verdict: 'REJECT', endpoints: [], masquerade: false, hop: 'filter KUBE-IPVS-FILTER REJECT' },
  },
  {
    name: 'UDP to a ClusterIP is scheduled like TCP',
    packet: { proto: 'udp', src: '10.0.0.2', dst: '172.30.0.10', dport: 53 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.8:53', '10.180.0.9:53'], masqueradeByEndpoint: { '10.180.0.8:53': false, '10.180.0.9:53': false }, masquerade: false, sample: '10.180.0.9:53' },
  },
  {
    name: 'the node itself to a ClusterIP: IPVS at LOCAL_OUT, the node address is off-cluster so masqueraded',
    packet: { proto: 'tcp', src: '192.168.0.2', dst: '172.30.0.41', dport: 80 },
    want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80', '10.180.0.2:80'], masqueradeByEndpoint: { '10.180.0.1:80': true, '10.180.0.2:80': true }, masquerade: true, origin: 'OUTPUT', hop: 'ipvs LOCAL_OUT TCP  172.30.0.41:80 rr' },
  },
  {
    name: 'a pod address that is no virtual server: IPVS does not take it, the packet is forwarded',
    packet: { proto: 'tcp', src: '10.0.0.2', dst: '10.180.0.1', dport: 80 },
    want: { verdict: 'NONE', endpoints: [], masquerade: false },
  },
];

const compiled = fixture();
for (const c of flows) {
  test(`trace ipvs: ${c.name}`, () => {
    const got = traceIpvs(compiled, c.packet as Packet);
    const evidence = `hops:\n${got.hops.map((h) => `  ${h.table} ${h.chain}: ${h.rule} -> ${h.target}`).join('\n')}`;
    assert.equal(got.verdict, c.want.verdict, evidence);
    assert.deepEqual(got.endpoints, c.want.endpoints, evidence);
    assert.equal(got.masquerade, c.want.masquerade, evidence);
    if (c.want.masqueradeByEndpoint) assert.deepEqual(got.masqueradeByEndpoint, c.want.masqueradeByEndpoint, evidence);
    if (c.want.sample) assert.equal(got.sample?.endpoint, c.want.sample, evidence);
    if (c.want.origin) assert.equal(got.origin, c.want.origin);
    if (c.want.hop) assert.ok(got.hops.some((h) => `${h.table} ${h.chain} ${h.target}` === c.want.hop), `no hop "${c.want.hop}"; ${evidence}`);
    const total = Object.values(got.probabilities).reduce((s, p) => s + p, 0);
    if (c.want.verdict === 'DNAT') assert.ok(Math.abs(total - 1) < 1e-12, `probabilities sum to ${total}`);
  });
}

test('trace ipvs: the JSON contract of the iptables tracer, plus the IPVS fields', () => {
  const got = JSON.parse(JSON.stringify(traceIpvs(compiled, { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }))) as Record<string, unknown>;
  for (const key of ['verdict', 'endpoints', 'probabilities', 'masquerade', 'masqueradeByEndpoint', 'hops', 'sample', 'virtualServer', 'scheduler', 'probabilityBasis', 'ipsets']) {
    assert.ok(key in got, `missing ${key}`);
  }
  assert.deepEqual(got['probabilities'], { '10.180.0.1:80': 0.5, '10.180.0.2:80': 0.5 });
  assert.equal(got['probabilityBasis'], 'cycle');
  assert.deepEqual(got['ipsets'], ['KUBE-CLUSTER-IP', 'KUBE-IPVS-IPS']);
  for (const hop of got['hops'] as Record<string, unknown>[]) for (const key of ['table', 'chain', 'rule', 'target']) assert.equal(typeof hop[key], 'string');
  const realServerHops = (got['hops'] as { table: string; chain: string; rule: string; target: string }[]).filter((h) => h.table === 'ipvs' && h.chain === 'TCP  172.30.0.41:80 rr');
  assert.deepEqual(realServerHops.map((h) => `${h.rule} => ${h.target}`), ['-> 10.180.0.1:80 Masq 1 => 10.180.0.1:80', '-> 10.180.0.2:80 Masq 1 => 10.180.0.2:80']);
});

test('trace ipvs with sh: two real servers share the 256 buckets, and the sample is this client\'s bucket', () => {
  const sh = fixture('sh');
  const got = traceIpvs(sh, { proto: 'tcp', src: '10.244.7.9', dst: '172.30.0.41', dport: 80, sport: 40000 });
  assert.equal(got.probabilityBasis, 'buckets');
  // List .2, .1: buckets dealt one each from the front, 128 each.
  assert.deepEqual(got.probabilities, { '10.180.0.1:80': 0.5, '10.180.0.2:80': 0.5 });
  const bucket = Math.imul(((10 << 24) | (244 << 16) | (7 << 8) | 9) >>> 0, 0x61c88647) >>> 24;
  assert.equal(got.sample?.endpoint, ['10.180.0.2:80', '10.180.0.1:80'][bucket % 2], `bucket ${bucket}`);
});

test('trace ipvs with sh over time (gracefulTermination): the draining dest keeps its buckets, which find nothing', () => {
  const sh = fixture('sh', true);
  const got = traceIpvs(sh, { proto: 'tcp', src: '10.244.7.9', dst: '172.30.0.41', dport: 80, sport: 40000 });
  assert.equal(got.probabilityBasis, 'buckets');
  // List .3 (w0), .2, .1: buckets dealt one each from the front, 86/85/85; the weight-0 dest's
  // buckets find nothing (kube-proxy sets no sh-fallback).
  assert.deepEqual(got.probabilities, { '10.180.0.1:80': 85 / 256, '10.180.0.2:80': 85 / 256 });
  assert.deepEqual(got.outcomes, { DNAT: 170 / 256, REJECT: 86 / 256 });
  const bucket = Math.imul(((10 << 24) | (244 << 16) | (7 << 8) | 9) >>> 0, 0x61c88647) >>> 24;
  const listOrder = ['10.180.0.3:80', '10.180.0.2:80', '10.180.0.1:80'];
  const want = listOrder[bucket % 3]!;
  if (want === '10.180.0.3:80') assert.equal(got.sample?.verdict, 'REJECT');
  else assert.equal(got.sample?.endpoint, want, `bucket ${bucket}`);
});

test('trace ipvs: a packet of the other family is refused with the trace error', () => {
  assert.throws(() => traceIpvs(compiled, { proto: 'tcp', src: 'fd00::1', dst: 'fd00::2', dport: 80 }), { code: 'KPSIM_ERR_TRACE_BAD_PACKET' });
});
