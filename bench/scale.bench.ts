/**
 * The seed's scale: the generated 5,000-node / 150,000-pod / 10,000-service cluster (kpsim
 * generate, seed 1), in one run:
 *
 * 1. load the manifests (the files `kpsim generate` writes, read from a temporary folder), with
 *    the page faults and collector pauses it took (no target: every command pays it first);
 * 2. compile and render one node's view in every mode (target: under 2 s, heap under 1 GB),
 *    the node-independent work (the family's service ports) included; rendered as `kpsim
 *    compile` renders it for its output (renderOutput: bytes from the modes that write them
 *    without making a string, nftables and IPVS; iptables mode's string);
 * 3. the second node's view after the first (target: a small fraction of the first), against
 *    the same node compiled alone without sharing (the baseline);
 * 4. `kpsim nodes` over every node, in worker threads, one per core (target: under 60 s on 2
 *    cores);
 * 5. cluster-wide traces of a packet from outside to a LoadBalancer with externalTrafficPolicy
 *    Local (target: under 50 ms, for the median such service), on a view that has traced
 *    before, and the first one on a fresh view; beside it the largest one, the DaemonSet-backed
 *    ingress controller (every node an entry node, measured on 500 of them) and one with
 *    externalTrafficPolicy Cluster.
 *
 *   npm run bench:scale [-- --quick]      (--quick: 500 nodes, 15,000 pods, 1,000 services)
 *
 * Wall time with the process's CPU time beside it (all threads: on a busy machine CPU time is
 * the steadier figure); ratios against a baseline measured in the same run. Beside each step of
 * a node's view, the page faults it took and the garbage collector's pauses in it, and for the
 * first node what the faults cost at this machine's price of a fault (measured in the run, see
 * memory-cost.ts): the part of the figure that is the machine's rather than kpsim's own work.
 * The full collections the bench forces to read the heap are let finish (their sweeping) before
 * the next step is timed. Nothing is asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterView } from '../src/cluster/cluster-view.js';
import { traceCluster } from '../src/cluster/cluster-trace.js';
import { writeCluster } from '../src/cli/generate.js';
import { summarizeNodes } from '../src/cli/nodes.js';
import { generateCluster } from '../src/generate/cluster.js';
import { loadCluster } from '../src/manifest/load.js';
import type { Cluster } from '../src/model/types.js';
import { compileNode } from '../src/node/compile-node.js';
import { renderOutput } from '../src/node/mode-driver.js';
import { RULES_MODES, modeDriver } from '../src/node/modes.js';
import type { Packet } from '../src/trace/types.js';
import { type Timed, gc, machineLine, median, timed, timedAsync } from './common.js';
import { GcPauses, type ThreadSchedule, mainThreadFaults, mainThreadSchedule, minorFaults, pageFaultMicros, settleCollector } from './memory-cost.js';

const quick = process.argv.includes('--quick');
const SIZE = quick ? { nodes: 500, pods: 15000, services: 1000 } : { nodes: 5000, pods: 150000, services: 10000 };
const SEED = 1;
const TARGETS = { firstNodeMs: 2000, heapMB: 1024, nodesMs: 60000, traceMs: 50 };

const ms = (t: { wallMs: number; cpuMs: number }): string => `${t.wallMs.toFixed(0).padStart(6)} ms (cpu ${t.cpuMs.toFixed(0).padStart(6)})`;
const heapMB = (): number => {
  gc?.();
  return process.memoryUsage().heapUsed / 1048576;
};
const target = (label: string): string => `  [target ${label}]`;

/** A step of a node's view: its times, and when it ran and the page faults it took (for its memory line). */
interface ViewStep {
  readonly label: string;
  readonly t: Timed<number>;
  readonly from: number;
  readonly to: number;
  readonly faults: number;
  /** Of them, the main thread's: the ones the step's wall time pays (the others ran beside it). */
  readonly mainFaults: number;
  /** The main thread's time on a core and waiting for one in the step (undefined where unknown). */
  readonly schedule: ThreadSchedule | undefined;
}

