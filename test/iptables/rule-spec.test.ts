/**
 * Reading a rule's tokens into a typed spec: generic matches, the modules kube-proxy uses, the
 * implicit protocol match, negation, targets, and what is reported as a problem or a note.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readRuleSpec, type MatchSpec, type RuleSpec } from '../../src/iptables/rule-spec.js';
import { tokenizeLine } from '../../src/iptables/tokenize.js';

function spec(line: string, family: 4 | 6 = 4): RuleSpec {
  const tokens = tokenizeLine(line);
  if (!tokens.ok) throw new Error(tokens.detail);
  return readRuleSpec(tokens.tokens, family);
}

/** The fields of a match that the cases compare (module-specific parts, no bookkeeping). */
function core(match: MatchSpec): Record<string, unknown> {
  const { notes: _n, other: _o, implicit: _i, ...rest } = match;
  return rest;
}

const matchCases: { name: string; line: string; family?: 4 | 6; want: Record<string, unknown>[] }[] = [
  {
    name: 'comment',
    line: '-m comment --comment "ns1/svc1:p80 cluster IP"',
    want: [{ kind: 'comment', module: 'comment', comment: 'ns1/svc1:p80 cluster IP' }],
  },
  {
    name: 'tcp ports: single, range, open ends, negation',
    line: '-p tcp -m tcp --dport 80 ! --sport 1000:2000',
    want: [{ kind: 'ports', module: 'tcp', dport: { negated: false, range: { min: 80, max: 80 } }, sport: { negated: true, range: { min: 1000, max: 2000 } } }],
  },
  {
    name: 'udp port range with an open end',
    line: '-p udp -m udp --dport 30000:',
    want: [{ kind: 'ports', module: 'udp', dport: { negated: false, range: { min: 30000, max: 65535 } } }],
  },
  {
    name: 'long option names fold to the short ones',
    line: '-p sctp -m sctp --destination-port :80',
    want: [{ kind: 'ports', module: 'sctp', dport: { negated: false, range: { min: 0, max: 80 } } }],
  },
  {
    name: '--syn is --tcp-flags FIN,SYN,RST,ACK SYN',
    line: '-p tcp -m tcp --syn',
    want: [{ kind: 'ports', module: 'tcp', tcpFlags: { negated: false, mask: ['FIN', 'SYN', 'RST', 'ACK'], comp: ['SYN'] } }],
  },
  {
    name: 'multiport',
    line: '-p tcp -m multiport ! --dports 80,443,8000:8080',
    want: [{ kind: 'multiport', module: 'multiport', negated: true, direction: 'destination', ports: [{ min: 80, max: 80 }, { min: 443, max: 443 }, { min: 8000, max: 8080 }] }],
  },
  {
    name: 'addrtype with negation, types in the kernel\'s order',
    line: '-m addrtype ! --src-type LOCAL --dst-type local,UNICAST',
    want: [{ kind: 'addrtype', module: 'addrtype', srcType: { negated: true, types: ['LOCAL'] }, dstType: { negated: false, types: ['UNICAST', 'LOCAL'] }, limitIfaceIn: false, limitIfaceOut: false }],
  },
  {
    name: 'mark with a mask, negated',
    line: '-m mark ! --mark 0x4000/0x4000',
    want: [{ kind: 'mark', module: 'mark', negated: true, value: 0x4000, mask: 0x4000 }],
  },
  {
    name: 'mark without a mask is all ones; decimal is read too',
    line: '-m mark --mark 16384',
    want: [{ kind: 'mark', module: 'mark', negated: false, value: 0x4000, mask: 0xffffffff }],
  },
  {
    name: 'conntrack states in the kernel\'s order',
    line: '-m conntrack ! --ctstate DNAT,RELATED,ESTABLISHED',
    want: [{ kind: 'conntrack', module: 'conntrack', ctstate: { negated: true, states: ['RELATED', 'ESTABLISHED', 'DNAT'] } }],
  },
  {
    name: 'statistic random keeps the kernel\'s stored value, round(2^31 p)',
    // libxt_statistic: lround(0x80000000 * 0.3333333333) = lround(715827882.595...) = 715827883
    line: '-m statistic --mode random --probability 0.3333333333',
    want: [{ kind: 'statistic', module: 'statistic', mode: 'random', negated: false, probabilityStored: Math.round(0x80000000 * 0.3333333333), every: 0, packet: 0 }],
  },
  {
    name: 'statistic nth',
    line: '-m statistic --mode nth --every 3 --packet 1',
    want: [{ kind: 'statistic', module: 'statistic', mode: 'nth', negated: false, probabilityStored: 0, every: 3, packet: 1 }],
  },
  {
    name: 'recent --rcheck with kube-proxy\'s options',
    line: '-m recent --name KUBE-SEP-A --rcheck --seconds 10800 --reap',
    want: [{ kind: 'recent', module: 'recent', command: 'rcheck', negated: false, seconds: 10800, reap: true, hitcount: undefined, rttl: false, name: 'KUBE-SEP-A', mask: undefined, side: 'source' }],
  },
  {
    name: 'recent --set as iptables-save prints it back',
    line: '-m recent --set --name KUBE-SEP-A --mask 255.255.255.255 --rsource',
    want: [{ kind: 'recent', module: 'recent', command: 'set', negated: false, seconds: undefined, reap: false, hitcount: undefined, rttl: false, name: 'KUBE-SEP-A', mask: '255.255.255.255', side: 'source' }],
  },
  {
    name: 'recent defaults: name DEFAULT, --rdest',
    line: '-m recent ! --update --hitcount 2 --rdest',
    want: [{ kind: 'recent', module: 'recent', command: 'update', negated: true, seconds: undefined, reap: false, hitcount: 2, rttl: false, name: 'DEFAULT', mask: undefined, side: 'dest' }],
  },
  {
    name: 'nfacct',
    line: '-m nfacct --nfacct-name localhost_nps_accepted_pkts',
    want: [{ kind: 'nfacct', module: 'nfacct', name: 'localhost_nps_accepted_pkts' }],
  },
  {
    name: 'ipset as kube-proxy\'s IPVS mode uses it',
    line: '-m set ! --match-set KUBE-CLUSTER-IP dst,dst',
    want: [{ kind: 'set', module: 'set', negated: true, setName: 'KUBE-CLUSTER-IP', flags: ['dst', 'dst'] }],
  },
  {
    name: 'the same module twice: each option goes to the latest',
    line: '-m comment --comment a -m comment --comment b',
    want: [{ kind: 'comment', module: 'comment', comment: 'a' }, { kind: 'comment', module: 'comment', comment: 'b' }],
  },
  {
    name: 'an unknown module keeps its options',
    line: '-m physdev --physdev-in veth0 --physdev-is-bridged',
    want: [{ kind: 'other', module: 'physdev' }],
  },
];

