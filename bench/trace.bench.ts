/**
 * Trace benchmark: packets through a node's kube-proxy rules at 1k and 10k services x 10
 * endpoints (about 38k and 368k rules), and `kpsim simulate`'s rule-walking picker at 1M
 * connections.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/trace.bench.js [--quick]
 *
 * The cluster is generated in-process from a seed (bench/common.ts, the same mix as the
 * compile benchmark) and compiled with kpsim's compiler; that is not timed. Timed: preparing
 * the tracer (compiling and indexing every chain, `warm`), the first trace of a fresh tracer
 * (what the CLI pays: chains are compiled on first use), tracing all outcomes of a packet,
 * walking one seeded outcome (`sample`, and `trace` with `sampleOnly`), each with the walks
 * kept by destination side and source decisions (walk-cache.ts, the default) and without (every
 * packet walked: the baseline, same run, same packets). The packets are cluster-IP and
 * node-port connections from pods (sources drawn from the whole pod range, so most lookups meet
 * a source their destination has not seen yet) and from outside, picked with a seed; "first
 * pass" is the rate over packets none of which was traced before, "steady" the rate once each
 * has been; the tracer that walks every packet is measured the same way, so each figure is
 * set against its own baseline. Each rate is the median of several rounds, in lookups per
 * second of wall time and per CPU-second (steadier on a shared machine); at 1k, the ratio of
 * the index against a tracer that scans every chain rule by rule. nftables mode is measured
 * on the same cluster and packets (kept walks against every packet walked). Targets are
 * printed beside the figures, never asserted.
 */
import { performance } from 'node:perf_hooks';
import { compileIptablesRules } from '../src/iptables/compile.js';
import { countRules } from '../src/iptables/render.js';
import type { Ruleset } from '../src/iptables/types.js';
import { createTracer, type Tracer } from '../src/trace/tracer.js';
import { compileNftablesRules } from '../src/nftables/compile.js';
import { countNftRules } from '../src/nftables/render-script.js';
import { createNftTracer, type NftTracer } from '../src/trace/nftables/tracer.js';
import type { Packet } from '../src/trace/types.js';
import type { ProxierState } from '../src/tracker/types.js';
import { seededRandom } from '../test/helpers/cluster-builders.js';
import { BENCH_NODES as NODES, BENCH_SEED as SEED, ENDPOINTS_PER_SERVICE, cpuMs, gc, generatedState, machineLine, median } from './common.js';
import { simulationBench } from './simulate-picker.js';

/** At 10k services x 10 endpoints (issue 13). */
const TARGET_ALL_OUTCOMES = 500_000;
const TARGET_ONE_OUTCOME = 1_000_000;
const PACKETS = 16384;

interface Setup {
  services: number;
  state: ProxierState;
  ruleset: Ruleset;
  packets: Packet[];
  localAddresses: readonly string[];
}

