/**
 * Reading the kernel's tools, from text they printed on this machine (nft 1.0.6, conntrack
 * 1.4.7, kernel 6.18): nft's per-rule trace, conntrack's entries, the rule handles of a listing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  iptablesSaveRules, isDnat, isSnat, parseConntrack, parseConntrackDestroyed, parseNftTrace, parseRuleHandles, readPacketKey, sourceKeyText,
} from '../../src/lab/kernel-text.js';

/** A try DNATed and masqueraded through iptables-nft tables, marked again at forward and postrouting. */
const FORWARDED = `trace id 3c813f80 inet kpsim-trace prerouting packet: iif "eth0" ether saddr 52:41:11:3f:b2:0f ether daddr 6e:e1:17:1c:f1:f9 ip saddr 100.64.0.65 ip daddr 10.96.100.20 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 9989 ip protocol tcp ip length 60 tcp sport 10005 tcp dport 80 tcp flags == syn tcp window 64240
trace id 3c813f80 inet kpsim-trace prerouting rule tcp sport 9800-29999 tcp flags syn / fin,syn,rst,ack meta nftrace set 1 # handle 2 (verdict continue)
trace id 3c813f80 inet kpsim-trace prerouting policy accept
trace id 3c813f80 ip nat PREROUTING packet: iif "eth0" ether saddr 52:41:11:3f:b2:0f ether daddr 6e:e1:17:1c:f1:f9 ip saddr 100.64.0.65 ip daddr 10.96.100.20 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 9989 ip length 60 tcp sport 10005 tcp dport 80 tcp flags == syn tcp window 64240
trace id 3c813f80 ip nat PREROUTING rule  counter packets 0 bytes 0 jump KUBE-SERVICES # handle 37 (verdict jump KUBE-SERVICES)
trace id 3c813f80 ip nat KUBE-SERVICES rule meta l4proto tcp ip daddr 10.96.100.20  tcp dport 80 counter packets 0 bytes 0 jump KUBE-SVC-CDGGSHYLG3RE2FKL # handle 46 (verdict jump KUBE-SVC-CDGGSHYLG3RE2FKL)
trace id 3c813f80 ip nat KUBE-SVC-CDGGSHYLG3RE2FKL rule meta random & 2147483647 < 1073741824 counter packets 0 bytes 0 jump KUBE-SEP-F7BHZ7WL3PFYMSRY # handle 96 (verdict jump KUBE-SEP-F7BHZ7WL3PFYMSRY)
trace id 3c813f80 ip nat KUBE-SEP-F7BHZ7WL3PFYMSRY rule meta l4proto tcp   counter packets 0 bytes 0 dnat to 10.244.1.6:8080 # handle 101 (verdict accept)
trace id 3c813f80 inet kpsim-trace forward packet: iif "eth0" oif "fab0" ether saddr 52:41:11:3f:b2:0f ether daddr 6e:e1:17:1c:f1:f9 ip saddr 100.64.0.65 ip daddr 10.244.1.6 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 9989 ip protocol tcp ip length 60 tcp sport 10005 tcp dport 8080 tcp flags == syn tcp window 64240
trace id 3c813f80 ip filter FORWARD packet: iif "eth0" oif "fab0" ether saddr 52:41:11:3f:b2:0f ether daddr 6e:e1:17:1c:f1:f9 ip saddr 100.64.0.65 ip daddr 10.244.1.6 ip dscp cs0 ip ecn not-ect ip ttl 63 ip id 9989 ip length 60 tcp sport 10005 tcp dport 8080 tcp flags == syn tcp window 64240
trace id 3c813f80 ip filter FORWARD rule ct state new  counter packets 0 bytes 0 jump KUBE-PROXY-FIREWALL # handle 14 (verdict jump KUBE-PROXY-FIREWALL)
trace id 3c813f80 ip filter FORWARD policy accept
trace id 3c813f80 ip nat POSTROUTING rule  counter packets 1 bytes 40 jump KUBE-POSTROUTING # handle 39 (verdict jump KUBE-POSTROUTING)
trace id 3c813f80 ip nat KUBE-POSTROUTING rule  counter packets 0 bytes 0  # handle 57 (verdict accept)
`;