for (const c of matchCases) {
  test(`match: ${c.name}`, () => {
    const got = spec(c.line, c.family);
    assert.deepEqual(got.problems, []);
    assert.deepEqual(got.matches.map(core), c.want);
  });
}

test('implicit match: "-p tcp --dport 80" loads the tcp match where the option is', () => {
  const got = spec('-m comment --comment x -p tcp --dport 80 -j ACCEPT');
  assert.deepEqual(got.matches.map((m) => [m.module, m.implicit]), [['comment', false], ['tcp', true]]);
  assert.deepEqual(got.problems, []);
});

test('an option goes to the most recent match that has it', () => {
  const got = spec('-p tcp -m tcp --dport 80 -m comment --comment x -m tcp --sport 1 -j ACCEPT');
  const ports = got.matches.filter((m) => m.kind === 'ports');
  assert.equal(ports.length, 2);
  assert.equal(ports[1]!.kind === 'ports' && ports[1]!.sport?.range.min, 1);
});

test('generic matches: addresses with prefix or mask, lists, interfaces, protocol names', () => {
  const got = spec('! -s 10.0.0.0/255.0.0.0 -d 1.1.1.1,2.2.2.0/24 -i eth+ ! -o lo -p 6');
  assert.equal(got.source?.negated, true);
  assert.deepEqual(got.source?.addresses.map((a) => a.text), ['10.0.0.0/8']);
  assert.deepEqual(got.destination?.addresses.map((a) => a.text), ['1.1.1.1/32', '2.2.2.0/24']);
  assert.deepEqual(got.inInterface, { negated: false, name: 'eth+' });
  assert.deepEqual(got.outInterface, { negated: true, name: 'lo' });
  assert.deepEqual(got.protocol, { negated: false, name: 'tcp' });
});

