/**
 * The kernel's conntrack table over time and kube-proxy's stale-UDP cleanup: entries keep their
 * DNAT whatever the rules do, time out by protocol and state unless traffic refreshes them, and
 * the cleanup deletes exactly the UDP entries whose endpoint no longer serves the service.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanStaleEntries } from '../../src/conntrack/cleanup.js';
import { ConntrackTable, DEFAULT_CONNTRACK_TIMEOUTS } from '../../src/conntrack/table.js';
import { ep, fixtureState, makeService, makeSlice } from '../helpers/cluster-builders.js';

const udp = (src: string) => ({ protocol: 'udp' as const, src, dst: '172.30.0.10:53' });
const tcp = (src: string) => ({ protocol: 'tcp' as const, src, dst: '172.30.0.10:53' });

test('entries time out by protocol and state unless traffic refreshes them', () => {
  const t = DEFAULT_CONNTRACK_TIMEOUTS;
  const cases: { name: string; run: (table: ConntrackTable) => number; aliveAt: number; goneAt: number }[] = [
    { name: 'UDP without a reply: 30 s', run: (table) => { table.create(udp('10.0.0.1:1000'), '10.1.0.1:53', 0); return 0; }, aliveAt: t.udp - 1, goneAt: t.udp },
    { name: 'UDP with a reply: 120 s from the last packet', run: (table) => { const e = table.create(udp('10.0.0.1:1000'), '10.1.0.1:53', 0); table.refresh(e, 10, true); return 10; }, aliveAt: 10 + t.udpStream - 1, goneAt: 10 + t.udpStream },
    { name: 'TCP established: kube-proxy\'s 24 h', run: (table) => { const e = table.create(tcp('10.0.0.1:1000'), '10.1.0.1:53', 0); table.refresh(e, 1, true); return 1; }, aliveAt: 1 + 86_400 - 1, goneAt: 1 + 86_400 },
    { name: 'TCP closed: TIME_WAIT 120 s', run: (table) => { const e = table.create(tcp('10.0.0.1:1000'), '10.1.0.1:53', 0); table.refresh(e, 1, true); table.close(e, 5); return 5; }, aliveAt: 5 + 119, goneAt: 5 + 120 },
  ];
  for (const c of cases) {
    const table = new ConntrackTable();
    c.run(table);
    const flow = c.name.startsWith('UDP') ? udp('10.0.0.1:1000') : tcp('10.0.0.1:1000');
    assert.ok(table.lookup(flow, c.aliveAt) !== undefined, `${c.name}: alive at ${c.aliveAt}`);
    assert.equal(table.lookup(flow, c.goneAt), undefined, `${c.name}: gone at ${c.goneAt}`);
  }
});

test('a UDP flow that keeps sending keeps its entry, and its DNAT, forever', () => {
  const table = new ConntrackTable();
  const entry = table.create(udp('10.0.0.1:1000'), '10.1.0.1:53', 0);
  for (let now = 1; now <= 3600; now += 10) {
    const found = table.lookup(udp('10.0.0.1:1000'), now);
    assert.equal(found?.dnat, '10.1.0.1:53', `at ${now} s`);
    table.refresh(entry, now, false);
  }
});

test('kube-proxy\'s cleanup deletes UDP entries whose endpoint no longer serves, and nothing else', () => {
  const state = fixtureState([
    makeService('ns1', 'dns', (s) => { s.spec.clusterIP = '172.30.0.10'; s.spec.ports = [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }]; s.spec.type = 'NodePort'; }),
    makeSlice('ns1', 'dns', 1, (s) => {
      s.ports = [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }];
      s.endpoints = [ep('10.1.0.1'), ep('10.1.0.3', undefined, { ready: false, serving: true, terminating: true })];
    }),
  ]);
  const table = new ConntrackTable();
  const cases: { name: string; flow: { protocol: 'udp' | 'tcp'; src: string; dst: string }; dnat: string | undefined; deleted: boolean }[] = [
    { name: 'UDP to a serving endpoint', flow: udp('10.0.0.1:1'), dnat: '10.1.0.1:53', deleted: false },
    { name: 'UDP to a terminating but serving endpoint', flow: udp('10.0.0.1:2'), dnat: '10.1.0.3:53', deleted: false },
    { name: 'UDP to a removed endpoint', flow: udp('10.0.0.1:3'), dnat: '10.1.0.2:53', deleted: true },
    { name: 'UDP to the ClusterIP without DNAT', flow: udp('10.0.0.1:4'), dnat: undefined, deleted: true },
    { name: 'UDP to the node port, removed endpoint', flow: { protocol: 'udp', src: '10.0.0.1:5', dst: '192.168.0.2:30053' }, dnat: '10.1.0.2:53', deleted: true },
    { name: 'TCP to a removed endpoint', flow: tcp('10.0.0.1:6'), dnat: '10.1.0.2:53', deleted: false },
    { name: 'UDP to another address', flow: { protocol: 'udp', src: '10.0.0.1:7', dst: '8.8.8.8:53' }, dnat: undefined, deleted: false },
  ];
  for (const c of cases) table.create(c.flow, c.dnat, 0);
  const { deleted } = cleanStaleEntries(table, state);
  for (const c of cases) assert.equal(table.lookup(c.flow, 1) === undefined, c.deleted, c.name);
  assert.equal(deleted, cases.filter((c) => c.deleted).length);
});
