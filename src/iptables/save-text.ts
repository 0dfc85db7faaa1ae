/**
 * iptables-save text written as bytes into one growing buffer, and turned into a string once.
 *
 * A 10k-service ruleset is 37 MB of text in 370k lines of about 14 tokens each. Joining tokens
 * into line strings and lines into a table string makes every byte three times (a string per
 * line, a string per table, the result) and leaves a million short-lived strings to the garbage
 * collector; copying each token's characters into one buffer makes every byte once. Tokens are
 * checked for quoting as they are copied (the check and the copy read the same characters):
 * kube-proxy's text is ASCII, so a token that needs quotes or is not ASCII is rare and is
 * written again through quoteToken and the UTF-8 encoder.
 */
import { Buffer } from 'node:buffer';

/** Whether a token has white space, a quote or a backslash: checked by char code (hot path). */
function needsQuotes(token: string): boolean {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    // space, \t \n \v \f \r, " ' \ (and any other white space is rare enough for the regex below)
    if (c === 32 || (c >= 9 && c <= 13) || c === 34 || c === 39 || c === 92) return true;
    if (c > 127 && /\s/.test(token[i]!)) return true;
  }
  return false;
}

/** A token as kube-proxy writes it into the restore buffer. */
export function quoteToken(token: string): string {
  if (token === '') return '""';
  if (!needsQuotes(token)) return token;
  return `"${token.replace(/(["\\])/g, '\\$1')}"`;
}

/** How many digits a non-negative safe integer has in decimal. */
export function decimalDigits(value: number): number {
  let digits = 1;
  for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
  return digits;
}

const NO_BYTES = Buffer.alloc(0);

/** Bytes of text, appended to; ASCII is copied byte by byte, anything else encoded as UTF-8. */
export class TextBuffer {
  private bytes: Buffer;
  /** Bytes written so far. */
  length = 0;
  /** Only ASCII written so far: the bytes are then also Latin-1, the cheapest string to make. */
  private ascii = true;
  /** The text, once seal() has made it a string and handed the bytes on. */
  private sealedText: string | undefined;
  /** With spillWhenFull(): the text of the bytes written before, one string each time the buffer was full. */
  private spilled: string[] | undefined;

  constructor(capacity = 1 << 16) {
    this.bytes = Buffer.allocUnsafe(Math.max(capacity, 64));
  }

  /** Bytes it can hold before it grows. */
  get capacity(): number {
    return this.bytes.length;
  }

  /** Empty, with room for `capacity` bytes: to be written again from the start. */
  reset(capacity: number): this {
    this.length = 0;
    this.ascii = true;
    this.sealedText = undefined;
    this.spilled = undefined;
    if (this.bytes.length < capacity) this.bytes = Buffer.allocUnsafe(capacity);
    return this;
  }

  /** Room for `n` more bytes. */
  private reserve(n: number): Buffer {
    const need = this.length + n;
    if (need <= this.bytes.length) return this.bytes;
    if (this.sealedText !== undefined) throw new Error('a sealed text buffer cannot be written to');
    if (this.spilled !== undefined && this.length > 0) {
      // Every write reserves its room before it writes: the bytes so far are whole characters.
      this.spilled.push(this.bytes.toString('utf8', 0, this.length));
      this.length = 0;
      if (n <= this.bytes.length) return this.bytes;
    }
    let capacity = this.bytes.length * 2;
    while (capacity < need) capacity *= 2;
    const bytes = Buffer.allocUnsafe(capacity);
    this.bytes.copy(bytes, 0, 0, this.length);
    this.bytes = bytes;
    return bytes;
  }

