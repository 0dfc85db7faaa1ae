/**
 * `kpsim agent`: kube-proxy's control loop on one node, against a live API server.
 *
 * Start-up, as kube-proxy's: the metrics and health servers; the node's own Node object (its
 * addresses and labels, unless --node-ip gives the addresses); then the Services and
 * EndpointSlices informers (src/agent/informers.ts). Once both have synced, one proxier per IP
 * family (proxier.ts) makes a full sync and starts its runner; a family no Service, node address
 * or configured CIDR uses yet is started when the first Service of it appears.
 *
 * Informer events are decoded as files are (src/manifest/decode.ts); an object kpsim cannot
 * read is logged with its name and skipped (an update keeps the last good version, so the rest
 * keeps working), and the others are synced. Node label changes re-categorise every endpoint in
 * a full sync (topology). The mode's work is its syncer's (syncers.ts); everything else here is
 * the same for every mode.
 */
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import { decodeObject } from '../manifest/decode.js';
import { isObject, type JsonObject } from '../model/fields.js';
import { nodeIPs as nodeObjectIPs } from '../model/node.js';
import { defaultProxyConfig } from '../model/proxy-config.js';
import type { EndpointSlice, ProxyConfig, Service } from '../model/types.js';
import { type LiveSourceOptions, resolveKubeConfig } from '../source/kubeconfig.js';
import { type ProxierNodeContext, type ResolvedNode, proxierNodeContext } from '../tracker/proxier-state.js';
import { type Family, ipFamily, normalizeIP, parseCIDR } from '../util/ip.js';
import { type NodeStatus, ProxyHealth, type RunningServer, startHealthServer, startMetricsServer } from './healthz.js';
import { type InformerHandlers, type ProxyInformers, proxyInformers } from './informers.js';
import { ProxyMetrics } from './metrics.js';
import { FamilyProxier, type SyncEvent } from './proxier.js';
import { RulesDir } from './rules-dir.js';
import { type RunnerTimers, realTimers } from './runner.js';
import type { AgentModeOptions, KernelHook, ModeSyncer } from './syncer.js';
import { modeSyncer } from './syncers.js';
import { userspaceProxyOf } from './syncers/userspace.js';
import type { UserspaceProxy } from '../proxy/proxy.js';

export const DEFAULT_METRICS_BIND_ADDRESS = '127.0.0.1:10249';
export const DEFAULT_HEALTHZ_BIND_ADDRESS = '127.0.0.1:10256';

/** The EndpointSlice controller's stamp of the change that caused an update (RFC 3339 with nanoseconds). */
export const LAST_CHANGE_TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';

export interface AgentOptions {
  /** --proxy-mode: iptables, ipvs, userspace (the syncers' table). */
  readonly mode: string;
  /** --kubeconfig / --master (--server): which API server. Or a ready client configuration. */
  readonly source: LiveSourceOptions | { kubeConfig: KubeConfig; server: string };
  /** --hostname-override; default the configuration's hostnameOverride, else the host name. */
  readonly nodeName?: string;
  /** --node-ip: instead of the Node object's addresses. */
  readonly nodeIPs?: readonly string[];
  /** --config's KubeProxyConfiguration (defaults otherwise). */
  readonly config?: ProxyConfig;
  /** host:port, or false for none. */
  readonly metricsBindAddress?: string | false;
  readonly healthzBindAddress?: string | false;
  readonly rulesDir?: string;
  readonly modeOptions?: AgentModeOptions;
  readonly log?: (line: string) => void;
  /** Wall clock in ms (default Date.now). */
  readonly now?: () => number;
  readonly timers?: RunnerTimers;
  /** Called before each sync reaches the kernel; a throw makes the kernel refuse it (tests). */
  readonly kernelHook?: KernelHook;
  /** Serve process metrics too (default true). */
  readonly processMetrics?: boolean;
  /** Called after every sync, the first ones included. */
  readonly onSync?: (event: SyncEvent) => void;
}

type SyncListener = (event: SyncEvent) => void;

export class ProxyAgent {
  readonly metrics: ProxyMetrics;
  readonly health: ProxyHealth;
  readonly nodeName: string;
  readonly mode: string;
  /** Where the metrics and health servers listen (when they do). */
  metricsAddress: string | undefined;
  healthzAddress: string | undefined;
  readonly #o: AgentOptions;
  readonly #syncer: ModeSyncer;
  readonly #config: ProxyConfig;
  readonly #log: (line: string) => void;
  readonly #now: () => number;
  readonly #timers: RunnerTimers;
  readonly #shared = new Map<string, unknown>();
  readonly #proxiers = new Map<Family, FamilyProxier>();
  readonly #listeners = new Set<SyncListener>();
  readonly #services = new Map<string, Service>();
  readonly #slices = new Map<string, EndpointSlice>();
  readonly #servers: RunningServer[] = [];
  #informers: ProxyInformers | undefined;
  /** ServiceCIDR objects' CIDRs, by object name. */
  readonly #serviceCIDRs = new Map<string, readonly string[]>();
  #rulesDir: RulesDir | undefined;
  #node: ResolvedNode | undefined;
  #nodeStatus: NodeStatus | undefined;
  #synced = false;
  #seq = 0;
  #stopped = false;
  #writing: Promise<void> = Promise.resolve();

