/**
 * The web page's routes, without a browser: the page and its files, the rules graph of every
 * mode (each chain's rules exactly the compiled text's, every edge a jump the text makes), the
 * search, the IPVS table as JSON, traces from another node, the cluster view's fields, and
 * errors that name the field.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { buildApiServer } from '../../src/api/server.js';
import { defaultWebRoot } from '../../src/api/web.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { manifestObjects } from '../helpers/kube-api.js';
import { readFileSync } from 'node:fs';

const files = manifestObjects(['rules/example']).map((o) => o.file);
const cluster = clusterFromManifests([...new Set(files)].map((file) => ({ file, text: readFileSync(file, 'utf8') })));
const app = buildApiServer({ cluster });
after(() => app.close());

async function get<T>(url: string): Promise<T> {
  const res = await app.inject({ url });
  assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  return res.json() as T;
}

interface Summary { id: string; table: string; name: string; rules: number; children: number }
interface ChainDetail { chain: Summary; rules: { text: string; to: string[] }[]; children: Summary[]; more: number; path: string[] }

test('the page and its bundle are served', { skip: defaultWebRoot() === undefined ? 'the page is not built (npm run build)' : false }, async () => {
  for (const [url, type] of [['/', 'text/html'], ['/web/app.js', 'text/javascript'], ['/web/app.css', 'text/css']] as const) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 200, url);
    assert.match(String(res.headers['content-type']), new RegExp(type), url);
  }
  assert.equal((await app.inject({ url: '/web/../package.json' })).statusCode, 404);
});

/** "-A CHAIN ..." lines of one table of an iptables-save text. */
function iptablesRules(text: string, table: string, chain: string): string[] {
  const start = text.indexOf(`*${table}\n`);
  const section = text.slice(start, text.indexOf('COMMIT', start));
  return section.split('\n').filter((l) => l.startsWith(`-A ${chain} `));
}

const modes = [
  { mode: 'iptables', rulesUrl: '/v1/rules?mode=iptables&family=4' },
  { mode: 'ipvs', rulesUrl: '/v1/rules?mode=ipvs&format=iptables&family=4' },
  { mode: 'nftables', rulesUrl: '/v1/rules?mode=nftables&family=4' },
];

for (const { mode, rulesUrl } of modes) {
  test(`${mode} mode: every chain reachable from the roots, with the compiled rules and jumps`, async () => {
    const graph = await get<{ family: number; chains: number; rules: number; roots: Summary[] }>(`/v1/graph?mode=${mode}&family=4`);
    assert.equal(graph.family, 4);
    const text = (await app.inject({ url: rulesUrl })).body;
    const seen = new Map<string, ChainDetail>();
    const queue = graph.roots.map((r) => r.id);
    while (queue.length > 0) {
      const id = queue.shift()!;
      if (seen.has(id)) continue;
      const detail = await get<ChainDetail>(`/v1/graph/chain?mode=${mode}&family=4&id=${encodeURIComponent(id)}&limit=10000`);
      seen.set(id, detail);
      queue.push(...detail.children.map((c) => c.id));
      assert.equal(detail.rules.length, detail.chain.rules, id);
      assert.deepEqual(detail.path[detail.path.length - 1], id);
      if (mode !== 'nftables') {
        assert.deepEqual(detail.rules.map((r) => r.text), iptablesRules(text, detail.chain.table, detail.chain.name), `rules of ${id}`);
        for (const r of detail.rules) {
          const target = /-[jg] (\S+)/.exec(r.text)?.[1];
          const isChain = target !== undefined && text.includes(`:${target} `);
          assert.deepEqual(r.to, isChain ? [`${detail.chain.table}|${target}`] : [], r.text);
        }
      } else {
        for (const r of detail.rules) {
          const body = r.text.replace(/ comment ".*"$/, '');
          assert.ok(text.includes(body), `${id}: ${body} is not in the nft text`);
        }
      }
    }
    assert.equal(seen.size, graph.chains, `every chain of ${mode} mode is reachable from a root`);
    assert.equal([...seen.values()].reduce((n, d) => n + d.rules.length, 0), graph.rules);
  });
}

