/**
 * Proxy benchmark: HTTP through kpsim's userspace proxy against the same backend reached
 * directly, and through HAProxy in TCP mode with as many threads as kpsim has workers, in one run.
 *
 *   npm run build && node dist/bench/proxy.bench.js [--quick] [--rounds N] [--workers 1,2] [--profile]
 *
 * Who runs where (2 cores are shared by all of it, so the layout is part of the result):
 *   - the backend: one kpsim backend pod (fastify) in its own process (this file with --role backend);
 *   - kpsim's proxy: the real CLI, `kpsim up --no-pods --backend ENDPOINT=BACKEND`, alone in its
 *     process (with --workers N, its worker threads in that process);
 *   - haproxy 2.6 in its own process (mode tcp, nbthread N), stopped by PID;
 *   - the load generator: wrk (a C program, its own process) for the primary figures; autocannon
 *     in a worker thread of this process beside it.
 *
 * Printed, never asserted: per path the median over interleaved rounds (each round starts one
 * path further on) of req/s, latency, and the CPU time the forwarding process spent per request,
 * read from its /proc stat (user and system time, all threads): the system part is the kernel's
 * share. CPU per request holds steadier than req/s when other work shares the cores; how busy the
 * machine was during the runs is printed too. Targets are printed beside the figures with
 * ratios against haproxy and direct from the same run; absolute figures across runs do not compare.
 *
 * --profile adds, for kpsim without and with keep-alive: the functions with the most self time in a
 * --cpu-prof profile of the proxy process, a `perf record` split by binary (the kernel's share),
 * and `strace -c` syscall counts per connection or request for kpsim and haproxy (the kernel
 * work each asks for), with their epoll registrations by operation.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median } from './common.js';
import { type FloorEnd, startFloorRelay } from './proxy-floor.js';
import { formatTable, millis, rate } from '../src/load/table.js';
import type { LoadRunResult } from '../src/load/types.js';
import { runLoadInWorker } from '../src/load/worker-runner.js';
import { joinHostPort, splitHostPort } from '../src/util/ip.js';
import { type HostPort, planAddressMap, startBackends } from '../src/proxy/index.js';
import { clusterFromManifests } from '../src/manifest/load.js';
import { buildProxierStates, resolveNode } from '../src/tracker/proxier-state.js';
import type { ProxierState } from '../src/tracker/types.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const PROFILE = argv.includes('--profile');
const WORKERS = (valueOf('--workers') ?? '1,2').split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1);
const CONNECTIONS = 10;
const SECONDS = QUICK ? 2 : 5;
const ROUNDS = Number(valueOf('--rounds') ?? (QUICK ? 1 : 3));
const WARMUP_SECONDS = 1;
/** The moderate load: this many req/s over few keep-alive connections, wrk pacing each one. */
const MODERATE_RATE = 2000;
const MODERATE_CONNECTIONS = 2;
const ENDPOINT = '10.244.0.10:8080';

const TARGETS = {
  noKeepAliveConnRate: 1.0,
  noKeepAliveCpu: 1.2,
  keepAliveCpu: 1.0,
  addedP99Ms: 1,
};

function valueOf(flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

// ------------------------------------------------------------------ the cluster

/** One service with one endpoint: every path ends at the same backend. */
function benchManifests(): object[] {
  return [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'bench-node' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'bench' },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.100', clusterIPs: ['10.96.0.100'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'echo-1', namespace: 'bench', labels: { 'kubernetes.io/service-name': 'echo' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [ENDPOINT.split(':')[0]], conditions: { ready: true }, nodeName: 'bench-node', targetRef: { kind: 'Pod', namespace: 'bench', name: 'echo-0' } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    },
  ];
}