/** A pod's frame traced at the bridge, then again (new id) once passed up: one try, two pieces. */
const BRIDGED = `trace id aaaa0001 inet kpsim-trace prerouting packet: iif "cbr0" ip saddr 10.244.0.5 ip daddr 10.96.100.20 ip protocol tcp tcp sport 10000 tcp dport 80 tcp flags == syn
trace id aaaa0001 ip nat PREROUTING rule  counter packets 0 bytes 0 jump KUBE-SERVICES # handle 37 (verdict jump KUBE-SERVICES)
trace id bbbb0002 inet kpsim-trace forward packet: iif "cbr0" oif "cbr0" ip saddr 10.244.0.5 ip daddr 10.244.0.5 ip protocol tcp tcp sport 10000 tcp dport 8080 tcp flags == syn
trace id bbbb0002 ip filter FORWARD rule  counter packets 5 bytes 380 jump KUBE-FORWARD # handle 15 (verdict jump KUBE-FORWARD)
trace id cccc0003 inet kpsim-trace prerouting packet: iif "cbr0" ip saddr 10.244.0.5 ip daddr 10.96.100.20 ip protocol tcp tcp sport 10000 tcp dport 80 tcp flags == syn
trace id cccc0003 ip filter FORWARD rule  counter packets 5 bytes 380 jump KUBE-FORWARD # handle 15 (verdict jump KUBE-FORWARD)
`;

/**
 * nftables mode: the node connects to its own service, masqueraded (fully-random: a new source
 * port) on the way out through lo, and comes back in under a new id; a second connection from
 * another port of the same address comes in through lo too, and must not be joined to the first.
 */
const LOOPED = `trace id 0000a001 inet kpsim-trace output packet: oif "eth0" ip saddr 192.168.0.2 ip daddr 10.96.0.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 31957 ip protocol tcp ip length 60 tcp sport 10051 tcp dport 443 tcp flags == syn tcp window 64240
trace id 0000a001 ip kube-proxy nat-output rule jump services # handle 63 (verdict jump services)
trace id 0000a001 inet kpsim-trace postrouting packet: oif "lo" ip saddr 192.168.0.2 ip daddr 192.168.0.2 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 31957 ip protocol tcp ip length 60 tcp sport 10051 tcp dport 6443 tcp flags == syn tcp window 64240
trace id 0000a001 ip kube-proxy masquerading rule masquerade fully-random # handle 71 (verdict accept)
trace id 0000b002 inet kpsim-trace prerouting packet: iif "lo" @ll,0,112 0x800 ip saddr 192.168.0.2 ip daddr 192.168.0.2 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 31957 ip protocol tcp ip length 60 tcp sport 6422 tcp dport 6443 tcp flags == syn tcp window 64240
trace id 0000b002 ip kube-proxy filter-prerouting-pre-dnat rule ct state new jump firewall-check # handle 54 (verdict jump firewall-check)
trace id 0000b002 ip kube-proxy filter-input rule ct state new jump nodeport-endpoints-check # handle 56 (verdict jump nodeport-endpoints-check)
trace id 0000c003 inet kpsim-trace input packet: iif "lo" @ll,0,112 0x800 ip saddr 192.168.0.2 ip daddr 192.168.0.2 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 4083 ip protocol tcp ip length 60 tcp sport 10052 tcp dport 6443 tcp flags == syn tcp window 64240
trace id 0000c003 ip kube-proxy filter-input rule ct state new jump nodeport-endpoints-check # handle 56 (verdict jump nodeport-endpoints-check)
`;

