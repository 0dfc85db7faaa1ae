/**
 * The ipvsadm -Ln listing is written as bytes (TextBuffer, src/iptables/save-text.ts), its dests ordered in
 * scratch arrays, and shared servers' lines copied from the listing that printed them first.
 * Each is checked here against the plain way: string concatenation, glibc's merge sort with
 * ipvsadm's comparator, and the listing of each virtual server on its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TextBuffer, giveBackTextBuffer, releaseTextBuffers, takeTextBuffer } from '../../src/iptables/save-text.js';
import { compareDests, compareServices, formatIpvsadmList, shareServerRendering, sortDests, sortLikeGlibc, sortServices } from '../../src/ipvs/ipvsadm-format.js';
import { type IpvsTable, type RealServer, type VirtualServer, SVC_F_PERSISTENT, realServer, virtualServer } from '../../src/ipvs/table.js';
import { seededRng } from '../../src/util/random.js';

type Op = { text: string } | { decimal: number } | { char: number } | { ascii: string } | { again: [number, number] };

const OPS_CASES: { name: string; capacity: number; ops: Op[] }[] = [
  { name: 'ASCII', capacity: 4, ops: [{ text: 'TCP  10.96.0.1:443 rr' }, { char: 10 }, { text: '' }] },
  { name: 'non-ASCII after ASCII', capacity: 2, ops: [{ text: 'pe caf\u00e9 ' }, { text: '\u65e5\u672c' }, { text: ' \ud83d\ude00 end' }] },
  { name: 'decimals', capacity: 1, ops: [{ decimal: 0 }, { char: 32 }, { decimal: 7 }, { decimal: 10 }, { decimal: 65535 }, { decimal: 2 ** 40 }, { decimal: -1 }, { decimal: 1.5 }] },
  { name: 'encoded ASCII', capacity: 3, ops: [{ ascii: ' Masq    1' }, { text: '!' }, { ascii: '' }, { ascii: '0123456789' }] },
  { name: 'grows past its capacity', capacity: 1, ops: [{ text: 'x'.repeat(100) }, { decimal: 2 ** 40 }, { ascii: ' Masq    1'.repeat(10) }, { text: '\u00e9'.repeat(50) }, { again: [3, 90] }] },
  { name: 'bytes written before, copied', capacity: 8, ops: [{ text: 'abc\u00e9def' }, { again: [1, 6] }, { again: [0, 0] }, { text: 'x' }] },
];

test('TextBuffer writes what string concatenation makes (text, codes, decimals, encoded bytes, runs copied)', () => {
  for (const { name, capacity, ops } of OPS_CASES) {
    // Into a fresh buffer, and into one written before and reset (holding older bytes).
    const out = new TextBuffer(capacity);
    if (capacity > 3) {
      out.write('\u00e9'.repeat(capacity + 40));
      out.reset(capacity);
    }
    let expected = '';
    for (const op of ops) {
      if ('text' in op) {
        out.write(op.text);
        expected += op.text;
      } else if ('decimal' in op) {
        out.writeDecimal(op.decimal);
        expected += String(op.decimal);
      } else if ('ascii' in op) {
        out.writeBytes(new TextEncoder().encode(op.ascii));
        expected += op.ascii;
      } else if ('char' in op) {
        out.writeCode(op.char);
        expected += String.fromCharCode(op.char);
      } else {
        // Copy bytes [start, end) of what is written so far, kept in a buffer of their own.
        const [start, end] = op.again;
        const from = new TextBuffer(out.length);
        from.append(out, 0, out.length);
        out.append(from, start, end);
        expected += new TextDecoder().decode(new TextEncoder().encode(expected).subarray(start, end));
      }
    }
    assert.equal(out.toString(), expected, `${name}: ${JSON.stringify(ops)}`);
    assert.equal(out.length, new TextEncoder().encode(expected).length, `${name}: byte length`);
  }
});

function dests(rng: () => number, n: number, base: number, span: number): RealServer[] {
  return Array.from({ length: n }, () => {
    const word = (base + Math.floor(rng() * span)) >>> 0;
    const ip = [word >>> 24, (word >>> 16) & 255, (word >>> 8) & 255, word & 255].join('.');
    return realServer({ ip, port: [80, 8080, 443][Math.floor(rng() * 3)]!, family: 4, weight: Math.floor(rng() * 3) });
  });
}

test('dests are ordered as glibc sorts them with ipvsadm\'s comparator', () => {
  const rng = seededRng(7);
  const POD_NET = 0x0a800000; // 10.128.0.0
  const cases = [
    ...[0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 100, 1000, 5000].map((n) => ({ name: `${n} pod addresses`, list: dests(rng, n, POD_NET, 1 << 16) })),
    // Few addresses for many dests: ties (same address and port) keep their order.
    { name: 'ties', list: dests(rng, 200, POD_NET, 4) },
    // 10.x beside 192.x: more than 2^31 apart, the merge sort of the wrapped comparison.
    { name: 'beyond half the range', list: [...dests(rng, 40, POD_NET, 256), ...dests(rng, 40, 0xc0a80000, 256)] },
  ];
  for (const { name, list } of cases) {
    const expected = sortLikeGlibc(list, compareDests);
    const got = sortDests(list);
    assert.equal(got.length, expected.length, name);
    got.forEach((d, i) => assert.equal(d, expected[i], `${name}: position ${i}: ${d.ip}:${d.port} w${d.weight}, want ${expected[i]!.ip}:${expected[i]!.port} w${expected[i]!.weight}`));
  }
});

function service(rng: () => number, i: number, list: RealServer[]): VirtualServer {
  const v6 = i % 7 === 3;
  return virtualServer({
    protocol: i % 5 === 0 ? 'UDP' : 'TCP',
    address: v6 ? `fd00:96::${(i + 1).toString(16)}` : i % 11 === 5 ? `192.168.0.${i % 250}` : `10.96.${i >> 8}.${i & 255}`,
    port: 80 + i,
    family: v6 ? 6 : 4,
    scheduler: 'rr',
    ...(i % 4 === 1 ? { flags: SVC_F_PERSISTENT, timeoutSeconds: 10800 } : {}),
    dests: v6
      ? list.slice(0, 3).map((d, k) => realServer({ ip: `fd00:10::${(k + 1).toString(16)}`, port: d.port, family: 6 }))
      : i % 9 === 2
        ? list.map((d) => realServer({ ip: d.ip, port: d.port, family: 4, activeConns: Math.floor(rng() * 3) }))
        : list,
  });
}

/** What the listing is made of: the header, then each virtual server's block as a listing of it alone gives it. */
function plainListing(table: IpvsTable, services: readonly VirtualServer[]): string {
  const header = formatIpvsadmList({ services: [] });
  const blocks = services.map((vs) => formatIpvsadmList({ services: [vs] }).slice(header.length));
  assert.equal(blocks.join('').length + header.length, formatIpvsadmList(table).length);
  return header + blocks.join('');
}

