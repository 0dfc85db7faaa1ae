/**
 * Starting a worker thread on one of kpsim's own modules, from the compiled files or the
 * bundle (the module beside the caller's, as a .js file) or from the TypeScript sources under
 * tsx (the tests): Node 20 does not pass tsx's loader on to worker threads, so the worker
 * registers it before importing the module.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * A worker running the module `name` (no extension) found beside `callerURL` (the caller's
 * import.meta.url). In the bundle every worker module is an entry point of its own in dist/cli/,
 * next to the chunks that call it (package.json's bundle script).
 */
export function startModuleWorker(callerURL: string, name: string, workerData: unknown): Worker {
  const isSource = extname(fileURLToPath(callerURL)) === '.ts';
  const entry = new URL(`./${name}${isSource ? '.ts' : '.js'}`, callerURL);
  if (!isSource) return new Worker(entry, { workerData });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}