test('"-p all" and "-s 0.0.0.0/0" restrict nothing', () => {
  const got = spec('-p all -s 0.0.0.0/0 -j ACCEPT');
  assert.equal(got.protocol, undefined);
  assert.equal(got.source, undefined);
});

test('IPv6 addresses normalise', () => {
  const got = spec('-d FD00:0:0::0001 -s 2001:db8::/64', 6);
  assert.deepEqual(got.destination?.addresses.map((a) => a.text), ['fd00::1/128']);
  assert.deepEqual(got.source?.addresses.map((a) => a.text), ['2001:db8::/64']);
});

const targetCases: { name: string; line: string; family?: 4 | 6; want: unknown }[] = [
  { name: 'a chain', line: '-j KUBE-SVC-X', want: { kind: 'jump', name: 'KUBE-SVC-X', goto: false, options: [] } },
  { name: 'a goto', line: '-g KUBE-SVC-X', want: { kind: 'jump', name: 'KUBE-SVC-X', goto: true, options: [] } },
  { name: 'RETURN', line: '-j RETURN', want: { kind: 'standard', name: 'RETURN' } },
  { name: 'REJECT defaults to icmp-port-unreachable', line: '-j REJECT', want: { kind: 'reject', rejectWith: 'icmp-port-unreachable' } },
  { name: 'REJECT in IPv6 defaults to icmp6-port-unreachable', line: '-j REJECT', family: 6, want: { kind: 'reject', rejectWith: 'icmp6-port-unreachable' } },
  { name: 'REJECT aliases', line: '-p tcp -j REJECT --reject-with tcp-rst', want: { kind: 'reject', rejectWith: 'tcp-reset' } },
  { name: 'DNAT ip:port', line: '-j DNAT --to-destination 10.180.0.1:80', want: { kind: 'dnat', to: { minIP: '10.180.0.1', maxIP: '10.180.0.1', minPort: 80, maxPort: 80, text: '10.180.0.1:80' }, flags: [] } },
  { name: 'DNAT [v6]:port', line: '-j DNAT --to-destination [fd00:10::1]:80', family: 6, want: { kind: 'dnat', to: { minIP: 'fd00:10::1', maxIP: 'fd00:10::1', minPort: 80, maxPort: 80, text: '[fd00:10::1]:80' }, flags: [] } },
  { name: 'DNAT port only', line: '-p udp -j DNAT --to-destination :53', want: { kind: 'dnat', to: { minIP: undefined, maxIP: undefined, minPort: 53, maxPort: 53, text: ':53' }, flags: [] } },
  { name: 'MASQUERADE --random-fully', line: '-j MASQUERADE --random-fully', want: { kind: 'masquerade', toPorts: undefined, flags: ['--random-fully'] } },
  // libxt_MARK revision 2: or → value/value, xor → value/0, set → value/(value|mask), and → 0/~value
  { name: 'MARK --or-mark', line: '-j MARK --or-mark 0x4000', want: { kind: 'mark', value: 0x4000, mask: 0x4000 } },
  { name: 'MARK --xor-mark', line: '-j MARK --xor-mark 0x4000', want: { kind: 'mark', value: 0x4000, mask: 0 } },
  { name: 'MARK --set-mark', line: '-j MARK --set-mark 0x10', want: { kind: 'mark', value: 0x10, mask: 0xffffffff } },
  { name: 'MARK --set-mark with mask', line: '-j MARK --set-mark 0x1/0x2', want: { kind: 'mark', value: 0x1, mask: 0x3 } },
  { name: 'MARK --and-mark', line: '-j MARK --and-mark 0xff', want: { kind: 'mark', value: 0, mask: 0xffffff00 } },
  { name: 'MARK --set-xmark', line: '-j MARK --set-xmark 0x4000/0x4000', want: { kind: 'mark', value: 0x4000, mask: 0x4000 } },
  { name: 'an unmodelled target keeps its options', line: '-j LOG --log-prefix "x y"', want: { kind: 'jump', name: 'LOG', goto: false, options: [{ negated: false, name: '--log-prefix', values: ['x y'] }] } },
];

