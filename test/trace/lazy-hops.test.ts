/**
 * Hops made on first read (lazy-hops.ts): the object reads, lists, spreads and serialises as if
 * `hops` were a plain field in its place; each origin is asked once; and the answers a tracer
 * keeps stay fast-mode objects sharing one hidden class (a getter in an object literal made each
 * a dictionary of its own, several times the heap per kept walk). The last check asks V8 itself
 * (%HasFastProperties, %HaveSameMap), and is skipped with the reason when natives syntax cannot
 * be turned on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { defineLazyHops, type HopsOrigin } from '../../src/trace/lazy-hops.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Hop, Packet } from '../../src/trace/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { generateClusterManifests } from '../helpers/cluster-builders.js';

const HOPS: readonly Hop[] = [{ table: 'nat', chain: 'KUBE-SERVICES', rule: '-A KUBE-SERVICES -j KUBE-SVC-X', target: 'KUBE-SVC-X' }];

test('lazy hops: in field order, own and enumerable, each origin asked once', () => {
  const origins: { name: string; origin: (count: () => void) => HopsOrigin }[] = [
    { name: 'a function', origin: (count) => () => { count(); return HOPS; } },
    { name: 'a hop log', origin: (count) => ({ toHops: () => { count(); return HOPS; } }) },
    { name: 'an answer', origin: (count) => ({ get hops() { count(); return HOPS; } }) },
  ];
  for (const { name, origin } of origins) {
    let asked = 0;
    const made = defineLazyHops({ verdict: 'DNAT', endpoints: ['10.0.0.1:80'] }, origin(() => asked++)) as Record<string, unknown>;
    made.origin = 'PREROUTING';
    assert.equal(asked, 0, `${name}: asked before the hops were read`);
    const plain = { verdict: 'DNAT', endpoints: ['10.0.0.1:80'], hops: HOPS, origin: 'PREROUTING' };
    assert.deepEqual(Object.keys(made), Object.keys(plain), `${name}: keys in field order`);
    assert.equal(JSON.stringify(made), JSON.stringify(plain), `${name}: JSON as a plain field's`);
    assert.deepStrictEqual(made, plain, `${name}: deep-equal to a plain object`);
    assert.deepStrictEqual({ ...made }, plain, `${name}: a spread copies hops`);
    assert.equal(made.hops, made.hops, `${name}: the same hops each read`);
    assert.equal(asked, 1, `${name}: origin asked ${asked} times, not once`);
  }
});

/** natives syntax checks, or the reason they cannot run. */
function v8Checks(): { fast: (o: object) => boolean; sameMap: (a: object, b: object) => boolean } | string {
  try {
    setFlagsFromString('--allow-natives-syntax');
    const fast = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
    const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
    if (fast({ a: 1 }) !== true) return 'natives syntax answered unexpectedly';
    return { fast, sameMap };
  } catch (e) {
    return `natives syntax unavailable: ${(e as Error).message}`;
  }
}

test('kept answers are fast-mode objects of one hidden class per kind', (t) => {
  const checks = v8Checks();
  if (typeof checks === 'string') {
    t.skip(checks);
    return;
  }
  const manifests = generateClusterManifests({ seed: 7, services: 40, endpointsPerService: 3, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const tracer = createTracer(compileIptablesRules(state), { localAddresses: state.localAddresses });
  const packets: Packet[] = state.servicePorts
    .filter((sp) => sp.info.protocol === 'TCP' && sp.info.sessionAffinityTimeoutSeconds === 0)
    .slice(0, 6)
    .map((sp, i) => ({ proto: 'tcp', src: `10.244.1.${10 + i}`, dst: sp.info.clusterIP, dport: sp.info.port }));
  assert.ok(packets.length >= 2, `two services to compare, got ${packets.length}`);
  const kinds: { name: string; answer: (p: Packet) => object }[] = [
    { name: 'every outcome', answer: (p) => tracer.trace(p) },
    { name: 'sampleOnly', answer: (p) => tracer.trace(p, { seed: 3, sampleOnly: true }) },
    { name: 'sample', answer: (p) => tracer.sample(p, 3) },
  ];
  for (const kind of kinds) {
    // The second lookup of each packet is the kept answer.
    const kept = packets.map((p) => (kind.answer(p), kind.answer(p)));
    kept.forEach((answer, i) => assert.ok(checks.fast(answer), `${kind.name} #${i}: a dictionary-mode object: ${JSON.stringify(Object.keys(answer))}`));
    const dnat = kept.filter((a) => (a as { verdict: string }).verdict === 'DNAT');
    for (let i = 1; i < dnat.length; i++) {
      assert.ok(checks.sameMap(dnat[0]!, dnat[i]!), `${kind.name}: kept answers #0 and #${i} have different hidden classes`);
    }
  }
  assert.ok(tracer.cacheStats().hits >= packets.length * kinds.length, `answers were kept: ${JSON.stringify(tracer.cacheStats())}`);
});
