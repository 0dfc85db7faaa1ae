/**
 * Compile benchmark: a full kube-proxy sync for 1k and 10k services x 10 endpoints.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/compile.bench.js [--quick]
 *
 * Clusters are generated in-process from a seed (a realistic mix: mostly ClusterIP, some
 * NodePort, a few LoadBalancers with source ranges, some externalTrafficPolicy Local). Only the
 * compile and the render are timed; decoding the manifests and building the proxier state are
 * not. Two paths, timed in the same run:
 *
 * - direct: compileIptablesSave, state -> iptables-save text in one buffer (what `kpsim compile`
 *   prints); no Ruleset is built. Its buffers are kept from one compile to the next, as
 *   kube-proxy keeps its restore buffers between syncs, so the medians are of repeated syncs;
 *   the first compile at each size (bigger buffers allocated, and every chain name hashed: like
 *   kube-proxy, which hashes them when it first sees a service port or endpoint, the compiler
 *   keeps them for as long as the state's objects live) is printed beside them.
 * - Ruleset: compileIptablesRules (the Ruleset the tracer walks), then renderIptablesSave.
 *
 * Baselines in the same run: the line-joining renderer renderIptablesSave used to be (a string
 * per rule, joined per table), and the Ruleset path with it (compile + old render).
 *
 * Printed: median CPU time of the process (steadier when the machine is shared, GC included)
 * with the wall time beside it, the median page faults of the direct compile and of the
 * Ruleset's compile and render (memory touched for the first time, not work), rule count,
 * output size, heap after each path with its result held, and the 10k/1k ratio (about 10 for a
 * compiler that scales linearly). Targets are printed beside the figures, never asserted.
 */
import { compileIptablesRules, compileIptablesSave } from '../src/iptables/compile.js';
import { countRules, renderIptablesSave, renderTable } from '../src/iptables/render.js';
import type { Ruleset } from '../src/iptables/types.js';
import { BENCH_SEED as SEED, ENDPOINTS_PER_SERVICE, type StepTimes, cpuMs, gc, generatedState, machineLine, median, timeSteps } from './common.js';

const TARGET_CPU_SECONDS_10K = 0.5;
const TARGET_HEAP_MB_10K = 300;

/** Page faults of the process so far (minor: first touches of memory, ~12.5 µs each on a small VM). */
function pageFaults(): number {
  return process.resourceUsage().minorPageFault;
}

/**
 * `run`, with its page faults added to `into` (the warm-up run left out): how much of a step is
 * memory touched for the first time (fresh buffers, large strings) rather than work.
 */
function countingFaults(into: number[], run: () => void): () => void {
  let runs = 0;
  return () => {
    const f0 = pageFaults();
    run();
    if (runs++ > 0) into.push(pageFaults() - f0);
  };
}

/** Median page faults per step. */
interface StepFaults {
  direct: number;
  compile: number;
  render: number;
}

interface Figures {
  services: number;
  faults: StepFaults;
  endpoints: number;
  direct: StepTimes;
  /** The first direct compile of this state: its chain names are hashed and its buffers allocated, not kept from before. */
  firstDirect: StepTimes;
  compile: StepTimes;
  render: StepTimes;
  oldRender: StepTimes;
  rules: number;
  textBytes: number;
  /** Heap with the state and the direct path's text held. */
  directHeapMB: number;
  /** Outside the heap at the same time (the text itself, spare buffers). */
  directExternalMB: number;
  /** Heap with the state and the Ruleset held. */
  rulesetHeapMB: number;
  /** Heap with only the state held. */
  stateHeapMB: number;
}

/**
 * The renderer before it wrote into one buffer: each rule a string, lines joined per table. It
 * reads the tables' Maps, so it also makes them, and the chain objects of the service ports'
 * chains (declared-chains.ts), which renderIptablesSave writes without making.
 */
