/**
 * A RuleSink that writes iptables-save text straight away, in the layout renderIptablesSave
 * gives a Ruleset (each table's declarations, then each chain's rules in declaration order,
 * then COMMIT), without a rule object, a line string, or anything else the garbage collector
 * would have to keep until the end: the sink holds bytes and numbers only, and a chain's name
 * lives in the handle the compiler holds while it writes that chain.
 *
 * Declarations are copied into their table's buffer as chains are declared. Rules are copied
 * into one body buffer as they come: kube-proxy declares a service's chains one after the other
 * and fills each before declaring the next, so the body is mostly in declaration order already.
 * A rule for a chain declared before the one being filled (KUBE-SERVICES gets a rule per service
 * port, all through the sync) goes to that chain's own buffer instead. finish() lays out each
 * table: declarations, then for each chain its run of the body and its own buffer; neighbouring
 * runs of the body are copied in one piece.
 *
 * Unlike the Ruleset sink, this one does not check that a chain is declared once (that would
 * mean a set of every name): the compiler is the same code for both, and the tests run it
 * through both.
 */
import { TextBuffer, giveBackTextBuffer, isAsciiString, takeTextBuffer, writeHeapText } from './save-text.js';
import type { RuleSink } from './rule-sink.js';
import type { ServicePortChains } from './service-port-chains.js';
import type { TableName } from './types.js';

export interface TextChain {
  /** Number in declaration order, over all tables. */
  readonly id: number;
  readonly name: string;
}

/** A growable list of 32-bit integers (no pointers for the garbage collector to trace). */
class IntList {
  values = new Int32Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const values = new Int32Array(this.values.length * 2);
      values.set(this.values);
      this.values = values;
    }
    this.values[this.length++] = value;
  }
}

/** Bytes [start, end) of a buffer: whole lines of iptables-save text written by another compile. */
export interface TextPiece {
  readonly from: TextBuffer;
  readonly start: number;
  readonly end: number;
}

/**
 * Pieces of text as one flat list, three entries a piece: a buffer, then the start and the end
 * of its bytes. No object a piece: a node of a big cluster takes some 25k pieces of shared text,
 * and every port's shared text is kept as such a list for every node after (shared-text.ts).
 */
export type PieceList = (TextBuffer | number)[];

/** Add bytes [start, end) of `from` to `pieces`: to the last piece when they follow on from it. */
export function addPiece(pieces: PieceList, from: TextBuffer, start: number, end: number): void {
  if (end <= start) return;
  const n = pieces.length;
  if (n > 0 && pieces[n - 3] === from && pieces[n - 1] === start) {
    pieces[n - 1] = end;
    return;
  }
  pieces.push(from, start, end);
}

/** Pieces from entry `first` to the end of `pieces` (a multiple of three entries), in order, to `out`. */
function layPieces(pieces: readonly (TextBuffer | number)[], first: number, out: TextOut): void {
  for (let i = first; i < pieces.length; i += 3) out.append(pieces[i] as TextBuffer, pieces[i + 1] as number, pieces[i + 2] as number);
}

interface TableText {
  readonly name: TableName;
  /** Its place in output order. */
  readonly index: number;
  readonly declarations: TextBuffer;
  /**
   * Declarations of adopted text (adoptText) among this sink's own: the declarations are the
   * pieces, then the bytes of `declarations` from `declarationsFrom` on.
   */
  readonly declarationPieces: PieceList;
  declarationsFrom: number;
  /** Its chains' ids in declaration order. */
  readonly chains: IntList;
}

