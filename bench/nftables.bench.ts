/**
 * nftables mode benchmark, against iptables mode in the same run:
 *
 *   npm run bench:nftables [-- --quick]
 *
 * 1. compile + render of kube-proxy's nftables table at 1k and 10k services x 10 endpoints
 *    (target: 10k under 1 s, heap under 500 MB), beside iptables mode's compile + render;
 * 2. rules a first packet walks, nftables mode against iptables mode, at 1k and 10k services:
 *    nftables mode finds a service with one verdict-map lookup, so its count should not grow
 *    with the number of services, where iptables mode scans KUBE-SERVICES;
 * 3. loading the whole ruleset into a network namespace: `nft -f` against `iptables-restore`
 *    of iptables mode's rules, at 1k and 5k services (needs root, nft and iptables; the kernel's
 *    nft load time grows faster than linearly, about 25 s at 5k).
 *
 * Clusters are generated from a seed (bench/common.ts). Figures are printed with their targets
 * and ratios; nothing is asserted. Namespaces are named kpsim-bench-<pid>-... and deleted, also
 * when the run is interrupted (SIGINT, SIGTERM: bench/interrupt.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileIptablesRules } from '../src/iptables/compile.js';
import { renderIptablesSave, renderRule } from '../src/iptables/render.js';
import type { Ruleset } from '../src/iptables/types.js';
import { rulesCheckedOnPath } from '../src/node/rules-checked.js';
import { nftRulePositions } from '../src/node/modes/nftables.js';
import { compileNftablesRules } from '../src/nftables/compile.js';
import { countNftRules, renderNftScript } from '../src/nftables/render-script.js';
import type { NftRuleset } from '../src/nftables/types.js';
import { createNftTracer } from '../src/trace/nftables/tracer.js';
import { createTracer } from '../src/trace/tracer.js';
import type { Packet } from '../src/trace/types.js';
import type { ProxierState } from '../src/tracker/types.js';
import { seededRng } from '../src/util/random.js';
import { BENCH_SEED, ENDPOINTS_PER_SERVICE, type StepTimes, gc, generatedState, machineLine, timeSteps } from './common.js';
import { undoOnInterrupt, withBenchNetns } from './interrupt.js';

const TARGET_SECONDS_10K = 1;
const TARGET_HEAP_MB_10K = 500;
const PACKETS = 200;

// ------------------------------------------------------------------------------ compile

interface CompileFigures {
  readonly services: number;
  readonly nft: { compile: StepTimes; render: StepTimes; rules: number; elements: number; chains: number; bytes: number; heapMB: number };
  readonly ipt: { compile: StepTimes; render: StepTimes };
}

function measureCompile(state: ProxierState, services: number, runs: number): CompileFigures {
  let nft: NftRuleset | undefined;
  let text = '';
  const [nftCompile, nftRender] = timeSteps(runs, [
    () => { nft = compileNftablesRules(state); },
    () => { text = renderNftScript(nft!); },
  ]) as [StepTimes, StepTimes];
  gc?.();
  const heapMB = process.memoryUsage().heapUsed / 1048576;
  const counts = countNftRules(nft!);
  let ipt: Ruleset | undefined;
  const [iptCompile, iptRender] = timeSteps(runs, [
    () => { ipt = compileIptablesRules(state); },
    () => { renderIptablesSave(ipt!); },
  ]) as [StepTimes, StepTimes];
  return {
    services,
    nft: { compile: nftCompile, render: nftRender, ...counts, bytes: text.length, heapMB },
    ipt: { compile: iptCompile, render: iptRender },
  };
}

function compileRow(f: CompileFigures): string {
  const nftMs = f.nft.compile.wallMs + f.nft.render.wallMs;
  const nftCpu = f.nft.compile.cpuMs + f.nft.render.cpuMs;
  const iptMs = f.ipt.compile.wallMs + f.ipt.render.wallMs;
  return [
    `${String(f.services).padStart(6)} services`,
    `nftables compile ${f.nft.compile.wallMs.toFixed(0).padStart(5)} ms + render ${f.nft.render.wallMs.toFixed(0).padStart(4)} ms (cpu ${nftCpu.toFixed(0)})`,
    `${f.nft.rules} rules, ${f.nft.elements} elements, ${f.nft.chains} chains, ${(f.nft.bytes / 1048576).toFixed(1)} MB`,
    `heap ${f.nft.heapMB.toFixed(0)} MB`,
    `| iptables ${iptMs.toFixed(0)} ms: nftables/iptables ${(nftMs / iptMs).toFixed(2)}`,
  ].join('  ');
}

// ------------------------------------------------------------------------------ rules per packet

/** Packets from a pod to randomly chosen service ports' cluster IPs (seeded). */
function packetsOf(state: ProxierState, n: number): Packet[] {
  const random = seededRng(BENCH_SEED);
  const packets: Packet[] = [];
  for (let i = 0; i < n; i++) {
    const sp = state.servicePorts[Math.floor(random() * state.servicePorts.length)]!;
    packets.push({ proto: 'tcp', src: '10.244.3.7', dst: sp.info.clusterIP, dport: sp.info.port });
  }
  return packets;
}

