/**
 * Compile benchmark: a full kube-proxy sync for 1k and 10k services x 10 endpoints.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/compile.bench.js [--quick]
 *
 * Clusters are generated in-process from a seed (a realistic mix: mostly ClusterIP, some
 * NodePort, a few LoadBalancers with source ranges, some externalTrafficPolicy Local). Only the
 * compile (ProxierState -> Ruleset) and the render (Ruleset -> iptables-save text) are timed;
 * decoding the manifests and building the proxier state are not. Printed: median times, rule
 * count, output size, heap after compile, and the 10k/1k ratio, which should be about 10 for a
 * compiler that scales linearly. Times are wall clock, with the process's CPU time beside them
 * (steadier when the machine is shared). Targets are printed beside the figures, never asserted.
 */
import { compileIptablesRules } from '../src/iptables/compile.js';
import { countRules, renderIptablesSave } from '../src/iptables/render.js';
import type { Ruleset } from '../src/iptables/types.js';
import { BENCH_SEED as SEED, ENDPOINTS_PER_SERVICE, type StepTimes, gc, generatedState, machineLine, timeSteps } from './common.js';

const TARGET_SECONDS_10K = 1;
const TARGET_HEAP_MB_10K = 500;

interface Figures {
  services: number;
  endpoints: number;
  compileMs: number;
  renderMs: number;
  /** CPU time of the process (all threads, GC included): steadier than wall time on a busy machine. */
  compileCpuMs: number;
  renderCpuMs: number;
  rules: number;
  textBytes: number;
  heapMB: number;
}

function measure(services: number, runs: number): Figures {
  const s = generatedState(services);
  let ruleset: Ruleset | undefined;
  let text = '';
  const [compile, render] = timeSteps(runs, [
    () => {
      ruleset = compileIptablesRules(s);
    },
    () => {
      text = renderIptablesSave(ruleset!);
    },
  ]) as [StepTimes, StepTimes];
  gc?.();
  const heapMB = process.memoryUsage().heapUsed / 1048576;
  let endpoints = 0;
  for (const sp of s.servicePorts) endpoints += sp.endpoints.length;
  return {
    services,
    endpoints,
    compileMs: compile.wallMs,
    renderMs: render.wallMs,
    compileCpuMs: compile.cpuMs,
    renderCpuMs: render.cpuMs,
    rules: countRules(ruleset!),
    textBytes: text.length,
    heapMB,
  };
}

function row(f: Figures): string {
  return [
    `${String(f.services).padStart(6)} services`,
    `${String(f.endpoints).padStart(7)} endpoints`,
    `compile ${f.compileMs.toFixed(0).padStart(5)} ms (cpu ${f.compileCpuMs.toFixed(0).padStart(5)})`,
    `render ${f.renderMs.toFixed(0).padStart(5)} ms (cpu ${f.renderCpuMs.toFixed(0).padStart(5)})`,
    `${String(f.rules).padStart(7)} rules`,
    `${(f.textBytes / 1048576).toFixed(1).padStart(5)} MB text`,
    `heap ${f.heapMB.toFixed(0).padStart(4)} MB`,
  ].join('  ');
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const [small, large] = quick ? [100, 1000] : [1000, 10000];
  const runs = quick ? 3 : 5;
  console.log(`compile bench: ${small} and ${large} services x ${ENDPOINTS_PER_SERVICE} endpoints, seed ${SEED}, median of ${runs} runs`);
  console.log(`${machineLine()}${gc ? '' : ' (no --expose-gc: heap figures include garbage)'}`);
  const a = measure(small, runs);
  console.log(row(a));
  const b = measure(large, runs);
  console.log(row(b));
  const ratio = (b.compileMs + b.renderMs) / (a.compileMs + a.renderMs);
  const compileRatio = b.compileCpuMs / Math.max(a.compileCpuMs, 0.001);
  const renderRatio = b.renderCpuMs / Math.max(a.renderCpuMs, 0.001);
  console.log(`ratio ${large}/${small}: ${ratio.toFixed(1)} wall (compile + render); cpu: compile ${compileRatio.toFixed(1)}, render ${renderRatio.toFixed(1)} (linear would be ${(large / small).toFixed(0)})`);
  if (!quick) {
    const seconds = (b.compileMs + b.renderMs) / 1000;
    const cpuSeconds = (b.compileCpuMs + b.renderCpuMs) / 1000;
    console.log(`target: 10k x 10 compiled and rendered in < ${TARGET_SECONDS_10K} s: ${seconds.toFixed(2)} s wall, ${cpuSeconds.toFixed(2)} s cpu (${seconds < TARGET_SECONDS_10K ? 'met' : 'NOT met'})`);
    console.log(`  of which compile ${(b.compileMs / 1000).toFixed(2)} s, render ${(b.renderMs / 1000).toFixed(2)} s`);
    console.log(`target: heap < ${TARGET_HEAP_MB_10K} MB: ${b.heapMB.toFixed(0)} MB (${b.heapMB < TARGET_HEAP_MB_10K ? 'met' : 'NOT met'})`);
  }
}

main();