/** `fn` timed as a step of a node's view. */
function viewStep(label: string, fn: () => number): ViewStep {
  const f0 = minorFaults();
  const m0 = mainThreadFaults();
  const s0 = mainThreadSchedule();
  const from = performance.now();
  const t = timed(fn);
  const to = performance.now();
  const s1 = mainThreadSchedule();
  const schedule = s0 !== undefined && s1 !== undefined ? { runMs: s1.runMs - s0.runMs, waitMs: s1.waitMs - s0.waitMs } : undefined;
  return { label, t, from, to, faults: minorFaults() - f0, mainFaults: mainThreadFaults() - m0, schedule };
}

interface NodeView {
  readonly steps: ViewStep[];
  readonly total: { wallMs: number; cpuMs: number };
  readonly faults: number;
  readonly mainFaults: number;
  readonly keep: unknown[];
}

/** One node's view in every mode, compiled and rendered for output (renderOutput, as `kpsim compile` does) through `view`: the states, then each mode. */
function nodeView(view: ClusterView, name: string): NodeView {
  const keep: unknown[] = [];
  const node = view.resolve(name);
  const steps: ViewStep[] = [];
  steps.push(viewStep('proxier states (every family)', () => (view.statesOf(node), 0)));
  for (const mode of RULES_MODES) {
    const driver = modeDriver(mode);
    steps.push(viewStep(`${mode}: compile + render`, () => {
      const compiled = view.compile(mode, node);
      const text = renderOutput(driver, compiled, driver.formats[0]!);
      keep.push(compiled, text);
      return text.length;
    }));
  }
  const total = steps.reduce((sum, s) => ({ wallMs: sum.wallMs + s.t.wallMs, cpuMs: sum.cpuMs + s.t.cpuMs }), { wallMs: 0, cpuMs: 0 });
  return { steps, total, faults: steps.reduce((n, s) => n + s.faults, 0), mainFaults: steps.reduce((n, s) => n + s.mainFaults, 0), keep };
}

/**
 * Each step's times, text, page faults (MB of pages first touched; how many of them on the main
 * thread) and collector's pauses; then the total.
 */
function printView(title: string, v: NodeView, pauses: GcPauses): void {
  console.log(title);
  for (const s of v.steps) {
    const text = s.t.value > 1 ? `  ${(s.t.value / 1048576).toFixed(1).padStart(5)} MB text` : ''.padEnd(16);
    const g = pauses.between(s.from, s.to);
    const memory = `  faults ${String(s.faults).padStart(6)} (${((s.faults * 4096) / 1048576).toFixed(0).padStart(3)} MB; main thread ${String(s.mainFaults).padStart(6)}), gc ${g.ms.toFixed(0).padStart(4)} ms (${g.scavenges} scavenges, ${g.count - g.scavenges} other)`;
    console.log(`  ${s.label.padEnd(32)} ${ms(s.t)}${text}${memory}`);
  }
  console.log(`  ${'total'.padEnd(32)} ${ms(v.total)}`);
}

/**
 * How much of a view's wall time is the machine's price of memory first touched (the main
 * thread's page faults at `faultMicros` each, measured in this run) and the collector's pauses;
 * the rest is kpsim's own work. An estimate: a fault's cost is the probe's, on pages touched the
 * same way. Faults of other threads ran beside the main thread and are shown apart.
 */
