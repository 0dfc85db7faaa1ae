/**
 * kube-proxy's ServiceChangeTracker and ServicePortMap (pkg/proxy/servicechangetracker.go), for
 * one proxier (one IP family): informer events are recorded as `{previous, current}` port maps
 * per Service, where `previous` is the map from before the first pending change and `current`
 * the map after the latest. A change that ends where it started (an add then a delete, an
 * update then its revert) is dropped before any sync sees it. `ServicePortMap.update` applies
 * what is pending and says which Services changed: a partial sync works in proportion to that.
 *
 * Two maps are equal when their service ports are, field by field, as kube-proxy's
 * reflect.DeepEqual of BaseServicePortInfo compares them (the Service object itself is not
 * compared: a label change that moves no port is no change to the proxier).
 */
import type { ProxyConfig, Service } from '../model/types.js';
import type { Family } from '../util/ip.js';
import { servicePortInfos, servicePortKey } from './proxier-state.js';
import type { ServicePortInfo } from './types.js';

/** "namespace/name": kube-proxy's types.NamespacedName as text. */
export type NamespacedName = string;

export function namespacedName(obj: { namespace: string; name: string }): NamespacedName {
  return `${obj.namespace}/${obj.name}`;
}

/** One Service's ports as a proxier of one family sees them, by servicePortKey; empty when it has none to proxy. */
export type ServicePortsOf = ReadonlyMap<string, ServicePortInfo>;

interface ServiceChange {
  readonly previous: ServicePortsOf;
  current: ServicePortsOf;
}

const EMPTY: ServicePortsOf = new Map();

export class ServiceChangeTracker {
  readonly #items = new Map<NamespacedName, ServiceChange>();

  constructor(readonly family: Family, private readonly config: () => ProxyConfig) {}

  /**
   * Record one informer event (`previous` undefined for an add, `current` for a delete).
   * Returns whether changes are pending (whether or not this event made one), as kube-proxy's
   * Update does.
   */
  update(previous: Service | undefined, current: Service | undefined): boolean {
    const svc = current ?? previous;
    if (svc === undefined) return this.#items.size > 0;
    const name = namespacedName(svc);
    let change = this.#items.get(name);
    if (change === undefined) {
      change = { previous: this.portsOf(previous), current: EMPTY };
      this.#items.set(name, change);
    }
    change.current = this.portsOf(current);
    if (samePorts(change.previous, change.current)) this.#items.delete(name);
    return this.#items.size > 0;
  }

  /** sync_proxy_rules_service_changes_pending: Services with a change not yet synced. */
  get pending(): number {
    return this.#items.size;
  }

  /** The pending changes, taken out (ServicePortMap.update does this). */
  checkout(): Map<NamespacedName, ServiceChange> {
    const items = new Map(this.#items);
    this.#items.clear();
    return items;
  }

  /** serviceToServiceMap: a Service's ports for this family (none for headless, ExternalName, or no ClusterIP of the family). */
  portsOf(svc: Service | undefined): ServicePortsOf {
    if (svc === undefined) return EMPTY;
    const infos = servicePortInfos(svc, this.family, this.config());
    if (infos.length === 0) return EMPTY;
    return new Map(infos.map((info) => [servicePortKey(info.svcPortName), info]));
  }
}

export interface UpdateServiceMapResult {
  /** Every Service added, updated or deleted since the last update. */
  readonly updatedServices: ReadonlySet<NamespacedName>;
}

/** kube-proxy's ServicePortMap: every service port the proxier serves, by servicePortKey. */
export class ServicePortMap {
  readonly ports = new Map<string, ServicePortInfo>();
  /** The keys of each Service's ports. */
  readonly #byService = new Map<NamespacedName, Set<string>>();

  /** Apply the tracker's pending changes; returns which Services changed. */
  update(tracker: ServiceChangeTracker): UpdateServiceMapResult {
    const updatedServices = new Set<NamespacedName>();
    for (const [name, change] of tracker.checkout()) {
      updatedServices.add(name);
      for (const key of change.previous.keys()) if (!change.current.has(key)) this.#delete(name, key);
      for (const [key, info] of change.current) this.#set(name, key, info);
    }
    return { updatedServices };
  }

  /** The keys of a Service's ports. */
  portsOf(name: NamespacedName): ReadonlySet<string> {
    return this.#byService.get(name) ?? new Set();
  }

  #set(name: NamespacedName, key: string, info: ServicePortInfo): void {
    this.ports.set(key, info);
    let keys = this.#byService.get(name);
    if (keys === undefined) this.#byService.set(name, (keys = new Set()));
    keys.add(key);
  }

  #delete(name: NamespacedName, key: string): void {
    this.ports.delete(key);
    const keys = this.#byService.get(name);
    keys?.delete(key);
    if (keys?.size === 0) this.#byService.delete(name);
  }
}

function samePorts(a: ServicePortsOf, b: ServicePortsOf): boolean {
  if (a.size !== b.size) return false;
  for (const [key, info] of a) {
    const other = b.get(key);
    if (other === undefined || !sameServicePortInfo(info, other)) return false;
  }
  return true;
}

/** BaseServicePortInfo equality: every field the proxier reads, not the Service it came from. */
export function sameServicePortInfo(a: ServicePortInfo, b: ServicePortInfo): boolean {
  return a.spn === b.spn
    && a.protocol === b.protocol
    && a.clusterIP === b.clusterIP
    && a.port === b.port
    && a.nodePort === b.nodePort
    && sameList(a.externalIPs, b.externalIPs)
    && sameList(a.loadBalancerVIPs, b.loadBalancerVIPs)
    && sameList(a.loadBalancerSourceRanges, b.loadBalancerSourceRanges)
    && a.externalPolicyLocal === b.externalPolicyLocal
    && a.internalPolicyLocal === b.internalPolicyLocal
    && a.sessionAffinityTimeoutSeconds === b.sessionAffinityTimeoutSeconds
    && a.healthCheckNodePort === b.healthCheckNodePort;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
