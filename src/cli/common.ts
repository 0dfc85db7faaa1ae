/**
 * What every command shares: the cluster options (-f, --config, --node, ...), flag parsing that
 * fails as a usage error naming the flag, warnings on stderr, and the exit-code contract:
 * 0 done, 1 bad input, 2 bad usage; a stack trace only with --debug.
 */
import { type Command, Option } from 'commander';
import { KpsimError } from '../errors.js';
import { reportError } from './report.js';
import { loadCluster } from '../manifest/load.js';
import type { Cluster, Warning } from '../model/types.js';
import { type ResolvedNode, buildProxierStates, resolveNode } from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import { type Family, normalizeIP, parseCIDR } from '../util/ip.js';

export { EXIT_INPUT, EXIT_USAGE, reportError } from './report.js';

export interface ClusterOptions {
  file?: string[];
  config?: string;
  node?: string;
  nodeIp?: string[];
  clusterCidr?: string;
  masqueradeAll?: boolean;
  allocate?: boolean;
  serviceClusterIpRange?: string;
  serviceNodePortRange?: string;
  debug?: boolean;
  quiet?: boolean;
}

/** Commander's reducer for a repeatable flag: every value, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** -f PATH... and the options that choose the node and adjust kube-proxy's configuration. */
export function addClusterOptions(cmd: Command, { required = true }: { required?: boolean } = {}): Command {
  const file = new Option('-f, --file <path...>', 'manifest files or folders (YAML or JSON: Service, EndpointSlice, Endpoints, Node, KubeProxyConfiguration)');
  if (required) file.makeOptionMandatory();
  return cmd
    .addOption(file)
    .option('--config <file>', 'a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1)')
    .option('--node <name>', "the node whose point of view to take (default: the config's hostnameOverride, else the first Node)")
    .option('--node-ip <ip>', "the node's IP address, instead of its Node object's (repeatable)", collect)
    .option('--cluster-cidr <cidrs>', 'pod CIDRs, comma-separated (overrides the config\'s clusterCIDR)')
    .option('--masquerade-all', 'masquerade all traffic to service IPs (iptables.masqueradeAll)')
    .option('--allocate', 'fill in protocols, ClusterIPs and node ports as the API server would')
    .option('--service-cluster-ip-range <cidrs>', 'service CIDRs, one per family, for --allocate and for checking ClusterIPs')
    .option('--service-node-port-range <range>', 'node-port range for --allocate and for warnings', '30000-32767')
    .option('-q, --quiet', 'do not print warnings')
    .option('--debug', 'print stack traces for errors');
}

export interface LoadedCluster {
  cluster: Cluster;
  node: ResolvedNode;
  /** One per IP family in use, IPv4 first. */
  states: ProxierState[];
}

/** Load the cluster the options name, apply the flag overrides, and print the warnings. */
export async function loadClusterFromOptions(opts: ClusterOptions): Promise<LoadedCluster> {
  const cluster = await loadClusterWithOverrides(opts);
  const node = resolveNode(cluster, { ...(opts.node !== undefined ? { node: opts.node } : {}), ...(opts.nodeIp ? { nodeIPs: opts.nodeIp } : {}) });
  if (!opts.quiet) printWarnings([...cluster.warnings, ...node.warnings]);
  return { cluster, node, states: buildProxierStates(cluster, node) };
}

/** The cluster the options name, with the flag overrides applied (no node chosen, nothing printed). */
export async function loadClusterWithOverrides(opts: ClusterOptions): Promise<Cluster> {
  const cluster = await loadCluster(opts.file ?? [], {
    ...(opts.config !== undefined ? { config: opts.config } : {}),
    allocate: opts.allocate ?? false,
    ...(opts.serviceClusterIpRange !== undefined ? { serviceClusterIPRange: opts.serviceClusterIpRange } : {}),
    ...(opts.serviceNodePortRange !== undefined ? { serviceNodePortRange: opts.serviceNodePortRange } : {}),
  });
  applyConfigOverrides(cluster, opts);
  return cluster;
}

function applyConfigOverrides(cluster: Cluster, opts: ClusterOptions): void {
  if (opts.clusterCidr !== undefined) {
    cluster.config.clusterCIDRs = opts.clusterCidr.split(',').map((text) => {
      const cidr = parseCIDR(text.trim());
      if (!cidr) throw usageError('--cluster-cidr', `${JSON.stringify(text)} is not a CIDR`);
      return cidr.text;
    });
  }
  if (opts.masqueradeAll) cluster.config.masqueradeAll = true;
}

export function printWarnings(warnings: readonly Warning[]): void {
  for (const w of warnings) {
    const where = [w.file, w.object, w.path].filter((p) => p !== undefined && p !== '').join(': ');
    process.stderr.write(`warning: ${where === '' ? '' : `${where}: `}${w.message}\n`);
  }
}

export function usageError(flag: string, detail: string): KpsimError {
  return new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${detail}`);
}

/** A port flag: a whole number 1-65535, else a usage error naming the flag. */
export function parsePortFlag(flag: string, value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw usageError(flag, `${JSON.stringify(value)} is not a port (1-65535)`);
  return Number(value);
}

export function parseIntegerFlag(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw usageError(flag, `${JSON.stringify(value)} is not a whole number${max === Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ` from ${min} to ${max}`}`);
  }
  return Number(value);
}

export function parseNumberFlag(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min) throw usageError(flag, `${JSON.stringify(value)} is not a number >= ${min}`);
  return n;
}

export function parseIPFlag(flag: string, value: string): string {
  const ip = normalizeIP(value);
  if (ip === undefined) throw usageError(flag, `${JSON.stringify(value)} is not an IP address`);
  return ip;
}

export function parseChoiceFlag<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) throw usageError(flag, `${JSON.stringify(value)} is not one of ${choices.join(', ')}`);
  return value as T;
}

/** The proxier state of one family, or a usage error when the cluster has none of it. */
export function stateForFamily(loaded: LoadedCluster, family: Family): ProxierState {
  const state = loaded.states.find((s) => s.family === family);
  if (!state) throw usageError('--family', `the cluster has no IPv${family} services or node addresses`);
  return state;
}

/**
 * Runs a command's action with kpsim's error contract. KpsimErrors print their message and exit
 * 1 (input) or 2 (usage); anything else is a bug: one line, and the stack with --debug.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const command = args[args.length - 1] as Command | undefined;
      const debug = Boolean(command?.optsWithGlobals?.()['debug']);
      process.exitCode = reportError(e, debug);
    }
  };
}
