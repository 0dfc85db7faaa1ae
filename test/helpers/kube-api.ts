/**
 * kpsim's API server (the JSON API and the Kubernetes API) started in the test's own process on
 * a free loopback port, seeded from manifests, and the real kubectl pointed at it with its own
 * cache and home folders (never ~/.kube).
 */
import { spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type ControllerOptions, Controllers, type KubeApi, admissionOptions, createKubeApi } from '../../src/api/kube/index.js';
import { buildApiServer } from '../../src/api/server.js';
import { type LoadOptions, type ManifestObject, parseManifestObjects } from '../../src/manifest/load.js';
import { type CliResult, runAsync } from './run-cli.js';

export interface StartedApi extends KubeApi {
  /** The controllers, when started (`controllers` option). */
  controllers?: Controllers;
  app: FastifyInstance;
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Manifest files or folders to seed the store with. */
  files?: string[];
  objects?: ManifestObject[];
  token?: string;
  https?: { key: string; cert: string };
  historyLimit?: number;
  bookmarkIntervalMs?: number;
  bodyLimitBytes?: number;
  /** Runs on the app before it listens (extra hooks). */
  prepare?: (app: FastifyInstance) => void;
  /** Seed as the files are read with these options (allocate: true is --allocate). */
  seedOptions?: LoadOptions;
  /** Run the controllers on the store, as kpsim serve does (true: their defaults). */
  controllers?: ControllerOptions | true;
}

function filesUnder(path: string): string[] {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => filesUnder(join(path, name)))
    .filter((f) => /\.(ya?ml|json)$/.test(f));
}

export function manifestObjects(paths: readonly string[]): ManifestObject[] {
  return parseManifestObjects(paths.flatMap(filesUnder).map((file) => ({ file, text: readFileSync(file, 'utf8') })));
}

export async function startKubeApi(options: StartOptions = {}): Promise<StartedApi> {
  const api = createKubeApi(
    { admission: admissionOptions(), ...(options.historyLimit !== undefined ? { historyLimit: options.historyLimit } : {}) },
    {
      ...(options.bookmarkIntervalMs !== undefined ? { bookmarkIntervalMs: options.bookmarkIntervalMs } : {}),
      ...(options.bodyLimitBytes !== undefined ? { bodyLimitBytes: options.bodyLimitBytes } : {}),
    },
  );
  api.store.seed([...manifestObjects(options.files ?? []), ...(options.objects ?? [])], options.seedOptions ?? {});
  const controllers = options.controllers ? new Controllers(api.store, options.controllers === true ? {} : options.controllers) : undefined;
  await controllers?.start();
  const app = buildApiServer({
    currentCluster: () => api.store.cluster(),
    kube: api.options,
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.https ? { https: options.https } : {}),
  });
  options.prepare?.(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address !== 'object') throw new Error('the server has no port');
  const url = `${options.https ? 'https' : 'http'}://127.0.0.1:${address.port}`;
  return {
    ...api,
    ...(controllers ? { controllers } : {}),
    app,
    url,
    port: address.port,
    close: async () => {
      controllers?.stop();
      api.hub.stop();
      await app.close();
    },
  };
}

/** Why kubectl tests cannot run here, or undefined when they can. */
export function kubectlMissing(): string | undefined {
  const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 });
  if (probe.error || probe.status !== 0) return 'kubectl is not installed (Debian package kubectl; .ci/run installs it)';
  return undefined;
}

/** A kubectl with its own home and discovery cache, talking to one server. */
export interface Kubectl {
  run(args: readonly string[], opts?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
  /** The environment kubectl runs with (HOME in a temporary folder, no KUBECONFIG). */
  env: NodeJS.ProcessEnv;
  home: string;
  cleanup(): void;
}

export function kubectlFor(server: string): Kubectl {
  const home = mkdtempSync(join(tmpdir(), 'kpsim-kubectl-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, KUBECACHEDIR: join(home, 'cache') };
  delete env['KUBECONFIG'];
  return {
    env,
    home,
    run: (args, opts = {}) =>
      runAsync('kubectl', ['--server', server, '--cache-dir', join(home, 'cache'), ...args], { env: { ...env, ...(opts.env ?? {}) }, ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) }),
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}

export interface WatchEvent {
  type: string;
  object: Record<string, unknown>;
}

/**
 * A watch stream's lines as they arrive (`events`), and a promise of them once `count` arrived
 * or the stream ended (the watch is then closed).
 */
export function watchLines(api: { url: string }, path: string, count = Number.POSITIVE_INFINITY): { lines: Promise<WatchEvent[]>; events: WatchEvent[]; abort: () => void } {
  const lines: WatchEvent[] = [];
  let abort = (): void => undefined;
  const done = new Promise<WatchEvent[]>((resolve, reject) => {
    const req = httpRequest(`${api.url}${path}`, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buffer.slice(0, nl)) as WatchEvent);
          buffer = buffer.slice(nl + 1);
          if (lines.length >= count) {
            req.destroy();
            resolve(lines);
          }
        }
      });
      res.on('end', () => resolve(lines));
      res.on('close', () => resolve(lines));
    });
    req.on('error', (e) => (lines.length >= count ? resolve(lines) : reject(e)));
    abort = () => req.destroy();
    req.end();
  });
  done.catch(() => undefined);
  return { lines: done, events: lines, abort };
}
