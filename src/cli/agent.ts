/**
 * `kpsim agent`: kube-proxy's sync loop on one node against a live API server (src/agent/),
 * with kube-proxy's own flag names where it has them:
 *
 *   kpsim agent --master http://127.0.0.1:8080 --hostname-override node-a --proxy-mode iptables --rules-dir rules.d
 *   kpsim agent --kubeconfig ~/.kube/config --config kube-proxy.yaml --once
 *
 * Runs until SIGINT or SIGTERM; with --once, makes the first sync(s) and exits (1 when a sync
 * failed). Logs go to standard error, one line per sync.
 */
import type { Command } from 'commander';
import { type AgentOptions, DEFAULT_HEALTHZ_BIND_ADDRESS, DEFAULT_METRICS_BIND_ADDRESS, ProxyAgent } from '../agent/agent.js';
import type { SyncEvent } from '../agent/proxier.js';
import { AGENT_MODES, isAgentMode } from '../agent/syncers.js';
import { KpsimError } from '../errors.js';
import { clusterFromManifests, readManifestTexts } from '../manifest/load.js';
import { parseGoDurationSeconds, defaultProxyConfig } from '../model/proxy-config.js';
import type { ProxyConfig } from '../model/types.js';
import { isSchedulerName } from '../ipvs/schedulers/registry.js';
import { schedulerNames } from '../ipvs/schedulers/types.js';
import { parseCIDR } from '../util/ip.js';
import { action, collect, parseIPFlag, printWarnings, usageError } from './common.js';
import { summaryOf } from './command-table.js';

interface AgentFlags {
  kubeconfig?: string;
  master?: string;
  server?: string;
  context?: string;
  hostnameOverride?: string;
  proxyMode?: string;
  config?: string;
  metricsBindAddress?: string;
  healthzBindAddress?: string;
  rulesDir?: string;
  once?: boolean;
  nodeIp?: string[];
  clusterCidr?: string;
  masqueradeAll?: boolean;
  ipvsScheduler?: string;
  iptablesSyncPeriod?: string;
  iptablesMinSyncPeriod?: string;
  ipvsSyncPeriod?: string;
  ipvsMinSyncPeriod?: string;
  ephemeralPorts?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description(summaryOf('agent'))
    .option('--kubeconfig <file>', 'the kubeconfig of the API server to watch (else KUBECONFIG, ~/.kube/config)')
    .option('--master <url>', 'the API server\'s URL (overrides the kubeconfig\'s; alone, plain http:// reads anonymously)')
    .option('--server <url>', 'the same as --master')
    .option('--context <name>', 'the kubeconfig context')
    .option('--hostname-override <name>', 'this node\'s name (default: the config\'s hostnameOverride, else the host name)')
    .option('--proxy-mode <mode>', `${AGENT_MODES.join(', ')} (default: the config's mode, else iptables)`)
    .option('--config <file>', 'a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1): mode, clusterCIDR, iptables/ipvs/nftables syncPeriod and minSyncPeriod, ...')
    .option('--metrics-bind-address <host:port>', 'where /metrics is served (empty: not at all)', DEFAULT_METRICS_BIND_ADDRESS)
    .option('--healthz-bind-address <host:port>', 'where /healthz and /livez are served (empty: not at all)', DEFAULT_HEALTHZ_BIND_ADDRESS)
    .option('--rules-dir <dir>', 'write each sync\'s payload and the full state it left into this folder')
    .option('--once', 'make the first sync(s), then exit (1 when one failed)')
    .option('--node-ip <ip>', 'this node\'s IP address, instead of its Node object\'s (repeatable)', collect)
    .option('--cluster-cidr <cidrs>', 'the pod CIDRs, comma-separated (the config\'s clusterCIDR)')
    .option('--masquerade-all', 'masquerade all traffic to service IPs')
    .option('--ipvs-scheduler <name>', `the IPVS scheduler (ipvs and userspace modes): ${schedulerNames.join(', ')}`)
    .option('--iptables-sync-period <duration>', 'iptables.syncPeriod, e.g. 30s')
    .option('--iptables-min-sync-period <duration>', 'iptables.minSyncPeriod, e.g. 1s (0s: sync as soon as a change comes)')
    .option('--ipvs-sync-period <duration>', 'ipvs.syncPeriod')
    .option('--ipvs-min-sync-period <duration>', 'ipvs.minSyncPeriod')
    .option('--ephemeral-ports', 'userspace mode: listen on ephemeral loopback ports instead of the services\' own')
    .option('-q, --quiet', 'log failures only')
    .option('--debug', 'print stack traces for errors')
    .action(action(async (flags: AgentFlags) => {
      await runAgent(flags);
    }));
}

async function readConfig(flags: AgentFlags): Promise<ProxyConfig> {
  if (flags.config === undefined) return defaultProxyConfig();
  const cluster = clusterFromManifests(await readManifestTexts([], flags.config));
  if (cluster.config.origin === undefined) throw new KpsimError('KPSIM_ERR_MANIFEST_SHAPE', '--config: holds no KubeProxyConfiguration', { file: flags.config });
  if (!flags.quiet) printWarnings(cluster.warnings);
  return cluster.config;
}

