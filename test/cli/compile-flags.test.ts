/**
 * `kpsim compile` flags that must mean the same in every mode, through the CLI as a user runs it:
 * --random-fully on KUBE-POSTROUTING's MASQUERADE rule (kube-proxy's TestMasqueradeRule, in
 * iptables and in IPVS mode), and --family 6 on a node that runs an IPv6 proxier without any IPv6
 * service (kube-proxy still writes that proxier's base rules).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fixtureConfig, makeNode, makeService, manifestsToYAML, tcpPort } from '../helpers/cluster-builders.js';
import { runCli } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'kpsim-compile-flags-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A one-service cluster on node test-node with these addresses and this clusterCIDR, written to a file. */
function clusterFile(name: string, nodeIPs: string[], clusterCIDR: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, manifestsToYAML([
    makeNode('test-node', nodeIPs),
    fixtureConfig((c) => { c.clusterCIDR = clusterCIDR; }),
    makeService('ns1', 'svc1', (s) => { s.spec.clusterIP = '172.30.0.41'; s.spec.ports = [tcpPort('p80', 80)]; }),
  ]));
  return path;
}

const v4Only = clusterFile('v4', ['192.168.0.2'], '10.0.0.0/8');

/** The MASQUERADE rule of KUBE-POSTROUTING in iptables-save text (one family). */
function masqueradeRule(text: string): string | undefined {
  return text.split('\n').find((line) => line.startsWith('-A KUBE-POSTROUTING ') && / -j MASQUERADE( |$)/.test(line));
}

const randomFullyCases: { name: string; args: string[]; randomFully: boolean }[] = [
  { name: 'iptables mode', args: ['--mode', 'iptables'], randomFully: false },
  { name: 'iptables mode --random-fully', args: ['--mode', 'iptables', '--random-fully'], randomFully: true },
  { name: 'ipvs mode --iptables', args: ['--mode', 'ipvs', '--iptables'], randomFully: false },
  { name: 'ipvs mode --iptables --random-fully', args: ['--mode', 'ipvs', '--iptables', '--random-fully'], randomFully: true },
];
for (const c of randomFullyCases) {
  test(`compile ${c.name}: KUBE-POSTROUTING's MASQUERADE ${c.randomFully ? 'has' : 'has no'} --random-fully`, () => {
    const got = runCli(['compile', '-q', '-f', v4Only, ...c.args]);
    assert.equal(got.status, 0, got.stderr);
    const rule = masqueradeRule(got.stdout);
    assert.ok(rule, `no MASQUERADE rule in KUBE-POSTROUTING:\n${got.stdout}`);
    assert.equal(/ --random-fully( |$)/.test(rule), c.randomFully, rule);
  });
}

const dualStackConfig = clusterFile('dual-config', ['192.168.0.2'], '10.0.0.0/8,fd00:10::/64');
const dualStackNode = clusterFile('dual-node', ['192.168.0.2', '2001:db8::1'], '10.0.0.0/8');

// kube-proxy's IPv6 proxier writes its base rules with no IPv6 service (TestDismissLocalhostRuleExist:
// the first KUBE-SERVICES rule of IPVS mode returns ::1/128); iptables mode's IPv6 ruleset masquerades
// marked traffic and never allows localhost node ports.
const ipv6BaseCases: { name: string; file: string; args: string[]; want: RegExp[] }[] = [
  { name: 'ipvs --iptables, dual-stack clusterCIDR', file: dualStackConfig, args: ['--mode', 'ipvs', '--iptables'], want: [/^\*nat\n/, /\n-A KUBE-SERVICES -s ::1\/128 -j RETURN\n/, /KUBE-6-IPVS-IPS dst -j REJECT\n/] },
  { name: 'ipvs --iptables, IPv6 node address', file: dualStackNode, args: ['--mode', 'ipvs', '--iptables'], want: [/\n-A KUBE-SERVICES -s ::1\/128 -j RETURN\n/] },
  { name: 'ipvs --ipsets, dual-stack clusterCIDR', file: dualStackConfig, args: ['--mode', 'ipvs', '--ipsets'], want: [/^create KUBE-6-LOOP-BACK hash:ip,port,ip family inet6 /] },
  { name: 'ipvs, dual-stack clusterCIDR: an empty table', file: dualStackConfig, args: ['--mode', 'ipvs'], want: [/^IP Virtual Server version 1\.2\.1 \(size=4096\)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port {11}Forward Weight ActiveConn InActConn\n$/] },
  { name: 'iptables, dual-stack clusterCIDR', file: dualStackConfig, args: ['--mode', 'iptables'], want: [/\n-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE\n/, /--dst-type LOCAL ! -d ::1\/128 -j KUBE-NODEPORTS\n/] },
];
for (const c of ipv6BaseCases) {
  test(`compile --family 6 without IPv6 services (${c.name}): the IPv6 proxier's base rules`, () => {
    const got = runCli(['compile', '-q', '-f', c.file, '--family', '6', ...c.args]);
    assert.equal(got.status, 0, got.stderr);
    for (const re of c.want) assert.match(got.stdout, re);
    assert.doesNotMatch(got.stdout, /172\.30\.0\.41|192\.168\.0\.2/, 'no IPv4 address in the IPv6 output');
  });
}

test('compile without --family on a dual-stack node prints the IPv6 ruleset after the IPv4 one, in both modes', () => {
  for (const args of [['--mode', 'iptables'], ['--mode', 'ipvs', '--iptables']]) {
    const got = runCli(['compile', '-q', '-f', dualStackConfig, ...args]);
    assert.equal(got.status, 0, got.stderr);
    const headers = got.stdout.split('\n').filter((line) => line.startsWith('# '));
    assert.equal(headers.length, 2, `${args.join(' ')}: ${headers.join(' | ')}`);
    assert.match(headers[0]!, /IPv4/);
    assert.match(headers[1]!, /IPv6/);
  }
});

test('compile --family 6 on an IPv4-only cluster is a usage error', () => {
  const got = runCli(['compile', '-q', '-f', v4Only, '--mode', 'ipvs', '--iptables', '--family', '6']);
  assert.equal(got.status, 2);
  assert.match(got.stderr, /--family: the cluster has no IPv6/);
});