function renderByLines(ruleset: Ruleset): string {
  const parts: string[] = [];
  for (const table of ruleset.tables.values()) parts.push(renderTable(table));
  return parts.join('');
}

function heapMB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 1048576;
}

/** Memory outside V8's heap: buffers, and strings as long as the text (Node keeps those outside). */
function externalMB(): number {
  const usage = process.memoryUsage();
  return (usage.external + usage.arrayBuffers) / 1048576;
}

function measure(services: number, runs: number): Figures {
  const s = generatedState(services);
  const stateHeapMB = heapMB();
  let ruleset: Ruleset | undefined;
  let text = '';
  let direct = '';
  let old = '';
  gc?.();
  const c0 = cpuMs();
  const t0 = performance.now();
  direct = compileIptablesSave(s);
  const firstDirect = { cpuMs: cpuMs() - c0, wallMs: performance.now() - t0 };
  // Rounds interleave the paths, so a change in the machine's load touches them alike.
  // Each timed step starts on a collected heap holding the state and what it reads (the
  // Ruleset, for the renders): the other paths' results are let go first (`drop`, untimed), so
  // no path pays for collecting another's. The last round's texts are compared afterwards.
  const last = { direct: '', text: '' };
  const faults = { direct: [] as number[], compile: [] as number[], render: [] as number[] };
  const [directTimes, compile, render, oldRender] = timeSteps(runs, [
    {
      drop: () => {
        ruleset = undefined;
        text = old = '';
      },
      run: countingFaults(faults.direct, () => (direct = compileIptablesSave(s))),
    },
    {
      drop: () => {
        last.direct = direct;
        direct = '';
      },
      run: countingFaults(faults.compile, () => (ruleset = compileIptablesRules(s))),
    },
    { drop: () => undefined, run: countingFaults(faults.render, () => (text = renderIptablesSave(ruleset!))) },
    {
      drop: () => {
        last.text = text;
        text = '';
      },
      run: () => (old = renderByLines(ruleset!)),
    },
  ]) as [StepTimes, StepTimes, StepTimes, StepTimes];
  text = last.text;
  last.direct = last.text = '';
  if (text !== old) throw new Error(`${services} services: renderIptablesSave and the line-joining renderer disagree`);
  const rules = countRules(ruleset!);
  const rulesetHeapMB = heapMB();
  ruleset = undefined;
  old = '';
  direct = compileIptablesSave(s);
  if (direct !== text) throw new Error(`${services} services: compileIptablesSave and renderIptablesSave(compileIptablesRules) disagree`);
  text = '';
  const directHeapMB = heapMB();
  const directExternalMB = externalMB();
  let endpoints = 0;
  for (const sp of s.servicePorts) endpoints += sp.endpoints.length;
  const faultMedians = { direct: median(faults.direct), compile: median(faults.compile), render: median(faults.render) };
  return { services, faults: faultMedians, endpoints, direct: directTimes, firstDirect, compile, render, oldRender, rules, textBytes: direct.length, directHeapMB, directExternalMB, rulesetHeapMB, stateHeapMB };
}

function cpuWall(t: { cpuMs: number; wallMs: number }): string {
  return `${t.cpuMs.toFixed(0).padStart(5)} ms cpu (${t.wallMs.toFixed(0)} wall)`;
}

function sum(a: StepTimes, b: StepTimes): StepTimes {
  return { cpuMs: a.cpuMs + b.cpuMs, wallMs: a.wallMs + b.wallMs };
}

/** " (target < 500 ms)" beside a figure of the size the targets are for; nothing at other sizes. */
function cpuTarget(f: Figures): string {
  return f.services === 10000 ? ` (target < ${TARGET_CPU_SECONDS_10K * 1000} ms cpu)` : '';
}

function heapTarget(f: Figures): string {
  return f.services === 10000 ? ` (target < ${TARGET_HEAP_MB_10K} MB)` : '';
}

