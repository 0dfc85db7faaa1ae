/**
 * The address helpers every layer shares: host:port joining and splitting, and netmasks as
 * prefix lengths, bytes and dotted quads.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  dottedNetmask, dottedNetmaskPrefix, joinHostPort, maskPrefixLength, prefixMaskBytes, splitHostOptionalPort, splitHostPort, unbracketHost,
} from '../../src/util/ip.js';

const joinCases: { ip: string; port: number; want: string }[] = [
  { ip: '10.0.0.1', port: 80, want: '10.0.0.1:80' },
  { ip: 'fd00::1', port: 443, want: '[fd00::1]:443' },
];
for (const c of joinCases) {
  test(`joinHostPort(${c.ip}, ${c.port}) is ${c.want}, and splits back`, () => {
    assert.equal(joinHostPort(c.ip, c.port), c.want);
    assert.deepEqual(splitHostPort(c.want), { ip: c.ip, port: c.port });
  });
}

const splitCases: { text: string; want: { ip: string; port: number | undefined } | undefined }[] = [
  { text: '10.0.0.1:80', want: { ip: '10.0.0.1', port: 80 } },
  { text: '[fd00::1]:80', want: { ip: 'fd00::1', port: 80 } },
  { text: '10.0.0.1', want: { ip: '10.0.0.1', port: undefined } },
  { text: '[fd00::1]', want: { ip: 'fd00::1', port: undefined } },
  { text: 'fd00::1', want: { ip: 'fd00::1', port: undefined } },
  { text: '10.0.0.1:70000', want: undefined },
  { text: 'node-a:80', want: undefined },
  { text: '', want: undefined },
];
for (const c of splitCases) {
  test(`splitHostOptionalPort(${JSON.stringify(c.text)})`, () => {
    assert.deepEqual(splitHostOptionalPort(c.text), c.want);
  });
}

test('unbracketHost strips the brackets of an IPv6 host only', () => {
  assert.deepEqual(['[::1]', '127.0.0.1', '[', '[]'].map(unbracketHost), ['::1', '127.0.0.1', '[', '']);
});

const maskCases: { prefix: number; dotted: string }[] = [
  { prefix: 0, dotted: '0.0.0.0' },
  { prefix: 8, dotted: '255.0.0.0' },
  { prefix: 20, dotted: '255.255.240.0' },
  { prefix: 32, dotted: '255.255.255.255' },
];
for (const c of maskCases) {
  test(`/${c.prefix} is the netmask ${c.dotted}, and back`, () => {
    assert.equal(dottedNetmask(c.prefix), c.dotted);
    assert.equal(dottedNetmaskPrefix(c.dotted), c.prefix);
    assert.equal(maskPrefixLength(prefixMaskBytes(c.prefix, 4)), c.prefix);
  });
}

test('IPv6 masks are 16 bytes', () => {
  const bytes = prefixMaskBytes(68, 6);
  assert.equal(bytes.length, 16);
  assert.deepEqual(bytes.slice(7, 10), [255, 0xf0, 0]);
  assert.equal(maskPrefixLength(bytes), 68);
});

test('a mask whose ones are not contiguous, or that is not a dotted quad, has no prefix length', () => {
  assert.equal(maskPrefixLength([255, 0, 255, 0]), undefined);
  for (const text of ['255.0.255.0', '255.255.255.256', '255.255.255', 'ffff:ffff::', '24']) {
    assert.equal(dottedNetmaskPrefix(text), undefined, text);
  }
});
