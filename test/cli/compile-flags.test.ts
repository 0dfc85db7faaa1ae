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
