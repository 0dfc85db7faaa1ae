/**
 * The library surface, used the way a user's own node:test suite uses it: load a cluster,
 * compile one node's rules, trace packets, parse a dump back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  KpsimError,
  compileIpvs,
  compileIptables,
  createScheduler,
  createTracerFor,
  loadCluster,
  parseIptablesSave,
  renderIptables,
  tracePacket,
} from '../src/index.js';

const cluster = await loadCluster('rules/example');

interface FlowCase {
  name: string;
  src: string;
  dst: string;
  dport: number;
  proto?: 'tcp' | 'udp';
  verdict: string;
  endpoints: string[];
  masquerade: boolean;
}

// Expectations from kube-proxy's rules for the example cluster (rules/example, node-a).
const flows: FlowCase[] = [
  { name: 'ClusterIP from a pod', src: '10.244.1.20', dst: '10.96.100.20', dport: 80, verdict: 'DNAT', endpoints: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'], masquerade: false },
  { name: 'UDP DNS', proto: 'udp', src: '10.244.1.20', dst: '10.96.0.10', dport: 53, verdict: 'DNAT', endpoints: ['10.244.0.2:53', '10.244.1.3:53'], masquerade: false },
  { name: 'NodePort from outside: masqueraded (eTP Cluster)', src: '203.0.113.9', dst: '192.168.0.2', dport: 30080, verdict: 'DNAT', endpoints: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'], masquerade: true },
  { name: 'NodePort eTP Local from outside: only the local endpoint, source kept', src: '203.0.113.9', dst: '192.168.0.2', dport: 31443, verdict: 'DNAT', endpoints: ['10.244.0.8:8443'], masquerade: false },
  { name: 'LB IP from an allowed source', src: '198.51.100.7', dst: '203.0.113.50', dport: 443, verdict: 'DNAT', endpoints: ['10.244.0.8:8443'], masquerade: false },
  { name: 'LB IP from a source outside the ranges', src: '203.0.113.9', dst: '203.0.113.50', dport: 443, verdict: 'DROP', endpoints: [], masquerade: false },
  { name: 'external IP from outside', src: '203.0.113.9', dst: '192.0.2.10', dport: 9000, verdict: 'DNAT', endpoints: ['10.244.0.11:9000', '10.244.1.12:9000'], masquerade: true },
  { name: 'no endpoints', src: '10.244.1.20', dst: '10.96.40.50', dport: 80, verdict: 'REJECT', endpoints: [], masquerade: false },
  { name: 'iTP Local with no endpoint on this node', src: '10.244.1.20', dst: '10.96.50.60', dport: 80, verdict: 'DROP', endpoints: [], masquerade: false },
  { name: 'health check node port', src: '203.0.113.9', dst: '192.168.0.2', dport: 32000, verdict: 'ACCEPT', endpoints: [], masquerade: false },
  { name: 'hairpin: a pod to its own service endpoint is masqueraded', src: '10.244.0.5', dst: '10.96.100.20', dport: 80, verdict: 'DNAT', endpoints: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'], masquerade: true },
  { name: 'IPv6 ClusterIP', src: 'fd00:10:244::20', dst: 'fd00:10:96::70', dport: 80, verdict: 'DNAT', endpoints: ['[fd00:10:244::14]:8080'], masquerade: false },
  { name: 'not a service address', src: '10.244.1.20', dst: '10.96.99.99', dport: 80, verdict: 'NONE', endpoints: [], masquerade: false },
];

const rules = compileIptables(cluster, { node: 'node-a' });
for (const f of flows) {
  test(`tracePacket: ${f.name}`, () => {
    const got = tracePacket(rules, { proto: f.proto ?? 'tcp', src: f.src, dst: f.dst, dport: f.dport });
    assert.deepEqual(
      { verdict: got.verdict, endpoints: got.endpoints, masquerade: got.masquerade },
      { verdict: f.verdict, endpoints: f.endpoints, masquerade: f.masquerade },
      `matched:\n${got.hops.map((h) => h.rule).join('\n')}`,
    );
  });
}

test('probabilities of a three-endpoint service add up to one', () => {
  const got = tracePacket(rules, { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 });
  const sum = Object.values(got.probabilities).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-6, `sum ${sum}`);
  for (const p of Object.values(got.probabilities)) assert.ok(Math.abs(p - 1 / 3) < 1e-6, `p ${p}`);
});

test('a seeded sample is repeatable and is one of the endpoints', () => {
  const packet = { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 } as const;
  const a = tracePacket(rules, packet, { seed: 7 });
  const b = tracePacket(rules, packet, { seed: 7 });
  assert.ok(a.sample?.endpoint !== undefined && a.endpoints.includes(a.sample.endpoint));
  assert.deepEqual(a.sample, b.sample);
});

test('rendered rules parse back and trace alike', () => {
  const text = renderIptables(compileIptables(cluster, { node: 'node-a', family: 4 }));
  const parsed = parseIptablesSave(text, { file: 'node-a.rules' });
  const tracer = createTracerFor(parsed, { localAddresses: ['192.168.0.2'] });
  for (const f of flows.filter((x) => !x.src.includes(':'))) {
    const viaText = tracer.trace({ proto: f.proto ?? 'tcp', src: f.src, dst: f.dst, dport: f.dport });
    assert.deepEqual([f.name, viaText.verdict, viaText.endpoints], [f.name, f.verdict, f.endpoints]);
  }
});

test('IPVS mode reaches the same endpoints for a ClusterIP', () => {
  const got = tracePacket(compileIpvs(cluster, { node: 'node-a' }), { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 });
  assert.deepEqual([got.verdict, got.endpoints], ['DNAT', ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']]);
});

test('createScheduler is the kernel rr: a new dest goes to the front of the list', () => {
  const vs = createScheduler('rr');
  vs.addDest({ addr: '10.0.0.1:80', weight: 1 });
  vs.addDest({ addr: '10.0.0.2:80', weight: 1 });
  assert.deepEqual([vs.pick(), vs.pick(), vs.pick()], ['10.0.0.2:80', '10.0.0.1:80', '10.0.0.2:80']);
});

test('bad input throws a KpsimError with a code and a location', () => {
  assert.throws(() => parseIptablesSave('*nat\n-A NOPE -j ACCEPT\nCOMMIT\n', { file: 'dump.txt' }), (e: unknown) => e instanceof KpsimError && e.code === 'KPSIM_ERR_IPTABLES_PARSE' && e.file === 'dump.txt');
});