export class IptablesTextSink implements RuleSink<TextChain> {
  readonly copiesArgs = true;
  private readonly tables = new Map<TableName, TableText>();
  /** Each chain's run of the body, [start, end); start is -1 when it has none. */
  private readonly bodyStart = new IntList();
  private readonly bodyEnd = new IntList();
  /** The rules a chain got while another chain was being filled, by chain id. */
  private readonly own = new Map<number, OwnRules>();
  /**
   * The rules of adopted text (adoptText, adoptPieces), by its id: the pieces of the list from
   * entry adoptedAt[id] on, copied from where they are in finish().
   */
  private readonly adopted = new Map<number, readonly (TextBuffer | number)[]>();
  private readonly adoptedAt = new IntList();
  private readonly body: TextBuffer;
  /**
   * The body holds the rules of the last table only (the others' go to their chains' own
   * buffers): the body is then one run of the text, which finish() can make the text around in
   * place (its room before holds the text before it). Otherwise any table's.
   */
  private readonly bodyTable: TableText | undefined;
  /** Each chain's table (its index in output order). */
  private readonly tableOfChain = new IntList();
  /** Buffers taken from the spares (takeTextBuffer), given back by release(). */
  private readonly spares: TextBuffer[] = [];
  /** The chain whose rules end the body. */
  private filling = -1;
  /** finish() has given the body buffer back. */
  private finished = false;

  /**
   * `tables` in output order; `expectedBytes` sizes the body buffer (it grows if need be). With
   * `roomBefore` (about the bytes of the text before the last table's rules: the other tables,
   * and the last one's declarations), the body leaves that much room before its text and holds
   * the last table's rules only, and that table's declarations are written into a spare buffer
   * of that size: a sync written here (not from shared text) then writes its text into memory
   * touched by the one before, and finish() makes the text around the body in place.
   */
  constructor(tables: readonly TableName[], expectedBytes = 1 << 20, roomBefore = 0) {
    const last = tables[tables.length - 1];
    let bodyTable: TableText | undefined;
    for (const name of tables) {
      let declarations: TextBuffer;
      if (roomBefore > 0 && name === last) this.spares.push((declarations = takeTextBuffer(roomBefore)));
      else declarations = new TextBuffer(1 << 16);
      const text: TableText = { name, index: this.tables.size, declarations, declarationPieces: [], declarationsFrom: 0, chains: new IntList() };
      this.tables.set(name, text);
      if (roomBefore > 0 && name === last) bodyTable = text;
    }
    this.bodyTable = bodyTable;
    this.body = takeTextBuffer(expectedBytes, roomBefore);
  }

  declareChain(table: TableName, name: string): TextChain {
    const text = this.tableText(table);
    const id = this.newChainId(text);
    text.declarations.writeChainDeclaration(name, undefined);
    return { id, name };
  }

  appendRule(chain: TextChain, args: readonly string[]): void {
    const id = chain.id;
    if (this.fills(id)) {
      this.body.writeRule(chain.name, args);
      this.bodyEnd.values[id] = this.body.length;
    } else {
      this.ownRules(id).bytes().writeRule(chain.name, args);
    }
  }

  /**
   * Rules already written as text (whole `-A` lines of `chain`), appended as appendRule would.
   * Into the body they are copied; for a chain with its own rules only where they are is kept
   * (OwnRules), and they are copied once, into the text (finish()).
   */
  appendRuleText(chain: TextChain, from: TextBuffer, start: number, end: number): void {
    const id = chain.id;
    if (this.fills(id)) {
      this.body.append(from, start, end);
      this.bodyEnd.values[id] = this.body.length;
    } else {
      this.ownRules(id).take(from, start, end);
    }
  }

  private tableText(table: TableName): TableText {
    if (this.finished) throw new Error('the text sink is finished');
    const text = this.tables.get(table);
    if (!text) throw new Error(`the text sink has no ${table} table`);
    return text;
  }

  /** The next chain of `text`, without rules yet. */
  private newChainId(text: TableText): number {
    const id = this.bodyStart.length;
    this.bodyStart.push(-1);
    this.bodyEnd.push(-1);
    this.adoptedAt.push(0);
    this.tableOfChain.push(text.index);
    text.chains.push(id);
    return id;
  }

