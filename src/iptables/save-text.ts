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
 *
 * A big text's bytes are shared memory (SHARED_FROM), kept from one text to the next (spare
 * buffers, takeTextBuffer): a node's text is written into memory already touched by the text
 * before, and made a string once.
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

/**
 * From this size on a buffer's bytes are a growable SharedArrayBuffer, not a Buffer. V8 counts
 * a Buffer's bytes (an ArrayBuffer's) as external memory, and past about 64 MB of it allocated
 * since the last full collection it starts another, a mark-compact of the whole heap (600 MB on
 * the first node of a 5,000-node cluster): a node's 45 MB iptables text in one Buffer did that.
 * A SharedArrayBuffer's bytes are not counted, and a growable one grows in place: its address
 * space is reserved up front (SHARED_MAX_BYTES, no memory until written), so growing copies
 * nothing and the pages written before stay where they are. Smaller buffers (a chain's own rules,
 * a table's declarations) stay Buffers: many, short-lived, and too small to matter to V8.
 */
const SHARED_FROM = 1 << 20;
/** The address space a growable buffer reserves: more than V8's longest string (2^29 characters). */
const SHARED_MAX_BYTES = 1 << 30;

/** A growable SharedArrayBuffer: ES2024, which Node 20 has and the ES2023 library's types do not. */
interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  readonly maxByteLength: number;
  grow(byteLength: number): void;
}
const GrowableSharedArrayBuffer = SharedArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => GrowableSharedArrayBuffer;

/** Bytes for a buffer of `capacity`: shared memory that can grow in place from SHARED_FROM on (see there). */
function allocateBytes(capacity: number, shared: boolean): { bytes: Buffer; memory: GrowableSharedArrayBuffer | undefined } {
  if (!shared) return { bytes: Buffer.allocUnsafe(capacity), memory: undefined };
  const memory = new GrowableSharedArrayBuffer(capacity, { maxByteLength: Math.max(SHARED_MAX_BYTES, capacity) });
  return { bytes: Buffer.from(memory, 0, capacity), memory };
}

/** Bytes of text, appended to; ASCII is copied byte by byte, anything else encoded as UTF-8. */
export class TextBuffer {
  private bytes: Buffer;
  /** The growable shared memory under `bytes`, when they are shared (SHARED_FROM). */
  private memory: GrowableSharedArrayBuffer | undefined;
  /** Bytes written so far. */
  length = 0;
  /** Only ASCII written so far: the bytes are then also Latin-1, the cheapest string to make. */
  private ascii = true;
  /** The text, once seal() has made it a string and handed the bytes on. */
  private sealedText: string | undefined;

  /** Room for `capacity` bytes; `shared` bytes (see SHARED_FROM) by default from SHARED_FROM on. */
  constructor(capacity = 1 << 16, shared = capacity >= SHARED_FROM) {
    ({ bytes: this.bytes, memory: this.memory } = allocateBytes(Math.max(capacity, 64), shared));
  }

  /** A sealed buffer whose text is `text`, which must be ASCII (its characters are then its bytes): text made already, read by range. */
  static ofAsciiText(text: string): TextBuffer {
    const buffer = new TextBuffer(0);
    buffer.bytes = NO_BYTES;
    buffer.sealedText = text;
    buffer.length = text.length;
    return buffer;
  }

  /** Whether only ASCII was written (the text's characters are then its bytes). */
  get isAscii(): boolean {
    return this.ascii;
  }

  /** Whether seal() made the text a string (read from then on as slices of it). */
  get isSealed(): boolean {
    return this.sealedText !== undefined;
  }

  /** Whether the bytes are growable shared memory (SHARED_FROM). */
  get isShared(): boolean {
    return this.memory !== undefined;
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
    if (this.bytes.length < capacity) this.growTo(capacity);
    return this;
  }

  /** Room for `n` more bytes. */
  private reserve(n: number): Buffer {
    const need = this.length + n;
    if (need <= this.bytes.length) return this.bytes;
    if (this.sealedText !== undefined) throw new Error('a sealed text buffer cannot be written to');
    let capacity = Math.max(this.bytes.length * 2, 64);
    while (capacity < need) capacity *= 2;
    this.growTo(capacity);
    return this.bytes;
  }

  /** Room for `capacity` bytes, the bytes written kept: in place when the memory can grow, else copied to new bytes. */
  private growTo(capacity: number): void {
    const memory = this.memory;
    if (memory !== undefined && capacity <= memory.maxByteLength) {
      if (capacity > memory.byteLength) memory.grow(capacity);
      this.bytes = Buffer.from(memory, 0, capacity);
      return;
    }
    const next = allocateBytes(capacity, memory !== undefined || capacity >= SHARED_FROM);
    this.bytes.copy(next.bytes, 0, 0, this.length);
    this.bytes = next.bytes;
    this.memory = next.memory;
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
    if (this.sealedText !== undefined) return this.toHeapString(start, end);
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
    return this.bytes.toString('utf8', start, end);
  }

