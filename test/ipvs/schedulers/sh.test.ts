/**
 * sh and dh, checked against an independent reading of ip_vs_sh.c / ip_vs_dh.c: the bucket table
 * is filled here from the weights, and the bucket of an address is hash_32 computed with BigInt
 * (GOLDEN_RATIO_32 = 0x61C88647, top 8 bits of the 32-bit product).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addrOf, nameOf, rows, serviceWith } from './fixtures.js';

/** hash_32(v, 8), independently of the implementation's Math.imul. */
function bucketOf(value: number): number {
  return Number(((BigInt(value >>> 0) * 0x61c88647n) & 0xffffffffn) >> 24n);
}

function ipv4(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

/** Table fill: cycle through the list (front first), `weight` buckets each, weight 0 taking one. */
function table(listOrder: { name: string; weight: number }[]): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < 256; i = (i + 1) % listOrder.length) {
    const { name, weight } = listOrder[i]!;
    for (let n = 0; n < Math.max(weight, 1) && out.length < 256; n++) out.push(name);
  }
  return out;
}

test('sh: weights 1, 2 and 0 fill the table C B B A C B B A ... (weight 0 takes one bucket)', () => {
  const vs = serviceWith('sh', rows('A1 B2 C0'));
  const expected = table([{ name: 'C', weight: 0 }, { name: 'B', weight: 2 }, { name: 'A', weight: 1 }]);
  assert.deepEqual(expected.slice(0, 8), ['C', 'B', 'B', 'A', 'C', 'B', 'B', 'A']);
  let checked = 0;
  for (let host = 1; host <= 254; host++) {
    const client = `192.168.7.${host}`;
    const owner = expected[bucketOf(ipv4(client))]!;
    // C has weight 0: a client hashed to C gets no destination without sh-fallback.
    assert.equal(nameOf(vs.pick(`${client}:5000`)), owner === 'C' ? '-' : owner, client);
    checked++;
  }
  assert.equal(checked, 254);
});

test('sh: the source port is ignored without sh-port and hashed with it', () => {
  const plain = serviceWith('sh', rows('A1 B1 C1 D1'));
  const withPort = serviceWith('sh', rows('A1 B1 C1 D1'), { flags: ['sh-port'] });
  const expected = table([{ name: 'D', weight: 1 }, { name: 'C', weight: 1 }, { name: 'B', weight: 1 }, { name: 'A', weight: 1 }]);
  const client = ipv4('10.20.30.40');
  const seen = new Set<string>();
  for (let port = 40000; port < 40032; port++) {
    assert.equal(nameOf(plain.pick(`10.20.30.40:${port}`)), expected[bucketOf(client)], `port ${port} without sh-port`);
    const got = nameOf(withPort.pick(`10.20.30.40:${port}`));
    assert.equal(got, expected[bucketOf(client + port)], `port ${port} with sh-port`);
    seen.add(got);
  }
  assert.ok(seen.size > 1, 'with sh-port one client spreads over several dests');
});

test('sh-fallback: an unavailable bucket walks (offset + 2 * bucket) & 255 to the first available dest', () => {
  // A1 B1 C1 added: list C B A, table C B A C B A ...; B quiesced.
  const plain = serviceWith('sh', rows('A1 B1 C1'));
  const fallback = serviceWith('sh', rows('A1 B1 C1'), { flags: ['sh-fallback'] });
  plain.setWeight(addrOf('B'), 0);
  fallback.setWeight(addrOf('B'), 0);
  const expected = table([{ name: 'C', weight: 1 }, { name: 'B', weight: 0 }, { name: 'A', weight: 1 }]);
  let fellBack = 0;
  for (let host = 1; host <= 254; host++) {
    const client = `172.16.0.${host}`;
    const first = bucketOf(ipv4(client));
    if (expected[first] !== 'B') {
      assert.equal(nameOf(fallback.pick(`${client}:1`)), expected[first], client);
      continue;
    }
    let want = '-';
    for (let offset = 0; offset < 256; offset++) {
      const candidate = expected[(offset + 2 * first) & 255]!;
      if (candidate !== 'B') {
        want = candidate;
        break;
      }
    }
    assert.equal(nameOf(plain.pick(`${client}:1`)), '-', `${client} without fallback`);
    assert.equal(nameOf(fallback.pick(`${client}:1`)), want, `${client} with fallback`);
    fellBack++;
  }
  assert.ok(fellBack > 0, 'some clients hashed to the quiesced dest');
});

test('sh: the table is rebuilt when a dest is added, deleted or edited', () => {
  const vs = serviceWith('sh', rows('A1 B1'));
  const client = '10.9.8.7';
  const pickAfter = (listOrder: { name: string; weight: number }[]): string => table(listOrder)[bucketOf(ipv4(client))]!;
  assert.equal(nameOf(vs.pick(`${client}:1`)), pickAfter([{ name: 'B', weight: 1 }, { name: 'A', weight: 1 }]));
  vs.addDest({ addr: addrOf('C'), weight: 3 });
  assert.equal(nameOf(vs.pick(`${client}:1`)), pickAfter([{ name: 'C', weight: 3 }, { name: 'B', weight: 1 }, { name: 'A', weight: 1 }]));
  vs.setWeight(addrOf('A'), 2);
  assert.equal(nameOf(vs.pick(`${client}:1`)), pickAfter([{ name: 'C', weight: 3 }, { name: 'B', weight: 1 }, { name: 'A', weight: 2 }]));
  vs.removeDest(addrOf('C'));
  assert.equal(nameOf(vs.pick(`${client}:1`)), pickAfter([{ name: 'B', weight: 1 }, { name: 'A', weight: 2 }]));
});

test('sh: an empty service has no destination', () => {
  assert.equal(serviceWith('sh', []).pick('10.0.0.1:1'), undefined);
});

test('sh: an IPv6 client hashes the XOR of its four 32-bit words', () => {
  const vs = serviceWith('sh', []);
  vs.addDest({ addr: '[fd00::1]:80', weight: 1 });
  vs.addDest({ addr: '[fd00::2]:80', weight: 1 });
  // list [fd00::2], [fd00::1]: even buckets go to ::2, odd ones to ::1.
  // 2001:db8::1:2 -> words 0x20010db8, 0, 0, 0x00010002.
  const fold = (0x20010db8 ^ 0x00010002) >>> 0;
  const want = bucketOf(fold) % 2 === 0 ? '[fd00::2]:80' : '[fd00::1]:80';
  assert.equal(vs.pick('[2001:db8::1:2]:4000'), want);
});

test('dh: buckets take one dest each in list order, indexed by hash_32 of the service address', () => {
  for (const address of ['10.96.0.10:80', '10.96.0.11:80', '10.96.0.12:80', '10.96.7.1:443']) {
    const vs = serviceWith('dh', rows('A5 B1 C1'), { address });
    const listOrder = ['C', 'B', 'A'];
    const want = listOrder[bucketOf(ipv4(address.split(':')[0]!)) % 3];
    // Every client goes to the same dest: dh hashes the destination, not the source.
    for (const client of ['1.1.1.1:1', '2.2.2.2:2', '3.3.3.3:3']) assert.equal(nameOf(vs.pick(client)), want, `${address} from ${client}`);
  }
});

test('dh: the dest of the bucket quiesced means no destination (there is no fallback)', () => {
  const vs = serviceWith('dh', rows('A1 B1'), { address: '10.96.0.10:80' });
  const chosen = vs.pick('1.1.1.1:1')!;
  vs.setWeight(chosen, 0);
  assert.equal(vs.pick('1.1.1.1:1'), undefined);
});