function setup(services: number): Setup {
  const state = generatedState(services);
  return { services, state, ruleset: compileIptablesRules(state), packets: packetsFor(state), localAddresses: state.localAddresses };
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
      const src = roll < 0.7 ? `10.244.${Math.floor(random() * NODES)}.${2 + Math.floor(random() * 250)}` : `203.0.113.${1 + Math.floor(random() * 250)}`;
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

/**
 * How long lookups run before a rate is measured, after a first pass over every packet. That
 * pass is a kept walk's second visit (its trie asked, the class table's region recorded), not
 * the lookup measured: alone, it left the class-table path to be optimized in the first
 * measured round.
 */
const WARM_UP_MS = 500;

/**
 * Lookups per second over `seconds`, cycling through the packets: the median of `rounds`. The
 * heap is collected once, before the warm-up, not before each round: after a full collection
 * of a 10k-service heap V8 sweeps it concurrently, on the cores the lookups run on, and the
 * moved objects are out of cache; a collection before each round slowed that round (nftables
 * one outcome, 10k services: 0.42-0.65M lookups per CPU-second against 0.72-0.95M without,
 * fresh processes) and made the figure change from run to run.
 */
function rate(seconds: number, rounds: number, lookup: (packet: Packet, i: number) => void, packets: readonly Packet[]): Rate {
  gc?.();
  for (let i = 0; i < packets.length; i++) lookup(packets[i]!, i); // warm up: every packet once,
  const w0 = performance.now();
  for (let n = 0; performance.now() - w0 < WARM_UP_MS;) { // then the lookup measured
    for (let k = 0; k < 256; k++, n++) lookup(packets[n % packets.length]!, n);
  }
  const walls: number[] = [];
  const cpus: number[] = [];
  let n = 0;
  for (let r = 0; r < rounds; r++) {
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

function prepare(s: Setup, useIndex: boolean, cache = true): Build {
  gc?.();
  const c0 = cpuMs();
  const t0 = performance.now();
  const tracer = createTracer(s.ruleset, { localAddresses: s.localAddresses }, { useIndex, cache });
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

/** Lookups per second over one pass of packets never traced before by `tracer`. */
function firstPass(lookup: (packet: Packet, i: number) => void, packets: readonly Packet[]): Rate {
  gc?.();
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < packets.length; i++) lookup(packets[i]!, i);
  const ms = performance.now() - t0;
  return { wall: (packets.length / ms) * 1000, cpu: (packets.length / (cpuMs() - c0)) * 1000 };
}

function ratio(a: Rate, b: Rate): string {
  return `${(a.wall / b.wall).toFixed(1)}x (CPU: ${(a.cpu / b.cpu).toFixed(1)}x)`;
}

/**
 * nftables mode on the same cluster and packets: every outcome and one outcome (sampleOnly),
 * walks kept against every packet walked, in the same run.
 */
function nftablesFigures(s: Setup, seconds: number, rounds: number, target: (n: number) => string): void {
  const ruleset = compileNftablesRules(s.state);
  const context = { localAddresses: s.localAddresses };
  const lookups: { name: string; goal: number; lookup: (t: NftTracer) => (p: Packet, i: number) => void }[] = [
    { name: 'all outcomes', goal: TARGET_ALL_OUTCOMES, lookup: (t) => (p) => t.trace(p) },
    { name: 'one outcome (trace sampleOnly)', goal: TARGET_ONE_OUTCOME, lookup: (t) => (p, i) => t.trace(p, { seed: i & 1023, sampleOnly: true }) },
  ];
  const walking = createNftTracer(ruleset, context, { cache: false });
  walking.warm();
  const base = lookups.map((l) => rate(seconds / 2, rounds, l.lookup(walking), s.packets));
  const keeping = createNftTracer(ruleset, context);
  keeping.warm();
  console.log(`  nftables mode (${fmt(countNftRules(ruleset).rules)} rules):`);
  lookups.forEach((l, k) => {
    const cold = firstPass(l.lookup(keeping), s.packets);
    const steady = rate(seconds, rounds, l.lookup(keeping), s.packets);
    console.log(`    ${l.name}: kept walks, steady: ${show(steady)}${target(l.goal)}; / every packet walked = ${ratio(steady, base[k]!)}`);
    console.log(`      kept walks, first pass: ${show(cold)}; every packet walked: ${show(base[k]!)}`);
  });
  const stats = keeping.cacheStats();
  console.log(`    kept-walk hits: ${fmt(stats.hits)} of ${fmt(stats.lookups)} lookups (${fmt(stats.tableHits)} read from the class table alone)`);
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const sizes = quick ? [1000, 3000] : [1000, 10000];
  const seconds = quick ? 0.5 : 3;
  const rounds = quick ? 1 : 5;
  console.log(`trace benchmark: ${machineLine()}${quick ? ' (quick)' : ''}`);
  // sample and sampleOnly share kept walks (the seeded ones): sampleOnly's first pass meets them
  // unwalked, sample's would not, so only the first two have a first pass of their own.
  const kinds: { name: string; goal: number; firstPass: boolean; lookup: (t: Tracer) => (p: Packet, i: number) => void }[] = [
    { name: 'all outcomes', goal: TARGET_ALL_OUTCOMES, firstPass: true, lookup: (t) => (p) => t.trace(p) },
    { name: 'one outcome (trace sampleOnly)', goal: TARGET_ONE_OUTCOME, firstPass: true, lookup: (t) => (p, i) => t.trace(p, { seed: i & 1023, sampleOnly: true }) },
    { name: 'one seeded outcome (sample)', goal: TARGET_ONE_OUTCOME, firstPass: false, lookup: (t) => (p, i) => t.sample(p, i & 1023) },
  ];
  for (const services of sizes) {
    const s = setup(services);
    const first = firstTrace(s);
    const big = services >= 10000;
    const target = (n: number): string => (big ? `  (target >= ${fmt(n)})` : '');
    console.log(`${services} services x ${ENDPOINTS_PER_SERVICE} endpoints: ${fmt(countRules(s.ruleset))} rules, ${fmt(s.packets.length)} packets`);
    // The baseline first, on a tracer of its own that is let go before the kept walks are
    // measured: two prepared 10k-service tracers in one heap slow each other's GC. Both
    // tracers get the same sequence (each kind's first pass, then its steady rate), so each
    // figure has its own baseline: a first pass against the walks' first pass, steady against steady.
    const walked = ((): { cold: Rate | undefined; steady: Rate }[] => {
      const uncached = prepare(s, true, false).tracer;
      return kinds.map((kind) => ({
        cold: kind.firstPass ? firstPass(kind.lookup(uncached), s.packets) : undefined,
        steady: rate(seconds, rounds, kind.lookup(uncached), s.packets),
      }));
    })();
    const indexedAll = walked[0]!.steady;
    const build = prepare(s, true);
    const tracer = build.tracer;
    console.log(`  index built (every chain): ${build.ms.toFixed(0)} ms (${build.cpuMs.toFixed(0)} ms CPU); first trace of a fresh tracer: ${first.ms.toFixed(0)} ms (${first.cpuMs.toFixed(0)} ms CPU)`);
    kinds.forEach((kind, k) => {
      const cold = kind.firstPass ? firstPass(kind.lookup(tracer), s.packets) : undefined;
      const steady = rate(seconds, rounds, kind.lookup(tracer), s.packets);
      const base = walked[k]!;
      console.log(`  ${kind.name}:`);
      console.log(`    kept walks, steady:     ${show(steady)}${target(kind.goal)}; / every packet walked = ${ratio(steady, base.steady)}`);
      if (cold && base.cold) console.log(`    kept walks, first pass: ${show(cold)}; / every packet walked, first pass = ${ratio(cold, base.cold)}; / steady = ${ratio(cold, base.steady)}`);
      console.log(`    every packet walked:    ${show(base.steady)}${base.cold ? `; first pass ${show(base.cold)}` : ''}`);
    });
    const stats = tracer.cacheStats();
    console.log(`  kept-walk hits: ${fmt(stats.hits)} of ${fmt(stats.lookups)} lookups`);
    nftablesFigures(s, seconds, rounds, big ? target : () => '');
    if (services === 1000) {
      const linear = prepare(s, false, false).tracer;
      const scan = rate(seconds, rounds, (p) => linear.trace(p), s.packets);
      console.log(`  linear scan, all outcomes, every packet walked: ${show(scan)}; index / linear = ${ratio(indexedAll, scan)}`);
    }
  }
  for (const line of await simulationBench(quick)) console.log(line);
}

await main();
