/**
 * The kernel lab as a user runs it, through the bundled CLI: `kpsim lab up/status/down` across
 * processes (and after a crash, with the record gone), `kpsim load --mode kernel-iptables`,
 * `kpsim compare --kernel`, `kpsim trace --verify`. The lab's namespaces are named
 * kpsim-test-<pid>-... (KPSIM_LAB_NAME_PREFIX) and its records kept in a temporary folder
 * (KPSIM_LAB_STATE_DIR); everything is removed afterwards. Needs root and the lab's tools; the
 * usage errors run anywhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUnavailable } from '../../src/lab/kernel-modes.js';
import { labDownNamed, namespacesNamed } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/state.js';
import type { CompareReport } from '../../src/load/compare-report.js';
import type { LoadReport } from '../../src/load/report.js';
import { cliEntry, runCli } from '../helpers/run-cli.js';

const skip = labUnavailable('iptables') ?? false;
const PREFIX = `kpsim-test-${process.pid}`;
const stateDir = mkdtempSync(join(tmpdir(), 'kpsim-lab-cli-'));
process.env['KPSIM_LAB_NAME_PREFIX'] = PREFIX;
process.env['KPSIM_LAB_STATE_DIR'] = stateDir;

test.after(async () => {
  await labDownNamed(`${PREFIX}-`);
  rmSync(stateDir, { recursive: true, force: true });
});

const WEB_ENDPOINTS = ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'];

test('lab up, status and down work across processes; a request goes through the node\'s DNAT to a pod', { skip, timeout: 120_000 }, async () => {
  const up = runCli(['lab', 'up', '-f', 'rules/example', '-q', '--id', 'cli1', '--json']);
  assert.equal(up.status, 0, up.stderr);
  const state = JSON.parse(up.stdout) as LabState;
  assert.equal(state.status, 'up');
  assert.ok(existsSync(join(stateDir, 'cli1.json')));
  const status = runCli(['lab', 'status', '--json']);
  const [listed] = JSON.parse(status.stdout) as (LabState & { namespacesPresent: number; processesAlive: number })[];
  assert.equal(listed?.namespacesPresent, state.namespaces.length, status.stdout);
  assert.equal(listed?.processesAlive, 1);
  // A pod answers a ClusterIP request from the client, through the node.
  const get = spawnSync('ip', ['netns', 'exec', `${PREFIX}-cli1-client`, process.execPath, '-e',
    "require('node:http').get('http://10.96.100.20/', (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => console.log(b)); })"], { encoding: 'utf8', timeout: 20_000 });
  const body = JSON.parse(get.stdout) as { endpoint: string };
  assert.ok(WEB_ENDPOINTS.includes(body.endpoint), get.stdout + get.stderr);
  const down = runCli(['lab', 'down', '--id', 'cli1']);
  assert.equal(down.status, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`removed lab cli1: ${state.namespaces.length} namespaces, 1 process stopped`));
  assert.deepEqual(await namespacesNamed(`${PREFIX}-cli1-`), []);
  assert.ok(!existsSync(join(stateDir, 'cli1.json')));
});

test('after a crash that lost the record, lab down still finds the lab by its name and stops its pods', { skip, timeout: 120_000 }, async () => {
  const up = runCli(['lab', 'up', '-f', 'rules/clusterip-basic', '-q', '--id', 'cli2', '--json']);
  assert.equal(up.status, 0, up.stderr);
  const state = JSON.parse(up.stdout) as LabState;
  const pods = state.processes[0]!.pid;
  unlinkSync(join(stateDir, 'cli2.json'));
  const down = runCli(['lab', 'down', '--id', 'cli2']);
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(await namespacesNamed(`${PREFIX}-cli2-`), []);
  const alive = existsSync(`/proc/${pods}`) && !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pods}/stat`, 'utf8'));
  assert.ok(!alive, `the pods process ${pods} is gone`);
  const again = runCli(['lab', 'down', '--id', 'cli2']);
  assert.equal(again.status, 1, 'nothing left to remove is an error naming the id');
  assert.match(again.stderr, /^kpsim: no lab cli2 is up/);
});

test('lab up killed half-way (SIGKILL, once its namespaces appear): lab down removes everything it made', { skip, timeout: 120_000 }, async () => {
  // large-cluster's lab has a hundred namespaces and more: there is time to kill it half-made.
  const child = spawn(process.execPath, [...process.execArgv, cliEntry(), 'lab', 'up', '-f', 'rules/large-cluster', '-q', '--id', 'cli3'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  let seen: string[] = [];
  while (seen.length === 0 && child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    seen = await namespacesNamed(`${PREFIX}-cli3-`);
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(seen.length > 0, 'lab up made namespaces before it was killed');
  const down = runCli(['lab', 'down', '--id', 'cli3']);
  assert.equal(down.status, 0, down.stderr);
  assert.deepEqual(await namespacesNamed(`${PREFIX}-cli3-`), [], down.stdout);
  assert.ok(!existsSync(join(stateDir, 'cli3.json')), 'its record is gone too');
});

test('kpsim load --mode kernel-iptables sends the load through the kernel and counts each endpoint\'s share', { skip, timeout: 120_000 }, async () => {
  const out = runCli(['load', '-f', 'rules/example', '-q', '--target', 'svc/web', '--mode', 'kernel-iptables', '--connections', '6', '--duration', '1', '--json']);
  assert.equal(out.status, 0, out.stderr);
  const report = JSON.parse(out.stdout) as LoadReport;
  assert.equal(report.mode, 'kernel-iptables');
  assert.equal(report.target.listener, '10.96.100.20:80');
  assert.ok(report.requests.total > 0 && report.errors.total === 0, JSON.stringify(report.errors));
  assert.deepEqual(report.endpoints.map((e) => e.endpoint), WEB_ENDPOINTS);
  assert.equal(report.endpoints.reduce((n, e) => n + e.connections, 0), 6, 'six keep-alive connections, each counted by the pod it reached');
  assert.equal(report.endpoints.reduce((n, e) => n + e.requests, 0), report.requests.total);
  assert.deepEqual(await namespacesNamed(`${PREFIX}-`), [], 'the load\'s lab is gone');
});

test('kpsim compare --kernel adds the kernel\'s row beside the userspace proxy', { skip, timeout: 120_000 }, () => {
  const out = runCli(['compare', '-f', 'rules/example', '-q', '--target', 'svc/web', '--kernel', 'iptables,nftables,ipvs', '--duration', '0.5', '--schedulers', 'rr', '--json']);
  assert.equal(out.status, 0, out.stderr);
  const report = JSON.parse(out.stdout) as CompareReport;
  const kernel = report.rows.find((r) => r.mode === 'kernel-iptables');
  assert.ok(kernel?.measured && (kernel.requests ?? 0) > 0 && kernel.relativeToDirect !== null, JSON.stringify(kernel));
  const nftables = report.rows.find((r) => r.mode === 'kernel-nftables');
  assert.ok(nftables?.measured && (nftables.requests ?? 0) > 0 && nftables.relativeToDirect !== null, JSON.stringify(nftables));
  assert.deepEqual(report.rows.map((r) => r.label).slice(0, 4), ['direct', 'userspace rr', 'kernel iptables', 'kernel nftables']);
  if (!existsSync('/proc/net/ip_vs')) assert.ok(report.notes.some((n) => /kernel ipvs left out: IPVS: this kernel has no ip_vs/.test(n)), report.notes.join('\n'));
});

test('kpsim trace --verify: the kernel beside the trace, agreeing', { skip, timeout: 120_000 }, () => {
  const cases = [
    { name: 'outside client to a ClusterIP', args: ['--src', '203.0.113.9', '--dst', '10.96.100.20', '--dport', '80', '--tries', '3'] },
    { name: 'a pod to its own service (hairpin, UDP)', args: ['--src', '10.244.0.2', '--dst', '10.96.0.10', '--dport', '53', '--proto', 'udp'] },
    { name: 'a service without endpoints (REJECT)', args: ['--src', '203.0.113.9', '--dst', '10.96.40.50', '--dport', '80'] },
    { name: 'nftables mode: the node to its own kubernetes endpoint (masqueraded, back in through lo)', args: ['--mode', 'nftables', '--from-node', '--src', '192.168.0.2', '--dst', '10.96.0.1', '--dport', '443'] },
  ];
  for (const c of cases) {
    const out = runCli(['trace', '-f', 'rules/example', '-q', '--verify', '--json', ...c.args]);
    assert.equal(out.status, 0, `${c.name}: ${out.stderr}${out.stdout}`);
    const result = JSON.parse(out.stdout) as { verdict: string; endpoints: string[]; kernel: { agrees: boolean; tries: { result: string; path?: unknown[] }[]; problems: string[] } };
    assert.ok(result.kernel.agrees, `${c.name}: ${result.kernel.problems.join('\n')}`);
    for (const t of result.kernel.tries) {
      assert.ok(result.verdict === 'DNAT' ? result.endpoints.includes(t.result) : t.result.split('|').includes(result.verdict), `${c.name}: ${t.result} vs ${result.verdict}`);
      assert.ok((t.path?.length ?? 0) > 0, `${c.name}: traced`);
    }
  }
  const human = runCli(['trace', '-f', 'rules/example', '-q', '--verify', '--src', '203.0.113.9', '--dst', '10.96.100.20', '--dport', '80']);
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /\nkernel \(iptables rules in lab [0-9a-f]+\): 1 try\n {2}try 1 \(source port \d+\): DNAT to 10\.244\.\d\.\d:8080 \(conntrack\), masqueraded to/);
  assert.match(human.stdout, /kernel and kpsim agree\n$/);
});

test('lab up --mode ipvs says in one line why not, where the kernel has no IPVS', { skip: skip || existsSync('/proc/net/ip_vs') ? 'the kernel has IPVS, or no lab here' : false }, () => {
  const out = runCli(['lab', 'up', '-f', 'rules/example', '-q', '--mode', 'ipvs']);
  assert.equal(out.status, 1);
  assert.equal(out.stderr, 'kpsim: IPVS: this kernel has no ip_vs (CONFIG_IP_VS is not set, or the module cannot be loaded), so kernel-ipvs is skipped\n');
});

const usage: { name: string; args: string[]; flag: string }[] = [
  { name: 'an unknown lab mode', args: ['lab', 'up', '-f', 'rules/example', '--mode', 'ebpf', '-q'], flag: '--mode' },
  { name: 'a bad lab id', args: ['lab', 'down', '--id', 'Not An Id'], flag: '--id' },
  { name: 'an unknown kernel load mode', args: ['load', '-f', 'rules/example', '--target', 'svc/web', '--mode', 'kernel-ebpf', '-q'], flag: '--mode' },
  { name: '--verify with --flows', args: ['trace', '-f', 'rules/example', '--flows', 'x.json', '--verify', '-q'], flag: '--verify' },
  { name: '--tries without --verify', args: ['trace', '-f', 'rules/example', '--src', '1.2.3.4', '--dst', '10.96.100.20', '--dport', '80', '--tries', '2', '-q'], flag: '--tries' },
  { name: 'an unknown --kernel mode', args: ['compare', '-f', 'rules/example', '--kernel', 'ebpf', '-q'], flag: '--kernel' },
  { name: 'UDP through a kernel mode', args: ['load', '-f', 'rules/example', '--target', 'svc/kube-system/kube-dns', '--proto', 'udp', '--mode', 'kernel-nftables', '-q'], flag: '--proto' },
  { name: 'a proxy flag with a kernel mode', args: ['load', '-f', 'rules/example', '--target', 'svc/web', '--mode', 'kernel-iptables', '--workers', '2', '-q'], flag: '--workers' },
];
for (const c of usage) {
  test(`usage error exits 2 naming the flag: ${c.name}`, () => {
    const out = runCli(c.args);
    assert.equal(out.status, 2, out.stderr);
    assert.match(out.stderr, new RegExp(`^kpsim: ${c.flag}: `));
  });
}
