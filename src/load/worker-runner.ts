/**
 * runLoad in a worker thread. The proxy and the backend pods serve on this thread's event loop;
 * with the load generator on the same loop, every request would wait for the generator and the
 * generator for the proxy, and the figures would measure their contention. In a worker thread
 * autocannon gets its own loop (and, on a 2-core machine, most of the other core).
 */
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../proxy/module-worker.js';
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

function startWorker(opts: LoadRunOptions): Worker {
  return startModuleWorker(import.meta.url, 'load-worker', opts);
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
