/**
 * kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration: the fields kpsim honours, with
 * kube-proxy's defaults (pkg/proxy/apis/config/v1alpha1/defaults.go).
 */
import { child, type FieldReader, type JsonObject } from './fields.js';
import type { ProxyConfig, ProxyMode } from './types.js';

const MODES: readonly ProxyMode[] = ['iptables', 'ipvs', 'nftables', 'userspace'];
const DETECT_LOCAL_MODES = ['ClusterCIDR', 'NodeCIDR', 'BridgeInterface', 'InterfaceNamePrefix'] as const;

export function defaultProxyConfig(): ProxyConfig {
  return {
    mode: 'iptables',
    clusterCIDRs: [],
    detectLocalMode: 'ClusterCIDR',
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    tcpBeLiberal: false,
    ipvsScheduler: '',
    ipvsStrictARP: false,
    ipvsTCPTimeoutSeconds: 0,
    ipvsTCPFinTimeoutSeconds: 0,
    ipvsUDPTimeoutSeconds: 0,
    udpIdleTimeoutSeconds: 0.25,
    nodePortAddresses: [],
    hostnameOverride: '',
    featureGates: {},
    syncPeriods: {
      iptables: { syncPeriodSeconds: 30, minSyncPeriodSeconds: 1 },
      ipvs: { syncPeriodSeconds: 30, minSyncPeriodSeconds: 0 },
      nftables: { syncPeriodSeconds: 30, minSyncPeriodSeconds: 1 },
    },
  };
}

/** Go duration text ("900s", "15m", "1h30m") → seconds; undefined when not that form. */
export function parseGoDurationSeconds(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number.parseFloat(m[1]!) * units[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? total : undefined;
}

export function decodeProxyConfig(doc: JsonObject, r: FieldReader): ProxyConfig {
  r.object = 'KubeProxyConfiguration';
  const config: ProxyConfig = { ...defaultProxyConfig(), origin: { file: r.file, object: r.object } };
  const mode = r.string(doc, 'mode', '');
  if (mode !== undefined && mode !== '') config.mode = r.oneOf(doc, 'mode', '', MODES, 'iptables');
  const clusterCIDR = r.string(doc, 'clusterCIDR', '');
  if (clusterCIDR !== undefined) {
    config.clusterCIDRs = clusterCIDR
      .split(',')
      .map((c) => c.trim())
      .filter((c) => c !== '')
      .map((c) => r.cidr(c, 'clusterCIDR'))
      .filter((c): c is string => c !== undefined);
  }
  config.detectLocalMode = r.oneOf(doc, 'detectLocalMode', '', DETECT_LOCAL_MODES, 'ClusterCIDR');
  const iptables = r.object_(doc, 'iptables', '') ?? {};
  config.masqueradeAll = r.boolean(iptables, 'masqueradeAll', 'iptables') ?? false;
  config.masqueradeBit = r.integer(iptables, 'masqueradeBit', 'iptables', 0, 31) ?? 14;
  config.localhostNodePorts = r.boolean(iptables, 'localhostNodePorts', 'iptables') ?? true;
  const conntrack = r.object_(doc, 'conntrack', '') ?? {};
  config.tcpBeLiberal = r.boolean(conntrack, 'tcpBeLiberal', 'conntrack') ?? false;
  const ipvs = r.object_(doc, 'ipvs', '') ?? {};
  config.ipvsScheduler = r.string(ipvs, 'scheduler', 'ipvs') ?? '';
  config.ipvsStrictARP = r.boolean(ipvs, 'strictARP', 'ipvs') ?? false;
  config.ipvsTCPTimeoutSeconds = readDuration(ipvs, 'ipvs', 'tcpTimeout', r);
  config.ipvsTCPFinTimeoutSeconds = readDuration(ipvs, 'ipvs', 'tcpFinTimeout', r);
  config.ipvsUDPTimeoutSeconds = readDuration(ipvs, 'ipvs', 'udpTimeout', r);
  const nftables = r.object_(doc, 'nftables', '') ?? {};
  for (const [section, values] of [['iptables', iptables], ['ipvs', ipvs], ['nftables', nftables]] as const) {
    // An unset (or zero) period keeps kube-proxy's default, as its defaulting does.
    const sync = readDuration(values, section, 'syncPeriod', r);
    const minSync = readDuration(values, section, 'minSyncPeriod', r);
    if (sync > 0) config.syncPeriods[section].syncPeriodSeconds = sync;
    if (minSync > 0) config.syncPeriods[section].minSyncPeriodSeconds = minSync;
  }
  // userspace mode's udpIdleTimeout (v1alpha1 until kube-proxy 1.26): must be greater than 0.
  const udpIdleText = doc['udpIdleTimeout'];
  const udpIdle = readDuration(doc, '', 'udpIdleTimeout', r);
  if (udpIdle > 0) config.udpIdleTimeoutSeconds = udpIdle;
  else if (typeof udpIdleText === 'string' && parseGoDurationSeconds(udpIdleText) === 0) {
    r.fail('KPSIM_ERR_CONFIG_BAD_FIELD', 'udpIdleTimeout', `${JSON.stringify(udpIdleText)}: must be greater than 0`);
  }
  config.nodePortAddresses = r
    .list(doc, 'nodePortAddresses', '')
    .map((a, i) => (a === 'primary' ? 'primary' : r.cidr(a, child('nodePortAddresses', i))))
    .filter((a): a is string => a !== undefined);
  config.hostnameOverride = r.string(doc, 'hostnameOverride', '') ?? '';
  const gates = r.object_(doc, 'featureGates', '') ?? {};
  for (const [name, value] of Object.entries(gates)) {
    if (typeof value === 'boolean') config.featureGates[name] = value;
    else r.fail('KPSIM_ERR_CONFIG_BAD_FIELD', child('featureGates', name), `${JSON.stringify(value)} is not true or false`);
  }
  if (config.featureGates['LoadBalancerIPMode'] === false) {
    // GA and locked to true in 1.32: only kube-proxy 1.30 and 1.31 accept the gate off.
    r.warn(child('featureGates', 'LoadBalancerIPMode'), 'kube-proxy 1.32 and later refuse to start with this gate off (1.30 and 1.31 accept it); kpsim compiles as those would: load-balancer ingress IPs with ipMode Proxy get rules too');
  }
  return config;
}

/** A duration field of `section` ('' for a top-level field), in seconds; 0 when unset. */
function readDuration(parent: JsonObject, section: string, key: string, r: FieldReader): number {
  const value = parent[key];
  if (value === undefined || value === null) return 0;
  const seconds = typeof value === 'string' ? parseGoDurationSeconds(value) : undefined;
  if (seconds === undefined) {
    r.fail('KPSIM_ERR_CONFIG_BAD_FIELD', section === '' ? key : child(section, key), `${JSON.stringify(value)} is not a duration such as "900s" or "15m"`);
    return 0;
  }
  return seconds;
}