/** "table chain rule" → position in its chain, for rulesCheckedOnPath. */
function iptablesPositions(ruleset: Ruleset): Map<string, number> {
  const positions = new Map<string, number>();
  for (const [tableName, table] of ruleset.tables) {
    for (const chain of table.chains.values()) chain.rules.forEach((rule, i) => positions.set(`${tableName} ${chain.name} ${renderRule(rule)}`, i + 1));
  }
  return positions;
}

interface WalkFigures {
  readonly services: number;
  /** Rules nftables evaluates per packet, matched or not (exact, on the sampled walk). */
  readonly nftEvaluated: number;
  /** Rules checked up to each match, the same count for both modes (kpsim compare's measure). */
  readonly nftChecked: number;
  readonly iptChecked: number;
}

function measureWalks(state: ProxierState, services: number): WalkFigures {
  const nft = compileNftablesRules(state);
  const ipt = compileIptablesRules(state, { nfacct: false });
  const context = { localAddresses: state.localAddresses };
  const nftTracer = createNftTracer(nft, context);
  const iptTracer = createTracer(ipt, context);
  const nftPos = nftRulePositions([nft]);
  const iptPos = iptablesPositions(ipt);
  let evaluated = 0;
  let nftChecked = 0;
  let iptChecked = 0;
  const packets = packetsOf(state, PACKETS);
  packets.forEach((packet, i) => {
    evaluated += nftTracer.rulesEvaluated(packet, { seed: i + 1 });
    nftChecked += rulesCheckedOnPath(nftTracer.sample(packet, i + 1).hops, nftPos);
    iptChecked += rulesCheckedOnPath(iptTracer.sample(packet, i + 1).hops, iptPos);
  });
  return { services, nftEvaluated: evaluated / packets.length, nftChecked: nftChecked / packets.length, iptChecked: iptChecked / packets.length };
}

function walkRow(f: WalkFigures): string {
  return `${String(f.services).padStart(6)} services  nftables ${f.nftEvaluated.toFixed(1)} rules evaluated (${f.nftChecked.toFixed(1)} checked up to each match)  iptables ${f.iptChecked.toFixed(1)} checked up to each match  iptables/nftables ${(f.iptChecked / f.nftChecked).toFixed(1)}`;
}

// ------------------------------------------------------------------------------ kernel load

function loadUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'not root';
  const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  for (const tool of ['ip', 'nft', 'iptables-restore']) if (!has(tool)) return `${tool} is missing`;
  return false;
}

interface LoadTime {
  readonly wallS: number;
  readonly cpuS: number;
}

/** Run `cmd < file` in a fresh namespace; wall and CPU (user + sys) seconds of the command. */
function timedLoad(tag: string, cmd: string, file: string): Promise<LoadTime> {
  return withBenchNetns(`kpsim-bench-${process.pid}-${tag}`, (ns) => new Promise<LoadTime>((resolve, reject) => {
    const script = `TIMEFORMAT='%R %U %S'; { time ip netns exec ${ns} ${cmd} < ${file} >/dev/null; } 2>&1`;
    // Waited for asynchronously, so that an interrupt is handled while it runs (interrupt.ts);
    // a process group of its own, so that the interrupt's undo ends the load with it.
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, timeout: 600_000 });
    const release = undoOnInterrupt(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', (e) => {
      release();
      reject(e);
    });
    child.on('close', (status) => {
      release();
      const m = /(\d+\.\d+) (\d+\.\d+) (\d+\.\d+)\s*$/.exec(out);
      if (status !== 0 || !m) reject(new Error(`${cmd}: ${out}`));
      else resolve({ wallS: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]) });
    });
  }));
}

