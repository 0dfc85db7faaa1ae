/**
 * categorizeEndpoints against kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go): which
 * endpoints Cluster and Local policy use, topology hints, and the serving-terminating fallback.
 * `undefined` means "the port never uses this kind of endpoints"; [] means "uses them, has none".
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INSERTION_SORT_MAX, byEndpointText, categorizeEndpoints, sortByEndpointText } from '../../src/topology/categorize.js';
import type { EndpointInfo, ServicePortInfo } from '../../src/model/proxy-info.js';

interface Ep {
  ep: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  local?: boolean;
  zones?: string[];
  nodes?: string[];
}

function endpoint(e: Ep): EndpointInfo {
  const [ip, port] = e.ep.split(':') as [string, string];
  return {
    ip,
    port: Number(port),
    endpoint: e.ep,
    isLocal: e.local ?? false,
    ready: e.ready ?? true,
    serving: e.serving ?? e.ready ?? true,
    terminating: e.terminating ?? false,
    zoneHints: new Set(e.zones ?? []),
    nodeHints: new Set(e.nodes ?? []),
  };
}

function servicePort(p: { internalLocal?: boolean; externalLocal?: boolean; nodePort?: number }): ServicePortInfo {
  const externallyAccessible = (p.nodePort ?? 0) !== 0;
  const internalPolicyLocal = p.internalLocal ?? false;
  const externalPolicyLocal = p.externalLocal ?? false;
  return {
    usesClusterEndpoints: !internalPolicyLocal || externallyAccessible,
    usesLocalEndpoints: internalPolicyLocal || (externalPolicyLocal && externallyAccessible),
    externallyAccessible,
    internalPolicyLocal,
    externalPolicyLocal,
    nodePort: p.nodePort ?? 0,
  } as ServicePortInfo;
}

interface Case {
  name: string;
  zone?: string;
  nodeHintsGate?: boolean;
  svc: Parameters<typeof servicePort>[0];
  endpoints: Ep[];
  cluster: string[] | undefined;
  local: string[] | undefined;
  all: string[];
  hasAny: boolean;
}

const cases: Case[] = [
  {
    name: 'zone hints for this zone filter cluster endpoints',
    zone: 'zone-a',
    svc: {},
    endpoints: [
      { ep: '10.1.2.3:80', zones: ['zone-a'] },
      { ep: '10.1.2.4:80', zones: ['zone-b'] },
      { ep: '10.1.2.6:80', zones: ['zone-a'] },
    ],
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: undefined,
    all: ['10.1.2.3:80', '10.1.2.6:80'],
    hasAny: true,
  },
  {
    name: 'an endpoint without hints turns topology off',
    zone: 'zone-a',
    svc: {},
    endpoints: [{ ep: '10.1.2.3:80', zones: ['zone-a'] }, { ep: '10.1.2.5:80' }],
    cluster: ['10.1.2.3:80', '10.1.2.5:80'],
    local: undefined,
    all: ['10.1.2.3:80', '10.1.2.5:80'],
    hasAny: true,
  },
  {
    name: 'no hint for this zone: no filtering',
    zone: 'zone-c',
    svc: {},
    endpoints: [{ ep: '10.1.2.3:80', zones: ['zone-a'] }, { ep: '10.1.2.4:80', zones: ['zone-b'] }],
    cluster: ['10.1.2.3:80', '10.1.2.4:80'],
    local: undefined,
    all: ['10.1.2.3:80', '10.1.2.4:80'],
    hasAny: true,
  },
  {
    name: 'unready endpoints do not count for hints',
    zone: 'zone-a',
    svc: {},
    endpoints: [
      { ep: '10.1.2.3:80', zones: ['zone-a'], ready: false },
      { ep: '10.1.2.4:80', zones: ['zone-b'] },
    ],
    cluster: ['10.1.2.4:80'],
    local: undefined,
    all: ['10.1.2.4:80'],
    hasAny: true,
  },
  {
    name: 'node hints win over zone hints when the gate is on',
    zone: 'zone-a',
    nodeHintsGate: true,
    svc: {},
    endpoints: [
      { ep: '10.0.0.1:80', zones: ['zone-a'], nodes: ['test-node'] },
      { ep: '10.0.0.2:80', zones: ['zone-a'], nodes: ['other'] },
    ],
    cluster: ['10.0.0.1:80'],
    local: undefined,
    all: ['10.0.0.1:80'],
    hasAny: true,
  },
  {
    name: 'node hints are ignored when the gate is off',
    zone: 'zone-a',
    nodeHintsGate: false,
    svc: {},
    endpoints: [
      { ep: '10.0.0.1:80', zones: ['zone-a'], nodes: ['test-node'] },
      { ep: '10.0.0.2:80', zones: ['zone-a'], nodes: ['other'] },
    ],
    cluster: ['10.0.0.1:80', '10.0.0.2:80'],
    local: undefined,
    all: ['10.0.0.1:80', '10.0.0.2:80'],
    hasAny: true,
  },
  {
    name: 'eTP=Local: topology for cluster, locality for local, union for all',
    zone: 'zone-a',
    svc: { externalLocal: true, nodePort: 30080 },
    endpoints: [
      { ep: '10.0.0.0:80', zones: ['zone-a'], local: true },
      { ep: '10.0.0.1:80', zones: ['zone-b'], local: true },
      { ep: '10.0.0.2:80', zones: ['zone-a'] },
      { ep: '10.0.0.3:80', zones: ['zone-b'] },
    ],
    cluster: ['10.0.0.0:80', '10.0.0.2:80'],
    local: ['10.0.0.0:80', '10.0.0.1:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80', '10.0.0.2:80'],
    hasAny: true,
  },
  {
    name: 'iTP=Local with only remote endpoints: none reachable, but some exist',
    svc: { internalLocal: true },
    endpoints: [{ ep: '10.0.0.0:80' }, { ep: '10.0.0.1:80' }],
    cluster: undefined,
    local: undefined,
    all: [],
    hasAny: true,
  },
  {
    name: 'no ready endpoints: fall back to serving-terminating ones',
    svc: {},
    endpoints: [
      { ep: '10.0.0.0:80', ready: false, serving: true, terminating: true },
      { ep: '10.0.0.1:80', ready: false, serving: false, terminating: true },
      { ep: '10.0.0.2:80', ready: false, serving: false, terminating: false },
    ],
    cluster: ['10.0.0.0:80'],
    local: undefined,
    all: ['10.0.0.0:80'],
    hasAny: true,
  },
  {
    name: 'a ready endpoint anywhere means no fallback',
    svc: {},
    endpoints: [
      { ep: '10.0.0.0:80', ready: false, serving: true, terminating: true },
      { ep: '10.0.0.1:80' },
    ],
    cluster: ['10.0.0.1:80'],
    local: undefined,
    all: ['10.0.0.1:80'],
    hasAny: true,
  },
  {
    name: 'eTP=Local: local falls back to local serving-terminating, cluster keeps the ready remote one',
    svc: { externalLocal: true, nodePort: 30080 },
    endpoints: [
      { ep: '10.0.0.0:80', ready: false, serving: true, terminating: true, local: true },
      { ep: '10.0.0.1:80', local: false },
    ],
    cluster: ['10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
    hasAny: true,
  },
  {
    name: 'only unusable endpoints: nothing anywhere',
    svc: { externalLocal: true, nodePort: 30080 },
    endpoints: [{ ep: '10.0.0.0:80', ready: false, serving: false, terminating: true, local: true }],
    cluster: [],
    local: undefined,
    all: [],
    hasAny: false,
  },
];

const texts = (list: readonly EndpointInfo[] | undefined): string[] | undefined => list?.map((e) => e.endpoint);

for (const c of cases) {
  test(c.name, () => {
    const got = categorizeEndpoints(c.endpoints.map(endpoint), servicePort(c.svc), {
      nodeName: 'test-node',
      nodeLabels: c.zone === undefined ? {} : { 'topology.kubernetes.io/zone': c.zone },
      preferSameTrafficDistribution: c.nodeHintsGate ?? true,
    });
    assert.deepEqual(
      { cluster: texts(got.clusterEndpoints), local: texts(got.localEndpoints), all: texts(got.allReachableEndpoints), hasAny: got.hasAnyEndpoints },
      { cluster: c.cluster, local: c.local, all: c.all, hasAny: c.hasAny },
    );
  });
}

// Every port keeps its categorised lists for as long as the cluster is: a selection that keeps
// every endpoint is the endpoint list itself, and one that keeps some holds exactly those.
const listCases: { name: string; endpoints: Ep[]; same: boolean; cluster: string[] }[] = [
  { name: 'all ready: the cluster endpoints are the endpoint list', endpoints: [{ ep: '10.0.0.1:80' }, { ep: '10.0.0.2:80' }], same: true, cluster: ['10.0.0.1:80', '10.0.0.2:80'] },
  { name: 'some not ready: a list of exactly the ready ones', endpoints: [{ ep: '10.0.0.1:80', ready: false }, { ep: '10.0.0.2:80' }, { ep: '10.0.0.3:80' }], same: false, cluster: ['10.0.0.2:80', '10.0.0.3:80'] },
  { name: 'none ready or serving: an empty list', endpoints: [{ ep: '10.0.0.1:80', ready: false, serving: false }], same: false, cluster: [] },
];

for (const c of listCases) {
  test(`lists: ${c.name}`, () => {
    const endpoints = c.endpoints.map(endpoint);
    const got = categorizeEndpoints(endpoints, servicePort({}), { nodeName: 'test-node', nodeLabels: {}, preferSameTrafficDistribution: true });
    assert.equal(got.clusterEndpoints === endpoints, c.same, 'whether the cluster endpoints are the endpoint list itself');
    assert.deepEqual(texts(got.clusterEndpoints), c.cluster);
    assert.equal(got.clusterEndpoints!.length, c.cluster.length);
  });
}

// sortByEndpointText sorts short lists itself: it must give exactly the built-in stable sort's
// order, equal texts (an address listed by two slices) in the order they came.
const sortCases: { name: string; texts: string[] }[] = (() => {
  // A small deterministic generator: the lists are the same on every run.
  let seed = 12345;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const random = (n: number, spread: number) => Array.from({ length: n }, () => `10.0.${next(spread)}.${next(spread)}:80`);
  const rising = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i}:80`);
  return [
    { name: 'empty', texts: [] },
    { name: 'one', texts: ['10.0.0.1:80'] },
    { name: 'two, reversed', texts: ['10.0.0.2:80', '10.0.0.1:80'] },
    { name: 'a prefix of another text (10.0.0.3 and 10.0.0.30)', texts: ['10.0.0.3:80', '10.0.0.30:80', '10.0.0.3:8080', '10.0.0.300:1'] },
    { name: 'all equal', texts: ['10.0.0.1:80', '10.0.0.1:80', '10.0.0.1:80', '10.0.0.1:80'] },
    { name: 'IPv6 and IPv4 texts', texts: ['[fd00::2]:80', '10.0.0.1:80', '[fd00::1]:80', '[fd00::10]:80'] },
    { name: `rising, ${INSERTION_SORT_MAX}`, texts: rising(INSERTION_SORT_MAX) },
    { name: `falling, ${INSERTION_SORT_MAX}`, texts: rising(INSERTION_SORT_MAX).reverse() },
    { name: `random with ties, ${INSERTION_SORT_MAX}`, texts: random(INSERTION_SORT_MAX, 3) },
    { name: `random with ties, ${INSERTION_SORT_MAX + 1} (the built-in sort)`, texts: random(INSERTION_SORT_MAX + 1, 3) },
    ...[3, 7, 15, 16, 17, 31].map((n) => ({ name: `random with ties, ${n}`, texts: random(n, 4) })),
    { name: 'random, 200', texts: random(200, 50) },
  ];
})();

for (const c of sortCases) {
  test(`sortByEndpointText: ${c.name}`, () => {
    // Each endpoint is its own object, numbered by its place in the input: ties show their order.
    const endpoints = c.texts.map((ep, i) => ({ ...endpoint({ ep }), podName: `#${i}` }));
    const want = [...endpoints].sort(byEndpointText);
    const list = [...endpoints];
    const got = sortByEndpointText(list);
    assert.equal(got, list, 'sorted in place');
    const show = (eps: readonly EndpointInfo[]) => eps.map((e) => `${e.endpoint} ${e.podName}`);
    assert.deepEqual(show(got), show(want), `input: ${show(endpoints).join(', ')}`);
  });
}