  private constructor(options: AgentOptions) {
    this.#o = options;
    this.#syncer = modeSyncer(options.mode);
    this.mode = options.mode;
    this.#config = options.config ?? defaultProxyConfig();
    this.#log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? realTimers;
    this.nodeName = options.nodeName ?? (this.#config.hostnameOverride || hostname().toLowerCase());
    this.metrics = new ProxyMetrics(this.#syncer.metrics, { processMetrics: options.processMetrics ?? true });
    this.health = new ProxyHealth(2 * this.#periods().syncPeriodSeconds * 1000, this.#now, () => this.#nodeStatus);
    if (options.onSync !== undefined) this.#listeners.add(options.onSync);
  }

  /** Start serving, watch the API server, and make the first syncs (resolves once they are done). */
  static async start(options: AgentOptions): Promise<ProxyAgent> {
    const agent = new ProxyAgent(options);
    try {
      await agent.#start();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  /** Called after every sync (the first ones included, if registered before start resolves). */
  onSync(listener: SyncListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The proxier of one family, once started. */
  proxier(family: Family): FamilyProxier | undefined {
    const proxier = this.#proxiers.get(family);
    return proxier?.initialized ? proxier : undefined;
  }

  get families(): Family[] {
    return [...this.#proxiers.values()].filter((p) => p.initialized).map((p) => p.family);
  }

  /** The running userspace proxy (userspace mode). */
  userspaceProxy(): Promise<UserspaceProxy | undefined> {
    return userspaceProxyOf(this.#shared);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const proxier of this.#proxiers.values()) proxier.stop();
    const informers = this.#informers;
    if (informers) await Promise.all([informers.services.stop(), informers.endpointSlices.stop(), informers.node.stop(), informers.serviceCIDRs.stop()]);
    await this.#writing;
    await Promise.all(this.#servers.map((s) => s.close()));
    await this.#syncer.close?.(this.#shared);
  }

  #periods(): { syncPeriodSeconds: number; minSyncPeriodSeconds: number } {
    const mode = this.#o.mode;
    return this.#config.syncPeriods[mode === 'ipvs' || mode === 'nftables' ? mode : 'iptables'];
  }

  async #start(): Promise<void> {
    const { kubeConfig, server } = 'kubeConfig' in this.#o.source ? this.#o.source : resolveKubeConfig(this.#o.source);
    if (this.#o.rulesDir !== undefined) this.#rulesDir = await RulesDir.open(this.#o.rulesDir);
    const metricsAt = this.#o.metricsBindAddress ?? DEFAULT_METRICS_BIND_ADDRESS;
    const healthzAt = this.#o.healthzBindAddress ?? DEFAULT_HEALTHZ_BIND_ADDRESS;
    if (metricsAt !== false) {
      const s = await startMetricsServer(metricsAt, this.metrics, this.mode);
      this.#servers.push(s);
      this.metricsAddress = s.address;
    }
    if (healthzAt !== false) {
      const s = await startHealthServer(healthzAt, this.health, this.metrics);
      this.#servers.push(s);
      this.healthzAddress = s.address;
    }

    const informerOptions = { log: this.#log, timers: this.#timers, server };
    this.#informers = proxyInformers(kubeConfig, this.nodeName, { services: this.#serviceHandlers(), endpointSlices: this.#sliceHandlers(), node: this.#nodeHandlers(), serviceCIDRs: this.#serviceCIDRHandlers() }, informerOptions);
    await this.#informers.node.start();
    if (this.#stopped) return;
    const node = this.#resolveNode();
    this.#node = node;
    const periods = this.#periods();
    const startedAt = this.#now();
    for (const family of [4, 6] as const) {
      this.#proxiers.set(family, new FamilyProxier({
        family,
        context: proxierNodeContext(this.#config, node, family),
        syncer: this.#syncer.create({
          family,
          metrics: this.metrics,
          config: () => this.#config,
          syncPeriodMs: periods.syncPeriodSeconds * 1000,
          options: this.#o.modeOptions ?? {},
          shared: this.#shared,
          ...(this.#o.kernelHook !== undefined ? { kernelHook: this.#o.kernelHook } : {}),
          log: this.#log,
        }),
        metrics: this.metrics,
        health: this.health,
        minSyncPeriodMs: periods.minSyncPeriodSeconds * 1000,
        syncPeriodMs: periods.syncPeriodSeconds * 1000,
        timers: this.#timers,
        now: this.#now,
        monotonic: () => performance.now(),
        startedAt,
        nextSeq: () => ++this.#seq,
        onSync: (event) => this.#synced_(event),
        serviceCIDRs: () => this.#allServiceCIDRs(),
        log: this.#log,
      }));
    }
    // The ServiceCIDRs are listed before the first sync too, so that it has them (nftables mode's cluster-ips-check).
    await Promise.all([this.#informers.services.start(), this.#informers.endpointSlices.start(), this.#informers.serviceCIDRs.start()]);
    if (this.#stopped) return;
    this.#synced = true;
    const families = this.#familiesInUse();
    this.#log(`node ${node.name} (${node.ips.join(', ') || 'no addresses'}): ${this.mode} mode, IPv${families.join(' and IPv')}; ${this.#services.size} Services, ${this.#slices.size} EndpointSlices`);
    await Promise.all(families.map((family) => this.#proxiers.get(family)!.initialize()));
  }

  /** Every family the node, the configuration or a Service uses (familiesInUse's rule). */
  #familiesInUse(): Family[] {
    const families = new Set<Family>();
    const node = this.#node!;
    for (const ip of node.ips) families.add(ipFamily(ip)!);
    for (const text of [...this.#config.clusterCIDRs, ...this.#config.nodePortAddresses, ...node.podCIDRs]) {
      const cidr = parseCIDR(text);
      if (cidr) families.add(cidr.family);
    }
    for (const svc of this.#services.values()) for (const ip of svc.clusterIPs) families.add(ipFamily(ip)!);
    if (families.size === 0) families.add(4);
    return [...families].sort();
  }

  #resolveNode(): ResolvedNode {
    const name = this.nodeName;
    const raw = this.#nodeJSON;
    const decoded = raw !== undefined ? decodeObject(raw, 'node').nodes[0] : undefined;
    let ips: string[];
    if (this.#o.nodeIPs !== undefined && this.#o.nodeIPs.length > 0) {
      ips = this.#o.nodeIPs.map((ip) => normalizeIP(ip) ?? ip);
    } else {
      ips = decoded !== undefined ? nodeObjectIPs(decoded) : [];
      if (decoded === undefined) this.#log(`no Node object named ${name}: the node's addresses are unknown (give --node-ip); only loopback counts as local`);
    }
    return { name, ips, labels: decoded?.labels ?? {}, podCIDRs: decoded?.podCIDRs ?? [], warnings: [] };
  }

  #nodeJSON: JsonObject | undefined;

  /**
   * OnServiceCIDRsChanged: the proxiers get every ServiceCIDR's CIDRs; as in kube-proxy, they
   * are used from the next full sync on (nftables mode's "Drop traffic to unallocated
   * ClusterIPs" rule is written by setup), not synced for.
   */
  #serviceCIDRHandlers(): InformerHandlers {
    const put = (obj: JsonObject): void => {
      const out = decodeObject(obj, 'api');
      if (out.problems.length > 0) {
        this.#log(`skipping ServiceCIDR ${keyOf(obj)}: kpsim cannot read it (${out.problems.map((p) => p.message).join('; ')})`);
        return;
      }
      this.#serviceCIDRs.set(keyOf(obj), out.serviceCIDRs);
    };
    return { add: put, update: put, delete: (obj) => this.#serviceCIDRs.delete(keyOf(obj)) };
  }

  /** Every ServiceCIDR's CIDRs, each once, in name order of their objects. */
  #allServiceCIDRs(): string[] {
    return [...new Set([...this.#serviceCIDRs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).flatMap(([, cidrs]) => cidrs))];
  }

  #nodeHandlers(): InformerHandlers {
    const set = (obj: JsonObject | undefined): void => {
      this.#nodeJSON = obj;
      this.#nodeStatus = obj === undefined ? undefined : nodeStatusOf(obj);
      if (this.#node === undefined) return;
      const labels = obj !== undefined ? (decodeObject(obj, 'node').nodes[0]?.labels ?? {}) : {};
      if (sameLabels(labels, this.#node.labels)) return;
      this.#node = { ...this.#node, labels };
      this.#log(`node ${this.nodeName}: labels changed; next sync is full`);
      for (const proxier of this.#proxiers.values()) proxier.nodeChanged(this.#contextOf(proxier.family));
    };
    return { add: set, update: set, delete: () => set(undefined) };
  }

  #contextOf(family: Family): ProxierNodeContext {
    return proxierNodeContext(this.#config, this.#node!, family);
  }

  #serviceHandlers(): InformerHandlers {
    const put = (obj: JsonObject): void => {
      const key = keyOf(obj);
      const out = decodeObject(obj, 'api');
      const svc = out.services[0];
      if (svc === undefined || out.problems.length > 0) {
        this.#skip('Service', key, out.problems.map((p) => p.message));
        return;
      }
      const previous = this.#services.get(key);
      this.#services.set(key, svc);
      for (const proxier of this.#proxiers.values()) proxier.serviceUpdate(previous, svc);
      this.#activateFamiliesOf(svc);
    };
    return {
      add: put,
      update: put,
      delete: (obj) => {
        const key = keyOf(obj);
        const previous = this.#services.get(key);
        if (previous === undefined) return;
        this.#services.delete(key);
        for (const proxier of this.#proxiers.values()) proxier.serviceUpdate(previous, undefined);
      },
    };
  }

  #sliceHandlers(): InformerHandlers {
    const put = (obj: JsonObject): void => {
      const key = keyOf(obj);
      const out = decodeObject(obj, 'api');
      const slice = out.endpointSlices[0];
      if (slice === undefined || out.problems.length > 0) {
        this.#skip('EndpointSlice', key, out.problems.map((p) => p.message));
        return;
      }
      this.#slices.set(key, slice);
      const trigger = triggerTimeOf(obj);
      for (const proxier of this.#proxiers.values()) proxier.endpointSliceUpdate(slice, false, trigger);
    };
    return {
      add: put,
      update: put,
      delete: (obj) => {
        const key = keyOf(obj);
        const previous = this.#slices.get(key);
        if (previous === undefined) return;
        this.#slices.delete(key);
        for (const proxier of this.#proxiers.values()) proxier.endpointSliceUpdate(previous, true, undefined);
      },
    };
  }

  #skip(kind: string, key: string, problems: readonly string[]): void {
    this.#log(`skipping ${kind} ${key}: kpsim cannot read it (${problems.join('; ') || 'not a valid object'}); ${this.#services.has(key) || this.#slices.has(key) ? 'keeping its last good version' : 'the rest is synced'}`);
  }

  /** A Service of a family no proxier runs for yet: start that family's proxier. */
  #activateFamiliesOf(svc: Service): void {
    if (!this.#synced) return;
    for (const ip of svc.clusterIPs) {
      const proxier = this.#proxiers.get(ipFamily(ip)!);
      if (proxier === undefined || proxier.initialized) continue;
      this.#log(`IPv${proxier.family} Service ${svc.namespace}/${svc.name}: starting the IPv${proxier.family} proxier`);
      void proxier.initialize();
    }
  }

  async #synced_(event: SyncEvent): Promise<void> {
    this.#log(`IPv${event.family} ${event.full ? 'full' : 'partial'} sync #${event.seq} ${event.ok ? 'done' : 'FAILED'} in ${event.durationMs.toFixed(1)} ms: ${event.summary}${event.updatedServices.length > 0 ? ` (changed: ${event.updatedServices.slice(0, 5).join(', ')}${event.updatedServices.length > 5 ? ', ...' : ''})` : ''}`);
    if (this.#rulesDir !== undefined) {
      const dir = this.#rulesDir;
      const write = this.#writing.then(() => dir.write(event));
      this.#writing = write.catch((e: unknown) => this.#log((e as Error).message));
      await this.#writing;
    }
    for (const listener of this.#listeners) listener(event);
  }
}

function keyOf(obj: JsonObject): string {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const ns = typeof meta['namespace'] === 'string' ? meta['namespace'] : '';
  const name = typeof meta['name'] === 'string' ? meta['name'] : '';
  return ns === '' ? name : `${ns}/${name}`;
}

/** The slice's last-change-trigger-time annotation in ms; undefined when absent or not a time. */
export function triggerTimeOf(obj: JsonObject): number | undefined {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const annotations = isObject(meta['annotations']) ? meta['annotations'] : {};
  const text = annotations[LAST_CHANGE_TRIGGER_TIME];
  if (typeof text !== 'string') return undefined;
  // Date.parse reads RFC 3339 up to milliseconds; cut finer digits first.
  const ms = Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(ms) ? ms : undefined;
}

function nodeStatusOf(obj: JsonObject): NodeStatus {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const spec = isObject(obj['spec']) ? obj['spec'] : {};
  const taints = Array.isArray(spec['taints']) ? spec['taints'] : [];
  return {
    deleting: typeof meta['deletionTimestamp'] === 'string' && meta['deletionTimestamp'] !== '',
    taintKeys: taints.flatMap((t) => (isObject(t) && typeof t['key'] === 'string' ? [t['key']] : [])),
  };
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
