/**
 * ChainMap (src/nftables/chain-map.ts): a Map of a table's chains that also takes whole runs of
 * chains (segments) without indexing them. Whatever is asked of it, it must answer as a plain Map
 * filled with the same chains in the same order would.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainMap, appendChains } from '../../src/nftables/chain-map.js';
import type { NftChain } from '../../src/nftables/types.js';

const chain = (name: string): NftChain => ({ name, rules: [{ text: `counter comment ${name}` }] });

type Step =
  | { readonly op: 'set'; readonly name: string }
  | { readonly op: 'append'; readonly names: readonly string[] }
  | { readonly op: 'get' | 'has' | 'delete'; readonly name: string }
  | { readonly op: 'clear' };

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
}

const CASES: Case[] = [
  { name: 'segments only', steps: [{ op: 'append', names: ['a', 'b'] }, { op: 'append', names: [] }, { op: 'append', names: ['c'] }] },
  { name: 'own chains, then segments', steps: [{ op: 'set', name: 'x' }, { op: 'set', name: 'y' }, { op: 'append', names: ['a', 'b'] }, { op: 'append', names: ['c'] }] },
  { name: 'a lookup after segments indexes them', steps: [{ op: 'set', name: 'x' }, { op: 'append', names: ['a', 'b'] }, { op: 'get', name: 'b' }, { op: 'has', name: 'zz' }, { op: 'append', names: ['c'] }] },
  { name: 'setting a chain of a segment again keeps its place', steps: [{ op: 'append', names: ['a', 'b', 'c'] }, { op: 'set', name: 'b' }, { op: 'set', name: 'd' }] },
  { name: 'a new chain after segments comes after them', steps: [{ op: 'set', name: 'x' }, { op: 'append', names: ['a'] }, { op: 'set', name: 'y' }, { op: 'append', names: ['b'] }] },
  { name: 'delete and clear', steps: [{ op: 'append', names: ['a', 'b'] }, { op: 'delete', name: 'a' }, { op: 'append', names: ['c'] }, { op: 'clear' }, { op: 'append', names: ['d'] }, { op: 'set', name: 'e' }] },
];

function describe(map: Map<string, NftChain>): string {
  const forEach: string[] = [];
  map.forEach((c, k) => forEach.push(`${k}=${c.name}`));
  return JSON.stringify({
    size: map.size,
    keys: [...map.keys()],
    values: [...map.values()].map((c) => c.name),
    entries: [...map].map(([k, c]) => `${k}=${c.name}`),
    forEach,
    // ChainMap's own array of its chains, in the order a Map lists them.
    array: (map instanceof ChainMap ? map.toArray() : [...map.values()]).map((c) => c.name),
  });
}

for (const c of CASES) {
  test(`ChainMap answers as a Map: ${c.name}`, () => {
    const plain = new Map<string, NftChain>();
    const segmented = new ChainMap();
    const made = new Map<string, NftChain>();
    const of = (name: string): NftChain => {
      let known = made.get(name);
      if (known === undefined) made.set(name, (known = chain(name)));
      return known;
    };
    c.steps.forEach((step, i) => {
      let a: unknown;
      let b: unknown;
      switch (step.op) {
        case 'set':
          plain.set(step.name, of(step.name));
          segmented.set(step.name, of(step.name));
          break;
        case 'append': {
          const segment = step.names.map(of);
          appendChains(plain, segment);
          appendChains(segmented, segment);
          break;
        }
        case 'get':
          a = plain.get(step.name);
          b = segmented.get(step.name);
          break;
        case 'has':
          a = plain.has(step.name);
          b = segmented.has(step.name);
          break;
        case 'delete':
          a = plain.delete(step.name);
          b = segmented.delete(step.name);
          break;
        case 'clear':
          plain.clear();
          segmented.clear();
          break;
      }
      assert.equal(b, a, `step ${i} (${JSON.stringify(step)}): the ChainMap answered ${String(b)}, a Map ${String(a)}`);
      assert.equal(describe(segmented), describe(plain), `after step ${i} (${JSON.stringify(step)})`);
    });
  });
}

test('runs(): the indexed chains, then each appended segment as handed in (the same arrays)', () => {
  const map = new ChainMap();
  map.set('x', chain('x'));
  const s1 = [chain('a'), chain('b')];
  const s2 = [chain('c')];
  map.appendSegment(s1);
  map.appendSegment(s2);
  const { own, segments } = map.runs();
  assert.deepEqual(own.map((c) => c.name), ['x']);
  assert.equal(segments.length, 2);
  assert.ok(segments[0] === s1 && segments[1] === s2, 'segments are not the arrays appended');
});
