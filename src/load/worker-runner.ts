/**
 * runLoad in a worker thread. The proxy and the backend pods serve on this thread's event loop;
 * with the load generator on the same loop, every request would wait for the generator and the
 * generator for the proxy, and the figures would measure their contention. In a worker thread
 * autocannon gets its own loop (and, on a 2-core machine, most of the other core).
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { checkLoopbackURL, runLoad } from './runner.js';
import type { LoadProgress, LoadRunOptions, LoadRunResult, ProgressListener } from './types.js';

export type WorkerMessage =
  | { type: 'progress'; progress: LoadProgress }
  | { type: 'done'; result: LoadRunResult }
  | { type: 'error'; message: string };

/** Where the load generator runs: a worker thread (default) or the calling thread. */
export type LoadThread = 'worker' | 'main';

export const loadThreadDescriptions: Readonly<Record<LoadThread, string>> = {
  worker: 'autocannon in a worker thread; the proxy and the backend pods share the main thread',
  main: 'autocannon, the proxy and the backend pods all on one thread',
};

export const udpLoadGeneratorDescriptions: Readonly<Record<LoadThread, string>> = {
  worker: 'kpsim\'s UDP sender in a worker thread; the proxy and the backend pods share the main thread',
  main: 'kpsim\'s UDP sender, the proxy and the backend pods all on one thread',
};

export function runLoadOn(thread: LoadThread, opts: LoadRunOptions, onProgress?: ProgressListener): Promise<LoadRunResult> {
  return thread === 'worker' ? runLoadInWorker(opts, onProgress) : runLoad(opts, onProgress);
}

/**
 * Compiled, this module is worker-runner.js beside load-worker.js. Run from the sources under tsx
 * (the tests), the entry is load-worker.ts, and Node 20 does not pass tsx's loader on to worker
 * threads, so the worker registers it before importing the entry.
 */
function startWorker(opts: LoadRunOptions): Worker {
  const isSource = extname(fileURLToPath(import.meta.url)) === '.ts';
  const entry = new URL(`./load-worker${isSource ? '.ts' : '.js'}`, import.meta.url);
  if (!isSource) return new Worker(entry, { workerData: opts });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: opts });
}

export async function runLoadInWorker(opts: LoadRunOptions, onProgress?: ProgressListener): Promise<LoadRunResult> {
  checkLoopbackURL(opts.url);
  return await new Promise((resolve, reject) => {
    const worker = startWorker(opts);
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'progress') onProgress?.(message.progress);
      else if (message.type === 'done') settle(() => resolve(message.result));
      else settle(() => reject(new Error(`load generator: ${message.message}`)));
    });
    worker.on('error', (err) => settle(() => reject(err)));
    worker.on('exit', (code) => settle(() => reject(new Error(`load generator thread exited with code ${code} before it reported`))));
  });
}