test('nft trace: a packet the node sent itself, back in through lo with a new source port, joins its try by IP ID and destination', () => {
  const packets = parseNftTrace(LOOPED);
  assert.deepEqual(packets.map((p) => `${sourceKeyText(p.key!)}: ${p.events.map((e) => `${e.chain} ${e.handle}`).join(', ')}`), [
    'tcp 192.168.0.2 10051: nat-output 63, masquerading 71, filter-prerouting-pre-dnat 54, filter-input 56',
    'tcp 192.168.0.2 10052: filter-input 56',
  ]);
});

test('nft trace: a try\'s rules in order, the trace table\'s own left out, policies and handles read', () => {
  const [packet, ...rest] = parseNftTrace(FORWARDED);
  assert.equal(rest.length, 0);
  assert.deepEqual(packet!.key, { proto: 'tcp', src: '100.64.0.65', sport: 10005, dst: '10.96.100.20', dport: 80 });
  assert.deepEqual(packet!.events.map((e) => `${e.table} ${e.chain} ${e.kind} ${e.handle ?? '-'} ${e.verdict}`), [
    'ip nat PREROUTING rule 37 jump KUBE-SERVICES',
    'ip nat KUBE-SERVICES rule 46 jump KUBE-SVC-CDGGSHYLG3RE2FKL',
    'ip nat KUBE-SVC-CDGGSHYLG3RE2FKL rule 96 jump KUBE-SEP-F7BHZ7WL3PFYMSRY',
    'ip nat KUBE-SEP-F7BHZ7WL3PFYMSRY rule 101 accept',
    'ip filter FORWARD rule 14 jump KUBE-PROXY-FIREWALL',
    'ip filter FORWARD policy - accept',
    'ip nat POSTROUTING rule 39 jump KUBE-POSTROUTING',
    'ip nat KUBE-POSTROUTING rule 57 accept',
  ]);
  assert.equal(packet!.events[3]!.text, 'meta l4proto tcp   counter packets 0 bytes 0 dnat to 10.244.1.6:8080');
});

test('nft trace: pieces under new ids join by source; the same hook again (a retransmission) is not the first packet', () => {
  const packets = parseNftTrace(BRIDGED);
  assert.equal(packets.length, 1);
  assert.equal(sourceKeyText(packets[0]!.key!), 'tcp 10.244.0.5 10000');
  assert.deepEqual(packets[0]!.events.map((e) => `${e.chain} ${e.handle}`), ['PREROUTING 37', 'FORWARD 15']);
});

test('nft trace: IPv6 and UDP packet lines give their key', () => {
  const line = 'inet kpsim-trace prerouting packet: iif "eth0" ip6 saddr 2001:db8:c11e::10 ip6 daddr fd00:10:96::b ip6 nexthdr udp udp sport 10003 udp dport 53 udp length 13';
  assert.deepEqual(readPacketKey(line), { proto: 'udp', src: '2001:db8:c11e::10', sport: 10003, dst: 'fd00:10:96::b', dport: 53 });
});

test('conntrack: the DNAT target and masquerade from the reply tuple, -E and -L lines alike', () => {
  const text = [
    '    [NEW] ipv4     2 tcp      6 120 SYN_SENT src=10.99.0.2 dst=10.96.0.10 sport=47248 dport=80 [UNREPLIED] src=10.99.1.2 dst=10.99.1.1 sport=8081 dport=47248',
    'ipv4     2 tcp      6 3570 CLOSE src=100.64.0.23 dst=192.168.0.11 sport=30002 dport=30002 src=10.244.1.65 dst=100.64.0.23 sport=8080 dport=30002 [ASSURED] mark=0 use=1',
    'ipv6     10 udp      17 29 src=2001:db8::2 dst=2001:db8::2 sport=9999 dport=9 [UNREPLIED] src=2001:db8::2 dst=2001:db8::2 sport=9 dport=9999 mark=0 use=1',
    'ipv4     2 unknown  2 599 src=10.99.1.1 dst=224.0.0.22 [UNREPLIED] src=224.0.0.22 dst=10.99.1.1 mark=0 use=1',
    'conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.',
  ].join('\n');
  const entries = parseConntrack(text);
  assert.deepEqual(entries.map((e) => [e.key.proto, e.key.src, isDnat(e), isSnat(e), `${e.replySource.ip}:${e.replySource.port}`]), [
    ['tcp', '10.99.0.2', true, true, '10.99.1.2:8081'],
    ['tcp', '100.64.0.23', true, false, '10.244.1.65:8080'],
    ['udp', '2001:db8::2', false, false, '2001:db8::2:9'],
  ]);
});

