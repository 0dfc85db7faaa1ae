/**
 * One IP family's proxier in the agent, as kube-proxy's Proxier is (pkg/proxy/iptables/
 * proxier.go and its siblings): informer events go to the change trackers, and when the
 * trackers report something pending the sync is queued (`Sync()`: the last-queued gauge, the
 * health server's queued update, the runner's Run). The runner runs syncProxyRules, which
 * applies the trackers to the view, decides full or partial, hands the mode's syncer the work,
 * and keeps kube-proxy's bookkeeping: a failure makes the next sync full (the trackers' changes
 * are consumed, so only a full sync can recover); a full sync also happens when the node's
 * labels change and at least once per FullSyncPeriod (one hour) unless the mode skips it
 * (iptables in large-cluster mode); after a successful sync the network programming latency of
 * each change that carried a trigger time is observed, the last-synced gauge set and the health
 * server told.
 *
 * Nothing is synced before the Services and EndpointSlices informers have both synced
 * (`initialize`), as kube-proxy waits ("Not syncing iptables until Services and Endpoints have
 * been received from master").
 */
import type { EndpointSlice, Service } from '../model/types.js';
import { EndpointsChangeTracker } from '../tracker/endpoints-change-tracker.js';
import type { ProxierNodeContext } from '../tracker/proxier-state.js';
import { ProxierView } from '../tracker/proxier-view.js';
import { ServiceChangeTracker } from '../tracker/service-change-tracker.js';
import type { Family } from '../util/ip.js';
import type { ProxyHealth } from './healthz.js';
import { type ProxyMetrics, ipFamilyLabel } from './metrics.js';
import { BoundedFrequencyRunner, type RunnerTimers } from './runner.js';
import type { FamilySyncer, SyncArtifact } from './syncer.js';

/** kube-proxy's proxyutil.FullSyncPeriod. */
export const FULL_SYNC_PERIOD_MS = 60 * 60 * 1000;

/** What one sync did, for logs, --rules-dir, tests and benchmarks. */
export interface SyncEvent {
  readonly family: Family;
  /** Counts the syncs of the agent (both families). */
  readonly seq: number;
  readonly full: boolean;
  readonly ok: boolean;
  readonly error?: string;
  readonly summary: string;
  /** Wall time of the sync (trackers applied, rules written, kernel changed), ms. */
  readonly durationMs: number;
  /** When it ended, ms since the epoch. */
  readonly at: number;
  readonly updatedServices: readonly string[];
  readonly payload: readonly SyncArtifact[];
  /** now - trigger time of every change this sync programmed, in seconds. */
  readonly programmingLatenciesSeconds: readonly number[];
  /** The full state the sync left. */
  readonly state: () => readonly SyncArtifact[];
}

export interface FamilyProxierOptions {
  readonly family: Family;
  readonly context: ProxierNodeContext;
  readonly syncer: FamilySyncer;
  readonly metrics: ProxyMetrics;
  readonly health: ProxyHealth;
  readonly minSyncPeriodMs: number;
  readonly syncPeriodMs: number;
  readonly timers: RunnerTimers;
  /** Wall clock, ms since the epoch. */
  readonly now: () => number;
  /** Monotonic clock in ms, for durations. */
  readonly monotonic: () => number;
  readonly startedAt: number;
  readonly nextSeq: () => number;
  readonly onSync: (event: SyncEvent) => Promise<void> | void;
  /** The ServiceCIDRs known now (any family). */
  readonly serviceCIDRs?: () => readonly string[];
  readonly log: (line: string) => void;
}

export class FamilyProxier {
  readonly serviceChanges: ServiceChangeTracker;
  readonly endpointChanges: EndpointsChangeTracker;
  readonly view: ProxierView;
  readonly runner: BoundedFrequencyRunner;
  #initialized = false;
  #needFullSync = true;
  #lastFullSync = -Infinity;
  readonly #o: FamilyProxierOptions;
  readonly #label: 'IPv4' | 'IPv6';

  constructor(options: FamilyProxierOptions) {
    this.#o = options;
    this.#label = ipFamilyLabel(options.family);
    this.serviceChanges = new ServiceChangeTracker(options.family, () => this.view.context.config);
    this.endpointChanges = new EndpointsChangeTracker(options.family, options.context.nodeName, options.startedAt);
    this.view = new ProxierView(options.context);
    this.runner = new BoundedFrequencyRunner(`sync-runner ${this.#label}`, () => this.syncProxyRules(), {
      minIntervalMs: options.minSyncPeriodMs,
      retryIntervalMs: options.syncPeriodMs,
      maxIntervalMs: Math.max(FULL_SYNC_PERIOD_MS, options.minSyncPeriodMs),
    }, options.timers);
  }

  get family(): Family {
    return this.#o.family;
  }

  get initialized(): boolean {
    return this.#initialized;
  }

