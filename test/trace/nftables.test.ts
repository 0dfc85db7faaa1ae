/**
 * The nftables tracer on its own: numgen's exact chances, seeded samples, affinity sets filled
 * from the context, hops with set lookups, base chains of several tables by priority, policies,
 * DNAT changing what later hooks see, IPv6, and the errors a bad packet gets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { hashAndTruncate } from '../../src/nftables/names.js';
import { numgenIndex, numgenProbabilities } from '../../src/nftables/numgen.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import type { Manifest } from '../helpers/cluster-builders.js';
import { TEST_NODE_IPS, ep, fixtureState, makeService, makeSlice, overallServices, tcpPort } from '../helpers/cluster-builders.js';
import { FIXTURE_NODE_PORT_ADDRESSES, FIXTURE_SERVICE_CIDRS } from '../nftables/fixtures.js';

function tracerFor(manifests: readonly Manifest[], family: 4 | 6 = 4) {
  const state = fixtureState(manifests, { family, config: (c) => { c.nodePortAddresses = FIXTURE_NODE_PORT_ADDRESSES; } });
  return createNftTracer(compileNftablesRules(state, { serviceCIDRs: FIXTURE_SERVICE_CIDRS }), { localAddresses: TEST_NODE_IPS });
}

const three = [
  makeService('ns7', 'svc7', (s) => { s.spec.clusterIP = '172.30.0.47'; s.spec.ports = [tcpPort('p80', 80)]; }),
  makeSlice('ns7', 'svc7', 1, (eps) => { eps.endpoints = [ep('10.180.0.7'), ep('10.180.0.8'), ep('10.180.0.9')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
];

test('numgen random mod N: the kernel\'s reciprocal_scale counts, exactly', () => {
  const p3 = numgenProbabilities(3);
  assert.deepEqual(p3.map((p) => p * 2 ** 32), [1431655766, 1431655765, 1431655765]);
  for (const n of [1, 2, 5, 7, 10, 1000]) {
    const p = numgenProbabilities(n);
    assert.equal(p.reduce((a, b) => a + b, 0), 1, `mod ${n} sums to 1`);
    assert.ok(p.every((x) => Math.abs(x - 1 / n) < 2 ** -32), `mod ${n}: every index within 2^-32 of 1/${n}`);
  }
  assert.deepEqual([0, 1431655765, 1431655766, 2863311530, 2863311531, 0xffffffff].map((r) => numgenIndex(r, 3)), [0, 0, 1, 1, 2, 2]);
});

test('a three-endpoint service: every endpoint with its chance, one hop per branch with its element', () => {
  const r = tracerFor(three).trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.47', dport: 80 });
  assert.equal(r.verdict, 'DNAT');
  assert.deepEqual(r.probabilities, { '10.180.0.7:80': 1431655766 / 2 ** 32, '10.180.0.8:80': 1431655765 / 2 ** 32, '10.180.0.9:80': 1431655765 / 2 ** 32 });
  const numgen = r.hops.filter((h) => h.rule.startsWith('numgen random mod 3 vmap'));
  assert.deepEqual(numgen.map((h) => h.lookups?.[0]?.element.slice(0, 4)), ['0 : ', '1 : ', '2 : ']);
  const dispatch = r.hops.find((h) => h.chain === 'services')!;
  assert.deepEqual(dispatch.lookups, [{ set: 'service-ips', element: `172.30.0.47 . tcp . 80 : goto service-${hashAndTruncate('ns7/svc7/tcp/p80')}` }]);
  assert.equal(dispatch.table, 'ip kube-proxy');
});

test('seeded samples repeat, land on the endpoints, and spread evenly', () => {
  const tracer = tracerFor(three);
  const packet = { proto: 'tcp' as const, src: '10.0.0.2', dst: '172.30.0.47', dport: 80 };
  assert.deepEqual(tracer.sample(packet, 42), tracer.sample(packet, 42));
  const counts = new Map<string, number>();
  for (let seed = 0; seed < 3000; seed++) {
    const s = tracer.sample(packet, seed);
    assert.equal(s.verdict, 'DNAT');
    counts.set(s.endpoint!, (counts.get(s.endpoint!) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), ['10.180.0.7:80', '10.180.0.8:80', '10.180.0.9:80']);
  for (const [endpoint, n] of counts) assert.ok(n > 850 && n < 1150, `${endpoint}: ${n} of 3000`);
  const traced = tracer.trace(packet, { seed: 42 });
  assert.deepEqual(traced.sample, tracer.sample(packet, 42));
});

test('ClientIP affinity: a client in an affinity set goes to that endpoint until the timeout passes', () => {
  const manifests = [
    makeService('ns8', 'svc8', (s) => {
      s.spec.clusterIP = '172.30.0.48';
      s.spec.ports = [tcpPort('p80', 80)];
      s.spec.sessionAffinity = 'ClientIP';
      s.spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: 300 } };
    }),
    makeSlice('ns8', 'svc8', 1, (eps) => { eps.endpoints = [ep('10.180.0.1'), ep('10.180.0.2')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ];
  const state = fixtureState(manifests);
  const ruleset = compileNftablesRules(state);
  const affinitySet = [...ruleset.tables[0]!.sets.keys()].find((n) => n.startsWith('affinity-') && n.endsWith('__10.180.0.2/80'))!;
  const packet = { proto: 'tcp' as const, src: '10.0.0.2', dst: '172.30.0.48', dport: 80 };
  const fresh = createNftTracer(ruleset, { localAddresses: TEST_NODE_IPS }).trace(packet);
  assert.deepEqual(fresh.endpoints, ['10.180.0.1:80', '10.180.0.2:80']);
  const sticky = createNftTracer(ruleset, { localAddresses: TEST_NODE_IPS, recent: { [affinitySet]: [{ address: '10.0.0.2', ageSeconds: 299 }] } }).trace(packet);
  assert.deepEqual(sticky.probabilities, { '10.180.0.2:80': 1 });
  const hop = sticky.hops.find((h) => h.rule.startsWith(`ip saddr @${affinitySet}`))!;
  assert.deepEqual(hop.notes, [`10.0.0.2 is in @${affinitySet} (added 299 s ago)`]);
  const expired = createNftTracer(ruleset, { localAddresses: TEST_NODE_IPS }).trace(packet, { recent: { [affinitySet]: [{ address: '10.0.0.2', ageSeconds: 300 }] } });
  assert.deepEqual(expired.endpoints, ['10.180.0.1:80', '10.180.0.2:80'], 'an element expires when its timeout has passed');
});

test('the node itself: output hook, then masquerade in postrouting', () => {
  const r = tracerFor(three).trace({ proto: 'tcp', src: '192.168.0.2', dst: '172.30.0.47', dport: 80 });
  assert.equal(r.origin, 'OUTPUT');
  assert.equal(r.masquerade, true);
  assert.deepEqual(r.hops.map((h) => h.chain).slice(0, 3), ['filter-output-pre-dnat', 'nat-output', 'services']);
  assert.ok(r.hops.some((h) => h.chain === 'masquerading' && h.rule === 'masquerade fully-random'));
});

test('IPv6: ip6 table, bracketed endpoints', () => {
  const r = tracerFor([
    makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = 'fd00:172:30::41'; s.spec.ipFamilies = ['IPv6']; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeSlice('ns1', 'svc1', 1, (eps) => { eps.addressType = 'IPv6'; eps.endpoints = [ep('fd00:10:180::1')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ], 6).trace({ proto: 'tcp', src: 'fd00:10::2', dst: 'fd00:172:30::41', dport: 80 });
  assert.deepEqual({ verdict: r.verdict, endpoints: r.endpoints }, { verdict: 'DNAT', endpoints: ['[fd00:10:180::1]:80'] });
  assert.equal(r.hops[0]!.table, 'ip6 kube-proxy');
});

const TWO_TABLES = `table ip first {
	chain pre {
		type filter hook prerouting priority -200; policy accept;
		ip saddr 198.51.100.0/24 drop
		tcp dport 9999 accept
	}

	chain in {
		type filter hook input priority 0; policy drop;
		tcp dport 22 accept
	}
}
table ip second {
	chain pre {
		type filter hook prerouting priority -250; policy accept;
		tcp dport 9999 meta mark set 0x00000001
	}

	chain mangle {
		type filter hook prerouting priority -150; policy accept;
		meta mark 0x00000001 tcp dport 9999 drop
	}
}
`;

test('several tables: base chains by priority across tables; accept only ends its own base chain; a drop policy', () => {
  const tracer = createNftTracer(parseNftRuleset(TWO_TABLES), { localAddresses: ['192.0.2.1'] });
  const marked = tracer.trace({ proto: 'tcp', src: '203.0.113.1', dst: '192.0.2.1', dport: 9999 });
  assert.equal(marked.verdict, 'DROP', 'second.pre (-250) marks, first.pre (-200) accepts, second.mangle (-150) still drops');
  assert.deepEqual(marked.hops.map((h) => `${h.table} ${h.chain}`), ['ip second pre', 'ip first pre', 'ip second mangle']);
  const ssh = tracer.trace({ proto: 'tcp', src: '203.0.113.1', dst: '192.0.2.1', dport: 22 });
  assert.equal(ssh.verdict, 'ACCEPT');
  const other = tracer.trace({ proto: 'tcp', src: '203.0.113.1', dst: '192.0.2.1', dport: 80 });
  assert.equal(other.verdict, 'DROP');
  assert.deepEqual(other.hops.at(-1), { table: 'ip first', chain: 'in', rule: 'policy drop', target: 'drop', notes: ["the chain's policy"], probability: 1, depth: 0 });
  assert.equal(tracer.trace({ proto: 'tcp', src: '198.51.100.9', dst: '192.0.2.1', dport: 22 }).verdict, 'DROP');
});

const SELF = `table ip self {
	chain out-nat {
		type nat hook output priority -100; policy accept;
		tcp dport 80 dnat to 192.0.2.1:8080
	}

	chain pre {
		type filter hook prerouting priority 0; policy accept;
		tcp dport 8080 meta mark set 0x00000002
	}

	chain pre-nat {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 8080 dnat to 192.0.2.1:9090
	}

	chain in {
		type filter hook input priority 0; policy drop;
		meta mark 0x00000002 tcp dport 8080 accept
	}
}
`;

test('the node to itself: back in through lo, prerouting\'s filter chains run, its nat chains do not (the NAT was set up on the way out)', () => {
  const r = createNftTracer(parseNftRuleset(SELF), { localAddresses: ['192.0.2.1'] }).trace({ proto: 'tcp', src: '192.0.2.1', dst: '192.0.2.1', dport: 80 });
  assert.deepEqual(r.hops.map((h) => `${h.chain}: ${h.rule}`), [
    'out-nat: tcp dport 80 dnat to 192.0.2.1:8080',
    'pre: tcp dport 8080 meta mark set 0x00000002',
    'in: meta mark 0x00000002 tcp dport 8080 accept',
  ]);
  assert.deepEqual({ verdict: r.verdict, endpoints: r.endpoints }, { verdict: 'DNAT', endpoints: ['192.0.2.1:8080'] });
});

test('bad packets: KPSIM_ERR_TRACE_BAD_PACKET naming the field; no table of the family', () => {
  const tracer = tracerFor(overallServices());
  const bad = (packet: Parameters<typeof tracer.trace>[0], path: string): void => {
    assert.throws(() => tracer.trace(packet), (e: unknown) => e instanceof KpsimError && e.code === 'KPSIM_ERR_TRACE_BAD_PACKET' && e.path === path);
  };
  bad({ proto: 'icmp' as 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 80 }, 'packet.proto');
  bad({ proto: 'tcp', src: '10.0.0.300', dst: '172.30.0.41', dport: 80 }, 'packet.src');
  bad({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.41', dport: 0 }, 'packet.dport');
  bad({ proto: 'tcp', src: 'fd00::2', dst: 'fd00::1', dport: 80 }, 'packet.dst');
});

test('rules evaluated per packet do not grow with the number of services', () => {
  const many = (n: number): Manifest[] => Array.from({ length: n }, (_, i) => [
    makeService('ns', `svc${i}`, (s) => { s.spec.clusterIP = `172.30.${Math.floor(i / 250)}.${(i % 250) + 1}`; s.spec.ports = [tcpPort('p80', 80)]; }),
    makeSlice('ns', `svc${i}`, 1, (eps) => { eps.endpoints = [ep(`10.180.${Math.floor(i / 250)}.${(i % 250) + 1}`)]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  ]).flat();
  const packet = { proto: 'tcp' as const, src: '10.0.0.2', dst: '172.30.0.1', dport: 80 };
  assert.equal(tracerFor(many(10)).rulesEvaluated(packet), tracerFor(many(500)).rulesEvaluated(packet));
});
