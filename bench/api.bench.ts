/**
 * Kubernetes API benchmark: kpsim serve as a real process, driven over loopback HTTP.
 *
 *   npm run bench:api [-- --quick]
 *
 * 1. Watch fan-out: W watchers on /api/v1/services?watch=1 while a writer PATCHes services at a
 *    fixed rate (1,000 writes/s for 10 s; --quick: 2 s). Each write changes a label, so each
 *    must reach every watcher exactly once: printed are the events lost and duplicated, and the
 *    write-to-event latency (from sending the PATCH to a watcher reading the event) p50/p99/max,
 *    with the target (p99 under 20 ms). Baseline in the same run: the same writes with 1 watcher.
 * 2. List: 10k services x 10 endpoints. `kubectl get svc -A -o json` (pages of 500) and one
 *    plain GET of /api/v1/services, against reading the same manifests from files (YAML parse of
 *    the services file; kpsim's whole load of the folder). Ratios printed, nothing asserted.
 *
 * The watchers and the writer share this process; the server runs in its own, so each side's
 * CPU time is printed beside the wall time.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCluster, parseManifestObjects } from '../src/manifest/load.js';
import { generateClusterManifests, manifestsToYAML } from '../test/helpers/cluster-builders.js';
import { BENCH_SEED, ENDPOINTS_PER_SERVICE, cpuMs, machineLine, median } from './common.js';

const quick = process.argv.includes('--quick');
const WATCHERS = 100;
const WRITES_PER_SECOND = 1000;
const SECONDS = quick ? 2 : 10;
const TARGET_P99_MS = 20;
const LIST_SERVICES = quick ? 2000 : 10_000;
const WATCH_SERVICES = 100;

const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'kpsim-api-bench-'));

interface Server {
  child: ChildProcessWithoutNullStreams;
  port: number;
  /** CPU time the server process has used, in ms (from /proc). */
  cpuMs(): number;
  stop(): Promise<void>;
}

function writeCluster(dir: string, services: number): string {
  const manifests = generateClusterManifests({ seed: BENCH_SEED, services, endpointsPerService: ENDPOINTS_PER_SERVICE, nodes: 20 });
  const byKind = (kind: string): typeof manifests => manifests.filter((m) => (m as { kind: string }).kind === kind);
  writeFileSync(join(dir, 'services.yaml'), manifestsToYAML(byKind('Service')));
  writeFileSync(join(dir, 'endpointslices.yaml'), manifestsToYAML(byKind('EndpointSlice')));
  writeFileSync(join(dir, 'nodes.yaml'), manifestsToYAML([...byKind('Node'), ...byKind('KubeProxyConfiguration')]));
  return dir;
}

