/**
 * renderCanonical against what a real kernel printed: every expected line below is the output
 * of `iptables-save` (iptables-nft 1.8.9, Debian 12) after `iptables-restore` of the input, run
 * in a network namespace; kernel-roundtrip.test.ts checks the same thing live when it can.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { renderCanonical, saveString } from '../../src/iptables/canonical.js';
import { formatKernelProbability, probabilityToKernel } from '../../src/iptables/rule-values.js';

/** One table of input rules (declared chain T, or the given ones) → the kernel's rule lines. */
const ruleCases: { name: string; table?: 'filter' | 'nat'; family?: 4 | 6; input: string; kernel: string }[] = [
  {
    name: 'generic options move first, addresses get /32',
    input: '-A T -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT',
    kernel: '-A T -d 172.30.0.46/32 -p tcp -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
  },
  {
    name: '-s before -d, negations kept in place',
    input: '-A T -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    kernel: '-A T ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
  },
  {
    name: 'a comment of safe characters is printed bare, others quoted',
    input: '-A T -m comment --comment a -m comment --comment ns1/svc1:p80 -j ACCEPT',
    kernel: '-A T -m comment --comment a -m comment --comment "ns1/svc1:p80" -j ACCEPT',
  },
  {
    name: 'quotes and backslashes escaped, empty comment quoted',
    input: String.raw`-A T -m comment --comment "weird 'quote' \"dq\" back\\slash" -m comment --comment "" -j ACCEPT`,
    kernel: String.raw`-A T -m comment --comment "weird \'quote\' \"dq\" back\\slash" -m comment --comment "" -j ACCEPT`,
  },
  {
    name: 'implicit tcp match printed where it was loaded',
    input: '-A T -m comment --comment x -p udp --sport 53 -m udp --dport 54 -j ACCEPT',
    kernel: '-A T -p udp -m comment --comment x -m udp --sport 53 --dport 54 -j ACCEPT',
  },
  {
    name: 'tcp options of several matches merge into the first with options; an empty one stays',
    input: '-A T -p tcp -m tcp -m comment --comment x -m tcp --dport 80 -m tcp --sport 1 -j ACCEPT',
    kernel: '-A T -p tcp -m tcp -m comment --comment x -m tcp --sport 1 --dport 80 -j ACCEPT',
  },
  {
    name: 'port forms: 80:80, 80:, 0:65535',
    input: '-A T -p tcp -m tcp --dport 80:80 -j ACCEPT\n-A T -p tcp -m tcp --dport 80: -j ACCEPT\n-A T -p tcp -m tcp --dport 0:65535 -j ACCEPT',
    kernel: '-A T -p tcp -m tcp --dport 80 -j ACCEPT\n-A T -p tcp -m tcp --dport 80:65535 -j ACCEPT\n-A T -p tcp -m tcp -j ACCEPT',
  },
  {
    name: 'protocol by number or case, "all" disappears',
    input: '-A T -p 6 -m tcp --dport 1 -j ACCEPT\n-A T -p TCP -j ACCEPT\n-A T -p all -j ACCEPT',
    kernel: '-A T -p tcp -m tcp --dport 1 -j ACCEPT\n-A T -p tcp -j ACCEPT\n-A T -j ACCEPT',
  },
  {
    name: 'ctstate in the kernel\'s order',
    input: '-A T -m conntrack --ctstate ESTABLISHED,RELATED,DNAT,NEW,INVALID,UNTRACKED,SNAT -j ACCEPT',
    kernel: '-A T -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED,SNAT,DNAT -j ACCEPT',
  },
  {
    name: 'a list of sources becomes one rule each',
    input: '-A T -s 10.0.0.1,10.0.0.2 -d 1.1.1.1 -j ACCEPT',
    kernel: '-A T -s 10.0.0.1/32 -d 1.1.1.1/32 -j ACCEPT\n-A T -s 10.0.0.2/32 -d 1.1.1.1/32 -j ACCEPT',
  },
  {
    name: 'mark forms',
    input: '-A T -m mark --mark 0x4000/0xffffffff -j ACCEPT\n-A T -m mark --mark 16384 -j ACCEPT\n-A T -m mark ! --mark 0x4000/0x4000 -j ACCEPT',
    kernel: '-A T -m mark --mark 0x4000 -j ACCEPT\n-A T -m mark --mark 0x4000 -j ACCEPT\n-A T -m mark ! --mark 0x4000/0x4000 -j ACCEPT',
  },
  {
    name: 'addresses with masks',
    input: '-A T -d 10.1.2.3/16 -j ACCEPT\n-A T -d 10.0.0.1/255.255.255.0 -j ACCEPT\n-A T -s 10.0.0.1/255.0.255.0 -j ACCEPT\n-A T -s 0.0.0.0/0 -j ACCEPT',
    kernel: '-A T -d 10.1.0.0/16 -j ACCEPT\n-A T -d 10.0.0.0/24 -j ACCEPT\n-A T -s 10.0.0.0/255.0.255.0 -j ACCEPT\n-A T -j ACCEPT',
  },
  {
    name: 'tcp flags, --syn, multiport, addrtype, interfaces, reject types',
    input: [
      '-A T -m tcp -p tcp --syn -j ACCEPT',
      '-A T -p tcp -m tcp --tcp-flags ALL NONE -j ACCEPT',
      '-A T -p tcp -m multiport ! --dports 80,443 -j ACCEPT',
      '-A T -m addrtype --src-type LOCAL,UNICAST ! --dst-type BROADCAST -j ACCEPT',
      '-A T -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT',
      '-A T -i eth+ ! -o lo -j ACCEPT',
      '-A T -j REJECT --reject-with tcp-reset -p tcp',
      '-A T -p sctp -m sctp --dport 80 --sport 1 -j REJECT --reject-with icmp-host-unreachable',
    ].join('\n'),
    kernel: [
      '-A T -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT',
      '-A T -p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j ACCEPT',
      '-A T -p tcp -m multiport ! --dports 80,443 -j ACCEPT',
      '-A T -m addrtype --src-type UNICAST,LOCAL ! --dst-type BROADCAST -j ACCEPT',
      '-A T -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT',
      '-A T -i eth+ ! -o lo -j ACCEPT',
      '-A T -p tcp -j REJECT --reject-with tcp-reset',
      '-A T -p sctp -m sctp --sport 1 --dport 80 -j REJECT --reject-with icmp-host-unreachable',
    ].join('\n'),
  },
  {
    name: 'statistic: probability as the kernel stores it, nth',
    table: 'nat',
    input: [
      '-A T -m statistic --mode random --probability 0.3333333333 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.5000000000 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.0000099999 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.2 -j ACCEPT',
      '-A T -m statistic --mode random --probability 1 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.99999999999 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.0 -j ACCEPT',
      '-A T -m statistic --mode random ! --probability 0.25 -j ACCEPT',
      '-A T -m statistic --mode nth --every 3 --packet 1 -j ACCEPT',
    ].join('\n'),
    kernel: [
      '-A T -m statistic --mode random --probability 0.33333333349 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.50000000000 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.00001000008 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.20000000019 -j ACCEPT',
      '-A T -m statistic --mode random --probability 1.00000000000 -j ACCEPT',
      '-A T -m statistic --mode random --probability 1.00000000000 -j ACCEPT',
      '-A T -m statistic --mode random --probability 0.00000000000 -j ACCEPT',
      '-A T -m statistic --mode random ! --probability 0.25000000000 -j ACCEPT',
      '-A T -m statistic --mode nth --every 3 --packet 1 -j ACCEPT',
    ].join('\n'),
  },
  {
    name: 'recent spelled out in the kernel\'s order',
    table: 'nat',
    input: [
      '-A T -m recent --name KUBE-SEP-A --rcheck --seconds 10800 --reap -j ACCEPT',
      '-A T -m recent --name KUBE-SEP-A --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
      '-A T -m recent --update --rttl --hitcount 3 --seconds 5 --reap --name X --rdest -j ACCEPT',
      '-A T -m recent ! --rcheck --name FOO --mask 255.255.0.0 -j ACCEPT',
      '-A T -m recent --rcheck -j ACCEPT',
    ].join('\n'),
    kernel: [
      '-A T -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-A --mask 255.255.255.255 --rsource -j ACCEPT',
      '-A T -p tcp -m recent --set --name KUBE-SEP-A --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.180.0.1:80',
      '-A T -m recent --update --seconds 5 --reap --hitcount 3 --rttl --name X --mask 255.255.255.255 --rdest -j ACCEPT',
      '-A T -m recent ! --rcheck --name FOO --mask 255.255.0.0 --rsource -j ACCEPT',
      '-A T -m recent --rcheck --name DEFAULT --mask 255.255.255.255 --rsource -j ACCEPT',
    ].join('\n'),
  },
  {
    name: 'MARK, MASQUERADE, SNAT and DNAT targets',
    table: 'nat',
    input: [
      '-A T -j MARK --or-mark 0x4000',
      '-A T -j MARK --xor-mark 0x4000',
      '-A T -j MARK --set-mark 0x10',
      '-A T -j MARK --and-mark 0xff',
      '-A T -m mark --mark 0x4000/0x4000 -j MARK --set-mark 0x1/0x3',
      '-A T -p tcp -j MASQUERADE --random --to-ports 1000-2000 --random-fully',
      '-A T -p tcp -j SNAT --to-source 1.2.3.4:1000-2000 --random --persistent',
      '-A T -p tcp -j DNAT --to-destination 1.2.3.4-1.2.3.5:80-90 --random',
      '-A T -p tcp -j DNAT --to-destination 1.2.3.4 --persistent --random',
      '-A T -p udp -j DNAT --to-destination :53',
    ].join('\n'),
    kernel: [
      '-A T -j MARK --set-xmark 0x4000/0x4000',
      '-A T -j MARK --set-xmark 0x4000/0x0',
      '-A T -j MARK --set-xmark 0x10/0xffffffff',
      '-A T -j MARK --set-xmark 0x0/0xffffff00',
      '-A T -m mark --mark 0x4000/0x4000 -j MARK --set-xmark 0x1/0x3',
      '-A T -p tcp -j MASQUERADE --to-ports 1000-2000 --random --random-fully',
      '-A T -p tcp -j SNAT --to-source 1.2.3.4:1000-2000 --random --persistent',
      '-A T -p tcp -j DNAT --to-destination 1.2.3.4-1.2.3.5:80-90 --random',
      '-A T -p tcp -j DNAT --to-destination 1.2.3.4 --random --persistent',
      '-A T -p udp -j DNAT --to-destination :53',
    ].join('\n'),
  },
  {
    name: 'IPv6: /128, icmp6 reject, recent mask, DNAT forms',
    family: 6,
    input: [
      '-A T -d fd00::1 -s 2001:db8::/64 -p tcp -m tcp --dport 80 -j REJECT',
      '-A T -m recent --set --name Y -j ACCEPT',
      '-A T -d FD00:0:0::0001/128 -j ACCEPT',
      '-A T -p sctp -j REJECT --reject-with icmp6-adm-prohibited',
    ].join('\n'),
    kernel: [
      '-A T -s 2001:db8::/64 -d fd00::1/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable',
      '-A T -m recent --set --name Y --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j ACCEPT',
      '-A T -d fd00::1/128 -j ACCEPT',
      '-A T -p sctp -j REJECT --reject-with icmp6-adm-prohibited',
    ].join('\n'),
  },
  {
    name: 'IPv6 DNAT',
    table: 'nat',
    family: 6,
    input: '-A T -p tcp -m tcp -j DNAT --to-destination [fd00::1]:80\n-A T -p tcp -m tcp -j DNAT --to-destination fd00::2',
    kernel: '-A T -p tcp -m tcp -j DNAT --to-destination [fd00::1]:80\n-A T -p tcp -m tcp -j DNAT --to-destination fd00::2',
  },
];

