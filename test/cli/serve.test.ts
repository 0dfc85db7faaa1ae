/**
 * `kpsim serve` as a user runs it: a real process that seeds its --data-dir from -f, requires
 * its --token-file's token, answers the Kubernetes API and the JSON API from the same live
 * state, and after a restart serves what was written before it; the folder replays with -f.
 * Usage errors (another address without a token, half the TLS flags) exit 2 before binding.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startServe } from '../helpers/serve-process.js';
import { runCliAsync } from '../helpers/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'kpsim-serve-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tokenFile = join(dir, 'token');
writeFileSync(tokenFile, 'sesame\n');
const dataDir = join(dir, 'data');

const serve = startServe;

const auth = { authorization: 'Bearer sesame' };

test('serve: token required, writes kept in --data-dir across a restart, the JSON API sees them', async () => {
  const first = await serve(['-f', 'rules/example', '--data-dir', dataDir, '--token-file', tokenFile]);
  try {
    assert.equal((await fetch(`${first.url}/api/v1/services`)).status, 401);
    assert.equal((await fetch(`${first.url}/version`)).status, 200, '/version stays open (the kubectl dispatcher asks it first)');
    const created = await fetch(`${first.url}/api/v1/namespaces/default/services`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/yaml' },
      body: 'apiVersion: v1\nkind: Service\nmetadata: {name: added}\nspec:\n  clusterIP: 10.96.77.7\n  ports: [{port: 80}]\n',
    });
    assert.equal(created.status, 201, await created.text());
    const trace = (await (await fetch(`${first.url}/v1/trace`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ src: '10.244.1.20', dst: '10.96.77.7', dport: 80 }) })).json()) as { verdict: string };
    assert.equal(trace.verdict, 'REJECT', 'the new service (no endpoints) is in the live rules');
  } finally {
    assert.equal(await first.stop(), 0, 'SIGTERM stops it cleanly');
  }
  const second = await serve(['--data-dir', dataDir, '--token-file', tokenFile]);
  try {
    const got = await fetch(`${second.url}/api/v1/namespaces/default/services/added`, { headers: auth });
    assert.equal(got.status, 200, 'what was written before the restart is served');
    const web = await fetch(`${second.url}/api/v1/namespaces/default/services/web`, { headers: auth });
    assert.equal(web.status, 200, 'and the seeds');
  } finally {
    await second.stop();
  }
  const replay = await runCliAsync(['compile', '-q', '-f', dataDir, '--config', 'rules/example/kube-proxy.yaml']);
  assert.equal(replay.status, 0, replay.stderr);
  assert.match(replay.stdout, /--comment "default\/added has no endpoints"/, 'the data dir replays with -f');
});

const usage: { name: string; args: string[]; stderr: RegExp }[] = [
  { name: 'another address without a token', args: ['--host', '192.0.2.1'], stderr: /--host: 192\.0\.2\.1 is not a loopback address: serving another address needs --token-file/ },
  { name: 'a certificate without its key', args: ['--tls-cert-file', 'x.pem'], stderr: /give both --tls-cert-file and --tls-private-key-file/ },
];
for (const c of usage) {
  test(`serve refuses ${c.name} (exit 2)`, async () => {
    const got = await runCliAsync(['serve', '-f', 'rules/example', ...c.args]);
    assert.equal(got.status, 2, got.stderr);
    assert.match(got.stderr, c.stderr);
  });
}
