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
 * before, and made a string once, or kept as the bytes it is (keepAsBytes) for output that is
 * bytes anyway. Memory no text has touched yet is touched ahead of the writer by a worker thread
 * (prefaultAhead, util/prefault.ts), which takes its page faults on another core.
 */
import { Buffer } from 'node:buffer';
import { prefault } from '../util/prefault.js';

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
/** From this capacity on a shared buffer grows by GROW_STEP past what it needs, not by doubling. */
const GROW_STEP_FROM = 16 << 20;
const GROW_STEP = 16 << 20;
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

/** Whether a string is ASCII (its characters are then its bytes). */
export function isAsciiString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

/** Bytes of text, appended to; ASCII is copied byte by byte, anything else encoded as UTF-8. */
export class TextBuffer {
  private bytes: Buffer;
  /** The growable shared memory under `bytes`, when they are shared (SHARED_FROM). */
  private memory: GrowableSharedArrayBuffer | undefined;
  /** Where `bytes` start in `memory` (a spare made of memory whose first bytes were never written: sealInPlace). */
  private memoryOffset = 0;
  /**
   * Bytes before the text left unwritten (withRoomBefore): the text is bytes [roomBefore, length),
   * and text that must come before it may be written there later (writeBefore).
   */
  private room = 0;
  /** The room is memory never written (withRoomBefore), not a spare's: sealInPlace hands on only what was written. */
  private roomUntouched = false;
  /** Bytes written so far (from 0, or from roomBefore on). */
  length = 0;
  /** Only ASCII written so far: the bytes are then also Latin-1, the cheapest string to make. */
  private ascii = true;
  /** keepAsBytes() made the bytes written the text for good: no more writes, never a spare. */
  private kept = false;
  /** The text, once seal() has made it a string and handed the bytes on. */
  private sealedText: string | undefined;
  /** The byte whose character is sealedText's first: byte `i` is sealedText[i - sealedFrom]. */
  private sealedFrom = 0;

  /** Room for `capacity` bytes; `shared` bytes (see SHARED_FROM) by default from SHARED_FROM on. */
  constructor(capacity = 1 << 16, shared = capacity >= SHARED_FROM) {
    ({ bytes: this.bytes, memory: this.memory } = allocateBytes(Math.max(capacity, 64), shared));
  }

  /**
   * Room for `capacity` bytes of text after `room` bytes left unwritten, shared memory: the
   * room costs address space, not memory, until writeBefore writes into it. For text that
   * another text will take whole, after text not known yet (sealInPlace).
   */
  static withRoomBefore(capacity: number, room: number): TextBuffer {
    const buffer = new TextBuffer(capacity + room, true);
    buffer.room = room;
    buffer.length = room;
    buffer.roomUntouched = true;
    buffer.prefaultAhead();
    return buffer;
  }

  /**
   * Have the bytes from the write position to the capacity touched in the background
   * (prefault), when they are shared memory: the pages the text is written into next.
   */
  prefaultAhead(): void {
    if (this.memory !== undefined) prefault(this.memory, this.memoryOffset + this.length, this.memoryOffset + this.bytes.length);
  }

  /** Empty as it is, its text to start after `room` bytes (see withRoomBefore): for a spare (takeTextBuffer). */
  leaveRoomBefore(room: number): this {
    if (this.length !== this.room || this.sealedText !== undefined) throw new Error('room is left only before a text not written yet');
    if (this.bytes.length < room + 64) this.growTo(room + 64);
    this.room = room;
    this.length = room;
    return this;
  }

