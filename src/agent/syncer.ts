/**
 * What a proxy mode is to the agent: one `ModeSyncer` per mode, looked up in one table
 * (syncers.ts), as the compile-side drivers are in src/node/modes.ts. The agent's per-family
 * proxier (proxier.ts) owns everything the modes share — change trackers, the view, the
 * runner, full-sync bookkeeping, the common metrics, health, --rules-dir — and asks the mode's
 * syncer to do one sync against its kernel (or, for userspace, its live proxy).
 *
 * A new mode provides, in src/agent/syncers/<mode>.ts, one ModeSyncer: its name, the metrics
 * it adds to the common ones, and `create(context)` returning a FamilySyncer whose `sync`
 * writes what changed (a full sync when asked) and reports the payload it handed over, whose
 * `state` renders the full state it left, and optionally `skipsPeriodicFullSync` and `close`.
 * Then one line in syncers.ts. Nothing else branches on the mode.
 */
import type { ProxyConfig } from '../model/types.js';
import type { ViewUpdate } from '../tracker/proxier-view.js';
import type { Family } from '../util/ip.js';
import type { MetricKey, ProxyMetrics } from './metrics.js';

/** A file of --rules-dir: a payload a sync handed over, or the full state it left. */
export interface SyncArtifact {
  /** File name suffix: "iptables-restore", "iptables-save", "ipvsadm", ... */
  readonly name: string;
  /** Rendered only when written (a 10k-service payload is megabytes). */
  text(): string;
}

export interface SyncRequest {
  /** What the trackers' pending changes made of the view. */
  readonly update: ViewUpdate;
  /** Write everything (at start, after a failure, after a node change, periodically). */
  readonly full: boolean;
  /** ms since the epoch. */
  readonly now: number;
  /** The ServiceCIDRs the agent knows (every family), when it watches them. */
  readonly serviceCIDRs?: readonly string[];
}

export interface SyncResult {
  /** false: the kernel refused the payload (nothing applied); the next sync is full. */
  readonly ok: boolean;
  readonly error?: string;
  readonly payload: readonly SyncArtifact[];
  /** One line for the log: what was written. */
  readonly summary: string;
  /** Payload size in bytes when the mode knows it without rendering (for reports). */
  readonly payloadBytes?: number;
  /** Service ports with a Local policy and no local endpoints, when the mode counts them. */
  readonly noLocalEndpoints?: { readonly internal: number; readonly external: number };
}

export interface FamilySyncer {
  sync(request: SyncRequest): Promise<SyncResult> | SyncResult;
  /** The full state the syncs left, as --rules-dir writes it after each sync. */
  state(): readonly SyncArtifact[];
  /** The periodic full sync is skipped (iptables in large-cluster mode). */
  skipsPeriodicFullSync?(): boolean;
}

/** A hook between computing a sync and handing it to the kernel: throwing makes the kernel refuse it (tests). */
export type KernelHook = (sync: { readonly family: Family; readonly full: boolean; readonly mode: string }) => void;

export interface SyncerContext {
  readonly family: Family;
  readonly metrics: ProxyMetrics;
  readonly config: () => ProxyConfig;
  /** kube-proxy's syncPeriod in ms (large-cluster mode's stale-chain cleanup waits this long). */
  readonly syncPeriodMs: number;
  /** Options of the mode (scheduler, compile options, the userspace proxy's backends, ...). */
  readonly options: AgentModeOptions;
  /** State shared by the families of one agent (IPVS: one kernel table; userspace: one proxy). */
  readonly shared: Map<string, unknown>;
  readonly kernelHook?: KernelHook;
  readonly log: (line: string) => void;
}

export interface AgentModeOptions {
  /** IPVS and userspace: instead of the configuration's ipvs.scheduler. */
  readonly scheduler?: string;
  /** iptables: add --random-fully to MASQUERADE (kube-proxy does when iptables supports it). */
  readonly randomFully?: boolean;
  /** iptables: the nfacct counters exist (default true). */
  readonly nfacct?: boolean;
  /** userspace: the proxy's settings and where endpoints' backends are. */
  readonly userspace?: UserspaceModeOptions;
}

export interface UserspaceModeOptions {
  /** Where an endpoint's backend listens; default: backend pods the agent starts itself. */
  readonly backendAddress?: (endpoint: string) => { address: string; port: number } | undefined;
  /** Bind ephemeral loopback ports instead of the services' own. */
  readonly ephemeralPorts?: boolean;
  readonly idleTimeoutMs?: number;
}

export interface ModeSyncer {
  readonly mode: string;
  /** The metrics this mode registers besides the common ones (kube-proxy's RegisterMetrics). */
  readonly metrics: readonly MetricKey[];
  create(context: SyncerContext): FamilySyncer;
  /** Stop what the mode runs (the userspace proxy); called once per agent. */
  close?(shared: Map<string, unknown>): Promise<void>;
}
