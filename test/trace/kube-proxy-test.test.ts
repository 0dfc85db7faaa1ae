/**
 * kpsim's reproduction of kube-proxy's test tracer, on kube-proxy's own TestTracePacket data,
 * must give exactly the outputs kube-proxy's test expects (proxier_test.go, TestTracePacket).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { traceKubeProxyTest } from '../../src/trace/kube-proxy-test.js';
import { createTracer } from '../../src/trace/tracer.js';
import { EXTERNAL_CLIENT, NODE_IP, NODE_IPS, OVERALL, TRACE_PACKET_TEST } from './fixtures.js';

const ruleset = parseIptablesSave(TRACE_PACKET_TEST, { file: 'TestTracePacket' });

/** TestTracePacket's rows: name, source, destination, port, output, masq. */
const cases: { name: string; sourceIP: string; destIP: string; destPort: number; output: string; masq?: boolean }[] = [
  { name: 'no match', sourceIP: '10.0.0.2', destIP: '10.0.0.3', destPort: 80, output: '' },
  { name: 'single endpoint', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80' },
  { name: 'multiple endpoints', sourceIP: '10.0.0.2', destIP: '172.30.0.44', destPort: 80, output: '10.180.0.4:80, 10.180.0.5:80' },
  { name: 'LOCAL, KUBE-MARK-MASQ', sourceIP: NODE_IP, destIP: '192.168.99.22', destPort: 80, output: '10.180.0.2:80', masq: true },
  { name: 'DROP', sourceIP: EXTERNAL_CLIENT, destIP: '192.168.99.22', destPort: 80, output: 'DROP' },
  { name: 'ACCEPT (NodePortHealthCheck)', sourceIP: NODE_IP, destIP: NODE_IP, destPort: 30000, output: 'ACCEPT' },
  { name: 'REJECT', sourceIP: '10.0.0.2', destIP: '172.30.0.46', destPort: 80, output: 'REJECT' },
];

for (const c of cases) {
  test(`kube-proxy TestTracePacket: ${c.name}`, () => {
    const got = traceKubeProxyTest(ruleset, { sourceIP: c.sourceIP, protocol: 'tcp', destIP: c.destIP, destPort: c.destPort }, NODE_IPS);
    const matched = got.matches.map((m) => `  ${m.table} ${m.rule}`).join('\n');
    assert.deepEqual({ output: got.output, masq: got.masq }, { output: c.output, masq: c.masq ?? false }, `matched:\n${matched}`);
  });
}

test('the same through createTracer with semantics kube-proxy-test', () => {
  const tracer = createTracer(ruleset, { localAddresses: NODE_IPS });
  const r = tracer.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.44', dport: 80 }, { semantics: 'kube-proxy-test' });
  assert.deepEqual(r.kubeProxyTest, { output: '10.180.0.4:80, 10.180.0.5:80', masq: false });
  assert.equal(r.verdict, 'DNAT');
  assert.deepEqual(r.endpoints, ['10.180.0.4:80', '10.180.0.5:80']);
});

test('its simplifications are kept: --ctstate never matches, masq is sticky across endpoints', () => {
  // The hairpin source marks masq on the 10.180.0.4 path; the test tracer reports it for the whole packet.
  const got = traceKubeProxyTest(ruleset, { sourceIP: '10.180.0.4', protocol: 'tcp', destIP: '172.30.0.44', destPort: 80 }, NODE_IPS);
  assert.deepEqual({ output: got.output, masq: got.masq }, { output: '10.180.0.4:80, 10.180.0.5:80', masq: true });
  // KUBE-FORWARD's rules carry --ctstate or --mark and are never taken.
  assert.ok(!got.matches.some((m) => m.chain === 'KUBE-FORWARD'));
});

test('without a PREROUTING chain it starts from kube-proxy\'s jump to KUBE-SERVICES', () => {
  const overall = parseIptablesSave(OVERALL);
  const got = traceKubeProxyTest(overall, { sourceIP: '10.0.0.2', protocol: 'tcp', destIP: '172.30.0.47', destPort: 80 }, NODE_IPS);
  assert.equal(got.output, '10.180.0.7:80, 10.180.1.7:80, 10.180.2.7:80');
  assert.equal(got.matches[0]!.chain, 'PREROUTING');
});
