/**
 * The change trackers and the proxier view kept from them (pkg/proxy/servicechangetracker.go,
 * endpointschangetracker.go): changes that cancel out are dropped, a slice update counts only
 * when it changes what kube-proxy reads, and after any sequence of informer events the view's
 * ProxierState is the one buildProxierState gives for the same objects.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointsChangeTracker } from '../../src/tracker/endpoints-change-tracker.js';
import { proxierNodeContext, resolveNode } from '../../src/tracker/proxier-state.js';
import { ProxierView } from '../../src/tracker/proxier-view.js';
import { ServiceChangeTracker } from '../../src/tracker/service-change-tracker.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { seededRng } from '../../src/util/random.js';
import {
  type EndpointSliceManifest, type ServiceManifest, TEST_NODE_NAME, clusterOf, ep, fixtureConfig, fixtureNode, makeService, makeSlice, tcpPort,
} from '../helpers/cluster-builders.js';
import { ProxierDriver, decodeService, decodeSlice } from '../helpers/proxier-driver.js';

const base = [fixtureNode(), fixtureConfig()];
const cluster0 = clusterOf(base);
const node = resolveNode(cluster0);

function trackers(family: 4 | 6 = 4) {
  const ctx = proxierNodeContext(cluster0.config, node, family);
  return {
    services: new ServiceChangeTracker(family, () => cluster0.config),
    endpoints: new EndpointsChangeTracker(family, TEST_NODE_NAME, 1000),
    view: new ProxierView(ctx),
  };
}

const web = (ip = '172.30.0.41', port = 80) => makeService('ns1', 'web', (s) => {
  s.spec.clusterIP = ip;
  s.spec.ports = [tcpPort('p80', port)];
});
const webSlice = (...addresses: string[]) => makeSlice('ns1', 'web', 1, (s) => {
  s.ports = [{ name: 'p80', port: 8080, protocol: 'TCP' }];
  s.endpoints = addresses.map((a) => ep(a, TEST_NODE_NAME));
});

test('service changes that cancel out are dropped before a sync', () => {
  const cases: { name: string; events: [ServiceManifest | undefined, ServiceManifest | undefined][]; pending: number }[] = [
    { name: 'add then delete', events: [[undefined, web()], [web(), undefined]], pending: 0 },
    { name: 'update then revert', events: [[web(), web('172.30.0.42')], [web('172.30.0.42'), web()]], pending: 0 },
    { name: 'update that moves no port (a label)', events: [[web(), (() => { const s = web(); s.metadata.labels = { a: 'b' }; return s; })()]], pending: 0 },
    { name: 'add', events: [[undefined, web()]], pending: 1 },
    { name: 'port change then another', events: [[web(), web('172.30.0.41', 81)], [web('172.30.0.41', 81), web('172.30.0.41', 82)]], pending: 1 },
  ];
  for (const c of cases) {
    const t = new ServiceChangeTracker(4, () => cluster0.config);
    for (const [prev, cur] of c.events) t.update(prev && decodeService(prev), cur && decodeService(cur));
    assert.equal(t.pending, c.pending, c.name);
  }
});

test('a slice update counts only when it changes what kube-proxy reads', () => {
  const t = new EndpointsChangeTracker(4, TEST_NODE_NAME, 1000);
  const steps: { name: string; slice: EndpointSliceManifest; remove?: boolean; counts: boolean }[] = [
    { name: 'removing a slice never seen', slice: webSlice('10.0.1.1'), remove: true, counts: false },
    { name: 'a new slice', slice: webSlice('10.0.1.1'), counts: true },
    { name: 'the same slice again', slice: webSlice('10.0.1.1'), counts: false },
    { name: 'the same endpoints in another order', slice: webSlice('10.0.1.1'), counts: false },
    { name: 'another endpoint', slice: webSlice('10.0.1.1', '10.0.1.2'), counts: true },
    { name: 'only a label on the slice', slice: (() => { const s = webSlice('10.0.1.1', '10.0.1.2'); s.metadata.labels['x'] = 'y'; return s; })(), counts: false },
    { name: 'an IPv6 slice on the IPv4 proxier', slice: (() => { const s = webSlice('fd00:10::1'); s.addressType = 'IPv6'; s.metadata.name = 'web-6'; return s; })(), counts: false },
    { name: 'removal', slice: webSlice('10.0.1.1'), remove: true, counts: true },
  ];
  for (const step of steps) assert.equal(t.endpointSliceUpdate(decodeSlice(step.slice), step.remove ?? false), step.counts, step.name);
});

test('trigger times are kept for changes after the tracker started, and dropped with a removal', () => {
  const t = trackers();
  t.endpoints.endpointSliceUpdate(decodeSlice(webSlice('10.0.1.1')), false, 500); // before start: ignored
  t.endpoints.endpointSliceUpdate(decodeSlice(webSlice('10.0.1.2')), false, 2000);
  t.endpoints.endpointSliceUpdate(decodeSlice(makeSlice('ns1', 'api', 1, (s) => { s.ports = [{ name: 'p', port: 1, protocol: 'UDP' }]; s.endpoints = [ep('10.0.2.1')]; })), false, 3000);
  const result = t.view.update(t.services, t.endpoints);
  assert.deepEqual(Object.fromEntries(result.endpoints.lastChangeTriggerTimes), { 'ns1/web': [2000], 'ns1/api': [3000] });
  assert.equal(result.endpoints.conntrackCleanupRequired, true, 'ns1/api has a UDP port');
  t.endpoints.endpointSliceUpdate(decodeSlice(webSlice('10.0.1.3')), false, 4000);
  t.endpoints.endpointSliceUpdate(decodeSlice(webSlice('10.0.1.3')), true, 5000);
  assert.deepEqual(Object.fromEntries(t.view.update(t.services, t.endpoints).endpoints.lastChangeTriggerTimes), {});
});

/** What a state says, minus object identity. */
function summary(state: ProxierState): string[] {
  return state.servicePorts.map((sp) => {
    const { service: _s, ...info } = sp.info;
    const c = sp.categorized;
    const eps = (list: readonly { endpoint: string }[] | undefined) => list === undefined ? '-' : list.map((e) => e.endpoint).join(',');
    return JSON.stringify({ info, endpoints: sp.endpoints.map((e) => ({ ...e, zoneHints: [...e.zoneHints], nodeHints: [...e.nodeHints] })), cluster: eps(c.clusterEndpoints), local: eps(c.localEndpoints), all: eps(c.allReachableEndpoints), any: c.hasAnyEndpoints });
  });
}

