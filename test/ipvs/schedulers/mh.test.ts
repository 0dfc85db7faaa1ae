/**
 * mh (Maglev) against an independent implementation of the reference algorithm: hsiphash is
 * re-implemented here with BigInt (SipHash-1-3 on a 64-bit state, as lib/siphash.c does on 64-bit
 * kernels) and checked against the kernel's own hsiphash test vectors (lib/siphash_kunit.c, the
 * BITS_PER_LONG == 64 set: key 00 01 .. 0f, message bytes 00 01 .. n-1); the lookup table is then
 * populated here from the description in reference/ipvs.md §3 and every pick compared with it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hsiphashKey, hsiphashU32 } from '../../../src/ipvs/schedulers/hash.js';
import { MH_KEY1, MH_KEY2 } from '../../../src/ipvs/schedulers/mh.js';
import { seededRng } from '../../../src/util/random.js';
import { addrOf, nameOf, serviceWith, type DestRow } from './fixtures.js';

const MASK64 = (1n << 64n) - 1n;
const rotl = (x: bigint, bits: bigint): bigint => ((x << bits) | (x >> (64n - bits))) & MASK64;

function hsiphashBig(bytes: readonly number[], k0: bigint, k1: bigint): number {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = (): void => {
    v0 = (v0 + v1) & MASK64; v1 = rotl(v1, 13n); v1 ^= v0; v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & MASK64; v3 = rotl(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & MASK64; v3 = rotl(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & MASK64; v1 = rotl(v1, 17n); v1 ^= v2; v2 = rotl(v2, 32n);
  };
  const full = bytes.length - (bytes.length % 8);
  for (let i = 0; i < full; i += 8) {
    let m = 0n;
    for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(bytes[i + j]!);
    v3 ^= m; round(); v0 ^= m;
  }
  let b = BigInt(bytes.length) << 56n;
  for (let j = 0; j < bytes.length % 8; j++) b |= BigInt(bytes[full + j]!) << BigInt(8 * j);
  v3 ^= b; round(); v0 ^= b;
  v2 ^= 0xffn; round(); round(); round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}

/** lib/siphash_kunit.c test_vectors_hsiphash (64-bit), the first 16. */
const KERNEL_VECTORS = [
  0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
  0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
];
const TEST_K0 = 0x0706050403020100n;
const TEST_K1 = 0x0f0e0d0c0b0a0908n;

test('the BigInt hsiphash used as the oracle reproduces the kernel test vectors', () => {
  KERNEL_VECTORS.forEach((want, len) => {
    const bytes = Array.from({ length: len }, (_, i) => i);
    assert.equal(hsiphashBig(bytes, TEST_K0, TEST_K1), want, `length ${len}`);
  });
});