async function measureLoad(state: ProxierState, services: number, dir: string): Promise<string> {
  const nftFile = join(dir, `nft-${services}.nft`);
  const iptFile = join(dir, `ipt-${services}.rules`);
  writeFileSync(nftFile, renderNftScript(compileNftablesRules(state)));
  writeFileSync(iptFile, renderIptablesSave(compileIptablesRules(state, { nfacct: false })));
  const nft = await timedLoad(`n${services}`, 'nft -f -', nftFile);
  const ipt = await timedLoad(`i${services}`, 'iptables-restore', iptFile);
  return `${String(services).padStart(6)} services  nft -f ${nft.wallS.toFixed(2)} s (cpu ${nft.cpuS.toFixed(2)})  iptables-restore ${ipt.wallS.toFixed(2)} s (cpu ${ipt.cpuS.toFixed(2)})  nft/iptables ${(nft.wallS / ipt.wallS).toFixed(1)}`;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const [small, large] = quick ? [100, 1000] : [1000, 10000];
  const loads = quick ? [100, 1000] : [1000, 5000];
  const runs = quick ? 3 : 5;
  console.log(`nftables bench: ${small} and ${large} services x ${ENDPOINTS_PER_SERVICE} endpoints, seed ${BENCH_SEED}, median of ${runs} runs`);
  console.log(`${machineLine()}${gc ? '' : ' (no --expose-gc: heap figures include garbage)'}`);

  const states = new Map<number, ProxierState>();
  const stateOf = (n: number): ProxierState => {
    let s = states.get(n);
    if (!s) {
      s = generatedState(n);
      states.set(n, s);
    }
    return s;
  };

  console.log('\ncompile + render (ProxierState -> nft -f text), iptables mode beside it:');
  const a = measureCompile(stateOf(small), small, runs);
  console.log(compileRow(a));
  const b = measureCompile(stateOf(large), large, runs);
  console.log(compileRow(b));
  const wallOf = (f: CompileFigures): number => f.nft.compile.wallMs + f.nft.render.wallMs;
  console.log(`ratio ${large}/${small}: ${(wallOf(b) / wallOf(a)).toFixed(1)} (linear would be ${(large / small).toFixed(0)})`);
  if (!quick) {
    const seconds = wallOf(b) / 1000;
    console.log(`target: 10k x 10 compiled and rendered in < ${TARGET_SECONDS_10K} s: ${seconds.toFixed(2)} s wall, ${((b.nft.compile.cpuMs + b.nft.render.cpuMs) / 1000).toFixed(2)} s cpu (${seconds < TARGET_SECONDS_10K ? 'met' : 'NOT met'})`);
    console.log(`target: heap < ${TARGET_HEAP_MB_10K} MB: ${b.nft.heapMB.toFixed(0)} MB (${b.nft.heapMB < TARGET_HEAP_MB_10K ? 'met' : 'NOT met'})`);
  }

  console.log(`\nrules a first packet walks (${PACKETS} packets from a pod to random cluster IPs, sampled walks):`);
  const wa = measureWalks(stateOf(small), small);
  console.log(walkRow(wa));
  const wb = measureWalks(stateOf(large), large);
  console.log(walkRow(wb));
  console.log(`growth ${large}/${small} services: nftables x${(wb.nftEvaluated / wa.nftEvaluated).toFixed(2)} (O(1) would be 1), iptables x${(wb.iptChecked / wa.iptChecked).toFixed(2)}`);

  const unavailable = loadUnavailable();
  console.log(`\nloading the ruleset into a network namespace, nft -f against iptables-restore:`);
  if (unavailable) {
    console.log(`skipped: ${unavailable}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'kpsim-nft-bench-'));
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  const release = undoOnInterrupt(removeDir);
  try {
    for (const n of loads) console.log(await measureLoad(stateOf(n), n, dir));
  } finally {
    release();
    removeDir();
  }
}

await main();