  /** OnServiceAdd/Update/Delete. */
  serviceUpdate(previous: Service | undefined, current: Service | undefined): void {
    const m = this.#o.metrics.m;
    m.serviceChangesTotal.inc();
    const pending = this.serviceChanges.update(previous, current);
    m.serviceChangesPending.set(this.serviceChanges.pending);
    if (pending && this.#initialized) this.queue();
  }

  /** OnEndpointSliceAdd/Update/Delete. */
  endpointSliceUpdate(slice: EndpointSlice, remove: boolean, lastChangeTriggerTime: number | undefined): void {
    if (slice.addressType !== (this.family === 4 ? 'IPv4' : 'IPv6')) return;
    const m = this.#o.metrics.m;
    m.endpointChangesTotal.inc();
    if (this.endpointChanges.endpointSliceUpdate(slice, remove, lastChangeTriggerTime)) {
      m.endpointChangesPending.inc();
      if (this.#initialized) this.queue();
    }
  }

  /** The node's labels changed (topology): every service port is re-categorised in a full sync. */
  nodeChanged(context: ProxierNodeContext): void {
    this.view.setContext(context);
    this.#needFullSync = true;
    if (this.#initialized) this.queue();
  }

  /** kube-proxy's Sync(): ask for a sync. */
  queue(): void {
    this.#o.health.queuedUpdate(this.family);
    this.#o.metrics.m.syncProxyRulesLastQueuedTimestamp.set({ ip_family: this.#label }, this.#o.now() / 1000);
    this.runner.run();
  }

  /** Both informers have synced: sync now, then start the runner. */
  async initialize(): Promise<boolean> {
    if (this.#initialized) return true;
    this.#initialized = true;
    // SyncLoop: healthy while starting up, even if the first sync fails.
    this.#o.health.updated(this.family);
    this.#o.metrics.m.syncProxyRulesLastQueuedTimestamp.set({ ip_family: this.#label }, this.#o.now() / 1000);
    const ok = await this.syncProxyRules();
    this.runner.loop();
    return ok;
  }

  stop(): void {
    this.runner.stop();
  }

  /** One sync; true when it succeeded. */
  async syncProxyRules(): Promise<boolean> {
    if (!this.#initialized) return true;
    const o = this.#o;
    const m = o.metrics.m;
    const started = o.monotonic();
    const now = o.now();
    const full = this.#needFullSync || (now - this.#lastFullSync > FULL_SYNC_PERIOD_MS && !(o.syncer.skipsPeriodicFullSync?.() ?? false));
    const update = this.view.update(this.serviceChanges, this.endpointChanges);
    m.serviceChangesPending.set(0);
    m.endpointChangesPending.set(0);
    let result;
    try {
      result = await o.syncer.sync({ update, full, now, ...(o.serviceCIDRs !== undefined ? { serviceCIDRs: o.serviceCIDRs() } : {}) });
    } catch (e) {
      // A throw is a bug in kpsim, not the kernel refusing: say so, and recover as from a failure.
      result = { ok: false, error: `internal error: ${(e as Error).stack ?? String(e)}`, payload: [], summary: 'failed' };
    }
    const durationMs = o.monotonic() - started;
    m.syncProxyRulesLatency.observe({ ip_family: this.#label }, durationMs / 1000);
    (full ? m.syncFullProxyRulesLatency : m.syncPartialProxyRulesLatency).observe({ ip_family: this.#label }, durationMs / 1000);
    const at = o.now();
    const latencies: number[] = [];
    if (result.ok) {
      this.#needFullSync = false;
      if (full) this.#lastFullSync = now;
      for (const times of update.endpoints.lastChangeTriggerTimes.values()) {
        for (const t of times) {
          const seconds = Math.max(0, (at - t) / 1000);
          latencies.push(seconds);
          m.networkProgrammingLatency.observe({ ip_family: this.#label }, seconds);
        }
      }
      if (result.noLocalEndpoints !== undefined) {
        m.syncProxyRulesNoLocalEndpointsTotal.set({ traffic_policy: 'internal', ip_family: this.#label }, result.noLocalEndpoints.internal);
        m.syncProxyRulesNoLocalEndpointsTotal.set({ traffic_policy: 'external', ip_family: this.#label }, result.noLocalEndpoints.external);
      }
      o.health.updated(this.family);
      m.syncProxyRulesLastTimestamp.set({ ip_family: this.#label }, at / 1000);
    } else {
      // The trackers' changes are consumed: only a full sync can recover.
      this.#needFullSync = true;
      o.log(`${this.#label}: sync failed, the next sync is full (retry within ${o.syncPeriodMs / 1000} s): ${result.error ?? 'unknown error'}`);
    }
    await o.onSync({
      family: this.family,
      seq: o.nextSeq(),
      full,
      ok: result.ok,
      ...(result.error !== undefined ? { error: result.error } : {}),
      summary: result.summary,
      durationMs,
      at,
      updatedServices: [...update.updatedServices].sort(),
      payload: result.payload,
      programmingLatenciesSeconds: latencies,
      state: () => o.syncer.state(),
    });
    return result.ok;
  }
}
