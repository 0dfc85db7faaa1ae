/**
 * A worker thread running one of kpsim's modules, from the compiled files or from the sources.
 *
 * Compiled, `entry` names a .js file beside the caller's. Run from the sources under tsx (the
 * tests), it is the .ts file, and Node 20 does not pass tsx's loader on to worker threads, so the
 * worker registers it before importing the entry.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type TransferListItem, Worker } from 'node:worker_threads';

/** `base`: the caller's import.meta.url; `name`: the entry's file name without extension. */
export function startModuleWorker(base: string, name: string, workerData: unknown, transferList: readonly TransferListItem[] = []): Worker {
  const isSource = extname(fileURLToPath(base)) === '.ts';
  const entry = new URL(`./${name}${isSource ? '.ts' : '.js'}`, base);
  const options = { workerData, transferList: [...transferList] };
  if (!isSource) return new Worker(entry, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
