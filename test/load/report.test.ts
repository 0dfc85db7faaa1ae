import { test } from 'node:test';
import { emptyErrorCounts } from '../../src/load/error-kinds.js';
import { formatLoadReport } from '../../src/load/format.js';
import { type EndpointShare, LOAD_REPORT_SCHEMA, buildLoadReport, endpointShares } from '../../src/load/report.js';
import type { LoadRunResult } from '../../src/load/types.js';

const a = '10.244.0.5:8080';
const b = '10.244.1.6:8080';
const c = '10.244.1.7:8080';

const shareCases: {
  name: string;
  requests: { endpoint: string; pod: string; requests: number }[];
  connections: { endpoint: string; pod: string; connections: number }[];
  total: number;
  want: EndpointShare[];
}[] = [
  {
    name: 'even spread over three endpoints',
    requests: [{ endpoint: a, pod: 'pa', requests: 30 }, { endpoint: b, pod: 'pb', requests: 30 }, { endpoint: c, pod: 'pc', requests: 40 }],
    connections: [{ endpoint: a, pod: 'pa', connections: 3 }, { endpoint: b, pod: 'pb', connections: 3 }, { endpoint: c, pod: 'pc', connections: 4 }],
    total: 100,
    want: [
      { endpoint: a, pod: 'pa', requests: 30, requestShare: 0.3, connections: 3, connectionShare: 0.3 },
      { endpoint: b, pod: 'pb', requests: 30, requestShare: 0.3, connections: 3, connectionShare: 0.3 },
      { endpoint: c, pod: 'pc', requests: 40, requestShare: 0.4, connections: 4, connectionShare: 0.4 },
    ],
  },
  {
    name: 'an endpoint the proxy lists but that got nothing still shows',
    requests: [{ endpoint: b, pod: 'pb', requests: 10 }],
    connections: [{ endpoint: a, pod: 'pa', connections: 0 }, { endpoint: b, pod: '', connections: 2 }],
    total: 10,
    want: [
      { endpoint: a, pod: 'pa', requests: 0, requestShare: 0, connections: 0, connectionShare: 0 },
      { endpoint: b, pod: 'pb', requests: 10, requestShare: 1, connections: 2, connectionShare: 1 },
    ],
  },
  {
    name: 'unattributed responses lower the shares, they are not spread over endpoints',
    requests: [{ endpoint: a, pod: 'pa', requests: 5 }],
    connections: [],
    total: 10,
    want: [{ endpoint: a, pod: 'pa', requests: 5, requestShare: 0.5, connections: 0, connectionShare: 0 }],
  },
  { name: 'nothing at all', requests: [], connections: [], total: 0, want: [] },
  {
    name: 'rows come sorted by endpoint text',
    requests: [{ endpoint: c, pod: 'pc', requests: 1 }, { endpoint: a, pod: 'pa', requests: 1 }],
    connections: [{ endpoint: b, pod: 'pb', connections: 1 }],
    total: 2,
    want: [
      { endpoint: a, pod: 'pa', requests: 1, requestShare: 0.5, connections: 0, connectionShare: 0 },
      { endpoint: b, pod: 'pb', requests: 0, requestShare: 0, connections: 1, connectionShare: 1 },
      { endpoint: c, pod: 'pc', requests: 1, requestShare: 0.5, connections: 0, connectionShare: 0 },
    ],
  },
];

for (const s of shareCases) {
  test(`shares: ${s.name}`, (t) => {
    t.plan(1);
    t.assert.deepEqual(endpointShares(s.requests, s.connections, s.total), s.want);
  });
}

const run: LoadRunResult = {
  elapsedSeconds: 2,
  responses: 1000,
  statusClasses: { '1xx': 0, '2xx': 990, '3xx': 0, '4xx': 0, '5xx': 10 },
  latency: { count: 1000, meanMs: 0.2, p50Ms: 0.15, p90Ms: 0.3, p99Ms: 1.25, maxMs: 12.5 },
  errors: { ...emptyErrorCounts(), non2xx: 10, resets: 1, total: 11 },
  endpoints: [{ endpoint: a, pod: 'web-a', requests: 600 }, { endpoint: b, pod: 'web-b', requests: 398 }],
  unattributed: 2,
};

const report = buildLoadReport({
  target: { spec: 'svc/web', service: 'default/web:http', via: 'ClusterIP', address: '10.96.100.20:80', listener: '127.0.10.1:80' },
  scheduler: 'rr',
  settings: { connections: 10, durationSeconds: 2, pipelining: 1, keepAlive: true, loadGenerator: 'autocannon in a worker thread; the proxy and the backend pods share the main thread' },
  run,
  connections: [{ endpoint: a, pod: 'web-a', connections: 6 }, { endpoint: b, pod: 'web-b', connections: 4 }],
});

test('the load report carries the run and its derived figures', (t) => {
  t.plan(6);
  t.assert.equal(report.schema, LOAD_REPORT_SCHEMA);
  t.assert.equal(report.requests.perSecond, 500);
  t.assert.equal(report.endpoints.reduce((sum, e) => sum + e.requests, 0) + report.unattributedRequests, report.requests.total);
  t.assert.deepEqual(report.endpoints.map((e) => [e.requestShare, e.connectionShare]), [[0.6, 0.6], [0.398, 0.4]]);
  t.assert.equal(report.spread.requests.total, 998);
  t.assert.equal(Math.abs(report.spread.connections.maxOverMean - 1.2) < 1e-9, true);
});

test('the report survives JSON unchanged (what --json prints is the model)', (t) => {
  t.plan(1);
  t.assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
});

test('the text report names target, figures, errors and each endpoint', (t) => {
  const text = formatLoadReport(report);
  const want = [
    'default/web:http via ClusterIP 10.96.100.20:80 (proxy listener 127.0.10.1:80)',
    'scheduler rr; 10 connections, 2 s, keep-alive, pipelining 1',
    '1000 in 2.0 s = 500 req/s  (2xx 990, 5xx 10)',
    'p50 0.150 ms  p90 0.300 ms  p99 1.25 ms  max 12.5 ms',
    '11 (non-2xx 10, timeouts 0, resets 1, refused 0, other 0)',
    `${a}  web-a`,
    '(2 responses named no endpoint)',
    'connections max/mean 1.20',
  ];
  t.plan(want.length);
  for (const w of want) t.assert.equal(text.includes(w), true, `missing ${JSON.stringify(w)} in:\n${text}`);
});