for (const c of targetCases) {
  test(`target: ${c.name}`, () => {
    const got = spec(c.line, c.family);
    assert.deepEqual(got.problems, []);
    assert.deepEqual(got.target, c.want);
  });
}

test('a rule with no target', () => {
  assert.equal(spec('-m comment --comment "other traffic will be dropped"').target, undefined);
});

test('-4 / -6 inside a rule mark its family', () => {
  assert.equal(spec('-4 -s 10.0.0.1 -j ACCEPT').onlyFamily, 4);
});

const problemCases: { name: string; line: string; match: RegExp }[] = [
  { name: 'port out of range', line: '-p tcp -m tcp --dport 65536', match: /--dport 65536/ },
  { name: 'probability above 1', line: '-m statistic --mode random --probability 2', match: /--probability 2/ },
  { name: 'nth without --packet', line: '-m statistic --mode nth --every 2', match: /--packet/ },
  { name: 'recent with two commands', line: '-m recent --set --rcheck', match: /exactly one of/ },
  { name: 'unknown ctstate', line: '-m conntrack --ctstate BOGUS', match: /unknown state BOGUS/ },
  { name: 'unknown address type', line: '-m addrtype --dst-type HOME', match: /unknown address type HOME/ },
  { name: 'MARK with two forms', line: '-j MARK --or-mark 1 --xor-mark 2', match: /exactly one of/ },
  { name: 'reject type of the other family', line: '-j REJECT --reject-with icmp6-no-route', match: /not a reject type for IPv4/ },
  { name: 'DNAT to the other family', line: '-j DNAT --to-destination [fd00::1]:80', match: /--to-destination/ },
  { name: 'multiport without a protocol', line: '-m multiport --dports 80', match: /needs -p tcp/ },
  { name: 'a stray word', line: '-j ACCEPT extra', match: /unexpected argument "extra"/ },
  { name: 'two targets', line: '-j ACCEPT -j DROP', match: /more than one target/ },
];

for (const c of problemCases) {
  test(`problem: ${c.name}`, () => {
    const got = spec(c.line);
    assert.ok(got.problems.some((p) => c.match.test(p)), `problems: ${JSON.stringify(got.problems)}`);
  });
}

test('notes, not problems: things kpsim keeps but does not evaluate', () => {
  const got = spec('-m physdev --physdev-in veth0 -p tcp -m tcp --dport http -m conntrack --ctstatus ASSURED -j ACCEPT');
  assert.deepEqual(got.problems, []);
  assert.ok(got.notes.some((n) => /physdev/.test(n)));
  assert.ok(got.notes.some((n) => /service names/.test(n)));
  assert.ok(got.notes.some((n) => /--ctstatus/.test(n)));
});

test('a module named like an object property ("-m constructor") is an unknown module, its options kept', () => {
  const got = spec('-m constructor --foo x -j ACCEPT');
  assert.deepEqual(got.problems, []);
  assert.deepEqual(got.matches.map((m) => [m.kind, m.module, m.other.map((o) => o.name)]), [['other', 'constructor', ['--foo']]]);
});
