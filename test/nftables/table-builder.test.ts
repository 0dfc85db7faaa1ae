/**
 * addElement / addKeyedElement / clearElements (src/nftables/table-builder.ts): kube-proxy's
 * ensureElem on a set, whether the set's keys are scanned (a few elements) or indexed (from
 * INDEXED_FROM on), and after the set is emptied and filled again. Each case is held to a model
 * that finds keys by a plain scan of the elements.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addElement, addKeyedElement, addRule, clearElements, elementKey, elementKeyAt, fitRules } from '../../src/nftables/table-builder.js';
import type { NftChain, NftElement, NftRule, NftSet } from '../../src/nftables/types.js';

/** ensureElem as a scan: same key and value kept, same key and another value moved to the end. */
function model(elements: readonly NftElement[], element: NftElement): NftElement[] {
  const key = elementKey(element);
  const at = elements.findIndex((e) => elementKey(e) === key);
  if (at < 0) return [...elements, element];
  if ((elements[at]!.value ?? []).join(' . ') === (element.value ?? []).join(' . ')) return [...elements];
  return [...elements.slice(0, at), ...elements.slice(at + 1), element];
}

const el = (ip: string, port: string, to?: string): NftElement => ({ key: [ip, 'tcp', port], ...(to !== undefined ? { value: [`goto ${to}`] } : {}) });

interface Case {
  readonly name: string;
  readonly adds: readonly NftElement[];
}

const many = (n: number, to = 'a'): NftElement[] => Array.from({ length: n }, (_, i) => el(`10.0.0.${i}`, '80', to));

const CASES: Case[] = [
  { name: 'distinct keys, few', adds: many(3) },
  { name: 'the same element twice', adds: [el('10.0.0.1', '80', 'a'), el('10.0.0.1', '80', 'a')] },
  { name: 'a key again with another value, scanned', adds: [el('10.0.0.1', '80', 'a'), el('10.0.0.2', '80', 'a'), el('10.0.0.1', '80', 'b')] },
  { name: 'grows past the index threshold', adds: many(20) },
  { name: 'a key again with another value, indexed', adds: [...many(12), el('10.0.0.3', '80', 'z'), el('10.0.0.11', '80', 'y'), el('10.0.0.3', '80', 'z')] },
  { name: 'replaced while scanned, then indexed', adds: [...many(5), el('10.0.0.0', '80', 'b'), ...many(10, 'c')] },
  { name: 'one-part keys', adds: [{ key: ['10.0.0.1'] }, { key: ['10.0.0.2'] }, { key: ['10.0.0.1'] }] },
  // Emptied at once (a small one is emptied by pops, keeping its storage).
  { name: 'more than a small array, emptied and refilled', adds: many(70) },
];

for (const c of CASES) {
  test(`addElement: ${c.name}`, () => {
    const set: NftSet = { kind: 'map', name: 'm', type: 'ipv4_addr . inet_proto . inet_service : verdict', elements: [] };
    let want: NftElement[] = [];
    for (const [i, element] of c.adds.entries()) {
      if (i % 2 === 0) addElement(set, element);
      else addKeyedElement(set, element, elementKey(element));
      want = model(want, element);
      assert.deepEqual(set.elements, want, `after add ${i} (${elementKey(element)})`);
      for (let k = 0; k < set.elements.length; k++) assert.equal(elementKeyAt(set, k), elementKey(set.elements[k]!), `key ${k} after add ${i}`);
    }
    // Emptied and filled again (a scratch table's set, one port after another): the same.
    clearElements(set);
    assert.deepEqual(set.elements, []);
    want = [];
    for (const [i, element] of c.adds.entries()) {
      addElement(set, element);
      want = model(want, element);
      assert.deepEqual(set.elements, want, `refilled, after add ${i} (${elementKey(element)})`);
    }
  });
}

test('addElement: elements pushed by something else are found too', () => {
  const set: NftSet = { kind: 'set', name: 's', type: 'ipv4_addr', elements: [] };
  addElement(set, { key: ['10.0.0.1'] });
  set.elements.push({ key: ['10.0.0.2'] });
  addElement(set, { key: ['10.0.0.2'] });
  assert.deepEqual(set.elements.map(elementKey), ['10.0.0.1', '10.0.0.2']);
});

/** A chain that is not a plain object (its rules its own business): fitRules leaves it alone. */
class OwnRulesChain implements NftChain {
  readonly name = 'own';
  readonly rules: NftRule[] = [{ text: 'drop' }];
}

for (const c of [
  { name: 'no rules', rules: [] as string[] },
  { name: 'one rule', rules: ['jump mark-for-masquerade'] },
  { name: 'two rules, one with a comment', rules: ['ip daddr 10.0.0.1 jump mark-for-masquerade', 'goto service-X'] },
  { name: 'more than an array grown by push has room for', rules: Array.from({ length: 20 }, (_, i) => `goto c${i}`) },
]) {
  test(`fitRules: ${c.name}`, () => {
    const chain: NftChain = { name: 'service-X', rules: [] };
    c.rules.forEach((text, i) => addRule(chain, text, i === 1 ? 'a comment' : undefined));
    const before = chain.rules;
    const want = before.map((r) => ({ ...r }));
    fitRules(chain);
    assert.deepEqual(chain.rules, want, 'the same rules, in order');
    assert.deepEqual(chain.rules.map((r) => r.text), c.rules);
    // A copy (exactly as long) where there are rules; an empty list is left as it is.
    assert.equal(chain.rules === before, c.rules.length === 0, 'a new array only when there are rules');
  });
}

test('fitRules: a chain that is not a plain object is left as it is', () => {
  const chain = new OwnRulesChain();
  const before = chain.rules;
  fitRules(chain);
  assert.equal(chain.rules, before);
});
