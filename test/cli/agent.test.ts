/**
 * `kpsim agent` as a user runs it (the bundle, a child process) against kpsim's Kubernetes API
 * in the test's process: --once writes the first sync's payload and state into --rules-dir,
 * byte for byte the golden iptables-save of the same cluster; flags with bad values are usage
 * errors naming the flag; an unreachable server is retried, not fatal (checked by the log).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type StartedApi, startKubeApi } from '../helpers/kube-api.js';
import { runCli, runCliAsync } from '../helpers/run-cli.js';

let api: StartedApi;
let dir: string;
before(async () => {
  api = await startKubeApi({ files: ['rules/example'] });
  dir = mkdtempSync(join(tmpdir(), 'kpsim-agent-cli-'));
});
after(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

test('--once writes the first sync\'s restore input and the tables it left: the golden rules', async () => {
  const rulesDir = join(dir, 'rules');
  const r = await runCliAsync(['agent', '--master', api.url, '--config', 'rules/example/kube-proxy.yaml', '--once', '--rules-dir', rulesDir, '--metrics-bind-address', '', '--healthz-bind-address', '']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^kpsim agent: node node-a, iptables mode: synced IPv4 and IPv6 once; rules in /m);
  const files = readdirSync(rulesDir).sort();
  assert.deepEqual(files.filter((f) => !/^\d{6}-/.test(f)), ['IPv4.iptables-save', 'IPv6.iptables-save']);
  assert.deepEqual(files.filter((f) => /^\d{6}-/.test(f)).map((f) => f.replace(/^\d{6}-/, '')).sort(), ['IPv4-full.iptables-restore', 'IPv6-full.iptables-restore']);
  for (const family of [4, 6]) {
    const golden = readFileSync(`rules/example/iptables-save.v${family}.txt`, 'utf8');
    assert.equal(readFileSync(join(rulesDir, `IPv${family}.iptables-save`), 'utf8'), golden, `IPv${family} state`);
    const payload = files.find((f) => f.endsWith(`IPv${family}-full.iptables-restore`))!;
    assert.equal(readFileSync(join(rulesDir, payload), 'utf8'), golden, `IPv${family} payload: a full sync writes exactly the compiled rules`);
  }
  assert.match(r.stderr, /IPv4 full sync #\d+ done/);
});

test('--once in IPVS mode writes the sync as ipvsadm, ipset and ip commands', async () => {
  const rulesDir = join(dir, 'ipvs');
  const r = await runCliAsync(['agent', '--master', api.url, '--config', 'rules/example/kube-proxy.yaml', '--proxy-mode', 'ipvs', '--once', '--rules-dir', rulesDir, '--metrics-bind-address', '', '--healthz-bind-address', '', '-q']);
  assert.equal(r.status, 0, r.stderr);
  const payload = readFileSync(join(rulesDir, readdirSync(rulesDir).find((f) => f.endsWith('IPv4-full.ipvs'))!), 'utf8');
  assert.match(payload, /^# ipvsadm-restore\n-A -t /m);
  assert.match(payload, /^ip addr add 10\.96\.0\.1\/32 dev kube-ipvs0$/m);
  assert.equal(readFileSync(join(rulesDir, 'IPv4.ipvsadm'), 'utf8'), readFileSync('rules/example/ipvsadm.txt', 'utf8'));
});

test('--once in nftables mode writes the transaction and the ruleset it left: what compile --canonical prints', async () => {
  const rulesDir = join(dir, 'nftables');
  const r = await runCliAsync(['agent', '--master', api.url, '--config', 'rules/example/kube-proxy.yaml', '--proxy-mode', 'nftables', '--once', '--rules-dir', rulesDir, '--metrics-bind-address', '', '--healthz-bind-address', '', '-q']);
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(rulesDir).sort();
  assert.deepEqual(files.filter((f) => /^\d{6}-/.test(f)).map((f) => f.replace(/^\d{6}-/, '')).sort(), ['IPv4-full.nft', 'IPv6-full.nft']);
  const payload = readFileSync(join(rulesDir, files.find((f) => f.endsWith('IPv4-full.nft'))!), 'utf8');
  assert.match(payload, /^add table ip kube-proxy \{ comment "rules for kube-proxy" ; \}\nadd chain ip kube-proxy filter-prerouting-pre-dnat\ndelete chain ip kube-proxy filter-prerouting-pre-dnat$/m);
  const compiled = runCli(['compile', '-q', '-f', 'rules/example', '--mode', 'nftables', '--canonical']);
  assert.equal(compiled.status, 0, compiled.stderr);
  assert.equal(readFileSync(join(rulesDir, 'IPv6.nft-ruleset'), 'utf8'), compiled.stdout, 'both tables, as nft list ruleset would print them');
});

test('bad flag values are usage errors naming the flag', () => {
  const cases: { args: string[]; flag: RegExp }[] = [
    { args: ['--proxy-mode', 'ebpf'], flag: /--proxy-mode: "ebpf" is not one of iptables, ipvs, nftables, userspace/ },
    { args: ['--iptables-min-sync-period', 'soon'], flag: /--iptables-min-sync-period: "soon" is not a duration/ },
    { args: ['--ipvs-scheduler', 'fastest'], flag: /--ipvs-scheduler: "fastest" is not an IPVS scheduler/ },
    { args: ['--node-ip', '10.0.0.300'], flag: /--node-ip: "10.0.0.300" is not an IP address/ },
    { args: ['--metrics-bind-address', 'nowhere'], flag: /--metrics-bind-address: "nowhere" is not host:port/ },
  ];
  for (const c of cases) {
    const r = runCli(['agent', '--master', 'http://127.0.0.1:1', '--once', ...c.args]);
    assert.equal(r.status, 2, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, c.flag);
  }
});
