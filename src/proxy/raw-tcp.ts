/**
 * libuv TCP handles without net.Socket, for the proxy's relay (connection.ts).
 *
 * A net.Socket is a Duplex stream: per connection it builds readable and writable state,
 * an event emitter with its listeners, and per chunk it passes through the stream machinery.
 * A proxy needs none of that: it reads into a buffer of its own and writes that buffer on. The
 * handles under net.Socket (tcp_wrap's TCP, stream_wrap's write and shutdown requests) do exactly
 * the kernel's part: accept, connect, read, write, shutdown, close, reset. This module gives them
 * types and is the only place that reaches for them (process.binding, which Node keeps for
 * tcp_wrap and stream_wrap; deprecated in documentation only).
 *
 * The protocol, as Node's own net.js uses it (lib/internal/stream_base_commons.js):
 *   - reads: `handle.useUserBuffer(buf)` once, `handle.onread = fn`, `readStart()`; in `fn` the
 *     byte count (or a negative libuv error, UV_EOF at end of stream) is in
 *     streamBaseState[kReadBytesOrError], the bytes at the start of `buf`;
 *   - writes: `handle.writeBuffer(req, buf)` returns an error code; when the kernel did not take
 *     it all at once, streamBaseState[kLastWriteWasAsync] is 1, `buf` stays in use, and
 *     `req.oncomplete(status)` runs when it is written;
 *   - `shutdown(req)` sends a FIN once pending writes are out; `close(cb)` closes (a FIN, or an
 *     RST when unread data is left); `reset(cb)` closes with an RST (SO_LINGER 0);
 *   - `connect(req, ip, port)` / `connect6`: `req.oncomplete(status)` when done.
 */
import { getSystemErrorName } from 'node:util';

/** A tcp_wrap TCP handle (the fields the proxy uses). */
export interface TcpHandle {
  onread: ((arrayBuffer?: ArrayBuffer) => void) | null;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: WriteRequest, buffer: Uint8Array): number;
  shutdown(req: ShutdownRequest): number;
  close(callback?: () => void): void;
  reset(callback?: () => void): number;
  setNoDelay(on: boolean): number;
  getpeername(out: PeerName): number;
  connect(req: ConnectRequest, address: string, port: number): number;
  connect6(req: ConnectRequest, address: string, port: number): number;
}

export interface PeerName {
  address?: string;
  port?: number;
  family?: string;
}

/**
 * A write request; `oncomplete` runs with `this` the request when an async write is done. Node's
 * net.js also hangs the handle on its requests (`req.handle`) for its own JavaScript; the C++
 * side never reads it, so the proxy does not set it (a store per write saved).
 */
export interface WriteRequest {
  oncomplete: (this: never, status: number) => void;
}

export interface ShutdownRequest {
  oncomplete: (this: never, status: number) => void;
}

export interface ConnectRequest {
  oncomplete: (this: never, status: number) => void;
  address?: string;
  port?: number;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  constants: { SOCKET: number; SERVER: number };
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  ShutdownWrap: new () => ShutdownRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const binding = (process as unknown as { binding(name: string): unknown }).binding.bind(process);
const tcpWrap = binding('tcp_wrap') as TcpWrapBinding;
const streamWrap = binding('stream_wrap') as StreamWrapBinding;

const state = streamWrap.streamBaseState;
const READ_RESULT = streamWrap.kReadBytesOrError;
const LAST_WRITE_ASYNC = streamWrap.kLastWriteWasAsync;

/** libuv's end-of-stream read result. */
export const UV_EOF = -4095;

/** A new, unconnected TCP socket handle. */
export function newSocketHandle(): TcpHandle {
  return new tcpWrap.TCP(tcpWrap.constants.SOCKET);
}

export function newConnectRequest(): ConnectRequest {
  return new tcpWrap.TCPConnectWrap();
}

export function newWriteRequest(): WriteRequest {
  return new streamWrap.WriteWrap();
}

export function newShutdownRequest(): ShutdownRequest {
  return new streamWrap.ShutdownWrap();
}

/** In an onread callback: the bytes read (> 0), UV_EOF, or a negative libuv error. */
export function readResult(): number {
  return state[READ_RESULT]!;
}

/** After writeBuffer: the kernel did not take every byte, the write completes later. */
export function lastWriteWasAsync(): boolean {
  return state[LAST_WRITE_ASYNC] !== 0;
}

/** "ECONNRESET" for a negative libuv status. */
export function errorName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `UV_${status}`;
  }
}

/** A net.Server's listening handle, whose accepts the proxy takes as raw handles. */
export interface ServerHandle {
  onconnection: (err: number, client: TcpHandle | undefined) => void;
  /** On the listening socket: accepted sockets inherit TCP_NODELAY from it (Linux). */
  setNoDelay(on: boolean): number;
}

/** The listening handle of a bound net.Server (its `_handle`). */
export function serverHandleOf(server: object): ServerHandle | undefined {
  const handle = (server as { _handle?: ServerHandle | null })._handle;
  return handle ?? undefined;
}