  /**
   * Kept for callers written when a big text was written a few megabytes at a time into heap
   * strings, joined at the end (its bytes were external memory then, see SHARED_FROM): a big
   * buffer's bytes are shared memory now, which V8 does not count, so the whole text is written
   * into one buffer and made a string once. Nothing changes; the buffer is returned.
   */
  spillWhenFull(): this {
    return this;
  }

  /**
   * No more writes: the text becomes a string on the heap (toHeapString), and the bytes go to
   * the buffer returned, empty, to write what comes next. Reading a sealed buffer (toString,
   * append from it) gives the same text as before. Text that is not ASCII is left as bytes
   * (its characters are not its bytes), and the buffer returned has new ones.
   */
  seal(): TextBuffer {
    if (!this.ascii) return new TextBuffer(this.bytes.length, this.memory !== undefined);
    const next = new TextBuffer(0, false);
    next.bytes = this.bytes;
    next.memory = this.memory;
    this.sealedText = this.toHeapString();
    this.bytes = NO_BYTES;
    this.memory = undefined;
    return next;
  }

  /**
   * `s`, which must be ASCII (a stretch of a text written before as ASCII), copied by the
   * runtime in one call: as Latin-1 its characters are its bytes, so it is neither measured nor
   * checked for UTF-8 first (writeLong does both: a third of the time of a big copy).
   */
  writeAscii(s: string): void {
    const b = this.reserve(s.length);
    this.length += b.write(s, this.length, s.length, 'latin1');
  }

  /**
   * Room for `n` more bytes, for a writer that fills them itself from `length` on and then sets
   * `length` past them: it must write ASCII only (the text is read as UTF-8 or Latin-1 alike).
   */
  room(n: number): Uint8Array {
    return this.reserve(n);
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
 * Buffers kept from one text to the next, as kube-proxy keeps its restore buffers for the life
 * of the process: a node's iptables text is 45 MB on a 10k-service cluster, and memory touched
 * for the first time costs a page fault every 4 KB (about 3 ms a megabyte). A spare's bytes are
 * shared memory (SHARED_FROM), already written: the next text written into them faults only
 * where it is longer than every text before. Held strongly: a weak reference is cleared by every
 * full collection, and a process making node after node collects between them.
 *
 * Bound: at most MAX_SPARES buffers, the largest given back (a smaller one gives way to a larger
 * one), so what is kept outside the heap is at most MAX_SPARES times the largest text written:
 * about 100 MB after a 10k-service cluster's node.
 */
const spares: TextBuffer[] = [];
/** A direct compile uses two at once (the body and the output); more would only hold memory. */
const MAX_SPARES = 2;

/**
 * A spare buffer, empty, with room for `capacity` bytes (the smallest that has it, else the
 * largest, grown), or a new one; its bytes are shared memory that grows in place either way.
 */
export function takeTextBuffer(capacity: number): TextBuffer {
  let chosen = -1;
  for (let i = 0; i < spares.length; i++) {
    const c = spares[i]!.capacity;
    if (chosen < 0) chosen = i;
    else {
      const best = spares[chosen]!.capacity;
      if (best >= capacity ? c >= capacity && c < best : c > best) chosen = i;
    }
  }
  if (chosen < 0) return new TextBuffer(capacity, true);
  const spare = spares[chosen]!;
  spares.splice(chosen, 1);
  return spare.reset(capacity);
}

/**
 * The text `write` writes, as one string on the heap (TextBuffer.toHeapString): written into a
 * spare buffer (takeTextBuffer), whose bytes are shared memory that V8 does not count, and made
 * a string once.
 */
export function writeHeapText(expectedBytes: number, write: (out: TextBuffer) => void): string {
  const out = takeTextBuffer(expectedBytes);
  write(out);
  const text = out.toHeapString();
  giveBackTextBuffer(out);
  return text;
}

/**
 * Give a buffer back once nothing reads its bytes any more. Kept only if its bytes are shared
 * memory (takeTextBuffer's, or a big one's) and not sealed, within the bound above.
 */
export function giveBackTextBuffer(buffer: TextBuffer): void {
  if (!buffer.isShared || spares.includes(buffer)) return;
  if (spares.length < MAX_SPARES) {
    spares.push(buffer);
    return;
  }
  let smallest = 0;
  for (let i = 1; i < spares.length; i++) if (spares[i]!.capacity < spares[smallest]!.capacity) smallest = i;
  if (spares[smallest]!.capacity < buffer.capacity) spares[smallest] = buffer;
}

/** Let every spare go (takeTextBuffer then makes new ones): for a process done making texts. */
export function releaseTextBuffers(): void {
  spares.length = 0;
}