function printMemoryShare(v: NodeView, pauses: GcPauses, faultMicros: number): void {
  const faultMs = (v.mainFaults * faultMicros) / 1000;
  const gcMs = v.steps.reduce((n, s) => n + pauses.between(s.from, s.to).ms, 0);
  const rest = v.total.wallMs - faultMs - gcMs;
  console.log(`  of the total: page faults on the main thread ${v.mainFaults} x ${faultMicros.toFixed(2)} us (the price measured above) = ~${faultMs.toFixed(0)} ms; gc pauses ${gcMs.toFixed(0)} ms; the rest ${rest.toFixed(0)} ms`);
  console.log(`  beside it, on other threads (the collector's helpers, the prefaulter): ${v.faults - v.mainFaults} faults`);
  const schedules = v.steps.map((s) => s.schedule);
  if (schedules.every((s) => s !== undefined)) {
    const runMs = schedules.reduce((n, s) => n + s!.runMs, 0);
    const waitMs = schedules.reduce((n, s) => n + s!.waitMs, 0);
    // The process's CPU time counts every thread's: what is not the main thread's ran beside it.
    const othersMs = Math.max(0, v.total.cpuMs - runMs);
    console.log(`  the main thread: ${runMs.toFixed(0)} ms on a core, ${waitMs.toFixed(0)} ms runnable but waiting for one; the other threads (V8's compiler and collector threads, the prefaulter): ${othersMs.toFixed(0)} ms cpu beside it, on ${availableParallelism()} cores in all`);
  }
}

/**
 * Cluster-wide traces from outside to load balancers with externalTrafficPolicy Local: the
 * median one of a Deployment (the target), the largest one of a Deployment, and the ingress
 * controller's, a DaemonSet with a pod on every node (every node an entry node, each with its
 * own view of the port: the worst case). Then one with externalTrafficPolicy Cluster.
 */
