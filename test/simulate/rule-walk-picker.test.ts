/**
 * The rule-walking pickers of iptables and nftables mode: each new connection walks the compiled
 * rules of rules/example with the kernel's random draw (statistic; numgen). What is checked follows from kube-proxy's rules and the kernel, not from
 * kpsim's own output: every connection lands on an endpoint of the service; the spread fits the
 * rules' probabilities; a closed connection lingers in TIME_WAIT (120 s); ClientIP affinity
 * (iptables: `recent --rcheck --seconds 600 --reap`; nftables: an affinity set with a 600 s
 * timeout, updated by every connection) keeps a client on its endpoint while it comes back
 * within 600 s, and no longer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCluster } from '../../src/manifest/load.js';
import { modeDriver } from '../../src/node/modes.js';
import type { RulesMode, SimulationTarget } from '../../src/node/mode-driver.js';
import { chiSquareTest } from '../../src/simulate/fairness.js';
import { type ConnectionEvent, replayConnections } from '../../src/simulate/replay.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

const cluster = await loadCluster('rules/example');
const node = resolveNode(cluster);
const states = buildProxierStates(cluster, node);
const MODES: readonly RulesMode[] = ['iptables', 'nftables'];

function targetOf(name: string): SimulationTarget {
  const state = states[0]!;
  const sp = state.servicePorts.find((p) => p.info.svcPortName.name === name)!;
  return { state, servicePort: sp, address: sp.info.clusterIP, port: sp.info.port, proto: 'tcp' };
}
const open = (at: number, client: string, durationSeconds?: number): ConnectionEvent => ({ kind: 'open', at, client, ...(durationSeconds !== undefined ? { durationSeconds } : {}) });

for (const mode of MODES) {
  const driver = modeDriver(mode);
  const compiled = driver.compile(node, states);

  test(`${mode}: every connection lands on one of web's endpoints, spread as the rules' probabilities say`, () => {
    const target = targetOf('web');
    const events = Array.from({ length: 3000 }, (_, i) => open(i * 0.01, `100.64.${i >> 8}.${i & 255}:40000`, 1));
    const report = replayConnections(driver.picker(compiled, target, { seed: 5 }), events);
    const expected = driver.expectedShares(compiled, target);
    assert.deepEqual(report.backends.map((b) => b.addr).sort(), [...expected.keys()].sort());
    assert.equal(report.refused, 0);
    const counts = [...expected.keys()].map((e) => report.backends.find((b) => b.addr === e)?.received ?? 0);
    const fit = chiSquareTest(counts, [...expected.values()]);
    assert.ok(fit.pValue > 0.001, `counts ${counts.join(', ')} against ${[...expected.values()].join(', ')}: p = ${fit.pValue}`);
  });

  test(`${mode}: a closed connection counts inactive for conntrack's TIME_WAIT (120 s), then leaves the counters`, () => {
    const target = targetOf('web');
    const events = [open(0, '100.64.0.1:40000', 5), open(0, '100.64.0.2:40000')];
    const at = (endAt: number): string => replayConnections(driver.picker(compiled, target, { seed: 1 }), events, { endAt }).backends
      .filter((b) => b.received > 0 || b.activeConns > 0 || b.inactConns > 0)
      .map((b) => `${b.activeConns}/${b.inactConns}`).sort().join(' ');
    const inactiveAt100 = at(100).split(' ').reduce((n, pair) => n + Number(pair.split('/')[1]), 0);
    const inactiveAt130 = at(130).split(' ').reduce((n, pair) => n + Number(pair.split('/')[1]), 0);
    assert.equal(inactiveAt100, 1, `at 100 s: ${at(100)}`);
    assert.equal(inactiveAt130, 0, `at 130 s: ${at(130)}`);
  });

  test(`${mode}: ClientIP affinity: a client stays on its endpoint while it comes back within 600 s`, () => {
    const target = targetOf('api');
    assert.equal(target.servicePort.info.sessionAffinityTimeoutSeconds, 600);
    const picker = driver.picker(compiled, target, { seed: 3 });
    const first = picker.pick('100.64.0.1:40000')!.addr;
    for (let t = 300; t <= 3000; t += 300) {
      picker.advanceTo(t);
      assert.equal(picker.pick(`100.64.0.1:${40000 + t}`)!.addr, first, `at ${t} s (each connection refreshes the recent entry)`);
    }
    // Away for longer than 600 s: a fresh random pick; over many such clients every endpoint shows up.
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const client = `100.64.1.${i}`;
      picker.advanceTo(4000 + i * 1000);
      seen.add(picker.pick(`${client}:40000`)!.addr);
      picker.advanceTo(4000 + i * 1000 + 601);
      seen.add(picker.pick(`${client}:40001`)!.addr);
    }
    const endpoints = target.servicePort.categorized.allReachableEndpoints.map((e) => e.endpoint).sort();
    assert.deepEqual([...seen].sort(), endpoints);
  });

  test(`${mode}: the same seed places the same stream the same way; another seed differently`, () => {
    const target = targetOf('web');
    const events = Array.from({ length: 200 }, (_, i) => open(i, `100.64.0.${i}:40000`, 1));
    const picks = (seed: number): (string | null)[] => replayConnections(driver.picker(compiled, target, { seed }), events).picks;
    assert.deepEqual(picks(7), picks(7));
    assert.notDeepEqual(picks(7), picks(8));
  });
}
