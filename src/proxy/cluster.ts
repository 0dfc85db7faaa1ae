/**
 * A whole node on loopback: the backend pods of the cluster's endpoints and the userspace proxy
 * in front of them. `kpsim up` runs one until it is told to stop; `kpsim load` and `kpsim compare`
 * start one, send load through it, and read its counters.
 */
import { AddressMap, planAddressMap } from './address-map.js';
import { type BackendOptions, type BackendStats, type Backends, startBackends } from './backends.js';
import { type ProxyInput, statesOf } from './input.js';
import { type CloseOptions, type ProxyOptions, type UpdateResult, type UserspaceProxy, startProxy } from './proxy.js';
import type { ProxyStats } from './stats.js';

export type StartClusterOptions = Omit<ProxyOptions, 'map' | 'backendAddress'> & Omit<BackendOptions, 'map' | 'ports'>;

export interface ClusterStats {
  readonly proxy: ProxyStats;
  readonly backends: BackendStats[];
}

export interface RunningCluster {
  /** Virtual addresses and backends, with the ports they bound. */
  readonly map: AddressMap;
  readonly proxy: UserspaceProxy;
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
  const plan = planAddressMap(states, { ports });
  const backends = await startBackends(states, { ...options, ports, map: plan });
  let proxy: UserspaceProxy;
  try {
    const withBackends = plan.withBoundPorts(new Map(backends.entries.map((b) => [b.endpoint, { port: b.loopback.port, ...(b.fallback !== undefined ? { fallback: b.fallback } : {}) }])));
    proxy = await startProxy(states, { ...options, map: withBackends, backendAddress: (endpoint) => backends.address(endpoint) });
  } catch (e) {
    await backends.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    get map(): AddressMap {
      return new AddressMap(proxy.map.entries, backends.entries, proxy.map.notes);
    },
    proxy,
    backends,
    stats: () => ({ proxy: proxy.stats(), backends: backends.stats() }),
    async updateState(next: ProxyInput): Promise<UpdateResult> {
      await backends.ensure(next);
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