test('a listing is its servers\' blocks, and shared servers copied from an earlier listing print the same', () => {
  const rng = seededRng(3);
  const make = (n: number): VirtualServer[] => Array.from({ length: n }, (_, i) => service(rng, i, dests(rng, Math.floor(rng() * 40), 0x0a800000, 1 << 16)));
  const first = make(60);
  const second = [...first.slice(0, 30), ...make(20)];
  const firstTable = { services: first };
  const secondTable = { services: second };
  const expectedFirst = formatIpvsadmList(firstTable);
  const expectedSecond = formatIpvsadmList(secondTable);
  // The listing against its blocks, each printed alone, in ipvsadm's service order.
  assert.equal(expectedFirst, plainListing(firstTable, sortServices(first)), 'first listing: its blocks');
  assert.equal(expectedSecond, plainListing(secondTable, sortServices(second)), 'second listing: its blocks');
  for (const vs of [...first, ...second]) shareServerRendering(vs);
  for (const [name, table, expected] of [['first, printing shared servers', firstTable, expectedFirst], ['first again, copying', firstTable, expectedFirst], ['second, half copied', secondTable, expectedSecond], ['first once more: bytes kept where a listing printed them are not written over', firstTable, expectedFirst]] as const) {
    assert.equal(formatIpvsadmList(table), expected, name);
    assert.equal(formatIpvsadmList(table, { stats: true }).split('\n').length, expected.split('\n').length, `${name}: --stats lists as many lines`);
  }
});

