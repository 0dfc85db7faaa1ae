/**
 * `kpsim load`'s core: start the cluster's backend pods and the userspace proxy, drive load at the
 * target's loopback listener, and report what came back and where it went.
 */
import type { Protocol } from '../model/types.js';
import { type ClusterView, type NodeRunOptions, connectionCounts, countsSince, defaultScheduler, startTarget } from './cluster-run.js';
import { type LoadReport, buildLoadReport } from './report.js';
import { type ResolvedTarget, type TargetSpec, resolveTarget, targetAddress } from './target.js';
import type { ProgressListener } from './types.js';
import { DEFAULT_UDP_RATE, DEFAULT_UDP_TIMEOUT_SECONDS } from './udp-runner.js';
import { type LoadThread, loadThreadDescriptions, runLoadOn, udpLoadGeneratorDescriptions } from './worker-runner.js';

/** The load generator's description, saying where the proxy runs when it has workers. */
export function withWorkers(description: string, workers: number | undefined): string {
  if (workers === undefined || workers <= 1) return description;
  return `${description.replace(/the proxy and the backend pods share the main thread/, 'the backend pods on the main thread')}; the proxy on ${workers} worker threads (UDP on the main thread)`;
}

/** The node-running options of a load or compare run, without the unset ones. */
export function nodeRunOptionsOf(opts: NodeRunOptions & { ports?: 'service' | 'ephemeral' }): NodeRunOptions & { ports?: 'service' | 'ephemeral' } {
  return {
    ...(opts.ports !== undefined ? { ports: opts.ports } : {}),
    ...(opts.userBackends !== undefined ? { userBackends: opts.userBackends } : {}),
    ...(opts.pods !== undefined ? { pods: opts.pods } : {}),
    ...(opts.udpIdleTimeoutMs !== undefined ? { udpIdleTimeoutMs: opts.udpIdleTimeoutMs } : {}),
    ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
  };
}

export interface LoadTestOptions extends NodeRunOptions {
  target: TargetSpec;
  /** The service port's protocol: TCP (HTTP load, default) or UDP (request/response datagrams). */
  protocol?: Protocol;
  /** Requests per second in total: autocannon's overallRate for TCP (default: as fast as possible); UDP default 1000. */
  rate?: number;
  /** Stop after this many requests, or at the duration, whichever comes first. */
  requests?: number;
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
  const protocol = opts.protocol ?? 'TCP';
  const target = resolveTarget(view.cluster, view.states, opts.target, protocol);
  const scheduler = opts.scheduler ?? defaultScheduler(target.state);
  const thread = opts.loadThread ?? 'worker';
  const pipelining = opts.pipelining ?? 1;
  const keepAlive = opts.keepAlive ?? true;
  const udp = protocol === 'UDP';
  const on = await startTarget(view, target, { scheduler, ...nodeRunOptionsOf(opts) });
  try {
    opts.onStart?.(target, on.listener);
    const before = await connectionCounts(on);
    const run = await runLoadOn(thread, {
      url: on.url,
      connections: opts.connections,
      durationSeconds: opts.durationSeconds,
      ...(udp ? { protocol: 'udp' as const } : { pipelining, keepAlive }),
      ...(opts.rate !== undefined ? { overallRate: opts.rate } : {}),
      ...(opts.requests !== undefined ? { amount: opts.requests } : {}),
    }, opts.onProgress);
    const notes: string[] = [];
    if (on.refusal !== undefined) notes.push(on.refusal);
    if (target.servicePort.info.sessionAffinityTimeoutSeconds > 0) {
      notes.push('the service has ClientIP session affinity and every client is 127.0.0.1, so one endpoint takes every connection');
    }
    if (run.unattributed > 0 && opts.userBackends !== undefined && opts.userBackends.size > 0) {
      notes.push('responses from your own servers (--backend) name no endpoint unless they send kpsim\'s headers (UDP: echo the request and add the identity); the connection counts are the proxy\'s own');
    }
    if (udp) notes.push(`UDP: each of the ${opts.connections} client sockets is one association at the proxy; one idle for the UDP timeout ends, and that socket's next datagram opens a new one (a new pick). A datagram not answered within ${DEFAULT_UDP_TIMEOUT_SECONDS} s counts as lost`);
    return buildLoadReport({
      target: { spec: target.spec, service: target.servicePort.info.spn, via: target.via, address: targetAddress(target), listener: on.listener },
      scheduler,
      settings: {
        connections: opts.connections,
        durationSeconds: opts.durationSeconds,
        pipelining: udp ? 1 : pipelining,
        keepAlive: udp ? false : keepAlive,
        loadGenerator: withWorkers(udp ? udpLoadGeneratorDescriptions[thread] : loadThreadDescriptions[thread], opts.workers),
        ...(udp ? { protocol } : {}),
        ...(opts.rate !== undefined || udp ? { rate: opts.rate ?? DEFAULT_UDP_RATE } : {}),
        ...(opts.requests !== undefined ? { requests: opts.requests } : {}),
        ...((opts.workers ?? 1) > 1 ? { workers: opts.workers } : {}),
      },
      run,
      connections: countsSince(before, await connectionCounts(on)),
      notes,
    });
  } finally {
    await on.running.close();
  }
}