test('hsiphashU32 equals the kernel vector for 4 bytes and the oracle for random words and keys', () => {
  // The test key does not fit below 2^53, so it is given as halves.
  const key = { k0hi: 0x07060504, k0lo: 0x03020100, k1hi: 0x0f0e0d0c, k1lo: 0x0b0a0908 };
  assert.equal(hsiphashU32(0x03020100, key), KERNEL_VECTORS[4]);
  const rng = seededRng(5);
  for (let i = 0; i < 500; i++) {
    const value = Math.floor(rng() * 2 ** 32);
    const k0 = BigInt(Math.floor(rng() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(rng() * 2 ** 32));
    const k1 = BigInt(Math.floor(rng() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(rng() * 2 ** 32));
    const bytes = [value & 255, (value >>> 8) & 255, (value >>> 16) & 255, value >>> 24];
    const halves = { k0hi: Number(k0 >> 32n), k0lo: Number(k0 & 0xffffffffn), k1hi: Number(k1 >> 32n), k1lo: Number(k1 & 0xffffffffn) };
    assert.equal(hsiphashU32(value, halves), hsiphashBig(bytes, k0, k1), `value ${value}`);
  }
});

// ---- an independent Maglev table, from the reference's description ----

const M = 4093;
const K1 = 2654435761n;
const K2 = 2654446892n;

function h(value: number, key: bigint): number {
  const v = value >>> 0;
  return hsiphashBig([v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24], key, key);
}

function ipv4(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

interface Row {
  readonly addr: string;
  /** The latest non-zero weight (0 if it was added with 0). */
  readonly lastWeight: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** rows in list order (front first). */
function maglevTable(listOrder: readonly Row[]): (string | undefined)[] {
  const positive = listOrder.map((r) => r.lastWeight).filter((w) => w > 0);
  const lookup = new Array<string | undefined>(M).fill(undefined);
  if (positive.length === 0) return lookup;
  const g = positive.reduce(gcd);
  const largest = Math.max(...positive) / g;
  const shift = Math.max(0, largest.toString(2).length - 6);
  const perms = listOrder.map((r) => {
    const [ip, port] = r.addr.split(':') as [string, string];
    const v = Number(port) + ipv4(ip);
    const turns = Math.floor(r.lastWeight / g / 2 ** shift) || (r.lastWeight > 0 ? 1 : 0);
    return { addr: r.addr, next: h(v, K1) % M, skip: (h(v, K2) % (M - 1)) + 1, turns };
  });
  let filled = 0;
  while (filled < M) {
    for (const p of perms) {
      for (let t = 0; t < p.turns && filled < M; t++) {
        while (lookup[p.next] !== undefined) p.next = (p.next + p.skip) % M;
        lookup[p.next] = p.addr;
        filled++;
      }
      if (filled === M) break;
    }
  }
  return lookup;
}

function clientsOf(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `100.64.${i >> 8}.${i & 255}`);
}

const dests = (spec: [string, number][]): DestRow[] => spec.map(([name, weight]) => ({ name, weight }));

for (const { name, adds } of [
  { name: 'three equal dests', adds: dests([['A', 1], ['B', 1], ['C', 1]]) },
  { name: 'weights 1, 2 and 3 give 1, 2 and 3 turns', adds: dests([['A', 1], ['B', 2], ['C', 3]]) },
  { name: 'large weights are shifted into 6 bits (1000 and 10)', adds: dests([['A', 1000], ['B', 10], ['C', 1]]) },
]) {
  test(`mh: ${name}: every pick is the independent table's slot`, () => {
    const vs = serviceWith('mh', adds);
    const listOrder = [...adds].reverse().map((r) => ({ addr: addrOf(r.name), lastWeight: r.weight }));
    const lookup = maglevTable(listOrder);
    for (const client of clientsOf(600)) {
      assert.equal(vs.pick(`${client}:7000`), lookup[h(ipv4(client), K1) % M], client);
    }
  });
}

test('mh-port: the source port is added to the hashed value', () => {
  const adds = dests([['A', 1], ['B', 1], ['C', 1], ['D', 1]]);
  const vs = serviceWith('mh', adds, { flags: ['mh-port'] });
  const lookup = maglevTable([...adds].reverse().map((r) => ({ addr: addrOf(r.name), lastWeight: r.weight })));
  for (let port = 1000; port < 1300; port++) {
    assert.equal(vs.pick(`100.64.1.1:${port}`), lookup[h(ipv4('100.64.1.1') + port, K1) % M], `port ${port}`);
  }
});

test('mh: a dest edited to weight 0 keeps its slots (lookups there fail) and mh-fallback rehashes', () => {
  const adds = dests([['A', 1], ['B', 1], ['C', 1]]);
  const plain = serviceWith('mh', adds);
  const fallback = serviceWith('mh', adds, { flags: ['mh-fallback'] });
  for (const vs of [plain, fallback]) vs.setWeight(addrOf('B'), 0);
  const lookup = maglevTable([...adds].reverse().map((r) => ({ addr: addrOf(r.name), lastWeight: r.weight })));
  let landedOnB = 0;
  for (const client of clientsOf(600)) {
    const slot = h(ipv4(client), K1) % M;
    if (lookup[slot] !== addrOf('B')) {
      assert.equal(plain.pick(`${client}:1`), lookup[slot], client);
      continue;
    }
    landedOnB++;
    assert.equal(plain.pick(`${client}:1`), undefined, `${client} without fallback`);
    let want: string | undefined;
    for (let offset = 0; offset < M; offset++) {
      const candidate = lookup[h(((offset + slot) % M) + ipv4(client), K1) % M];
      if (candidate !== addrOf('B')) {
        want = candidate;
        break;
      }
    }
    assert.equal(fallback.pick(`${client}:1`), want, `${client} with fallback`);
  }
  assert.ok(landedOnB > 100, `about a third of the clients land on B (${landedOnB})`);
});

test('mh: a dest added with weight 0 gets no slots', () => {
  const vs = serviceWith('mh', dests([['A', 1], ['B', 0], ['C', 1]]));
  const lookup = maglevTable([
    { addr: addrOf('C'), lastWeight: 1 }, { addr: addrOf('B'), lastWeight: 0 }, { addr: addrOf('A'), lastWeight: 1 },
  ]);
  assert.ok(!lookup.includes(addrOf('B')));
  for (const client of clientsOf(300)) assert.equal(vs.pick(`${client}:1`), lookup[h(ipv4(client), K1) % M], client);
});

test('mh: the fixed keys are the kernel\'s (2654435761 and 2654446892 in both halves)', () => {
  assert.deepEqual(MH_KEY1, hsiphashKey(2654435761, 2654435761));
  assert.deepEqual(MH_KEY2, { k0hi: 0, k0lo: 2654446892, k1hi: 0, k1lo: 2654446892 });
});

test('mh: after a delete the table is repopulated from the remaining dests; most clients stay', () => {
  const vs = serviceWith('mh', dests([['A', 1], ['B', 1], ['C', 1], ['D', 1]]));
  const before = new Map(clientsOf(500).map((c) => [c, vs.pick(`${c}:1`)]));
  vs.removeDest(addrOf('C'));
  const lookup = maglevTable(['D', 'B', 'A'].map((name) => ({ addr: addrOf(name), lastWeight: 1 })));
  let stayed = 0;
  let others = 0;
  for (const [client, was] of before) {
    const now = vs.pick(`${client}:1`);
    assert.equal(now, lookup[h(ipv4(client), K1) % M], client);
    if (was !== addrOf('C')) {
      others++;
      if (now === was) stayed++;
    }
  }
  // Maglev's point: the clients that were not on C mostly keep their dest.
  assert.ok(stayed > others / 2, `${stayed} of ${others} stayed`);
  assert.notEqual(nameOf(vs.pick()), 'C');
});
