/**
 * PlainPacket (plain-packet.ts), the side both tracers read for a kept walk's lookup without a
 * flow: which packets and options it takes, and that what it reads of an address from its
 * number alone (IPv4 in normal form) is what AddressFactsCache works out from the address's
 * text (type bit, locality), so that a lookup by the numbers asks the same class a walk would.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressCache, LocalAddresses } from '../../src/trace/addresses.js';
import { AddressFactsCache, v4Info, v4InfoAt } from '../../src/trace/address-facts.js';
import { PlainPacket, plainIPv4Into } from '../../src/trace/plain-packet.js';
import { plainIPv4Value } from '../../src/util/ip.js';
import type { Packet, RecentLookup, TraceOptions } from '../../src/trace/types.js';
import { slotKey } from '../../src/trace/walk-cache.js';

const NODE = ['192.168.0.10', 'fd00::10'];

interface Case {
  readonly name: string;
  readonly packet: Packet;
  readonly opts?: TraceOptions;
  /** Addresses interned before the packet is read. */
  readonly known?: readonly string[];
  readonly lookupAllowed?: boolean;
  /** undefined: not plain (read gives false). */
  readonly expect?: { readonly fromNode: boolean; readonly mark: number; readonly v4: boolean };
}

/** A caller's lists with nobody in them. */
const NO_LOOKUP: RecentLookup = { find: () => undefined, entries: () => [] };

const tcp = (src: string, dst: string, more: Partial<Packet> = {}): Packet => ({ proto: 'tcp', src, dst, dport: 80, ...more });

const CASES: readonly Case[] = [
  { name: 'IPv4, never seen', packet: tcp('10.244.1.7', '10.96.0.10'), expect: { fromNode: false, mark: 0, v4: true } },
  { name: 'IPv4 past 2^31, never seen', packet: tcp('203.0.113.7', '198.51.100.1'), expect: { fromNode: false, mark: 0, v4: true } },
  { name: "from the node's address", packet: tcp('192.168.0.10', '10.96.0.10'), expect: { fromNode: true, mark: 0, v4: true } },
  { name: 'from loopback (local type, the node)', packet: tcp('127.0.0.1', '10.96.0.10'), expect: { fromNode: true, mark: 0, v4: true } },
  { name: 'broadcast source', packet: tcp('255.255.255.255', '10.96.0.10'), expect: { fromNode: false, mark: 0, v4: true } },
  { name: 'multicast source, udp', packet: { proto: 'udp', src: '224.0.0.1', dst: '10.96.0.10', dport: 53 }, expect: { fromNode: false, mark: 0, v4: true } },
  { name: 'origin given', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { fromNode: true }, expect: { fromNode: true, mark: 0, v4: true } },
  { name: 'mark with the top bit (unsigned)', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { mark: 0xffff0000 }, expect: { fromNode: false, mark: 0xffff0000, v4: true } },
  { name: 'sctp and a source port', packet: { proto: 'sctp', src: '10.244.1.7', dst: '10.96.0.10', dport: 3868, sport: 40000 }, expect: { fromNode: false, mark: 0, v4: true } },
  { name: 'IPv6, both seen', packet: tcp('fd00::7', 'fd00:96::10'), known: ['fd00::7', 'fd00:96::10'], expect: { fromNode: false, mark: 0, v4: false } },
  { name: "IPv6 from the node's address, both seen", packet: tcp('fd00::10', 'fd00:96::10'), known: ['fd00::10', 'fd00:96::10'], expect: { fromNode: true, mark: 0, v4: false } },
  { name: 'IPv6, source never seen', packet: tcp('fd00::7', 'fd00:96::10'), known: ['fd00:96::10'] },
  { name: 'IPv4 to IPv6, both seen', packet: tcp('10.244.1.7', 'fd00:96::10'), known: ['10.244.1.7', 'fd00:96::10'] },
  { name: 'IPv4 not in normal form', packet: tcp('10.244.1.07', '10.96.0.10') },
  { name: 'icmp', packet: { proto: 'icmp', src: '10.244.1.7', dst: '10.96.0.10', dport: 80 } as unknown as Packet },
  { name: 'port 0', packet: tcp('10.244.1.7', '10.96.0.10', { dport: 0 }) },
  { name: 'source port out of range', packet: tcp('10.244.1.7', '10.96.0.10', { sport: 70000 }) },
  { name: 'recent lists given', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { recent: {} } },
  { name: 'conntrack state given', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { ctstate: ['NEW'] } },
  { name: 'input interface given', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { inInterface: 'eth0' } },
  { name: 'output interface given', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { outInterface: 'eth0' } },
  { name: 'semantics given', packet: tcp('10.244.1.7', '10.96.0.10'), opts: { semantics: 'kube-proxy-test' } },
  { name: "a caller's recent lookup", packet: tcp('10.244.1.7', '10.96.0.10'), opts: { recentLookup: NO_LOOKUP } },
  { name: "a caller's recent lookup, allowed", packet: tcp('10.244.1.7', '10.96.0.10'), opts: { recentLookup: NO_LOOKUP }, lookupAllowed: true, expect: { fromNode: false, mark: 0, v4: true } },
];

