/**
 * `kpsim simulate --events`: connections over a timeline of endpoint changes, in each mode's
 * kernel (conntrack in iptables and nftables mode, IPVS's connection table). Table-driven over the stories users ask about: a UDP (DNS) pod deleted, with and
 * without kube-proxy's conntrack cleanup; a TCP pod deleted; a TCP pod terminating (still
 * serving); the service deleted. Each row states what must happen and the report is the evidence.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseTarget } from '../../src/cli/simulate.js';
import { KpsimError } from '../../src/errors.js';
import { loadCluster } from '../../src/manifest/load.js';
import { parseTimeline } from '../../src/simulate/cluster-timeline.js';
import { workload } from '../../src/simulate/simulation.js';
import { type TimelineReport, type TimelineRun, formatTimelineReport, simulateTimeline } from '../../src/simulate/timeline.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

const cluster = await loadCluster('rules/example');
const node = resolveNode(cluster);
const states = buildProxierStates(cluster, node);

function run(target: string, events: string): TimelineReport {
  const timeline = parseTimeline(events, 'events.yaml');
  const chosen = chooseTarget(states, target);
  const opts = { connections: 300, durationSeconds: 60, keepalive: true, seed: 7 };
  return simulateTimeline({ cluster, node }, chosen, workload(chosen.state, opts), timeline, 'events.yaml', { modes: ['iptables', 'ipvs', 'nftables'], schedulers: ['rr'], seed: 7, durationSeconds: 60 });
}

function endpoint(r: TimelineRun, ep: string) {
  const found = r.endpoints.find((e) => e.endpoint === ep);
  assert.ok(found, `${ep} in the report`);
  return found;
}

/** Sum of a slice column from `from` seconds on. */
function since(r: TimelineRun, from: number, key: 'opened' | 'blackholed' | 'broken' | 'delivered' | 'refused' | 'rebalanced'): number {
  return r.overTime.filter((s) => s.from >= from).reduce((n, s) => n + s[key], 0);
}

const cases: { name: string; target: string; events: string; check: (r: TimelineRun) => void }[] = [
  {
    name: 'a DNS pod deleted: UDP flows blackhole until the sync, then kube-proxy\'s cleanup moves them',
    target: 'svc/kube-system/kube-dns:dns',
    events: 'programmingDelaySeconds: 2\nevents:\n- {at: 20, endpoint: "10.244.1.3:53", change: removed}\n',
    check: (r) => {
      const gone = endpoint(r, '10.244.1.3:53');
      assert.ok(gone.blackholed > 0, 'packets were lost between the deletion and the sync');
      assert.ok(gone.rebalancedAway > 0, 'its flows moved');
      assert.equal(gone.openAtEnd, 0, 'no flow is left on the deleted pod');
      assert.equal(since(r, 25, 'blackholed'), 0, 'nothing is lost once the sync is done');
    },
  },
  {
    name: 'a TCP pod deleted: its connections break, new ones go elsewhere after the sync',
    target: 'svc/default/web',
    events: 'events:\n- {at: 20, endpoint: "10.244.1.6:8080", change: removed}\n',
    check: (r) => {
      const gone = endpoint(r, '10.244.1.6:8080');
      assert.ok(gone.broken > 0, 'its connections broke');
      assert.equal(gone.blackholed, 0);
      assert.equal(since(r, 25, 'broken'), 0, 'no connection breaks once the sync is done');
      const openedAfter = r.endpoints.filter((e) => e.endpoint !== '10.244.1.6:8080').reduce((n, e) => n + e.opened, 0);
      assert.ok(openedAfter > 0);
    },
  },
  {
    name: 'a TCP pod terminating (still serving): established connections are kept, new ones go elsewhere',
    target: 'svc/default/web',
    events: 'events:\n- {at: 20, endpoint: "10.244.1.6:8080", change: terminating}\n',
    check: (r) => {
      const draining = endpoint(r, '10.244.1.6:8080');
      assert.equal(draining.broken, 0, 'nothing breaks');
      assert.ok(draining.openAtEnd > 0, 'connections opened before stay on it');
      assert.equal(r.totals.broken, 0);
    },
  },
];

for (const c of cases) {
  test(c.name, () => {
    const report = run(c.target, c.events);
    assert.deepEqual(report.runs.map((r) => r.mode), ['iptables', 'ipvs', 'nftables']);
    for (const r of report.runs) {
      try {
        c.check(r);
      } catch (e) {
        (e as Error).message = `${r.mode}: ${(e as Error).message}\n${formatTimelineReport({ ...report, runs: [r] })}`;
        throw e;
      }
    }
  });
}

test('without kube-proxy\'s cleanup, iptables and nftables mode\'s UDP flows stay blackholed; IPVS moves them (expire_nodest_conn)', () => {
  const report = run('svc/kube-system/kube-dns:dns', 'conntrackCleanup: false\nevents:\n- {at: 20, endpoint: "10.244.1.3:53", change: removed}\n');
  const [iptables, ipvs, nftables] = report.runs as [TimelineRun, TimelineRun, TimelineRun];
  const text = formatTimelineReport(report);
  for (const r of [iptables, nftables]) {
    assert.ok(endpoint(r, '10.244.1.3:53').openAtEnd > 0, `${r.mode}: flows stuck on the deleted pod:\n${text}`);
    assert.ok(since(r, 40, 'blackholed') > 0, `${r.mode}: still blackholed long after the sync:\n${text}`);
  }
  assert.equal(endpoint(ipvs, '10.244.1.3:53').openAtEnd, 0, text);
  assert.equal(since(ipvs, 25, 'blackholed'), 0, text);
});

test('the service deleted: new connections are refused after the sync', () => {
  const report = run('svc/default/web', 'events:\n- {at: 30, change: service-deleted}\n');
  for (const r of report.runs) {
    assert.equal(since(r, 35, 'opened'), 0, `${r.mode}: nothing is accepted once the rules are gone\n${formatTimelineReport(report)}`);
    assert.ok(since(r, 35, 'refused') > 0, r.mode);
  }
});

test('a timeline file with problems is refused, naming the file and field', () => {
  const cases: { text: string; message: RegExp }[] = [
    { text: 'events: [{at: -1, endpoint: "10.0.0.1:80", change: removed}]', message: /events\.yaml: events\[0\]\.at: -1 is not a time in seconds >= 0/ },
    { text: 'events: [{at: 1, endpoint: "10.0.0.1:80", change: exploded}]', message: /events\[0\]\.change: "exploded" is not one of added, removed, terminating, not-ready, ready, service-deleted/ },
    { text: 'events: [{at: 1, change: removed}]', message: /events\[0\]\.endpoint: is required/ },
    { text: 'packetIntervalSeconds: 0\nevents: []', message: /packetIntervalSeconds: 0 is not a number of seconds > 0/ },
    { text: 'events: {at: 1}', message: /events: is not a list/ },
    { text: 'events: [', message: /not valid YAML or JSON/ },
  ];
  for (const c of cases) {
    assert.throws(() => parseTimeline(c.text, 'events.yaml'), (e: unknown) => e instanceof KpsimError && c.message.test(e.message), c.text);
  }
  assert.throws(() => run('svc/default/web', 'events:\n- {at: 5, endpoint: "10.9.9.9:8080", change: removed}\n'), /10\.9\.9\.9:8080 is not in the EndpointSlices of default\/web/);
});
