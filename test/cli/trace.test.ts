/**
 * `kpsim trace`: each mode, the JSON and human outputs, --seed, --from-node, --semantics,
 * --iptables-save dumps with and without --node-ip, --flows with a bad flow, and the flags that
 * are missing or belong elsewhere. The expected endpoints are read from the reviewed goldens
 * (the DNAT targets of a service's KUBE-SEP chains in iptables-save.v4.txt, its real servers in
 * ipvsadm.txt), not from the tracer. runTrace runs in this process; the real CLI (a child
 * process) holds the exit-code contract and the --flows output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runTrace } from '../../src/cli/trace.js';
import { isKpsimError } from '../../src/errors.js';
import type { TraceResult } from '../../src/trace/types.js';
import { repoRoot } from '../helpers/cluster-builders.js';
import { runCli } from '../helpers/run-cli.js';

const EXAMPLE = join(repoRoot(), 'rules', 'example');
const IPVS_MODE = join(repoRoot(), 'rules', 'ipvs-mode');
const NODE_A = '192.168.0.2';
const POD = '10.244.1.20';
const OUTSIDE = '203.0.113.9';

const dir = mkdtempSync(join(tmpdir(), 'kpsim-trace-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The DNAT targets of the KUBE-SEP chains whose comment names `servicePort`, in a golden iptables-save file. */
function iptablesEndpoints(file: string, servicePort: string): string[] {
  const out = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^-A KUBE-SEP-\S+ -m comment --comment (\S+) .*-j DNAT --to-destination (\S+)$/.exec(line);
    if (m && m[1] === servicePort) out.add(m[2]!);
  }
  return [...out].sort();
}

/**
 * The real servers that take new connections (weight above 0; a draining one has weight 0) under
 * virtual server `service` ("UDP  10.96.0.10:53") in a golden ipvsadm -Ln file.
 */
