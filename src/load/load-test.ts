/**
 * `kpsim load`'s core: start the cluster's backend pods and the userspace proxy, drive load at the
 * target's loopback listener, and report what came back and where it went.
 */
import { type ClusterView, connectionCounts, countsSince, defaultScheduler, startTarget } from './cluster-run.js';
import { type LoadReport, buildLoadReport } from './report.js';
import { type ResolvedTarget, type TargetSpec, resolveTarget, targetAddress } from './target.js';
import type { ProgressListener } from './types.js';
import { type LoadThread, loadThreadDescriptions, runLoadOn } from './worker-runner.js';

export interface LoadTestOptions {
  target: TargetSpec;
  /** An IPVS scheduler name; default the configuration's ipvs.scheduler, else rr. */
  scheduler?: string;
  connections: number;
  durationSeconds: number;
  pipelining?: number;
  keepAlive?: boolean;
  /** Default 'worker'. */
  loadThread?: LoadThread;
  ports?: 'service' | 'ephemeral';
  onProgress?: ProgressListener;
  /** Called once the target is resolved, before anything starts (for a progress bar's label). */
  onStart?: (target: ResolvedTarget, listener: string) => void;
}

export async function runLoadTest(view: ClusterView, opts: LoadTestOptions): Promise<LoadReport> {
  const target = resolveTarget(view.cluster, view.states, opts.target);
  const scheduler = opts.scheduler ?? defaultScheduler(target.state);
  const thread = opts.loadThread ?? 'worker';
  const pipelining = opts.pipelining ?? 1;
  const keepAlive = opts.keepAlive ?? true;
  const on = await startTarget(view, target, { scheduler, ...(opts.ports !== undefined ? { ports: opts.ports } : {}) });
  try {
    opts.onStart?.(target, on.listener);
    const before = connectionCounts(on);
    const run = await runLoadOn(thread, { url: on.url, connections: opts.connections, durationSeconds: opts.durationSeconds, pipelining, keepAlive }, opts.onProgress);
    const notes: string[] = [];
    if (on.refusal !== undefined) notes.push(on.refusal);
    if (target.servicePort.info.sessionAffinityTimeoutSeconds > 0) {
      notes.push('the service has ClientIP session affinity and every client is 127.0.0.1, so one endpoint takes every connection');
    }
    return buildLoadReport({
      target: { spec: target.spec, service: target.servicePort.info.spn, via: target.via, address: targetAddress(target), listener: on.listener },
      scheduler,
      settings: { connections: opts.connections, durationSeconds: opts.durationSeconds, pipelining, keepAlive, loadGenerator: loadThreadDescriptions[thread] },
      run,
      connections: countsSince(before, connectionCounts(on)),
      notes,
    });
  } finally {
    await on.running.close();
  }
}
