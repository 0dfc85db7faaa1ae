/**
 * Text written as UTF-8 bytes into one growing byte array, then decoded once: how a big
 * `ipvsadm -Ln` listing (10k virtual servers, 150k real servers, 12 MB) is put together without
 * a string per line. Strings for every line, joined per service and then once more for the
 * listing, are young objects that live through the scavenges of the listing's own allocation;
 * bytes outside the JavaScript heap are never copied by the garbage collector. ASCII (all of
 * an ipvsadm listing, in practice) is copied character by character; anything else goes
 * through the encoder.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A piece of bytes written earlier (another listing's), to be copied as it is. */
export interface ByteRun {
  readonly bytes: Uint8Array;
  readonly start: number;
  readonly end: number;
}

export class TextBytes {
  #bytes: Uint8Array;
  #length = 0;

  /** `reuse`: bytes to write into (from an earlier TextBytes' `bytes`) when they hold `capacity`. */
  constructor(capacity = 1 << 16, reuse?: Uint8Array) {
    this.#bytes = reuse !== undefined && reuse.length >= capacity ? reuse : new Uint8Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** The bytes written so far (a view, valid until the next write). */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  #reserve(more: number): void {
    const need = this.#length + more;
    if (need <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(need, this.#bytes.length * 2));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
  }

  text(s: string): void {
    const n = s.length;
    this.#reserve(n);
    const bytes = this.#bytes;
    let at = this.#length;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        this.#length = at;
        this.#encode(s.slice(i));
        return;
      }
      bytes[at++] = c;
    }
    this.#length = at;
  }

  #encode(s: string): void {
    // At most three bytes per UTF-16 unit.
    this.#reserve(s.length * 3);
    this.#length += encoder.encodeInto(s, this.#bytes.subarray(this.#length)).written;
  }

  /** One ASCII character by its code. */
  char(code: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = code;
  }

  spaces(count: number): void {
    if (count <= 0) return;
    this.#reserve(count);
    this.#bytes.fill(32, this.#length, this.#length + count);
    this.#length += count;
  }

  /** A non-negative integer in decimal. */
  decimal(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      this.text(String(value));
      return;
    }
    let digits = 1;
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
    this.#reserve(digits);
    const bytes = this.#bytes;
    let at = this.#length + digits;
    this.#length = at;
    let v = value;
    do {
      bytes[--at] = 48 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
  }

  /** Bytes of ASCII text, encoded beforehand (a piece written many times). */
  ascii(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** Copy bytes written before. */
  run(run: ByteRun): void {
    const n = run.end - run.start;
    this.#reserve(n);
    this.#bytes.set(run.bytes.subarray(run.start, run.end), this.#length);
    this.#length += n;
  }

  /** A copy of the bytes from `start` to `end` of what was written, in `store` from `at`. */
  copyOut(start: number, end: number, store: Uint8Array, at: number): void {
    store.set(this.#bytes.subarray(start, end), at);
  }

  toString(): string {
    return decoder.decode(this.#bytes.subarray(0, this.#length));
  }
}
