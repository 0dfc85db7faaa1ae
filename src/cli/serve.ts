/**
 * `kpsim serve`: the JSON API (see src/api/server.ts) and the Kubernetes API (src/api/kube/) for
 * a cluster seeded from -f (or a live cluster), kept in memory or in --data-dir. Binds loopback
 * unless --token-file is given; serves HTTPS with --tls-cert-file and --tls-private-key-file.
 * Runs until interrupted.
 */
import type { Command } from 'commander';
import { type KubeApi, Controllers, DataDir, admissionOptions, createKubeApi } from '../api/kube/index.js';
import { buildApiServer } from '../api/server.js';
import { KpsimError } from '../errors.js';
import { readInputFile, type ManifestObject } from '../manifest/load.js';
import { isObject } from '../model/fields.js';
import { resolveNode } from '../tracker/proxier-state.js';
import { isLoopback, joinHostPort } from '../util/ip.js';
import {
  type ClusterOptions,
  action,
  addClusterOptions,
  applyConfigOverrides,
  loadClusterObjects,
  loadOptionsFromFlags,
  parseIPFlag,
  parseIntegerFlag,
  printWarnings,
  usageError,
} from './common.js';
import { summaryOf } from './command-table.js';

interface ServeOptions extends ClusterOptions {
  port?: string;
  host?: string;
  dataDir?: string;
  tokenFile?: string;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
}

function isProxyConfig(object: ManifestObject): boolean {
  return isObject(object.doc) && object.doc['kind'] === 'KubeProxyConfiguration';
}

/** The store, seeded from the --data-dir when it holds objects, else from -f (written to the data dir). */
async function seededApi(opts: ServeOptions): Promise<KubeApi> {
  const hasSource = opts.file !== undefined || opts.kubeconfig !== undefined || opts.context !== undefined || opts.server !== undefined || opts.config !== undefined;
  const input = hasSource ? await loadClusterObjects(opts) : { objects: [], warnings: [] };
  const loadOptions = loadOptionsFromFlags(opts);
  const opened = opts.dataDir !== undefined ? await DataDir.open(opts.dataDir) : undefined;
  const api = createKubeApi({
    admission: admissionOptions({
      ...(opts.serviceClusterIpRange !== undefined ? { serviceClusterIPRange: opts.serviceClusterIpRange } : {}),
      ...(opts.serviceNodePortRange !== undefined ? { serviceNodePortRange: opts.serviceNodePortRange } : {}),
    }),
    ...(opened ? { persistence: opened.dataDir } : {}),
  });
  const warnings = [...input.warnings];
  if (opened && opened.contents.objects.length > 0) {
    const ignored = input.objects.filter((o) => !isProxyConfig(o)).length;
    if (ignored > 0) warnings.push({ message: `--data-dir ${opts.dataDir} already holds the cluster (${opened.contents.objects.length} objects): the ${ignored} objects of -f are not loaded again` });
    warnings.push(...api.store.seed([...opened.contents.objects, ...input.objects.filter(isProxyConfig)], { ...loadOptions, resourceVersion: opened.contents.resourceVersion }));
  } else {
    warnings.push(...api.store.seed(input.objects, loadOptions));
    if (opened) await opened.dataDir.writeAll(api.store.entries(), api.store.resourceVersion);
  }
  const config = api.store.proxyConfig();
  if (config) applyConfigOverrides(config, opts);
  if (!opts.quiet) printWarnings(warnings);
  return api;
}

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description(summaryOf('serve'));
  addClusterOptions(cmd, { required: false })
    .option('--port <port>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <address>', 'address to listen on: loopback, or any other with --token-file', '127.0.0.1')
    .option('--data-dir <dir>', 'keep the objects as manifests in this folder (reloaded on start; -f seeds an empty one)')
    .option('--token-file <file>', 'require this bearer token (the first line of the file) on every request but /version and health checks')
    .option('--tls-cert-file <file>', 'serve HTTPS with this certificate (PEM, chain first)')
    .option('--tls-private-key-file <file>', 'the private key of --tls-cert-file (PEM)')
    .action(action(async (opts: ServeOptions) => {
      const port = parseIntegerFlag('--port', opts.port ?? '8080', 0, 65535);
      const host = parseIPFlag('--host', opts.host ?? '127.0.0.1');
      if (!isLoopback(host) && opts.tokenFile === undefined) throw usageError('--host', `${host} is not a loopback address: serving another address needs --token-file (a bearer token every client must send)`);
      if ((opts.tlsCertFile === undefined) !== (opts.tlsPrivateKeyFile === undefined)) throw usageError('--tls-cert-file', 'give both --tls-cert-file and --tls-private-key-file');
      const token = opts.tokenFile !== undefined ? (await readInputFile(opts.tokenFile, '--token-file')).split('\n')[0]!.trim() : undefined;
      if (token === '') throw usageError('--token-file', `${opts.tokenFile} holds no token on its first line`);
      const https = opts.tlsCertFile !== undefined ? { cert: await readInputFile(opts.tlsCertFile, '--tls-cert-file'), key: await readInputFile(opts.tlsPrivateKeyFile!, '--tls-private-key-file') } : undefined;
      const api = await seededApi(opts);
      // The controllers, the scheduler and the kubelets, live on the store from now on.
      const controllers = new Controllers(api.store, {
        onWarning: (w) => {
          if (!opts.quiet) printWarnings([w]);
        },
      });
      await controllers.start();
      const selection = { ...(opts.node !== undefined ? { node: opts.node } : {}), ...(opts.nodeIp ? { nodeIPs: opts.nodeIp } : {}) };
      // An unknown --node is an input error now, not on the first request.
      const node = resolveNode(api.store.cluster(), selection);
      if (!opts.quiet) printWarnings(node.warnings);
      const app = buildApiServer({
        currentCluster: () => api.store.cluster(),
        node: selection,
        allocate: opts.allocate ?? false,
        kube: api.options,
        ...(token !== undefined ? { token } : {}),
        ...(https ? { https } : {}),
      });
      try {
        await app.listen({ port, host });
      } catch (e) {
        throw new KpsimError('KPSIM_ERR_PROXY_LISTEN', `cannot listen on ${joinHostPort(host, port)}: ${(e as Error).message}`);
      }
      const address = app.server.address();
      const where = typeof address === 'object' && address ? joinHostPort(address.address, address.port) : String(address);
      const url = `${https ? 'https' : 'http'}://${where}`;
      if (!isLoopback(host) && !https) process.stderr.write('warning: serving a non-loopback address without TLS: the bearer token travels in clear text (give --tls-cert-file)\n');
      process.stdout.write(`kpsim API on ${url}/v1/, the web page on ${url}/ and the Kubernetes API on ${url} (kubectl --server ${url}) (Ctrl-C stops it)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          controllers.stop();
          api.hub.stop();
          void app.close().then(() => resolve());
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    }));
}
