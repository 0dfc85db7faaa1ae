/**
 * The self-healing scenario, for real: kpsim's API, three pods with readiness probes writing
 * their EndpointSlice through it, kpsim agent in userspace mode, HTTP load through its proxy;
 * one pod is killed under load and comes back. Only requests on the killed pod's connections
 * fail; while it is out of the rules it gets nothing and the other two share the load; once
 * back it takes a share again. Phases are counted in requests: nothing here waits on a clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatChurnReport, runChurn } from '../../src/load/churn.js';

test('killing one of three pods under load fails only what was on its connections; it drains and comes back', { timeout: 300_000 }, async () => {
  const log: string[] = [];
  const report = await runChurn({ requestsPerPhase: 300, clients: 6, requestsPerConnection: 10, minSyncPeriodSeconds: 0, log: (l) => log.push(l) });
  const text = `${formatChurnReport(report)}\n${log.join('\n')}`;
  const q = report.requests;
  assert.equal(q.failedElsewhere, 0, `no request failed on the other pods or on connections opened after the kill:\n${text}`);
  // A new connection whose first request was on the wire at the kill has not said which pod it
  // reached; its failure is counted apart, and bounded by the connections the killed pod had.
  assert.ok(q.failedUnattributedInFlight <= q.inFlightUnattributed, `unattributed failures were on the wire at the kill:\n${text}`);
  assert.ok(q.failedOnKilledPodConnections + q.failedUnattributedInFlight <= q.killedPodConnections, `at most one failure per connection the killed pod had open:\n${text}`);
  const killed = report.killed.pod;
  for (const pod of report.pods.map((p) => p.pod)) assert.ok(report.phases.before.share[pod]! > 0, `${pod} answered before the kill:\n${text}`);
  assert.equal(report.phases.during.share[killed], 0, `the killed pod got nothing while out of the rules:\n${text}`);
  for (const pod of report.pods.map((p) => p.pod).filter((p) => p !== killed)) assert.ok(report.phases.during.share[pod]! > 0.3, `${pod} took over:\n${text}`);
  assert.ok(report.phases.after.share[killed]! > 0, `the pod took a share again once back:\n${text}`);
  assert.equal(report.phases.during.failed + report.phases.after.failed, 0, text);
  assert.ok(Number.isFinite(report.timings.killToNotReadyMs), `the probe saw the kill:\n${text}`);
});
