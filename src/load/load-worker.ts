/**
 * Worker-thread entry for worker-runner.ts: runs one load run with the options it was given and
 * posts progress and the result back. Only loaded as a worker's main module.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runLoad } from './runner.js';
import type { LoadRunOptions } from './types.js';
import type { WorkerMessage } from './worker-runner.js';

if (parentPort === null) throw new Error('load-worker.js runs only as a worker thread');
const port = parentPort;
const post = (message: WorkerMessage): void => port.postMessage(message);

try {
  const result = await runLoad(workerData as LoadRunOptions, (progress) => post({ type: 'progress', progress }));
  post({ type: 'done', result });
} catch (e) {
  post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
}
