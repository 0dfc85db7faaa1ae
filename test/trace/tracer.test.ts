/**
 * Packet flows through hand-written kube-proxy rulesets with the kernel's semantics: which
 * endpoints, with what chance, masqueraded or not, and the verdict. Expected values follow the
 * reference (kube-proxy-iptables.md §4-5) and netfilter's hooks; probabilities are the
 * kernel's (round(2^31 p) / 2^31, from libxt_statistic and xt_statistic).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { createTracer, tracePacket } from '../../src/trace/tracer.js';
import type { Packet, TraceOptions, TraceResult, Verdict } from '../../src/trace/types.js';
import { isKpsimError } from '../../src/errors.js';
import {
  EXTERNAL_CLIENT, EXTERNAL_CLIENT_BLOCKED, IPV6, kernelChance, MASQUERADE_ALL, NODE_IP, NODE_IPS, OVERALL,
} from './fixtures.js';

const overall = parseIptablesSave(OVERALL, { file: 'overall' });
const tracer = createTracer(overall, { localAddresses: NODE_IPS });

interface Want {
  verdict: Verdict;
  /** endpoint → probability */
  endpoints?: Record<string, number>;
  masq: boolean;
  /** endpoint → masqueraded, when it differs between endpoints */
  masqByEndpoint?: Record<string, boolean>;
  origin?: 'PREROUTING' | 'OUTPUT';
}

interface FlowCase {
  name: string;
  packet: Omit<Packet, 'proto'> & { proto?: Packet['proto'] };
  opts?: TraceOptions;
  want: Want;
}

const half = kernelChance(0.5);
const third = kernelChance(0.3333333333);

