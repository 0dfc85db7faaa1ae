/**
 * Worker-thread entry for `kpsim nodes` (nodes-job.ts): runs the share of nodes it was given and
 * posts the summaries back. Only loaded as a worker's main module.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type NodesJob, runNodesJob } from './nodes-job.js';

if (parentPort === null) throw new Error('nodes-worker.js runs only as a worker thread');
const port = parentPort;
await runNodesJob(workerData as NodesJob, (message) => port.postMessage(message));
