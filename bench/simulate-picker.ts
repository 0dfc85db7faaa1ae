/**
 * `kpsim simulate`'s iptables-mode picker at 1M connections (part of trace.bench.ts: not a
 * benchmark file of its own). Timed: replaying the simulator's seeded stream (workload(), the
 * connections `kpsim simulate --connections N` makes) through the iptables driver's picker,
 * whose tracer keeps walks (walk-cache.ts), against the same picker over a tracer that walks
 * every connection, on a tenth of the stream (its rate is what 1M would take at that pace).
 * The target service is rules/example's `api` (ClientIP affinity: recent lists kept between
 * connections) and `web` (none).
 */
import { performance } from 'node:perf_hooks';
import { loadCluster } from '../src/manifest/load.js';
import { modeDriver } from '../src/node/modes.js';
import type { SimulationTarget } from '../src/node/mode-driver.js';
import type { CompiledIptables } from '../src/node/modes/iptables.js';
import { traceContextOf } from '../src/node/trace-context.js';
import { replayConnections } from '../src/simulate/replay.js';
import { ruleWalkPicker } from '../src/simulate/rule-walk-picker.js';
import { workload } from '../src/simulate/simulation.js';
import { createTracer } from '../src/trace/tracer.js';
import { buildProxierStates, resolveNode } from '../src/tracker/proxier-state.js';
import { cpuMs, gc } from './common.js';

const TARGET_SECONDS = 10;

export async function simulationBench(quick: boolean): Promise<string[]> {
  const connections = quick ? 200_000 : 1_000_000;
  const cluster = await loadCluster('rules/example');
  const node = resolveNode(cluster);
  const states = buildProxierStates(cluster, node);
  const state = states[0]!;
  const driver = modeDriver('iptables');
  const lines = [`kpsim simulate's iptables picker (rules/example), ${connections.toLocaleString('en-US')} connections over 600 s:`];
  const events = workload(state, { connections, durationSeconds: 600, keepalive: false, seed: 1 });
  const baselineEvents = events.slice(0, connections / 10);
  for (const name of ['api', 'web']) {
    const sp = state.servicePorts.find((p) => p.info.svcPortName.name === name)!;
    const target: SimulationTarget = { state, servicePort: sp, address: sp.info.clusterIP, port: sp.info.port, proto: 'tcp' };
    const compiled = driver.compile(node, [state], { gracefulTermination: true }) as CompiledIptables;
    const time = (run: () => void): { s: number; cpuS: number } => {
      gc?.();
      const c0 = cpuMs();
      const t0 = performance.now();
      run();
      return { s: (performance.now() - t0) / 1000, cpuS: (cpuMs() - c0) / 1000 };
    };
    const kept = time(() => replayConnections(driver.picker(compiled, target, { seed: 1 }), events, { endAt: 600 }));
    const walking = createTracer(compiled.rulesets, traceContextOf(compiled.states), { cache: false });
    const walked = time(() => replayConnections(ruleWalkPicker(walking, {
      packet: { proto: 'tcp', dst: target.address, dport: target.port },
      endpoints: sp.categorized.allReachableEndpoints.map((e) => e.endpoint),
      seed: 1, label: 'iptables random',
    }), baselineEvents));
    const scaled = { s: walked.s * (events.length / baselineEvents.length), cpuS: walked.cpuS * (events.length / baselineEvents.length) };
    const affinity = sp.info.sessionAffinityTimeoutSeconds > 0 ? 'ClientIP affinity' : 'no affinity';
    lines.push(`  ${name} (${affinity}): kept walks ${kept.s.toFixed(1)} s (${kept.cpuS.toFixed(1)} s CPU)  (target: seconds, < ${TARGET_SECONDS} s)`);
    lines.push(`    every connection walked: ${walked.s.toFixed(1)} s (${walked.cpuS.toFixed(1)} s CPU) for ${baselineEvents.length.toLocaleString('en-US')}, so ${scaled.s.toFixed(0)} s (${scaled.cpuS.toFixed(0)} s CPU) for all; kept / walked = ${(scaled.s / kept.s).toFixed(1)}x faster (CPU: ${(scaled.cpuS / kept.cpuS).toFixed(1)}x)`);
  }
  return lines;
}
