/**
 * Load through a kernel lab: the same autocannon run as `kpsim load`, started inside the lab's
 * client namespace (lab-load.ts) and aimed at the service's own address, so that every request
 * goes through the node's real DNAT to a pod. Each endpoint's share of new connections comes from
 * the pods' counters. `kpsim load --mode kernel-iptables` and `kpsim compare --kernel` run here.
 */
import { spawn } from 'node:child_process';
import { KpsimError } from '../errors.js';
import type { CompareRow, ExtraRows, ExtraRowsContext } from '../load/compare.js';
import { measuredRow } from '../load/compare-report.js';
import { type EndpointConnectionCount, type LoadReport, buildLoadReport } from '../load/report.js';
import { type ResolvedTarget, type TargetSpec, resolveTarget, targetAddress } from '../load/target.js';
import type { LoadRunOptions, LoadRunResult, ProgressListener } from '../load/types.js';
import type { Cluster, Protocol } from '../model/types.js';
import { joinHostPort } from '../util/ip.js';
import { inNamespace } from './exec.js';
import { type LabMode, kernelMode, labUnavailable } from './kernel-modes.js';
import { type Lab, type LabInput, type LabUpOptions, labUp } from './lab.js';
import { connectionsByEndpoint, helperEntry } from './pods.js';

/**
 * Why UDP load does not go through a lab yet: each endpoint's share of associations would have to
 * come from the kernel's conntrack (the pods count TCP connections), which the lab does not read
 * under load.
 */
export const udpRefusal = 'kernel modes load TCP service ports only so far (per-endpoint UDP associations are not counted in the lab); use --mode userspace for UDP';

/** How the load generator runs, in words (reports). */
export const KERNEL_LOAD_GENERATOR = 'autocannon in its own process in the lab\'s client namespace; the pods in one process in their namespaces';

/**
 * A lab for the length of `fn`, removed after it, and on SIGINT or SIGTERM (then the process
 * exits 130 or 143): a load test interrupted at the terminal leaves no namespace behind.
 */
export async function withLab<T>(input: LabInput, opts: LabUpOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await labUp(input, opts);
  const onSignal = (signal: NodeJS.Signals): void => {
    void lab.down().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(lab);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await lab.down();
  }
}

/** One load run from the lab's client namespace to `address:port`. */
export function loadFromClient(lab: Lab, address: string, port: number, opts: Omit<LoadRunOptions, 'url'>, onProgress?: ProgressListener): Promise<LoadRunResult> {
  const client = lab.plan.names.client;
  const options: LoadRunOptions = { ...opts, url: `http://${joinHostPort(address, port)}/` };
  return new Promise((resolve, reject) => {
    const argv = inNamespace(client, [...helperEntry('lab-load'), '--namespace', client, '--options', JSON.stringify(options)]);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    let stderr = '';
    let result: LoadRunResult | undefined;
    let error: string | undefined;
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.stdout.on('data', (b: Buffer) => {
      buffered += b.toString();
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffered.slice(0, nl)) as { progress?: Parameters<ProgressListener>[0]; result?: LoadRunResult; error?: string };
        buffered = buffered.slice(nl + 1);
        if (message.progress) onProgress?.(message.progress);
        if (message.result) result = message.result;
        if (message.error) error = message.error;
      }
    });
    child.on('close', (code) => {
      if (result !== undefined) resolve(result);
      else reject(new KpsimError('KPSIM_ERR_LAB_COMMAND', `the load generator in ${client} failed (${code}): ${error ?? stderr.trim().split('\n').slice(-3).join('; ')}`));
    });
  });
}

/** The endpoints the target's rules can send to, with their pods' names. */
function candidates(target: ResolvedTarget): { endpoint: string; pod: string }[] {
  return target.servicePort.categorized.allReachableEndpoints.map((e) => ({ endpoint: e.endpoint, pod: e.podName ?? '' }));
}

/** New connections per candidate endpoint between two readings of the pods' counters. */
async function connectionsDuring(lab: Lab, target: ResolvedTarget, fn: () => Promise<LoadRunResult>): Promise<{ run: LoadRunResult; connections: EndpointConnectionCount[] }> {
  const before = connectionsByEndpoint(await lab.podsStats());
  const run = await fn();
  const after = connectionsByEndpoint(await lab.podsStats());
  const connections = candidates(target).map((c) => ({ ...c, connections: (after.get(c.endpoint) ?? 0) - (before.get(c.endpoint) ?? 0) }));
  return { run, connections };
}

export interface KernelLoadTestOptions {
  readonly mode: LabMode;
  readonly target: TargetSpec;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly pipelining?: number;
  readonly keepAlive?: boolean;
  /** TCP only so far: a UDP service port is refused with a usage error (see udpRefusal). */
  readonly protocol?: Protocol;
  /** Requests per second in total (autocannon's overallRate); default as fast as possible. */
  readonly rate?: number;
  /** Stop after this many requests, or at the duration, whichever comes first. */
  readonly requests?: number;
  readonly lab?: Omit<LabUpOptions, 'mode'>;
  readonly onStart?: (target: ResolvedTarget, listener: string) => void;
  readonly onProgress?: ProgressListener;
}

