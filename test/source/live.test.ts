/**
 * Live clusters as a source, against kpsim's own API server reached as a real cluster would be:
 * HTTPS with a certificate from a test CA that the kubeconfig carries, and a bearer token. A live
 * cluster gives the same rules and traces as its manifests; `dump` writes manifests that replay
 * the same; the kube-proxy ConfigMap's configuration is used when --config is not given; and an
 * unreachable server, an untrusted certificate, 401 and 403 are one line each, exit 1.
 * Skipped, with the reason, where openssl is missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type StartedApi, startKubeApi } from '../helpers/kube-api.js';
import { type CliResult, runCliAsync } from '../helpers/run-cli.js';

const work = mkdtempSync(join(tmpdir(), 'kpsim-live-'));
after(() => rmSync(work, { recursive: true, force: true }));
const opensslMissing = spawnSync('openssl', ['version']).status === 0 ? undefined : 'openssl is not installed (needed to make the test CA)';

function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: work, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 signed by it (EC keys: fast to make). */
function makeCA(name: string): { caCert: string; serverCert: string; serverKey: string } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', `${name}-ca.key`, '-out', `${name}-ca.crt`, '-days', '2', '-subj', `/CN=${name} test CA`);
  openssl('req', ...ec, '-keyout', `${name}-server.key`, '-out', `${name}-server.csr`, '-subj', '/CN=127.0.0.1');
  writeFileSync(join(work, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', `${name}-server.csr`, '-CA', `${name}-ca.crt`, '-CAkey', `${name}-ca.key`, '-CAcreateserial', '-out', `${name}-server.crt`, '-days', '2', '-extfile', 'san.cnf');
  const read = (f: string): string => readFileSync(join(work, f), 'utf8');
  return { caCert: read(`${name}-ca.crt`), serverCert: read(`${name}-server.crt`), serverKey: read(`${name}-server.key`) };
}

function kubeconfig(file: string, server: string, caCert: string, token: string): string {
  const path = join(work, file);
  const ca = Buffer.from(caCert).toString('base64');
  writeFileSync(
    path,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: kpsim\n  cluster: {server: "${server}", certificate-authority-data: ${ca}}\nusers:\n- name: tester\n  user: {token: ${token}}\ncontexts:\n- name: test\n  context: {cluster: kpsim, user: tester}\n- name: other\n  context: {cluster: kpsim, user: tester}\ncurrent-context: other\n`,
  );
  return path;
}

/** The environment of the kpsim processes: a home of their own, no KUBECONFIG of the machine. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, HOME: work, ...extra };
  if (!('KUBECONFIG' in extra)) delete e['KUBECONFIG'];
  return e;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.status, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

const packet = ['--src', '10.244.1.20', '--dst', '10.96.100.20', '--dport', '80', '--json'];

describe('a live cluster over HTTPS with a bearer token', { skip: opensslMissing }, () => {
  let api: StartedApi;
  /** Answers 403 to everything, as RBAC answers a user without list rights. */
  let forbidding: StartedApi;
  let good: string;
  let configMapServed = false;
  before(async () => {
    const certs = makeCA('good');
    const proxyConfig = readFileSync('rules/example/kube-proxy.yaml', 'utf8');
    api = await startKubeApi({
      files: ['rules/example'],
      token: 'sesame',
      https: { key: certs.serverKey, cert: certs.serverCert },
      prepare: (app) => {
        // kubeadm's kube-proxy ConfigMap, which kpsim's own API does not keep.
        app.get('/api/v1/namespaces/kube-system/configmaps/kube-proxy', async () => {
          configMapServed = true;
          return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kube-proxy', namespace: 'kube-system' }, data: { 'config.conf': proxyConfig, kubeconfig: 'apiVersion: v1\nkind: Config\n' } };
        });
      },
    });
    good = kubeconfig('good.yaml', api.url, certs.caCert, 'sesame');
    forbidding = await startKubeApi({
      https: { key: certs.serverKey, cert: certs.serverCert },
      prepare: (app) =>
        app.addHook('onRequest', async (_request, reply) => {
          await reply.status(403).send({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'services is forbidden: User "nobody" cannot list resource "services" in API group "" at the cluster scope' });
        }),
    });
  });
  after(async () => {
    await api.close();
    await forbidding.close();
  });

  test('compile: the live cluster gives the rules its manifests give (the ConfigMap supplying the configuration)', async () => {
    const fromFiles = ok(await runCliAsync(['compile', '-q', '-f', 'rules/example'], { env: env() }), 'compile -f');
    const live = ok(await runCliAsync(['compile', '-q', '--kubeconfig', good, '--context', 'test'], { env: env() }), 'compile --kubeconfig');
    assert.ok(configMapServed, 'the kube-proxy ConfigMap was read');
    assert.equal(live, fromFiles);
  });

  test('trace: KUBECONFIG is honoured, and the answer is the manifests\' answer', async () => {
    const fromFiles = JSON.parse(ok(await runCliAsync(['trace', '-q', '-f', 'rules/example', ...packet], { env: env() }), 'trace -f')) as unknown;
    // Two files in KUBECONFIG, merged as kubectl merges them; the context comes from the second.
    const elsewhere = join(work, 'elsewhere.yaml');
    writeFileSync(elsewhere, 'apiVersion: v1\nkind: Config\nclusters:\n- name: far\n  cluster: {server: "https://192.0.2.1:6443"}\nusers:\n- name: far\n  user: {}\ncontexts:\n- name: far\n  context: {cluster: far, user: far}\ncurrent-context: far\n');
    const live = JSON.parse(ok(await runCliAsync(['trace', '-q', '--context', 'test', '--node', 'node-a', ...packet], { env: env({ KUBECONFIG: `${elsewhere}:${good}` }) }), 'trace --context')) as unknown;
    assert.deepEqual(live, fromFiles);
  });

  test('nodes and trace --cluster: every node of the live cluster, as the manifests give them (read once for the worker threads)', async () => {
    // nftables mode left out: a live cluster is read without its ServiceCIDRs (src/source/live.ts),
    // which rules/example has and nftables mode writes its cluster-ips-check rules from.
    const nodesFromFiles = ok(await runCliAsync(['nodes', '-q', '-f', 'rules/example', '--mode', 'iptables,ipvs', '--json', '--workers', '1'], { env: env() }), 'nodes -f');
    const nodesLive = ok(await runCliAsync(['nodes', '-q', '--kubeconfig', good, '--context', 'test', '--mode', 'iptables,ipvs', '--json', '--workers', '2'], { env: env() }), 'nodes --kubeconfig');
    assert.equal(nodesLive, nodesFromFiles);
    const cluster = ['trace', '--cluster', '-q', '--src', '10.244.1.5', '--dst', '10.96.100.20', '--dport', '80', '--json'];
    const traceFromFiles = JSON.parse(ok(await runCliAsync([...cluster, '-f', 'rules/example'], { env: env() }), 'trace --cluster -f')) as unknown;
    const traceLive = JSON.parse(ok(await runCliAsync([...cluster, '--kubeconfig', good, '--context', 'test'], { env: env() }), 'trace --cluster --kubeconfig')) as unknown;
    assert.deepEqual(traceLive, traceFromFiles);
  });

  test('dump writes manifests that replay to the same rules', async () => {
    const out = join(work, 'dump');
    const dumped = ok(await runCliAsync(['dump', '--kubeconfig', good, '-o', out], { env: env() }), 'dump');
    assert.match(dumped, /^wrote 9 Services, 8 EndpointSlices, 2 Nodes, 1 KubeProxyConfiguration to /);
    assert.deepEqual(readdirSync(out).sort(), ['endpointslices.yaml', 'kube-proxy-config.yaml', 'nodes.yaml', 'services.yaml']);
    const replayed = ok(await runCliAsync(['compile', '-q', '-f', out], { env: env() }), 'compile -f dump');
    const fromFiles = ok(await runCliAsync(['compile', '-q', '-f', 'rules/example'], { env: env() }), 'compile -f');
    assert.equal(replayed, fromFiles);
    assert.doesNotMatch(readFileSync(join(out, 'services.yaml'), 'utf8'), /managedFields/);
  });

  const failures: { name: string; args: () => string[]; code: string; stderr: RegExp }[] = [
    {
      name: 'an unreachable server',
      args: () => ['--server', 'https://127.0.0.1:1', '--kubeconfig', good],
      code: 'KPSIM_ERR_SOURCE_UNREACHABLE',
      stderr: /^kpsim: cannot reach the API server at https:\/\/127\.0\.0\.1:1: connection refused \(ECONNREFUSED\)\n$/,
    },
    {
      name: 'a certificate from a CA the kubeconfig does not hold',
      args: () => ['--kubeconfig', kubeconfig('bad-ca.yaml', api.url, makeCA('other').caCert, 'sesame')],
      code: 'KPSIM_ERR_SOURCE_TLS',
      stderr: /^kpsim: the API server at https:\/\/127\.0\.0\.1:\d+ has a certificate kpsim cannot trust: .* \([A-Z_]+\); the kubeconfig must hold its CA \(certificate-authority-data\)\n$/,
    },
    {
      name: 'a wrong token (401)',
      args: () => ['--kubeconfig', kubeconfig('bad-token.yaml', api.url, readFileSync(join(work, 'good-ca.crt'), 'utf8'), 'wrong')],
      code: 'KPSIM_ERR_SOURCE_AUTH',
      stderr: /^kpsim: the API server at https:\/\/127\.0\.0\.1:\d+ refused the credentials: 401 Unauthorized\n$/,
    },
    {
      name: 'a user without rights (403)',
      args: () => ['--kubeconfig', kubeconfig('forbidden.yaml', forbidding.url, readFileSync(join(work, 'good-ca.crt'), 'utf8'), 'nobody')],
      code: 'KPSIM_ERR_SOURCE_AUTH',
      stderr: /^kpsim: the API server at https:\/\/127\.0\.0\.1:\d+ refused the credentials: 403 Forbidden: services is forbidden: User "nobody" cannot list resource "services"/,
    },
    {
      name: 'a kubeconfig that does not exist',
      args: () => ['--kubeconfig', join(work, 'nope.yaml')],
      code: 'KPSIM_ERR_SOURCE_KUBECONFIG',
      stderr: /^kpsim: .*nope\.yaml: cannot read: no such file\n$/,
    },
    {
      name: 'a context the kubeconfig does not have',
      args: () => ['--kubeconfig', good, '--context', 'prod'],
      code: 'KPSIM_ERR_SOURCE_KUBECONFIG',
      stderr: /^kpsim: .*good\.yaml: has no context "prod" \(contexts: test, other\)\n$/,
    },
  ];
  for (const f of failures) {
    test(`${f.name}: one line, exit 1`, async () => {
      const got = await runCliAsync(['compile', '-q', ...f.args()], { env: env() });
      assert.equal(got.status, 1, got.stderr);
      assert.match(got.stderr, f.stderr);
      assert.equal(got.stderr.split('\n').filter((l) => l !== '').length, 1, got.stderr);
    });
  }

  test('-f and a live cluster together are a usage error', async () => {
    const got = await runCliAsync(['compile', '-f', 'rules/example', '--kubeconfig', good], { env: env() });
    assert.equal(got.status, 2, got.stderr);
    assert.match(got.stderr, /-f: give -f manifests or a live cluster/);
  });
});
