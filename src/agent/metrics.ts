/**
 * kube-proxy's metrics (pkg/proxy/metrics/metrics.go, subsystem "kubeproxy", all ALPHA) through
 * prom-client, with kube-proxy's names, types, help texts, labels and buckets: the ip_family
 * label ("IPv4"/"IPv6") where 1.33 and later have it, none on the change counters and pending
 * gauges. As in kube-proxy's RegisterMetrics, every mode registers the common metrics and each
 * mode adds its own (a mode's syncer lists them); metrics of other modes are kept but not served.
 * Process metrics (process_cpu_seconds_total, process_resident_memory_bytes, ...) come with them.
 *
 * Not served: iptables_ct_state_invalid_dropped_packets_total and
 * iptables_localhost_nodeports_accepted_packets_total, which read the kernel's nfacct counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/** ExponentialBuckets(0.001, 2, 15): 1 ms to 16.384 s, the three sync histograms'. */
export const SYNC_BUCKETS: readonly number[] = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);

/**
 * network_programming_duration_seconds: MergeBuckets(LinearBuckets(0.25, 0.25, 2),
 * LinearBuckets(1, 1, 59), LinearBuckets(60, 5, 12), LinearBuckets(120, 30, 7)), which starts
 * from a zero bound: 0, 0.25, 0.5, 1..59, 60..115 by 5, 120..300 by 30 (81 bounds).
 */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  ...linear(0.25, 0.25, 2),
  ...linear(1, 1, 59),
  ...linear(60, 5, 12),
  ...linear(120, 30, 7),
];

function linear(start: number, width: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i * width);
}

const FAMILY = ['ip_family'] as const;

/** Every metric kube-proxy defines, by the name its Go variable has. */
function defineMetrics() {
  return {
    syncProxyRulesLatency: new Histogram({ name: 'kubeproxy_sync_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds', labelNames: FAMILY, buckets: [...SYNC_BUCKETS], registers: [] }),
    syncFullProxyRulesLatency: new Histogram({ name: 'kubeproxy_sync_full_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds for full resyncs', labelNames: FAMILY, buckets: [...SYNC_BUCKETS], registers: [] }),
    syncPartialProxyRulesLatency: new Histogram({ name: 'kubeproxy_sync_partial_proxy_rules_duration_seconds', help: 'SyncProxyRules latency in seconds for partial resyncs', labelNames: FAMILY, buckets: [...SYNC_BUCKETS], registers: [] }),
    syncProxyRulesLastTimestamp: new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', help: 'The last time proxy rules were successfully synced', labelNames: FAMILY, registers: [] }),
    syncProxyRulesLastQueuedTimestamp: new Gauge({ name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', help: 'The last time a sync of proxy rules was queued', labelNames: FAMILY, registers: [] }),
    networkProgrammingLatency: new Histogram({ name: 'kubeproxy_network_programming_duration_seconds', help: 'In Cluster Network Programming Latency in seconds', labelNames: FAMILY, buckets: [...NETWORK_PROGRAMMING_BUCKETS], registers: [] }),
    endpointChangesPending: new Gauge({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_pending', help: 'Pending proxy rules Endpoint changes', registers: [] }),
    endpointChangesTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_endpoint_changes_total', help: 'Cumulative proxy rules Endpoint changes', registers: [] }),
    serviceChangesPending: new Gauge({ name: 'kubeproxy_sync_proxy_rules_service_changes_pending', help: 'Pending proxy rules Service changes', registers: [] }),
    serviceChangesTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_service_changes_total', help: 'Cumulative proxy rules Service changes', registers: [] }),
    iptablesRulesTotal: new Gauge({ name: 'kubeproxy_sync_proxy_rules_iptables_total', help: 'Total number of iptables rules owned by kube-proxy', labelNames: ['table', 'ip_family'] as const, registers: [] }),
    iptablesRulesLastSync: new Gauge({ name: 'kubeproxy_sync_proxy_rules_iptables_last', help: 'Number of iptables rules written by kube-proxy in last sync', labelNames: ['table', 'ip_family'] as const, registers: [] }),
    iptablesRestoreFailuresTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', help: 'Cumulative proxy iptables restore failures', labelNames: FAMILY, registers: [] }),
    iptablesPartialRestoreFailuresTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total', help: 'Cumulative proxy iptables partial restore failures', labelNames: FAMILY, registers: [] }),
    syncProxyRulesNoLocalEndpointsTotal: new Gauge({ name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', help: 'Number of services with a Local traffic policy and no endpoints', labelNames: ['traffic_policy', 'ip_family'] as const, registers: [] }),
    nftablesSyncFailuresTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total', help: 'Cumulative proxy nftables sync failures', labelNames: FAMILY, registers: [] }),
    nftablesCleanupFailuresTotal: new Counter({ name: 'kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total', help: 'Cumulative proxy nftables cleanup failures', labelNames: FAMILY, registers: [] }),
    proxyHealthzTotal: new Counter({ name: 'kubeproxy_proxy_healthz_total', help: 'Cumulative proxy healthz HTTP status', labelNames: ['code'] as const, registers: [] }),
    proxyLivezTotal: new Counter({ name: 'kubeproxy_proxy_livez_total', help: 'Cumulative proxy livez HTTP status', labelNames: ['code'] as const, registers: [] }),
  };
}

export type ProxyMetricSet = ReturnType<typeof defineMetrics>;
export type MetricKey = keyof ProxyMetricSet;

/** What every mode registers (RegisterMetrics' common part). */
export const COMMON_METRICS: readonly MetricKey[] = [
  'syncProxyRulesLatency', 'syncProxyRulesLastQueuedTimestamp', 'syncProxyRulesLastTimestamp',
  'endpointChangesPending', 'endpointChangesTotal', 'serviceChangesPending', 'serviceChangesTotal',
  'proxyHealthzTotal', 'proxyLivezTotal', 'networkProgrammingLatency', 'syncProxyRulesNoLocalEndpointsTotal',
];

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly m: ProxyMetricSet = defineMetrics();

  /** @param modeMetrics the metrics the proxy mode adds to the common ones. */
  constructor(modeMetrics: readonly MetricKey[], options: { processMetrics?: boolean } = {}) {
    for (const key of new Set([...COMMON_METRICS, ...modeMetrics])) this.registry.registerMetric(this.m[key] as Metric);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition text (text/plain; version=0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** "IPv4" / "IPv6": kube-proxy's ip_family label values. */
export function ipFamilyLabel(family: 4 | 6): 'IPv4' | 'IPv6' {
  return family === 4 ? 'IPv4' : 'IPv6';
}
