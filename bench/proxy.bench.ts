/**
 * Proxy benchmark: HTTP through kpsim's userspace proxy against the same fastify backend pod
 * reached directly, and through HAProxy in TCP mode, in one run.
 *
 *   npm run build && node dist/bench/proxy.bench.js [--quick]
 *
 * Printed, never asserted: req/s of each path as a ratio to direct, with keep-alive and without
 * (one request per TCP connection), as the median of a few interleaved rounds; then latency at a
 * moderate fixed request rate and the p99 each proxy adds over direct. Under each throughput table,
 * the CPU time each proxy spent per response (kpsim's main thread, haproxy's process), which
 * holds steadier than req/s when something else shares the cores. Targets are printed beside
 * the figures: the proxy keeps >= 90% of direct req/s with keep-alive and >= 1.0x HAProxy's req/s,
 * and adds < 1 ms p99 at moderate load.
 *
 * Who runs where (2 cores are shared by all of it, so the layout is part of the result):
 *   - the backend pod (kpsim's fastify backend) in a child process: this same file with --backend;
 *   - kpsim's proxy on this process's main thread, alone there;
 *   - autocannon in a worker thread of this process (kpsim's worker-runner);
 *   - haproxy in its own process, started from a config in a temp folder and stopped by PID.
 * Ratios from one run compare; absolute req/s across runs or machines do not.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect, createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { clusterFromManifests } from '../src/manifest/load.js';
import { formatTable, millis, rate, signedMillis } from '../src/load/table.js';
import type { LoadRunOptions, LoadRunResult } from '../src/load/types.js';
import { runLoadInWorker } from '../src/load/worker-runner.js';
import { type HostPort, planAddressMap, startBackends, startProxy } from '../src/proxy/index.js';
import { buildProxierStates, resolveNode } from '../src/tracker/proxier-state.js';
import type { ProxierState } from '../src/tracker/types.js';

const QUICK = process.argv.includes('--quick');
const CONNECTIONS = 10;
const SECONDS_PER_RUN = QUICK ? 2 : 5;
const ROUNDS = QUICK ? 1 : 3;
const WARMUP_SECONDS = QUICK ? 0.5 : 1;
/**
 * The moderate load: an eighth of what direct managed with keep-alive, at most this, over few
 * connections. autocannon's overallRate sends each second's share per connection as a burst and
 * then waits, so the connection count, not the rate, bounds how many requests are in flight.
 */
const MODERATE_RATE_CAP = 2000;
const MODERATE_CONNECTIONS = 2;
const HAPROXY_THREADS = 1;

const TARGETS = {
  proxyVsDirectKeepAlive: 0.9,
  proxyVsHaproxyKeepAlive: 1.0,
  addedP99Ms: 1,
};

