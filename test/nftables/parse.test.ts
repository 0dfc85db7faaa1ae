/**
 * parseNftRuleset: kpsim's canonical output reads back to itself; a real node's dump, with
 * firewalld's, Docker's (iptables-nft) and a netdev table beside kube-proxy's, is kept whole,
 * traced through every table of the packet's family, and what kpsim does not evaluate is
 * listed in `skipped`; text that is not a ruleset fails with KPSIM_ERR_NFTABLES_PARSE naming
 * the line and column.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { renderNftCanonical } from '../../src/nftables/canonical.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import { fixtureState, overallServices, TEST_NODE_IPS } from '../helpers/cluster-builders.js';
import { FIXTURE_NODE_PORT_ADDRESSES, FIXTURE_SERVICE_CIDRS } from './fixtures.js';

function overallCompiled() {
  const state = fixtureState(overallServices(), { config: (c) => { c.nodePortAddresses = FIXTURE_NODE_PORT_ADDRESSES; } });
  return compileNftablesRules(state, { serviceCIDRs: FIXTURE_SERVICE_CIDRS });
}

test('kpsim\'s canonical output reads back to itself, with nothing skipped', () => {
  const canonical = renderNftCanonical(overallCompiled());
  const parsed = parseNftRuleset(canonical, { file: 'overall.nft' });
  assert.equal(renderNftCanonical(parsed), canonical);
  assert.deepEqual(parsed.skipped, []);
  const table = parsed.tables[0]!;
  assert.equal(table.sets.get('service-ips')!.elements.length, 9);
  assert.deepEqual(table.chains.get('filter-prerouting-pre-dnat')!.base, { type: 'filter', hook: 'prerouting', priority: -110, policy: 'accept' });
  assert.deepEqual(table.sets.get('no-endpoint-services')!.elements.find((e) => e.key[0] === '172.30.0.46'),
    { key: ['172.30.0.46', 'tcp', '80'], value: ['goto reject-chain'], comment: 'ns6/svc6:p80' });
});

/** A node as `nft -a list ruleset` might show it: kube-proxy's table among others'. */
function realNodeDump(): string {
  const kubeProxy = renderNftCanonical(overallCompiled())
    // A live node: handles printed, an affinity set with a client in it.
    .replace('table ip kube-proxy {', 'table ip kube-proxy { # handle 7')
    .replace(/(\tset affinity-GTK6MW7G[^\n]*\n(?:\t\t[^\n]*\n)*?\t\ttimeout 3h\n)/, '$1\t\telements = { 203.0.113.77 expires 2h59m58s980ms }\n');
  return `table inet firewalld { # handle 1
	flowtable fastpath { # handle 9
		hook ingress priority filter + 10
		devices = { eth0 }
	}

	counter dropped { # handle 10
		packets 3 bytes 180
	}

	set allowed-ssh { # handle 11
		type ipv4_addr
		flags interval
		auto-merge
		elements = { 10.0.0.0/8, 192.168.0.0/16 }
	}

	chain filter_INPUT { # handle 2
		type filter hook input priority filter + 10; policy accept;
		ct state { established, related } accept # handle 3
		ct status dnat accept # handle 4
		iifname "lo" accept # handle 5
		tcp dport 22 ip saddr @allowed-ssh accept # handle 6
		meta l4proto { tcp, udp } th dport 30000-32767 accept
		icmp type echo-request accept
		reject with icmpx admin-prohibited # handle 8
	}

	chain filter_FORWARD { # handle 12
		type filter hook forward priority filter + 10; policy accept;
		ct state { established, related } accept
		ct status dnat accept
		iifname "docker0" accept
		ip daddr 198.51.100.0/24 drop
	}
}
table ip nat { # handle 2
	chain PREROUTING { # handle 1
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter packets 12 bytes 720 jump DOCKER # handle 5
	}

	chain POSTROUTING { # handle 3
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.17.0.0/16 oifname != "docker0" counter packets 2 bytes 120 masquerade # handle 6
	}

	chain DOCKER { # handle 4
		iifname "docker0" counter packets 0 bytes 0 return
		meta l4proto tcp tcp dport 8080 counter packets 0 bytes 0 dnat to 172.17.0.2:80
		xt match "recent" counter packets 0 bytes 0 drop
	}
}
table netdev ingress-guard { # handle 5
	chain ingress { # handle 1
		type filter hook ingress device "eth0" priority -500; policy accept;
		ip saddr 0.0.0.0/8 drop
	}
}
${kubeProxy}`;
}