const flows: FlowCase[] = [
  { name: 'no match: not a service', packet: { src: '10.0.0.2', dst: '10.0.0.3', dport: 80 }, want: { verdict: 'NONE', masq: false } },
  { name: 'cluster IP, one endpoint, from a pod', packet: { src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.1:80': 1 }, masq: false } },
  { name: 'cluster IP from outside the pod CIDR is masqueraded', packet: { src: EXTERNAL_CLIENT, dst: '172.30.0.41', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.1:80': 1 }, masq: true } },
  { name: 'cluster IP, wrong port', packet: { src: '10.0.0.2', dst: '172.30.0.41', dport: 81 }, want: { verdict: 'NONE', masq: false } },
  { name: 'cluster IP, wrong protocol', packet: { proto: 'udp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }, want: { verdict: 'NONE', masq: false } },
  { name: 'cluster IP, two endpoints, half each', packet: { src: '10.0.0.2', dst: '172.30.0.44', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.4:80': half, '10.180.0.5:80': 1 - half }, masq: false } },
  {
    name: 'cluster IP, three endpoints: 1/3 as the kernel stores it, then half of the rest',
    packet: { src: '10.0.0.2', dst: '172.30.0.47', dport: 80 },
    want: { verdict: 'DNAT', endpoints: { '10.180.0.7:80': third, '10.180.1.7:80': (1 - third) * half, '10.180.2.7:80': (1 - third) * (1 - half) }, masq: false },
  },
  { name: 'cluster IP with no endpoints is rejected in filter', packet: { src: '10.0.0.2', dst: '172.30.0.46', dport: 80 }, want: { verdict: 'REJECT', masq: false } },
  {
    name: 'hairpin: a pod reaching its own service is masqueraded on that path only',
    packet: { src: '10.180.0.4', dst: '172.30.0.44', dport: 80 },
    want: { verdict: 'DNAT', endpoints: { '10.180.0.4:80': half, '10.180.0.5:80': 1 - half }, masq: true, masqByEndpoint: { '10.180.0.4:80': true, '10.180.0.5:80': false } },
  },
  { name: 'the node to a cluster IP goes through nat OUTPUT, masqueraded', packet: { src: NODE_IP, dst: '172.30.0.41', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.1:80': 1 }, masq: true, origin: 'OUTPUT' } },
  { name: 'NodePort from outside: KUBE-NODEPORTS via the addrtype LOCAL rule, masqueraded', packet: { src: EXTERNAL_CLIENT, dst: NODE_IP, dport: 3003 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.3:80': 1 }, masq: true } },
  { name: 'NodePort on another node IP', packet: { src: EXTERNAL_CLIENT, dst: '192.168.1.2', dport: 3003 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.3:80': 1 }, masq: true } },
  { name: 'NodePort on localhost from the node (the nfacct rule)', packet: { src: '127.0.0.1', dst: '127.0.0.1', dport: 3003 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.3:80': 1 }, masq: true, origin: 'OUTPUT' } },
  { name: 'NodePort on a non-local address does not match', packet: { src: EXTERNAL_CLIENT, dst: '192.168.5.5', dport: 3003 }, want: { verdict: 'NONE', masq: false } },
  { name: 'a pod to localhost is dropped by KUBE-FIREWALL', packet: { src: '10.0.0.2', dst: '127.0.0.1', dport: 8080 }, want: { verdict: 'DROP', masq: false } },
  { name: 'external IP, eTP=Cluster: masqueraded', packet: { src: EXTERNAL_CLIENT, dst: '192.168.99.33', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.4:80': half, '10.180.0.5:80': 1 - half }, masq: true } },
  { name: 'LB with source ranges, allowed client', packet: { src: EXTERNAL_CLIENT, dst: '5.6.7.8', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.3:80': 1 }, masq: true } },
  { name: 'LB with source ranges, blocked client: KUBE-PROXY-FIREWALL drops', packet: { src: EXTERNAL_CLIENT_BLOCKED, dst: '5.6.7.8', dport: 80 }, want: { verdict: 'DROP', masq: false } },
  { name: 'LB NodePort ignores source ranges', packet: { src: EXTERNAL_CLIENT_BLOCKED, dst: NODE_IP, dport: 3002 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.3:80': 1 }, masq: true } },
  { name: 'eTP=Local, no local endpoint: external client to LB IP is dropped', packet: { src: EXTERNAL_CLIENT, dst: '1.2.3.4', dport: 80 }, want: { verdict: 'DROP', masq: false } },
  { name: 'eTP=Local, no local endpoint: external client to external IP is dropped', packet: { src: EXTERNAL_CLIENT, dst: '192.168.99.22', dport: 80 }, want: { verdict: 'DROP', masq: false } },
  { name: 'eTP=Local, no local endpoint: external client to NodePort is dropped', packet: { src: EXTERNAL_CLIENT, dst: NODE_IP, dport: 3001 }, want: { verdict: 'DROP', masq: false } },
  { name: 'eTP=Local: pods short-circuit to the cluster-wide chain, not masqueraded', packet: { src: '10.0.0.2', dst: '192.168.99.22', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.2:80': 1 }, masq: false } },
  { name: 'eTP=Local: node-local traffic is masqueraded and routed cluster-wide', packet: { src: NODE_IP, dst: '192.168.99.22', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.2:80': 1 }, masq: true, origin: 'OUTPUT' } },
  { name: 'eTP=Local with a local endpoint: external clients only reach it, unmasqueraded', packet: { src: EXTERNAL_CLIENT, dst: NODE_IP, dport: 3009 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.9:80': 1 }, masq: false } },
  { name: 'eTP=Local with a local endpoint: pods reach every endpoint', packet: { src: '10.0.0.2', dst: NODE_IP, dport: 3009 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.9:80': half, '10.180.1.9:80': 1 - half }, masq: false } },
  { name: 'eTP=Local with a local endpoint: the node reaches every endpoint, masqueraded', packet: { src: NODE_IP, dst: NODE_IP, dport: 3009 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.9:80': half, '10.180.1.9:80': 1 - half }, masq: true, origin: 'OUTPUT' } },
  { name: 'health check node port is accepted in filter KUBE-NODEPORTS', packet: { src: EXTERNAL_CLIENT, dst: NODE_IP, dport: 30000 }, want: { verdict: 'ACCEPT', masq: false } },
  { name: 'session affinity, fresh client: the statistic path', packet: { src: '10.0.0.2', dst: '172.30.0.48', dport: 80 }, want: { verdict: 'DNAT', endpoints: { '10.180.0.8:80': half, '10.180.1.8:80': 1 - half }, masq: false } },
  {
    name: 'session affinity, known client: the rcheck path',
    packet: { src: '10.0.0.2', dst: '172.30.0.48', dport: 80 },
    opts: { recent: { 'KUBE-SEP-SVC8BBBBBBBBBBBB': ['10.0.0.2'] } },
    want: { verdict: 'DNAT', endpoints: { '10.180.1.8:80': 1 }, masq: false },
  },
  {
    name: 'session affinity, client seen longer ago than the timeout: fresh again',
    packet: { src: '10.0.0.2', dst: '172.30.0.48', dport: 80 },
    opts: { recent: { 'KUBE-SEP-SVC8BBBBBBBBBBBB': [{ address: '10.0.0.2', ageSeconds: 10800 }] } },
    want: { verdict: 'DNAT', endpoints: { '10.180.0.8:80': half, '10.180.1.8:80': 1 - half }, masq: false },
  },
  {
    name: 'session affinity, another client in the list does not count',
    packet: { src: '10.0.0.2', dst: '172.30.0.48', dport: 80 },
    opts: { recent: { 'KUBE-SEP-SVC8BBBBBBBBBBBB': ['10.0.0.3'] } },
    want: { verdict: 'DNAT', endpoints: { '10.180.0.8:80': half, '10.180.1.8:80': 1 - half }, masq: false },
  },
];

function probabilitiesClose(got: Readonly<Record<string, number>>, want: Record<string, number>): boolean {
  const keys = Object.keys(want).sort();
  return JSON.stringify(Object.keys(got)) === JSON.stringify(keys) && keys.every((k) => Math.abs(got[k]! - want[k]!) < 1e-12);
}

function evidence(r: TraceResult): string {
  return `got ${JSON.stringify({ verdict: r.verdict, probabilities: r.probabilities, masq: r.masquerade, byEp: r.masqueradeByEndpoint, outcomes: r.outcomes })}\nmatched:\n${r.hops.map((h) => `  ${'  '.repeat(h.depth ?? 0)}${h.table} ${h.rule}`).join('\n')}`;
}

for (const c of flows) {
  test(`flow: ${c.name}`, () => {
    const r = tracer.trace({ proto: 'tcp', ...c.packet }, c.opts);
    const why = evidence(r);
    assert.equal(r.verdict, c.want.verdict, why);
    assert.deepEqual(r.endpoints, Object.keys(c.want.endpoints ?? {}).sort(), why);
    assert.ok(probabilitiesClose(r.probabilities, c.want.endpoints ?? {}), why);
    assert.equal(r.masquerade, c.want.masq, why);
    const byEndpoint = c.want.masqByEndpoint ?? Object.fromEntries(Object.keys(c.want.endpoints ?? {}).map((e) => [e, c.want.masq]));
    assert.deepEqual(r.masqueradeByEndpoint, byEndpoint, why);
    assert.equal(r.origin, c.want.origin ?? 'PREROUTING', why);
    assert.equal(r.outcomes, undefined, why);
  });
}

test('hops: the walk in order, assumed built-in jumps marked, depth and probability on each', () => {
  const r = tracer.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.44', dport: 80 });
  const walk = r.hops.map((h) => [h.table, h.chain, h.target, h.depth, h.assumed ?? false]);
  assert.deepEqual(walk.slice(0, 5), [
    ['nat', 'PREROUTING', 'KUBE-SERVICES', 0, true],
    ['nat', 'KUBE-SERVICES', 'KUBE-SVC-4SW47YFZTEDKD3PK', 1, false],
    ['nat', 'KUBE-SVC-4SW47YFZTEDKD3PK', 'KUBE-SEP-UKSFD7AGPMPPLUHC', 2, false],
    ['nat', 'KUBE-SEP-UKSFD7AGPMPPLUHC', 'DNAT', 3, false],
    ['filter', 'FORWARD', 'KUBE-PROXY-FIREWALL', 0, true],
  ]);
  const dnats = r.hops.filter((h) => h.target === 'DNAT');
  assert.deepEqual(dnats.map((h) => h.probability), [half, 1 - half]);
  assert.equal(r.hops[0]!.rule, '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
  // the second branch's rules come after the whole first branch (depth first)
  const second = r.hops.findIndex((h) => h.chain === 'KUBE-SEP-C6EBXVWJJZMIWKLZ');
  const postrouting = r.hops.findIndex((h) => h.chain === 'POSTROUTING');
  assert.ok(postrouting > 0 && second > postrouting);
});

test('hops: a REJECT is the last rule walked, in filter', () => {
  const r = tracer.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.46', dport: 80 });
  const last = r.hops[r.hops.length - 1]!;
  assert.equal(last.table, 'filter');
  assert.equal(last.target, 'REJECT');
  assert.match(last.rule, /ns6\/svc6:p80 has no endpoints/);
});

test('seeded sample: repeatable, one of the endpoints, with its own hops', () => {
  const packet: Packet = { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.47', dport: 80 };
  const a = tracer.trace(packet, { seed: 42 });
  const b = tracer.trace(packet, { seed: 42 });
  assert.deepEqual(a.sample, b.sample);
  assert.ok(a.sample!.endpoint !== undefined && a.endpoints.includes(a.sample!.endpoint));
  assert.equal(a.sample!.verdict, 'DNAT');
  assert.ok(a.sample!.hops.some((h) => h.rule.includes(`--to-destination ${a.sample!.endpoint}`)));
  const seen = new Set<string>();
  for (let seed = 0; seed < 64; seed++) seen.add(tracer.trace(packet, { seed }).sample!.endpoint!);
  assert.deepEqual([...seen].sort(), a.endpoints, 'over 64 seeds every endpoint comes up');
});

test('seeded sample: the draws follow the kernel\'s probabilities', () => {
  const packet: Packet = { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.47', dport: 80 };
  const counts = new Map<string, number>();
  const n = 3000;
  for (let seed = 1; seed <= n; seed++) {
    const e = tracer.trace(packet, { seed }).sample!.endpoint!;
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  for (const [endpoint, count] of counts) {
    // binomial(3000, 1/3): sd ≈ 26; 5 sd either side
    assert.ok(Math.abs(count - n / 3) < 130, `${endpoint}: ${count} of ${n}`);
  }
});

test('recent --set: a walk records the client; a fresh tracer does not remember it', () => {
  const first = tracer.trace({ proto: 'tcp', src: EXTERNAL_CLIENT, dst: '5.6.7.8', dport: 80 });
  assert.ok(first.hops.some((h) => /--set/.test(h.rule)));
  const again = tracer.trace({ proto: 'tcp', src: EXTERNAL_CLIENT, dst: '5.6.7.8', dport: 80 });
  assert.ok(!again.hops.some((h) => /--rcheck/.test(h.rule)), 'each trace starts from the context\'s recent lists');
});

test('masqueradeAll: pods are masqueraded too', () => {
  const r = tracePacket(parseIptablesSave(MASQUERADE_ALL), { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }, { localAddresses: NODE_IPS });
  assert.equal(r.verdict, 'DNAT');
  assert.equal(r.masquerade, true);
});

const ipv6Cases: { name: string; src: string; dst: string; want: { verdict: Verdict; endpoints: string[]; masq: boolean } }[] = [
  { name: 'pod to cluster IP', src: 'fd00:10::2', dst: 'fd00:172:30::41', want: { verdict: 'DNAT', endpoints: ['[fd00:10:180::1]:80'], masq: false } },
  { name: 'outside client is masqueraded', src: '2001:db8:ffff::2', dst: 'fd00:172:30::41', want: { verdict: 'DNAT', endpoints: ['[fd00:10:180::1]:80'], masq: true } },
  { name: 'hairpin', src: 'fd00:10:180::1', dst: 'fd00:172:30::41', want: { verdict: 'DNAT', endpoints: ['[fd00:10:180::1]:80'], masq: true } },
  { name: 'no endpoints', src: 'fd00:10::2', dst: 'fd00:172:30::46', want: { verdict: 'REJECT', endpoints: [], masq: false } },
];

const dualStack = [overall, parseIptablesSave(IPV6, { file: 'ipv6' })];
for (const c of ipv6Cases) {
  test(`IPv6 flow: ${c.name}`, () => {
    const r = tracePacket(dualStack, { proto: 'tcp', src: c.src, dst: c.dst, dport: 80 }, { localAddresses: NODE_IPS });
    assert.deepEqual({ verdict: r.verdict, endpoints: r.endpoints, masq: r.masquerade }, c.want, evidence(r));
  });
}

test('branches ending differently: the likelier verdict, and each verdict\'s share', () => {
  const text = `*filter
:KUBE-SERVICES - [0:0]
-A KUBE-SERVICES -m tcp -p tcp -d 10.180.0.2 --dport 80 -j REJECT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-X - [0:0]
:KUBE-SEP-1 - [0:0]
:KUBE-SEP-2 - [0:0]
-A KUBE-SERVICES -m tcp -p tcp -d 172.30.0.9 --dport 80 -j KUBE-SVC-X
-A KUBE-SVC-X -m statistic --mode random --probability 0.2500000000 -j KUBE-SEP-2
-A KUBE-SVC-X -j KUBE-SEP-1
-A KUBE-SEP-1 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-2 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
COMMIT
`;
  const r = tracePacket(parseIptablesSave(text), { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.9', dport: 80 }, { localAddresses: NODE_IPS });
  assert.equal(r.verdict, 'DNAT');
  assert.deepEqual(r.endpoints, ['10.180.0.1:80']);
  assert.deepEqual(r.outcomes, { DNAT: 0.75, REJECT: 0.25 });
});

test('a built-in chain\'s DROP policy drops what no rule accepts', () => {
  const text = `*filter
:FORWARD DROP [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -j KUBE-FORWARD
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -m tcp -p tcp -d 172.30.0.9 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m tcp -p tcp -d 172.30.0.9 --dport 80 -j DNAT --to-destination 10.180.0.1:80
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
COMMIT
`;
  const rs = parseIptablesSave(text);
  const fromPod = tracePacket(rs, { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.9', dport: 80 }, { localAddresses: NODE_IPS });
  assert.equal(fromPod.verdict, 'DROP');
  assert.equal(fromPod.hops[fromPod.hops.length - 1]!.rule, '-P FORWARD DROP');
  const fromOutside = tracePacket(rs, { proto: 'tcp', src: EXTERNAL_CLIENT, dst: '172.30.0.9', dport: 80 }, { localAddresses: NODE_IPS });
  assert.equal(fromOutside.verdict, 'DNAT', 'the marked packet is accepted by KUBE-FORWARD');
  // KUBE-POSTROUTING is absent: kube-proxy's "masquerade if marked" is assumed
  assert.equal(fromOutside.masquerade, true);
});

test('ipsets: -m set --match-set as kube-proxy\'s IPVS mode writes it', () => {
  const text = `*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
COMMIT
`;
  const rs = parseIptablesSave(text);
  const ipsets = { 'KUBE-CLUSTER-IP': ['172.30.0.41,tcp:80', '172.30.0.42,udp:53'] };
  const hit = tracePacket(rs, { proto: 'tcp', src: EXTERNAL_CLIENT, dst: '172.30.0.41', dport: 80 }, { localAddresses: NODE_IPS, ipsets });
  assert.equal(hit.hops.filter((h) => h.chain === 'KUBE-SERVICES').length, 2);
  assert.equal(hit.masquerade, true);
  const wrongProto = tracePacket(rs, { proto: 'tcp', src: EXTERNAL_CLIENT, dst: '172.30.0.42', dport: 53 }, { localAddresses: NODE_IPS, ipsets });
  assert.equal(wrongProto.hops.filter((h) => h.chain === 'KUBE-SERVICES').length, 0);
  const noSets = tracePacket(rs, { proto: 'tcp', src: EXTERNAL_CLIENT, dst: '172.30.0.41', dport: 80 }, { localAddresses: NODE_IPS });
  assert.equal(noSets.hops.filter((h) => h.chain === 'KUBE-SERVICES').length, 0, 'a set not given is empty');
});

test('unknown modules are assumed to match, and the hop says so', () => {
  const text = '*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m physdev --physdev-is-bridged -m tcp -p tcp -d 172.30.0.9 --dport 80 -j DNAT --to-destination 10.180.0.1:80\nCOMMIT\n';
  const r = tracePacket(parseIptablesSave(text), { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.9', dport: 80 }, { localAddresses: NODE_IPS });
  assert.equal(r.verdict, 'DNAT');
  const hop = r.hops.find((h) => h.target === 'DNAT')!;
  assert.ok(hop.notes?.some((n) => /physdev/.test(n)), JSON.stringify(hop));
});

test('a jump loop is reported, not walked forever', () => {
  const text = '*nat\n:KUBE-SERVICES - [0:0]\n:A - [0:0]\n:B - [0:0]\n-A KUBE-SERVICES -j A\n-A A -j B\n-A B -j A\nCOMMIT\n';
  assert.throws(() => tracePacket(parseIptablesSave(text), { proto: 'tcp', src: '10.0.0.2', dst: '1.1.1.1', dport: 80 }, { localAddresses: NODE_IPS }),
    (e: unknown) => isKpsimError(e) && /loop/.test(e.message));
});

const badPackets: { name: string; packet: Record<string, unknown>; path: string }[] = [
  { name: 'protocol', packet: { proto: 'icmp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }, path: 'packet.proto' },
  { name: 'source', packet: { proto: 'tcp', src: 'ten', dst: '172.30.0.41', dport: 80 }, path: 'packet.src' },
  { name: 'destination', packet: { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.300', dport: 80 }, path: 'packet.dst' },
  { name: 'port', packet: { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 0 }, path: 'packet.dport' },
  { name: 'mixed families', packet: { proto: 'tcp', src: 'fd00::1', dst: '172.30.0.41', dport: 80 }, path: 'packet.src' },
  { name: 'no ruleset of the family', packet: { proto: 'tcp', src: 'fd00::1', dst: 'fd00::2', dport: 80 }, path: 'packet.dst' },
];

for (const c of badPackets) {
  test(`bad packet: ${c.name}`, () => {
    assert.throws(() => tracer.trace(c.packet as unknown as Packet), (e: unknown) => {
      assert.ok(isKpsimError(e));
      assert.equal(e.code, 'KPSIM_ERR_TRACE_BAD_PACKET');
      assert.equal(e.path, c.path);
      return true;
    });
  });
}
