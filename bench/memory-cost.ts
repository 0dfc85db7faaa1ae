/**
 * Where a step's time goes besides its own work: the page faults of the memory it touches for
 * the first time, and the garbage collector's pauses. A benchmark that makes a big text or keeps
 * big structures pays both, and what a page fault costs differs from machine to machine by two
 * orders of magnitude (a few tenths of a microsecond on a bare-metal host, over ten in a virtual
 * machine whose guest page tables are kept by the hypervisor). This measures the machine's cost
 * in the same run, so that a reader can tell a figure's own work from the machine's. Not a
 * benchmark itself (run.ts runs only *.bench.js files).
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { median } from './common.js';

/** The process's minor page faults so far (first touches of anonymous memory, mostly). */
export function minorFaults(): number {
  return process.resourceUsage().minorPageFault;
}

/**
 * The main thread's minor page faults so far: the ones its own time pays. The process's count
 * (minorFaults) also has those of other threads: the collector's helpers copying survivors, and
 * kpsim's prefaulter touching text memory ahead of its writer (src/util/prefault.ts). Linux
 * counts them per thread in /proc/self/task/<tid>/stat (field 10; the main thread's tid is the
 * pid); elsewhere this is the process's count.
 */
export function mainThreadFaults(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: minflt is the 8th.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
  } catch {
    return minorFaults();
  }
}

/** The main thread's time on a core and time runnable but waiting for one, in ms, so far. */
export interface ThreadSchedule {
  readonly runMs: number;
  readonly waitMs: number;
}

/**
 * The main thread's schedule so far (Linux's /proc/self/task/<pid>/schedstat: nanoseconds on a
 * core, nanoseconds runnable on a run queue), or undefined where the kernel does not say. On a
 * machine with few cores, a step's wall time is its main thread's time on a core plus its wait
 * for one, while the process's other threads (V8's optimising compiler and collector threads,
 * kpsim's prefaulter) take the cores.
 */
export function mainThreadSchedule(): ThreadSchedule | undefined {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    if (run === undefined || wait === undefined || Number.isNaN(run) || Number.isNaN(wait)) return undefined;
    return { runMs: run / 1e6, waitMs: wait / 1e6 };
  } catch {
    return undefined;
  }
}

/**
 * Microseconds per first touch of a page on this machine: a fresh 64 MB buffer (memory the
 * process has not touched: Buffers this size are mapped anew and unmapped when freed) written a
 * byte a page, the time over the faults counted, the median of three.
 */
export function pageFaultMicros(): number {
  const bytes = 64 << 20;
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const f0 = minorFaults();
    const t0 = performance.now();
    const b = Buffer.allocUnsafeSlow(bytes);
    for (let i = 0; i < bytes; i += 4096) b[i] = 1;
    const wallMs = performance.now() - t0;
    const faults = minorFaults() - f0;
    // A machine that maps huge pages, or maps the buffer ahead of its first touch, takes fewer faults than pages.
    if (faults > 0) runs.push((wallMs * 1000) / faults);
  }
  return runs.length > 0 ? median(runs) : 0;
}

/** One garbage collection: when it started (performance.now()), its pause, and whether it was a scavenge. */
interface GcPause {
  readonly start: number;
  readonly ms: number;
  readonly scavenge: boolean;
}

/**
 * The garbage collector's pauses, recorded from now on. Node reports them after the fact (an
 * observer's callback runs on the event loop), so a synchronous step's pauses are read once the
 * caller has yielded to the loop: `settle()` does that.
 */
export class GcPauses {
  readonly #pauses: GcPause[] = [];
  readonly #observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      // Node 20's entry has `detail` ({ kind, flags }); its types describe only the base entry.
      const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      this.#pauses.push({ start: e.startTime, ms: e.duration, scavenge: kind === constants.NODE_PERFORMANCE_GC_MINOR });
    }
  });

  constructor() {
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** Lets the observer's pending callbacks run. */
  async settle(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** The pauses that started in [from, to): their count and total, scavenges apart. */
  between(from: number, to: number): { count: number; ms: number; scavenges: number; scavengeMs: number } {
    let count = 0, ms = 0, scavenges = 0, scavengeMs = 0;
    for (const p of this.#pauses) {
      if (p.start < from || p.start >= to) continue;
      count++;
      ms += p.ms;
      if (p.scavenge) {
        scavenges++;
        scavengeMs += p.ms;
      }
    }
    return { count, ms, scavenges, scavengeMs };
  }

  stop(): void {
    this.#observer.disconnect();
  }
}

/**
 * Time for the collector to finish what a full collection the bench forced (to read the heap)
 * leaves behind. A mark-compact frees pages lazily: background threads sweep them, and the
 * first scavenge after it that needs old-space room waits for the sweeping to be done. Timed
 * straight after the bench's own collection, the next step would pay for sweeping garbage
 * that is not its own (the loaded manifests' leftovers: 70 to 250 ms on the 5,000-node
 * cluster's first node, its first scavenge's pause against 10 ms of scavenging).
 */
export async function settleCollector(ms = 1000): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}
