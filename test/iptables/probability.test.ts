/**
 * The probability cache's bytes (src/iptables/probability.ts): every 1/n as kube-proxy writes
 * it, asked for in any order (the array grows and keeps what was made), the same characters as
 * get(n); and the line scratch copies such a stretch of one array as it is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineScratch } from '../../src/iptables/line-scratch.js';
import { ENCODED_WIDTH, ProbabilityCache, computeProbability } from '../../src/iptables/probability.js';
import { TextBuffer } from '../../src/iptables/save-text.js';

interface Case {
  readonly name: string;
  /** The n asked for, in this order. */
  readonly order: readonly number[];
}

const CASES: readonly Case[] = [
  { name: 'small n, rising', order: [1, 2, 3, 4, 5, 6, 7] },
  { name: 'falling, as a policy chain asks (n - i)', order: [9, 8, 7, 6, 5, 4, 3, 2] },
  { name: 'a jump far past the array, then back', order: [2, 5000, 3, 2048, 64, 65, 4999] },
  { name: 'the same n again', order: [7, 7, 100001, 7, 100001] },
];

for (const c of CASES) {
  test(`probability bytes: ${c.name}`, () => {
    const cache = new ProbabilityCache();
    const text = (n: number): string => {
      const at = cache.bytesAt(n);
      return String.fromCharCode(...cache.encodedBytes.subarray(at, at + ENCODED_WIDTH));
    };
    for (const n of c.order) assert.equal(text(n), computeProbability(n), `1/${n} asked after [${c.order.slice(0, c.order.indexOf(n)).join(' ')}]`);
    // Everything made before is still there after the array grew.
    for (const n of c.order) {
      assert.equal(text(n), cache.get(n), `1/${n} read again`);
      assert.equal(String.fromCharCode(...cache.bytes(n)), cache.get(n), `bytes(${n})`);
    }
  });
}

test('probability bytes: n must be a positive integer', () => {
  const cache = new ProbabilityCache();
  for (const n of [0, -1, 1.5, Number.NaN]) assert.throws(() => cache.bytesAt(n), /positive integer/, `bytesAt(${n})`);
});

test('line scratch bytesOf copies a stretch of an array as it is', () => {
  const source = Uint8Array.from('xx-j KUBE-SEP-Ayy', (ch) => ch.charCodeAt(0));
  const scratch = new LineScratch();
  const out = new TextBuffer(64);
  scratch.room(out, 32);
  scratch.bytesOf(source, 2, 15);
  scratch.bytesOf(source, 0, 0);
  scratch.code(10);
  scratch.flush(out);
  assert.equal(out.toString(), '-j KUBE-SEP-A\n');
});
