/**
 * `kpsim serve` as a process with its controllers: started on rules/nginx-deployment with
 * --allocate it serves exactly the rules `kpsim compile` writes for that folder (its golden
 * file); a scale through the Kubernetes API shows in /v1/rules at once; with --data-dir the
 * controllers go on managing what they wrote before a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startServe } from '../helpers/serve-process.js';

const dir = mkdtempSync(join(tmpdir(), 'kpsim-serve-controllers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const serve = startServe;

async function scale(url: string, replicas: number): Promise<void> {
  const res = await fetch(`${url}/apis/apps/v1/namespaces/default/deployments/nginx/scale`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ spec: { replicas } }) });
  assert.equal(res.status, 200, await res.text());
}

/** The endpoints of nginx-service in the served iptables rules (its KUBE-SEP DNATs). */
async function endpointsInRules(url: string): Promise<string[]> {
  const rules = await (await fetch(`${url}/v1/rules?mode=iptables`)).text();
  return [...rules.matchAll(/-A KUBE-SEP-\w+ -m comment --comment default\/nginx-service -m tcp -p tcp -j DNAT --to-destination (\S+)/g)].map((m) => m[1]!).sort();
}

/** With a data dir every write waits for the disk, so the controllers finish a little after the write is answered: polls (bounded). */
async function endpointsOnceThere(url: string, count: number): Promise<string[]> {
  let now: string[] = [];
  for (let i = 0; i < 100; i++) {
    now = await endpointsInRules(url);
    if (now.length === count) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${count} endpoints expected, the rules have ${now.length}: ${now.join(' ')}`);
}

test('serve -f rules/nginx-deployment --allocate: the rules kpsim compile writes, then a scale shows in them at once', async () => {
  const server = await serve(['-f', 'rules/nginx-deployment', '--allocate']);
  try {
    const rules = await (await fetch(`${server.url}/v1/rules?mode=iptables`)).text();
    assert.equal(rules, readFileSync('rules/nginx-deployment/iptables-save.v4.txt', 'utf8'), 'the served cluster starts with the pods and slices of the files');
    assert.equal((await endpointsInRules(server.url)).length, 3);
    await scale(server.url, 5);
    assert.equal((await endpointsInRules(server.url)).length, 5);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('serve --data-dir: after a restart the controllers still manage the pods and slices they wrote', async () => {
  const data = join(dir, 'data');
  const first = await serve(['-f', 'rules/nginx-deployment', '--allocate', '--data-dir', data]);
  let before: string[];
  try {
    await scale(first.url, 4);
    before = await endpointsOnceThere(first.url, 4);
  } finally {
    await first.stop();
  }
  const second = await serve(['--data-dir', data]);
  try {
    assert.deepEqual(await endpointsInRules(second.url), before, 'the same endpoints after the restart');
    await scale(second.url, 2);
    const now = await endpointsOnceThere(second.url, 2);
    assert.ok(now.every((e) => before.includes(e)), 'the pods that stay keep their addresses');
  } finally {
    await second.stop();
  }
});
