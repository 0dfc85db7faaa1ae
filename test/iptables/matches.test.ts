/**
 * The match modules (src/iptables/matches/), each read, printed in the kernel's form and read
 * back to the same match, and printed again to the same line. Every registered module has a
 * case here, so a new module file cannot go untested.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderCanonicalRule } from '../../src/iptables/canonical.js';
import { MATCH_MODULES } from '../../src/iptables/matches/registry.js';
import { readRuleSpec, type MatchSpec } from '../../src/iptables/rule-spec.js';
import { tokenizeLine } from '../../src/iptables/tokenize.js';

function tokens(line: string): string[] {
  const got = tokenizeLine(line);
  if (!got.ok) throw new Error(`${line}: ${got.detail}`);
  return got.tokens;
}

/** What a match says, without where it came from (implicit) and the notes a reader adds. */
function core(match: MatchSpec): Record<string, unknown> {
  const { notes: _n, implicit: _i, ...rest } = match;
  return rest;
}

const cases: { kind: MatchSpec['kind']; family?: 4 | 6; rule: string }[] = [
  { kind: 'comment', rule: '-m comment --comment "ns1/svc1:p80 cluster IP" -j ACCEPT' },
  { kind: 'ports', rule: '-p tcp -m tcp ! --sport 1000:2000 --dport 80 --tcp-flags SYN,ACK SYN -j ACCEPT' },
  { kind: 'ports', family: 6, rule: '-p sctp -m sctp --dport 30000:30010 -j ACCEPT' },
  { kind: 'multiport', rule: '-p udp -m multiport ! --dports 53,1000:2000 -j ACCEPT' },
  { kind: 'addrtype', rule: '-m addrtype ! --src-type LOCAL --dst-type UNICAST,LOCAL -j ACCEPT' },
  { kind: 'mark', rule: '-m mark ! --mark 0x4000/0x4000 -j ACCEPT' },
  { kind: 'conntrack', rule: '-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT --ctdir ORIGINAL -j DROP' },
  { kind: 'conntrack', rule: '-m state --state NEW -j ACCEPT' },
  { kind: 'statistic', rule: '-m statistic --mode random --probability 0.33333333349 -j ACCEPT' },
  { kind: 'statistic', rule: '-m statistic --mode nth --every 3 --packet 1 -j ACCEPT' },
  { kind: 'recent', rule: '-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.0 --rsource -j ACCEPT' },
  // The kernel spells out the default --mask; a match without one reads as "all ones" (undefined).
  { kind: 'recent', family: 6, rule: '-m recent --set --name KUBE-SEP-A --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rdest -j ACCEPT' },
  { kind: 'nfacct', rule: '-m nfacct --nfacct-name localhost_nps_accepted_pkts -j ACCEPT' },
  { kind: 'set', rule: '-m set ! --match-set KUBE-CLUSTER-IP dst,dst --return-nomatch -j ACCEPT' },
  { kind: 'other', rule: '-m physdev --physdev-in veth0 --physdev-is-bridged -j ACCEPT' },
];

test('every match module has a case', () => {
  const covered = new Set(cases.map((c) => c.kind));
  assert.deepEqual(MATCH_MODULES.map((m) => m.kind).filter((kind) => !covered.has(kind)), []);
});

for (const c of cases) {
  test(`${c.kind}: ${c.rule} reads back from its canonical form`, () => {
    const family = c.family ?? 4;
    const first = readRuleSpec(tokens(c.rule), family);
    assert.deepEqual(first.problems, []);
    assert.ok(first.matches.some((m) => m.kind === c.kind), `no ${c.kind} match read`);
    const [line] = renderCanonicalRule({ chain: 'T', args: tokens(c.rule) }, family);
    const again = readRuleSpec(tokens(line!).slice(2), family);
    assert.deepEqual(again.problems, [], line);
    assert.deepEqual(again.matches.map(core), first.matches.map(core), `canonical: ${line}`);
    assert.deepEqual(renderCanonicalRule({ chain: 'T', args: tokens(line!).slice(2) }, family), [line], 'printing is a fixed point');
  });
}
