/**
 * sha256AsciiPrefixOf keeps the message words of the last first part it hashed: a sequence of
 * calls must give node:crypto's digest whatever came before (same first part, another one, a
 * longer or shorter one, one that is not ASCII), at every block boundary.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { sha256AsciiPrefix, sha256AsciiPrefixOf } from '../../src/iptables/sha256.js';

type Call = readonly [a: string, b: string, c: string];

const long = 'ns-with-a-long-name/service-with-a-long-name:port-name';
const cases: { name: string; calls: readonly Call[] }[] = [
  {
    name: 'one port, its endpoints in turn',
    calls: [['ns1/web:http', 'tcp', '10.0.0.1:80'], ['ns1/web:http', 'tcp', '10.0.0.2:80'], ['ns1/web:http', 'tcp', '[fd00::1]:80']],
  },
  {
    name: 'ports alternating, the same endpoint',
    calls: [['ns1/a:p', 'tcp', '10.0.0.1:80'], ['ns1/b:p', 'udp', '10.0.0.1:80'], ['ns1/a:p', 'tcp', '10.0.0.1:80'], ['ns1/b:p', 'udp', '10.0.0.1:80']],
  },
  {
    name: 'a long first part, then a short one (no word of the long one left behind)',
    calls: [[long, 'tcp', '10.0.0.1:80'], ['n/s', 'tcp', '10.0.0.1:80'], ['n/s', '', ''], ['', '', ''], [long, '', '']],
  },
  {
    name: 'first parts ending at every byte of a word',
    calls: [['a', 'tcp', 'x'], ['ab', 'tcp', 'x'], ['abc', 'tcp', 'x'], ['abcd', 'tcp', 'x'], ['abcde', 'tcp', 'x'], ['abcd', 'tcp', 'x'], ['a', 'tcp', 'x']],
  },
  {
    name: 'messages across block boundaries with one first part',
    calls: [54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 300].map((n): Call => ['ns/svc:p', 'tcp', 'k'.repeat(Math.max(0, n - 11))]),
  },
  {
    name: 'a first part longer than a block',
    calls: [['f'.repeat(70), 'tcp', '10.0.0.1:80'], ['f'.repeat(70), 'tcp', '10.0.0.2:80'], ['f'.repeat(130), 'udp', '']],
  },
];

for (const c of cases) {
  test(`sha256AsciiPrefixOf agrees with node:crypto: ${c.name}`, () => {
    const out = new Uint8Array(32);
    c.calls.forEach(([a, b, c3], i) => {
      assert.ok(sha256AsciiPrefixOf(a, b, c3, out, 32), `call ${i} is ASCII`);
      const want = createHash('sha256').update(a + b + c3).digest('hex');
      assert.equal(Buffer.from(out).toString('hex'), want, `call ${i}: ${JSON.stringify([a, b, c3])}`);
    });
  });
}

test('a first part that is not ASCII is refused, and not kept for the next call', () => {
  const out = new Uint8Array(10);
  assert.equal(sha256AsciiPrefixOf('ns1/ünï:p', 'tcp', '10.0.0.1:80', out, 10), false);
  // An ASCII first part of the same length right after it is hashed from its own characters.
  assert.ok(sha256AsciiPrefixOf('ns1/uni:p', 'tcp', '10.0.0.1:80', out, 10));
  assert.equal(Buffer.from(out).toString('hex'), createHash('sha256').update('ns1/uni:ptcp10.0.0.1:80').digest('hex').slice(0, 20));
  // A later part that is not ASCII is refused too, the first part still kept.
  assert.equal(sha256AsciiPrefixOf('ns1/uni:p', 'tcp', '10.0.0.ü:80', out, 10), false);
  assert.ok(sha256AsciiPrefix('ns1/uni:ptcp10.0.0.2:80', out, 10));
  assert.equal(Buffer.from(out).toString('hex'), createHash('sha256').update('ns1/uni:ptcp10.0.0.2:80').digest('hex').slice(0, 20));
});