test('search finds a service\'s chains by its name, its own chains first', async () => {
  const found = await get<{ total: number; matches: { chain: Summary; path: string[] }[] }>('/v1/graph/search?mode=iptables&q=default/web:http');
  assert.ok(found.total >= 3, JSON.stringify(found));
  assert.match(found.matches[0]!.chain.name, /^KUBE-(SVC|SEP|EXT|FW)-/);
  assert.equal(found.matches.at(-1)!.chain.name, 'KUBE-SERVICES', found.matches.map((m) => m.chain.name).join(' '));
});

test('the IPVS table as JSON lists what ipvsadm -Ln lists', async () => {
  const table = await get<{ total: number; services: { protocol: string; address: string; dests: { address: string }[] }[] }>('/v1/ipvs?limit=10000');
  const text = (await app.inject({ url: '/v1/rules?mode=ipvs' })).body;
  const listed = text.split('\n').filter((l) => /^(TCP|UDP|SCTP) /.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '));
  assert.deepEqual(table.services.map((s) => `${s.protocol} ${s.address}`).sort(), listed.sort());
  const dests = text.split('\n').filter((l) => l.startsWith('  -> ') && !l.includes('RemoteAddress')).length;
  assert.equal(table.services.reduce((n, s) => n + s.dests.length, 0), dests);
  const filtered = await get<{ matching: number; services: { service: string }[] }>('/v1/ipvs?q=default/web');
  assert.ok(filtered.matching > 0 && filtered.services.every((s) => s.service.startsWith('default/web')), JSON.stringify(filtered));
});

test('the cluster view names types, policies, endpoints\' nodes and the nodes', async () => {
  const view = await get<{ servicePorts: { name: string; type: string; externalTrafficPolicy: string; endpoints: { node?: string }[] }[]; nodes: { name: string }[] }>('/v1/cluster');
  const byName = new Map(cluster.services.map((s) => [`${s.namespace}/${s.name}`, s]));
  for (const sp of view.servicePorts) {
    const svc = byName.get(sp.name.split(':')[0]!)!;
    assert.equal(sp.type, svc.type, sp.name);
    assert.equal(sp.externalTrafficPolicy, svc.externalTrafficPolicy, sp.name);
  }
  assert.deepEqual(view.nodes.map((n) => n.name), cluster.nodes.map((n) => n.name));
  assert.ok(view.servicePorts.some((sp) => sp.endpoints.some((e) => e.node !== undefined)));
});

test('a trace from another node sees that node\'s local endpoints', async () => {
  const nodes = cluster.nodes.map((n) => n.name);
  assert.ok(nodes.length > 1);
  // node-local has internalTrafficPolicy Local: each node reaches only its own endpoints.
  const reach = async (node: string): Promise<string[]> => {
    const res = await app.inject({ method: 'POST', url: '/v1/trace', payload: { src: '10.244.1.20', dst: '10.96.50.60', dport: 80, node } });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { endpoints: string[] }).endpoints;
  };
  const answers = await Promise.all(nodes.map(reach));
  assert.notDeepEqual(answers[0], answers[1], `${nodes.join(', ')}: ${JSON.stringify(answers)}`);
  const unknown = await app.inject({ method: 'POST', url: '/v1/trace', payload: { src: '10.244.1.20', dst: '10.96.50.60', dport: 80, node: 'ghost' } });
  assert.equal(unknown.statusCode, 404);
});

test('bad parameters answer 400 naming the parameter', async () => {
  for (const [url, path] of [
    ['/v1/graph?mode=userspace', 'mode'],
    ['/v1/graph?family=5', 'family'],
    ['/v1/graph/chain?id=nat|NOPE', 'id'],
    ['/v1/compare/stream?schedulers=xx', 'schedulers'],
    ['/v1/compare/stream?duration=1000', 'duration'],
  ] as const) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    assert.equal((res.json() as { path?: string }).path, path, url);
  }
});
