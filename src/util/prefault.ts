/**
 * Pages of shared memory touched ahead of their writer, by a worker thread on another core.
 *
 * Memory written for the first time costs a page fault every 4 KB, paid by the thread that
 * writes it: 10-17 us a page on a virtual machine whose faults exit to the host, so the 67 MB
 * that a 5,000-node cluster's node text is written into costs its writer about 0.2 s before a
 * byte of it is text. A fault taken by another thread of the process maps the page for every
 * thread, so a worker that touches the pages just ahead of the writer takes those faults in
 * parallel, on a core the writer does not use.
 *
 * The worker touches a page with an atomic OR of zero into its first word: a write (which is
 * what makes the kernel give the page its own memory; a read maps the shared zero page), and
 * one that changes nothing whether the writer has been there or not, since it reads and writes
 * back the word as one step. Only ranges of at least PREFAULT_MIN_BYTES are worth a message,
 * and only the main thread asks (a worker thread of kpsim's shares its cores with others).
 * Best effort: if the worker cannot start, the writer faults its pages itself, as it always did.
 */
import { Worker, isMainThread } from 'node:worker_threads';

const PAGE_BYTES = 4096;
/** Ranges shorter than this are left to the writer (a message and a wake-up cost more than a few faults). */
export const PREFAULT_MIN_BYTES = 4 << 20;

/**
 * The worker: CommonJS run from source (eval), so it needs no file of its own beside the caller
 * (the CLI is one bundle). Each message is a range of a SharedArrayBuffer to touch page by page.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ memory, from, to }) => {
  const words = new Int32Array(memory, 0, to >> 2);
  for (let word = from >> 2; word < words.length; word += ${PAGE_BYTES >> 2}) Atomics.or(words, word, 0);
  parentPort.postMessage(to - from);
});
`;

let worker: Worker | undefined;
let failed = false;
/** Ranges sent and bytes in them, ranges not yet done, and who waits for them to be (prefaultSettled). */
const sent = { ranges: 0, bytes: 0 };
let pending = 0;
let settled: (() => void)[] = [];
/** Per memory, the range [from, to) already asked for: asked again, only what lies outside it is sent. */
const asked = new WeakMap<SharedArrayBuffer, { from: number; to: number }>();

function prefaultWorker(): Worker | undefined {
  if (worker !== undefined || failed) return worker;
  try {
    worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', () => {
      if (--pending === 0) settle();
    });
    worker.on('error', () => {
      failed = true;
      worker = undefined;
      pending = 0;
      settle();
    });
    // Never what keeps the process alive, nor what ends it (after the listeners: one re-refs it).
    worker.unref();
  } catch {
    failed = true;
  }
  return worker;
}

function settle(): void {
  const waiting = settled;
  settled = [];
  worker?.unref();
  for (const resolve of waiting) resolve();
}

function send(memory: SharedArrayBuffer, from: number, to: number): void {
  if (to - from < PREFAULT_MIN_BYTES) return;
  const w = prefaultWorker();
  if (w === undefined) return;
  w.postMessage({ memory, from, to });
  pending++;
  sent.ranges++;
  sent.bytes += to - from;
}

/** Ranges sent to the worker so far, and the bytes in them. */
export function prefaultSent(): { readonly ranges: number; readonly bytes: number } {
  return { ...sent };
}

/** Resolves once every range sent so far has been touched (or the worker has failed). */
export function prefaultSettled(): Promise<void> {
  if (pending === 0) return Promise.resolve();
  // Awaited, the worker keeps the process alive until it is done.
  worker?.ref();
  return new Promise((resolve) => settled.push(resolve));
}

/**
 * Have bytes [from, to) of `memory` (within its length now) touched in the background, first
 * pages first: for memory about to be written from `from` on. Ranges asked for before are not
 * touched again.
 */
export function prefault(memory: SharedArrayBuffer, from: number, to: number): void {
  if (!isMainThread || failed) return;
  const start = Math.floor(from / PAGE_BYTES) * PAGE_BYTES;
  const end = Math.min(to, memory.byteLength);
  const before = asked.get(memory);
  if (before === undefined) {
    if (end - start < PREFAULT_MIN_BYTES) return;
    asked.set(memory, { from: start, to: end });
    send(memory, start, end);
    return;
  }
  if (start < before.from) send(memory, start, Math.min(end, before.from));
  if (end > before.to) send(memory, Math.max(start, before.to), end);
  before.from = Math.min(before.from, start);
  before.to = Math.max(before.to, end);
}
