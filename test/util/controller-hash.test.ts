/**
 * controllerHash hashes a value's canonical JSON while walking it, without writing the text.
 * These tables hold it to the hash of canonicalJSON's text: keys out of order, undefined
 * members and items, holes, strings that need escaping (quotes, backslashes, control
 * characters, lone surrogates), numbers JSON writes as null, nesting; listed and drawn.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJSON, controllerHash, fnv32a, safeEncodeString } from '../../src/util/hash.js';
import { seededUint32 } from '../../src/util/random.js';

function hashOfText(value: unknown): string {
  return safeEncodeString(String(fnv32a(canonicalJSON(value))));
}

// eslint-disable-next-line no-sparse-arrays
const holey: unknown[] = [1, , 3];

const listed: { name: string; value: unknown }[] = [
  { name: 'an empty object', value: {} },
  { name: 'an empty list', value: [] },
  { name: 'null', value: null },
  { name: 'a string', value: 'web' },
  { name: 'a number', value: 8080 },
  { name: 'true', value: true },
  { name: 'keys out of order', value: { b: 1, a: 2, c: { z: 'x', y: 'w' } } },
  { name: 'keys that look like indices', value: { 10: 'a', 9: 'b', x: 'c', '01': 'd' } },
  { name: 'undefined members', value: { a: undefined, b: 1, c: undefined } },
  { name: 'only undefined members', value: { a: undefined } },
  { name: 'undefined items', value: [undefined, 1, undefined] },
  { name: 'a hole', value: holey },
  { name: 'escapes', value: { 'q"k': 'say "hi"', 'b\\k': 'C:\\dir', nl: 'a\nb\tc\u0000', del: '\u007f' } },
  { name: 'non-ASCII', value: { name: 'café', emoji: '😀', cjk: '漢字' } },
  { name: 'lone surrogates', value: { hi: 'a\ud800b', lo: '\udc00', key: { '\ud83d': 1 } } },
  { name: 'numbers JSON writes otherwise', value: [Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 0.1, -5] },
  {
    name: 'a pod template',
    value: {
      metadata: { labels: { app: 'web', 'pod-template-hash': '5d8f7c9b6' } },
      spec: { containers: [{ name: 'main', image: 'nginx', ports: [{ containerPort: 80, name: 'http', protocol: 'TCP' }] }], restartPolicy: 'Always' },
    },
  },
];
for (const c of listed) {
  test(`controllerHash of ${c.name} is the hash of its canonical JSON text`, () => {
    assert.equal(controllerHash(c.value), hashOfText(c.value), `canonicalJSON: ${canonicalJSON(c.value)}`);
  });
}

const KEYS = ['a', 'b', 'name', 'Name', 'z', '"', '\\', 'é', '10', '9', ''];
const STRINGS = ['', 'x', 'a"b', 'c\\d', 'tab\t', 'ü', '\ud800', '😀', 'registry.example.com/web:1.0'];

function draw(next: () => number, depth: number): unknown {
  const pick = next() % (depth > 3 ? 5 : 8);
  switch (pick) {
    case 0: return STRINGS[next() % STRINGS.length];
    case 1: return (next() % 2000) - 1000 + (next() % 4 === 0 ? 0.5 : 0);
    case 2: return next() % 2 === 0;
    case 3: return null;
    case 4: return undefined;
    case 5: return Array.from({ length: next() % 4 }, () => draw(next, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = next() % 5; i > 0; i--) object[KEYS[next() % KEYS.length]!] = draw(next, depth + 1);
      return object;
    }
  }
}

test('controllerHash is the hash of canonicalJSON on 5,000 drawn values', () => {
  const next = seededUint32(7);
  for (let k = 0; k < 5000; k++) {
    const value = { spec: draw(next, 0), metadata: draw(next, 1) };
    assert.equal(controllerHash(value), hashOfText(value), `canonicalJSON: ${canonicalJSON(value)}`);
  }
});