function benchStates(): ProxierState[] {
  const cluster = clusterFromManifests([{ file: 'bench.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: benchManifests() }) }]);
  return buildProxierStates(cluster, resolveNode(cluster));
}

// ------------------------------------------------------------------ processes

/** `--role backend`: start the backend pod, print where it listens, run until stdin closes. */
async function runBackendChild(): Promise<void> {
  const states = benchStates();
  const backends = await startBackends(states, { ports: 'ephemeral', map: planAddressMap(states, { ports: 'ephemeral' }) });
  process.stdout.write(`${JSON.stringify(backends.entries[0]!.loopback)}\n`);
  runUntilParentLets(() => backends.close());
}

/** A child role: close and exit once the bench closes our stdin or sends SIGTERM. */
function runUntilParentLets(close: () => Promise<void>): void {
  const stop = (): void => void close().then(() => process.exit(0));
  process.stdin.on('end', stop).on('close', stop).resume();
  process.on('SIGTERM', stop);
}

interface Forwarder {
  readonly name: string;
  readonly address: HostPort;
  readonly pid: number;
  stop(): Promise<void>;
  /** kpsim: its final counters, once stopped. */
  readonly final?: () => KpsimFinal | undefined;
}

/** What `kpsim up --json` prints when it stops: the parts the bench reads. */
interface KpsimFinal {
  stats: {
    proxy: {
      listeners: { forwarded: number }[];
      workers?: { worker: number; accepted: number; written: number; replayed: number; lockWaits: number }[];
    };
  };
}

async function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (text) => { lines.close(); resolve(text); });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready`)));
  });
}

async function startBackendProcess(): Promise<{ address: HostPort; child: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--role', 'backend'], { stdio: ['pipe', 'pipe', 'inherit'] });
  return { address: JSON.parse(await firstLine(child, 'the backend')) as HostPort, child };
}

/** The real CLI: `kpsim up --no-pods --backend ENDPOINT=BACKEND`, alone in its process. */
async function startKpsim(folder: string, backend: HostPort, workers: number, nodeFlags: readonly string[] = []): Promise<Forwarder> {
  const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
  const args = [
    ...nodeFlags, main, 'up', '-f', folder, '-q', '--json', '--ephemeral-ports', '--no-pods',
    '--backend', `${ENDPOINT}=${backend.address}:${backend.port}`, ...(workers > 1 ? ['--workers', String(workers)] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const up = JSON.parse(await firstLine(child, 'kpsim up')) as { map: { entries: { kind: string; proxied: boolean; loopback: HostPort }[] } };
  const entry = up.map.entries.find((e) => e.kind === 'ClusterIP' && e.proxied)!;
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  return {
    name: workers > 1 ? `kpsim --workers ${workers}` : 'kpsim',
    address: entry.loopback,
    pid: child.pid!,
    stop: () => stopProcess(child, 'SIGINT'),
    final: () => {
      const last = output.trim().split('\n').at(-1);
      try {
        return last === undefined || last === '' ? undefined : JSON.parse(last) as KpsimFinal;
      } catch {
        return undefined;
      }
    },
  };
}

/** `--role floor --backend HOST:PORT`: the floor relay (proxy-floor.ts); prints its port, runs until stdin closes. */
async function runFloorChild(): Promise<void> {
  const text = valueOf('--backend') ?? '';
  const backend = splitHostPort(text);
  if (backend === undefined) throw new Error(`--backend wants IP:PORT, got "${text}"`);
  const end = valueOf('--end') === 'half-close' ? 'half-close' : 'close';
  const relay = await startFloorRelay({ address: backend.ip, port: backend.port }, end);
  process.stdout.write(`${JSON.stringify({ port: relay.port })}\n`);
  runUntilParentLets(() => relay.close());
}

/**
 * A floor (proxy-floor.ts) in its own process: the least a proxy on Node's own handles does, so
 * the tables show how much of kpsim's cost is its own code and how much any Node proxy pays.
 */
async function startFloor(backend: HostPort, end: FloorEnd): Promise<Forwarder> {
  const args = [fileURLToPath(import.meta.url), '--role', 'floor', '--end', end, '--backend', joinHostPort(backend.address, backend.port)];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const { port } = JSON.parse(await firstLine(child, `the ${end} floor`)) as { port: number };
  return { name: FLOORS[end], address: { address: '127.0.0.1', port }, pid: child.pid!, stop: () => stopProcess(child) };
}

/** The floors' rows: closing both sockets at the first FIN, and passing each FIN on as kpsim does. */
const FLOORS: Readonly<Record<FloorEnd, string>> = { 'close': 'node floor, close', 'half-close': 'node floor, half-close' };

/** haproxy's version, or undefined when it is not on PATH. */
function haproxyVersion(): string | undefined {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  return /HAProxy version (\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.split('\n')[0]!;
}

async function startHaproxy(folder: string, backend: HostPort, threads: number): Promise<Forwarder> {
  const port = await freeLoopbackPort();
  const config = [
    'global',
    `  nbthread ${threads}`,
    // Within the default 1024-FD soft limit's reach: haproxy raises it to about 2 x maxconn.
    '  maxconn 4000',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    'listen kpsim-bench',
    `  bind 127.0.0.1:${port}`,
    `  server pod ${backend.address}:${backend.port}`,
    '',
  ].join('\n');
  const file = join(folder, `haproxy-${threads}.cfg`);
  await writeFile(file, config);
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  const address = { address: '127.0.0.1', port };
  try {
    await waitUntilAccepting(address, child);
  } catch (e) {
    await stopProcess(child);
    throw e;
  }
  return { name: `haproxy nbthread ${threads}`, address, pid: child.pid!, stop: () => stopProcess(child) };
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL'); }, 5000);
  await exited;
  clearTimeout(timer);
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitUntilAccepting(target: HostPort, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(target.port, target.address);
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing accepts connections on ${target.address}:${target.port}`);
}