  /**
   * Whether the next rule of chain `id` goes to the body (the caller then records where it
   * ends), else to the chain's own rules.
   */
  private fills(id: number): boolean {
    if (this.finished) throw new Error('the text sink is finished');
    const bodyTable = this.bodyTable;
    if (id !== this.filling && id === this.bodyStart.length - 1 && this.bodyStart.values[id] === -1 && (bodyTable === undefined || this.tableOfChain.values[id] === bodyTable.index)) {
      // The last chain declared, and still empty: everything in the body was declared before it.
      this.filling = id;
      this.bodyStart.values[id] = this.body.length;
    }
    return id === this.filling;
  }

  private ownRules(id: number): OwnRules {
    let own = this.own.get(id);
    if (own === undefined) this.own.set(id, (own = new OwnRules()));
    return own;
  }

  /**
   * Chains another compile wrote as text (shared-text.ts), declared here in their order:
   * `declarations` their `:CHAIN` lines, `rules` their `-A` lines, each chain's after the one
   * before. They take one place in the table's order, after every chain declared so far; no
   * rule may be appended to them after.
   */
  adoptText(table: TableName, declarations: readonly TextPiece[], rules: readonly TextPiece[]): void {
    const pieces: PieceList = [];
    for (const piece of declarations) pieces.push(piece.from, piece.start, piece.end);
    const rulesAt = pieces.length;
    for (const piece of rules) pieces.push(piece.from, piece.start, piece.end);
    this.adoptPieces(table, pieces, 0, rulesAt);
  }

  /**
   * adoptText with the pieces in one list (PieceList): the declarations from entry
   * `declarationsAt` to `rulesAt`, the rules from there to the end. The list is kept as it is
   * until finish(): it must not change.
   */
  adoptPieces(table: TableName, pieces: readonly (TextBuffer | number)[], declarationsAt: number, rulesAt: number): void {
    const text = this.tableText(table);
    // The bytes are copied once, into the output, by finish(): only where they are is kept here.
    const id = this.newChainId(text);
    this.adopted.set(id, pieces);
    this.adoptedAt.values[id] = rulesAt;
    if (text.declarations.length > text.declarationsFrom) {
      addPiece(text.declarationPieces, text.declarations, text.declarationsFrom, text.declarations.length);
      text.declarationsFrom = text.declarations.length;
    }
    for (let i = declarationsAt; i < rulesAt; i += 3) addPiece(text.declarationPieces, pieces[i] as TextBuffer, pieces[i + 1] as number, pieces[i + 2] as number);
    // Nothing may be appended to these chains: the next rule of a chain declared before goes to its own buffer.
    this.filling = id;
  }

  /**
   * A service port's KUBE-SVC/KUBE-SVL and KUBE-SEP chains, declared and filled at once: their
   * lines written from what they are made of (service-port-chains.ts, through the line scratch),
   * not a rule's argument array and comment string per endpoint. Nothing is appended to these
   * chains after, so they take one place in the table's order, as one run of the body.
   */
  writeServicePortChains(table: TableName, chains: ServicePortChains): void {
    const text = this.tableText(table);
    const id = this.newChainId(text);
    chains.writeDeclarations(text.declarations);
    if (this.fills(id)) {
      chains.writeRules(this.body);
      this.bodyEnd.values[id] = this.body.length;
    } else {
      chains.writeRules(this.ownRules(id).bytes());
    }
  }

  writeChain(table: TableName, name: string, rules: readonly (readonly string[])[]): TextChain {
    const chain = this.declareChain(table, name);
    for (let i = 0; i < rules.length; i++) this.appendRule(chain, rules[i]!);
    return chain;
  }

  /**
   * A text chain belongs to the compile that wrote it: its rules are bytes in that sink's body,
   * gone when it finishes. Sharing work across nodes goes through the Ruleset sink.
   */
  adoptChain(_table: TableName, chain: TextChain): void {
    throw new Error(`the text sink cannot adopt chain ${chain.name} written by another compile`);
  }

