/// <reference lib="dom" />
/**
 * The web page of `kpsim serve` in a real browser (headless Chromium) on rules/example: it shows
 * the cluster and follows it live, draws a trace for each kind of service exactly as the CLI's
 * --json has it (hops, verdict, endpoints, probabilities, masquerade), in every mode and side by
 * side, reproduces a trace from its URL, puts errors beside the field or in the message line,
 * draws the rules graph and the IPVS table, and runs compare with its progress.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserMissing, launchBrowser, newPage, screenshotDir } from '../helpers/browser.js';
import { type StartedApi, startKubeApi } from '../helpers/kube-api.js';
import { runCliAsync } from '../helpers/run-cli.js';

const missing = browserMissing();
if (missing) process.stderr.write(`skipping the web page tests: ${missing}\n`);

interface ServicePortJson {
  family: number; name: string; type: string; protocol: string; clusterIP: string; port: number; nodePort: number;
  externalIPs: string[]; loadBalancerVIPs: string[]; reachable: string[];
}
interface TraceJson {
  verdict: string; endpoints: string[]; probabilities: Record<string, number>; masquerade: boolean;
  masqueradeByEndpoint: Record<string, boolean>; hops: { table: string; chain: string; rule: string }[];
}
interface Flow { why: string; src: string; dst: string; dport: number; proto: string; mode: string }

const POD = '10.244.1.20';
const OUTSIDE = '203.0.113.9';

/** One flow per kind of service the example cluster has, found in its /v1/cluster answer. */
function flowsOf(ports: readonly ServicePortJson[], nodeIP: string): Flow[] {
  const v4 = ports.filter((p) => p.family === 4);
  const pick = (why: string, test: (p: ServicePortJson) => boolean, flow: (p: ServicePortJson) => Omit<Flow, 'why' | 'mode'>): Flow[] => {
    const p = v4.find(test);
    return p ? [{ why: `${why} (${p.name})`, mode: 'iptables', ...flow(p) }] : [];
  };
  const proto = (p: ServicePortJson): string => p.protocol.toLowerCase();
  const flows = [
    ...pick('ClusterIP from a pod', (p) => p.type === 'ClusterIP' && p.reachable.length > 1 && p.protocol === 'TCP', (p) => ({ src: POD, dst: p.clusterIP, dport: p.port, proto: 'tcp' })),
    ...pick('UDP ClusterIP', (p) => p.protocol === 'UDP' && p.reachable.length > 0, (p) => ({ src: POD, dst: p.clusterIP, dport: p.port, proto: 'udp' })),
    ...pick('a service without endpoints', (p) => p.type === 'ClusterIP' && p.reachable.length === 0 && p.protocol === 'TCP', (p) => ({ src: POD, dst: p.clusterIP, dport: p.port, proto: proto(p) })),
    ...pick('NodePort from outside', (p) => p.type === 'NodePort' && p.nodePort > 0, (p) => ({ src: OUTSIDE, dst: nodeIP, dport: p.nodePort, proto: proto(p) })),
    ...pick('LoadBalancer IP from outside', (p) => p.type === 'LoadBalancer' && p.loadBalancerVIPs.length > 0, (p) => ({ src: OUTSIDE, dst: p.loadBalancerVIPs[0]!, dport: p.port, proto: proto(p) })),
    ...pick('external IP from outside', (p) => p.externalIPs.length > 0, (p) => ({ src: OUTSIDE, dst: p.externalIPs[0]!, dport: p.port, proto: proto(p) })),
  ];
  const dual = ports.find((p) => p.family === 6 && p.reachable.length > 0);
  if (dual) flows.push({ why: `IPv6 ClusterIP (${dual.name})`, mode: 'iptables', src: 'fd00:10:244:1::20', dst: dual.clusterIP, dport: dual.port, proto: dual.protocol.toLowerCase() });
  const first = flows[0]!;
  flows.push({ ...first, why: `${first.why} in IPVS mode`, mode: 'ipvs' }, { ...first, why: `${first.why} in nftables mode`, mode: 'nftables' });
  return flows;
}

