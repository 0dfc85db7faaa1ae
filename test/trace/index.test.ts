/**
 * The chain index must never change an answer: what it skips could not have matched, and what
 * it returns comes in rule order. Checked rule by rule on the pinning, and on whole traces of a
 * generated cluster against a tracer that scans every chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChainIndex, pinnedKeyOf } from '../../src/iptables/rule-index.js';
import { readRuleSpec } from '../../src/iptables/rule-spec.js';
import { tokenizeLine } from '../../src/iptables/tokenize.js';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Packet, TraceResult } from '../../src/trace/types.js';
import { generateClusterManifests, seededRandom } from '../helpers/cluster-builders.js';

function key(line: string): string | undefined {
  const tokens = tokenizeLine(line);
  if (!tokens.ok) throw new Error(tokens.detail);
  const k = pinnedKeyOf(readRuleSpec(tokens.tokens, 4));
  return k === undefined ? undefined : `${k.dst ?? '*'}|${k.proto}|${k.dport}`;
}

const pinCases: { line: string; want: string | undefined }[] = [
  { line: '-d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X', want: '172.30.0.41|tcp|80' },
  { line: '-m comment --comment x -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-X', want: '172.30.0.41|tcp|80' },
  { line: '-p udp -m udp --dport 53 -j KUBE-EXT-X', want: '*|udp|53' },
  { line: '-d 127.0.0.0/8 -p tcp -m tcp --dport 3001 -j KUBE-EXT-X', want: '*|tcp|3001' },
  { line: '! -d 172.30.0.41 -p tcp -m tcp --dport 80 -j X', want: '*|tcp|80' },
  { line: '-d 172.30.0.41 -p tcp -m tcp ! --dport 80 -j X', want: undefined },
  { line: '-d 172.30.0.41 -p tcp -m tcp --dport 80:90 -j X', want: undefined },
  { line: '! -p tcp -m tcp --dport 80 -j X', want: undefined },
  { line: '-d 172.30.0.41 -j X', want: undefined },
  { line: '-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS', want: undefined },
  { line: '-p tcp -m multiport --dports 80 -j X', want: undefined },
];

for (const c of pinCases) {
  test(`pin: ${c.line}`, () => assert.equal(key(c.line), c.want));
}

test('candidates: exact and any-address buckets merged with the unpinned rules, in rule order', () => {
  const keys = [
    { dst: '10.0.0.1', proto: 'tcp', dport: 80 }, // 0
    undefined, // 1
    { dst: undefined, proto: 'tcp', dport: 80 }, // 2
    { dst: '10.0.0.2', proto: 'tcp', dport: 80 }, // 3
    { dst: '10.0.0.1', proto: 'udp', dport: 80 }, // 4
    ...Array.from({ length: 10 }, (_, i) => ({ dst: `10.1.0.${i}`, proto: 'tcp', dport: 443 })), // 5..14
    undefined, // 15
  ];
  const index = new ChainIndex(keys);
  assert.deepEqual(index.candidates('10.0.0.1', 'tcp', 80), [0, 1, 2, 15]);
  assert.deepEqual(index.candidates('10.0.0.2', 'tcp', 80), [1, 2, 3, 15]);
  assert.deepEqual(index.candidates('10.0.0.9', 'tcp', 80), [1, 2, 15]);
  assert.deepEqual(index.candidates('10.0.0.1', 'udp', 80), [1, 4, 15]);
  assert.deepEqual(index.candidates('10.9.9.9', 'sctp', 1), [1, 15]);
  // asked again: the same (cached) list
  assert.equal(index.candidates('10.0.0.1', 'tcp', 80), index.candidates('10.0.0.1', 'tcp', 80));
  assert.deepEqual(new ChainIndex(keys, { useIndex: false }).candidates('10.0.0.1', 'tcp', 80), keys.map((_, i) => i));
});

test('indexed and linear tracers agree on every packet of a generated cluster', () => {
  const manifests = generateClusterManifests({ seed: 4242, services: 80, endpointsPerService: 4, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const rules = compileIptablesRules(state);
  const context = { localAddresses: state.localAddresses };
  const indexed = createTracer(rules, context);
  const linear = createTracer(rules, context, { useIndex: false });

  const random = seededRandom(99);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const vips = state.servicePorts.flatMap((sp) => [sp.info.clusterIP, ...sp.info.externalIPs, ...sp.info.loadBalancerVIPs]);
  const ports = state.servicePorts.flatMap((sp) => [sp.info.port, sp.info.nodePort].filter((p) => p !== 0));
  const sources = ['10.244.1.7', '10.244.2.9', '203.0.113.5', '198.51.100.7', state.nodeIPs[0]!, '127.0.0.1'];
  const destinations = [...vips, ...state.localAddresses, '10.96.255.1', '10.244.1.9'];

  let compared = 0;
  const dnat = new Set<string>();
  for (let i = 0; i < 600; i++) {
    const packet: Packet = { proto: random() < 0.9 ? 'tcp' : 'udp', src: pick(sources), dst: pick(destinations), dport: random() < 0.8 ? pick(ports) : 1 + Math.floor(random() * 65535) };
    const a = indexed.trace(packet, { seed: i });
    const b = linear.trace(packet, { seed: i });
    const summary = (r: TraceResult) => ({ ...r, sample: { ...r.sample, hops: r.sample?.hops.map((h) => h.rule) }, hops: r.hops.map((h) => h.rule) });
    assert.deepEqual(summary(a), summary(b), JSON.stringify(packet));
    dnat.add(a.verdict);
    compared++;
  }
  assert.equal(compared, 600);
  assert.ok(dnat.has('DNAT') && dnat.has('NONE'), `the packets reach several outcomes: ${[...dnat].join(', ')}`);
});
