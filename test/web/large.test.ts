/// <reference lib="dom" />
/**
 * The web page on a generated 10,000-service cluster, in headless Chromium: the page loads, the
 * rules view opens with only what is expanded drawn, a search finds one service's chain among
 * tens of thousands, and a trace draws. The times are printed beside the targets (page
 * load under 1 s on the example, rules view under 3 s and a trace under 500 ms here), never
 * asserted: speed lives in numbers, not in pass or fail.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildApiServer } from '../../src/api/server.js';
import { browserMissing, launchBrowser, newPage, screenshotDir } from '../helpers/browser.js';
import { clusterFromObjects } from '../../src/manifest/load.js';
import type { JsonObject } from '../../src/model/fields.js';
import { generateClusterManifests } from '../helpers/cluster-builders.js';

const missing = browserMissing();
const SERVICES = 10_000;
const ENDPOINTS_PER_SERVICE = 3;

describe(`the web page on a generated cluster of ${SERVICES} services`, { skip: missing }, () => {
  // Decoded from the objects themselves: a YAML round trip of 10k services would take most of the test's time.
  const cluster = missing ? undefined : clusterFromObjects(generateClusterManifests({ seed: 11, services: SERVICES, endpointsPerService: ENDPOINTS_PER_SERVICE, nodes: 20 }).map((doc) => ({ file: 'generated.yaml', doc: doc as unknown as JsonObject })));
  const app = buildApiServer(cluster ? { cluster } : {});
  let url = '';
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    browser = await launchBrowser();
    page = await newPage(browser, errors);
  });
  after(async () => {
    await browser?.close();
    await app.close();
  });

  test('loads, opens the rules view, finds a chain and draws a trace', async () => {
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 120_000 });
    // The server runs in this process: while it compiles, the test itself waits too, so the in-page figures are the ones to read.
    const load = Date.now() - t0;
    const loadInPage = Number(await page.getAttribute('body', 'data-ready-ms'));
    const timing = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => `${e.name.replace(/^https?:\/\/[^/]+/, '')} ${Math.round(e.startTime)}+${Math.round(e.duration)}`).join(', '));
    const shown = await page.getByTestId('service').count();
    assert.ok(shown > 0 && shown <= 300, `${shown} service rows drawn: the page draws a filtered few, not all`);

    const t1 = Date.now();
    await page.click('nav a[data-view="rules"]');
    await page.waitForSelector('body[data-rules-drawn]', { timeout: 120_000 });
    const rules = Date.now() - t1;
    const rulesInPage = Number(await page.getAttribute('body', 'data-rules-ms'));
    const drawn = Number(await page.getAttribute('body', 'data-rules-drawn'));
    const summary = (await page.textContent('#rules-summary')) ?? '';
    const chains = Number(/(\d+) chains/.exec(summary)?.[1]);
    assert.ok(chains > SERVICES, `the summary says ${summary}`);
    assert.ok(drawn < 500, `${drawn} of ${chains} chains drawn: only what is expanded should be`);

    const target = cluster!.services.find((s) => s.name === `svc-${SERVICES - 3}`)!;
    await page.fill('#rules-search', `${target.namespace}/${target.name}:http`);
    const found = page.locator('#rules-found button').first();
    await found.waitFor({ timeout: 60_000 });
    const chain = (await found.textContent())!;
    assert.match(chain, /^KUBE-(SVC|SEP|EXT|FW|SVL)-/, 'a service\'s own chain comes first');
    await found.click();
    await page.locator('#chain-title').filter({ hasText: chain }).waitFor({ timeout: 60_000 });
    assert.ok((await page.getByTestId('chain-rule').count()) > 0);
    await page.screenshot({ path: join(screenshotDir(), 'rules-10k.png') });

    await page.click('nav a[data-view="trace"]');
    await page.fill('[name="src"]', '10.244.1.20');
    await page.fill('[name="dst"]', target.clusterIPs[0]!);
    await page.fill('[name="dport"]', '80');
    const t2 = Date.now();
    await page.click('#trace-form button[type="submit"]');
    await page.waitForSelector('[data-testid="verdict"]', { timeout: 60_000 });
    const trace = Date.now() - t2;
    const traceInPage = Number(await page.getAttribute('#trace-results', 'data-ms'));
    assert.equal(await page.getByTestId('verdict').textContent(), 'DNAT');
    await page.screenshot({ path: join(screenshotDir(), 'trace-10k.png'), fullPage: true });

    process.stdout.write([
      `# ${SERVICES} services x ${ENDPOINTS_PER_SERVICE} endpoints, ${chains} iptables chains, ${drawn} drawn:`,
      `#   page load to interactive ${loadInPage} ms from navigation start in the page, ${load} ms as the test saw it (requests: ${timing})`,
      `#   rules view open ${rulesInPage} ms in the page (first compile on the server included), ${rules} ms as the test saw it (target 3000 ms)`,
      `#   trace drawn ${traceInPage} ms in the page, ${trace} ms as the test saw it (target 500 ms)`,
    ].join('\n') + '\n');
    assert.deepEqual(errors, []);
  });
});
