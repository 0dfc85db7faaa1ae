/**
 * Real servers made when first read (PendingDests, real-servers.ts; DeferredDests, table.ts): a
 * virtual server holding them reads, copies, counts and lists exactly as one made with the same
 * dests as records, before and after they are made.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PendingDests } from '../../src/ipvs/real-servers.js';
import { type IpvsadmListOptions, formatIpvsadmList } from '../../src/ipvs/ipvsadm-format.js';
import { type RealServer, type VirtualServer, deferredDestsOf, destCount, realServer, virtualServer } from '../../src/ipvs/table.js';
import type { EndpointInfo } from '../../src/tracker/types.js';
import type { Family } from '../../src/util/ip.js';

/** Just what PendingDests reads of an endpoint. */
function endpoint(ip: string, port: number): EndpointInfo {
  return { ip, port, endpoint: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: new Set(), nodeHints: new Set() };
}

const CASES: { name: string; family: Family; address: string; endpoints: [string, number][] }[] = [
  { name: 'none', family: 4, address: '10.96.0.1', endpoints: [] },
  { name: 'one', family: 4, address: '10.96.0.1', endpoints: [['10.128.0.2', 80]] },
  { name: 'pod network, text order is not ipvsadm order', family: 4, address: '10.96.0.2', endpoints: [['10.128.0.10', 80], ['10.128.0.100', 80], ['10.128.0.9', 8080], ['10.128.0.9', 80], ['10.128.1.1', 443]] },
  { name: 'more than 2^31 apart (10.x beside 192.x)', family: 4, address: '10.96.0.3', endpoints: [['10.0.0.1', 80], ['192.168.0.1', 80], ['172.16.0.1', 80], ['10.0.0.2', 80]] },
  { name: 'names longer than the column', family: 4, address: '10.96.0.4', endpoints: [['255.255.255.255', 65535], ['1.2.3.4', 0]] },
  { name: 'IPv6', family: 6, address: 'fd00:96::1', endpoints: [['fd00:10::2', 80], ['fd00:10::10', 80], ['2001:db8:1234:5678:9abc:def0:1234:5678', 443], ['fd00:10::1', 80]] },
  { name: 'IPv6 words more than 2^31 apart, ties on the address', family: 6, address: 'fd00:96::2', endpoints: [['fd00::1', 80], ['::1', 443], ['2001:db8::', 80], ['fd00::1', 79], ['8000::', 80], ['::', 80], ['ffff::ffff', 8080], ['::1', 80]] },
  { name: 'IPv6 gaps at either end, capital hex', family: 6, address: 'fd00:96::3', endpoints: [['1::', 80], ['::FFFF:1', 80], ['1:2:3:4:5:6:7::', 80], ['::2:3:4:5:6:7:8', 80], ['1:2:3:4:5:6:7:8', 80], ['1:2:3::8', 80]] },
  { name: 'IPv6 with an IPv4 part (the full parser reads it)', family: 6, address: 'fd00:96::4', endpoints: [['::ffff:10.0.0.2', 80], ['fd00::1', 80], ['::ffff:10.0.0.1', 80]] },
  { name: 'IPv6, more than the insertion sort takes', family: 6, address: 'fd00:96::5', endpoints: Array.from({ length: 40 }, (_, i): [string, number] => [`fd00:10::${((i * 7919) % 97).toString(16)}`, 80 + (i % 3)]) },
  { name: 'IPv6 words more than 2^31 apart, more than the insertion sort takes', family: 6, address: 'fd00:96::6', endpoints: Array.from({ length: 40 }, (_, i): [string, number] => [`${i % 2 === 0 ? 'fd00' : '2001'}::${((i * 7919) % 13).toString(16)}`, 80 + (i % 3)]) },
  { name: 'more than 2^31 apart, ties on the address', family: 4, address: '10.96.0.5', endpoints: [['192.168.0.1', 80], ['10.0.0.1', 443], ['200.0.0.1', 80], ['10.0.0.1', 80], ['1.1.1.1', 80], ['192.168.0.1', 8]] },
];

const FORMATS: { name: string; opts: IpvsadmListOptions }[] = [
  { name: 'default', opts: {} },
  { name: '--nosort', opts: { nosort: true } },
  { name: '--stats', opts: { stats: true } },
  { name: '--thresholds', opts: { thresholds: true } },
];

/** The same virtual server with its dests pending, and with them made as records in list order (the last endpoint first). */
function pair(c: (typeof CASES)[number]): { pending: VirtualServer; plain: VirtualServer; dests: PendingDests } {
  const dests = new PendingDests(c.endpoints.map(([ip, port]) => endpoint(ip, port)), c.family);
  const spec = { protocol: 'TCP' as const, address: c.address, port: 80, family: c.family, scheduler: 'rr', origin: { spn: 'ns/svc:http', kind: 'ClusterIP' as const, endpointScope: 'cluster' as const } };
  const records: RealServer[] = c.endpoints.map(([ip, port]) => realServer({ ip, port, family: c.family })).reverse();
  return { pending: virtualServer({ ...spec, dests }), plain: virtualServer({ ...spec, dests: records }), dests };
}

for (const c of CASES) {
  test(`pending dests list as made ones: ${c.name}`, () => {
    const { pending, plain, dests } = pair(c);
    assert.equal(destCount(pending), c.endpoints.length);
    assert.equal(deferredDestsOf(pending), dests);
    for (const { name, opts } of FORMATS) {
      assert.equal(formatIpvsadmList({ services: [pending] }, opts), formatIpvsadmList({ services: [plain] }, opts), `${name}, before they are made`);
      // The default columns are printed from the endpoints; the others read the records.
      if (name === '--nosort') assert.equal(dests.isMade, false, 'listing in the default columns does not make them');
    }
    assert.deepStrictEqual(pending, plain, 'read, they are the records a plain virtual server holds');
    assert.equal(dests.isMade, true);
    const fresh = pair(c);
    assert.deepStrictEqual(fresh.pending.dests, fresh.plain.dests, 'made on first read');
    assert.equal(pending.dests, pending.dests, 'made once');
    assert.deepStrictEqual({ ...pending }, { ...plain }, 'spread copies the dests and no hidden field');
    assert.deepStrictEqual(JSON.parse(JSON.stringify(pending)), JSON.parse(JSON.stringify(plain)));
    for (const { name, opts } of FORMATS) {
      assert.equal(formatIpvsadmList({ services: [pending] }, opts), formatIpvsadmList({ services: [plain] }, opts), `${name}, after they are made`);
    }
  });
}

test('made pending dests are listed as they are now (a changed record shows), and a list assigned replaces them', () => {
  const { pending, plain, dests } = pair(CASES[2]!);
  pending.dests[0]!.activeConns = 3;
  plain.dests[0]!.activeConns = 3;
  assert.equal(formatIpvsadmList({ services: [pending] }), formatIpvsadmList({ services: [plain] }));
  const replaced = [realServer({ ip: '10.128.9.9', port: 80, family: 4 })];
  pending.dests = replaced;
  assert.equal(pending.dests, replaced);
  assert.equal(destCount(pending), 1);
  assert.equal(deferredDestsOf(pending), undefined, 'no longer the pending ones');
  assert.equal(dests.made().length, 5, 'the pending list itself is unchanged');
});
