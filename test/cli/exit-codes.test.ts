/**
 * The CLI's contract: usage errors exit 2 naming the flag, input errors exit 1 naming file,
 * object and field, no stack trace unless --debug, and --help / --version exit 0.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/run-cli.js';
import { aliasBomb } from '../helpers/bad-inputs.js';

const dir = mkdtempSync(join(tmpdir(), 'kpsim-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const badService = join(dir, 'svc.yaml');
writeFileSync(badService, 'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec:\n  clusterIP: 10.96.0.5\n  ports: [{port: 70000, protocol: TCP}]\n');

const bomb = join(dir, 'bomb.yaml');
writeFileSync(bomb, aliasBomb);

interface Case {
  name: string;
  args: string[];
  status: number;
  stderr?: RegExp;
  stdout?: RegExp;
}

const trace = ['trace', '-q', '-f', 'rules/example'];
const cases: Case[] = [
  { name: 'a bad --dport', args: [...trace, '--src', '10.244.1.5', '--dst', '10.96.100.20', '--dport', '99999'], status: 2, stderr: /^kpsim: --dport: "99999" is not a port \(1-65535\)\n$/ },
  { name: 'an address that is not one', args: [...trace, '--src', '10.244.1.500', '--dst', '10.96.100.20', '--dport', '80'], status: 2, stderr: /^kpsim: --src: "10.244.1.500" is not an IP address\n$/ },
  { name: 'an unknown --mode', args: ['compile', '-q', '-f', 'rules/example', '--mode', 'bpf'], status: 2, stderr: /^kpsim: --mode: "bpf" is not one of iptables, ipvs, nftables\n$/ },
  { name: 'an unknown --proto', args: [...trace, '--proto', 'icmp', '--src', '10.244.1.5', '--dst', '10.96.100.20', '--dport', '80'], status: 2, stderr: /--proto: "icmp" is not one of tcp, udp, sctp/ },
  { name: 'an unknown flag', args: ['compile', '-f', 'rules/example', '--frobnicate'], status: 2, stderr: /unknown option '--frobnicate'/ },
  { name: 'an unknown command', args: ['frobnicate'], status: 2, stderr: /unknown command 'frobnicate'/ },
  { name: 'a missing -f', args: ['compile'], status: 2, stderr: /^kpsim: no cluster given: -f PATH\.\.\. \(manifests\), or a live cluster with --kubeconfig FILE, --context NAME or --server URL\n$/ },
  { name: 'a bad manifest names file, object and field', args: ['compile', '-f', badService], status: 1, stderr: new RegExp(`^kpsim: ${badService.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: Service default/web: spec.ports\\[0\\].port: 70000 is not a port\\n$`) },
  { name: 'a YAML alias bomb is a manifest error naming the file', args: ['compile', '-f', bomb], status: 1, stderr: /bomb\.yaml: not accepted: its aliases expand to more than 100 copies/ },
  { name: 'a missing file', args: ['compile', '-f', join(dir, 'nope.yaml')], status: 1, stderr: /nope\.yaml: cannot read: no such file or folder\n$/ },
  { name: 'a missing --iptables-save dump reads as a missing manifest does', args: ['trace', '--iptables-save', join(dir, 'nope.rules'), '--src', '10.0.0.5', '--dst', '10.96.0.1', '--dport', '80'], status: 1, stderr: /^kpsim: [^\n]*nope\.rules: cannot read: no such file or folder\n$/ },
  { name: 'a missing --flows file reads as a missing manifest does', args: [...trace, '--flows', join(dir, 'nope.json')], status: 1, stderr: /^kpsim: [^\n]*nope\.json: cannot read: no such file or folder\n$/ },
  { name: 'a missing --token-file reads as a missing manifest does, naming the flag', args: ['serve', '--port', '0', '--token-file', join(dir, 'nope.token')], status: 1, stderr: /^kpsim: [^\n]*nope\.token: --token-file: cannot read: no such file or folder\n$/ },
  { name: 'an unknown --node', args: ['compile', '-q', '-f', 'rules/example', '--node', 'node-z'], status: 1, stderr: /node "node-z" is not in the cluster \(nodes: node-a, node-b\)/ },
  { name: '--help', args: ['--help'], status: 0, stdout: /Usage: kpsim/ },
  { name: 'compile --help lists the stable flags', args: ['compile', '--help'], status: 0, stdout: /--node-ip[\s\S]*--with-jumps/ },
  { name: '--version', args: ['--version'], status: 0, stdout: /^\d+\.\d+\.\d+\n$/ },
];

for (const c of cases) {
  test(c.name, () => {
    const got = runCli(c.args);
    assert.equal(got.status, c.status, `stderr: ${got.stderr}`);
    if (c.stderr) assert.match(got.stderr, c.stderr);
    if (c.stdout) assert.match(got.stdout, c.stdout);
    assert.doesNotMatch(got.stderr, /\n\s+at /, 'no stack trace without --debug');
  });
}

test('--debug adds the stack trace', () => {
  const got = runCli(['compile', '--debug', '-f', badService]);
  assert.equal(got.status, 1);
  assert.match(got.stderr, /\n\s+at /);
});
