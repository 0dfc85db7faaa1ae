/**
 * Read buffers for the proxy's connections, reused across connections (connection.ts).
 *
 * Each side of a connection reads straight into a buffer of its own (libuv's user buffer)
 * instead of a buffer allocated per read; a chunk read is written on as a view of its first n
 * bytes. The slot keeps the last view it made: request/response traffic reads the same sizes
 * over and over, and one connection after another reuses the slot, so most writes make no new
 * view. A slot goes back to the pool when its connection is closed.
 */
export class ReadSlot {
  readonly buffer: Buffer;
  #view: Buffer;

  constructor(bytes: number) {
    this.buffer = Buffer.allocUnsafe(bytes);
    this.#view = this.buffer;
  }

  /** The first `n` bytes of the buffer. */
  view(n: number): Buffer {
    if (this.#view.length !== n) this.#view = n === this.buffer.length ? this.buffer : this.buffer.subarray(0, n);
    return this.#view;
  }
}

export class ReadSlotPool {
  readonly #free: ReadSlot[] = [];

  constructor(readonly bufferBytes: number, readonly maxFree: number) {}

  take(): ReadSlot {
    return this.#free.pop() ?? new ReadSlot(this.bufferBytes);
  }

  give(slot: ReadSlot): void {
    if (this.#free.length < this.maxFree) this.#free.push(slot);
  }
}
