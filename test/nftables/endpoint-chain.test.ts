/**
 * EndpointChain (src/nftables/endpoint-chain.ts): an endpoint- chain kept as what it is made of,
 * its name as its hash. Whatever reads it (its name, its rule objects, the rendered script, a
 * verdict map's text) must get what a chain named by endpointChainName, with its rules as
 * endpointRules makes them, gives.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { sha256AsciiPrefixOfBytes } from '../../src/iptables/sha256.js';
import { ChainMap } from '../../src/nftables/chain-map.js';
import { EndpointChain, endpointRules } from '../../src/nftables/endpoint-chain.js';
import {
  ENDPOINT_PREFIX, ENDPOINT_PREFIX_BYTES, endpointChainHash, endpointChainHashAfter, endpointChainName, endpointTextPrefix, endpointTextPrefixBytes, hashedName, hashedNameLength, hashedNameOfBytes, keptAsciiBytes,
  writeHashedName,
} from '../../src/nftables/names.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import { createTable } from '../../src/nftables/table-builder.js';
import type { NftChain, NftTable } from '../../src/nftables/types.js';
import { NumgenVmapRule } from '../../src/nftables/vmap-rule.js';
import type { EndpointInfo, ServicePortInfo, ServicePortName } from '../../src/tracker/types.js';

interface Case {
  readonly name: string;
  readonly spn: ServicePortName;
  readonly ipX: 'ip' | 'ip6';
  readonly ip: string;
  readonly endpoint: string;
  readonly affinity: boolean;
  /** Whether the name is written from its hash (else it is kept as made by endpointChainName). */
  readonly hashed: boolean;
}

const spn = (namespace: string, name: string, port: string, protocol: ServicePortName['protocol'] = 'TCP'): ServicePortName => ({ namespace, name, port, protocol });

const CASES: Case[] = [
  { name: 'IPv4', spn: spn('ns1', 'svc1', 'p80'), ipX: 'ip', ip: '10.180.0.1', endpoint: '10.180.0.1:80', affinity: false, hashed: true },
  { name: 'IPv4, ClientIP affinity', spn: spn('ns1', 'svc1', 'p80'), ipX: 'ip', ip: '10.180.0.2', endpoint: '10.180.0.2:8080', affinity: true, hashed: true },
  { name: 'IPv4, unnamed UDP port', spn: spn('kube-system', 'dns', '', 'UDP'), ipX: 'ip', ip: '10.180.3.4', endpoint: '10.180.3.4:53', affinity: false, hashed: true },
  { name: 'IPv6 in brackets', spn: spn('testing', 'service', 'http', 'SCTP'), ipX: 'ip6', ip: 'fd80:abcd:12::a1b2:c3d4:e5f6:9999', endpoint: '[fd80:abcd:12::a1b2:c3d4:e5f6:9999]:80', affinity: false, hashed: true },
  { name: 'IPv6, affinity', spn: spn('testing', 'service', 'http'), ipX: 'ip6', ip: 'fd00::5', endpoint: '[fd00::5]:5', affinity: true, hashed: true },
  { name: 'a name long enough to be cut', spn: spn('n'.repeat(63), 's'.repeat(63), 'p'.repeat(78)), ipX: 'ip', ip: '10.180.100.200', endpoint: '10.180.100.200:65535', affinity: true, hashed: false },
  { name: 'a namespace that is not ASCII', spn: spn('nämespace', 'svc', 'p'), ipX: 'ip', ip: '10.0.0.1', endpoint: '10.0.0.1:80', affinity: false, hashed: false },
  { name: 'an endpoint text that is not ASCII', spn: spn('ns', 'svc', 'p'), ipX: 'ip', ip: '10.0.0.1', endpoint: '10.0.0.1ä:80', affinity: true, hashed: false },
  // The address is read from the endpoint's text only where the text holds it as it is.
  { name: 'an address other than the text\'s host', spn: spn('ns', 'svc', 'p'), ipX: 'ip', ip: '10.0.0.7', endpoint: '10.0.0.70:80', affinity: true, hashed: true },
  { name: 'an IPv6 address other than the text\'s host', spn: spn('ns', 'svc', 'p'), ipX: 'ip6', ip: 'fd00::7', endpoint: '[fd00::0007]:80', affinity: false, hashed: true },
];

function infoOf(c: Case): { svc: ServicePortInfo; ep: EndpointInfo } {
  // Only what an endpoint chain reads of them.
  const svc = { svcPortName: c.spn, protocol: c.spn.protocol, sessionAffinityTimeoutSeconds: c.affinity ? 10800 : 0 } as unknown as ServicePortInfo;
  const ep = { ip: c.ip, endpoint: c.endpoint } as unknown as EndpointInfo;
  return { svc, ep };
}

/** A table of the chain (as a segment, as shared work appends it) and a service chain sending to it. */
function tableOf(chain: NftChain, target: string | NftChain): NftTable {
  const table = createTable('ip', 'kube-proxy');
  table.chains.set('service-X', { name: 'service-X', rules: [new NumgenVmapRule([target, 'endpoint-other'])] });
  (table.chains as ChainMap).appendSegment([chain]);
  return table;
}

