/**
 * normalizeIP and ipFamily answer for an address already in normal form without parsing it
 * (plainIPv4Value, isNormalIPv6). These tables hold the fast answers to the parsing ones
 * (slowNormalizeIP) on canonical, expanded, zero-padded, upper-case, IPv4-mapped, zoned,
 * dotted-tail and broken texts, listed and drawn from a seeded source.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipFamily, isNormalIPv6, normalizeIP, slowNormalizeIP } from '../../src/util/ip.js';
import { seededUint32 } from '../../src/util/random.js';

/** The family slowNormalizeIP's answer has (what ipFamily said before it had a fast path). */
function slowFamily(text: string): 4 | 6 | undefined {
  const ip = slowNormalizeIP(text);
  return ip === undefined ? undefined : ip.includes(':') ? 6 : 4;
}

function checkAgainstSlowPath(text: string): void {
  const slow = slowNormalizeIP(text);
  assert.equal(normalizeIP(text), slow, `normalizeIP(${JSON.stringify(text)}): fast path and parser disagree`);
  assert.equal(ipFamily(text), slowFamily(text), `ipFamily(${JSON.stringify(text)}): fast path and parser disagree`);
  if (isNormalIPv6(text)) assert.equal(slow, text, `isNormalIPv6 took ${JSON.stringify(text)} as normal; the parser writes ${JSON.stringify(slow)}`);
  // Every IPv6 text the parser leaves as it is takes the fast path (else it is no faster), but
  // one with a zone: the zone is rare, and left to the parser.
  if (slow === text && text.includes(':') && !text.includes('%')) assert.ok(isNormalIPv6(text), `${JSON.stringify(text)} is in normal form but isNormalIPv6 says not`);
}

const listed: { text: string; normal: string | undefined }[] = [
  { text: '10.0.0.1', normal: '10.0.0.1' },
  { text: '0.0.0.0', normal: '0.0.0.0' },
  { text: '255.255.255.255', normal: '255.255.255.255' },
  { text: '010.0.0.1', normal: '10.0.0.1' },
  { text: '10.0.0.01', normal: '10.0.0.1' },
  { text: '256.0.0.1', normal: undefined },
  { text: '10.0.0', normal: undefined },
  { text: '10.0.0.1.', normal: undefined },
  { text: ' 10.0.0.1', normal: '10.0.0.1' },
  { text: '10.0.0.1 ', normal: '10.0.0.1' },
  { text: '0x0a.0.0.1', normal: undefined },
  { text: '::', normal: '::' },
  { text: '::1', normal: '::1' },
  { text: '1::', normal: '1::' },
  { text: ':', normal: undefined },
  { text: ':::', normal: undefined },
  { text: ':1::', normal: undefined },
  { text: '1::2::3', normal: undefined },
  { text: 'fd00:10::1', normal: 'fd00:10::1' },
  { text: 'FD00:10::1', normal: 'fd00:10::1' },
  { text: 'fd00:0010::1', normal: 'fd00:10::1' },
  { text: 'fd00:10:0:0:0:0:0:1', normal: 'fd00:10::1' },
  { text: 'fd00:10::0:1', normal: 'fd00:10::1' },
  { text: 'fd00:0:0:1::1', normal: 'fd00:0:0:1::1' },
  { text: 'fd00::1:0:0:1', normal: 'fd00::1:0:0:1' },
  { text: 'fd00:0:0:1:0:0:0:1', normal: 'fd00:0:0:1::1' },
  { text: '1:0:2:3:4:5:6:7', normal: '1:0:2:3:4:5:6:7' },
  { text: '1::2:3:4:5:6:7', normal: '1:0:2:3:4:5:6:7' },
  { text: '1:2:3:4:5:6:7::', normal: '1:2:3:4:5:6:7:0' },
  { text: '1:2:3:4:5:6:7:8:9', normal: undefined },
  { text: '1:2:3:4:5:6:7:8::', normal: undefined },
  { text: 'fd00:10:0:12d2::2', normal: 'fd00:10:0:12d2::2' },
  { text: 'fd00:10:0:12d2::12345', normal: undefined },
  { text: '::ffff:10.0.0.1', normal: '10.0.0.1' },
  { text: '::ffff:a00:1', normal: '10.0.0.1' },
  { text: '::fffe:a00:1', normal: '::fffe:a00:1' },
  { text: '0:0:0:0:1:ffff:a00:1', normal: '::1:ffff:a00:1' },
  { text: '::a00:1', normal: '::a00:1' },
  { text: '64:ff9b::10.0.0.1', normal: '64:ff9b::a00:1' },
  { text: 'fe80::1%eth0', normal: 'fe80::1%eth0' },
  { text: 'fd00::g', normal: undefined },
  { text: '[fd00::1]', normal: undefined },
  { text: '', normal: undefined },
  { text: 'node-a', normal: undefined },
];
for (const c of listed) {
  test(`normalizeIP(${JSON.stringify(c.text)}) is ${JSON.stringify(c.normal)}, as the parser says`, () => {
    assert.equal(slowNormalizeIP(c.text), c.normal, 'the parser');
    checkAgainstSlowPath(c.text);
  });
}

