/**
 * One target on a running cluster: start the backend pods and the userspace proxy, find the
 * loopback listener for the target, and read the proxy's per-endpoint connection counters for the
 * endpoints that listener can pick. Shared by `kpsim load` and `kpsim compare`.
 */
import type { Cluster } from '../model/types.js';
import { type PlanOptions, type RunningCluster, type StartClusterOptions, chooseEndpoints, startCluster } from '../proxy/index.js';
import type { ProxierState } from '../tracker/types.js';
import { joinHostPort } from '../util/ip.js';
import type { EndpointConnectionCount } from './report.js';
import type { ResolvedTarget } from './target.js';

/** What kpsim needs of a loaded cluster (the CLI's LoadedCluster is one). */
export interface ClusterView {
  readonly cluster: Cluster;
  readonly states: readonly ProxierState[];
}

export interface TargetOnCluster {
  readonly running: RunningCluster;
  /** "http://127.10.0.3:80/", or "udp://127.10.0.10:53" for a UDP service port. */
  readonly url: string;
  /** "127.10.0.3:80" */
  readonly listener: string;
  /** The endpoints the listener may send new connections to (empty when it rejects or drops). */
  readonly candidates: readonly { endpoint: string; pod: string }[];
  /** Why the listener rejects or drops every connection; undefined when it forwards. */
  readonly refusal: string | undefined;
}

/** What `kpsim up`, `load` and `compare` share about how the node runs (--backend, --no-pods, --udp-timeout, --workers). */
export type NodeRunOptions = Pick<StartClusterOptions, 'userBackends' | 'pods' | 'udpIdleTimeoutMs' | 'workers'>;

export interface StartTargetOptions extends NodeRunOptions {
  scheduler: string;
  /** 'service' keeps service port numbers on loopback (falling back when taken); 'ephemeral' for tests. */
  ports?: PlanOptions['ports'];
}

/** The scheduler kube-proxy's IPVS mode would use: the configuration's, else rr. */
export function defaultScheduler(state: ProxierState): string {
  return state.config.ipvsScheduler || 'rr';
}

export async function startTarget(view: ClusterView, target: ResolvedTarget, opts: StartTargetOptions): Promise<TargetOnCluster> {
  const { scheduler, ports, userBackends, pods, udpIdleTimeoutMs, workers } = opts;
  const running = await startCluster(view.states, {
    scheduler,
    ...(ports !== undefined ? { ports } : {}),
    ...(userBackends !== undefined ? { userBackends } : {}),
    ...(pods !== undefined ? { pods } : {}),
    ...(udpIdleTimeoutMs !== undefined ? { udpIdleTimeoutMs } : {}),
    ...(workers !== undefined ? { workers } : {}),
  });
  try {
    const protocol = target.servicePort.info.protocol;
    const entry = running.map.lookup({ kind: target.via, address: target.address, port: target.port, protocol });
    if (entry === undefined || !entry.proxied || entry.loopback.port === 0) {
      throw new Error(`the proxy has no listener for ${target.via} ${joinHostPort(target.address, target.port)}`);
    }
    const verdict = chooseEndpoints(target.servicePort, target.via);
    const listener = joinHostPort(entry.loopback.address, entry.loopback.port);
    return {
      running,
      url: protocol === 'UDP' ? `udp://${listener}` : `http://${listener}/`,
      listener,
      candidates: verdict.action === 'forward' ? verdict.endpoints.map((e) => ({ endpoint: e.endpoint, pod: e.podName ?? '' })) : [],
      refusal: verdict.action === 'forward' ? undefined : `the proxy will ${verdict.action} every connection: ${verdict.reason}`,
    };
  } catch (e) {
    await running.close();
    throw e;
  }
}

/** Connections placed per candidate endpoint so far (the proxy's counters, which only grow). */
export async function connectionCounts(on: TargetOnCluster): Promise<EndpointConnectionCount[]> {
  await on.running.proxy.refreshStats();
  const byEndpoint = new Map(on.running.stats().proxy.endpoints.map((s) => [s.endpoint, s]));
  return on.candidates.map((c) => ({ endpoint: c.endpoint, pod: c.pod || (byEndpoint.get(c.endpoint)?.podName ?? ''), connections: byEndpoint.get(c.endpoint)?.connections ?? 0 }));
}

/** after - before, per endpoint. */
export function countsSince(before: readonly EndpointConnectionCount[], after: readonly EndpointConnectionCount[]): EndpointConnectionCount[] {
  const start = new Map(before.map((c) => [c.endpoint, c.connections]));
  return after.map((c) => ({ ...c, connections: c.connections - (start.get(c.endpoint) ?? 0) }));
}
