/**
 * Picks per second for every IPVS scheduler at 10, 1k and 10k real servers, with the ratio to rr
 * at the same size (rr is the baseline: the cheapest pick there is).
 *
 * - rr, wrr, sh, dh, mh, fo: `pick(client)` over a pool of clients (the hashing schedulers need
 *   varied sources; counters do not change).
 * - lc, wlc, sed, nq, lblc, lblcr, ovf, twos read the connection counters, so they run with churn:
 *   every pick is a `connect` (bound active) and, once 4 connections per dest are open, the oldest
 *   one is closed or expired, so the counters keep moving as a proxy's would.
 *
 * Each scheduler is measured in a child process of its own, so that call sites in the virtual
 * service stay specialised to that scheduler as they would in a real proxy (one process running
 * all fourteen in turn slows the later ones down).
 *
 * Run: npx tsc -p . && node dist/bench/ipvs-schedulers.bench.js [--quick]
 * Inputs are generated from fixed seeds; rates are per CPU-second of the benchmark process and
 * vary with the machine, the ratios much less.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { seededRng } from '../src/util/random.js';
import { schedulerNames, type SchedulerName } from '../src/ipvs/schedulers/types.js';
import { createScheduler, type VirtualService } from '../src/ipvs/virtual-service.js';

const quick = process.argv.includes('--quick');
const SIZES = [10, 1000, 10000];
const MEASURE_MS = quick ? 150 : 1000;
const WARMUP_MS = quick ? 30 : 200;
const CLIENTS = Array.from({ length: 1024 }, (_, i) => `100.64.${i >> 8}.${i & 255}:${30000 + i}`);
const CHURN: ReadonlySet<SchedulerName> = new Set(['lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'ovf', 'twos']);
const CONNS_PER_DEST = 4;

function buildService(name: SchedulerName, size: number): VirtualService {
  const rng = seededRng(size);
  const vs = createScheduler(name, { address: '10.96.0.10:80', rng: seededRng(42) });
  for (let i = 0; i < size; i++) {
    vs.addDest({ addr: `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}:8080`, weight: 1 + Math.floor(rng() * 3) });
  }
  return vs;
}

/** One operation: a pick, or a connect plus (in steady state) the end of the oldest connection. */
function workload(name: SchedulerName, vs: VirtualService, size: number): () => void {
  let c = 0;
  if (!CHURN.has(name)) {
    return () => {
      vs.pick(CLIENTS[c++ & 1023]);
    };
  }
  const ring: string[] = new Array<string>(size * CONNS_PER_DEST);
  let head = 0;
  let count = 0;
  return () => {
    const addr = vs.connect(CLIENTS[c++ & 1023]);
    if (addr === undefined) return;
    if (count === ring.length) {
      const oldest = ring[head]!;
      // Half the old connections end with a FIN first (active -> inactive -> gone).
      if ((c & 1) === 0) {
        vs.close(oldest);
        vs.expire(oldest, 'inactive');
      } else {
        vs.expire(oldest, 'active');
      }
    } else {
      count++;
    }
    ring[head] = addr;
    head = (head + 1) % ring.length;
  };
}

/**
 * Operations per CPU-second of this process over about `ms` milliseconds of CPU time, in batches
 * so the clock is read rarely. CPU time rather than wall time, so that other work on a shared
 * machine does not count against the picks (the benchmark is single-threaded).
 */
function measure(op: () => void, ms: number): number {
  const batch = 2048;
  const start = process.cpuUsage();
  const limitMicros = ms * 1000;
  let ops = 0;
  let elapsedMicros = 0;
  do {
    for (let i = 0; i < batch; i++) op();
    ops += batch;
    const used = process.cpuUsage(start);
    elapsedMicros = used.user + used.system;
  } while (elapsedMicros < limitMicros);
  return ops / (elapsedMicros / 1e6);
}

function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  return perSecond.toFixed(0);
}

/** In a child: measure one scheduler at every size and print the rates as JSON. */
function measureOne(name: SchedulerName): void {
  const rates: number[] = [];
  for (const size of SIZES) {
    const op = workload(name, buildService(name, size), size);
    measure(op, WARMUP_MS);
    rates.push(measure(op, MEASURE_MS));
  }
  console.log(JSON.stringify(rates));
}

function main(): void {
  console.log(`IPVS scheduler picks per CPU-second${quick ? ' (--quick)' : ''}`);
  console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} (${cpus().length} cores)`);
  console.log(`churn (connect + close/expire per pick): ${[...CHURN].join(', ')}; others: pick only\n`);

  const self = fileURLToPath(import.meta.url);
  const results = new Map<SchedulerName, Map<number, number>>();
  for (const name of schedulerNames) {
    const args = [self, '--one', name, ...(quick ? ['--quick'] : [])];
    const rates = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })) as number[];
    results.set(name, new Map(SIZES.map((size, i) => [size, rates[i]!])));
  }

  const header = ['scheduler', ...SIZES.flatMap((s) => [`${s} dests`, 'vs rr'])];
  const rows = schedulerNames.map((name) => [
    name + (CHURN.has(name) ? '*' : ''),
    ...SIZES.flatMap((size) => {
      const rate = results.get(name)!.get(size)!;
      const baseline = results.get('rr')!.get(size)!;
      return [`${formatRate(rate)}/s`, `${(rate / baseline).toFixed(2)}x`];
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  console.log('\n* with churn');

  const at10k = (name: SchedulerName): number => results.get(name)!.get(10000)!;
  console.log(`targets at 10k dests: rr ${formatRate(at10k('rr'))}/s (want > 5M), lc ${formatRate(at10k('lc'))}/s and wlc ${formatRate(at10k('wlc'))}/s with churn (want > 1M)`);
}

const one = process.argv.indexOf('--one');
if (one >= 0) measureOne(process.argv[one + 1] as SchedulerName);
else main();
