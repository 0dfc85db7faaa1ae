/**
 * A whole node on loopback: the backend pods of the cluster's endpoints and the userspace proxy
 * in front of them. `kpsim up` runs one until it is told to stop; `kpsim load` and `kpsim compare`
 * start one, send load through it, and read its counters.
 *
 * Endpoints need not be kpsim's pods: `userBackends` sends an endpoint's traffic to a server of
 * your own on loopback (`--backend 10.244.0.5:8080=127.0.0.1:3000`), and `pods: false` starts no
 * pod at all (`--no-pods`). An endpoint with neither keeps its loopback address with nothing
 * listening there, so it behaves as a dead pod: dials are refused and the proxy retries on
 * another endpoint; UDP datagrams meet ICMP port-unreachable.
 */
import { KpsimError } from '../errors.js';
import { isLoopback, joinHostPort } from '../util/ip.js';
import { AddressMap, type BackendEntry, type BackendServer, type HostPort, planAddressMap } from './address-map.js';
import { type BackendOptions, type BackendStats, type Backends, startBackends } from './backends.js';
import { type ProxyInput, statesOf } from './input.js';
import { type CloseOptions, type ProxyOptions, type RunningProxy, type UpdateResult, startProxy } from './proxy.js';
import type { ProxyStats } from './stats.js';
import { startWorkerProxy } from './workers.js';

export type StartClusterOptions = Omit<ProxyOptions, 'map' | 'backendAddress'> & Omit<BackendOptions, 'map' | 'ports'> & {
  /** Endpoints ("10.244.0.5:8080") served by your own servers on loopback; no pod runs for them. */
  userBackends?: ReadonlyMap<string, HostPort>;
  /** false: start no backend pod; endpoints without a user backend are unreachable. Default true. */
  pods?: boolean;
};

export interface ClusterStats {
  readonly proxy: ProxyStats;
  readonly backends: BackendStats[];
}

export interface RunningCluster {
  /** Virtual addresses and backends, with the ports they bound. */
  readonly map: AddressMap;
  /** The proxy: on this thread, or on `workers` threads (workers.ts). */
  readonly proxy: RunningProxy;
  /** kpsim's backend pods (none for endpoints with a user backend, or with pods: false). */
  readonly backends: Backends;
  stats(): ClusterStats;
  /** Apply endpoint changes: start backends for new endpoints, then update the proxy. */
  updateState(input: ProxyInput): Promise<UpdateResult>;
  /** Close the proxy (draining for up to drainMs), then the backends. */
  close(options?: CloseOptions): Promise<void>;
}