for (const c of CASES) {
  test(`PlainPacket reads ${c.name}`, () => {
    const local = new LocalAddresses(NODE);
    const facts = new AddressFactsCache(new AddressCache(), local, () => {});
    for (const address of c.known ?? []) facts.of(address);
    const plain = new PlainPacket(facts, local);
    const read = plain.read(c.packet, c.opts ?? {}, c.lookupAllowed ?? false);
    const evidence = `${JSON.stringify(c.packet)} ${JSON.stringify(c.opts ?? {})}`;
    assert.equal(read, c.expect !== undefined, `plain or not: ${evidence}`);
    if (c.expect === undefined) return;
    // What the facts of the same addresses say (the way of every packet).
    const src = facts.of(c.packet.src);
    const protoCode = { tcp: 6, udp: 17, sctp: 132 }[c.packet.proto as 'tcp' | 'udp' | 'sctp'];
    const got = { fromNode: plain.fromNode, key: plain.key, mark: plain.mark, src32: plain.src32, srcTypeBit: plain.srcTypeBit };
    const want = {
      fromNode: c.expect.fromNode, key: slotKey(protoCode, c.packet.dport, c.expect.fromNode), mark: c.expect.mark,
      src32: c.expect.v4 ? src.src32 >>> 0 : -1, srcTypeBit: src.typeBit,
    };
    assert.deepEqual(got, want, `read against the facts (${src.type}, local ${src.local}): ${evidence}`);
    assert.equal(c.expect.fromNode, c.opts?.fromNode ?? src.local, `origin as the facts say: ${evidence}`);
    assert.equal(plain.srcFacts(c.packet), src, `the source's facts: ${evidence}`);
    assert.equal(plain.dstFacts(c.packet), facts.of(c.packet.dst), `the destination's facts: ${evidence}`);
  });
}

/**
 * plainIPv4Into and v4InfoAt read what plainIPv4Value and v4Info read, the address kept as its
 * bits in an Int32 (so that a lookup makes no heap number for an address past 2^30).
 */
const ADDRESS_TEXTS: readonly string[] = [
  '0.0.0.0', '10.244.1.7', '63.255.255.255', '64.0.0.0', '127.0.0.1', '127.255.255.254', '128.0.0.0', '192.168.0.10',
  '203.0.113.7', '224.0.0.1', '239.255.255.255', '255.255.255.255', '255.255.255.254',
  // not in normal form, or not IPv4: both refuse them
  '10.244.1.07', '01.2.3.4', '256.0.0.1', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '', 'fd00::7', '1.2.3.4 ', '10.96.0.1x',
];

for (const text of ADDRESS_TEXTS) {
  test(`plainIPv4Into reads ${JSON.stringify(text)} as plainIPv4Value, and v4InfoAt as v4Info`, () => {
    const local = new LocalAddresses(NODE);
    const out = Int32Array.of(12345, 0);
    const want = plainIPv4Value(text);
    const read = plainIPv4Into(text, out, 1);
    assert.equal(read, want >= 0, `read or refused: plainIPv4Value says ${want}`);
    if (!read) {
      assert.deepEqual([...out], [12345, 0], 'nothing written when refused');
      return;
    }
    assert.equal(out[1]! >>> 0, want, `the bits of ${want}`);
    assert.equal(out[0], 12345, 'only out[at] written');
    assert.equal(v4InfoAt(local, out, 1), v4Info(local, want), `info of ${text} (node ${NODE.join(', ')})`);
  });
}
