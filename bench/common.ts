/**
 * What the benchmarks share: the seeded cluster they all measure on, CPU-time, timing and median
 * helpers, and the line that records the machine. Not a benchmark itself (run.ts runs only
 * *.bench.js files).
 */
import { cpus, loadavg } from 'node:os';
import { clusterFromManifests } from '../src/manifest/load.js';
import { buildProxierState, resolveNode } from '../src/tracker/proxier-state.js';
import type { ProxierState } from '../src/tracker/types.js';
import { generateClusterManifests } from '../test/helpers/cluster-builders.js';

export const BENCH_SEED = 1337;
export const ENDPOINTS_PER_SERVICE = 10;
export const BENCH_NODES = 20;

/** global.gc when node runs with --expose-gc. */
export const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/**
 * The IPv4 proxier state of a generated cluster of `services` services x 10 endpoints (a
 * realistic mix of types and policies, from a fixed seed). JSON rather than YAML keeps
 * generation quick at 10k services; decoding is not what the benchmarks measure.
 */
export function generatedState(services: number): ProxierState {
  const manifests = generateClusterManifests({ seed: BENCH_SEED, services, endpointsPerService: ENDPOINTS_PER_SERVICE, nodes: BENCH_NODES });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  return buildProxierState(cluster, resolveNode(cluster), 4);
}

/** CPU time of the process in ms (all threads, GC included): steadier than wall time on a busy machine. */
export function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** "node v20.20.2, AMD EPYC x 2, load average 0.52": the figures depend on it. */
export function machineLine(): string {
  return `node ${process.version}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'} x ${cpus().length}, load average ${loadavg()[0]!.toFixed(2)}`;
}

/** A value with the wall and CPU time it took to make. */
export interface Timed<T> {
  readonly value: T;
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** `fn` run once, timed (wall and CPU of the process). */
export function timed<T>(fn: () => T): Timed<T> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const value = fn();
  return { value, wallMs: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

/** `timed` for a promise: the time until it settles. */
export async function timedAsync<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const value = await fn();
  return { value, wallMs: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

export interface StepTimes {
  /** Median wall time in ms. */
  readonly wallMs: number;
  /** Median CPU time of the process in ms. */
  readonly cpuMs: number;
}

/**
 * A step timed on its own heap: `drop` (untimed) lets go of what the step must not find still
 * held (its own last output, the other paths' results), then garbage is collected, then `run` is
 * timed. So no step pays for collecting what another step left behind.
 */
export interface IsolatedStep {
  readonly drop: () => void;
  readonly run: () => void;
}

/**
 * Runs `steps` in order, once to warm up and then `runs` times, collecting garbage before each
 * run (with --expose-gc), and before each IsolatedStep after its drop; returns each step's
 * median wall and CPU time.
 */
export function timeSteps(runs: number, steps: readonly ((() => void) | IsolatedStep)[]): StepTimes[] {
  const wall = steps.map((): number[] => []);
  const cpu = steps.map((): number[] => []);
  for (let i = 0; i <= runs; i++) {
    gc?.();
    steps.forEach((step, s) => {
      if (typeof step !== 'function') {
        step.drop();
        gc?.();
      }
      const run = typeof step === 'function' ? step : step.run;
      const c0 = cpuMs();
      const t0 = performance.now();
      run();
      if (i === 0) return;
      wall[s]!.push(performance.now() - t0);
      cpu[s]!.push(cpuMs() - c0);
    });
  }
  return steps.map((_, s) => ({ wallMs: median(wall[s]!), cpuMs: median(cpu[s]!) }));
}