export async function startCluster(input: ProxyInput, options: StartClusterOptions = {}): Promise<RunningCluster> {
  const states = statesOf(input);
  const ports = options.ports ?? 'service';
  const users = options.userBackends ?? new Map<string, HostPort>();
  let plan = planAddressMap(states, { ports });
  checkUserBackends(plan, users);
  const runsPod = (endpoint: string): boolean => options.pods !== false && !users.has(endpoint);
  const podPlan = new AddressMap(plan.entries, plan.backends.filter((b) => runsPod(b.endpoint)), plan.notes);
  const backends = await startBackends(states, { ...options, ports, map: podPlan });

  // Every endpoint's backend entry: its pod's as bound, your server's, or its dead address.
  let byEndpoint: Map<string, BackendEntry> | undefined;
  const backendEntries = (): BackendEntry[] => [...(byEndpoint ??= new Map(plan.backends.map((b) => {
    const pod = backends.backend(b.endpoint);
    if (pod !== undefined) return [b.endpoint, { ...pod.entry, server: 'pod' }];
    const user = users.get(b.endpoint);
    return [b.endpoint, user !== undefined ? userEntry(b, user) : deadEntry(b)];
  }))).values()];
  const serverOf = (endpoint: string): BackendServer => (backends.backend(endpoint) ? 'pod' : users.has(endpoint) ? 'user' : 'none');

  let proxy: RunningProxy;
  try {
    const withBackends = new AddressMap(plan.entries, backendEntries(), plan.notes);
    const start = (options.workers ?? 1) > 1 ? startWorkerProxy : startProxy;
    proxy = await start(states, {
      ...options,
      map: withBackends,
      backendAddress: (endpoint, protocol) => {
        if (byEndpoint === undefined) backendEntries();
        const entry = byEndpoint!.get(endpoint);
        return protocol === 'UDP' ? entry?.udpLoopback : entry?.loopback;
      },
    });
  } catch (e) {
    await backends.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    get map(): AddressMap {
      return new AddressMap(proxy.map.entries, backendEntries(), proxy.map.notes).withServers(serverOf);
    },
    proxy,
    backends,
    stats: () => ({ proxy: proxy.stats(), backends: backends.stats() }),
    async updateState(next: ProxyInput): Promise<UpdateResult> {
      const nextPlan = planAddressMap(statesOf(next), { ports });
      const known = new Set(plan.backends.map((b) => b.endpoint));
      plan = new AddressMap(plan.entries, [...plan.backends, ...nextPlan.backends.filter((b) => !known.has(b.endpoint))], plan.notes);
      await backends.start(plan.backends.filter((b) => runsPod(b.endpoint)));
      byEndpoint = undefined;
      return proxy.updateState(next);
    },
    close(closeOptions?: CloseOptions): Promise<void> {
      closing ??= (async () => {
        try {
          await proxy.close(closeOptions);
        } finally {
          await backends.close();
        }
      })();
      return closing;
    },
  };
}

/**
 * Why a user backend cannot be used, or undefined: the endpoint must be one of the cluster's
 * (of a TCP or UDP port), and the server on loopback (kpsim sends traffic nowhere else).
 */
export function userBackendProblem(map: AddressMap, endpoint: string, server: HostPort): string | undefined {
  if (map.lookupBackend(endpoint) === undefined) {
    const known = map.backends.map((b) => b.endpoint);
    return `${endpoint} is not an endpoint of a TCP or UDP service port; endpoints: ${known.length > 0 ? known.join(', ') : 'none'}`;
  }
  if (!isLoopback(server.address)) return `${joinHostPort(server.address, server.port)} is not on loopback: kpsim sends traffic to loopback only`;
  if (!(Number.isInteger(server.port) && server.port >= 1 && server.port <= 65535)) return `${server.port} is not a port (1-65535)`;
  return undefined;
}

function checkUserBackends(map: AddressMap, users: ReadonlyMap<string, HostPort>): void {
  for (const [endpoint, server] of users) {
    const problem = userBackendProblem(map, endpoint, server);
    if (problem !== undefined) throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `backend for ${endpoint}: ${problem}`, { path: 'userBackends' });
  }
}

/** Your server takes the endpoint's traffic, TCP and UDP alike, at one address. */
function userEntry(planned: BackendEntry, server: HostPort): BackendEntry {
  const { fallback: _fallback, ...rest } = planned;
  return { ...rest, loopback: server, ...(planned.protocols.includes('UDP') ? { udpLoopback: server } : {}), server: 'user' };
}

/**
 * No server: the planned loopback address, where nothing listens. An ephemeral plan has no port
 * yet; the endpoint's own port on its loopback IP is just as dead (the 127.1/16 block is kpsim's).
 */
function deadEntry(planned: BackendEntry): BackendEntry {
  const dead = (address: HostPort): HostPort => (address.port === 0 ? { address: address.address, port: planned.port } : address);
  const { fallback: _fallback, ...rest } = planned;
  return {
    ...rest,
    loopback: dead(planned.loopback),
    ...(planned.udpLoopback !== undefined ? { udpLoopback: dead(planned.udpLoopback) } : {}),
    server: 'none',
  };
}