const BUILTINS = {
  filter: ':INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]',
  nat: ':PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]',
};

for (const c of ruleCases) {
  test(`canonical: ${c.name}`, () => {
    const table = c.table ?? 'filter';
    const rs = parseIptablesSave(`*${table}\n:T - [0:0]\n${c.input}\nCOMMIT\n`, { family: c.family ?? 4 });
    const want = `*${table}\n${BUILTINS[table]}\n:T - [0:0]\n${c.kernel}\nCOMMIT\n`;
    assert.equal(renderCanonical(rs), want);
  });
}

test('canonical: tables in the kernel\'s order, all built-in chains, user chains sorted, policies kept', () => {
  const input = [
    '*nat', ':X - [0:0]', 'COMMIT',
    '*raw', ':X - [0:0]', 'COMMIT',
    '*filter', ':INPUT DROP [5:100]', ':KUBE-b - [0:0]', ':KUBE-a - [0:0]', ':Z-CHAIN - [0:0]', ':A-CHAIN - [0:0]',
    ':KUBE-SVC-ZZ - [0:0]', ':KUBE-SVC-Z - [0:0]', ':KUBE-SVC-Z1 - [0:0]', ':_low - [0:0]',
    '-A KUBE-b -j ACCEPT', '-A KUBE-a -j KUBE-b', 'COMMIT',
    '*mangle', ':X - [0:0]', 'COMMIT', '',
  ].join('\n');
  const kernel = [
    '*mangle', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':X - [0:0]', 'COMMIT',
    '*raw', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':X - [0:0]', 'COMMIT',
    '*filter', ':INPUT DROP [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':A-CHAIN - [0:0]',
    ':KUBE-SVC-Z - [0:0]', ':KUBE-SVC-Z1 - [0:0]', ':KUBE-SVC-ZZ - [0:0]', ':KUBE-a - [0:0]', ':KUBE-b - [0:0]',
    ':Z-CHAIN - [0:0]', ':_low - [0:0]', '-A KUBE-a -j KUBE-b', '-A KUBE-b -j ACCEPT', 'COMMIT',
    '*nat', BUILTINS.nat, ':X - [0:0]', 'COMMIT', '',
  ].join('\n');
  assert.equal(renderCanonical(parseIptablesSave(input)), kernel);
});

test('canonical: nfacct prints its name after two spaces (xtables_save_string adds its own)', () => {
  const rs = parseIptablesSave('*filter\n:T - [0:0]\n-A T -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP\nCOMMIT\n');
  assert.match(renderCanonical(rs), /-m nfacct --nfacct-name {2}ct_state_invalid_dropped_pkts -j DROP/);
});

test('saveString: bare only for letters, digits, _ and -', () => {
  assert.deepEqual(['abc_-09', 'a.b', 'a b', '', 'ümlaut', `a"b`].map(saveString), ['abc_-09', '"a.b"', '"a b"', '""', '"ümlaut"', '"a\\"b"']);
});

test('probability: %.11f of the stored value, ties broken to even as printf does', () => {
  // 2^-12 = 0.000244140625 exactly: printf("%.11f") rounds the tie to even, giving ...062.
  assert.equal(formatKernelProbability(probabilityToKernel(2 ** -12)), '0.00024414062');
  assert.equal(formatKernelProbability(probabilityToKernel(0.75)), '0.75000000000');
});