function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = parseGoDurationSeconds(text);
  if (seconds === undefined) throw usageError(flag, `${JSON.stringify(text)} is not a duration such as "30s" or "500ms"`);
  return seconds;
}

/** The flags as agent options (usage errors name the flag). */
export async function agentOptionsOf(flags: AgentFlags): Promise<AgentOptions> {
  if (flags.master !== undefined && flags.server !== undefined && flags.master !== flags.server) throw usageError('--master', 'give --master or --server, not both');
  const config = await readConfig(flags);
  const mode = flags.proxyMode ?? (isAgentMode(config.mode) ? config.mode : 'iptables');
  if (!isAgentMode(mode)) throw usageError('--proxy-mode', `${JSON.stringify(mode)} is not one of ${AGENT_MODES.join(', ')}`);
  if (flags.clusterCidr !== undefined) {
    config.clusterCIDRs = flags.clusterCidr.split(',').map((text) => {
      const cidr = parseCIDR(text.trim());
      if (!cidr) throw usageError('--cluster-cidr', `${JSON.stringify(text)} is not a CIDR`);
      return cidr.text;
    });
  }
  if (flags.masqueradeAll) config.masqueradeAll = true;
  for (const [section, sync, minSync] of [['iptables', flags.iptablesSyncPeriod, flags.iptablesMinSyncPeriod], ['ipvs', flags.ipvsSyncPeriod, flags.ipvsMinSyncPeriod]] as const) {
    const s = duration(`--${section}-sync-period`, sync);
    const m = duration(`--${section}-min-sync-period`, minSync);
    if (s !== undefined) {
      if (s <= 0) throw usageError(`--${section}-sync-period`, 'must be more than 0');
      config.syncPeriods[section].syncPeriodSeconds = s;
    }
    if (m !== undefined) config.syncPeriods[section].minSyncPeriodSeconds = m;
  }
  if (flags.ipvsScheduler !== undefined && !isSchedulerName(flags.ipvsScheduler)) {
    throw usageError('--ipvs-scheduler', `${JSON.stringify(flags.ipvsScheduler)} is not an IPVS scheduler: ${schedulerNames.join(', ')}`);
  }
  const server = flags.master ?? flags.server;
  const bind = (text: string | undefined, fallback: string): string | false => (text === undefined ? fallback : text === '' ? false : text);
  return {
    mode,
    source: {
      ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
      ...(flags.context !== undefined ? { context: flags.context } : {}),
      ...(server !== undefined ? { server } : {}),
    },
    ...(flags.hostnameOverride !== undefined ? { nodeName: flags.hostnameOverride } : {}),
    ...(flags.nodeIp !== undefined ? { nodeIPs: flags.nodeIp.map((ip) => parseIPFlag('--node-ip', ip)) } : {}),
    config,
    metricsBindAddress: bind(flags.metricsBindAddress, DEFAULT_METRICS_BIND_ADDRESS),
    healthzBindAddress: bind(flags.healthzBindAddress, DEFAULT_HEALTHZ_BIND_ADDRESS),
    ...(flags.rulesDir !== undefined ? { rulesDir: flags.rulesDir } : {}),
    modeOptions: {
      ...(flags.ipvsScheduler !== undefined ? { scheduler: flags.ipvsScheduler } : {}),
      userspace: { ...(flags.ephemeralPorts ? { ephemeralPorts: true } : {}) },
    },
  };
}

async function runAgent(flags: AgentFlags): Promise<void> {
  const options = await agentOptionsOf(flags);
  const failures: SyncEvent[] = [];
  const log = (line: string): void => {
    if (!flags.quiet || /fail|cannot|skipping/i.test(line)) process.stderr.write(`kpsim agent: ${line}\n`);
  };
  // Listen for the signals before anything starts, so that one arriving early still stops cleanly.
  let stop: () => void = () => {};
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    stop = () => onSignal('SIGTERM');
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const agent = await ProxyAgent.start({ ...options, log, onSync: (e) => { if (!e.ok) failures.push(e); } });
  const where = [
    agent.metricsAddress !== undefined ? `metrics on http://${agent.metricsAddress}/metrics` : undefined,
    agent.healthzAddress !== undefined ? `health on http://${agent.healthzAddress}/healthz` : undefined,
  ].filter((w) => w !== undefined).join(', ');
  if (flags.once) {
    stop();
    await agent.stop();
    if (failures.length > 0) throw new KpsimError('KPSIM_ERR_AGENT_SYNC', `the first sync failed: ${failures[0]!.error ?? 'unknown error'}`);
    process.stdout.write(`kpsim agent: node ${agent.nodeName}, ${agent.mode} mode: synced IPv${agent.families.join(' and IPv')} once${options.rulesDir !== undefined ? `; rules in ${options.rulesDir}` : ''}\n`);
    return;
  }
  process.stdout.write(`kpsim agent: node ${agent.nodeName}, ${agent.mode} mode, syncing IPv${agent.families.join(' and IPv')}${where === '' ? '' : `; ${where}`} (Ctrl-C stops it)\n`);
  const signal = await stopped;
  await agent.stop();
  process.stdout.write(`kpsim agent: ${signal}: stopped\n`);
}