test('a real node\'s dump: every table kept, what is not evaluated listed', () => {
  const parsed = parseNftRuleset(realNodeDump(), { file: 'node.nft' });
  assert.deepEqual(parsed.tables.map((t) => `${t.family} ${t.name}`), ['inet firewalld', 'ip nat', 'netdev ingress-guard', 'ip kube-proxy']);
  assert.deepEqual(parsed.skipped.map((s) => `${s.table}${s.chain ? ` ${s.chain}` : ''}: ${s.what}`), [
    'inet firewalld: flowtable fastpath',
    'inet firewalld: counter dropped',
    'inet firewalld filter_INPUT: rule "icmp type echo-request accept"',
    'ip nat DOCKER: rule "xt match "recent" counter packets 0 bytes 0 drop"',
    'netdev ingress-guard: table netdev ingress-guard',
  ]);
  const firewalld = parsed.tables[0]!;
  assert.deepEqual(firewalld.sets.get('allowed-ssh')!.elements.map((e) => e.key[0]), ['10.0.0.0/8', '192.168.0.0/16']);
  assert.deepEqual(firewalld.chains.get('filter_INPUT')!.base, { type: 'filter', hook: 'input', priority: 10, policy: 'accept' });
  assert.equal(parsed.tables[2]!.chains.get('ingress')!.base?.device, 'eth0');
  const affinity = [...parsed.tables[3]!.sets.values()].find((s) => s.name.startsWith('affinity-'))!;
  assert.deepEqual(affinity.elements, [{ key: ['203.0.113.77'], expiresSeconds: 10798.98 }]);
  // Kept whole: the canonical render lists what was read (handles aside).
  const rendered = renderNftCanonical(parsed);
  assert.ok(rendered.includes('\tflowtable fastpath {\n\t\thook ingress priority filter + 10\n\t\tdevices = { eth0 }\n\t}\n'), rendered);
  assert.ok(rendered.includes('\t\txt match "recent" counter packets 0 bytes 0 drop\n'));
  assert.ok(renderNftScript(parsed).includes('add rule ip nat POSTROUTING ip saddr 172.17.0.0/16 oifname != "docker0" counter packets 2 bytes 120 masquerade'));
});

interface DumpFlow {
  readonly name: string;
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
  readonly inInterface?: string;
  readonly want: { verdict: string; endpoints: string[]; masquerade: boolean };
  /** A hop that must be there: table, chain, and the start of the rule. */
  readonly hop?: { table: string; chain: string; rule: string };
}

const DUMP_FLOWS: DumpFlow[] = [
  {
    name: 'kube-proxy\'s ClusterIP DNAT, firewalld lets the DNATed packet through',
    src: '10.0.0.2', dst: '172.30.0.41', dport: 80,
    want: { verdict: 'DNAT', endpoints: ['10.180.0.1:80'], masquerade: false },
    hop: { table: 'ip kube-proxy', chain: 'services', rule: 'ip daddr . meta l4proto . th dport vmap @service-ips' },
  },
  {
    name: 'a port nobody serves on the node: firewalld rejects it',
    src: '203.0.113.2', dst: '192.168.0.2', dport: 8443,
    want: { verdict: 'REJECT', endpoints: [], masquerade: false },
    hop: { table: 'inet firewalld', chain: 'filter_INPUT', rule: 'reject with icmpx admin-prohibited' },
  },
  {
    name: 'ssh from an allowed range: firewalld accepts (interval set lookup)',
    src: '10.1.2.3', dst: '192.168.0.2', dport: 22,
    want: { verdict: 'ACCEPT', endpoints: [], masquerade: false },
    hop: { table: 'inet firewalld', chain: 'filter_INPUT', rule: 'tcp dport 22 ip saddr @allowed-ssh accept' },
  },
  {
    name: 'Docker\'s published port: ip nat DNAT',
    src: '203.0.113.2', dst: '192.168.0.2', dport: 8080,
    want: { verdict: 'DNAT', endpoints: ['172.17.0.2:80'], masquerade: false },
    hop: { table: 'ip nat', chain: 'DOCKER', rule: 'meta l4proto tcp tcp dport 8080 counter packets 0 bytes 0 dnat to 172.17.0.2:80' },
  },
  {
    name: 'a container going out: Docker\'s masquerade, a verdict from another table than kube-proxy\'s',
    src: '172.17.0.5', dst: '198.51.100.7', dport: 443, inInterface: 'docker0',
    want: { verdict: 'ACCEPT', endpoints: [], masquerade: true },
    hop: { table: 'ip nat', chain: 'POSTROUTING', rule: 'ip saddr 172.17.0.0/16 oifname != "docker0"' },
  },
  {
    name: 'forwarded to a blocked network: firewalld drops it',
    src: '203.0.113.2', dst: '198.51.100.7', dport: 443,
    want: { verdict: 'DROP', endpoints: [], masquerade: false },
    hop: { table: 'inet firewalld', chain: 'filter_FORWARD', rule: 'ip daddr 198.51.100.0/24 drop' },
  },
  {
    name: 'a client in a live affinity set goes to its endpoint',
    src: '203.0.113.77', dst: '172.30.0.45', dport: 80,
    want: { verdict: 'DNAT', endpoints: ['10.180.0.3:80'], masquerade: true },
    hop: { table: 'ip kube-proxy', chain: 'service-HVFWP5L3-ns5/svc5/tcp/p80', rule: 'ip saddr @affinity-GTK6MW7G' },
  },
];

