/**
 * Which endpoints a listener forwards to, per kind of address, with traffic policies and
 * readiness, and when it rejects or drops instead: the same decisions as kube-proxy's iptables
 * proxier (hasEndpoints / hasInternalEndpoints / hasExternalEndpoints).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VirtualKind } from '../../src/proxy/address-map.js';
import { chooseEndpoints } from '../../src/proxy/endpoint-choice.js';
import { TEST_NODE_NAME } from '../helpers/cluster-builders.js';
import { stateOf, webService } from './helpers.js';

type Want = { action: 'forward'; endpoints: string[] } | { action: 'reject' | 'drop' };

const cases: { name: string; options: Parameters<typeof webService>[0]; kind: VirtualKind; want: Want }[] = [
  {
    name: 'ClusterIP, Cluster policy: every ready endpoint',
    options: { remote: ['10.180.0.2'] }, kind: 'ClusterIP',
    want: { action: 'forward', endpoints: ['10.180.0.1:8080', '10.180.0.2:8080'] },
  },
  {
    name: 'not-ready endpoints are left out',
    options: { endpoints: ['10.180.0.1', '10.180.0.2'], endpoint: (e, ip) => { if (ip === '10.180.0.2') e.conditions = { ready: false, serving: false, terminating: false }; } },
    kind: 'ClusterIP', want: { action: 'forward', endpoints: ['10.180.0.1:8080'] },
  },
  {
    name: 'serving-terminating endpoints are used when no ready one is left',
    options: { endpoints: ['10.180.0.1', '10.180.0.2'], endpoint: (e, ip) => { e.conditions = ip === '10.180.0.1' ? { ready: false, serving: true, terminating: true } : { ready: false, serving: false, terminating: true }; } },
    kind: 'ClusterIP', want: { action: 'forward', endpoints: ['10.180.0.1:8080'] },
  },
  {
    name: 'no endpoints at all: REJECT, on the ClusterIP',
    options: { endpoints: [] }, kind: 'ClusterIP', want: { action: 'reject' },
  },
  {
    name: 'no endpoints at all: REJECT, on a NodePort too',
    options: { endpoints: [], mutate: (s) => { s.spec.type = 'NodePort'; s.spec.ports![0]!.nodePort = 30080; } }, kind: 'NodePort', want: { action: 'reject' },
  },
  {
    name: 'only unready endpoints: REJECT',
    options: { endpoint: (e) => { e.conditions = { ready: false, serving: false, terminating: false }; } }, kind: 'ClusterIP', want: { action: 'reject' },
  },
  {
    name: 'internalTrafficPolicy Local: the ClusterIP uses local endpoints only',
    options: { remote: ['10.180.0.2'], mutate: (s) => { s.spec.internalTrafficPolicy = 'Local'; } }, kind: 'ClusterIP',
    want: { action: 'forward', endpoints: ['10.180.0.1:8080'] },
  },
  {
    name: 'internalTrafficPolicy Local without a local endpoint: DROP',
    options: { remote: ['10.180.0.1', '10.180.0.2'], mutate: (s) => { s.spec.internalTrafficPolicy = 'Local'; } }, kind: 'ClusterIP', want: { action: 'drop' },
  },
  {
    name: 'externalTrafficPolicy Local: the NodePort uses local endpoints only',
    options: { remote: ['10.180.0.2'], mutate: (s) => { s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.ports![0]!.nodePort = 30080; } },
    kind: 'NodePort', want: { action: 'forward', endpoints: ['10.180.0.1:8080'] },
  },
  {
    name: 'externalTrafficPolicy Local does not touch the ClusterIP',
    options: { remote: ['10.180.0.2'], mutate: (s) => { s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.ports![0]!.nodePort = 30080; } },
    kind: 'ClusterIP', want: { action: 'forward', endpoints: ['10.180.0.1:8080', '10.180.0.2:8080'] },
  },
  {
    name: 'externalTrafficPolicy Local without a local endpoint: DROP on the NodePort',
    options: { remote: ['10.180.0.1', '10.180.0.2'], mutate: (s) => { s.spec.type = 'NodePort'; s.spec.externalTrafficPolicy = 'Local'; s.spec.ports![0]!.nodePort = 30080; } },
    kind: 'NodePort', want: { action: 'drop' },
  },
  {
    name: 'externalTrafficPolicy Local without a local endpoint: DROP on an externalIP',
    options: { remote: ['10.180.0.1', '10.180.0.2'], mutate: (s) => { s.spec.externalIPs = ['192.0.2.10']; s.spec.externalTrafficPolicy = 'Local'; } },
    kind: 'ExternalIP', want: { action: 'drop' },
  },
  {
    name: 'externalTrafficPolicy Cluster: the NodePort uses every endpoint',
    options: { remote: ['10.180.0.1', '10.180.0.2'], mutate: (s) => { s.spec.type = 'NodePort'; s.spec.ports![0]!.nodePort = 30080; } },
    kind: 'NodePort', want: { action: 'forward', endpoints: ['10.180.0.1:8080', '10.180.0.2:8080'] },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const state = stateOf(webService(c.options));
    const sp = state.servicePorts[0]!;
    const verdict = chooseEndpoints(sp, c.kind);
    const got: Want = verdict.action === 'forward' ? { action: 'forward', endpoints: verdict.endpoints.map((e) => e.endpoint) } : { action: verdict.action };
    assert.deepEqual(got, c.want, `node ${TEST_NODE_NAME}, endpoints ${JSON.stringify(sp.endpoints.map((e) => [e.endpoint, e.isLocal, e.ready]))}`);
    if (verdict.action !== 'forward') assert.match(verdict.reason, /ns1\/web:p80/);
  });
}