  /** `s` as it is. */
  write(s: string): void {
    const n = s.length;
    const b = this.reserve(n);
    let p = this.length;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) {
        this.writeUtf8(s);
        return;
      }
      b[p++] = c;
    }
    this.length = p;
  }

  /** `s` as UTF-8, from the position write() started at. */
  private writeUtf8(s: string): void {
    const b = this.reserve(s.length * 3);
    this.length += b.write(s, this.length, 'utf8');
    this.ascii = false;
  }

  /** One ASCII character by its code. */
  writeCode(c: number): void {
    const b = this.reserve(1);
    b[this.length++] = c;
  }

  /** A non-negative integer in decimal (anything else as String() writes it). */
  writeDecimal(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      this.write(String(value));
      return;
    }
    const digits = decimalDigits(value);
    const b = this.reserve(digits);
    let p = this.length + digits;
    this.length = p;
    let v = value;
    do {
      b[--p] = 48 + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
  }

  /** ASCII text encoded beforehand (a piece written many times). */
  writeBytes(bytes: Uint8Array): void {
    const b = this.reserve(bytes.length);
    b.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** A token, quoted as quoteToken quotes it. */
  writeToken(token: string): void {
    const n = token.length;
    if (n === 0) {
      this.write('""');
      return;
    }
    const b = this.reserve(n);
    let p = this.length;
    for (let i = 0; i < n; i++) {
      const c = token.charCodeAt(i);
      // What needsQuotes looks for, and anything not ASCII.
      if (c <= 39 ? c === 32 || (c >= 9 && c <= 13) || c === 34 || c === 39 : c === 92 || c > 127) {
        this.writeQuoted(token);
        return;
      }
      b[p++] = c;
    }
    this.length = p;
  }

  /**
   * A token that needs quotes or is not ASCII. An ASCII token is quoted here as quoteToken would
   * (double quotes around, a backslash before " and \): comments with spaces are on every
   * service port. Anything else goes through quoteToken and the UTF-8 encoder.
   */
  private writeQuoted(token: string): void {
    const n = token.length;
    const b = this.reserve(2 * n + 2);
    let p = this.length;
    b[p++] = 34;
    for (let i = 0; i < n; i++) {
      const c = token.charCodeAt(i);
      if (c > 127) {
        this.write(quoteToken(token));
        return;
      }
      if (c === 34 || c === 92) b[p++] = 92;
      b[p++] = c;
    }
    b[p++] = 34;
    this.length = p;
  }

  /**
   * `-A CHAIN arg arg ...` and a newline: one rule as kube-proxy writes it. This is most of the
   * text, so the line is written in one loop with room made once; a token that needs quotes (or
   * a chain name or token that is not ASCII) is handed to the slower writers.
   */
  writeRule(chain: string, args: readonly string[]): void {
    let need = chain.length + 4;
    for (let i = 0; i < args.length; i++) need += args[i]!.length + 1;
    let b = this.reserve(need);
    const lineStart = this.length;
    let p = lineStart;
    b[p++] = 45; // -
    b[p++] = 65; // A
    b[p++] = 32;
    for (let i = 0; i < chain.length; i++) {
      const c = chain.charCodeAt(i);
      if (c > 127) {
        this.length = lineStart;
        this.write('-A ');
        this.write(chain);
        b = this.reserve(need);
        p = this.length;
        break;
      }
      b[p++] = c;
    }
    for (let i = 0; i < args.length; i++) {
      b[p++] = 32;
      const token = args[i]!;
      const n = token.length;
      const start = p;
      let plain = n > 0;
      for (let j = 0; j < n; j++) {
        const c = token.charCodeAt(j);
        // What needsQuotes looks for, and anything not ASCII. Letters, digits, '-', '.', '/' and ':'
        // are all above 39, so most characters take one comparison and the second branch.
        if (c <= 39 ? c === 32 || (c >= 9 && c <= 13) || c === 34 || c === 39 : c === 92 || c > 127) {
          plain = false;
          break;
        }
        b[p++] = c;
      }
      if (!plain) {
        this.length = start;
        if (n === 0) this.write('""');
        else this.writeQuoted(token);
        // The quoted token took more room than counted: make room for the rest of the line again.
        b = this.reserve(need);
        p = this.length;
      }
    }
    b[p++] = 10;
    this.length = p;
  }

  /** `:CHAIN POLICY [0:0]` and a newline: a chain declaration (policy "-" for a user chain). */
  writeChainDeclaration(chain: string, policy: string | undefined): void {
    this.writeCode(58);
    this.write(chain);
    this.writeCode(32);
    this.write(policy ?? '-');
    this.write(' [0:0]\n');
  }

  /** Bytes [start, end) of another buffer. */
  append(from: TextBuffer, start: number, end: number): void {
    if (end <= start) return;
    const b = this.reserve(end - start);
    // A sealed buffer's text is ASCII: its characters are its bytes.
    if (from.sealedText !== undefined) b.write(from.sealedText.slice(start, end), this.length, end - start, 'latin1');
    else from.bytes.copy(b, this.length, start, end);
    this.length += end - start;
    if (!from.ascii) this.ascii = false;
  }

  /** The text of bytes [start, end) (default: all). */
  toString(start = 0, end = this.length): string {
    if (this.sealedText !== undefined || (this.spilled !== undefined && this.spilled.length > 0)) return this.toHeapString(start, end);
    return this.bytes.toString(this.ascii ? 'latin1' : 'utf8', start, end);
  }

  /**
   * toString's text as a string on V8's heap. Node makes a Latin-1 string of more than about a
   * megabyte an external string, and reports its bytes to V8 as external memory: a node's
   * ruleset text (140 MB for a 10k-service cluster) then pushes V8 over its external-memory
   * limit, and V8 answers with a full mark-compact of the whole heap, whatever the heap holds.
   * Decoding as UTF-8 makes an ordinary sequential string instead (one byte a character while
   * the text is ASCII), which counts towards the heap like any other string and costs the
   * marker nothing to hold (it has no pointers). The bytes are UTF-8 either way: ASCII is both.
   */
  toHeapString(start = 0, end = this.length): string {
    if (this.sealedText !== undefined) return this.sealedText.slice(start, end);
    if (this.spilled !== undefined && this.spilled.length > 0) {
      if (start !== 0 || end !== this.length) throw new Error('a spilled text buffer is read whole');
      // One join: the text is then one flat string (a + b would be a rope, flattened on first read).
      return [...this.spilled, this.bytes.toString('utf8', 0, this.length)].join('');
    }
    return this.bytes.toString('utf8', start, end);
  }

  /**
   * From now on (until reset), a write that does not fit makes the bytes so far a heap string
   * and starts again at the front of the same bytes, instead of growing them; toHeapString then
   * gives the whole text, and nothing else reads it. For a text made once into one string (a
   * node's iptables-save text): its bytes are only on their way to the string, and a buffer of
   * the text's full size would be external memory that V8 counts towards a full collection.
   */
  spillWhenFull(): this {
    this.spilled = [];
    return this;
  }

  /**
   * No more writes: the text becomes a string on the heap (toHeapString), and the bytes go to
   * the buffer returned, empty, to write what comes next. For text kept long and read often by
   * range (shared-text.ts keeps every service port's text for the next node): bytes held in
   * Buffers are external memory to V8, and past 64 MB of it allocated since the last full
   * collection V8 starts another, however little the heap itself grew; the same text as strings
   * is heap like any other, and one set of bytes serves every chunk in turn. Reading a sealed
   * buffer (toString, append from it) gives the same text as before. Text that is not ASCII is
   * left as bytes (its characters are not its bytes), and the buffer returned has new ones.
   */
  seal(): TextBuffer {
    if (!this.ascii) return new TextBuffer(this.bytes.length);
    const next = new TextBuffer(0);
    next.bytes = this.bytes;
    this.sealedText = this.toHeapString();
    this.bytes = NO_BYTES;
    return next;
  }

  /**
   * `s` as it is, encoded by the runtime in one call: for long text (a stretch of a text written
   * before), where write()'s loop over its characters costs some twenty times more.
   */
  writeLong(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    const b = this.reserve(n);
    b.write(s, this.length, n, 'utf8');
    this.length += n;
    if (n !== s.length) this.ascii = false;
  }
}