// ------------------------------------------------------------------ CPU time

/** Linux's USER_HZ, the unit of utime and stime in /proc stat files. */
const CLOCK_TICKS_PER_SECOND = 100;

interface CpuTimes {
  userMs: number;
  systemMs: number;
}

/** User and system CPU time of a process, all its threads (/proc/PID/stat utime, stime). */
function cpuOf(pid: number): CpuTimes | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { userMs: (Number(fields[11]) * 1000) / CLOCK_TICKS_PER_SECOND, systemMs: (Number(fields[12]) * 1000) / CLOCK_TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** Jiffies of all CPUs: busy and total (/proc/stat), to say how busy the machine was. */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

// ------------------------------------------------------------------ wrk

interface RunResult {
  requests: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

interface WrkOptions {
  url: string;
  seconds: number;
  connections: number;
  keepAlive: boolean;
  /** Requests per second in total, paced per connection with a Lua delay(). */
  rate?: number;
}

async function runWrk(opts: WrkOptions, folder: string): Promise<RunResult> {
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', '--timeout', '5s'];
  if (!opts.keepAlive) args.push('-H', 'Connection: close');
  if (opts.rate !== undefined) {
    const script = join(folder, `pace-${opts.rate}-${opts.connections}.lua`);
    const delayMs = (1000 * opts.connections) / opts.rate;
    await writeFile(script, `function delay()\n  return ${delayMs.toFixed(3)}\nend\n`);
    args.push('-s', script);
  }
  args.push(opts.url);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`))));
  });
  return parseWrk(out);
}

/** wrk 4.1's report: "N requests in Ts", the --latency distribution, socket errors, non-2xx. */
export function parseWrk(text: string): RunResult {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(text);
  const percentile = (p: number): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? toMs(Number(m[1]), m[2]!) : Number.NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const errors = (socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  if (total === null) throw new Error(`cannot read wrk's report:\n${text}`);
  return { requests: Number(total[1]), seconds: toMs(Number(total[2]), total[3]!) / 1000, p50Ms: percentile(50), p99Ms: percentile(99), errors };
}

function toMs(value: number, unit: string): number {
  switch (unit) {
    case 'us': return value / 1000;
    case 'ms': return value;
    case 's': return value * 1000;
    default: return value * 60_000;
  }
}

function fromAutocannon(run: LoadRunResult): RunResult {
  return { requests: run.responses, seconds: run.elapsedSeconds, p50Ms: run.latency.p50Ms, p99Ms: run.latency.p99Ms, errors: run.errors.total };
}

// ------------------------------------------------------------------ rounds

interface Path {
  readonly name: string;
  readonly url: string;
  /** The process that forwards this path's traffic (none for direct). */
  readonly pid?: number;
}

interface Sample {
  readonly run: RunResult;
  /** Forwarder CPU per request, µs (undefined for direct). */
  readonly userUs?: number;
  readonly systemUs?: number;
  /** Share of all CPUs busy during the run, 0..1 (every process on the machine). */
  readonly machineBusy: number;
}

interface PathResult {
  readonly path: Path;
  readonly samples: Sample[];
}

type Runner = (path: Path, seconds: number) => Promise<RunResult>;

/**
 * Rounds of every path in turn (so drift in the machine's load hits all paths alike), each round
 * starting one path further on (without keep-alive each run leaves TIME_WAIT sockets behind for
 * the next), after a warm-up run per path.
 */
async function interleaved(label: string, paths: readonly Path[], runner: Runner): Promise<PathResult[]> {
  const results: PathResult[] = paths.map((path) => ({ path, samples: [] }));
  for (const path of paths) await runner(path, WARMUP_SECONDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < results.length; i++) {
      const result = results[(round + i) % results.length]!;
      process.stderr.write(`  ${label} round ${round + 1}/${ROUNDS}: ${result.path.name}\n`);
      const before = result.path.pid !== undefined ? cpuOf(result.path.pid) : undefined;
      const ticks = machineTicks();
      const run = await runner(result.path, SECONDS);
      const ticksAfter = machineTicks();
      const after = result.path.pid !== undefined ? cpuOf(result.path.pid) : undefined;
      const machineBusy = (ticksAfter.busy - ticks.busy) / Math.max(1, ticksAfter.total - ticks.total);
      if (before !== undefined && after !== undefined && run.requests > 0) {
        result.samples.push({
          run, machineBusy,
          userUs: ((after.userMs - before.userMs) * 1000) / run.requests,
          systemUs: ((after.systemMs - before.systemMs) * 1000) / run.requests,
        });
      } else {
        result.samples.push({ run, machineBusy });
      }
    }
  }
  return results;
}

function rps(run: RunResult): number {
  return run.seconds > 0 ? run.requests / run.seconds : 0;
}

interface Summary {
  readonly name: string;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** Median CPU µs per request: user, system, and their sum (median of the sums). */
  readonly userUs?: number;
  readonly systemUs?: number;
  readonly cpuUs?: number;
  readonly machineBusy: number;
}

function summarize(result: PathResult): Summary {
  const runs = result.samples.map((s) => s.run);
  const withCpu = result.samples.filter((s) => s.userUs !== undefined);
  return {
    name: result.path.name,
    rps: median(runs.map(rps)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
    ...(withCpu.length > 0 ? {
      userUs: median(withCpu.map((s) => s.userUs!)),
      systemUs: median(withCpu.map((s) => s.systemUs!)),
      cpuUs: median(withCpu.map((s) => s.userUs! + s.systemUs!)),
    } : {}),
    machineBusy: median(result.samples.map((s) => s.machineBusy)),
  };
}

function verdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

function cpuCell(s: Summary): string {
  return s.cpuUs === undefined ? '-' : `${s.cpuUs.toFixed(1)} (${s.userUs!.toFixed(1)} + ${s.systemUs!.toFixed(1)})`;
}

function table(title: string, rows: readonly Summary[], target: (s: Summary, vsHaproxy: { rps: number; cpu: number } | undefined) => string): string {
  const direct = rows.find((r) => r.name === 'direct');
  const haproxy = rows.find((r) => r.name.startsWith('haproxy'));
  const lines = rows.map((r) => {
    const vs = haproxy !== undefined && r !== haproxy && r.cpuUs !== undefined && haproxy.cpuUs !== undefined
      ? { rps: r.rps / haproxy.rps, cpu: r.cpuUs / haproxy.cpuUs }
      : undefined;
    return [
      r.name, rate(r.rps), direct !== undefined ? `${(r.rps / direct.rps).toFixed(2)}x` : '-',
      vs !== undefined ? `${vs.rps.toFixed(2)}x` : '-',
      millis(r.p50Ms), millis(r.p99Ms), String(r.errors), cpuCell(r),
      vs !== undefined ? `${vs.cpu.toFixed(2)}x` : '-',
      `${(r.machineBusy * 100).toFixed(0)}%`,
      target(r, vs),
    ];
  });
  return `${title}\n${formatTable(
    [
      { header: 'path' }, { header: 'req/s', align: 'right' }, { header: 'vs direct', align: 'right' }, { header: 'vs haproxy', align: 'right' },
      { header: 'p50 ms', align: 'right' }, { header: 'p99 ms', align: 'right' }, { header: 'errors', align: 'right' },
      { header: 'CPU µs/req (user + sys)', align: 'right' }, { header: 'CPU vs haproxy', align: 'right' }, { header: 'machine busy', align: 'right' },
      { header: 'target' },
    ],
    lines, '  ',
  )}`;
}

// ------------------------------------------------------------------ the floor

function floorCell(s: Summary): string {
  if (s.name === FLOORS['half-close']) return 'the least a proxy on Node\'s handles spends, passing FINs on as kpsim does';
  if (s.name === FLOORS.close) return 'the same, closing both at the first FIN (kube-proxy\'s userspace proxier)';
  return '';
}

/**
 * Where kpsim stands between the floors and haproxy: how much of its CPU per request is above the
 * half-close floor (its own code; the floor ends connections as kpsim does), and whether that
 * floor is within the target (if it is not, no proxy on Node's handles that passes FINs on reaches
 * the target in this run, whatever its code).
 */
function floorNote(rows: readonly Summary[], unit: 'request' | 'connection', cpuTarget: number, rateTarget?: number): string {
  const kpsim = rows.find((r) => r.name === 'kpsim');
  const floor = rows.find((r) => r.name === FLOORS['half-close']);
  const closing = rows.find((r) => r.name === FLOORS.close);
  const haproxy = rows.find((r) => r.name.startsWith('haproxy'));
  if (kpsim?.cpuUs === undefined || floor?.cpuUs === undefined || haproxy?.cpuUs === undefined) return '';
  const above = kpsim.cpuUs - floor.cpuUs;
  const floorCpu = floor.cpuUs / haproxy.cpuUs;
  const lines = [
    `  kpsim above the half-close floor: ${above >= 0 ? '+' : ''}${above.toFixed(1)} µs per ${unit} (user ${(kpsim.userUs! - floor.userUs!).toFixed(1)}, system ${(kpsim.systemUs! - floor.systemUs!).toFixed(1)}), ${((100 * above) / kpsim.cpuUs).toFixed(0)}% of its CPU;`
    + ` that floor is ${floorCpu.toFixed(2)}x haproxy's CPU per ${unit} (user ${(floor.userUs! / haproxy.userUs!).toFixed(2)}x, system ${(floor.systemUs! / haproxy.systemUs!).toFixed(2)}x)`
    + (closing?.cpuUs !== undefined ? `, the close floor ${(closing.cpuUs / haproxy.cpuUs).toFixed(2)}x` : ''),
    `  the CPU target (<= ${cpuTarget.toFixed(1)}x haproxy) ${floorCpu <= cpuTarget ? 'is within the half-close floor\'s reach' : 'is below the half-close floor: out of reach in this run for a proxy on Node\'s handles that passes FINs on'}`,
  ];
  if (rateTarget !== undefined) {
    lines.push(`  the rate target (>= ${rateTarget.toFixed(1)}x haproxy): the half-close floor reaches ${(floor.rps / haproxy.rps).toFixed(2)}x${closing !== undefined ? `, the close floor ${(closing.rps / haproxy.rps).toFixed(2)}x` : ''}, kpsim ${(kpsim.rps / haproxy.rps).toFixed(2)}x`);
  }
  return lines.join('\n');
}

// ------------------------------------------------------------------ profile

/**
 * Self time per function from a V8 .cpuprofile, from the first connection on (startup left out):
 * the top `n`. Time in a native call (a syscall, Node's C++) is the calling function's.
 */
function profileSummary(file: string, n: number): string[] {
  interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const first = profile.samples.findIndex((id) => byId.get(id)!.callFrame.url.includes('/proxy/connection'));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    if (first < 0 || i < first) return;
    const node = byId.get(id)!;
    const dt = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : ` ${url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  const top = [...self.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, n);
  return [
    `  ${(busy / 1000).toFixed(0)} ms on CPU of ${(total / 1000).toFixed(0)} ms profiled after startup; self time, share of the time on CPU:`,
    ...top.map(([k, t]) => `  ${((100 * t) / Math.max(1, busy)).toFixed(1).padStart(5)}%  ${k}`),
  ];
}

/**
 * `perf record` of a process for one wrk run (with or without keep-alive): where its CPU time goes, by
 * binary (the kernel, node's own C++ with V8 and libuv, libc, JIT-compiled JavaScript), and the
 * busiest user-space symbols. Empty when perf cannot record here.
 */
async function perfSplit(pid: number, url: string, folder: string, keepAlive: boolean): Promise<string[]> {
  const data = join(folder, `perf-${pid}-${keepAlive ? 'ka' : 'close'}.data`);
  const recorder = spawn('perf', ['record', '-F', '999', '-o', data, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  await runWrk({ url, seconds: 4, connections: CONNECTIONS, keepAlive }, folder);
  await stopProcess(recorder, 'SIGINT');
  const report = (sort: string): string[] => {
    const out = spawnSync('perf', ['report', '-i', data, '--no-children', '--sort', sort, '--stdio', '-g', 'none'], { encoding: 'utf8' });
    return (out.stdout ?? '').split('\n').filter((l) => /^\s+[\d.]+%/.test(l)).map((l) => l.trim().replace(/\s+/g, ' '));
  };
  const byBinary = report('dso').slice(0, 5);
  if (byBinary.length === 0) return [];
  const userSymbols = report('sym').filter((l) => l.includes('[.]')).slice(0, 8);
  return [`  by binary: ${byBinary.join(', ')}`, `  busiest user-space symbols: ${userSymbols.join(', ')}`];
}

/** `strace -c -f -p PID` for the length of one wrk run: syscalls per request (per connection without keep-alive). */
async function straceCounts(pid: number, url: string, folder: string, keepAlive: boolean): Promise<string[]> {
  const out = join(folder, `strace-${pid}-${keepAlive ? 'ka' : 'close'}.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const run = await runWrk({ url, seconds: 3, connections: CONNECTIONS, keepAlive }, folder);
  await stopProcess(tracer, 'SIGINT');
  const text = readFileSync(out, 'utf8');
  const rows = text.split('\n').filter((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(l) && !/\stotal\s*$/.test(l)).map((l) => l.trim().split(/\s+/));
  const perRequest = rows
    .map((cols) => ({ name: cols[cols.length - 1]!, calls: Number(cols[3]) }))
    .sort((a, b) => b.calls - a.calls)
    .slice(0, 14)
    .map((r) => `${r.name} ${(r.calls / Math.max(1, run.requests)).toFixed(2)}`);
  const totalCalls = rows.reduce((sum, cols) => sum + Number(cols[3]), 0);
  const per = keepAlive ? 'request' : 'connection';
  return [
    `${(totalCalls / Math.max(1, run.requests)).toFixed(1)} syscalls per ${per} (${run.requests} ${per}s under strace): ${perRequest.join(', ')}`,
    await epollChanges(pid, url, folder, keepAlive),
  ];
}

/**
 * `strace -e trace=epoll_ctl` for one short wrk run: epoll registrations per connection (per request
 * with keep-alive) by operation, and how many the kernel refused (libuv's ADD refused with EEXIST
 * before a MOD): what each proxy's event loop asks of the kernel besides the reads and writes.
 */
async function epollChanges(pid: number, url: string, folder: string, keepAlive: boolean): Promise<string> {
  const out = join(folder, `epoll-${pid}-${keepAlive ? 'ka' : 'close'}.txt`);
  const tracer = spawn('strace', ['-f', '-e', 'trace=epoll_ctl', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const run = await runWrk({ url, seconds: 2, connections: CONNECTIONS, keepAlive }, folder);
  await stopProcess(tracer, 'SIGINT');
  const counts = new Map<string, number>();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /epoll_ctl\(\d+, EPOLL_CTL_(\w+),.*= (-?\d+)/.exec(line);
    if (m === null) continue;
    const key = m[2] === '0' ? m[1]! : `${m[1]!} refused`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const per = (n: number): string => (n / Math.max(1, run.requests)).toFixed(2);
  const cells = ['ADD', 'MOD', 'DEL', 'ADD refused', 'MOD refused', 'DEL refused'].filter((k) => counts.has(k)).map((k) => `${k} ${per(counts.get(k)!)}`);
  return `; epoll_ctl per ${keepAlive ? 'request' : 'connection'}: ${cells.join(', ') || 'none'}`;
}

// ------------------------------------------------------------------ main

function environmentLines(haproxy: string | undefined): string[] {
  const cpu = cpus();
  const wrk = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  return [
    `node ${process.version}, CPU ${cpu[0]?.model.trim() ?? 'unknown'} x${cpu.length}, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} interleaved round(s) after a ${WARMUP_SECONDS} s warm-up per path`,
    `load generator: ${(wrk.stdout || wrk.stderr).split('\n')[0]?.trim() ?? 'wrk'} (-t1, its own process); autocannon in a worker thread of the bench process for the second table`,
    `backend: one kpsim backend pod (fastify) in its own process; kpsim: \`kpsim up --no-pods --backend\` alone in its process; ${haproxy !== undefined ? `haproxy ${haproxy} (mode tcp)` : 'haproxy not run'}`,
  ];
}

async function main(): Promise<void> {
  const version = haproxyVersion();
  const hasWrk = spawnSync('wrk', ['--version']).error === undefined;
  console.log('kpsim proxy benchmark: HTTP GET / to one backend: direct, through kpsim\'s userspace proxy, through haproxy (TCP mode)');
  for (const line of environmentLines(version)) console.log(line);
  if (!hasWrk) console.log('wrk is not on PATH (apt-get install -y wrk): only the autocannon table is measured');
  if (version === undefined) console.log('haproxy rows skipped: `haproxy` is not on PATH (apt-get install -y haproxy)');

  const folder = await mkdtemp(join(tmpdir(), 'kpsim-proxy-bench-'));
  await writeFile(join(folder, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: benchManifests() }));
  const backend = await startBackendProcess();
  const forwarders: Forwarder[] = [];
  try {
    const direct: Path = { name: 'direct', url: `http://${backend.address.address}:${backend.address.port}/` };
    const pathOf = (f: Forwarder): Path => ({ name: f.name, url: `http://${f.address.address}:${f.address.port}/`, pid: f.pid });
    const start = async (workers: number): Promise<Path[]> => {
      const kpsim = await startKpsim(folder, backend.address, workers);
      forwarders.push(kpsim);
      const paths = [pathOf(kpsim)];
      if (workers > 1) paths.unshift(single[1]!);
      else {
        for (const end of ['half-close', 'close'] as const) {
          const floor = await startFloor(backend.address, end);
          forwarders.push(floor);
          paths.push(pathOf(floor));
        }
      }
      if (version !== undefined) {
        const haproxy = await startHaproxy(folder, backend.address, workers);
        forwarders.push(haproxy);
        paths.push(pathOf(haproxy));
      }
      return paths;
    };
    const single: Path[] = [];
    single.push(direct, ...(await start(1)));
    const wrk = (keepAlive: boolean, connections = CONNECTIONS, pace?: number): Runner => (path, seconds) =>
      runWrk({ url: path.url, seconds, connections, keepAlive, ...(pace !== undefined ? { rate: pace } : {}) }, folder);
    const autocannon = (keepAlive: boolean): Runner => async (path, seconds) =>
      fromAutocannon(await runLoadInWorker({ url: path.url, connections: CONNECTIONS, durationSeconds: seconds, keepAlive }));

    const sections: string[] = [];
    if (hasWrk) {
      const keepAlive = (await interleaved('wrk keep-alive', single, wrk(true))).map(summarize);
      const noKeepAlive = (await interleaved('wrk no keep-alive', single, wrk(false))).map(summarize);
      const moderate = (await interleaved(`wrk ${MODERATE_RATE} req/s`, single, wrk(true, MODERATE_CONNECTIONS, MODERATE_RATE))).map(summarize);
      sections.push(table('wrk, keep-alive (as fast as possible): CPU per request from each forwarder\'s /proc stat', keepAlive, (s, vs) =>
        (s.name === 'kpsim' && vs !== undefined ? `CPU/req <= ${TARGETS.keepAliveCpu.toFixed(1)}x haproxy: ${verdict(vs.cpu <= TARGETS.keepAliveCpu)}` : floorCell(s))));
      sections.push(floorNote(keepAlive, 'request', TARGETS.keepAliveCpu));
      sections.push(table('wrk, no keep-alive (one request per TCP connection: req/s = connections/s, CPU per connection)', noKeepAlive, (s, vs) =>
        (s.name === 'kpsim' && vs !== undefined
          ? `conn/s >= ${TARGETS.noKeepAliveConnRate.toFixed(1)}x haproxy: ${verdict(vs.rps >= TARGETS.noKeepAliveConnRate)}; CPU/conn <= ${TARGETS.noKeepAliveCpu.toFixed(1)}x: ${verdict(vs.cpu <= TARGETS.noKeepAliveCpu)}`
          : floorCell(s))));
      sections.push(floorNote(noKeepAlive, 'connection', TARGETS.noKeepAliveCpu, TARGETS.noKeepAliveConnRate));
      const directP99 = moderate.find((s) => s.name === 'direct')!.p99Ms;
      sections.push(table(`wrk, moderate load: ${MODERATE_RATE} req/s paced over ${MODERATE_CONNECTIONS} keep-alive connections (added p99 = p99 - direct's p99)`, moderate, (s) =>
        (s.name === 'direct' ? '' : `added p99 ${(s.p99Ms - directP99 >= 0 ? '+' : '')}${millis(s.p99Ms - directP99)} ms < ${TARGETS.addedP99Ms} ms: ${verdict(s.p99Ms - directP99 < TARGETS.addedP99Ms)}`)));
    }
    const acKeepAlive = (await interleaved('autocannon keep-alive', single, autocannon(true))).map(summarize);
    const acNoKeepAlive = (await interleaved('autocannon no keep-alive', single, autocannon(false))).map(summarize);
    sections.push(table('autocannon (worker thread of the bench process), keep-alive', acKeepAlive, () => ''));
    sections.push(table('autocannon, no keep-alive', acNoKeepAlive, () => ''));

    const scaled: Forwarder[] = [];
    for (const workers of WORKERS.filter((w) => w > 1)) {
      if (!hasWrk) break;
      const paths = await start(workers);
      scaled.push(forwarders.find((f) => f.name === `kpsim --workers ${workers}`)!);
      const keepAlive = (await interleaved(`workers ${workers} keep-alive`, paths, wrk(true, 2 * CONNECTIONS))).map(summarize);
      const noKeepAlive = (await interleaved(`workers ${workers} no keep-alive`, paths, wrk(false, 2 * CONNECTIONS))).map(summarize);
      const versus = (s: Summary, vs: { rps: number; cpu: number } | undefined): string =>
        (s.name.startsWith('kpsim --workers') && vs !== undefined ? `(is ${vs.rps.toFixed(2)}x haproxy's req/s at ${vs.cpu.toFixed(2)}x its CPU/req)` : '');
      sections.push(table(`wrk (${2 * CONNECTIONS} connections), keep-alive: kpsim --workers ${workers} against haproxy nbthread ${workers}, kpsim on one thread beside`, keepAlive, versus));
      sections.push(table(`wrk (${2 * CONNECTIONS} connections), no keep-alive: kpsim --workers ${workers} against haproxy nbthread ${workers}, kpsim on one thread beside`, noKeepAlive, versus));
    }

    if (PROFILE && hasWrk) {
      const singles = forwarders.filter((x) => !x.name.includes('workers') && !/nbthread [2-9]/.test(x.name));
      const hasPerf = spawnSync('perf', ['--version']).error === undefined;
      const hasStrace = spawnSync('strace', ['-V']).error === undefined;
      for (const keepAlive of [false, true]) {
        const how = keepAlive ? 'with keep-alive' : 'without keep-alive';
        process.stderr.write(`profiling kpsim ${how}\n`);
        const profDir = join(folder, `prof-${keepAlive ? 'ka' : 'close'}`);
        const profiled = await startKpsim(folder, backend.address, 1, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
        await runWrk({ url: `http://${profiled.address.address}:${profiled.address.port}/`, seconds: SECONDS, connections: CONNECTIONS, keepAlive }, folder);
        await profiled.stop();
        const file = existsSync(profDir) ? readdirSync(profDir).find((f) => f.endsWith('.cpuprofile')) : undefined;
        const lines = [`Profile of kpsim ${how} (--cpu-prof, main thread):`];
        if (file !== undefined) lines.push(...profileSummary(join(profDir, file), 30));
        if (hasPerf) {
          for (const f of singles) {
            const split = await perfSplit(f.pid, `http://${f.address.address}:${f.address.port}/`, folder, keepAlive);
            if (split.length > 0) lines.push(`${f.name}, perf record (${how}):`, ...split);
          }
        }
        if (hasStrace) {
          for (const f of singles) lines.push(`${f.name} (${how}): ${(await straceCounts(f.pid, `http://${f.address.address}:${f.address.port}/`, folder, keepAlive)).join('')}`);
        }
        sections.push(lines.join('\n'));
      }
    }

    // The workers' use of the scheduling log, over every connection they served.
    for (const f of scaled) {
      await f.stop();
      const proxy = f.final?.()?.stats.proxy;
      if (proxy?.workers === undefined) continue;
      const connections = proxy.listeners.reduce((sum, l) => sum + l.forwarded, 0);
      const per = (n: number): string => (connections > 0 ? (n / connections).toFixed(2) : '-');
      const written = proxy.workers.reduce((sum, w) => sum + w.written, 0);
      const replayed = proxy.workers.reduce((sum, w) => sum + w.replayed, 0);
      const waits = proxy.workers.reduce((sum, w) => sum + w.lockWaits, 0);
      sections.push([
        `${f.name}: scheduler state across workers, over the ${connections} connections it served in the rounds above:`,
        `  accepted per worker ${proxy.workers.map((w) => w.accepted).join(' / ')}; scheduling-log entries written ${per(written)} and replayed ${per(replayed)} per connection; the lock found held ${per(waits)} times per connection`,
        '  (each worker applies every entry: its own as it writes it, the others\' as it next takes the lock or every 20 ms; replayed entries are the cost of one scheduler state)',
      ].join('\n'));
    }

    console.log('');
    console.log(sections.filter((s) => s !== '').join('\n\n'));
    console.log('');
    console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}; "machine busy" is the share of all ${cpus().length} CPUs in use during each run, by every process (this bench's included)`);
    console.log('CPU µs/req is the forwarding process\'s own user + system time (all its threads) over the requests served; system time is the kernel\'s work on its behalf');
    console.log('latencies are wrk\'s and autocannon\'s own, from request written to response read, not corrected for coordinated omission');
  } finally {
    for (const f of forwarders) await f.stop();
    backend.child.stdin?.end();
    await stopProcess(backend.child);
    await rm(folder, { recursive: true, force: true });
  }
}

if (valueOf('--role') === 'backend') await runBackendChild();
else if (valueOf('--role') === 'floor') await runFloorChild();
else await main();
