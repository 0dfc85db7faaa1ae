/**
 * Manifests on standard input (-f -, as kubectl apply -f - reads them), so that
 * `helm template ... | kpsim trace -f - --allocate ...` works; and the --nodes flag.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../helpers/run-cli.js';

const guide = ['rules/nginx-deployment/deployment.yaml', 'rules/nginx-deployment/service.yaml'].map((f) => readFileSync(f, 'utf8')).join('---\n');

test('trace -f - --allocate: the guide\'s Deployment and Service on stdin, DNAT to its three pods', () => {
  const got = runCli(['trace', '-f', '-', '--allocate', '--node-ip', '192.168.0.2', '--src', '10.244.0.9', '--dst', '10.96.0.2', '--dport', '80', '--json'], { input: guide });
  assert.equal(got.status, 0, got.stderr);
  const result = JSON.parse(got.stdout) as { verdict: string; endpoints: string[] };
  assert.deepEqual({ verdict: result.verdict, endpoints: result.endpoints }, { verdict: 'DNAT', endpoints: ['10.244.0.2:8080', '10.244.1.2:8080', '10.244.2.2:8080'] });
  assert.match(got.stderr, /^warning: the input has no Node objects: --allocate created 3 \(node-1 192\.168\.0\.2 pods 10\.244\.0\.0\/24;/m);
});

test('compile -f - gives what compile -f FOLDER gives for the same manifests', () => {
  const fromStdin = runCli(['compile', '-q', '-f', '-', '--allocate'], { input: guide });
  assert.equal(fromStdin.status, 0, fromStdin.stderr);
  assert.equal(fromStdin.stdout, readFileSync('rules/nginx-deployment/iptables-save.v4.txt', 'utf8'));
});

test('compile -f - of the same manifests as a JSON List, one item a line or pretty-printed', () => {
  const items = parseAllDocuments(guide).map((doc) => doc.toJS() as unknown);
  const oneALine = `{"apiVersion":"v1","items":[\n${items.map((item) => JSON.stringify(item)).join(',\n')}\n],"kind":"List"}\n`;
  for (const input of [oneALine, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }, null, 4)]) {
    const fromStdin = runCli(['compile', '-q', '-f', '-', '--allocate'], { input });
    assert.equal(fromStdin.status, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout, readFileSync('rules/nginx-deployment/iptables-save.v4.txt', 'utf8'));
  }
});

test('problems on stdin are named <stdin>', () => {
  const got = runCli(['compile', '-f', '-'], { input: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template: {metadata: {labels: {app: web}}}\n' });
  assert.equal(got.status, 1);
  assert.equal(got.stderr, 'kpsim: <stdin>: Deployment default/web: spec.selector: Required value\n');
  const list = runCli(['compile', '-f', '-'], { input: '{"apiVersion":"v1","items":[\n{"apiVersion":"v1","kind":"Service"},\n{"apiVersion":"v1","kind":"Node","metadata":tru}\n],"kind":"List"}\n' });
  assert.equal(list.status, 1);
  assert.match(list.stderr, /^kpsim: <stdin>: not valid JSON: /);
});

interface UsageCase {
  name: string;
  args: string[];
  status: number;
  stderr: RegExp;
}

const usageCases: UsageCase[] = [
  { name: 'stdin twice', args: ['compile', '-f', '-', '-f', '-'], status: 2, stderr: /^kpsim: -f -: standard input can be read only once\n$/ },
  { name: 'a bad --nodes', args: ['compile', '-f', '-', '--allocate', '--nodes', 'many'], status: 2, stderr: /^kpsim: --nodes: "many" is not a whole number from 0 to 100000\n$/ },
  { name: '--nodes without --allocate is said to do nothing', args: ['compile', '-f', '-', '--nodes', '5'], status: 0, stderr: /^warning: --nodes is ignored without --allocate \(which creates the nodes\)$/m },
];

for (const c of usageCases) {
  test(`-f - and --nodes: ${c.name}`, () => {
    const got = runCli(c.args, { input: guide });
    assert.equal(got.status, c.status, got.stderr);
    assert.match(got.stderr, c.stderr);
  });
}

test('--nodes 5: five nodes, the Deployment spread over them', () => {
  const got = runCli(['compile', '-f', '-', '--allocate', '--nodes', '5'], { input: guide });
  assert.equal(got.status, 0, got.stderr);
  assert.match(got.stderr, /created 5 \(node-1 .*node-5 192\.168\.0\.6 pods 10\.244\.4\.0\/24\)/);
});