for (const c of CASES) {
  test(`endpoint chain: ${c.name}`, () => {
    const { svc, ep } = infoOf(c);
    const want = endpointChainName(c.spn, c.endpoint);
    assert.equal(endpointChainHash(c.spn, c.endpoint) >= 0, c.hashed, `hash ${endpointChainHash(c.spn, c.endpoint)}`);

    // The script with the chain written from its hash, and with a plain chain of that name and its rules.
    const plain: NftChain = { name: want, rules: endpointRules(c.ipX, svc, ep) };
    const wantScript = renderNftScript({ tables: [tableOf(plain, want)], skipped: [] });
    const chain = new EndpointChain(undefined, c.ipX, svc, ep);
    const script = renderNftScript({ tables: [tableOf(chain, chain)], skipped: [] });
    assert.equal(script, wantScript);
    assert.equal(chain.name, want);
    // Once its name is made, and once its rule objects are, it writes the same.
    assert.equal(renderNftScript({ tables: [tableOf(chain, chain)], skipped: [] }), wantScript);
    assert.deepEqual(chain.rules, plain.rules);
    assert.equal(renderNftScript({ tables: [tableOf(chain, chain)], skipped: [] }), wantScript);
    const vmap = new NumgenVmapRule([chain, 'endpoint-other']);
    assert.equal(vmap.text, `numgen random mod 2 vmap { 0 : goto ${want} , 1 : goto endpoint-other }`);
    assert.deepEqual(vmap.targets, [want, 'endpoint-other']);
  });
}

test('writeHashedName writes endpointChainName, and hashedName makes it, from the hash', () => {
  for (const c of CASES.filter((x) => x.hashed)) {
    const hash = endpointChainHash(c.spn, c.endpoint);
    const [high, low] = [Math.floor(hash / 2 ** 20), hash % 2 ** 20];
    const portText = endpointTextPrefix(c.spn);
    const n = hashedNameLength(ENDPOINT_PREFIX, portText, c.endpoint);
    const bytes = new Uint8Array(n + 4).fill(33);
    assert.equal(writeHashedName(bytes, 2, ENDPOINT_PREFIX_BYTES, high, low, endpointTextPrefixBytes(c.spn), c.endpoint), n + 2, c.name);
    const want = endpointChainName(c.spn, c.endpoint);
    assert.equal(Buffer.from(bytes).toString('latin1'), `!!${want}!!`, c.name);
    assert.equal(hashedName(ENDPOINT_PREFIX, high, low, portText, c.endpoint), want, c.name);
    assert.equal(hashedNameOfBytes(ENDPOINT_PREFIX_BYTES, high, low, endpointTextPrefixBytes(c.spn), c.endpoint), want, c.name);
  }
});

test('endpointChainHashAfter of the port\'s text is endpointChainHash of the port', () => {
  for (const c of CASES) assert.equal(endpointChainHashAfter(endpointTextPrefix(c.spn), c.endpoint), endpointChainHash(c.spn, c.endpoint), c.name);
});

test('keptAsciiBytes: the text\'s bytes, each text its own bytes however many share a slab', () => {
  const texts = ['', 'a', 'ns1/svc1/tcp/p80__', ' , 7 : goto endpoint-', 'x'.repeat(4095), 'y'.repeat(4096), 'z'.repeat(4097), 'w'.repeat(70000)];
  const kept = texts.map((t) => keptAsciiBytes(t));
  texts.forEach((t, i) => assert.equal(Buffer.from(kept[i]!).toString('latin1'), t, `text ${i} (${t.length} characters)`));
  // Many more than one slab holds: none written over.
  const many = Array.from({ length: 5000 }, (_, i) => `ns/svc-${i}/tcp/p${i}__`);
  const bytes = many.map((t) => keptAsciiBytes(t));
  many.forEach((t, i) => assert.equal(Buffer.from(bytes[i]!).toString('latin1'), t));
  assert.throws(() => keptAsciiBytes('caf\u00e9'), /not ASCII/);
});

test('sha256AsciiPrefixOfBytes: SHA-256 of a string and then bytes, as node:crypto has it', () => {
  // Lengths around the one- and two-block boundaries (55/56 bytes, 64, 119/120).
  for (const [a, tail] of [['', ''], ['ns/svc/tcp/p__', '10.0.0.1/80'], ['x'.repeat(40), 'y'.repeat(15)], ['x'.repeat(40), 'y'.repeat(16)],
    ['x'.repeat(30), 'z'.repeat(34)], ['ab', 'c'.repeat(117)], ['ab', 'c'.repeat(118)], ['q'.repeat(200), 'r'.repeat(40)]] as const) {
    const out = new Uint8Array(10);
    assert.ok(sha256AsciiPrefixOfBytes(a, Buffer.from(tail + '!!!', 'latin1'), tail.length, out, 10), `${a.length}+${tail.length}`);
    const want = createHash('sha256').update(a + tail).digest().subarray(0, 10);
    assert.deepEqual([...out], [...want], `${a.length}+${tail.length}`);
  }
});
