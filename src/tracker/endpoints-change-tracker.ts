/**
 * kube-proxy's EndpointsChangeTracker with its EndpointSliceCache (pkg/proxy/
 * endpointschangetracker.go, endpointslicecache.go), for one proxier (one IP family): per
 * Service, the slices as last applied by a sync and the slices changed since. A slice update
 * counts as a change only when it differs from the pending copy of that slice, or else from the
 * applied one, in what kube-proxy reads of it (ports, addresses, conditions, node, zone,
 * hints); deleting a slice kube-proxy never saw is no change. Slices of the other address type
 * are not this proxier's.
 *
 * Each change may carry the time of the Pod or Service change that triggered it (the
 * EndpointSlice controller's endpoints.kubernetes.io/last-change-trigger-time annotation):
 * after a successful sync the proxier observes now - that time as network programming latency,
 * once per time, except for removals and for times before the tracker started.
 */
import type { EndpointSlice } from '../model/types.js';
import type { Family } from '../util/ip.js';
import { collectEndpoints } from './proxier-state.js';
import { type NamespacedName, namespacedName } from './service-change-tracker.js';
import type { EndpointInfo } from './types.js';

/** What kube-proxy keeps of one slice (endpointSliceInfo), with the text it is compared by. */
interface SliceInfo {
  /** undefined: the slice was deleted. */
  readonly slice: EndpointSlice | undefined;
  readonly key: string;
}

interface SliceTracker {
  readonly applied: Map<string, SliceInfo>;
  readonly pending: Map<string, SliceInfo>;
}

export interface UpdateEndpointsMapResult {
  /** Every Service whose endpoints were added, updated or deleted since the last update. */
  readonly updatedServices: ReadonlySet<NamespacedName>;
  /** Trigger times (ms since the epoch) of the changes, per Service. */
  readonly lastChangeTriggerTimes: ReadonlyMap<NamespacedName, readonly number[]>;
  /** Some changed Service has a UDP port: stale conntrack entries may need clearing. */
  readonly conntrackCleanupRequired: boolean;
}

export class EndpointsChangeTracker {
  readonly #trackers = new Map<NamespacedName, SliceTracker>();
  readonly #triggerTimes = new Map<NamespacedName, number[]>();
  #pending = 0;

  /**
   * @param nodeName the proxier's node: its endpoints are local.
   * @param startedAt when the tracker started (ms since the epoch): older trigger times are not observed.
   */
  constructor(readonly family: Family, readonly nodeName: string, readonly startedAt: number) {}

  /**
   * Record a slice added, updated or (with `remove`) deleted; true when it changed what kube-proxy
   * would program. `lastChangeTriggerTime` is the slice's trigger-time annotation, in ms.
   */
  endpointSliceUpdate(slice: EndpointSlice, remove: boolean, lastChangeTriggerTime?: number): boolean {
    if (slice.addressType !== (this.family === 4 ? 'IPv4' : 'IPv6')) return false;
    // A slice without the kubernetes.io/service-name label belongs to no Service.
    if (slice.serviceName === '') return false;
    const service = namespacedName({ namespace: slice.namespace, name: slice.serviceName });
    let tracker = this.#trackers.get(service);
    if (tracker === undefined) this.#trackers.set(service, (tracker = { applied: new Map(), pending: new Map() }));
    const info: SliceInfo = remove ? { slice: undefined, key: REMOVED } : { slice, key: sliceKey(slice) };
    if (!changed(tracker, slice.name, info)) return false;
    tracker.pending.set(slice.name, info);
    this.#pending++;
    if (remove) {
      // The annotation of a deleted slice dates from its last update, not from this change.
      this.#triggerTimes.delete(service);
    } else if (lastChangeTriggerTime !== undefined && lastChangeTriggerTime > this.startedAt) {
      const times = this.#triggerTimes.get(service) ?? [];
      times.push(lastChangeTriggerTime);
      this.#triggerTimes.set(service, times);
    }
    return true;
  }

  /** sync_proxy_rules_endpoint_changes_pending: slice changes not yet synced. */
  get pending(): number {
    return this.#pending;
  }