function ipvsRealServers(file: string, service: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${service} `));
  assert.ok(at >= 0, `${service} is not in ${file}`);
  const out: string[] = [];
  for (const line of lines.slice(at + 1)) {
    const m = /^ {2}-> (\S+) +\S+ +(\d+) /.exec(line);
    if (!m) break;
    if (Number(m[2]) > 0) out.push(m[1]!);
  }
  return out.sort();
}

/** runTrace's output and exit code; its KpsimError when it throws one. */
async function trace(opts: Record<string, unknown>): Promise<{ exit: number; text: string }> {
  let text = '';
  const exit = await runTrace({ quiet: true, ...opts }, (t) => { text += t; });
  return { exit, text };
}

async function traceJson(opts: Record<string, unknown>): Promise<TraceResult> {
  const { exit, text } = await trace({ ...opts, json: true });
  assert.equal(exit, 0);
  assert.ok(text.endsWith('\n') && !text.slice(0, -1).includes('\n'), `one JSON line: ${text}`);
  return JSON.parse(text) as TraceResult;
}

const webEndpoints = iptablesEndpoints(join(EXAMPLE, 'iptables-save.v4.txt'), 'default/web:http');
const packet = (src: string, dst: string, dport: number, proto = 'tcp') => ({ src, dst, dport: String(dport), proto });

test('the golden has web\'s three endpoints to compare with', () => {
  assert.equal(webEndpoints.length, 3, webEndpoints.join(', '));
});

interface ResultCase {
  name: string;
  opts: Record<string, unknown>;
  verdict: TraceResult['verdict'];
  endpoints: () => string[];
  masquerade: boolean;
  origin?: 'PREROUTING' | 'OUTPUT';
  /**
   * Each endpoint's chance is 1/n (iptables' statistic ladder, IPVS rr). Not with IPVS mh: the
   * draining real server keeps its Maglev slots (last_weight), and a packet hashed to one of
   * them finds no destination, so the shares add up to less than 1.
   */
  equalShares?: false;
}

const resultCases: ResultCase[] = [
  { name: 'iptables: a pod to a ClusterIP', opts: { file: [EXAMPLE], mode: 'iptables', ...packet(POD, '10.96.100.20', 80) }, verdict: 'DNAT', endpoints: () => webEndpoints, masquerade: false, origin: 'PREROUTING' },
  { name: 'the config\'s mode (iptables) without --mode', opts: { file: [EXAMPLE], ...packet(POD, '10.96.100.20', 80) }, verdict: 'DNAT', endpoints: () => webEndpoints, masquerade: false },
  { name: 'iptables: outside to a NodePort is masqueraded', opts: { file: [EXAMPLE], ...packet(OUTSIDE, NODE_A, 30080) }, verdict: 'DNAT', endpoints: () => webEndpoints, masquerade: true },
  { name: 'iptables: the node itself (its address as --src) leaves through nat OUTPUT', opts: { file: [EXAMPLE], ...packet(NODE_A, '10.96.100.20', 80) }, verdict: 'DNAT', endpoints: () => webEndpoints, masquerade: true, origin: 'OUTPUT' },
  { name: '--from-node with a pod-range --src', opts: { file: [EXAMPLE], fromNode: true, ...packet(POD, '10.96.100.20', 80) }, verdict: 'DNAT', endpoints: () => webEndpoints, masquerade: false, origin: 'OUTPUT' },
  { name: 'iptables: a service without endpoints rejects', opts: { file: [EXAMPLE], ...packet(POD, '10.96.40.50', 80) }, verdict: 'REJECT', endpoints: () => [], masquerade: false },
  { name: 'iptables: an address no rule names', opts: { file: [EXAMPLE], ...packet(POD, '198.51.100.7', 80) }, verdict: 'NONE', endpoints: () => [], masquerade: false },
  {
    name: 'ipvs: UDP DNS to the ClusterIP',
    opts: { file: [EXAMPLE], mode: 'ipvs', ...packet(POD, '10.96.0.10', 53, 'udp') },
    verdict: 'DNAT', endpoints: () => ipvsRealServers(join(EXAMPLE, 'ipvsadm.txt'), 'UDP  10.96.0.10:53'), masquerade: false,
  },
  {
    name: 'the config\'s mode (ipvs) without --mode',
    opts: { file: [IPVS_MODE], ...packet(POD, '10.96.7.10', 80) },
    verdict: 'DNAT', endpoints: () => ipvsRealServers(join(IPVS_MODE, 'ipvsadm.txt'), 'TCP  10.96.7.10:80'), masquerade: false, equalShares: false,
  },
  {
    name: '--iptables-save dump with --node-ip: the node port is local',
    opts: { iptablesSave: [join(EXAMPLE, 'iptables-save.v4.txt')], nodeIp: [NODE_A], ...packet(OUTSIDE, NODE_A, 30080) },
    verdict: 'DNAT', endpoints: () => webEndpoints, masquerade: true,
  },
  {
    name: '--iptables-save dump without --node-ip: the node\'s address is not local, no node port',
    opts: { iptablesSave: [join(EXAMPLE, 'iptables-save.v4.txt')], ...packet(OUTSIDE, NODE_A, 30080) },
    verdict: 'NONE', endpoints: () => [], masquerade: false,
  },
  {
    name: '--iptables-save twice (IPv4 and IPv6 dumps): an IPv6 packet',
    opts: { iptablesSave: [join(EXAMPLE, 'iptables-save.v4.txt'), join(EXAMPLE, 'iptables-save.v6.txt')], ...packet('fd00:10:244:1::20', 'fd00:10:96::70', 80) },
    verdict: 'DNAT', endpoints: () => iptablesEndpoints(join(EXAMPLE, 'iptables-save.v6.txt'), 'default/dual:http'), masquerade: false,
  },
];

for (const c of resultCases) {
  test(`trace: ${c.name}`, async () => {
    const r = await traceJson(c.opts);
    assert.equal(r.verdict, c.verdict, JSON.stringify(r.hops.map((h) => h.rule), null, 1));
    assert.deepEqual(r.endpoints, c.endpoints());
    assert.equal(r.masquerade, c.masquerade);
    if (c.origin !== undefined) assert.equal(r.origin, c.origin);
    if (r.endpoints.length > 0 && c.equalShares !== false) {
      const total = Object.values(r.probabilities).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-9, `probabilities add up to 1: ${JSON.stringify(r.probabilities)}`);
      for (const e of r.endpoints) assert.ok(Math.abs(r.probabilities[e]! - 1 / r.endpoints.length) < 1e-9, `${e}: ${r.probabilities[e]} is not 1/${r.endpoints.length}`);
    }
  });
}

test('trace: the IPv6 packet of the dual-stack dump is one the golden names', () => {
  // The case above is only meaningful if default/dual has the IPv6 ClusterIP fd00:10:96::70.
  assert.match(readFileSync(join(EXAMPLE, 'iptables-save.v6.txt'), 'utf8'), /-d fd00:10:96::70 --dport 80 -j KUBE-SVC-/);
});

test('trace: the human output says the verdict, each endpoint with its chance, and masquerading', async () => {
  const json = await traceJson({ file: [EXAMPLE], ...packet(OUTSIDE, NODE_A, 30080) });
  const { exit, text } = await trace({ file: [EXAMPLE], ...packet(OUTSIDE, NODE_A, 30080) });
  assert.equal(exit, 0);
  assert.match(text, /^verdict: DNAT$/m);
  // Each endpoint with its chance and, since this path masquerades, saying so: a row of the
  // outcome table, and its branch.
  json.endpoints.forEach((e, k) => {
    const at = e.replace(/[.[\]]/g, '\\$&');
    assert.match(text, new RegExp(`^ {2}DNAT +${at} +0\\.33333333\\d\\d +yes +${k + 1}$`, 'm'), text);
    assert.match(text, new RegExp(`^branch ${k + 1} of 3, p=0\\.33333333\\d\\d: DNAT to ${at}, masqueraded$`, 'm'), text);
  });
  assert.match(text, /^masquerade: yes$/m);
  // --verbose: the full walk, then the endpoints as a list.
  const verbose = (await trace({ file: [EXAMPLE], verbose: true, ...packet(OUTSIDE, NODE_A, 30080) })).text;
  for (const e of json.endpoints) assert.match(verbose, new RegExp(`^ {2}${e.replace(/[.[\]]/g, '\\$&')} {2}p=0\\.33333333\\d\\d {2}masquerade$`, 'm'), verbose);
  assert.equal(verbose.match(/^nat POSTROUTING: /gm)?.length, 3, `the walk repeats POSTROUTING per branch:\n${verbose}`);
});

test('trace --seed: the same seed draws the same walk; the draws cover every endpoint', async () => {
  const opts = { file: [EXAMPLE], ...packet(POD, '10.96.100.20', 80) };
  const first = await traceJson({ ...opts, seed: '5' });
  const again = await traceJson({ ...opts, seed: '5' });
  assert.ok(first.sample?.endpoint !== undefined, 'a sample with an endpoint');
  assert.deepEqual(again.sample, first.sample);
  const drawn = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) drawn.add((await traceJson({ ...opts, seed: String(seed) })).sample!.endpoint!);
  assert.deepEqual([...drawn].sort(), webEndpoints, 'over 40 seeds');
  assert.equal((await traceJson(opts)).sample, undefined, 'no sample without --seed');
});

test('trace --semantics kube-proxy-test: kube-proxy\'s own test tracer\'s output string', async () => {
  const r = await traceJson({ file: [EXAMPLE], semantics: 'kube-proxy-test', ...packet(POD, '10.96.100.20', 80) });
  assert.deepEqual(r.kubeProxyTest, { output: webEndpoints.join(', '), masq: false });
});

// ------------------------------------------------------------------ --flows

const flowsFile = join(dir, 'flows.json');
const flows = [
  { proto: 'tcp', src: POD, dst: '10.96.100.20', dport: 80 },
  { proto: 'tcp', src: POD, dst: '10.96.100.20', dport: 70000 },
  { proto: 'udp', src: 'not-an-ip', dst: '10.96.0.10', dport: 53 },
  { proto: 'udp', src: POD, dst: '10.96.0.10', dport: 53 },
];
writeFileSync(flowsFile, JSON.stringify(flows));

test('trace --flows with bad flows (process): exit 1, one JSON line per flow, each bad one naming its field', () => {
  const got = runCli(['trace', '-q', '-f', 'rules/example', '--flows', flowsFile]);
  assert.equal(got.status, 1, got.stderr);
  assert.equal(got.stderr, '');
  const lines = got.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { flow: unknown; verdict?: string; endpoints?: string[]; error?: { code: string; path?: string } });
  assert.equal(lines.length, flows.length);
  lines.forEach((line, i) => assert.deepEqual(line.flow, flows[i], `line ${i + 1} carries its flow`));
  assert.equal(lines[0]!.verdict, 'DNAT');
  assert.deepEqual(lines[0]!.endpoints, webEndpoints);
  assert.deepEqual(lines[1]!.error && { code: lines[1]!.error.code, path: lines[1]!.error.path }, { code: 'KPSIM_ERR_TRACE_BAD_PACKET', path: 'dport' });
  assert.deepEqual(lines[2]!.error && { code: lines[2]!.error.code, path: lines[2]!.error.path }, { code: 'KPSIM_ERR_TRACE_BAD_PACKET', path: 'src' });
  assert.deepEqual(lines[3]!.endpoints, iptablesEndpoints(join(EXAMPLE, 'iptables-save.v4.txt'), 'kube-system/kube-dns:dns'));
});

test('trace --flows with good flows only: exit 0', async () => {
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify([flows[0], flows[3]]));
  const { exit, text } = await trace({ file: [EXAMPLE], flows: good });
  assert.equal(exit, 0);
  assert.equal(text.trimEnd().split('\n').length, 2);
});

// ------------------------------------------------------------------ errors

interface ErrorCase { name: string; opts: Record<string, unknown>; code: string; message: RegExp }

const notArray = join(dir, 'object.json');
writeFileSync(notArray, '{"src": "10.0.0.1"}');
const notJson = join(dir, 'broken.json');
writeFileSync(notJson, '[{"src": ');

const errorCases: ErrorCase[] = [
  { name: 'no --src', opts: { file: [EXAMPLE], dst: '10.96.100.20', dport: '80' }, code: 'KPSIM_ERR_USAGE_MISSING_FLAG', message: /^--src is required \(or give --flows FILE\)$/ },
  { name: 'no --dport', opts: { file: [EXAMPLE], src: POD, dst: '10.96.100.20' }, code: 'KPSIM_ERR_USAGE_MISSING_FLAG', message: /^--dport is required/ },
  { name: 'neither -f nor a dump', opts: packet(POD, '10.96.100.20', 80), code: 'KPSIM_ERR_USAGE_MISSING_FLAG', message: /^give manifests with -f PATH\.\.\., a live cluster with --kubeconfig FILE \(or --context, --server\), or a dump with --iptables-save FILE or --nft-ruleset FILE$/ },
  { name: '--scheduler with iptables', opts: { file: [EXAMPLE], mode: 'iptables', scheduler: 'lc', ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--scheduler: does not apply to iptables mode$/ },
  { name: '-f and --iptables-save together', opts: { file: [EXAMPLE], iptablesSave: [join(EXAMPLE, 'iptables-save.v4.txt')], ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--iptables-save: give either -f manifests or --iptables-save dumps, not both$/ },
  { name: '--mode ipvs with an iptables dump', opts: { mode: 'ipvs', iptablesSave: [join(EXAMPLE, 'iptables-save.v4.txt')], ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--mode: ipvs needs manifests/ },
  { name: 'an unknown --mode', opts: { file: [EXAMPLE], mode: 'bpf', ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--mode: "bpf" is not one of iptables, ipvs, nftables$/ },
  { name: 'a bad --seed', opts: { file: [EXAMPLE], seed: 'soon', ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--seed: / },
  { name: 'a bad --semantics', opts: { file: [EXAMPLE], semantics: 'magic', ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--semantics: "magic" is not one of kernel, kube-proxy-test$/ },
  { name: 'a bad --node-ip with a dump', opts: { iptablesSave: [join(EXAMPLE, 'iptables-save.v4.txt')], nodeIp: ['192.168.0.300'], ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_USAGE_BAD_FLAG', message: /^--node-ip: "192.168.0.300" is not an IP address$/ },
  { name: 'a missing dump', opts: { iptablesSave: [join(dir, 'nope.rules')], ...packet(POD, '10.96.100.20', 80) }, code: 'KPSIM_ERR_MANIFEST_READ', message: /nope\.rules: cannot read/ },
  { name: '--flows that is not an array', opts: { file: [EXAMPLE], flows: notArray }, code: 'KPSIM_ERR_TRACE_BAD_PACKET', message: /must be a JSON array/ },
  { name: '--flows that is not JSON', opts: { file: [EXAMPLE], flows: notJson }, code: 'KPSIM_ERR_MANIFEST_SYNTAX', message: /not valid JSON/ },
];

for (const c of errorCases) {
  test(`trace error: ${c.name} (${c.code})`, async () => {
    await assert.rejects(trace(c.opts), (e: unknown) => {
      assert.ok(isKpsimError(e), `not a KpsimError: ${String(e)}`);
      assert.equal(e.code, c.code, e.message);
      assert.match(e.message, c.message);
      return true;
    });
  });
}

// ------------------------------------------------------------------ the real process

test('kpsim trace --json (process): exit 0, one JSON line, the golden\'s endpoints', () => {
  const got = runCli(['trace', '-q', '-f', 'rules/example', '--src', POD, '--dst', '10.96.100.20', '--dport', '80', '--json']);
  assert.equal(got.status, 0, got.stderr);
  assert.equal(got.stderr, '');
  const r = JSON.parse(got.stdout) as TraceResult;
  assert.equal(r.verdict, 'DNAT');
  assert.deepEqual(r.endpoints, webEndpoints);
});

const processUsage: { name: string; args: string[]; stderr: string }[] = [
  { name: 'a missing --src', args: ['-f', 'rules/example', '--dst', '10.96.100.20', '--dport', '80'], stderr: 'kpsim: --src is required (or give --flows FILE)\n' },
  { name: '--scheduler with iptables', args: ['-f', 'rules/example', '--mode', 'iptables', '--scheduler', 'lc', '--src', POD, '--dst', '10.96.100.20', '--dport', '80'], stderr: 'kpsim: --scheduler: does not apply to iptables mode\n' },
  { name: 'neither -f nor a dump', args: ['--src', POD, '--dst', '10.96.100.20', '--dport', '80'], stderr: 'kpsim: give manifests with -f PATH..., a live cluster with --kubeconfig FILE (or --context, --server), or a dump with --iptables-save FILE or --nft-ruleset FILE\n' },
];
for (const c of processUsage) {
  test(`kpsim trace (process), ${c.name}: exit 2, the flag named, nothing on stdout`, () => {
    const got = runCli(['trace', '-q', ...c.args]);
    assert.equal(got.status, 2, got.stderr);
    assert.equal(got.stderr, c.stderr);
    assert.equal(got.stdout, '');
  });
}

test('kpsim trace (process), a dump that is not iptables-save text: exit 1, the file named', () => {
  const bad = join(dir, 'bad.rules');
  writeFileSync(bad, '*nat\n-A NOWHERE -j ACCEPT\nCOMMIT\n');
  const got = runCli(['trace', '-q', '--iptables-save', bad, '--src', POD, '--dst', '10.96.100.20', '--dport', '80']);
  assert.equal(got.status, 1, got.stderr);
  assert.ok(got.stderr.startsWith(`kpsim: ${bad}`), got.stderr);
  assert.equal(got.stdout, '');
});
