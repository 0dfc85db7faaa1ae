/**
 * One proxier's view of the cluster kept up to date from its change trackers, as kube-proxy's
 * Proxier keeps svcPortMap and endpointsMap: each sync applies what is pending and gets the
 * ProxierState every mode compiles from, plus the Services that changed. Only the changed
 * Services' ports are rebuilt and re-categorised; every other ProxierServicePort is the very
 * object of the previous state, so a mode can keep what it derived from it (a partial sync's
 * work is proportional to the change, not to the cluster).
 *
 * The state is the one buildProxierState gives for the same objects (a test holds them equal).
 */
import type { ProxierNodeContext } from './proxier-state.js';
import { assembleProxierState, proxierServicePort, servicePortSortKey } from './proxier-state.js';
import { EndpointsMap, type EndpointsChangeTracker, type UpdateEndpointsMapResult } from './endpoints-change-tracker.js';
import { type NamespacedName, ServicePortMap, type ServiceChangeTracker, type UpdateServiceMapResult } from './service-change-tracker.js';
import type { ProxierServicePort, ProxierState } from './types.js';

export interface ViewUpdate {
  readonly state: ProxierState;
  readonly services: UpdateServiceMapResult;
  readonly endpoints: UpdateEndpointsMapResult;
  /** Services whose ports or endpoints changed (both results together). */
  readonly updatedServices: ReadonlySet<NamespacedName>;
  /** Every service port was rebuilt (the node context changed, or this is the first update). */
  readonly rebuiltAll: boolean;
}

export class ProxierView {
  readonly serviceMap = new ServicePortMap();
  readonly endpointsMap = new EndpointsMap();
  #ctx: ProxierNodeContext;
  #contextChanged = true;
  readonly #ports = new Map<string, ProxierServicePort>();
  readonly #keysByService = new Map<NamespacedName, Set<string>>();
  /** #ports' keys in state order: [sortKey, key] pairs sorted by sortKey. */
  readonly #order: [string, string][] = [];

  constructor(ctx: ProxierNodeContext) {
    this.#ctx = ctx;
  }

  get context(): ProxierNodeContext {
    return this.#ctx;
  }

  /** The node's addresses, labels or the configuration changed: every port is rebuilt at the next update. */
  setContext(ctx: ProxierNodeContext): void {
    this.#ctx = ctx;
    this.#contextChanged = true;
  }

  /** Apply both trackers' pending changes. */
  update(serviceChanges: ServiceChangeTracker, endpointChanges: EndpointsChangeTracker): ViewUpdate {
    const services = this.serviceMap.update(serviceChanges);
    const endpoints = this.endpointsMap.update(endpointChanges);
    const updatedServices = new Set([...services.updatedServices, ...endpoints.updatedServices]);
    const rebuiltAll = this.#contextChanged;
    const rebuild = rebuiltAll ? new Set([...this.#keysByService.keys(), ...this.#allServices()]) : updatedServices;
    for (const name of rebuild) this.#rebuildService(name);
    this.#contextChanged = false;
    const servicePorts = this.#order.map(([, key]) => this.#ports.get(key)!);
    return { state: assembleProxierState(this.#ctx, servicePorts), services, endpoints, updatedServices, rebuiltAll };
  }

  #allServices(): NamespacedName[] {
    const names = new Set<NamespacedName>();
    for (const key of this.serviceMap.ports.keys()) names.add(serviceOfKey(key));
    return [...names];
  }

  #rebuildService(name: NamespacedName): void {
    const old = this.#keysByService.get(name) ?? new Set<string>();
    const now = this.serviceMap.portsOf(name);
    for (const key of old) {
      if (now.has(key)) continue;
      const sp = this.#ports.get(key)!;
      this.#ports.delete(key);
      removeSorted(this.#order, servicePortSortKey(sp.info));
    }
    for (const key of now) {
      const info = this.serviceMap.ports.get(key)!;
      const endpoints = this.endpointsMap.endpoints.get(key)?.values() ?? [];
      const previous = this.#ports.get(key);
      const sp = proxierServicePort(info, endpoints, this.#ctx.topology);
      this.#ports.set(key, sp);
      if (previous === undefined) insertSorted(this.#order, [servicePortSortKey(info), key]);
    }
    if (now.size > 0) this.#keysByService.set(name, new Set(now));
    else this.#keysByService.delete(name);
  }
}

/** "ns/name" of a servicePortKey ("ns/name\0port\0protocol"). */
export function serviceOfKey(key: string): NamespacedName {
  return key.slice(0, key.indexOf('\0'));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The index of the first pair whose sort key is not below `sortKey`. */
function lowerBound(order: readonly [string, string][], sortKey: string): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareText(order[mid]![0], sortKey) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insertSorted(order: [string, string][], pair: [string, string]): void {
  order.splice(lowerBound(order, pair[0]), 0, pair);
}

function removeSorted(order: [string, string][], sortKey: string): void {
  const i = lowerBound(order, sortKey);
  if (order[i]?.[0] === sortKey) order.splice(i, 1);
}