  /**
   * The iptables-save text of every table, as one flat string on the heap (one without pointers,
   * which the marker does not read, and not external memory that would force a full collection).
   * The sink cannot be written to after.
   *
   * The text is made once, one of three ways (finishTextSinks). When one buffer of text written
   * with room before it (shared-text.ts: the rules of the ports' own chains, which the node
   * that writes the shared text takes whole) is most of it, the rest is written around it, in
   * its room and after it, and that is made a string, of which that buffer's text is then a
   * part. When most of it is other compiles' text kept as strings (a node after the first takes
   * nearly every port's rules from there), the pieces are joined as strings: slices of those
   * strings, and the few runs of this sink's own bytes made strings. Otherwise (a sync written
   * here) the pieces are copied into a spare buffer of the final size, whose bytes stay touched
   * from one text to the next, and that is made a string once (writeHeapText).
   */
  finish(): string {
    return finishTextSinks([this]);
  }

  /** The bytes finish() makes a string of. */
  size(): number {
    return this.measure().size;
  }

  /** The bytes finish() makes a string of, and how many of them are in sealed buffers (TextBuffer.seal). */
  measure(): { size: number; sealed: number } {
    let size = this.body.length - this.body.roomBefore;
    let sealed = 0;
    const counter: TextOut = {
      write: () => {},
      append: (from, start, end) => {
        size += end - start;
        if (from.isSealed) sealed += end - start;
      },
    };
    for (const table of this.tables.values()) {
      size += table.declarations.length + 32;
      layPieces(table.declarationPieces, 0, counter);
    }
    for (const own of this.own.values()) own.lay(counter);
    for (const [id, pieces] of this.adopted) layPieces(pieces, this.adoptedAt.values[id]!, counter);
    return { size, sealed };
  }

  /** What finish() returns, written at the end of `out` (several syncs' text in one string). */
  finishInto(out: TextBuffer): void {
    this.layOut(out);
  }

  /** The text, piece by piece in order, to `out`; the body buffer is given back after. */
  layOut(out: TextOut): void {
    this.lay(out);
    this.release();
  }

  /** The text, piece by piece in order, to `out` (the sink is left as it is: release() after). */
  lay(out: TextOut): void {
    if (this.finished) throw new Error('the text sink is finished');
    const bodyStart = this.bodyStart.values;
    const bodyEnd = this.bodyEnd.values;
    const body = this.body;
    for (const table of this.tables.values()) {
      out.write(`*${table.name}\n`);
      layPieces(table.declarationPieces, 0, out);
      out.append(table.declarations, table.declarationsFrom, table.declarations.length);
      // A run of the body not copied yet: chains filled one after the other are copied together.
      let start = 0;
      let end = 0;
      const chains = table.chains.values;
      for (let i = 0; i < table.chains.length; i++) {
        const id = chains[i]!;
        const s = bodyStart[id]!;
        if (s >= 0) {
          if (s !== end) {
            out.append(body, start, end);
            start = s;
          }
          end = bodyEnd[id]!;
        }
        const own = this.own.get(id);
        const adopted = own === undefined ? this.adopted.get(id) : undefined;
        if (own !== undefined || adopted !== undefined) {
          out.append(body, start, end);
          start = end;
          if (own !== undefined) own.lay(out);
          else layPieces(adopted!, this.adoptedAt.values[id]!, out);
        }
      }
      out.append(body, start, end);
      out.write('COMMIT\n');
    }
  }

  /** No more writes or layouts: the body buffer is given back (its bytes must have been read). */
  release(): void {
    if (this.finished) throw new Error('the text sink is finished');
    this.finished = true;
    giveBackTextBuffer(this.body);
    for (const spare of this.spares) giveBackTextBuffer(spare);
  }
}