async function cliTrace(flow: Flow): Promise<TraceJson> {
  const r = await runCliAsync(['trace', '-f', 'rules/example', '--json', '--mode', flow.mode, '--proto', flow.proto, '--src', flow.src, '--dst', flow.dst, '--dport', String(flow.dport)]);
  assert.equal(r.status, 0, `kpsim trace failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as TraceJson;
}

/** What the page drew for one mode's result. */
async function drawn(page: Page, mode: string): Promise<{ verdict: string; hops: string[][]; endpoints: [string, string, string][]; masquerade: string }> {
  const box = page.locator(`[data-testid="trace-result"][data-mode="${mode}"]`);
  return {
    verdict: (await box.getByTestId('verdict').textContent()) ?? '',
    hops: await box.getByTestId('hop').evaluateAll((els) => els.map((e) => [(e as HTMLElement).dataset['table']!, (e as HTMLElement).dataset['chain']!, e.querySelector('code.rule')?.textContent ?? ''])),
    endpoints: await box.getByTestId('endpoint').evaluateAll((els) => els.map((e) => {
      const d = (e as HTMLElement).dataset;
      return [d['endpoint']!, d['probability']!, d['masquerade']!] as [string, string, string];
    })),
    masquerade: (await box.getByTestId('masquerade').textContent()) ?? '',
  };
}

function expected(json: TraceJson): Awaited<ReturnType<typeof drawn>> {
  return {
    verdict: json.verdict,
    hops: json.hops.map((h) => [h.table, h.chain, h.rule]),
    endpoints: json.endpoints.map((e) => [e, String(json.probabilities[e]), String(json.masqueradeByEndpoint[e] ?? false)]),
    masquerade: json.masquerade ? 'yes' : 'no',
  };
}

async function submitTrace(page: Page, flow: Omit<Flow, 'why'>, side = false): Promise<void> {
  await page.evaluate(() => document.getElementById('trace-results')!.replaceChildren());
  await page.fill('[name="src"]', flow.src);
  await page.fill('[name="dst"]', flow.dst);
  await page.fill('[name="dport"]', String(flow.dport));
  await page.selectOption('[name="proto"]', flow.proto);
  await page.selectOption('[name="mode"]', flow.mode);
  await page.setChecked('[name="side"]', side);
  await page.click('#trace-form button[type="submit"]');
}

describe('the web page on rules/example', { skip: missing }, () => {
  let api: StartedApi;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const shots = missing ? '' : screenshotDir();

  before(async () => {
    api = await startKubeApi({ files: ['rules/example'] });
    browser = await launchBrowser();
    page = await newPage(browser, errors);
  });
  after(async () => {
    await browser?.close();
    await api?.close();
  });

  test('loads, lists every service port and node, and is interactive quickly', async () => {
    const started = Date.now();
    await page.goto(api.url);
    await page.waitForSelector('body[data-ready="true"]');
    const ms = Date.now() - started;
    const inPage = Number(await page.getAttribute('body', 'data-ready-ms'));
    process.stdout.write(`# page load to interactive on rules/example: ${inPage.toFixed(0)} ms from navigation start in the page, ${ms.toFixed(0)} ms as the test saw it with a fresh browser (target 1000 ms)\n`);
    const cluster = (await (await fetch(`${api.url}/v1/cluster`)).json()) as { servicePorts: ServicePortJson[]; nodes: unknown[] };
    const names = await page.getByTestId('service').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['name']));
    assert.deepEqual(names, cluster.servicePorts.map((p) => p.name));
    assert.equal(await page.getByTestId('node').count(), cluster.nodes.length);
    await page.screenshot({ path: join(shots, 'cluster.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });

  test('a trace of each kind of service draws what kpsim trace --json says', async (t) => {
    const cluster = (await (await fetch(`${api.url}/v1/cluster`)).json()) as { node: { ips: string[] }; servicePorts: ServicePortJson[] };
    const flows = flowsOf(cluster.servicePorts, cluster.node.ips[0]!);
    assert.ok(flows.length >= 8, `flows found: ${flows.map((f) => f.why).join('; ')}`);
    const wants = await Promise.all(flows.map(async (flow) => expected(await cliTrace(flow))));
    await page.goto(`${api.url}/#trace`);
    await page.waitForSelector('body[data-ready="true"]');
    for (const [i, flow] of flows.entries()) {
      await t.test(flow.why, async () => {
        const want = wants[i]!;
        await submitTrace(page, flow);
        await page.waitForSelector(`[data-testid="trace-result"][data-mode="${flow.mode}"] [data-testid="verdict"]`);
        assert.deepEqual(await drawn(page, flow.mode), want, `${flow.mode} ${flow.proto} ${flow.src} -> ${flow.dst}:${flow.dport}`);
        // The path on the graph: one node per chain the hops crossed.
        const chains = new Set(want.hops.map(([table, chain]) => `${table}|${chain}`));
        const graphNodes = await page.evaluate(() => document.querySelectorAll('[data-testid="trace-graph"]').length);
        assert.equal(graphNodes, 1);
        assert.ok(chains.size > 0);
      });
    }
    await page.screenshot({ path: join(shots, 'trace.png'), fullPage: true });
  });

  test('iptables and IPVS side by side, and the trace URL reproduces both', async () => {
    const cluster = (await (await fetch(`${api.url}/v1/cluster`)).json()) as { node: { ips: string[] }; servicePorts: ServicePortJson[] };
    const flow = flowsOf(cluster.servicePorts, cluster.node.ips[0]!)[0]!;
    await page.goto(`${api.url}/#trace`);
    await page.waitForSelector('body[data-ready="true"]');
    await submitTrace(page, flow, true);
    await page.waitForSelector('[data-testid="trace-result"][data-mode="ipvs"] [data-testid="verdict"]');
    const want = { iptables: expected(await cliTrace(flow)), ipvs: expected(await cliTrace({ ...flow, mode: 'ipvs' })) };
    assert.deepEqual({ iptables: await drawn(page, 'iptables'), ipvs: await drawn(page, 'ipvs') }, want);
    await page.screenshot({ path: join(shots, 'trace-side-by-side.png'), fullPage: true });

    const url = page.url();
    const query = new URL(url).searchParams;
    for (const name of ['src', 'dst', 'dport', 'proto', 'node', 'mode']) assert.ok(query.has(name), `the trace URL ${url} lacks ${name}`);
    const other = await newPage(browser, errors);
    await other.goto(url);
    await other.waitForSelector('[data-testid="trace-result"][data-mode="ipvs"] [data-testid="verdict"]');
    assert.deepEqual({ iptables: await drawn(other, 'iptables'), ipvs: await drawn(other, 'ipvs') }, want);
    await other.close();
  });

  test('the service pick list fills destination, port and protocol', async () => {
    await page.goto(`${api.url}/#trace`);
    await page.waitForSelector('body[data-ready="true"]');
    const options = await page.locator('#trace-service option').evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value).filter((v) => v !== ''));
    const udp = options.find((v) => v.endsWith('|udp'));
    assert.ok(udp, `no UDP service in the pick list: ${options.join(', ')}`);
    await page.selectOption('#trace-service', udp);
    const [ip, port] = udp.split('|');
    assert.deepEqual([await page.inputValue('[name="dst"]'), await page.inputValue('[name="dport"]'), await page.inputValue('[name="proto"]')], [ip, port, 'udp']);
  });

  test('bad input is shown beside its field; a server error in the message line', async () => {
    await page.goto(`${api.url}/#trace`);
    await page.waitForSelector('body[data-ready="true"]');
    const cases = [
      { why: 'a bad source address (checked in the page)', fill: { src: '10.244.1.999', dst: '10.96.100.20', dport: '80' }, field: 'src', says: /not an IP address/ },
      { why: 'an unknown service name', fill: { src: POD, dst: 'default/no-such-service', dport: '80' }, field: 'dst', says: /neither an IP address nor a service/ },
      { why: 'a port out of range', fill: { src: POD, dst: '10.96.100.20', dport: '70000' }, field: 'dport', says: /not a port/ },
      { why: 'an address the server refuses', fill: { src: POD, dst: '1:2:3:4:5:6:7:8:9', dport: '80' }, field: 'dst', says: /packet\.dst/ },
    ];
    for (const c of cases) {
      for (const [name, value] of Object.entries(c.fill)) await page.fill(`[name="${name}"]`, value);
      await page.click('#trace-form button[type="submit"]');
      const error = page.locator(`[data-error-for="${c.field}"]`);
      await error.filter({ hasText: c.says }).waitFor();
      assert.equal(await page.getAttribute(`[name="${c.field}"]`, 'aria-invalid'), 'true', c.why);
      assert.equal(await page.getByTestId('verdict').count(), 0, c.why);
    }
    await page.screenshot({ path: join(shots, 'field-error.png'), fullPage: true });

    // A 500 from the server: the page says so instead of going blank.
    await page.route('**/v1/trace', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ code: 'KPSIM_ERR_INTERNAL', message: 'internal error: boom' }) }));
    await page.fill('[name="dst"]', '10.96.100.20');
    await page.fill('[name="dport"]', '80');
    await page.click('#trace-form button[type="submit"]');
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: 'internal error: boom' }).waitFor();
    assert.match((await alert.textContent()) ?? '', /KPSIM_ERR_INTERNAL, HTTP 500/);
    await page.unroute('**/v1/trace');
  });

  test('the form is usable by keyboard and every input has a label', async () => {
    await page.goto(`${api.url}/#trace`);
    await page.waitForSelector('body[data-ready="true"]');
    const unlabelled = await page.locator('#trace-form input, #trace-form select').evaluateAll((els) =>
      els.filter((e) => (e as HTMLInputElement).labels?.length === 0).map((e) => e.outerHTML));
    assert.deepEqual(unlabelled, []);
    await page.focus('[name="src"]');
    await page.keyboard.type(POD);
    await page.keyboard.press('Tab');
    await page.keyboard.type('10.96.100.20');
    await page.keyboard.press('Tab');
    await page.keyboard.type('80');
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-testid="verdict"]');
    assert.equal(await page.getByTestId('verdict').first().textContent(), 'DNAT');
  });

  test('the page follows the live cluster: a Service created through the API appears without a reload', async () => {
    await page.goto(api.url);
    await page.waitForSelector('body[data-ready="true"]');
    const before = await page.getByTestId('service').count();
    const res = await fetch(`${api.url}/api/v1/namespaces/default/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'added-live' }, spec: { ports: [{ name: 'http', port: 8080 }] } }),
    });
    assert.equal(res.status, 201, await res.text());
    await page.locator('[data-testid="service"][data-name="default/added-live:http"]').waitFor();
    assert.equal(await page.getByTestId('service').count(), before + 1);
    const del = await fetch(`${api.url}/api/v1/namespaces/default/services/added-live`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await page.locator('[data-testid="service"][data-name="default/added-live:http"]').waitFor({ state: 'detached' });
  });

  test('the rules graph: roots drawn, a chain found by search and its rules shown; the IPVS table', async () => {
    await page.goto(`${api.url}/#rules`);
    await page.waitForSelector('body[data-rules-drawn]');
    await page.fill('#rules-search', 'default/web');
    const found = page.locator('#rules-found button').first();
    await found.waitFor();
    const chain = (await found.textContent())!;
    await found.click();
    await page.locator('#chain-title').filter({ hasText: chain }).waitFor();
    const [table] = ((await page.textContent('#chain-title')) ?? '').split(' ');
    const shown = await page.getByTestId('chain-rule').allTextContents();
    const text = await (await fetch(`${api.url}/v1/rules?mode=iptables&family=4`)).text();
    const tableText = text.slice(text.indexOf(`*${table}\n`));
    const rules = tableText.slice(0, tableText.indexOf('COMMIT')).split('\n').filter((l) => l.startsWith(`-A ${chain} `));
    assert.ok(rules.length > 0, `no rules of ${table} ${chain} in the compiled text`);
    assert.deepEqual(shown, rules, `the rules of ${table} ${chain}`);
    await page.screenshot({ path: join(shots, 'rules.png'), fullPage: true });

    await page.selectOption('#rules-mode', 'ipvs');
    await page.locator('#ipvs-panel:not([hidden]) [data-testid="ipvs-service"]').first().waitFor();
    const ipvsadm = await (await fetch(`${api.url}/v1/rules?mode=ipvs`)).text();
    const virtualServers = ipvsadm.split('\n').filter((l) => /^(TCP|UDP|SCTP) /.test(l)).length;
    assert.equal(await page.getByTestId('ipvs-service').count(), virtualServers);
    await page.screenshot({ path: join(shots, 'ipvs.png'), fullPage: true });
  });

  test('a trace\'s path shown on the rules graph marks every chain it crossed', async () => {
    const cluster = (await (await fetch(`${api.url}/v1/cluster`)).json()) as { node: { ips: string[] }; servicePorts: ServicePortJson[] };
    const flow = flowsOf(cluster.servicePorts, cluster.node.ips[0]!).find((f) => f.why.startsWith('NodePort'))!;
    const json = await cliTrace(flow);
    // Chains the tracer assumed (the built-in chains' jumps, absent from kube-proxy's output) are not in the graph.
    const ids = [...new Set(json.hops.map((h) => `${h.table}|${h.chain}`))];
    const inGraph = [];
    for (const id of ids) if ((await fetch(`${api.url}/v1/graph/chain?mode=iptables&id=${encodeURIComponent(id)}`)).status === 200) inGraph.push(id);
    assert.ok(inGraph.length > 2, `chains of the trace in the graph: ${inGraph.join(', ')}`);
    await page.goto(`${api.url}/#trace`);
    await page.waitForSelector('body[data-ready="true"]');
    await submitTrace(page, flow);
    await page.getByTestId('show-on-rules').click();
    await page.waitForSelector('body[data-rules-hits]');
    assert.equal(await page.getAttribute('body', 'data-rules-hits'), String(inGraph.length));
    assert.equal(new URL(page.url()).hash, '#rules');
    await page.screenshot({ path: join(shots, 'rules-trace.png'), fullPage: true });
  });

  test('compare runs from the page with its progress and draws every row', async () => {
    await page.goto(`${api.url}/#compare`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.fill('[name="schedulers"]', 'rr');
    await page.fill('[name="duration"]', '0.2');
    await page.fill('[name="connections"]', '2');
    await page.click('#compare-form button[type="submit"]');
    await page.waitForSelector('#view-compare[data-done="true"]', { timeout: 120_000 });
    const progress = await page.$eval('#compare-progress', (p) => [(p as HTMLProgressElement).value, (p as HTMLProgressElement).max]);
    assert.equal(progress[0], progress[1]);
    const modes = await page.getByTestId('compare-row').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset['mode']));
    assert.deepEqual(modes, ['direct', 'userspace', 'iptables', 'ipvs', 'nftables']);
    await page.screenshot({ path: join(shots, 'compare.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });
});
