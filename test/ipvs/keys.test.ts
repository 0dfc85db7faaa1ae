/**
 * The texts kube-proxy keys IPVS state by: a virtual server's VirtualServer.String() and an
 * ipset hash:ip,port entry's Entry.String(), whatever the family, port or protocol.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipPortEntry } from '../../src/ipvs/ipsets.js';
import { type IpvsProtocol, virtualServerKey } from '../../src/ipvs/table.js';

const SERVERS: { address: string; port: number; protocol: IpvsProtocol; key: string }[] = [
  { address: '10.96.0.10', port: 53, protocol: 'UDP', key: '10.96.0.10:53/UDP' },
  { address: '10.96.0.1', port: 443, protocol: 'TCP', key: '10.96.0.1:443/TCP' },
  { address: '192.168.255.255', port: 65535, protocol: 'SCTP', key: '192.168.255.255:65535/SCTP' },
  { address: 'fd00:96::a', port: 0, protocol: 'TCP', key: '[fd00:96::a]:0/TCP' },
  { address: '::', port: 8080, protocol: 'UDP', key: '[::]:8080/UDP' },
];

for (const s of SERVERS) {
  test(`virtualServerKey: ${s.key}`, () => {
    assert.equal(virtualServerKey(s), s.key);
    // One after another: the parts of the one before leave nothing behind.
    for (const t of SERVERS) assert.equal(virtualServerKey(t), t.key);
  });
}

const ENTRIES: { ip: string; protocol: 'tcp' | 'udp' | 'sctp'; port: number; entry: string }[] = [
  { ip: '10.96.0.1', protocol: 'tcp', port: 443, entry: '10.96.0.1,tcp:443' },
  { ip: '203.0.113.7', protocol: 'udp', port: 53, entry: '203.0.113.7,udp:53' },
  { ip: 'fd00:96::1', protocol: 'sctp', port: 0, entry: 'fd00:96::1,sctp:0' },
];

for (const e of ENTRIES) {
  test(`ipPortEntry: ${e.entry}`, () => {
    assert.equal(ipPortEntry(e.ip, e.protocol, e.port), e.entry);
  });
}