/** The sinks' texts laid out one after the other, each after its header (if given). */
function layTextSinks(sinks: readonly IptablesTextSink[], headers?: readonly string[]): TextRuns {
  const runs = new TextRuns();
  for (let i = 0; i < sinks.length; i++) {
    const header = headers?.[i];
    if (header !== undefined && header !== '') runs.write(header);
    sinks[i]!.lay(runs);
  }
  return runs;
}

/**
 * What finish() returns for each sink, one after the other, each after its header (if given):
 * one string made once, as finish() says: written in place around a buffer that is most of it,
 * else strings joined when most of the bytes are in sealed buffers, else bytes copied into a
 * spare buffer and made a string.
 */
export function finishTextSinks(sinks: readonly IptablesTextSink[], headers?: readonly string[]): string {
  const runs = layTextSinks(sinks, headers);
  // The sinks' bodies are given back once their bytes are copied (a body may be the spare the text is written into next).
  let text = runs.inPlace();
  if (text === undefined) text = 2 * runs.sealedBytes < runs.bytes ? writeHeapText(runs.bytes, (out) => runs.replay(out)) : runs.join();
  for (const sink of sinks) sink.release();
  return text;
}

/**
 * finishTextSinks's text as bytes (UTF-8), made no string: written in place the same way when it
 * can be, else copied into a spare buffer; the buffer keeps them (TextBuffer.keepAsBytes).
 */
export function finishTextSinksBytes(sinks: readonly IptablesTextSink[], headers?: readonly string[]): Buffer {
  const runs = layTextSinks(sinks, headers);
  let bytes = runs.inPlaceBytes();
  if (bytes === undefined) {
    const out = takeTextBuffer(runs.bytes);
    runs.replay(out);
    bytes = out.keepAsBytes();
  }
  for (const sink of sinks) sink.release();
  return bytes;
}

/**
 * A chain's rules that are not a run of the body, in order: lines written here (appendRule)
 * and stretches of other compiles' text taken as they are (appendRuleText), each copied once,
 * into the text, when it is laid out. A node's KUBE-SERVICES and KUBE-NODEPORTS take a line or
 * two from each of 12k service ports' shared text in a big cluster (2.4 MB): copied into a
 * buffer of their own first, that buffer was more memory touched (and, for a node whose text
 * is joined from strings, made a string of its own) on every node.
 */
class OwnRules {
  #bytes: TextBuffer | undefined;
  /** Bytes of #bytes before this are in the runs already. */
  #bytesFrom = 0;
  /** The pieces before what #bytes holds from #bytesFrom on. */
  readonly #pieces: PieceList = [];

