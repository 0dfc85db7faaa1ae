/**
 * Which API server a live source reads, and with what credentials: kubectl's rules.
 * `--kubeconfig FILE`, else the files in KUBECONFIG (colon-separated, merged), else
 * ~/.kube/config; `--context NAME` picks a context (else the file's current-context);
 * `--server URL` replaces the context's server (and alone, with no kubeconfig at all, reads
 * anonymously). Authentication is whatever the kubeconfig holds (tokens, client certificates,
 * exec plugins, CAs): @kubernetes/client-node applies it.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type Cluster, KubeConfig, type User } from '@kubernetes/client-node';
import { KpsimError } from '../errors.js';

export interface LiveSourceOptions {
  /** --kubeconfig: one file. */
  kubeconfig?: string;
  /** --context: a context of the kubeconfig. */
  context?: string;
  /** --server: the API server's URL, instead of the context's. */
  server?: string;
  /** The environment KUBECONFIG and HOME are read from (process.env by default). */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedKubeConfig {
  kubeConfig: KubeConfig;
  /** The server's URL, for messages and as the objects' origin. */
  server: string;
  /** Where the configuration came from ("kubeconfig.yaml", "KUBECONFIG", "--server"). */
  origin: string;
}

/** Whether the options ask for a live cluster rather than files. */
export function wantsLiveSource(options: LiveSourceOptions): boolean {
  return options.kubeconfig !== undefined || options.context !== undefined || options.server !== undefined;
}

function kubeconfigError(file: string | undefined, detail: string): KpsimError {
  return new KpsimError('KPSIM_ERR_SOURCE_KUBECONFIG', detail, file !== undefined ? { file } : {});
}

function loadFile(file: string): KubeConfig {
  if (!existsSync(file)) throw kubeconfigError(file, 'cannot read: no such file');
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(file);
  } catch (e) {
    throw kubeconfigError(file, `is not a kubeconfig: ${(e as Error).message.split('\n')[0]}`);
  }
  return kc;
}

/** The kubeconfig files to read, by kubectl's precedence; [] when there is none at all. */
function kubeconfigFiles(options: LiveSourceOptions): { files: string[]; origin: string } {
  const env = options.env ?? process.env;
  if (options.kubeconfig !== undefined) return { files: [options.kubeconfig], origin: options.kubeconfig };
  const fromEnv = (env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  if (fromEnv.length > 0) return { files: fromEnv, origin: 'KUBECONFIG' };
  const home = env['HOME'] ?? homedir();
  const standard = join(home, '.kube', 'config');
  if (existsSync(standard)) return { files: [standard], origin: standard };
  return { files: [], origin: '--server' };
}

/** The client configuration for the options; a KpsimError naming the file when it is unusable. */
export function resolveKubeConfig(options: LiveSourceOptions): ResolvedKubeConfig {
  const { files, origin } = kubeconfigFiles(options);
  if (files.length === 0 && options.server === undefined) {
    throw kubeconfigError(undefined, 'no kubeconfig found (--kubeconfig FILE, KUBECONFIG, or ~/.kube/config), and no --server URL');
  }
  let kc = new KubeConfig();
  if (files.length > 0) {
    kc = loadFile(files[0]!);
    for (const file of files.slice(1)) kc.mergeConfig(loadFile(file), true);
  }
  if (options.context !== undefined) {
    if (!kc.getContextObject(options.context)) {
      const known = kc.getContexts().map((c) => c.name).join(', ') || 'none';
      throw kubeconfigError(origin, `has no context ${JSON.stringify(options.context)} (contexts: ${known})`);
    }
    kc.setCurrentContext(options.context);
  }
  const current = files.length > 0 ? kc.getCurrentCluster() : null;
  if (options.server === undefined && !current) {
    throw kubeconfigError(origin, kc.getCurrentContext() ? `context ${JSON.stringify(kc.getCurrentContext())} names no cluster` : 'names no current context (give --context NAME)');
  }
  const server = options.server ?? current!.server;
  if (!/^https?:\/\/[^/]/.test(server)) throw kubeconfigError(origin, `the server ${JSON.stringify(server)} is not an http:// or https:// URL`);
  const user: User = (files.length > 0 ? kc.getCurrentUser() : null) ?? { name: 'kpsim-anonymous' };
  // Plain HTTP has no certificate to verify; client-node refuses http:// unless told to skip verification.
  const cluster: Cluster = {
    ...(current ?? {}),
    name: current?.name ?? 'kpsim',
    server,
    skipTLSVerify: server.startsWith('http:') || (current?.skipTLSVerify ?? false),
  };
  const resolved = new KubeConfig();
  resolved.loadFromOptions({ clusters: [cluster], users: [user], contexts: [{ name: 'kpsim', cluster: cluster.name, user: user.name }], currentContext: 'kpsim' });
  return { kubeConfig: resolved, server, origin };
}
