/**
 * The cluster-wide commands as a user runs them (the bundle under `npm test`): `kpsim generate`
 * writes the same files for the same seed, `kpsim nodes` answers the same from worker threads
 * as from one thread, `kpsim diff-nodes` says why two nodes differ, `kpsim trace --cluster`
 * prints the entry nodes and deliveries, and their usage errors exit 2 naming the flag.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'kpsim-cluster-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const small = ['--nodes', '8', '--pods', '300', '--services', '40'];
const clusterDir = join(dir, 'cluster');
const generated = runCli(['generate', ...small, '--seed', '7', '-o', clusterDir, '--json']);

/** Every file under a folder with a hash of its bytes. */
function digest(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(folder, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(folder);
  return out;
}

test('generate writes the cluster asked for and says what it wrote', () => {
  assert.equal(generated.status, 0, generated.stderr);
  const summary = JSON.parse(generated.stdout) as { nodes: number; pods: number; services: number; endpoints: number };
  assert.deepEqual({ nodes: summary.nodes, pods: summary.pods, services: summary.services }, { nodes: 8, pods: 300, services: 40 });
  assert.ok(summary.endpoints > 0, generated.stdout);
});

test('generate is deterministic for a seed, and another seed gives another cluster', () => {
  const again = runCli(['generate', ...small, '--seed', '7', '-o', join(dir, 'again'), '--json']);
  const other = runCli(['generate', ...small, '--seed', '8', '-o', join(dir, 'other'), '--json']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(other.status, 0, other.stderr);
  assert.deepEqual(digest(join(dir, 'again')), digest(clusterDir));
  assert.notDeepEqual(digest(join(dir, 'other')), digest(clusterDir));
});

test('nodes from worker threads answers what one thread answers, one summary per Node in input order', () => {
  const threads = runCli(['nodes', '-q', '-f', clusterDir, '--json', '--workers', '2']);
  const one = runCli(['nodes', '-q', '-f', clusterDir, '--json', '--workers', '1']);
  assert.equal(threads.status, 0, threads.stderr);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(threads.stdout, one.stdout);
  const { nodes } = JSON.parse(threads.stdout) as { nodes: { node: string; modes: Record<string, { count: number; unit: string }> }[] };
  assert.deepEqual(nodes.map((n) => n.node), Array.from({ length: 8 }, (_, i) => `node-${String(i + 1).padStart(4, '0')}`));
  for (const n of nodes) {
    assert.ok(n.modes['iptables']!.count > 0 && n.modes['iptables']!.unit === 'rules', JSON.stringify(n));
    assert.ok(n.modes['ipvs']!.count > 0 && n.modes['ipvs']!.unit === 'virtual servers', JSON.stringify(n));
    assert.ok(n.modes['nftables']!.count > 0 && n.modes['nftables']!.unit === 'rules', JSON.stringify(n));
  }
});

test('nodes from standard input: read once, the threads answer as they do from the files', () => {
  const files = readdirSync('rules/example').filter((f) => f.endsWith('.yaml')).sort();
  const input = files.map((f) => readFileSync(join('rules/example', f), 'utf8')).join('\n---\n');
  const piped = runCli(['nodes', '-q', '-f', '-', '--json', '--workers', '2'], { input });
  const fromFiles = runCli(['nodes', '-q', '-f', 'rules/example', '--json', '--workers', '1']);
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(fromFiles.status, 0, fromFiles.stderr);
  const nodes = (JSON.parse(piped.stdout) as { nodes: { node: string }[] }).nodes;
  assert.ok(nodes.length >= 2, piped.stdout);
  assert.equal(piped.stdout, fromFiles.stdout);
});

test('nodes prints one table row per node', () => {
  const got = runCli(['nodes', '-q', '-f', clusterDir, '--mode', 'iptables']);
  assert.equal(got.status, 0, got.stderr);
  const lines = got.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^NODE\s+ZONE\s+ADDRESSES\s+IPTABLES RULES\s+LOCAL ENDPOINTS/);
  assert.equal(lines.filter((l) => l.startsWith('node-')).length, 8, got.stdout);
  assert.equal(lines.at(-1), '8 nodes');
});

test('diff-nodes says why two nodes differ and lists the lines only one has', () => {
  const got = runCli(['diff-nodes', 'node-0001', 'node-0002', '-q', '-f', clusterDir, '--json']);
  assert.equal(got.status, 0, got.stderr);
  const diff = JSON.parse(got.stdout) as { reasons: { kind: string }[]; onlyA: string[]; onlyB: string[] };
  assert.ok(diff.reasons.some((r) => r.kind === 'addresses'), got.stdout);
  assert.ok(diff.reasons.some((r) => r.kind === 'localEndpoints'), got.stdout);
  assert.ok(diff.onlyA.length > 0 && diff.onlyB.length > 0, got.stdout);
  const human = runCli(['diff-nodes', 'node-0001', 'node-0002', '-q', '-f', clusterDir]);
  assert.match(human.stdout, /^node-0001 and node-0002, iptables mode: \d+ lines only on node-0001, \d+ only on node-0002\nwhy:\n  addresses: /);
  const nft = runCli(['diff-nodes', 'node-0001', 'node-0002', '-q', '-f', clusterDir, '--mode', 'nftables']);
  assert.equal(nft.status, 0, nft.stderr);
  assert.match(nft.stdout, /^node-0001 and node-0002, nftables mode: \d+ lines only on node-0001, \d+ only on node-0002\nwhy:\n  addresses: /);
});

test('trace --cluster: the ingress load balancer (externalTrafficPolicy Local, a pod on every node) enters every node and stays there', () => {
  const services = JSON.parse(readFileSync(join(clusterDir, 'services.json'), 'utf8')) as { items: { metadata: { name: string }; status: { loadBalancer: { ingress?: { ip: string }[] } } }[] };
  const vip = services.items.find((s) => s.metadata.name === 'ingress-controller')!.status.loadBalancer.ingress![0]!.ip;
  const json = runCli(['trace', '--cluster', '-q', '-f', clusterDir, '--src', '203.0.113.9', '--dst', vip, '--dport', '80', '--json']);
  assert.equal(json.status, 0, json.stderr);
  const r = JSON.parse(json.stdout) as { verdict: string; nodes: { node: string; share: number; healthCheck: { status: number } }[]; deliveries: { crossNode: boolean; sourceSeenByPod: string }[] };
  assert.equal(r.verdict, 'DNAT');
  assert.equal(r.nodes.length, 8);
  assert.ok(r.nodes.every((n) => n.healthCheck.status === 200 && Math.abs(n.share - 1 / 8) < 1e-12), json.stdout);
  assert.ok(r.deliveries.every((d) => !d.crossNode && d.sourceSeenByPod === '203.0.113.9'), json.stdout);
  const human = runCli(['trace', '--cluster', '-q', '-f', clusterDir, '--src', '203.0.113.9', '--dst', vip, '--dport', '80']);
  assert.match(human.stdout, /^client 203\.0\.113\.9 \(outside the cluster\), iptables mode\n/);
  assert.match(human.stdout, /\nentry nodes \(8\):\n  node-0001  share 0\.125  health check 200 \(1 local endpoint\)  DNAT to 1 endpoint\n/);
  assert.match(human.stdout, /\ndeliveries:\n  ENTRY NODE\s+ENDPOINT\s+NODE\s+CROSS NODE\s+SOURCE SEEN BY POD\s+P\s+REPLY\n/);
  const nft = runCli(['trace', '--cluster', '-q', '-f', clusterDir, '--src', '203.0.113.9', '--dst', vip, '--dport', '80', '--json', '--mode', 'nftables']);
  assert.equal(nft.status, 0, nft.stderr);
  const n = JSON.parse(nft.stdout) as typeof r & { endpoints: string[]; probabilities: Record<string, number> };
  const i = JSON.parse(json.stdout) as typeof n;
  assert.deepEqual([n.verdict, n.nodes.map((x) => [x.node, x.share]), n.deliveries, n.probabilities], [i.verdict, i.nodes.map((x) => [x.node, x.share]), i.deliveries, i.probabilities], 'nftables mode answers as iptables mode');
});

interface UsageCase {
  readonly name: string;
  readonly args: string[];
  readonly status: number;
  readonly stderr: RegExp;
}

const usage: UsageCase[] = [
  { name: 'generate without -o', args: ['generate', ...small], status: 2, stderr: /^kpsim: -o DIR is required/ },
  { name: 'generate into a folder that is not empty', args: ['generate', ...small, '-o', dir], status: 2, stderr: /^kpsim: -o: .* is not empty/ },
  { name: 'generate more pods than 110 a node', args: ['generate', '--nodes', '2', '--pods', '300', '--services', '5', '-o', join(dir, 'x')], status: 2, stderr: /--pods: 300 is not a whole number from 0 to 220/ },
  { name: 'nodes with a bad --workers', args: ['nodes', '-f', 'rules/example', '--workers', '0'], status: 2, stderr: /--workers: "0" is not a whole number from 1 to 256/ },
  { name: 'nodes with --node', args: ['nodes', '-f', 'rules/example', '--node', 'node-a'], status: 2, stderr: /--node: kpsim nodes takes every Node of the input as it is/ },
  { name: 'nodes with --node-ip', args: ['nodes', '-f', 'rules/example', '--node-ip', '10.0.0.9'], status: 2, stderr: /--node-ip: kpsim nodes takes every Node of the input as it is/ },
  { name: 'nodes with an unknown --mode', args: ['nodes', '-f', 'rules/example', '--mode', 'iptables,nope'], status: 2, stderr: /--mode: "nope" is not one of/ },
  { name: 'diff-nodes with its nodes after -f, which takes them as paths', args: ['diff-nodes', '-q', '-f', 'rules/example', 'node-a', 'node-b'], status: 2, stderr: /^error: missing required argument 'a'\nkpsim: -f took every word after it as a path \(rules\/example, node-a, node-b\): give the two nodes before -f, as in kpsim diff-nodes NODE-A NODE-B -f PATH\n/ },
  { name: 'diff-nodes without its nodes: no word about -f', args: ['diff-nodes', '-q', '-f', 'rules/example'], status: 2, stderr: /^error: missing required argument 'a'\n\(add --help for usage\)\n$/ },
  { name: 'diff-nodes with an unknown node', args: ['diff-nodes', 'node-a', 'node-z', '-q', '-f', 'rules/example'], status: 1, stderr: /node "node-z" is not in the cluster/ },
  { name: '--via without --cluster', args: ['trace', '-q', '-f', 'rules/example', '--src', '10.244.1.5', '--dst', '10.96.100.20', '--dport', '80', '--via', 'node-a'], status: 2, stderr: /--via: needs --cluster/ },
  { name: 'trace --cluster with a dump', args: ['trace', '--cluster', '--iptables-save', 'x', '--src', '10.244.1.5', '--dst', '10.96.100.20', '--dport', '80'], status: 2, stderr: /--iptables-save: --cluster traces through manifests/ },
  { name: 'trace --cluster --via an unknown node', args: ['trace', '--cluster', '-q', '-f', 'rules/example', '--src', '203.0.113.9', '--dst', '10.96.100.20', '--dport', '80', '--via', 'node-z'], status: 1, stderr: /--via: node "node-z" is not in the cluster/ },
  { name: 'trace --cluster --sample-only', args: ['trace', '--cluster', '-q', '-f', 'rules/example', '--src', '10.244.1.5', '--dst', '10.96.100.20', '--dport', '80', '--seed', '1', '--sample-only'], status: 2, stderr: /--sample-only: a cluster-wide trace weighs every outcome on every entry node: use --seed N alone/ },
  { name: 'trace --cluster from outside to a ClusterIP', args: ['trace', '--cluster', '-q', '-f', 'rules/example', '--src', '203.0.113.9', '--dst', '10.96.100.20', '--dport', '80'], status: 2, stderr: /is a ClusterIP: an outside client reaches it only through a route to some node; name that node with --via NODE/ },
];

for (const c of usage) {
  test(`usage: ${c.name}`, () => {
    const got = runCli(c.args);
    assert.equal(got.status, c.status, `stdout: ${got.stdout}\nstderr: ${got.stderr}`);
    assert.match(got.stderr, c.stderr);
  });
}