/** One service with one endpoint: every path ends at the same backend pod. */
function benchStates(): ProxierState[] {
  const manifests = [
    { apiVersion: 'v1', kind: 'Node', metadata: { name: 'bench-node' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.2' }] } },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'bench' },
      spec: { type: 'ClusterIP', clusterIP: '10.96.0.100', clusterIPs: ['10.96.0.100'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'echo-1', namespace: 'bench', labels: { 'kubernetes.io/service-name': 'echo' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.0.10'], conditions: { ready: true }, nodeName: 'bench-node', targetRef: { kind: 'Pod', namespace: 'bench', name: 'echo-0' } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    },
  ];
  const cluster = clusterFromManifests([{ file: 'bench.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  return buildProxierStates(cluster, resolveNode(cluster));
}

// ------------------------------------------------------------------ the backend child process

/** `--backend`: start the backend pod, print where it listens, run until stdin closes. */
async function runBackendChild(): Promise<void> {
  const states = benchStates();
  const backends = await startBackends(states, { ports: 'ephemeral', map: planAddressMap(states, { ports: 'ephemeral' }) });
  const entry = backends.entries[0]!;
  process.stdout.write(`${JSON.stringify(entry.loopback)}\n`);
  const stop = (): void => void backends.close().then(() => process.exit(0));
  process.stdin.on('end', stop).on('close', stop).resume();
  process.on('SIGTERM', stop);
}

interface BackendProcess {
  readonly address: HostPort;
  readonly child: ChildProcess;
}

async function startBackendProcess(): Promise<BackendProcess> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--backend'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (text) => { lines.close(); resolve(text); });
    child.once('exit', (code) => reject(new Error(`backend process exited (${code}) before it listened`)));
  });
  return { address: JSON.parse(line) as HostPort, child };
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => { if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL'); }, 3000);
  await exited;
  clearTimeout(timer);
}

// ------------------------------------------------------------------ haproxy

interface Haproxy {
  readonly address: HostPort;
  readonly pid: number | undefined;
  readonly version: string;
  stop(): Promise<void>;
}

/** haproxy's version line, or undefined when it is not on PATH. */
function haproxyVersion(): string | undefined {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  return /HAProxy version (\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.split('\n')[0]!;
}

async function startHaproxy(backend: HostPort, version: string): Promise<Haproxy> {
  const folder = await mkdtemp(join(tmpdir(), 'kpsim-haproxy-'));
  const port = await freeLoopbackPort();
  const config = [
    'global',
    `  nbthread ${HAPROXY_THREADS}`,
    // Within the default 1024-FD soft limit's reach: haproxy raises it to about 2 x maxconn.
    '  maxconn 4096',
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
  const file = join(folder, 'haproxy.cfg');
  await writeFile(file, config);
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  const address = { address: '127.0.0.1', port };
  try {
    await waitUntilAccepting(address, child);
  } catch (e) {
    await stopProcess(child);
    await rm(folder, { recursive: true, force: true });
    throw e;
  }
  return {
    address,
    pid: child.pid,
    version,
    stop: async () => {
      await stopProcess(child);
      await rm(folder, { recursive: true, force: true });
    },
  };
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
    if (child.exitCode !== null) throw new Error(`haproxy exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(target.port, target.address);
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`haproxy did not accept connections on ${target.address}:${target.port}`);
}

// ------------------------------------------------------------------ measuring

interface Path {
  readonly name: string;
  readonly url: string;
  /** CPU time (ms) of whatever forwards this path's traffic, when it can be read; see cpuMsOf. */
  readonly cpuMs?: () => number | undefined;
}

interface PathResult {
  readonly path: Path;
  readonly runs: LoadRunResult[];
  /** Per run: forwarder CPU µs per response (only for paths with cpuMs). */
  readonly cpuUsPerRequest: number[];
}

/** Linux's USER_HZ, the unit of utime and stime in /proc stat files. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * User + system CPU time in ms of one thread (`/proc/PID/task/TID/stat`) or process
 * (`/proc/PID/stat`); undefined where /proc is not there. The proxy shares this process with the
 * load generator's thread, so it is read for the main thread alone.
 */
function cpuMsOf(statFile: string): number | undefined {
  try {
    const fields = readFileSync(statFile, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

async function load(path: Path, opts: Omit<LoadRunOptions, 'url'>): Promise<LoadRunResult> {
  return runLoadInWorker({ ...opts, url: path.url });
}

/** Rounds of every path in turn (so drift in the machine's load hits all paths alike). */
/**
 * Rounds of every path in turn (so drift in the machine's load hits all paths alike). Each round
 * starts one path further on, so no path always follows the same one (without keep-alive each
 * run leaves thousands of TIME_WAIT sockets behind for the next).
 */
async function interleaved(paths: readonly Path[], opts: Omit<LoadRunOptions, 'url'>, rounds: number): Promise<PathResult[]> {
  const results: PathResult[] = paths.map((path) => ({ path, runs: [], cpuUsPerRequest: [] }));
  for (const path of paths) await load(path, { ...opts, durationSeconds: WARMUP_SECONDS });
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < results.length; i++) {
      const result = results[(round + i) % results.length]!;
      process.stderr.write(`  round ${round + 1}/${rounds}: ${result.path.name}\n`);
      const cpuBefore = result.path.cpuMs?.();
      const run = await load(result.path, opts);
      const cpuAfter = result.path.cpuMs?.();
      result.runs.push(run);
      if (cpuBefore !== undefined && cpuAfter !== undefined && run.responses > 0) {
        result.cpuUsPerRequest.push(((cpuAfter - cpuBefore) * 1000) / run.responses);
      }
    }
  }
  return results;
}

function reqPerSecond(run: LoadRunResult): number {
  return run.elapsedSeconds > 0 ? run.responses / run.elapsedSeconds : 0;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The run whose req/s is the median one: its latency goes with it. */
function medianRun(result: PathResult): LoadRunResult {
  const m = median(result.runs.map(reqPerSecond));
  return result.runs.reduce((best, run) => (Math.abs(reqPerSecond(run) - m) < Math.abs(reqPerSecond(best) - m) ? run : best));
}

function errorsOf(result: PathResult): number {
  return result.runs.reduce((sum, run) => sum + run.errors.total, 0);
}

function verdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

function throughputTable(title: string, results: readonly PathResult[], targets: (name: string, ratio: number, vsHaproxy: number | undefined) => string): string {
  const direct = median(results[0]!.runs.map(reqPerSecond));
  const haproxy = results.find((r) => r.path.name.startsWith('haproxy'));
  const haproxyRate = haproxy ? median(haproxy.runs.map(reqPerSecond)) : undefined;
  const rows = results.map((r) => {
    const rps = median(r.runs.map(reqPerSecond));
    const run = medianRun(r);
    return [
      r.path.name, rate(rps), `${(rps / direct).toFixed(2)}x`,
      millis(run.latency.p50Ms), millis(run.latency.p99Ms), String(errorsOf(r)),
      targets(r.path.name, rps / direct, haproxyRate !== undefined ? rps / haproxyRate : undefined),
    ];
  });
  return `${title}\n${formatTable(
    [{ header: 'path' }, { header: 'req/s', align: 'right' }, { header: 'vs direct', align: 'right' }, { header: 'p50 ms', align: 'right' }, { header: 'p99 ms', align: 'right' }, { header: 'errors', align: 'right' }, { header: 'target' }],
    rows, '  ',
  )}`;
}

/** The forwarders' CPU per response: steadier than req/s when other work shares the cores. */
function cpuLine(results: readonly PathResult[]): string {
  const measured = results.filter((r) => r.cpuUsPerRequest.length > 0);
  if (measured.length === 0) return 'CPU per request: not measured (no /proc)';
  const perPath = measured.map((r) => ({ name: r.path.name, us: median(r.cpuUsPerRequest) }));
  const kpsim = perPath.find((p) => p.name.startsWith('kpsim'));
  const haproxy = perPath.find((p) => p.name.startsWith('haproxy'));
  const ratio = kpsim !== undefined && haproxy !== undefined ? `; kpsim / haproxy ${(kpsim.us / haproxy.us).toFixed(2)}x` : '';
  return `CPU per request (median of rounds): ${perPath.map((p) => `${p.name} ${p.us.toFixed(1)} µs`).join(', ')}${ratio}`;
}

function latencyTable(title: string, results: readonly PathResult[]): string {
  const direct = medianRun(results[0]!);
  const rows = results.map((r, i) => {
    const run = medianRun(r);
    const added = run.latency.p99Ms - direct.latency.p99Ms;
    return [
      r.path.name, rate(reqPerSecond(run)), millis(run.latency.p50Ms), millis(run.latency.p99Ms),
      i === 0 ? '-' : signedMillis(run.latency.p50Ms - direct.latency.p50Ms),
      i === 0 ? '-' : signedMillis(added),
      i === 0 ? '' : `added p99 < ${TARGETS.addedP99Ms} ms: ${verdict(added < TARGETS.addedP99Ms)}`,
    ];
  });
  return `${title}\n${formatTable(
    [{ header: 'path' }, { header: 'req/s', align: 'right' }, { header: 'p50 ms', align: 'right' }, { header: 'p99 ms', align: 'right' }, { header: 'added p50', align: 'right' }, { header: 'added p99', align: 'right' }, { header: 'target' }],
    rows, '  ',
  )}`;
}

function environmentLines(haproxy: string | undefined): string[] {
  const cpu = cpus();
  return [
    `node ${process.version}, CPU ${cpu[0]?.model.trim() ?? 'unknown'} x${cpu.length}, load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    `${CONNECTIONS} connections, ${SECONDS_PER_RUN} s per run, median of ${ROUNDS} interleaved round(s) after a ${WARMUP_SECONDS} s warm-up per path`,
    'load generator: autocannon in a worker thread of the bench process; kpsim proxy alone on the bench process\'s main thread;',
    `  backend pod (kpsim's fastify backend) in a child process; ${haproxy !== undefined ? `haproxy ${haproxy} in its own process (mode tcp, nbthread ${HAPROXY_THREADS}, like kpsim's single-threaded proxy)` : 'haproxy not run'}`,
  ];
}

async function main(): Promise<void> {
  const states = benchStates();
  const version = haproxyVersion();
  console.log('kpsim proxy benchmark: HTTP GET / to one fastify backend pod: direct, through kpsim\'s userspace proxy, through haproxy (TCP mode)');
  for (const line of environmentLines(version)) console.log(line);
  if (version === undefined) {
    console.log('haproxy rows skipped: `haproxy` is not on PATH (install it with: apt-get install -y haproxy)');
  }

  const backend = await startBackendProcess();
  const proxy = await startProxy(states, { ports: 'ephemeral', map: planAddressMap(states, { ports: 'ephemeral' }), backendAddress: () => backend.address });
  let haproxy: Haproxy | undefined;
  try {
    const listener = proxy.map.entries.find((e) => e.kind === 'ClusterIP' && e.proxied)!.loopback;
    if (version !== undefined) {
      try {
        haproxy = await startHaproxy(backend.address, version);
      } catch (e) {
        console.log(`haproxy rows skipped: it did not start (${e instanceof Error ? e.message : String(e)})`);
      }
    }
    const haproxyStat = haproxy?.pid !== undefined ? `/proc/${haproxy.pid}/stat` : undefined;
    const paths: Path[] = [
      { name: 'direct', url: `http://${backend.address.address}:${backend.address.port}/` },
      { name: 'kpsim userspace proxy', url: `http://${listener.address}:${listener.port}/`, cpuMs: () => cpuMsOf(`/proc/${process.pid}/task/${process.pid}/stat`) },
      ...(haproxy ? [{ name: 'haproxy (mode tcp)', url: `http://${haproxy.address.address}:${haproxy.address.port}/`, cpuMs: () => (haproxyStat !== undefined ? cpuMsOf(haproxyStat) : undefined) }] : []),
    ];
    const base = { connections: CONNECTIONS, durationSeconds: SECONDS_PER_RUN };

    process.stderr.write('keep-alive:\n');
    const keepAlive = await interleaved(paths, { ...base, keepAlive: true }, ROUNDS);
    process.stderr.write('no keep-alive:\n');
    const noKeepAlive = await interleaved(paths, { ...base, keepAlive: false }, ROUNDS);
    const directRate = median(keepAlive[0]!.runs.map(reqPerSecond));
    const moderate = Math.max(100, Math.min(MODERATE_RATE_CAP, Math.round(directRate / 8 / 100) * 100));
    process.stderr.write(`moderate load, ${moderate} req/s:\n`);
    const fixedRate = await interleaved(paths, { ...base, connections: MODERATE_CONNECTIONS, keepAlive: true, overallRate: moderate }, ROUNDS);

    console.log('');
    console.log(throughputTable('With keep-alive (as fast as possible):', keepAlive, (name, ratio, vsHaproxy) => {
      if (!name.startsWith('kpsim')) return '';
      const parts = [`>= ${TARGETS.proxyVsDirectKeepAlive.toFixed(2)}x direct: ${verdict(ratio >= TARGETS.proxyVsDirectKeepAlive)}`];
      if (vsHaproxy !== undefined) parts.push(`>= ${TARGETS.proxyVsHaproxyKeepAlive.toFixed(2)}x haproxy (is ${vsHaproxy.toFixed(2)}x): ${verdict(vsHaproxy >= TARGETS.proxyVsHaproxyKeepAlive)}`);
      return parts.join('; ');
    }));
    console.log(cpuLine(keepAlive));
    console.log('');
    console.log(throughputTable('Without keep-alive (one request per TCP connection):', noKeepAlive, (name, _ratio, vsHaproxy) =>
      (name.startsWith('kpsim') && vsHaproxy !== undefined ? `(is ${vsHaproxy.toFixed(2)}x haproxy)` : '')));
    console.log(cpuLine(noKeepAlive));
    console.log('');
    console.log(latencyTable(
      `Latency at moderate load: ${moderate} req/s fixed (autocannon overallRate, at most an eighth of direct's keep-alive req/s) over ${MODERATE_CONNECTIONS} keep-alive connections:`,
      fixedRate,
    ));
    console.log('');
    console.log(`load average at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')} (a busy machine skews every row; the ratios are from one run)`);
    console.log('latencies are each response\'s own time from request written to response read, not corrected for coordinated omission');
  } finally {
    await haproxy?.stop();
    await proxy.close();
    backend.child.stdin?.end();
    await stopProcess(backend.child);
  }
}

if (process.argv.includes('--backend')) await runBackendChild();
else await main();
