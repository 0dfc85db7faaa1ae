/**
 * `kpsim serve`: the JSON API on loopback for a loaded cluster (see src/api/server.ts for the
 * routes). Runs until interrupted.
 */
import type { Command } from 'commander';
import { buildApiServer } from '../api/server.js';
import { KpsimError } from '../errors.js';
import { isLoopback, joinHostPort } from '../util/ip.js';
import { type ClusterOptions, action, addClusterOptions, loadClusterFromOptions, parseIPFlag, parseIntegerFlag, usageError } from './common.js';

interface ServeOptions extends ClusterOptions {
  port?: string;
  host?: string;
}

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('serve the JSON API (cluster, rules, packet traces) on loopback');
  addClusterOptions(cmd, { required: false })
    .option('--port <port>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <address>', 'loopback address to listen on', '127.0.0.1')
    .action(action(async (opts: ServeOptions) => {
      const port = parseIntegerFlag('--port', opts.port ?? '8080', 0, 65535);
      const host = parseIPFlag('--host', opts.host ?? '127.0.0.1');
      if (!isLoopback(host)) throw usageError('--host', `${host} is not a loopback address (kpsim serves on 127.0.0.0/8 or ::1 only)`);
      const loaded = opts.file ? await loadClusterFromOptions(opts) : undefined;
      const app = buildApiServer({
        ...(loaded ? { cluster: loaded.cluster, node: { node: loaded.node.name, nodeIPs: loaded.node.ips } } : {}),
        allocate: opts.allocate ?? false,
      });
      try {
        await app.listen({ port, host });
      } catch (e) {
        throw new KpsimError('KPSIM_ERR_PROXY_LISTEN', `cannot listen on ${joinHostPort(host, port)}: ${(e as Error).message}`);
      }
      const address = app.server.address();
      const where = typeof address === 'object' && address ? joinHostPort(address.address, address.port) : String(address);
      process.stdout.write(`kpsim API on http://${where}/v1/ (Ctrl-C stops it)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void app.close().then(() => resolve());
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    }));
}