/** `kpsim load --mode kernel-X`: a lab up, one load run through it, the lab down; the report. */
export async function runKernelLoadTest(view: LabInput & { readonly cluster: Cluster }, opts: KernelLoadTestOptions): Promise<LoadReport> {
  const why = labUnavailable(opts.mode);
  if (why !== undefined) throw new KpsimError('KPSIM_ERR_LAB_UNAVAILABLE', why);
  if (opts.protocol === 'UDP') throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `--proto: ${udpRefusal}`);
  const target = resolveTarget(view.cluster, view.states, opts.target);
  const pipelining = opts.pipelining ?? 1;
  const keepAlive = opts.keepAlive ?? true;
  const listener = targetAddress(target);
  return withLab(view, { ...opts.lab, mode: opts.mode }, async (lab) => {
    opts.onStart?.(target, listener);
    const { run, connections } = await connectionsDuring(lab, target, () =>
      loadFromClient(lab, target.address, target.port, {
        connections: opts.connections, durationSeconds: opts.durationSeconds, pipelining, keepAlive,
        ...(opts.rate !== undefined ? { overallRate: opts.rate } : {}),
        ...(opts.requests !== undefined ? { amount: opts.requests } : {}),
      }, opts.onProgress));
    return buildLoadReport({
      mode: `kernel-${opts.mode}`,
      target: { spec: target.spec, service: target.servicePort.info.spn, via: target.via, address: listener, listener },
      scheduler: schedulerOf(opts.mode),
      settings: {
        connections: opts.connections, durationSeconds: opts.durationSeconds, pipelining, keepAlive, loadGenerator: KERNEL_LOAD_GENERATOR,
        ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
        ...(opts.requests !== undefined ? { requests: opts.requests } : {}),
      },
      run,
      connections,
      notes: kernelNotes(lab, target),
    });
  });
}

/** What picks the endpoint in each mode's kernel rules, for the report's scheduler column. */
function schedulerOf(mode: LabMode): string {
  return mode === 'ipvs' ? 'ipvs' : 'random';
}

function kernelNotes(lab: Lab, target: ResolvedTarget): string[] {
  const notes = [`the load came from ${lab.plan.clientSources.join(', ')} in the lab's client namespace and went through the node's ${lab.kernel.mode} rules (${lab.state.loaded.map((l) => l.tool).join(', ')})`];
  if (target.servicePort.info.sessionAffinityTimeoutSeconds > 0) notes.push('the service has ClientIP session affinity and the load comes from one client address, so one endpoint takes every connection');
  return notes;
}

/**
 * `kpsim compare --kernel`'s rows: for each kernel mode this machine runs, a lab, a warm-up run
 * and a measured run through it, set against the same direct row. A mode that cannot run here
 * (no IPVS in the kernel, a mode kpsim does not compile yet) is left out with a note.
 */
export function kernelCompareRows(view: LabInput, modes: readonly LabMode[], notes: string[], lab: Omit<LabUpOptions, 'mode'> = {}): ExtraRows {
  const runnable = modes.filter((mode) => {
    const why = labUnavailable(mode);
    if (why !== undefined) notes.push(`kernel ${mode} left out: ${why}`);
    return why === undefined;
  });
  return {
    steps: runnable.length,
    async rows(ctx: ExtraRowsContext): Promise<CompareRow[]> {
      const rows: CompareRow[] = [];
      for (const mode of runnable) {
        rows.push(await withLab(view, { ...lab, mode }, async (l) => {
          const listener = targetAddress(ctx.target);
          ctx.say(`kernel ${mode} (${kernelMode(mode).mode} rules in a lab), from the client namespace to ${listener}: ${ctx.durationSeconds} s of load`);
          const options = { connections: ctx.connections, durationSeconds: ctx.durationSeconds, pipelining: 1, keepAlive: true };
          if (ctx.warmupSeconds > 0) await loadFromClient(l, ctx.target.address, ctx.target.port, { ...options, durationSeconds: ctx.warmupSeconds });
          const { run, connections } = await connectionsDuring(l, ctx.target, () => loadFromClient(l, ctx.target.address, ctx.target.port, options));
          const row = measuredRow(`kernel ${mode}`, `kernel-${mode}`, null, run, listener, connections, ctx.direct);
          ctx.progress(`    ${Math.round(row.requestsPerSecond ?? 0)} req/s (${row.relativeToDirect?.toFixed(2) ?? '-'}x direct), p99 ${row.latency?.p99Ms.toFixed(3) ?? '-'} ms, ${row.errors?.total ?? 0} errors`);
          return row;
        }));
      }
      if (runnable.length > 0) notes.push(`kernel rows: ${KERNEL_LOAD_GENERATOR}; the direct and userspace rows run on loopback in this process`);
      return rows;
    },
  };
}