/** An IPv6 address of 8 groups, most zero or small (so zero runs of every length and place occur). */
function drawGroups(next: () => number): number[] {
  const groups: number[] = [];
  for (let g = 0; g < 8; g++) {
    const pick = next() % 8;
    groups.push(pick < 4 ? 0 : pick < 6 ? next() % 16 : pick < 7 ? next() & 0xffff : 0xffff);
  }
  return groups;
}

/** The ways a person or a tool may write those groups: normal, expanded, padded, upper case, "::" anywhere it fits. */
function writings(groups: number[], next: () => number): string[] {
  const hex = groups.map((g) => g.toString(16));
  const out = [hex.join(':'), groups.map((g) => g.toString(16).padStart(4, '0')).join(':'), hex.join(':').toUpperCase()];
  // "::" in place of every run of zero groups, whole or in part.
  for (let start = 0; start < 8; start++) {
    for (let end = start + 1; end <= 8 && groups[end - 1] === 0; end++) {
      out.push(`${hex.slice(0, start).join(':')}::${hex.slice(end).join(':')}`);
    }
  }
  const normal = slowNormalizeIP(hex.join(':'))!;
  out.push(normal);
  // The normal text broken one character at a time: dropped, doubled, changed.
  const at = next() % normal.length;
  const alphabet = '0123456789abcdefABCDEF:.% g';
  out.push(normal.slice(0, at) + normal.slice(at + 1));
  out.push(normal.slice(0, at) + normal[at] + normal.slice(at));
  out.push(normal.slice(0, at) + alphabet[next() % alphabet.length] + normal.slice(at + 1));
  out.push(`${normal}%eth0`, `${normal}:`, `:${normal}`, `${normal}::`);
  return out;
}

test('isNormalIPv6 and the IPv4 fast path agree with the parser on 20,000 drawn addresses and their writings', () => {
  const next = seededUint32(12);
  let fast = 0;
  for (let k = 0; k < 20000; k++) {
    for (const text of writings(drawGroups(next), next)) {
      checkAgainstSlowPath(text);
      if (isNormalIPv6(text)) fast++;
    }
    const octets = [next() % 300, next() % 256, next() % 256, next() % 12];
    const v4 = octets.join('.');
    for (const text of [v4, octets.map((o) => String(o).padStart(3, '0')).join('.'), `::ffff:${v4}`, `::${v4}`, `${v4}.1`, v4.replace('.', '..')]) checkAgainstSlowPath(text);
  }
  assert.ok(fast > 20000, `only ${fast} texts took the IPv6 fast path`);
});