  /** Where lines written for the chain go (after every run taken so far). */
  bytes(): TextBuffer {
    return (this.#bytes ??= new TextBuffer(4096));
  }

  /** Bytes [start, end) of `from`, after everything before. */
  take(from: TextBuffer, start: number, end: number): void {
    if (end <= start) return;
    const bytes = this.#bytes;
    if (bytes !== undefined && bytes.length > this.#bytesFrom) {
      addPiece(this.#pieces, bytes, this.#bytesFrom, bytes.length);
      this.#bytesFrom = bytes.length;
    }
    addPiece(this.#pieces, from, start, end);
  }

  /** The rules, in order, to `out`. */
  lay(out: TextOut): void {
    layPieces(this.#pieces, 0, out);
    const bytes = this.#bytes;
    if (bytes !== undefined) out.append(bytes, this.#bytesFrom, bytes.length);
  }
}

/** Where layOut puts the text: a TextBuffer, or TextRuns. */
export interface TextOut {
  write(s: string): void;
  append(from: TextBuffer, start: number, end: number): void;
}

/**
 * The text as runs, in order: strings, and bytes [start, end) of buffers (bytes of one buffer
 * that follow on from the last run's are taken with it). Then made one string, one of three
 * ways (finishTextSinks).
 */
class TextRuns implements TextOut {
  /** Each run: a string, or a buffer with its bytes [starts[i], ends[i]). */
  private readonly from: (TextBuffer | string)[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  /** Bytes of the text (a string counted by its length: the text is ASCII but for rare tokens). */
  bytes = 0;
  /** Of those, bytes in sealed buffers. */
  sealedBytes = 0;

  write(s: string): void {
    if (s.length === 0) return;
    this.from.push(s);
    this.starts.push(0);
    this.ends.push(s.length);
    this.bytes += s.length;
  }

  append(from: TextBuffer, start: number, end: number): void {
    if (end <= start) return;
    this.bytes += end - start;
    if (from.isSealed) this.sealedBytes += end - start;
    const last = this.from.length - 1;
    if (last >= 0 && this.from[last] === from && this.ends[last] === start) {
      this.ends[last] = end;
      return;
    }
    this.from.push(from);
    this.starts.push(start);
    this.ends.push(end);
  }

  /** Runs [first, last) written to `out`. */
  replay(out: TextOut, first = 0, last = this.from.length): void {
    for (let i = first; i < last; i++) {
      const from = this.from[i]!;
      if (typeof from === 'string') out.write(from);
      else out.append(from, this.starts[i]!, this.ends[i]!);
    }
  }

  /** One flat string of the runs made strings (a + b would make a rope, flattened on first read: the text twice). */
  join(): string {
    const parts = new Array<string>(this.from.length);
    for (let i = 0; i < parts.length; i++) {
      const from = this.from[i]!;
      parts[i] = typeof from === 'string' ? from : from.toHeapString(this.starts[i], this.ends[i]);
    }
    return parts.join('');
  }

  /**
   * The text written in place around its largest run when that run is the whole text of a
   * buffer with room before it (TextBuffer.withRoomBefore) and the text is ASCII: the runs
   * before it into its room, those after it appended, and that made a string, of which the
   * buffer's text is then a slice (TextBuffer.sealInPlace). Else undefined, nothing written.
   */
  inPlace(): string | undefined {
    const buffer = this.#inPlaceAround();
    return buffer === undefined ? undefined : buffer.text.sealInPlace(buffer.start);
  }

  /** inPlace's text as the bytes it is written in, which keep it (TextBuffer.keepAsBytes): no string made. */
  inPlaceBytes(): Buffer | undefined {
    const buffer = this.#inPlaceAround();
    return buffer === undefined ? undefined : buffer.text.keepAsBytes(buffer.start);
  }

  /** The text written in place (inPlace) into a buffer, and where in it it starts; undefined, nothing written, when it cannot be. */
  #inPlaceAround(): { text: TextBuffer; start: number } | undefined {
    const n = this.from.length;
    let at = -1;
    let atBytes = 0;
    for (let i = 0; i < n; i++) {
      const from = this.from[i]!;
      if (typeof from === 'string' || from.roomBefore === 0 || from.isSealed || from.isKept || !from.isAscii) continue;
      const bytes = this.ends[i]! - this.starts[i]!;
      if (this.starts[i] === from.roomBefore && this.ends[i] === from.length && bytes > atBytes) {
        at = i;
        atBytes = bytes;
      }
    }
    // Where the text would be joined from sealed strings (finishTextSinks), only for most of it.
    if (at < 0 || (2 * this.sealedBytes >= this.bytes && 2 * atBytes < this.bytes)) return undefined;
    const buffer = this.from[at] as TextBuffer;
    let before = 0;
    for (let i = 0; i < n; i++) {
      const from = this.from[i]!;
      // Its bytes are read once, where they are; the text's characters must be its bytes.
      if (i !== at && from === buffer) return undefined;
      if (typeof from === 'string' ? !isAsciiString(from) : !from.isAscii) return undefined;
      if (i < at) before += this.ends[i]! - this.starts[i]!;
    }
    if (before > buffer.roomBefore) return undefined;
    buffer.writeBefore(before, (out) => this.replay(out, 0, at));
    this.replay(buffer, at + 1, n);
    return { text: buffer, start: buffer.roomBefore - before };
  }
}
