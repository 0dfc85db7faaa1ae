/**
 * Lines of iptables-save text assembled as bytes in one small buffer, kept from render to
 * render, and handed to the output TextBuffer a block at a time (TextBuffer.writeBytes).
 *
 * A service port's KUBE-SVC and KUBE-SEP lines are a few tokens that differ per endpoint between
 * pieces that are the same for the port; written through TextBuffer.write they took a call (and
 * a check for room) per piece, nine per KUBE-SEP chain, a million at 10k services, and each
 * token was read once more to check that it needs no quotes. Here a line's room is made once,
 * and a token is checked as it is copied: one that needs quotes (or is not ASCII) makes the
 * writer go back to where the chain began and hand the chain to the general writer (writeRule,
 * which quotes). The bytes are copied once more into the output, at memory speed, a block of
 * 64 KB at a time: into memory touched before, so without page faults.
 */
import type { TextBuffer } from './save-text.js';

/** Bytes kept: big enough for any one chain kube-proxy writes but a service's thousands of endpoints. */
const SCRATCH_BYTES = 1 << 16;

export class LineScratch {
  readonly #bytes: Uint8Array = new Uint8Array(SCRATCH_BYTES);
  /** Bytes written and not yet handed on. */
  length = 0;
  /** How many times the bytes were handed on: bytes written before another flush are no longer there (again()). */
  flushes = 0;

  /**
   * Make room for `n` more bytes, handing what is written to `out` first if need be. False if
   * `n` is more than the scratch holds: the caller then writes that text through `out` itself
   * (after flush()).
   */
  room(out: TextBuffer, n: number): boolean {
    if (this.length + n <= SCRATCH_BYTES) return true;
    this.flush(out);
    return n <= SCRATCH_BYTES;
  }

  /** Hand what is written to `out`. Before anything else writes to `out`, so that the text stays in order. */
  flush(out: TextBuffer): void {
    if (this.length === 0) return;
    out.writeBytes(this.#bytes.subarray(0, this.length));
    this.length = 0;
    this.flushes++;
  }

  /**
   * Text encoded beforehand (asciiBytes): the pieces between the tokens, the same for every
   * line of a kind. Copied by the engine (TypedArray set), several times faster than a loop
   * over the characters of a string. Room must have been made.
   */
  bytes(piece: Uint8Array): void {
    this.#bytes.set(piece, this.length);
    this.length += piece.length;
  }

  /** Bytes [start, end) written before (and not handed on yet), again: a chain's name in its next line. Room must have been made. */
  again(start: number, end: number): void {
    this.#bytes.copyWithin(this.length, start, end);
    this.length += end - start;
  }

  /** Bytes [start, end) of `source` (a piece among others in one array). Room must have been made. */
  bytesOf(source: Uint8Array, start: number, end: number): void {
    const b = this.#bytes;
    let p = this.length;
    for (let i = start; i < end; i++) b[p++] = source[i]!;
    this.length = p;
  }

  /** One byte. Room must have been made. */
  code(c: number): void {
    this.#bytes[this.length++] = c;
  }

  /**
   * A token that iptables-save writes as it is (not empty, ASCII, no white space, quote or
   * backslash): copied, and true. Else false, and what was copied of it is left (the caller
   * goes back to a mark). Room must have been made.
   */
  bare(token: string): boolean {
    const n = token.length;
    const b = this.#bytes;
    let p = this.length;
    for (let i = 0; i < n; i++) {
      const c = token.charCodeAt(i);
      // What TextBuffer.writeToken quotes, and anything not ASCII.
      if (c <= 39 ? c === 32 || (c >= 9 && c <= 13) || c === 34 || c === 39 : c === 92 || c > 127) return false;
      b[p++] = c;
    }
    this.length = p;
    return n > 0;
  }

  /**
   * A token between double quotes as it is (ASCII, no quote or backslash to escape): copied,
   * and true; else false, as bare(). For comments, which have spaces.
   */
  inQuotes(token: string): boolean {
    const n = token.length;
    const b = this.#bytes;
    let p = this.length;
    for (let i = 0; i < n; i++) {
      const c = token.charCodeAt(i);
      if (c === 34 || c === 92 || c > 127) return false;
      b[p++] = c;
    }
    this.length = p;
    return true;
  }

  /**
   * A token as TextBuffer.writeToken writes it: as it is, or between double quotes with a
   * backslash before `"` and `\` when it has white space or a quote (or is empty). False if it
   * is not ASCII (left to the general writer, which encodes it). Room for 2n + 2 bytes.
   */
  token(token: string): boolean {
    const start = this.length;
    if (this.bare(token)) return true;
    this.length = start;
    const n = token.length;
    const b = this.#bytes;
    let p = start;
    b[p++] = 34;
    for (let i = 0; i < n; i++) {
      const c = token.charCodeAt(i);
      if (c > 127) return false;
      if (c === 34 || c === 92) b[p++] = 92;
      b[p++] = c;
    }
    b[p++] = 34;
    this.length = p;
    return true;
  }

  /**
   * `-A CHAIN ARG...` and a newline, as TextBuffer.writeRule writes it; false, with nothing
   * kept, when the line is longer than the scratch or has a token that is not ASCII.
   */
  rule(out: TextBuffer, chain: string, args: readonly string[]): boolean {
    let need = chain.length + 4;
    for (let i = 0; i < args.length; i++) need += 2 * args[i]!.length + 3;
    if (!this.room(out, need)) return false;
    const mark = this.length;
    this.code(45); // -
    this.code(65); // A
    this.code(32);
    let ok = this.ascii7(chain);
    for (let i = 0; ok && i < args.length; i++) {
      this.code(32);
      ok = this.token(args[i]!);
    }
    if (!ok) {
      this.length = mark;
      return false;
    }
    this.code(10);
    return true;
  }

  /** `s` if it is ASCII (copied as it is, as TextBuffer.write would); else false. */
  ascii7(s: string): boolean {
    const p = copyAscii(this.#bytes, this.length, s);
    if (p < 0) return false;
    this.length = p;
    return true;
  }
}

/** The one scratch the renderers share: rendering is synchronous, and each render leaves it empty. */
export const LINE_SCRATCH = new LineScratch();

/**
 * The characters of `s` as bytes from `at` on, where they end; -1 for a character that is not
 * ASCII (what was copied is then to be written over).
 */
export function copyAscii(b: Uint8Array, at: number, s: string): number {
  let p = at;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) return -1;
    b[p++] = c;
  }
  return p;
}

/** ASCII text as bytes, for LineScratch.bytes. */
export function asciiBytes(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) throw new Error(`not ASCII: ${JSON.stringify(s)}`);
    bytes[i] = c;
  }
  return bytes;
}