test('tracing a real node\'s dump: verdicts come from every table', async (t) => {
  const tracer = createNftTracer(parseNftRuleset(realNodeDump(), { file: 'node.nft' }), { localAddresses: TEST_NODE_IPS });
  for (const f of DUMP_FLOWS) {
    await t.test(f.name, () => {
      const r = tracer.trace({ proto: 'tcp', src: f.src, dst: f.dst, dport: f.dport }, f.inInterface ? { inInterface: f.inInterface } : {});
      const evidence = r.hops.map((h) => `  ${h.table} ${h.chain}: ${h.rule} -> ${h.target}${h.notes ? ` (${h.notes.join('; ')})` : ''}`).join('\n');
      assert.deepEqual({ verdict: r.verdict, endpoints: [...r.endpoints], masquerade: r.masquerade }, f.want, evidence);
      if (f.hop) assert.ok(r.hops.some((h) => h.table === f.hop!.table && h.chain === f.hop!.chain && h.rule.startsWith(f.hop!.rule)), `no hop ${JSON.stringify(f.hop)} in:\n${evidence}`);
    });
  }
});

test('a rule kpsim does not evaluate is taken as not matching, and the hop says so', () => {
  const tracer = createNftTracer(parseNftRuleset(realNodeDump()), { localAddresses: TEST_NODE_IPS });
  const r = tracer.trace({ proto: 'tcp', src: '203.0.113.2', dst: '192.168.0.2', dport: 8443 });
  const hop = r.hops.find((h) => h.rule === 'icmp type echo-request accept');
  assert.ok(hop, 'the skipped rule is a hop');
  assert.match(hop.notes![0]!, /not evaluated .*taken as not matching/);
});

interface BadDump {
  readonly name: string;
  readonly text: string;
  readonly path: string;
  readonly message: RegExp;
}

const BAD: BadDump[] = [
  { name: 'not a table', text: 'tabel ip x {\n}\n', path: 'line 1 column 1', message: /expected "table FAMILY NAME \{"/ },
  { name: 'unknown family', text: '\n\ntable ipx kube-proxy {\n}\n', path: 'line 3 column 7', message: /unknown table family "ipx"/ },
  { name: 'a missing closing brace', text: 'table ip t {\n\tchain c {\n\t\taccept\n', path: 'line 4 column 1', message: /ends inside chain c/ },
  {
    name: 'an unknown priority', text: 'table ip t {\n\tchain c {\n\t\ttype filter hook input priority important; policy accept;\n\t}\n}\n',
    path: 'line 3 column 35', message: /unknown chain priority "important"/,
  },
  { name: 'a set without a type', text: 'table ip t {\n\tset s {\n\t\tflags interval\n\t}\n}\n', path: 'line 2 column 2', message: /set s has no type/ },
  { name: 'a duration that is not one', text: 'table ip t {\n\tset s {\n\t\ttype ipv4_addr\n\t\ttimeout soon\n\t}\n}\n', path: 'line 4 column 11', message: /"soon" is not a duration/ },
  { name: 'a map element without a value', text: 'table ip t {\n\tmap m {\n\t\ttype inet_service : verdict\n\t\telements = { 80 }\n\t}\n}\n', path: 'line 4 column 3', message: /cannot read the element "80"/ },
  { name: 'text after the last table', text: 'table ip t {\n}\nflush ruleset\n', path: 'line 3 column 1', message: /found "flush ruleset"/ },
];

for (const c of BAD) {
  test(`bad input: ${c.name} → KPSIM_ERR_NFTABLES_PARSE at ${c.path}`, () => {
    assert.throws(() => parseNftRuleset(c.text, { file: 'node.nft' }), (e: unknown) => {
      assert.ok(e instanceof KpsimError, String(e));
      assert.equal(e.code, 'KPSIM_ERR_NFTABLES_PARSE');
      assert.equal(e.file, 'node.nft');
      assert.equal(e.path, c.path, e.message);
      assert.match(e.message, c.message);
      assert.ok(e.message.startsWith(`node.nft: ${c.path}: `), e.message);
      return true;
    });
  });
}