async function startServer(dir: string): Promise<Server> {
  const child = spawn(process.execPath, [main, 'serve', '-q', '--port', '0', '-f', dir], { stdio: 'pipe' });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('close', (code) => reject(new Error(`serve exited ${code}`)));
  });
  const ticks = 100; // USER_HZ on Linux
  return {
    child,
    port,
    cpuMs: () => {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
    },
    stop: () =>
      new Promise((resolve) => {
        child.on('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function getJSON(port: number, path: string, agent: Agent): Promise<{ body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end();
  });
}

const RV = /"resourceVersion":"(\d+)"/;

interface WatchResult {
  writes: number;
  elapsedS: number;
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  latencies: number[];
  serverCpuMs: number;
  clientCpuMs: number;
}

async function fanOut(server: Server, watchers: number): Promise<WatchResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const list = JSON.parse((await getJSON(server.port, '/api/v1/services', agent)).body) as { metadata: { resourceVersion: string }; items: { metadata: { namespace: string; name: string } }[] };
  const names = list.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`);
  /** Per watcher: resourceVersion → arrival time (a second arrival counts as a duplicate). */
  const arrivals: Map<number, number>[] = [];
  let duplicated = 0;
  const streams: ReturnType<typeof request>[] = [];
  await Promise.all(
    Array.from({ length: watchers }, () => {
      const seen = new Map<number, number>();
      arrivals.push(seen);
      return new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port: server.port, path: `/api/v1/services?watch=1&resourceVersion=${list.metadata.resourceVersion}` }, (res) => {
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const now = performance.now();
            buffer += chunk;
            let nl;
            while ((nl = buffer.indexOf('\n')) >= 0) {
              const m = RV.exec(buffer.slice(0, nl));
              buffer = buffer.slice(nl + 1);
              if (!m) continue;
              const rv = Number(m[1]);
              if (seen.has(rv)) duplicated++;
              else seen.set(rv, now);
            }
          });
          resolve();
        });
        req.on('error', () => undefined);
        req.end();
        streams.push(req);
      });
    }),
  );
  const sent = new Map<number, number>();
  const total = WRITES_PER_SECOND * SECONDS;
  const serverCpu0 = server.cpuMs();
  const clientCpu0 = cpuMs();
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / WRITES_PER_SECOND;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const [namespace, name] = names[i % names.length]!.split('/') as [string, string];
    const start = performance.now();
    inflight.push(
      new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port: server.port, method: 'PATCH', path: `/api/v1/namespaces/${namespace}/services/${name}`, agent, headers: { 'content-type': 'application/merge-patch+json' } }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => {
            const m = RV.exec(body);
            if (m) sent.set(Number(m[1]), start);
            resolve();
          });
        });
        req.on('error', () => resolve());
        req.end(JSON.stringify({ metadata: { labels: { write: String(i) } } }));
      }),
    );
  }
  await Promise.all(inflight);
  const elapsedS = (performance.now() - t0) / 1000;
  // Let the last events arrive.
  for (let i = 0; i < 50 && arrivals.some((a) => a.size < sent.size); i++) await new Promise((r) => setTimeout(r, 100));
  const serverCpuMs = server.cpuMs() - serverCpu0;
  const clientCpuMs = cpuMs() - clientCpu0;
  for (const s of streams) s.destroy();
  agent.destroy();
  const latencies: number[] = [];
  let received = 0;
  let lost = 0;
  for (const seen of arrivals) {
    for (const [rv, start] of sent) {
      const at = seen.get(rv);
      if (at === undefined) lost++;
      else latencies.push(at - start);
    }
    received += seen.size;
  }
  return { writes: sent.size, elapsedS, expected: sent.size * watchers, received, lost, duplicated, latencies, serverCpuMs, clientCpuMs };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function timeIt(fn: () => void): { ms: number; cpu: number } {
  const c0 = cpuMs();
  const t0 = performance.now();
  fn();
  return { ms: performance.now() - t0, cpu: cpuMs() - c0 };
}

async function main_(): Promise<void> {
  process.stdout.write(`${machineLine()}\n\nWatch fan-out: ${WRITES_PER_SECOND} writes/s for ${SECONDS} s to ${WATCH_SERVICES} services\n`);
  const watchDir = writeCluster(mkdtempSync(join(work, 'watch-')), WATCH_SERVICES);
  const rows: [string, WatchResult][] = [];
  for (const watchers of [1, WATCHERS]) {
    const server = await startServer(watchDir);
    try {
      rows.push([`${watchers} watcher${watchers === 1 ? '' : 's'}`, await fanOut(server, watchers)]);
    } finally {
      await server.stop();
    }
  }
  process.stdout.write('watchers      writes  writes/s  events expected  received  lost  duplicated  p50 ms  p99 ms  max ms  server CPU ms  per write us  client CPU ms\n');
  for (const [label, r] of rows) {
    const sorted = [...r.latencies].sort((a, b) => a - b);
    process.stdout.write(
      `${label.padEnd(12)}  ${String(r.writes).padStart(6)}  ${(r.writes / r.elapsedS).toFixed(0).padStart(8)}  ${String(r.expected).padStart(15)}  ${String(r.received).padStart(8)}  ${String(r.lost).padStart(4)}  ${String(r.duplicated).padStart(10)}  ${percentile(sorted, 50).toFixed(1).padStart(6)}  ${percentile(sorted, 99).toFixed(1).padStart(6)}  ${(sorted[sorted.length - 1] ?? NaN).toFixed(1).padStart(6)}  ${r.serverCpuMs.toFixed(0).padStart(13)}  ${((r.serverCpuMs * 1000) / r.writes).toFixed(0).padStart(12)}  ${r.clientCpuMs.toFixed(0).padStart(13)}\n`,
    );
  }
  const [base, fan] = [rows[0]![1], rows[1]![1]];
  const p99 = percentile([...fan.latencies].sort((a, b) => a - b), 99);
  process.stdout.write(`p99 with ${WATCHERS} watchers: ${p99.toFixed(1)} ms (target < ${TARGET_P99_MS} ms: ${p99 < TARGET_P99_MS ? 'met' : 'NOT met'}); ${(p99 / percentile([...base.latencies].sort((a, b) => a - b), 99)).toFixed(1)}x the 1-watcher p99; events lost ${fan.lost}, duplicated ${fan.duplicated}; server CPU per write ${(fan.serverCpuMs / base.serverCpuMs).toFixed(1)}x the 1-watcher figure\n`);
  process.stdout.write('(writes/s below the offered rate means the server could not keep up and requests queued: the latency then measures the queue)\n');

  process.stdout.write(`\nList: ${LIST_SERVICES} services x ${ENDPOINTS_PER_SERVICE} endpoints\n`);
  const listDir = writeCluster(mkdtempSync(join(work, 'list-')), LIST_SERVICES);
  const servicesText = readFileSync(join(listDir, 'services.yaml'), 'utf8');
  const parse = median([0, 1, 2].map(() => timeIt(() => parseManifestObjects([{ file: 'services.yaml', text: servicesText }])).ms));
  const loads: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await loadCluster(listDir);
    loads.push(performance.now() - t0);
  }
  const load = median(loads);
  const server = await startServer(listDir);
  try {
    const agent = new Agent({ keepAlive: true });
    const http = median(await Promise.all([0, 1, 2].map(async () => {
      const r = await getJSON(server.port, '/api/v1/services', agent);
      const t0 = performance.now();
      JSON.parse(r.body);
      return r.ms + (performance.now() - t0);
    })));
    agent.destroy();
    const rowsOut: [string, number][] = [
      ['YAML parse of services.yaml (baseline)', parse],
      ['kpsim load of the folder (-f)', load],
      ['GET /api/v1/services + JSON.parse', http],
    ];
    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    if (kubectl.status === 0) {
      const home = mkdtempSync(join(work, 'kubectl-'));
      const args = ['--server', `http://127.0.0.1:${server.port}`, '--cache-dir', join(home, 'cache')];
      const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
      delete env['KUBECONFIG'];
      spawnSync('kubectl', [...args, 'get', 'ns'], { env });
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const r = spawnSync('kubectl', [...args, 'get', 'svc', '-A', '-o', 'json'], { env, maxBuffer: 1 << 30 });
        times.push(performance.now() - t0);
        bytes = r.stdout.length;
      }
      const startup = median([0, 1, 2].map(() => timeIt(() => spawnSync('kubectl', ['version', '--client'], { env })).ms));
      rowsOut.push([`kubectl get svc -A -o json (${(bytes / 1048576).toFixed(1)} MiB)`, median(times)], ['kubectl version --client (its start-up)', startup]);
    } else {
      process.stdout.write('kubectl is not installed: its rows are left out\n');
    }
    for (const [label, ms] of rowsOut) process.stdout.write(`${label.padEnd(48)} ${ms.toFixed(0).padStart(7)} ms  ${(ms / parse).toFixed(2).padStart(6)}x baseline\n`);
  } finally {
    await server.stop();
  }
}

try {
  await main_();
} finally {
  rmSync(work, { recursive: true, force: true });
}