/**
 * Buffers kept from one compile to the next, as kube-proxy keeps its restore buffers from one
 * sync to the next: a 10k-service sync writes 37 MB, and allocating that afresh each time costs
 * page faults and, because V8 counts it as external memory, a full garbage collection. Held
 * weakly, so an idle process gives the memory back at its next full collection.
 */
const spares: WeakRef<TextBuffer>[] = [];
/** A direct compile uses two (the body and the output); more would only hold memory. */
const MAX_SPARES = 2;

/** A spare buffer (one with room for `capacity` bytes if there is one), or a new one. */
export function takeTextBuffer(capacity: number): TextBuffer {
  let chosen = -1;
  for (let i = spares.length - 1; i >= 0; i--) {
    const spare = spares[i]!.deref();
    if (spare === undefined) spares.splice(i, 1);
    else if (chosen < 0 || spare.capacity >= capacity) chosen = i;
  }
  if (chosen >= 0) {
    const spare = spares[chosen]!.deref();
    spares.splice(chosen, 1);
    if (spare !== undefined) return spare.reset(capacity);
  }
  return new TextBuffer(capacity);
}

/** What writeHeapText writes through: a few megabytes at a time. */
const SPILL_BYTES = 4 << 20;

/**
 * The text `write` writes, as one string on the heap (TextBuffer.toHeapString), written through
 * a spare buffer of at most a few megabytes (TextBuffer.spillWhenFull): a 47 MB ruleset text
 * then neither allocates 47 MB outside the heap nor counts as external memory.
 */
export function writeHeapText(expectedBytes: number, write: (out: TextBuffer) => void): string {
  const out = takeTextBuffer(Math.min(expectedBytes, SPILL_BYTES)).spillWhenFull();
  write(out);
  const text = out.toHeapString();
  giveBackTextBuffer(out);
  return text;
}

/** Give a buffer back once nothing reads its bytes any more. */
export function giveBackTextBuffer(buffer: TextBuffer): void {
  if (spares.length < MAX_SPARES) spares.push(new WeakRef(buffer));
}
