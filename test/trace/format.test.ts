/**
 * The human-readable trace: the chain walk indented by depth, then the verdict and the
 * endpoints with their chances and masquerading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { formatTrace } from '../../src/trace/format.js';
import { createTracer } from '../../src/trace/tracer.js';
import { EXTERNAL_CLIENT, NODE_IPS, OVERALL } from './fixtures.js';

const tracer = createTracer(parseIptablesSave(OVERALL), { localAddresses: NODE_IPS });

test('a DNAT with two endpoints', () => {
  const text = formatTrace(tracer.trace({ proto: 'tcp', src: EXTERNAL_CLIENT, dst: '172.30.0.44', dport: 80 }, { seed: 1 }));
  const lines = text.split('\n');
  assert.equal(lines[0], 'arriving at the node (nat PREROUTING)');
  assert.equal(lines[1], 'nat PREROUTING: -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES  (assumed)');
  assert.match(lines[2]!, /^ {2}nat KUBE-SERVICES: -A KUBE-SERVICES .* -j KUBE-SVC-4SW47YFZTEDKD3PK$/);
  assert.match(text, /^ {4}nat KUBE-SVC-4SW47YFZTEDKD3PK: .*--probability 0\.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC {2}\[p=0\.5\]$/m);
  assert.match(text, /^verdict: DNAT$/m);
  assert.match(text, /^endpoints:\n {2}10\.180\.0\.4:80 {2}p=0\.5 {2}masquerade\n {2}10\.180\.0\.5:80 {2}p=0\.5 {2}masquerade$/m);
  assert.match(text, /^masquerade: yes$/m);
  assert.match(text, /^sample: DNAT 10\.180\.0\.[45]:80, masquerade$/m);
});

test('a REJECT, and mixed outcomes', () => {
  const text = formatTrace(tracer.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.46', dport: 80 }));
  assert.match(text, /filter KUBE-SERVICES: .*"ns6\/svc6:p80 has no endpoints".* -j REJECT$/m);
  assert.match(text, /^verdict: REJECT$/m);
  assert.doesNotMatch(text, /^endpoints:/m);
  assert.match(text, /^masquerade: no$/m);
});

test('kube-proxy-test semantics show its output string', () => {
  const text = formatTrace(tracer.trace({ proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.44', dport: 80 }, { semantics: 'kube-proxy-test' }));
  assert.match(text, /^kube-proxy test output: "10\.180\.0\.4:80, 10\.180\.0\.5:80", masq: false$/m);
});