test('after random informer events the view is what buildProxierState gives for the same objects', () => {
  for (const seed of [1, 2, 3]) {
    const rng = seededRng(seed);
    const driver = new ProxierDriver(base);
    const log: string[] = [];
    for (let step = 0; step < 120; step++) {
      log.push(driver.randomChange(rng, TEST_NODE_NAME));
      if (rng() < 0.3 || step === 119) {
        const got = driver.update().state;
        assert.deepEqual(summary(got), summary(driver.fullState()), `seed ${seed} step ${step}; events:\n${log.join('\n')}`);
        log.push('-- sync');
      }
    }
  }
});

test('unchanged service ports are the same objects after an update', () => {
  const t = trackers();
  t.services.update(undefined, decodeService(web()));
  const other = makeService('ns1', 'other', (s) => { s.spec.clusterIP = '172.30.0.50'; s.spec.ports = [tcpPort('p80', 80)]; });
  t.services.update(undefined, decodeService(other));
  const first = t.view.update(t.services, t.endpoints);
  assert.equal(first.rebuiltAll, true);
  t.endpoints.endpointSliceUpdate(decodeSlice(webSlice('10.0.1.1')), false);
  const second = t.view.update(t.services, t.endpoints);
  assert.deepEqual([...second.updatedServices], ['ns1/web']);
  assert.equal(second.rebuiltAll, false);
  const otherBefore = first.state.servicePorts.find((sp) => sp.info.svcPortName.name === 'other');
  const otherAfter = second.state.servicePorts.find((sp) => sp.info.svcPortName.name === 'other');
  assert.equal(otherAfter, otherBefore, 'the unchanged service port is reused');
  assert.notEqual(second.state.servicePorts.find((sp) => sp.info.svcPortName.name === 'web'), first.state.servicePorts.find((sp) => sp.info.svcPortName.name === 'web'));
});
