/**
 * Read buffers for the proxy's backend sockets, reused across connections.
 *
 * A backend socket reads straight into its own buffer (net's `onread` option) instead of
 * allocating a 64 KiB buffer per read and pushing it through a Readable: the response direction
 * then costs no allocation per chunk. A buffer goes back to the pool when its connection closes;
 * one still held by a pending write is simply left to the garbage collector.
 */
export class BufferPool {
  readonly #free: Buffer[] = [];

  constructor(readonly bufferBytes: number, readonly maxFree: number) {}

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(this.bufferBytes);
  }

  give(buffer: Buffer): void {
    if (this.#free.length < this.maxFree && buffer.length === this.bufferBytes) this.#free.push(buffer);
  }
}

/** 16 KiB: a whole HTTP response in one read for most requests, and 80 MiB for 5000 connections. */
export const backendReadBuffers = new BufferPool(16 * 1024, 1024);
