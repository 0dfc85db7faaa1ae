/**
 * What a backend pod answers to a datagram: a DNS query gets a TXT answer naming the pod (checked
 * field by field against RFC 1035's layout), anything else an echo with the identity after it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsQuestionEnd, dnsTxtStrings, identityTrailer, udpReply } from '../../src/proxy/udp-reply.js';

const identity = { pod: 'coredns-0', endpoint: '10.244.0.2:53' };

/** A DNS query: id, flags, one question for `name` of `qtype`. */
function query(name: string, qtype = 16, flags = 0x0100): Buffer {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Buffer.from([0xbe, 0xef, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, qtype >> 8, qtype & 0xff, 0, 1]);
}

test('a DNS query gets an authoritative TXT answer for its question, naming the pod', () => {
  const q = query('kube-dns.kube-system.svc.cluster.local');
  const reply = udpReply(q, identity);
  assert.equal(reply.readUInt16BE(0), 0xbeef, 'the id');
  assert.equal(reply.readUInt16BE(2), 0x8500, 'QR, AA, RD kept, NOERROR');
  assert.deepEqual([reply.readUInt16BE(4), reply.readUInt16BE(6), reply.readUInt16BE(8), reply.readUInt16BE(10)], [1, 1, 0, 0]);
  assert.deepEqual(reply.subarray(12, q.length), q.subarray(12), 'the question, as asked');
  assert.deepEqual(dnsTxtStrings(reply), ['pod=coredns-0', 'endpoint=10.244.0.2:53']);
});

const notQueries: { name: string; datagram: Buffer }[] = [
  { name: 'a DNS response', datagram: query('a.b', 16, 0x8100) },
  { name: 'another opcode (a NOTIFY)', datagram: query('a.b', 16, 0x2000) },
  { name: 'a truncated question', datagram: query('a.b').subarray(0, 16) },
  { name: 'a label longer than 63 bytes', datagram: query(`${'x'.repeat(64)}.b`) },
  { name: 'kpsim load\'s 8-byte request', datagram: Buffer.from([0x6b, 0x70, 0x73, 0x31, 0, 0, 0, 7]) },
  { name: 'text', datagram: Buffer.from('hello') },
];

for (const c of notQueries) {
  test(`not a DNS query, so echoed with the identity after it: ${c.name}`, () => {
    assert.equal(dnsQuestionEnd(c.datagram), undefined);
    const reply = udpReply(c.datagram, identity);
    assert.deepEqual(reply.subarray(0, c.datagram.length), c.datagram);
    assert.deepEqual(reply.subarray(c.datagram.length), identityTrailer(identity));
    assert.deepEqual(JSON.parse(reply.subarray(c.datagram.length + 1).toString()), identity);
  });
}