test('a listing is written in a spare buffer and gives it back, shared servers printed for the first time too', async (t) => {
  const rng = seededRng(5);
  const make = (n: number): VirtualServer[] => Array.from({ length: n }, (_, i) => service(rng, i, dests(rng, 20 + Math.floor(rng() * 20), 0x0a800000, 1 << 16)));
  const cases: { name: string; services: VirtualServer[]; shared: boolean }[] = [
    { name: 'servers of this table only', services: make(40), shared: false },
    { name: 'shared servers, printed for the first time (their lines kept in the listing\'s text)', services: make(40), shared: true },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      if (c.shared) for (const vs of c.services) shareServerRendering(vs);
      releaseTextBuffers();
      const text = formatIpvsadmList({ services: c.services });
      const spare = takeTextBuffer(1);
      assert.ok(spare.capacity >= text.length, `the spare taken after a ${text.length}-byte listing has room for ${spare.capacity} bytes: the listing's buffer was not given back`);
      // Written over, the spare leaves the kept lines as they were: the next listing copies them.
      spare.write('x'.repeat(text.length));
      giveBackTextBuffer(spare);
      assert.equal(formatIpvsadmList({ services: c.services }), text, 'listed again');
      releaseTextBuffers();
    });
  }
});

test('a fresh Masq dest\'s line, written without making it, is ipvsadm\'s', () => {
  const columns = ` ${'Masq'.padEnd(7)} ${'1'.padEnd(6)} ${'0'.padEnd(10)} ${'0'.padEnd(10)}`;
  const cases: { ip: string; port: number; family: 4 | 6; name: string }[] = [
    { ip: '10.128.0.2', port: 80, family: 4, name: '10.128.0.2:80' },
    { ip: '255.255.255.255', port: 65535, family: 4, name: '255.255.255.255:65535' },
    { ip: '1.2.3.4', port: 0, family: 4, name: '1.2.3.4:0' },
    { ip: 'fd00:10::1', port: 8080, family: 6, name: '[fd00:10::1]:8080' },
    { ip: '2001:db8:1234:5678:9abc:def0:1234:5678', port: 443, family: 6, name: '[2001:db8:1234:5678:9abc:def0:1234:5678]:443' },
  ];
  for (const { ip, port, family, name } of cases) {
    const vs = virtualServer({ protocol: 'TCP', address: family === 4 ? '10.96.0.1' : 'fd00:96::1', port: 80, family, scheduler: 'rr', dests: [realServer({ ip, port, family })] });
    const lines = formatIpvsadmList({ services: [vs] }).split('\n');
    assert.equal(lines[4], `  -> ${name.padEnd(28)}${columns}`, `${ip} port ${port}`);
  }
});

