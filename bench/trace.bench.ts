/**
 * Trace benchmark: packets through a node's kube-proxy rules at 1k and 10k services x 10
 * endpoints (about 38k and 368k rules).
 *
 *   npx tsc -p . && node dist/bench/trace.bench.js [--quick]
 *
 * The cluster is generated in-process from a seed (bench/common.ts, the same mix as the
 * compile benchmark) and compiled with kpsim's compiler; that is not timed. Timed: preparing
 * the tracer (compiling and indexing every chain, `warm`), the first trace of a fresh tracer
 * (what the CLI pays: chains are compiled on first use), tracing all outcomes of a packet, and
 * walking one seeded outcome. The packets are cluster-IP and node-port connections from pods
 * and from outside, picked with a seed. Each rate is the median of several rounds, in lookups
 * per second of wall time and per CPU-second (steadier on a shared machine); at 1k, the ratio
 * against a tracer that scans every chain rule by rule (the same run, the same packets). The
 * target (100k lookups/s at 10k services) is printed beside the figure, never asserted.
 */
import { performance } from 'node:perf_hooks';
import { compileIptablesRules } from '../src/iptables/compile.js';
import { countRules } from '../src/iptables/render.js';
import type { Ruleset } from '../src/iptables/types.js';
import { createTracer, type Tracer } from '../src/trace/tracer.js';
import type { Packet } from '../src/trace/types.js';
import type { ProxierState } from '../src/tracker/types.js';
import { seededRandom } from '../test/helpers/cluster-builders.js';
import { BENCH_NODES as NODES, BENCH_SEED as SEED, ENDPOINTS_PER_SERVICE, cpuMs, gc, generatedState, machineLine, median } from './common.js';

const TARGET_LOOKUPS_PER_SECOND = 100_000;
const PACKETS = 4096;

interface Setup {
  services: number;
  ruleset: Ruleset;
  packets: Packet[];
  localAddresses: readonly string[];
}

function setup(services: number): Setup {
  const state = generatedState(services);
  return { services, ruleset: compileIptablesRules(state), packets: packetsFor(state), localAddresses: state.localAddresses };
}

/** Mostly pod → cluster IP, some outside → cluster IP, some outside → node port. */
function packetsFor(state: ProxierState): Packet[] {
  const random = seededRandom(SEED + 1);
  const ports = state.servicePorts;
  const withNodePort = ports.filter((sp) => sp.info.nodePort !== 0);
  const nodeIP = state.nodeIPs[0]!;
  const packets: Packet[] = [];
  for (let i = 0; i < PACKETS; i++) {
    const roll = random();
    if (roll < 0.8 || withNodePort.length === 0) {
      const sp = ports[Math.floor(random() * ports.length)]!;
      const src = roll < 0.7 ? `10.244.${1 + Math.floor(random() * NODES)}.${2 + Math.floor(random() * 250)}` : '203.0.113.7';
      packets.push({ proto: 'tcp', src, dst: sp.info.clusterIP, dport: sp.info.port });
    } else {
      const sp = withNodePort[Math.floor(random() * withNodePort.length)]!;
      packets.push({ proto: 'tcp', src: '203.0.113.7', dst: nodeIP, dport: sp.info.nodePort });
    }
  }
  return packets;
}

interface Rate {
  /** Lookups per second of wall-clock time. */
  wall: number;
  /** Lookups per second of this process's CPU time: steadier on a machine shared with other work. */
  cpu: number;
}

/** Lookups per second over `seconds`, cycling through the packets: the median of `rounds`. */
function rate(seconds: number, rounds: number, lookup: (packet: Packet, i: number) => void, packets: readonly Packet[]): Rate {
  for (let i = 0; i < packets.length; i++) lookup(packets[i]!, i); // warm up: every packet once
  const walls: number[] = [];
  const cpus: number[] = [];
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    gc?.();
    const start = n;
    const c0 = cpuMs();
    const t0 = performance.now();
    let elapsed = 0;
    while (elapsed < (seconds * 1000) / rounds) {
      for (let k = 0; k < 256; k++, n++) lookup(packets[n % packets.length]!, n);
      elapsed = performance.now() - t0;
    }
    walls.push(((n - start) / elapsed) * 1000);
    cpus.push(((n - start) / (cpuMs() - c0)) * 1000);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

function show(r: Rate): string {
  return `${fmt(r.wall)} lookups/s (${fmt(r.cpu)} per CPU-second)`;
}

interface Build {
  tracer: Tracer;
  ms: number;
  cpuMs: number;
}

function prepare(s: Setup, useIndex: boolean): Build {
  gc?.();
  const c0 = cpuMs();
  const t0 = performance.now();
  const tracer = createTracer(s.ruleset, { localAddresses: s.localAddresses }, { useIndex });
  tracer.warm();
  return { tracer, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

/** A fresh tracer's first answer, chains compiled as the walk reaches them (the CLI's case). */
function firstTrace(s: Setup): { ms: number; cpuMs: number } {
  gc?.();
  const c0 = cpuMs();
  const t0 = performance.now();
  createTracer(s.ruleset, { localAddresses: s.localAddresses }).trace(s.packets[0]!);
  return { ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const sizes = quick ? [1000, 3000] : [1000, 10000];
  const seconds = quick ? 0.5 : 3;
  const rounds = quick ? 1 : 5;
  console.log(`trace benchmark: ${machineLine()}${quick ? ' (quick)' : ''}`);
  for (const services of sizes) {
    const s = setup(services);
    const first = firstTrace(s);
    const build = prepare(s, true);
    const tracer = build.tracer;
    const all = rate(seconds, rounds, (p) => tracer.trace(p), s.packets);
    const one = rate(seconds, rounds, (p, i) => tracer.sample(p, i), s.packets);
    console.log(`${services} services x ${ENDPOINTS_PER_SERVICE} endpoints: ${fmt(countRules(s.ruleset))} rules`);
    console.log(`  index built (every chain): ${build.ms.toFixed(0)} ms (${build.cpuMs.toFixed(0)} ms CPU); first trace of a fresh tracer: ${first.ms.toFixed(0)} ms (${first.cpuMs.toFixed(0)} ms CPU)`);
    const target = services >= 10000 ? `  (target > ${fmt(TARGET_LOOKUPS_PER_SECOND)})` : '';
    console.log(`  all outcomes:       ${show(all)}${target}`);
    console.log(`  one seeded outcome: ${show(one)}${target}`);
    if (services === 1000) {
      const linear = prepare(s, false).tracer;
      const scan = rate(seconds, rounds, (p) => linear.trace(p), s.packets);
      console.log(`  linear scan, all outcomes: ${show(scan)}; index / linear = ${(all.wall / scan.wall).toFixed(1)}x (CPU: ${(all.cpu / scan.cpu).toFixed(1)}x)`);
    }
  }
}

main();
