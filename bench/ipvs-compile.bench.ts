/**
 * IPVS compile benchmark: kube-proxy's IPVS-mode sync (virtual and real servers, ipsets, the
 * iptables rules) for 1k and 10k services x 10 endpoints, and rendering the table as
 * `ipvsadm -Ln` text.
 *
 *   npx tsc -p . && node --expose-gc dist/bench/ipvs-compile.bench.js [--quick]
 *
 * The clusters are the same seeded mix the iptables compile bench uses (mostly ClusterIP, some
 * NodePort, a few LoadBalancers with source ranges, some externalTrafficPolicy Local). Decoding
 * manifests and building the proxier state are not timed. Printed: median wall and CPU times,
 * virtual/real server and ipset entry counts, and the 10k/1k ratio (about 10 for a compiler that
 * scales linearly). The target is printed beside the figure, never asserted.
 */
import { type IpvsCompiled, compileIpvs } from '../src/ipvs/compile.js';
import { formatIpvsadmList } from '../src/ipvs/ipvsadm-format.js';
import { BENCH_SEED as SEED, ENDPOINTS_PER_SERVICE, type StepTimes, gc, generatedState, machineLine, timeSteps } from './common.js';

const TARGET_MS_10K = 300;

interface Figures {
  services: number;
  virtualServers: number;
  realServers: number;
  ipsetEntries: number;
  compileMs: number;
  compileCpuMs: number;
  listMs: number;
  heapMB: number;
}

function measure(services: number, runs: number): Figures {
  const s = generatedState(services);
  let compiled: IpvsCompiled | undefined;
  const [compile, list] = timeSteps(runs, [
    () => {
      compiled = compileIpvs(s);
    },
    () => {
      formatIpvsadmList(compiled!.table);
    },
  ]) as [StepTimes, StepTimes];
  gc?.();
  const c = compiled!;
  return {
    services,
    virtualServers: c.table.services.length,
    realServers: c.table.services.reduce((n, vs) => n + vs.dests.length, 0),
    ipsetEntries: [...c.ipsets.values()].reduce((n, set) => n + set.entries.size, 0),
    compileMs: compile.wallMs,
    compileCpuMs: compile.cpuMs,
    listMs: list.wallMs,
    heapMB: process.memoryUsage().heapUsed / 1048576,
  };
}

function row(f: Figures): string {
  return [
    `${String(f.services).padStart(6)} services`,
    `${String(f.virtualServers).padStart(6)} virtual`,
    `${String(f.realServers).padStart(7)} real servers`,
    `${String(f.ipsetEntries).padStart(6)} ipset entries`,
    `compile ${f.compileMs.toFixed(1).padStart(7)} ms (cpu ${f.compileCpuMs.toFixed(0).padStart(4)})`,
    `ipvsadm -Ln ${f.listMs.toFixed(1).padStart(7)} ms`,
    `heap ${f.heapMB.toFixed(0).padStart(4)} MB`,
  ].join('  ');
}

function main(): void {
  const quick = process.argv.includes('--quick');
  const [small, large] = quick ? [100, 1000] : [1000, 10000];
  const runs = quick ? 3 : 5;
  console.log(`ipvs compile bench: ${small} and ${large} services x ${ENDPOINTS_PER_SERVICE} endpoints, seed ${SEED}, median of ${runs} runs`);
  console.log(`${machineLine()}${gc ? '' : ' (no --expose-gc: heap figures include garbage)'}`);
  const a = measure(small, runs);
  console.log(row(a));
  const b = measure(large, runs);
  console.log(row(b));
  console.log(`ratio ${large}/${small} (compile): ${(b.compileMs / a.compileMs).toFixed(1)} (linear would be ${(large / small).toFixed(0)})`);
  if (!quick) {
    console.log(`target: 10k x 10 IPVS table compiled in < ${TARGET_MS_10K} ms: ${b.compileMs.toFixed(0)} ms wall, ${b.compileCpuMs.toFixed(0)} ms cpu (${b.compileMs < TARGET_MS_10K ? 'met' : 'NOT met'})`);
  }
}

main();
