/**
 * UDP load: request/response datagrams at a bounded rate and count, from `connections` client
 * sockets (each its own source port, so its own association at the proxy), with every datagram
 * either answered within the timeout or counted as lost.
 *
 * A request is 8 bytes: the magic word "kps1" and a sequence number. kpsim's backend pods echo it
 * with their identity after it (proxy/udp-reply.ts), which gives the latency (send to reply, as
 * a float in ms), the endpoint that answered, and which request it was. A server of your own
 * (`--backend`) must echo at least those 8 bytes; replies that name no endpoint are counted as
 * unattributed, and replies that are not an echo of a request at all as errors ("other").
 *
 * Pacing: a 1 ms timer sends what the rate says is due since the start (so a late tick catches
 * up rather than lowering the rate), spreading datagrams over the sockets in turn. Sending stops
 * at the duration or the count, then the run waits for the outstanding answers up to the timeout.
 */
import dgram, { type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { isIP } from 'node:net';
import { EndpointTally, type ResponseOrigin } from './endpoint-tally.js';
import { ErrorTally } from './error-kinds.js';
import { LatencySamples, summarizeLatency } from './percentiles.js';
import type { DatagramCounts, LoadRunOptions, LoadRunResult, ProgressListener } from './types.js';

export const UDP_REQUEST_MAGIC = 0x6b707331; // "kps1"
export const UDP_REQUEST_BYTES = 8;
export const DEFAULT_UDP_RATE = 1000;
export const DEFAULT_UDP_TIMEOUT_SECONDS = 1;
const TICK_MS = 1;
const PROGRESS_INTERVAL_MS = 250;

/** Request slots: state of each outstanding sequence number (a ring indexed by seq & mask). */
const PENDING = 1;
const ANSWERED = 2;
const EXPIRED = 3;

/** "udp://127.10.0.3:53" → host and port. */
export function parseUdpURL(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  if (parsed.protocol !== 'udp:') throw new Error(`${url} is not a udp:// address`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(parsed.port);
  if (isIP(host) === 0 || !(port >= 1 && port <= 65535)) throw new Error(`${url} is not udp://IP:PORT`);
  return { host, port };
}

export async function runUdpLoad(opts: LoadRunOptions, onProgress?: ProgressListener): Promise<LoadRunResult> {
  const { host, port } = parseUdpURL(opts.url);
  const rate = opts.overallRate ?? DEFAULT_UDP_RATE;
  const amount = opts.amount ?? Number.POSITIVE_INFINITY;
  const timeoutMs = (opts.timeoutSeconds ?? DEFAULT_UDP_TIMEOUT_SECONDS) * 1000;
  if (!(rate > 0) || !(timeoutMs > 0) || !(opts.connections >= 1) || !(opts.durationSeconds > 0)) {
    throw new Error(`bad UDP load options: rate ${rate}, timeout ${timeoutMs} ms, ${opts.connections} sockets, ${opts.durationSeconds} s`);
  }
  // Enough slots that a sequence number is settled (answered or expired) before its slot comes round again.
  const slots = ringSize(Math.min(amount, Math.ceil(rate * (timeoutMs / 1000 + opts.durationSeconds))) * 2);
  const mask = slots - 1;
  const state = new Uint8Array(slots);
  const seqOf = new Uint32Array(slots);
  const sentAt = new Float64Array(slots);

  const latencies = new LatencySamples();
  const errors = new ErrorTally();
  const endpoints = new EndpointTally();
  const origins = new Map<string, ResponseOrigin | undefined>();
  const counts: DatagramCounts = { sent: 0, answered: 0, lost: 0, late: 0 };
  let oldest = 0;

  const onReply = (reply: Buffer): void => {
    if (reply.length < UDP_REQUEST_BYTES || reply.readUInt32BE(0) !== UDP_REQUEST_MAGIC) {
      errors.connectionError(undefined);
      return;
    }
    const seq = reply.readUInt32BE(4);
    const slot = seq & mask;
    if (seqOf[slot] !== seq || state[slot] === 0) return;
    if (state[slot] === EXPIRED) {
      counts.late++;
      state[slot] = ANSWERED;
      return;
    }
    if (state[slot] !== PENDING) return;
    state[slot] = ANSWERED;
    counts.answered++;
    latencies.add(performance.now() - sentAt[slot]!);
    endpoints.count(originOf(reply, origins));
  };
  const onError = (err: NodeJS.ErrnoException): void => errors.connectionError(err.code);

  const sockets = await Promise.all(Array.from({ length: opts.connections }, () => connectedSocket(host, port, onReply, onError)));
  const started = performance.now();
  const elapsedMs = (): number => performance.now() - started;
  const durationMs = opts.durationSeconds * 1000;
  let sendingMs = 0;

  /** Settle the oldest outstanding requests whose time is up. */
  const expire = (now: number): void => {
    while (oldest < counts.sent) {
      const slot = oldest & mask;
      if (state[slot] === PENDING) {
        if (now - sentAt[slot]! < timeoutMs) return;
        state[slot] = EXPIRED;
        counts.lost++;
        errors.timeout();
      }
      oldest++;
    }
  };

  try {
    await new Promise<void>((resolve) => {
      const progress = onProgress === undefined ? undefined
        : setInterval(() => onProgress({ elapsedSeconds: elapsedMs() / 1000, responses: counts.answered }), PROGRESS_INTERVAL_MS);
      const tick = setInterval(() => {
        const now = performance.now();
        const elapsed = now - started;
        if (sendingMs === 0) {
          const due = Math.min(amount, Math.floor((rate * Math.min(elapsed, durationMs)) / 1000));
          while (counts.sent < due) {
            const seq = counts.sent;
            const slot = seq & mask;
            const request = Buffer.allocUnsafe(UDP_REQUEST_BYTES);
            request.writeUInt32BE(UDP_REQUEST_MAGIC, 0);
            request.writeUInt32BE(seq >>> 0, 4);
            seqOf[slot] = seq >>> 0;
            state[slot] = PENDING;
            sentAt[slot] = performance.now();
            sockets[seq % sockets.length]!.send(request);
            counts.sent++;
          }
          if (elapsed >= durationMs || counts.sent >= amount) sendingMs = elapsed;
        }
        expire(now);
        if (sendingMs > 0 && oldest >= counts.sent) {
          clearInterval(tick);
          if (progress !== undefined) clearInterval(progress);
          resolve();
        }
      }, TICK_MS);
    });
  } finally {
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
  const elapsedSeconds = sendingMs / 1000;
  onProgress?.({ elapsedSeconds, responses: counts.answered });
  return {
    elapsedSeconds,
    responses: counts.answered,
    statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    latency: summarizeLatency(latencies.sorted()),
    errors: errors.counts(),
    endpoints: endpoints.counts(),
    unattributed: endpoints.unattributed,
    datagrams: counts,
  };
}

/** The identity after the echoed request ("\n{json}"), parsed once per distinct text. */
function originOf(reply: Buffer, cache: Map<string, ResponseOrigin | undefined>): ResponseOrigin | undefined {
  if (reply.length <= UDP_REQUEST_BYTES + 1 || reply[UDP_REQUEST_BYTES] !== 0x0a) return undefined;
  const text = reply.toString('latin1', UDP_REQUEST_BYTES + 1);
  if (cache.has(text)) return cache.get(text);
  let origin: ResponseOrigin | undefined;
  try {
    const parsed = JSON.parse(Buffer.from(text, 'latin1').toString('utf8')) as { pod?: unknown; endpoint?: unknown };
    if (typeof parsed.endpoint === 'string') origin = { endpoint: parsed.endpoint, pod: typeof parsed.pod === 'string' ? parsed.pod : '' };
  } catch {
    origin = undefined;
  }
  cache.set(text, origin);
  return origin;
}

/** A client socket connected to the target, so that an ICMP port-unreachable surfaces as ECONNREFUSED. */
function connectedSocket(host: string, port: number, onReply: (reply: Buffer) => void, onError: (err: NodeJS.ErrnoException) => void): Promise<Socket> {
  const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  socket.on('message', onReply);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, host, () => {
      socket.removeListener('error', reject);
      socket.on('error', onError);
      resolve(socket);
    });
  });
}

function ringSize(wanted: number): number {
  let size = 1024;
  while (size < wanted && size < 1 << 22) size *= 2;
  return size;
}