test('conntrack destroy events: answered connections the kernel removed, refused and unanswered ones left out', () => {
  // As printed during a probe (kernel 6.18): a refused localhost node port try (the RST to its SYN
  // removes it), a closed try evicted when a later try's NAT wanted its reply tuple, a sentinel.
  const text = [
    '[1796406935.632421]\t[DESTROY] ipv4     2 tcp      6 3600 CLOSE src=127.0.0.1 dst=127.0.0.1 sport=10054 dport=30004 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=30004 dport=10054',
    '[1796406937.921818]\t[DESTROY] ipv4     2 tcp      6 3599 CLOSE src=192.168.0.11 dst=10.96.0.42 sport=32075 dport=80 src=10.244.2.143 dst=192.168.0.11 sport=8080 dport=32202 [ASSURED]',
    '    [DESTROY] ipv4     2 tcp      6 3599 CLOSE src=100.64.0.21 dst=198.18.0.35 sport=34587 dport=80 src=10.244.2.176 dst=192.168.0.11 sport=8080 dport=7791 [ASSURED]',
    '[DESTROY] ipv4     2 tcp      6 49 CLOSE src=192.0.2.1 dst=192.0.2.2 sport=1 dport=2 [UNREPLIED] src=192.0.2.2 dst=192.0.2.1 sport=2 dport=1 [ASSURED] [USERSPACE] portid=2231498742',
    'ipv4     2 tcp      6 3599 CLOSE src=100.64.0.16 dst=10.96.0.10 sport=30141 dport=80 src=10.244.0.21 dst=192.168.0.11 sport=8080 dport=45186 [ASSURED] mark=0 use=1',
  ].join('\n');
  assert.deepEqual(parseConntrackDestroyed(text).map((e) => `${e.key.src}:${e.key.sport} ${e.replySource.ip}:${e.replySource.port} snat=${isSnat(e)}`), [
    '192.168.0.11:32075 10.244.2.143:8080 snat=true',
    '100.64.0.21:34587 10.244.2.176:8080 snat=true',
  ]);
});

test('nft -a list ruleset: each chain\'s rule handles in order, sets and anonymous maps skipped', () => {
  const listing = `table ip kp { # handle 1
	set cluster-ips { # handle 7
		type ipv4_addr
		elements = { 10.96.0.1, 10.96.0.10,
			     10.96.0.11 }
	}

	chain pre { # handle 1
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.96.0.10 udp dport 53 jump svc # handle 6
	}

	chain svc { # handle 2
		numgen random mod 2 vmap { 0 : goto ep1, 1 : goto ep2 } # handle 8
		counter packets 0 bytes 0 # handle 12
	}
}
table ip nat { # handle 2
	chain "KUBE-SEP-X" { # handle 3
		meta l4proto tcp counter packets 0 bytes 0 dnat to 10.244.1.6:8080 # handle 101
	}
}`;
  assert.deepEqual([...parseRuleHandles(listing)], [['ip kp pre', [6]], ['ip kp svc', [8, 12]], ['ip nat KUBE-SEP-X', [101]]]);
});

test('iptables-save text: each chain\'s rules keyed as nft names the table', () => {
  const rules = iptablesSaveRules('*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-A\n-A KUBE-SERVICES -j KUBE-NODEPORTS\nCOMMIT\n*filter\n-A INPUT -j KUBE-FIREWALL\nCOMMIT\n', 6);
  assert.deepEqual([...rules.keys()], ['ip6 nat KUBE-SERVICES', 'ip6 filter INPUT']);
  assert.equal(rules.get('ip6 nat KUBE-SERVICES')!.length, 2);
});