function report(f: Figures): void {
  const rulesetPath = sum(f.compile, f.render);
  const oldPath = sum(f.compile, f.oldRender);
  console.log(`${f.services} services, ${f.endpoints} endpoints: ${f.rules} rules, ${(f.textBytes / 1048576).toFixed(1)} MB of text; heap: state ${f.stateHeapMB.toFixed(0)} MB`);
  console.log(
    `  direct  compileIptablesSave             ${cpuWall(f.direct)}${cpuTarget(f)}  heap ${f.directHeapMB.toFixed(0)} MB with the text${heapTarget(f)} (+ ${f.directExternalMB.toFixed(0)} MB outside it); ` +
      `first compile of this state (chain names hashed, buffers allocated) ${cpuWall(f.firstDirect)}`,
  );
  console.log(`  Ruleset compile ${cpuWall(f.compile)} + render ${cpuWall(f.render)} = ${cpuWall(rulesetPath)}${cpuTarget(f)}  heap ${f.rulesetHeapMB.toFixed(0)} MB with the Ruleset${heapTarget(f)}`);
  console.log(`  baseline: line-joining render ${cpuWall(f.oldRender)}; compile + it ${cpuWall(oldPath)}`);
  console.log(
    `  page faults (median; ~12.5 µs each here): direct ${f.faults.direct}, Ruleset compile ${f.faults.compile} + render ${f.faults.render} ` +
      `(${f.textBytes >= 1 << 20 ? `the text is ${Math.ceil(f.textBytes / 4096)} pages` : 'small text'})`,
  );
  console.log(
    `  ratios (cpu): direct / baseline path ${(f.direct.cpuMs / oldPath.cpuMs).toFixed(2)}, Ruleset path / baseline path ${(rulesetPath.cpuMs / oldPath.cpuMs).toFixed(2)}, ` +
      `render / line-joining render ${(f.render.cpuMs / f.oldRender.cpuMs).toFixed(2)}`,
  );
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const [small, large] = quick ? [100, 1000] : [1000, 10000];
  const runs = quick ? 3 : 7;
  console.log(`compile bench: ${small} and ${large} services x ${ENDPOINTS_PER_SERVICE} endpoints, seed ${SEED}, median of ${runs} runs`);
  console.log(`${machineLine()}${gc ? '' : ' (no --expose-gc: heap figures include garbage)'}`);
  const a = measure(small, runs);
  report(a);
  const b = measure(large, runs);
  report(b);
  console.log(
    `ratio ${large}/${small} (cpu): direct ${(b.direct.cpuMs / Math.max(a.direct.cpuMs, 0.001)).toFixed(1)}, ` +
      `compile ${(b.compile.cpuMs / Math.max(a.compile.cpuMs, 0.001)).toFixed(1)}, render ${(b.render.cpuMs / Math.max(a.render.cpuMs, 0.001)).toFixed(1)} (linear would be ${(large / small).toFixed(0)})`,
  );
  if (!quick) {
    const direct = b.direct.cpuMs / 1000;
    const rulesetPath = (b.compile.cpuMs + b.render.cpuMs) / 1000;
    console.log(`target: 10k x 10 compiled and rendered in < ${TARGET_CPU_SECONDS_10K} s cpu (median): direct ${direct.toFixed(2)} s (${direct < TARGET_CPU_SECONDS_10K ? 'met' : 'NOT met'}); through the Ruleset ${rulesetPath.toFixed(2)} s (${rulesetPath < TARGET_CPU_SECONDS_10K ? 'met' : 'NOT met'})`);
    console.log(`target: heap < ${TARGET_HEAP_MB_10K} MB: direct ${b.directHeapMB.toFixed(0)} MB (${b.directHeapMB < TARGET_HEAP_MB_10K ? 'met' : 'NOT met'}); with the Ruleset ${b.rulesetHeapMB.toFixed(0)} MB (${b.rulesetHeapMB < TARGET_HEAP_MB_10K ? 'met' : 'NOT met'})`);
  }
}

main();
