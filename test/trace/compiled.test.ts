/**
 * The tracer over kpsim's own compiler output (src/iptables/compile.ts) for kube-proxy's test
 * fixture: the parser round-trips it, and packet flows give what the reference says
 * (kube-proxy-iptables.md §4-5), including the cases only the compiler writes here
 * (internalTrafficPolicy=Local, the localhost node port with its nfacct rule).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import type { Chain, Ruleset, Table, TableName } from '../../src/iptables/types.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Verdict } from '../../src/trace/types.js';
import { ep, fixtureState, makeService, makeSlice, overallServices, tcpPort, TEST_NODE_IP, TEST_NODE_IPS, TEST_NODE_NAME } from '../helpers/cluster-builders.js';

const overall = compileIptablesRules(fixtureState(overallServices()));

/** The ruleset as plain objects: the compiler's KUBE-SVC and KUBE-SEP chains make their rules when read (deferred-chains.ts). */
function plain(ruleset: Ruleset): Ruleset {
  const tables = new Map<TableName, Table>();
  for (const [name, table] of ruleset.tables) {
    const chains = new Map<string, Chain>();
    for (const [key, c] of table.chains) chains.set(key, c.policy === undefined ? { name: c.name, rules: c.rules } : { name: c.name, policy: c.policy, rules: c.rules });
    tables.set(name, { name: table.name, chains });
  }
  return { family: ruleset.family, tables };
}

test('parse(render(compiled)) is the compiled ruleset', () => {
  assert.deepEqual(parseIptablesSave(renderIptablesSave(overall), { family: overall.family }), plain(overall));
});

const itpLocal = compileIptablesRules(fixtureState([
  makeService('ns7', 'svc7', (s) => {
    s.spec.clusterIP = '172.30.0.47';
    s.spec.internalTrafficPolicy = 'Local';
    s.spec.ports = [tcpPort('p80', 80)];
  }),
  makeSlice('ns7', 'svc7', 1, (eps) => { eps.endpoints = [ep('10.180.0.7', 'other-node')]; eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }]; }),
  makeService('ns8', 'svc8', (s) => {
    s.spec.clusterIP = '172.30.0.48';
    s.spec.internalTrafficPolicy = 'Local';
    s.spec.ports = [tcpPort('p80', 80)];
  }),
  makeSlice('ns8', 'svc8', 1, (eps) => {
    eps.endpoints = [ep('10.180.0.8', TEST_NODE_NAME), ep('10.180.1.8', 'other-node')];
    eps.ports = [{ name: 'p80', port: 80, protocol: 'TCP' }];
  }),
]));

const cases: { name: string; rules: typeof overall; src: string; dst: string; dport: number; want: { verdict: Verdict; endpoints: string[]; masq: boolean } }[] = [
  { name: 'cluster IP from a pod', rules: overall, src: '10.0.0.2', dst: '172.30.0.41', dport: 80, want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80'], masq: false } },
  { name: 'no endpoints: REJECT', rules: overall, src: '10.0.0.2', dst: '172.30.0.46', dport: 80, want: { verdict: 'REJECT', endpoints: [], masq: false } },
  { name: 'node port on localhost (the nfacct rule)', rules: overall, src: '127.0.0.1', dst: '127.0.0.1', dport: 3003, want: { verdict: 'DNAT', endpoints: ['10.180.0.3:80'], masq: true } },
  { name: 'node port from outside', rules: overall, src: '203.0.113.2', dst: TEST_NODE_IP, dport: 3003, want: { verdict: 'DNAT', endpoints: ['10.180.0.3:80'], masq: true } },
  { name: 'eTP=Local without a local endpoint: DROP', rules: overall, src: '203.0.113.2', dst: '1.2.3.4', dport: 80, want: { verdict: 'DROP', endpoints: [], masq: false } },
  { name: 'LB source ranges: blocked client dropped', rules: overall, src: '203.0.113.130', dst: '5.6.7.8', dport: 80, want: { verdict: 'DROP', endpoints: [], masq: false } },
  { name: 'external IP with a local and a remote endpoint (eTP=Cluster)', rules: overall, src: '203.0.113.2', dst: '192.168.99.33', dport: 80, want: { verdict: 'DNAT', endpoints: ['10.180.0.4:80', '10.180.0.5:80'], masq: true } },
  { name: 'iTP=Local without a local endpoint: DROP ("has no local endpoints")', rules: itpLocal, src: '10.0.0.2', dst: '172.30.0.47', dport: 80, want: { verdict: 'DROP', endpoints: [], masq: false } },
  { name: 'iTP=Local: only the local endpoint', rules: itpLocal, src: '10.0.0.2', dst: '172.30.0.48', dport: 80, want: { verdict: 'DNAT', endpoints: ['10.180.0.8:80'], masq: false } },
];

for (const c of cases) {
  test(`compiled flow: ${c.name}`, () => {
    const r = createTracer(c.rules, { localAddresses: TEST_NODE_IPS }).trace({ proto: 'tcp', src: c.src, dst: c.dst, dport: c.dport });
    assert.deepEqual({ verdict: r.verdict, endpoints: r.endpoints, masq: r.masquerade }, c.want,
      r.hops.map((h) => `  ${h.table} ${h.rule}`).join('\n'));
  });
}