async function traces(cluster: Cluster): Promise<void> {
  const fresh = new ClusterView(cluster);
  const lbs = cluster.services
    .filter((svc) => svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' && svc.loadBalancerIngress[0]?.ip !== undefined)
    .map((svc) => ({ svc, endpoints: new Set(cluster.endpointSlices.filter((sl) => sl.namespace === svc.namespace && sl.serviceName === svc.name).flatMap((sl) => sl.endpoints.map((e) => e.addresses[0]))).size }))
    .filter((x) => x.endpoints > 0);
  const deployments = lbs.filter((x) => x.svc.name !== 'ingress-controller').sort((a, b) => a.endpoints - b.endpoints);
  const picks = [
    { what: 'median eTP Local LB', pick: deployments[Math.floor(deployments.length / 2)] },
    { what: 'largest eTP Local LB of a Deployment', pick: deployments.at(-1) },
  ];
  const packetTo = (svc: Cluster['services'][number]): Packet => ({ proto: 'tcp', src: '203.0.113.9', dst: svc.loadBalancerIngress[0]!.ip!, dport: svc.ports[0]!.port });
  console.log('5. cluster-wide traces from outside to load balancers (iptables mode, then the median one in the other modes)');
  let first = true;
  for (const { what, pick } of picks) {
    if (pick === undefined) continue;
    const packet = packetTo(pick.svc);
    if (first) {
      // The first trace on a fresh view builds the family's shared service ports.
      const cold = timed(() => traceCluster(fresh, packet, { mode: 'iptables' }));
      console.log(`  ${'the first trace, on a fresh view'.padEnd(44)} ${ms(cold)}  (builds the family's shared ports)`);
      first = false;
    }
    const rounds = pick.endpoints > 1000 ? 1 : quick ? 5 : 11;
    const runs: Timed<ReturnType<typeof traceCluster>>[] = [];
    for (let i = 0; i < rounds; i++) runs.push(timed(() => traceCluster(fresh, packet, { mode: 'iptables' })));
    const t = { wallMs: median(runs.map((r) => r.wallMs)), cpuMs: median(runs.map((r) => r.cpuMs)) };
    const r = runs[0]!.value;
    const label = `${what} (${pick.endpoints} endpoints)`;
    const perEntry = `${(t.wallMs / r.nodes.length).toFixed(2)} ms per entry node`;
    console.log(`  ${label.padEnd(44)} ${ms(t)}  ${r.nodes.length} entry nodes, ${r.deliveries.length} deliveries, ${perEntry}${what.startsWith('median') ? target(`under ${TARGETS.traceMs} ms`) : ''}`);
  }
  // The median one in the other modes, on the same view (each mode shares its own work). Each
  // mode's runs start on a settled collector: the traces before them (the largest one's above
  // all) grow the old generation until a mark-compact of the whole heap (~600 MB) starts, and
  // its marking steps and final pause (~300 ms) landed in whichever mode came next (IPVS:
  // 28-40 ms for a trace that costs 4-8 ms, as in the other modes).
  const medianPick = picks[0]!.pick;
  if (medianPick !== undefined) {
    for (const mode of RULES_MODES.filter((m) => m !== 'iptables')) {
      const packet = packetTo(medianPick.svc);
      traceCluster(fresh, packet, { mode });
      gc?.();
      await settleCollector();
      const runs = Array.from({ length: quick ? 5 : 11 }, () => timed(() => traceCluster(fresh, packet, { mode })));
      const t = { wallMs: median(runs.map((r) => r.wallMs)), cpuMs: median(runs.map((r) => r.cpuMs)) };
      console.log(`  ${`median eTP Local LB, ${mode} mode`.padEnd(44)} ${ms(t)}  ${runs[0]!.value.nodes.length} entry nodes${target(`under ${TARGETS.traceMs} ms`)}`);
    }
  }
  // The DaemonSet-backed ingress controller: every node is an entry node with its own view of
  // the port (its own local endpoint), so every node is compiled and traced: the worst case,
  // measured on the first 500 entry nodes (named with `via`, as --via does).
  const ingress = lbs.find((x) => x.svc.name === 'ingress-controller');
  if (ingress !== undefined) {
    const via = cluster.nodes.slice(0, 500).map((n) => n.name);
    const t = timed(() => traceCluster(fresh, packetTo(ingress.svc), { mode: 'iptables', via }));
    const label = `DaemonSet eTP Local LB, ${via.length} of its ${cluster.nodes.length} entry nodes`;
    console.log(`  ${label.padEnd(44)} ${ms(t)}  ${(t.wallMs / via.length).toFixed(2)} ms per entry node (cpu ${(t.cpuMs / via.length).toFixed(2)})`);
  }
  // externalTrafficPolicy Cluster: every node an entry node, one shared trace.
  const lbCluster = cluster.services
    .filter((svc) => svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Cluster' && svc.loadBalancerIngress[0]?.ip !== undefined && !svc.name.startsWith('frontend'))[0];
  if (lbCluster !== undefined) {
    const t = timed(() => traceCluster(fresh, packetTo(lbCluster), { mode: 'iptables' }));
    console.log(`  ${`eTP Cluster LB ${lbCluster.namespace}/${lbCluster.name}`.padEnd(44)} ${ms(t)}  ${t.value.nodes.length} entry nodes (one shared trace), ${t.value.deliveries.length} deliveries`);
  }
}

/** Generate the cluster into `dir` (the objects are dropped once written). */
async function generateInto(dir: string): Promise<void> {
  const generated = timed(() => generateCluster({ ...SIZE, seed: SEED }));
  await writeCluster(dir, generated.value.files);
  const s = generated.value.summary;
  console.log(`generated (not a target) ${ms(generated)}: ${s.endpointSlices} EndpointSlices, ${s.endpoints} endpoints; largest ${s.largestServices.map((l) => `${l.name} ${l.endpoints}`).join(', ')}`);
}

async function main(): Promise<void> {
  console.log(`scale bench: ${SIZE.nodes} nodes, ${SIZE.pods} pods, ${SIZE.services} services (kpsim generate, seed ${SEED}); ${machineLine()}`);
  // Measured first, while the process is small and idle: later the collector's threads run
  // beside the probe, and a fault then costs up to twice as much as in the steps it prices.
  const faultMicros = pageFaultMicros();
  console.log(`a page first touched costs ${faultMicros.toFixed(2)} us on this machine (64 MB touched a page at a time, median of 3)`);
  const dir = mkdtempSync(join(tmpdir(), 'kpsim-scale-'));
  try {
    await generateInto(dir);

    // 1. load
    const loadPauses = new GcPauses();
    const loadFrom = performance.now();
    const loadFaults0 = minorFaults();
    const loaded = await timedAsync(() => loadCluster(dir));
    const loadFaults = minorFaults() - loadFaults0;
    const loadTo = performance.now();
    await loadPauses.settle();
    const loadGc = loadPauses.between(loadFrom, loadTo);
    loadPauses.stop();
    const cluster: Cluster = loaded.value;
    console.log(`1. load the manifests            ${ms(loaded)}  heap ${heapMB().toFixed(0)} MB with the cluster loaded`);
    console.log(`  of it: page faults ${loadFaults} (${((loadFaults * 4096) / 1048576).toFixed(0)} MB) = ~${((loadFaults * faultMicros) / 1000).toFixed(0)} ms at the price above; gc pauses ${loadGc.ms.toFixed(0)} ms (${loadGc.scavenges} scavenges, ${loadGc.count - loadGc.scavenges} other)`);
    // heapMB forced a full collection: its sweeping is the bench's, not the first node's.
    await settleCollector();

    // 2. the first node, every mode
    const pauses = new GcPauses();
    const view = new ClusterView(cluster);
    const names = cluster.nodes.map((n) => n.name);
    const first = nodeView(view, names[0]!);
    await pauses.settle();
    const heapFirst = heapMB();
    printView(`2. one node's view in every mode (${names[0]}), the shared work included`, first, pauses);
    console.log(`  ${'heap after'.padEnd(32)} ${heapFirst.toFixed(0).padStart(6)} MB${target(`under ${TARGETS.heapMB} MB`)}`);
    console.log(`  ${'total'.padEnd(32)} ${(first.total.wallMs / 1000).toFixed(2)} s wall${target(`under ${TARGETS.firstNodeMs / 1000} s`)}`);
    printMemoryShare(first, pauses, faultMicros);
    first.keep.length = 0;
    await settleCollector();

    // 3. the second node, against the same node alone
    const second = nodeView(view, names[1]!);
    await pauses.settle();
    printView(`3. the second node's view (${names[1]}) after the first`, second, pauses);
    pauses.stop();
    const alone = timed(() => {
      let n = 0;
      for (const mode of RULES_MODES) {
        const compiled = compileNode(cluster, mode, { node: names[1]! });
        n += renderOutput(modeDriver(mode), compiled, modeDriver(mode).formats[0]!).length;
      }
      return n;
    });
    console.log(`  ${'baseline: the node alone'.padEnd(32)} ${ms(alone)}`);
    console.log(`  second / first ${(second.total.wallMs / first.total.wallMs).toFixed(3)} wall, ${(second.total.cpuMs / first.total.cpuMs).toFixed(3)} cpu; second / alone ${(second.total.wallMs / alone.wallMs).toFixed(3)} wall${target('a small fraction of the first')}`);
    second.keep.length = 0;

    // 5 before 4: the traces on this process's view (the workers of step 4 have their own).
    await traces(cluster);

    // 4. kpsim nodes over every node
    const workers = availableParallelism();
    const nodes = await timedAsync(() => summarizeNodes({ cluster: { file: [dir] }, modes: RULES_MODES, compile: {} }, workers));
    console.log(`4. kpsim nodes, ${nodes.value.summaries.length} nodes, ${RULES_MODES.join(' + ')}, ${workers} worker threads: ${ms(nodes)}${target(`under ${TARGETS.nodesMs / 1000} s on 2 cores`)}`);
    console.log(`  per node ${(nodes.wallMs / names.length).toFixed(1)} ms wall, ${(nodes.cpuMs / names.length).toFixed(1)} ms cpu (each worker also loads the cluster: step 1); the second node's view alone ${second.total.wallMs.toFixed(0)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
