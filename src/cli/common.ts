/**
 * What every command shares: the cluster options (-f, --config, --node, ...), flag parsing that
 * fails as a usage error naming the flag, warnings on stderr, and the exit-code contract:
 * 0 done, 1 bad input, 2 bad usage; a stack trace only with --debug.
 */
import { type Command, Option } from 'commander';
import { KpsimError } from '../errors.js';
import { reportError } from './report.js';
import { type LoadOptions, type ManifestObject, clusterFromObjects, loadCluster, parseManifestObjects, readManifestTexts } from '../manifest/load.js';
import type { Cluster, ProxyConfig, Warning } from '../model/types.js';
import { wantsLiveSource } from '../source/kubeconfig.js';
import { readLiveObjects } from '../source/live.js';
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
  nodes?: string;
  serviceClusterIpRange?: string;
  serviceNodePortRange?: string;
  /** A live cluster instead of -f: --kubeconfig, --context, --server. */
  kubeconfig?: string;
  context?: string;
  server?: string;
  debug?: boolean;
  quiet?: boolean;
}

/** Commander's reducer for a repeatable flag: every value, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * -f PATH... (or a live cluster: --kubeconfig, --context, --server) and the options that choose
 * the node and adjust kube-proxy's configuration. With `required`, a command run with neither
 * files nor a live cluster is a usage error.
 */
export function addClusterOptions(cmd: Command, { required = true }: { required?: boolean } = {}): Command {
  const file = new Option('-f, --file <path...>', 'manifest files or folders, or - for standard input (YAML or JSON: Service, EndpointSlice, Endpoints, Node, Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, KubeProxyConfiguration)');
  if (required) {
    cmd.hook('preAction', (_command, actionCommand) => {
      const opts = actionCommand.opts<ClusterOptions>();
      if (opts.file === undefined && !wantsLiveSource(opts)) {
        throw new KpsimError('KPSIM_ERR_USAGE_MISSING_FLAG', 'no cluster given: -f PATH... (manifests), or a live cluster with --kubeconfig FILE, --context NAME or --server URL');
      }
    });
  }
  return cmd
    .addOption(file)
    .option('--kubeconfig <file>', 'read a live cluster through this kubeconfig instead of -f (read only; KUBECONFIG and ~/.kube/config are used for --context and --server alone)')
    .option('--context <name>', 'the kubeconfig context of the live cluster (default: its current-context)')
    .option('--server <url>', "the live cluster's API server URL (replaces the context's; alone, reads anonymously)")
    .option('--config <file>', 'a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1)')
    .option('--node <name>', "the node whose point of view to take (default: the config's hostnameOverride, else the first Node)")
    .option('--node-ip <ip>', "the node's IP address, instead of its Node object's (repeatable)", collect)
    .option('--cluster-cidr <cidrs>', 'pod CIDRs, comma-separated: kube-proxy\'s clusterCIDR (overrides the config\'s), and where --allocate takes node pod CIDRs from (default 10.244.0.0/16)')
    .option('--masquerade-all', 'masquerade all traffic to service IPs (iptables.masqueradeAll)')
    .option('--allocate', 'do what the cluster would: protocols, ClusterIPs and node ports as the API server; pods of Deployments, ReplicaSets, StatefulSets and DaemonSets as the controllers, the scheduler and the kubelets')
    .option('--nodes <n>', 'with --allocate and no Node objects: how many nodes to create (default 3)')
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

function loadOptionsOf(opts: ClusterOptions): LoadOptions {
  return {
    ...(opts.config !== undefined ? { config: opts.config } : {}),
    allocate: opts.allocate ?? false,
    ...(opts.serviceClusterIpRange !== undefined ? { serviceClusterIPRange: opts.serviceClusterIpRange } : {}),
    ...(opts.serviceNodePortRange !== undefined ? { serviceNodePortRange: opts.serviceNodePortRange } : {}),
    ...(opts.nodes !== undefined ? { nodes: parseIntegerFlag('--nodes', opts.nodes, 0, 100_000) } : {}),
    ...(opts.clusterCidr !== undefined ? { clusterCIDR: opts.clusterCidr } : {}),
  };
}

/**
 * The objects the options name, parsed but not decoded: the -f files' documents, or what a live
 * cluster holds (its kube-proxy ConfigMap's configuration too, unless --config is given), plus
 * the --config file's. For commands that keep the objects themselves (serve, dump).
 */
export async function loadClusterObjects(opts: ClusterOptions): Promise<{ objects: ManifestObject[]; warnings: Warning[]; server?: string }> {
  const live = wantsLiveSource(opts);
  if (live && opts.file !== undefined) throw usageError('-f', 'give -f manifests or a live cluster (--kubeconfig, --context, --server), not both');
  const configObjects = opts.config !== undefined ? parseManifestObjects(await readManifestTexts([], opts.config)) : [];
  if (!live) return { objects: [...parseManifestObjects(await readManifestTexts(opts.file ?? [])), ...configObjects], warnings: [] };
  const read = await readLiveObjects({
    ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
    ...(opts.context !== undefined ? { context: opts.context } : {}),
    ...(opts.server !== undefined ? { server: opts.server } : {}),
    readProxyConfig: opts.config === undefined,
  });
  return { objects: [...read.objects, ...configObjects], warnings: read.warnings, server: read.server };
}

/** Load the cluster the options name (files or a live cluster), apply the flag overrides, and print the warnings. */
export async function loadClusterFromOptions(opts: ClusterOptions): Promise<LoadedCluster> {
  const cluster = await loadClusterWithOverrides(opts);
  const node = resolveNode(cluster, { ...(opts.node !== undefined ? { node: opts.node } : {}), ...(opts.nodeIp ? { nodeIPs: opts.nodeIp } : {}) });
  if (!opts.quiet) printWarnings([...cluster.warnings, ...node.warnings]);
  return { cluster, node, states: buildProxierStates(cluster, node) };
}

/** The cluster the options name (files or a live cluster), with the flag overrides applied (no node chosen, nothing printed). */
export async function loadClusterWithOverrides(opts: ClusterOptions): Promise<Cluster> {
  if (wantsLiveSource(opts)) return clusterFromReadObjects(await loadClusterObjects(opts), opts);
  const cluster = await loadCluster(opts.file ?? [], loadOptionsOf(opts));
  applyConfigOverrides(cluster.config, opts);
  return cluster;
}

/** The cluster of objects loadClusterObjects read, with the flag overrides applied. */
export function clusterFromReadObjects(read: { objects: ManifestObject[]; warnings: Warning[] }, opts: ClusterOptions): Cluster {
  const cluster = clusterFromObjects(read.objects, loadOptionsFromFlags(opts));
  cluster.warnings.unshift(...read.warnings);
  applyConfigOverrides(cluster.config, opts);
  return cluster;
}

/** The load options (allocation, ranges) the flags give, for callers that decode objects themselves. */
export function loadOptionsFromFlags(opts: ClusterOptions): LoadOptions {
  const { config: _config, ...options } = loadOptionsOf(opts);
  return options;
}

/** --cluster-cidr and --masquerade-all, over the configuration the input gave. */
export function applyConfigOverrides(config: ProxyConfig, opts: ClusterOptions): void {
  if (opts.clusterCidr !== undefined) {
    config.clusterCIDRs = opts.clusterCidr.split(',').map((text) => {
      const cidr = parseCIDR(text.trim());
      if (!cidr) throw usageError('--cluster-cidr', `${JSON.stringify(text)} is not a CIDR`);
      return cidr.text;
    });
  }
  if (opts.masqueradeAll) config.masqueradeAll = true;
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
