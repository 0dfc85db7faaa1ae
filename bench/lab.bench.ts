/**
 * Kernel lab benchmark (root): the same HTTP load straight to a pod, through kpsim's userspace
 * proxy and through the node's iptables and nftables rules in a real kernel; how long a lab takes
 * to make and remove; what a sync costs the kernel at 1k and 10k services beside kpsim's compile.
 *
 *   npm run build && node dist/bench/lab.bench.js [--quick]
 *
 * Printed, never asserted. Throughput rows are ratios to a direct row of the same run:
 *   - "direct (loopback)", "userspace rr": kpsim compare's rows (proxy and pods in this process,
 *     autocannon in a worker thread);
 *   - "direct (lab)": from the lab's client namespace to one pod's own address, routed by the node
 *     without NAT; "kernel iptables", "kernel nftables": the same client to the ClusterIP, DNATed
 *     by the node, interleaved with direct rounds in the same lab. All with autocannon in its own
 *     process and the pods in theirs, so the ratio is the price of the DNAT path alone.
 * Targets (issue 10): lab up + down of a 3-service cluster under 5 s. The throughput and sync
 * rows have no target of their own: they are printed as ratios (to direct, to kpsim's compile).
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { kernelRelease, labUnavailable } from '../src/lab/kernel-modes.js';
import { kernelCompareRows, loadFromClient, withLab } from '../src/lab/kernel-load.js';
import { type Lab, labDownNamed, labUp } from '../src/lab/lab.js';
import { namePrefix, removeStateFiles, stateDir } from '../src/lab/state.js';
import { generatedCluster, runSyncBench } from '../src/lab/sync-bench.js';
import { runCompare } from '../src/load/compare.js';
import type { CompareRow } from '../src/load/compare-report.js';
import { formatTable, millis, rate } from '../src/load/table.js';
import type { LoadRunResult } from '../src/load/types.js';
import { loadCluster } from '../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../src/tracker/proxier-state.js';
import { median } from './common.js';
import { undoOnInterrupt } from './interrupt.js';

const QUICK = process.argv.includes('--quick');
const SECONDS = QUICK ? 1 : 3;
const CONNECTIONS = 10;
const TARGET_UP_DOWN_MS = 5000;

const why = labUnavailable('iptables');
if (why !== undefined) {
  process.stdout.write(`lab bench skipped: ${why}\n`);
  process.exit(0);
}
process.stdout.write(`node ${process.version}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'} x ${cpus().length}, load average ${loadavg()[0]!.toFixed(2)}, kernel ${kernelRelease()}\n`);

// ---------------------------------------------------------------- throughput
{
  const cluster = await loadCluster(['rules/example']);
  const node = resolveNode(cluster);
  const states = buildProxierStates(cluster, node);
  const view = { cluster, node, states };
  const notes: string[] = [];
  const target = { kind: 'service' as const, text: 'svc/default/web', namespace: 'default', name: 'web' };
  const compare = await runCompare(view, {
    target, schedulers: ['rr'], connections: CONNECTIONS, durationSeconds: SECONDS, streamConnections: 1000,
    measured: kernelCompareRows(view, ['iptables', 'nftables'], notes),
  });
  const rows: CompareRow[] = compare.rows.filter((r) => r.measured);
  // The same lab path without NAT (the client straight to a web pod's own address), interleaved
  // with the DNATed one, in a lab of each mode.
  const rps = (r: LoadRunResult): number => r.responses / r.elapsedSeconds;
  const labRows: string[][] = [];
  for (const mode of ['iptables', 'nftables'] as const) {
    const lab = await withLab(view, { mode, servers: true }, async (l) => {
      const options = { connections: CONNECTIONS, durationSeconds: SECONDS, pipelining: 1, keepAlive: true };
      const directRuns: LoadRunResult[] = [];
      const kernelRuns: LoadRunResult[] = [];
      for (let round = 0; round < (QUICK ? 1 : 3); round++) {
        directRuns.push(await loadFromClient(l, '10.244.1.6', 8080, options));
        kernelRuns.push(await loadFromClient(l, '10.96.100.20', 80, options));
      }
      return { direct: directRuns, kernel: kernelRuns };
    });
    const labDirect = median(lab.direct.map(rps));
    const labKernel = median(lab.kernel.map(rps));
    labRows.push(
      [`direct (${mode} lab, no NAT)`, rate(labDirect), millis(median(lab.direct.map((r) => r.latency.p99Ms))), '-', '1.00x'],
      [`kernel ${mode} (lab)`, rate(labKernel), millis(median(lab.kernel.map((r) => r.latency.p99Ms))), '-', `${(labKernel / labDirect).toFixed(2)}x`],
    );
  }
  const table = [
    ...rows.map((r) => [r.label === 'direct' ? 'direct (loopback)' : r.label, rate(r.requestsPerSecond ?? 0), millis(r.latency?.p99Ms ?? 0), `${(r.relativeToDirect ?? 0).toFixed(2)}x`, '-']),
    ...labRows,
  ];
  process.stdout.write(`\nHTTP through each path: ${CONNECTIONS} keep-alive connections, ${SECONDS} s per run (lab rows: median of ${QUICK ? 1 : 3} interleaved rounds); no target, ratios to direct\n`);
  process.stdout.write(`${formatTable([{ header: 'path' }, { header: 'req/s', align: 'right' }, { header: 'p99 ms', align: 'right' }, { header: 'x direct (loopback)', align: 'right' }, { header: 'x direct (lab)', align: 'right' }], table, '  ')}\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);
}

// ---------------------------------------------------------------- lab up + down
for (const mode of ['iptables', 'nftables'] as const) {
  const { cluster, node } = generatedCluster(3, 3);
  const input = { node, states: buildProxierStates(cluster, node) };
  const ups: number[] = [];
  const downs: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < (QUICK ? 1 : 3); i++) {
    // Interrupted while it is made, the lab's namespaces are found by its name; once up, by its record.
    const id = randomBytes(3).toString('hex');
    let lab: Lab | undefined;
    const release = undoOnInterrupt(async () => {
      if (lab !== undefined) await lab.down();
      else {
        await labDownNamed(`${namePrefix()}-${id}-`);
        removeStateFiles(stateDir(), id);
      }
    });
    const t0 = performance.now();
    lab = await labUp(input, { mode, id });
    const t1 = performance.now();
    await lab.down();
    ups.push(t1 - t0);
    downs.push(performance.now() - t1);
    release();
  }
  const cpu = process.cpuUsage(cpu0);
  const total = median(ups) + median(downs);
  process.stdout.write(`\nlab up + down (${mode}), 3 services x 3 endpoints (11 namespaces, 9 pods served): up ${millis(median(ups))} ms + down ${millis(median(downs))} ms = ${millis(total)} ms wall`
    + ` (target < ${TARGET_UP_DOWN_MS} ms: ${total < TARGET_UP_DOWN_MS ? 'met' : 'NOT met'}); kpsim's own CPU ${millis((cpu.user + cpu.system) / 1000 / ups.length)} ms a lab (the kernel's tools and the pods' process not counted)\n`);
}

// ---------------------------------------------------------------- syncs
for (const services of QUICK ? [1000] : [1000, 10_000]) {
  const { cluster, node } = generatedCluster(services, 10);
  const runs = services >= 10_000 ? 1 : 3;
  const result = await runSyncBench(cluster, node, { modes: ['iptables', 'nftables'], runs });
  process.stdout.write(`\nsyncs at ${services} services x 10 endpoints (median of ${runs}):\n`);
  for (const r of result.rows) {
    process.stdout.write(`  ${r.mode}: kpsim compile ${millis(r.compileMs)} ms; kernel: first load ${millis(r.loadMs)} ms, ${r.fullName} ${millis(r.fullMs)} ms (${r.fullBytes} B), ${r.partialName} ${millis(r.partialMs)} ms (${r.partialBytes} B), no change ${millis(r.noChangeMs)} ms`
      + `; full sync / compile = ${(r.fullMs / r.compileMs).toFixed(1)}x\n`);
  }
  for (const s of result.skipped) process.stdout.write(`  skipped: ${s}\n`);
}