  /** The Services with pending changes, each with its endpoints before and after; marks them applied. */
  checkout(): { changes: Map<NamespacedName, { previous: EndpointsOf; current: EndpointsOf }>; triggerTimes: Map<NamespacedName, number[]> } {
    const changes = new Map<NamespacedName, { previous: EndpointsOf; current: EndpointsOf }>();
    for (const [service, tracker] of this.#trackers) {
      if (tracker.pending.size === 0) continue;
      const previous = this.#endpointsOf(tracker.applied);
      for (const [name, info] of tracker.pending) {
        if (info.slice === undefined) tracker.applied.delete(name);
        else tracker.applied.set(name, info);
      }
      tracker.pending.clear();
      changes.set(service, { previous, current: this.#endpointsOf(tracker.applied) });
      if (tracker.applied.size === 0) this.#trackers.delete(service);
    }
    const triggerTimes = new Map(this.#triggerTimes);
    this.#triggerTimes.clear();
    this.#pending = 0;
    return { changes, triggerTimes };
  }

  #endpointsOf(slices: ReadonlyMap<string, SliceInfo>): EndpointsOf {
    const list: EndpointSlice[] = [];
    for (const info of slices.values()) if (info.slice !== undefined) list.push(info.slice);
    return collectEndpoints(list, this.family, this.nodeName);
  }
}

/** One Service's endpoints per service port (servicePortKey), by endpoint text. */
export type EndpointsOf = ReadonlyMap<string, ReadonlyMap<string, EndpointInfo>>;

/** kube-proxy's EndpointsMap: every service port's endpoints, by servicePortKey. */
export class EndpointsMap {
  readonly endpoints = new Map<string, ReadonlyMap<string, EndpointInfo>>();

  /** Apply the tracker's pending changes. */
  update(tracker: EndpointsChangeTracker): UpdateEndpointsMapResult {
    const { changes, triggerTimes } = tracker.checkout();
    const updatedServices = new Set<NamespacedName>();
    let conntrackCleanupRequired = false;
    for (const [service, change] of changes) {
      updatedServices.add(service);
      for (const key of change.previous.keys()) this.endpoints.delete(key);
      for (const [key, endpoints] of change.current) this.endpoints.set(key, endpoints);
      // kube-proxy's check: the Service had a UDP port before the change.
      if (!conntrackCleanupRequired) conntrackCleanupRequired = [...change.previous.keys(), ...change.current.keys()].some((key) => key.endsWith('\0UDP'));
    }
    return { updatedServices, lastChangeTriggerTimes: triggerTimes, conntrackCleanupRequired };
  }
}

/** esInfoChanged: compared with the pending copy if there is one, else with the applied one; an unknown slice's removal is none. */
function changed(tracker: SliceTracker, name: string, info: SliceInfo): boolean {
  const known = tracker.pending.get(name) ?? tracker.applied.get(name);
  return known !== undefined ? known.key !== info.key : info.key !== REMOVED;
}

/** The key of a removal (no slice's key is this). */
const REMOVED = 'removed';

/**
 * newEndpointSliceInfo as text: the ports sorted by number, the endpoints sorted by address,
 * with exactly the fields kube-proxy keeps (conditions with their nil defaults applied).
 */
function sliceKey(slice: EndpointSlice): string {
  const ports = [...slice.ports].sort((a, b) => (a.port ?? 0) - (b.port ?? 0)).map((p) => [p.name, p.port ?? null, p.protocol]);
  const endpoints = slice.endpoints
    .map((ep) => ({ addresses: ep.addresses.join(','), ep }))
    .sort((a, b) => (a.addresses < b.addresses ? -1 : a.addresses > b.addresses ? 1 : 0))
    .map(({ ep }) => [
      ep.addresses,
      ep.nodeName ?? null,
      ep.zone ?? null,
      ep.hints?.forZones ?? null,
      ep.hints?.forNodes ?? null,
      ep.conditions.ready ?? true,
      ep.conditions.serving ?? true,
      ep.conditions.terminating ?? false,
    ]);
  return JSON.stringify([ports, endpoints]);
}