  /** Bytes left unwritten before the text (withRoomBefore), 0 for most buffers. */
  get roomBefore(): number {
    return this.room;
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

  /** Whether keepAsBytes() made the bytes written the text for good. */
  get isKept(): boolean {
    return this.kept;
  }

  /**
   * No more writes: the text stays as its bytes, a view of which is returned (from `start`: a
   * text written in place around this buffer's, writeBefore, starts before it), and this buffer
   * keeps them (it is never given back as a spare, and reading it, toString or append from it,
   * reads them). For a text whose output is bytes (a command's standard output): no string is
   * made of it, which would be as much fresh memory again for the writer's thread to touch.
   */
  keepAsBytes(start = this.room): Buffer {
    if (this.sealedText !== undefined) throw new Error('a sealed text buffer has no bytes to keep');
    this.kept = true;
    // Capacity cut to the text: any write now takes reserve()'s slow path, which refuses it.
    this.bytes = this.bytes.subarray(0, this.length);
    return this.bytes.subarray(start, this.length);
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
    if (this.kept) throw new Error('a text buffer kept as bytes cannot be written again');
    this.length = 0;
    this.room = 0;
    this.roomUntouched = false;
    this.ascii = true;
    this.sealedText = undefined;
    this.sealedFrom = 0;
    if (this.bytes.length < capacity) this.growTo(capacity);
    return this;
  }

  /** Room for `n` more bytes. */
  private reserve(n: number): Buffer {
    const need = this.length + n;
    if (need <= this.bytes.length) return this.bytes;
    if (this.sealedText !== undefined) throw new Error('a sealed text buffer cannot be written to');
    if (this.kept) throw new Error('a text buffer kept as bytes cannot be written to');
    let capacity = Math.max(this.bytes.length * 2, 64);
    while (capacity < need) capacity *= 2;
    // Big shared memory grows in place (nothing is copied), so by steps, not doubling: the pages
    // past the text would be touched for nothing (the prefaulter touches all of them).
    if (this.memory !== undefined && this.bytes.length >= GROW_STEP_FROM) capacity = Math.min(capacity, need + GROW_STEP);
    this.growTo(capacity);
    this.prefaultAhead();
    return this.bytes;
  }

  /** Room for `capacity` bytes, the bytes written kept: in place when the memory can grow, else copied to new bytes. */
  private growTo(capacity: number): void {
    const memory = this.memory;
    const offset = this.memoryOffset;
    if (memory !== undefined && offset + capacity <= memory.maxByteLength) {
      if (offset + capacity > memory.byteLength) memory.grow(offset + capacity);
      this.bytes = Buffer.from(memory, offset, capacity);
      return;
    }
    const next = allocateBytes(capacity, memory !== undefined || capacity >= SHARED_FROM);
    this.bytes.copy(next.bytes, 0, 0, this.length);
    this.bytes = next.bytes;
    this.memory = next.memory;
    this.memoryOffset = 0;
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
    if (from.sealedText !== undefined) b.write(from.sealedText.slice(start - from.sealedFrom, end - from.sealedFrom), this.length, end - start, 'latin1');
    else from.bytes.copy(b, this.length, start, end);
    this.length += end - start;
    if (!from.ascii) this.ascii = false;
  }

  /** The text of bytes [start, end) (default: all). */
  toString(start = this.room, end = this.length): string {
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
  toHeapString(start = this.room, end = this.length): string {
    if (this.sealedText !== undefined) return this.sealedText.slice(start - this.sealedFrom, end - this.sealedFrom);
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
    if (this.kept) throw new Error('a text buffer kept as bytes is not sealed');
    const room = this.room;
    if (!this.ascii) {
      const fresh = new TextBuffer(this.bytes.length, this.memory !== undefined);
      fresh.room = room;
      fresh.length = room;
      fresh.roomUntouched = true;
      return fresh;
    }
    const next = new TextBuffer(0, false);
    next.bytes = this.bytes;
    next.memory = this.memory;
    next.memoryOffset = this.memoryOffset;
    // The next buffer leaves as much room before its text (never written, if it was not here).
    next.room = room;
    next.length = room;
    next.roomUntouched = this.roomUntouched;
    this.sealedText = this.toHeapString(room, this.length);
    this.sealedFrom = room;
    this.bytes = NO_BYTES;
    this.memory = undefined;
    return next;
  }

  /**
   * Write `bytes` bytes of text into the room before the text (withRoomBefore), ending where
   * the text starts: `write` writes them, as to any buffer. The room must hold them.
   */
  writeBefore(bytes: number, write: (out: this) => void): void {
    const end = this.length;
    if (bytes > this.room || this.sealedText !== undefined || this.kept) throw new Error(`no room for ${bytes} bytes before the text (${this.room})`);
    this.length = this.room - bytes;
    write(this);
    const written = this.length - (this.room - bytes);
    this.length = end;
    if (written !== bytes) throw new Error(`${written} bytes written before the text, not ${bytes}`);
  }

  /**
   * Bytes [start, length) made one string on the heap (toHeapString), returned; the buffer is
   * sealed with that string as its text (the bytes from `start` on are its characters, so they
   * must be ASCII), and its memory is given back as a spare (giveBackTextBuffer): from `start`
   * on when the room before was never written (withRoomBefore), else whole (a spare's, whose
   * next text is then written where this one was). For a text written in place around this
   * buffer's (writeBefore, then appended to): the text is made once, and this buffer's text is
   * a part of it.
   */
  sealInPlace(start: number): string {
    if (!this.ascii || this.sealedText !== undefined || this.kept) throw new Error('only a text buffer of ASCII, not sealed nor kept, is sealed in place');
    const text = this.toHeapString(start, this.length);
    const memory = this.memory;
    const offset = this.memoryOffset + (this.roomUntouched ? start : 0);
    this.sealedText = text;
    this.sealedFrom = start;
    this.bytes = NO_BYTES;
    this.memory = undefined;
    if (memory !== undefined) {
      const spare = new TextBuffer(0, false);
      spare.memory = memory;
      spare.memoryOffset = offset;
      spare.bytes = Buffer.from(memory, offset, memory.byteLength - offset);
      giveBackTextBuffer(spare);
    }
    return text;
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
  reserveBytes(n: number): Uint8Array {
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
 * With `roomBefore`, its text starts after that many bytes (TextBuffer.withRoomBefore), where
 * the text before it may be written later (writeBefore): the spare's memory is written from
 * where the last text in it started, as without.
 */
export function takeTextBuffer(capacity: number, roomBefore = 0): TextBuffer {
  const need = capacity + roomBefore;
  let chosen = -1;
  for (let i = 0; i < spares.length; i++) {
    const c = spares[i]!.capacity;
    if (chosen < 0) chosen = i;
    else {
      const best = spares[chosen]!.capacity;
      if (best >= need ? c >= need && c < best : c > best) chosen = i;
    }
  }
  let buffer: TextBuffer;
  if (chosen < 0) buffer = new TextBuffer(need, true);
  else {
    buffer = spares[chosen]!.reset(need);
    spares.splice(chosen, 1);
  }
  if (roomBefore > 0) buffer.leaveRoomBefore(roomBefore);
  buffer.prefaultAhead();
  return buffer;
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
  if (!buffer.isShared || buffer.isKept || spares.includes(buffer)) return;
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
