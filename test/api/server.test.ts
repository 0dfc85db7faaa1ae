/**
 * The JSON API answers as the CLI does, maps error codes to HTTP statuses, and serves on a real
 * loopback socket.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildApiServer } from '../../src/api/server.js';
import { clusterFromManifests } from '../../src/manifest/load.js';

function exampleManifests() {
  const dir = 'rules/example';
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), 'utf8') }));
}

const cluster = clusterFromManifests(exampleManifests());
const app = buildApiServer({ cluster });
after(() => app.close());

test('GET /v1/cluster lists the node and its service ports', async () => {
  const res = await app.inject({ method: 'GET', url: '/v1/cluster' });
  assert.equal(res.statusCode, 200);
  const body = res.json() as { node: { name: string }; families: number[]; servicePorts: { name: string; reachable: string[] }[] };
  assert.equal(body.node.name, 'node-a');
  assert.deepEqual(body.families, [4, 6]);
  const web = body.servicePorts.find((s) => s.name === 'default/web:http');
  assert.deepEqual(web?.reachable, ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080']);
});

interface TraceCase {
  name: string;
  body: Record<string, unknown>;
  status: number;
  want: Record<string, unknown>;
}

const cases: TraceCase[] = [
  {
    name: 'ClusterIP from a pod: DNAT to three endpoints, no masquerade',
    body: { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 },
    status: 200,
    want: { verdict: 'DNAT', endpoints: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'], masquerade: false },
  },
  {
    name: 'ClusterIP from outside the pod CIDR is masqueraded',
    body: { src: '192.168.0.99', dst: '10.96.100.20', dport: 80 },
    status: 200,
    want: { verdict: 'DNAT', endpoints: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'], masquerade: true },
  },
  {
    name: 'a service with no endpoints is REJECTed',
    body: { src: '10.244.1.20', dst: '10.96.40.50', dport: 80 },
    status: 200,
    want: { verdict: 'REJECT', endpoints: [], masquerade: false },
  },
  {
    name: 'IPVS mode picks among the same endpoints',
    body: { src: '10.244.1.20', dst: '10.96.100.20', dport: 80, mode: 'ipvs' },
    status: 200,
    want: { verdict: 'DNAT', endpoints: ['10.244.0.5:8080', '10.244.1.6:8080', '10.244.1.7:8080'] },
  },
  {
    name: 'a bad port is a 400 naming the field',
    body: { src: '10.244.1.20', dst: '10.96.100.20', dport: 70000 },
    status: 400,
    want: { code: 'KPSIM_ERR_API_BAD_REQUEST', message: '/dport must be <= 65535' },
  },
  {
    name: 'a bad address is a 400 with the packet field',
    body: { src: 'nope', dst: '10.96.100.20', dport: 80 },
    status: 400,
    want: { code: 'KPSIM_ERR_TRACE_BAD_PACKET', path: 'packet.src' },
  },
  {
    name: 'posted manifests with an unknown node are a 404',
    body: { src: '10.0.0.1', dst: '10.96.0.5', dport: 80, node: 'nope', manifests: [{ file: 'svc.yaml', text: 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80, protocol: TCP}]}\n' }] },
    status: 404,
    want: { code: 'KPSIM_ERR_CONFIG_UNKNOWN_NODE' },
  },
  {
    name: 'posted manifests with a duplicate ClusterIP are a 409',
    body: {
      src: '10.0.0.1',
      dst: '10.96.0.5',
      dport: 80,
      manifests: [
        { file: 'a.yaml', text: 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80, protocol: TCP}]}\n' },
        { file: 'b.yaml', text: 'apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 80, protocol: TCP}]}\n' },
      ],
    },
    status: 409,
    want: { code: 'KPSIM_ERR_MODEL_DUPLICATE', file: 'b.yaml', object: 'Service default/b', path: 'spec.clusterIPs[0]' },
  },
];

for (const c of cases) {
  test(`POST /v1/trace: ${c.name}`, async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/trace', payload: c.body });
    assert.equal(res.statusCode, c.status, res.body);
    const body = res.json() as Record<string, unknown>;
    for (const [key, value] of Object.entries(c.want)) assert.deepEqual(body[key], value, `${key} in ${res.body.slice(0, 500)}`);
  });
}

test('POST /v1/trace/batch answers each flow, errors in place', async () => {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/trace/batch',
    payload: { flows: [{ src: '10.244.1.20', dst: '10.96.40.50', dport: 80 }, { src: '10.244.1.20', dst: 'fd00::zz', dport: 80 }] },
  });
  assert.equal(res.statusCode, 200);
  const body = res.json() as { verdict?: string; error?: { code: string } }[];
  assert.deepEqual(body.map((r) => r.verdict ?? r.error?.code), ['REJECT', 'KPSIM_ERR_TRACE_BAD_PACKET']);
});

test('GET /v1/rules gives the same text as the compiler, in both modes', async () => {
  const iptables = await app.inject({ method: 'GET', url: '/v1/rules?family=4' });
  assert.equal(iptables.statusCode, 200);
  assert.match(iptables.body, /^\*filter\n[\s\S]*-A KUBE-SERVICES -m comment --comment "default\/empty:http has no endpoints"[\s\S]*COMMIT\n$/);
  const ipvs = await app.inject({ method: 'GET', url: '/v1/rules?family=4&mode=ipvs' });
  assert.match(ipvs.body, /^IP Virtual Server version 1\.2\.1 \(size=4096\)\n/);
  const bad = await app.inject({ method: 'GET', url: '/v1/rules?mode=nft' });
  assert.equal(bad.statusCode, 400);
});

test('serves on a real loopback socket', async () => {
  const server = buildApiServer({ cluster });
  await server.listen({ port: 0, host: '127.0.0.1' });
  try {
    const address = server.server.address();
    assert.ok(address !== null && typeof address === 'object');
    const res = await fetch(`http://127.0.0.1:${address.port}/v1/trace`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ src: '10.244.1.20', dst: '10.96.0.10', dport: 53, proto: 'udp' }),
    });
    const body = (await res.json()) as { verdict: string; endpoints: string[] };
    assert.deepEqual([res.status, body.verdict, body.endpoints], [200, 'DNAT', ['10.244.0.2:53', '10.244.1.3:53']]);
  } finally {
    await server.close();
  }
});
