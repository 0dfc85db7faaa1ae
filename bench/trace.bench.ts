/**
 * Trace benchmark: packets through a node's kube-proxy rules at 1k and 10k services x 10
 * endpoints (about 20k and 200k rules).
 *
 *   npx tsc -p . && node dist/bench/trace.bench.js [--quick]
 *
 * The cluster is generated in-process from a seed (the same mix as the compile benchmark) and
 * compiled with kpsim's compiler; that is not timed. Timed: preparing the tracer (compiling and
 * indexing every chain), tracing all outcomes of a packet, and walking one seeded outcome. The
 * packets are cluster-IP and node-port connections from pods and from outside, picked with a
 * seed. Printed: lookups per second for each, and at 1k the ratio against a tracer that scans
 * every chain rule by rule (the same run, the same packets). The target (100k lookups/s at 10k
 * services) is printed beside the figure, never asserted.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { compileIptablesRules } from '../src/iptables/compile.js';
import { countRules } from '../src/iptables/render.js';
import type { Ruleset } from '../src/iptables/types.js';
import { clusterFromManifests } from '../src/manifest/load.js';
import { createTracer, type Tracer } from '../src/trace/tracer.js';
import type { Packet } from '../src/trace/types.js';
import { buildProxierState, resolveNode } from '../src/tracker/proxier-state.js';
import type { ProxierState } from '../src/tracker/types.js';
import { generateClusterManifests, seededRandom } from '../test/helpers/cluster-builders.js';

const SEED = 1337;
const ENDPOINTS_PER_SERVICE = 10;
const NODES = 20;
const TARGET_LOOKUPS_PER_SECOND = 100_000;
const PACKETS = 4096;

interface Setup {
  services: number;
  ruleset: Ruleset;
  packets: Packet[];
  localAddresses: readonly string[];
}

function setup(services: number): Setup {
  const manifests = generateClusterManifests({ seed: SEED, services, endpointsPerService: ENDPOINTS_PER_SERVICE, nodes: NODES });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
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

/** Lookups per second over at least `seconds`, cycling through the packets. */
function rate(seconds: number, lookup: (packet: Packet, i: number) => void, packets: readonly Packet[]): Rate {
  for (let i = 0; i < packets.length; i++) lookup(packets[i]!, i); // warm up: every packet once
  let n = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let elapsed = 0;
  while (elapsed < seconds * 1000) {
    for (let k = 0; k < 256; k++, n++) lookup(packets[n % packets.length]!, n);
    elapsed = performance.now() - t0;
  }
  const cpu = process.cpuUsage(cpu0);
  return { wall: (n / elapsed) * 1000, cpu: n / ((cpu.user + cpu.system) / 1e6) };
}

function show(r: Rate): string {
  return `${fmt(r.wall)} lookups/s (${fmt(r.cpu)} per CPU-second)`;
}

function prepare(s: Setup, useIndex: boolean): { tracer: Tracer; ms: number } {
  const t0 = performance.now();
  const tracer = createTracer(s.ruleset, { localAddresses: s.localAddresses }, { useIndex });
  tracer.warm();
  return { tracer, ms: performance.now() - t0 };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const sizes = quick ? [1000, 3000] : [1000, 10000];
  const seconds = quick ? 0.5 : 2;
  console.log(`trace benchmark: node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, load average ${loadavg()[0]!.toFixed(1)}${quick ? ' (quick)' : ''}`);
  for (const services of sizes) {
    const s = setup(services);
    const { tracer, ms } = prepare(s, true);
    const all = rate(seconds, (p) => tracer.trace(p), s.packets);
    const one = rate(seconds, (p, i) => tracer.sample(p, i), s.packets);
    console.log(`${services} services x ${ENDPOINTS_PER_SERVICE} endpoints: ${fmt(countRules(s.ruleset))} rules, index built in ${ms.toFixed(0)} ms`);
    const target = services >= 10000 ? `  (target > ${fmt(TARGET_LOOKUPS_PER_SECOND)})` : '';
    console.log(`  all outcomes:       ${show(all)}${target}`);
    console.log(`  one seeded outcome: ${show(one)}${target}`);
    if (services === 1000) {
      const linear = prepare(s, false);
      const scan = rate(seconds, (p) => linear.tracer.trace(p), s.packets);
      console.log(`  linear scan, all outcomes: ${show(scan)}; index / linear = ${(all.wall / scan.wall).toFixed(1)}x (CPU: ${(all.cpu / scan.cpu).toFixed(1)}x)`);
    }
  }
}

main();