test('services are ordered as glibc sorts them with ipvsadm\'s comparator', () => {
  const rng = seededRng(11);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
  const randomService = (kind: string): VirtualServer => {
    const v6 = kind === 'mixed' ? rng() < 0.2 : false;
    const fwmark = kind === 'fwmark' ? pick([0, 0, 7, 2 ** 31 + 5, 2 ** 32 - 1]) : 0;
    const address = v6
      ? `${pick(['fd00', '2001:db8', 'fe80'])}::${Math.floor(rng() * 65536).toString(16)}`
      : kind === 'pod-net'
        ? `10.96.${Math.floor(rng() * 256)}.${Math.floor(rng() * 256)}`
        : `${pick([10, 172, 192, 203, 100])}.${Math.floor(rng() * 256)}.${Math.floor(rng() * 4)}.${Math.floor(rng() * 256)}`;
    return virtualServer({ protocol: pick(['TCP', 'UDP', 'SCTP'] as const), address, port: pick([53, 80, 443, 30000 + Math.floor(rng() * 10)]), family: v6 ? 6 : 4, fwmark });
  };
  for (const kind of ['pod-net', 'far-apart', 'mixed', 'fwmark']) {
    for (const n of [0, 1, 2, 3, 17, 100, 2000]) {
      const services = Array.from({ length: n }, () => randomService(kind));
      const expected = sortLikeGlibc(services, compareServices);
      const got = sortServices(services);
      got.forEach((vs, i) => assert.equal(vs, expected[i], `${kind}, ${n} services: position ${i}: ${vs.protocol} ${vs.address}:${vs.port} fwmark ${vs.fwmark}, want ${expected[i]!.address}:${expected[i]!.port}`));
      assert.equal(got.length, n, `${kind}, ${n} services`);
    }
  }
});

/** Service lines written in pieces (no fwmark, persistence or flags) and the ones still made as strings, with the line ipvsadm prints. */
const SERVICE_LINE_CASES: { name: string; vs: VirtualServer; line: string }[] = [
  { name: 'TCP IPv4', vs: virtualServer({ protocol: 'TCP', address: '10.96.0.1', port: 443, scheduler: 'rr' }), line: 'TCP  10.96.0.1:443 rr' },
  { name: 'UDP port 0', vs: virtualServer({ protocol: 'UDP', address: '10.96.0.10', port: 0, scheduler: 'rr' }), line: 'UDP  10.96.0.10:0 rr' },
  { name: 'SCTP IPv6', vs: virtualServer({ protocol: 'SCTP', address: 'fd00:10:96::abcd:1234:5678:9abc', port: 65535, scheduler: 'lc' }), line: 'SCTP [fd00:10:96::abcd:1234:5678:9abc]:65535 lc' },
  { name: 'IPv4 name of exactly 33', vs: virtualServer({ protocol: 'TCP', address: '100.100.100.100', port: 123456789012, scheduler: 'rr' }), line: 'TCP  100.100.100.100:123456789012 rr' },
  { name: 'IPv4 name cut at 33', vs: virtualServer({ protocol: 'SCTP', address: '100.100.100.100', port: 1234567890123, scheduler: 'rr' }), line: 'SCTP 100.100.100.100:123456789012 rr' },
  { name: 'persistent', vs: virtualServer({ protocol: 'TCP', address: '10.96.0.2', port: 80, scheduler: 'rr', flags: SVC_F_PERSISTENT, timeoutSeconds: 10800 }), line: 'TCP  10.96.0.2:80 rr persistent 10800' },
  { name: 'mh-port', vs: virtualServer({ protocol: 'TCP', address: '10.96.0.3', port: 80, scheduler: 'mh', flags: 0x10 }), line: 'TCP  10.96.0.3:80 mh (mh-port)' },
  { name: 'fwmark', vs: virtualServer({ protocol: 'TCP', address: '0.0.0.0', port: 0, fwmark: 7, scheduler: 'rr' }), line: 'FWM  7 rr' },
];

test('ipvsadm -Ln service lines, written in pieces or made as strings, are the ones ipvsadm prints', () => {
  for (const { name, vs, line } of SERVICE_LINE_CASES) {
    const listing = formatIpvsadmList({ services: [vs] });
    const printed = listing.split('\n')[3];
    assert.equal(printed, line, `${name}: listing was ${JSON.stringify(listing)}`);
  }
});
