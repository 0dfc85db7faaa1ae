/**
 * NftRuleset → one `nft -f` file, laid out as knftables' fake prints a table (Fake.Dump): the
 * table, its chains, sets and maps, then every chain's rules, then every set's and map's
 * elements, each in the ruleset's order. Declarations before rules before elements is also the
 * order nft needs: a rule may only jump to a chain and look up a set that exist, an element may
 * only `goto` a chain that exists. The file loads as is into an empty network namespace.
 *
 *   add table ip kube-proxy { comment "rules for kube-proxy" ; }
 *   add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
 *   add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
 *   add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "..."
 *   add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-... }
 */
import { ChainMap } from './chain-map.js';
import { Buffer } from 'node:buffer';
import { TextBuffer, giveBackTextBuffer, takeTextBuffer, writeHeapText } from '../iptables/save-text.js';
import { durationText } from './durations.js';
import { EndpointChain, ruleCountOf } from './endpoint-chain.js';
import type { ByteTextWriter, NftChain, NftElement, NftRuleset, NftSet, NftTable } from './types.js';
import { NumgenVmapRule } from './vmap-rule.js';

/** Go's %q for the plain text nft accepts in a comment. */
export function quoteComment(text: string): string {
  return JSON.stringify(text);
}

export function tableLine(table: NftTable): string {
  const parts: string[] = [];
  if (table.comment !== undefined) parts.push(` comment ${quoteComment(table.comment)} ;`);
  if (table.flags && table.flags.length > 0) parts.push(` flags ${table.flags.join(',')} ;`);
  return `add table ${table.family} ${table.name}${parts.length > 0 ? ` {${parts.join('')} }` : ''}`;
}

export function chainLine(prefix: string, chain: NftChain): string {
  const parts: string[] = [];
  if (chain.base) {
    const b = chain.base;
    let text = ` type ${b.type} hook ${b.hook}`;
    if (b.device !== undefined) text += ` device ${quoteComment(b.device)}`;
    text += ` priority ${b.priority} ;`;
    if (b.policy !== undefined) text += ` policy ${b.policy} ;`;
    parts.push(text);
  }
  if (chain.comment !== undefined) parts.push(` comment ${quoteComment(chain.comment)} ;`);
  return `add chain ${prefix} ${chain.name}${parts.length > 0 ? ` {${parts.join('')} }` : ''}`;
}

export function setLine(prefix: string, set: NftSet): string {
  let text = `add ${set.kind} ${prefix} ${set.name} {`;
  text += set.typeOf !== undefined ? ` typeof ${set.typeOf} ;` : ` type ${set.type} ;`;
  if (set.flags && set.flags.length > 0) text += ` flags ${set.flags.join(',')} ;`;
  if (set.timeoutSeconds !== undefined) text += ` timeout ${set.timeoutSeconds}s ;`;
  if (set.gcIntervalSeconds !== undefined) text += ` gc-interval ${set.gcIntervalSeconds}s ;`;
  if (set.size !== undefined) text += ` size ${set.size} ;`;
  if (set.policy !== undefined) text += ` policy ${set.policy} ;`;
  if (set.autoMerge) text += ' auto-merge ;';
  if (set.comment !== undefined) text += ` comment ${quoteComment(set.comment)} ;`;
  return `${text} }`;
}

export function elementText(element: NftElement): string {
  let text = element.key.join(' . ');
  if (element.timeoutSeconds !== undefined) text += ` timeout ${durationText(element.timeoutSeconds)}`;
  if (element.expiresSeconds !== undefined) text += ` expires ${durationText(element.expiresSeconds)}`;
  if (element.comment !== undefined) text += ` comment ${quoteComment(element.comment)}`;
  if (element.value !== undefined && element.value.length > 0) text += ` : ${element.value.join(' . ')}`;
  return text;
}

/** elementText onto `out`: a table's elements are written with the rest of its text. */
function writeElementText(element: NftElement, out: ScriptWriter): void {
  writeJoined(element.key, out);
  if (element.timeoutSeconds !== undefined) {
    out.write(' timeout ');
    out.write(durationText(element.timeoutSeconds));
  }
  if (element.expiresSeconds !== undefined) {
    out.write(' expires ');
    out.write(durationText(element.expiresSeconds));
  }
  if (element.comment !== undefined) {
    out.write(' comment ');
    out.write(quoteComment(element.comment));
  }
  if (element.value !== undefined && element.value.length > 0) {
    out.write(' : ');
    writeJoined(element.value, out);
  }
}

/** The words with " . " between them. */
function writeJoined(words: readonly string[], out: ScriptWriter): void {
  for (let i = 0; i < words.length; i++) {
    if (i > 0) out.write(' . ');
    out.write(words[i]!);
  }
}

/** A text a span points into, set once it is made (a script's text is made once it is all written). */
interface RenderedText {
  text: string;
  /** Only ASCII: its characters are its bytes (a stretch is copied as Latin-1, unchecked). */
  ascii: boolean;
  /**
   * The text's bytes, when it was kept as bytes and made no string (renderNftScriptsBytes; only
   * ASCII, whose characters are its bytes): spans are copied from them, and `text` is empty.
   */
  bytes?: TextBuffer;
}

/**
 * Where a run of chains' declarations and rules are, as renderChainDecls and renderChainRules
 * write them: characters declStart..declEnd and bodyStart..bodyEnd of `source.text`. One object
 * per run (11k on the first node of a 5,000-node cluster), its stretches as numbers.
 */
class SegmentText {
  readonly prefix: string;
  /** The text the stretches are of: set when the script is made (renderNftScripts). */
  source: RenderedText | undefined;
  declStart = 0;
  declEnd = 0;
  bodyStart = 0;
  bodyEnd = 0;

  constructor(prefix: string, source: RenderedText | undefined) {
    this.prefix = prefix;
    this.source = source;
  }
}

/**
 * The text of runs of chains shared by the tables of many nodes (chain-map.ts): an endpoint
 * chain block is the same on every node that sees its port alike, and so is its text. Kept
 * while the run is.
 *
 * The first table rendered with none of its runs known (the first node of a cluster) keeps
 * its runs as spans of the script's text it is part of (renderNftScripts: the text returned,
 * not a copy): 67 MB of lines at 10k services, kept once, as the node's own text. A later table
 * copies known runs from that text (adjacent runs as one stretch) and keeps its few new runs as
 * strings of their own, so that no node's whole text is kept for one run of it.
 *
 * Spans of what the first node returns, not of a copy: its string (render), whose stretches the
 * runtime's encoder copies into the next script as fast as bytes; or its bytes, when it was
 * rendered as bytes and made no string (renderNftScriptsBytes), copied as they are. A copy would
 * be the text again in fresh memory for the first node to touch (about 3 ms a megabyte).
 */
const segmentTexts = new WeakMap<readonly NftChain[], SegmentText>();

function knownSegment(prefix: string, run: readonly NftChain[]): SegmentText | undefined {
  const known = segmentTexts.get(run);
  return known !== undefined && known.prefix === prefix ? known : undefined;
}

/**
 * Stretches of a kept text copied at most this many characters at a time: the runtime's encoder
 * copies a stretch in one call, and a text buffer makes room for each copy before it is made.
 */
const COPY_CHARS = 1 << 20;

/** Strings this long or longer are written by the runtime's encoder (TextBuffer.writeLong). */
const LONG_CHARS = 40;

/**
 * The script as it is written: text into a TextBuffer, with the characters written so far
 * counted (where a run starts in the script is where a later table takes it from), and a
 * stretch of a kept text pending at the end (runs taken over are adjacent in the text they come
 * from: one copy for all of them, grown until something else is written).
 */
class ScriptWriter implements ByteTextWriter {
  /** Characters written so far, the pending stretch left out. */
  chars = 0;
  readonly #out: TextBuffer;
  #pending: { source: RenderedText; start: number; end: number } | undefined;

  constructor(out: TextBuffer) {
    this.#out = out;
  }

  /** `s` as it is: after flushSpan() if a stretch may be pending. */
  write(s: string): void {
    // A chain name (50 to 110 characters) is copied faster by the runtime's encoder, in one
    // call, than by a loop over its characters; a short word the other way round.
    if (s.length >= LONG_CHARS) this.#out.writeLong(s);
    else this.#out.write(s);
    this.chars += s.length;
  }

  /** Room for `n` more bytes (ByteTextWriter): after flushSpan() if a stretch may be pending. */
  room(n: number): Uint8Array {
    return this.#out.reserveBytes(n);
  }

  /** Where room()'s bytes are written from. */
  get at(): number {
    return this.#out.length;
  }

  /** The bytes written from `at` on end before `p` (ASCII: as many characters). */
  end(p: number): void {
    this.chars += p - this.#out.length;
    this.#out.length = p;
  }

  /** Characters start..end of a kept text, written with the adjacent stretches that follow them. */
  addSpan(source: RenderedText, start: number, end: number): void {
    const pending = this.#pending;
    if (pending !== undefined && pending.source === source && pending.end === start) {
      pending.end = end;
      return;
    }
    this.flushSpan();
    this.#pending = { source, start, end };
  }

  /** Write the pending stretch: before anything else is written. */
  flushSpan(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    const { text, ascii, bytes } = pending.source;
    if (bytes !== undefined) this.#out.append(bytes, pending.start, pending.end);
    else for (let at = pending.start; at < pending.end; at += COPY_CHARS) {
      const stretch = text.slice(at, Math.min(at + COPY_CHARS, pending.end));
      if (ascii) this.#out.writeAscii(stretch);
      else this.#out.writeLong(stretch);
    }
    this.chars += pending.end - pending.start;
  }
}

/** "add chain <prefix> " and "add rule <prefix> ". */
interface LineHeads {
  readonly prefix: string;
  readonly chain: string;
  readonly rule: string;
}

let lastHeads: LineHeads = { prefix: '', chain: 'add chain  ', rule: 'add rule  ' };

/**
 * The line heads of a table, made once per table rather than per run of chains (11k runs on the
 * first node of a big cluster): the same string each time, which endpoint-chain.ts finds its
 * bytes for by identity instead of hashing a new string per run.
 */
function headsOf(prefix: string): LineHeads {
  if (lastHeads.prefix !== prefix) lastHeads = { prefix, chain: ['add chain ', prefix, ' '].join(''), rule: ['add rule ', prefix, ' '].join('') };
  return lastHeads;
}

/**
 * Chains' declaration lines. A run of chains (an array, as almost every run is) is walked by
 * index: a for-of over runs and a map's iterators alike made an iterator result per chain, 150k
 * chains walked twice on the first node of a 5,000-node cluster (9 MB of garbage).
 */
function renderChainDecls(prefix: string, chains: readonly NftChain[] | Iterable<NftChain>, out: ScriptWriter): void {
  const chainHead = headsOf(prefix).chain;
  if (Array.isArray(chains)) {
    const run = chains as readonly NftChain[];
    for (let i = 0; i < run.length; i++) renderChainDecl(prefix, chainHead, run[i]!, out);
  } else {
    for (const chain of chains) renderChainDecl(prefix, chainHead, chain, out);
  }
}

function renderChainDecl(prefix: string, chainHead: string, chain: NftChain, out: ScriptWriter): void {
  if (chain instanceof EndpointChain) {
    // Its name is written from what it is made of (endpoint-chain.ts).
    chain.writeNameLine(chainHead, out);
  } else if (chain.base === undefined && chain.comment === undefined) {
    // Most chains have neither hook nor comment: their line is three writes, nothing made.
    out.write(chainHead);
    out.write(chain.name);
    out.write('\n');
  } else {
    out.write(chainLine(prefix, chain));
    out.write('\n');
  }
}

/** Chains' rules' lines, chain after chain (a run by index, as renderChainDecls). */
function renderChainRules(prefix: string, chains: readonly NftChain[] | Iterable<NftChain>, out: ScriptWriter): void {
  const ruleHead = headsOf(prefix).rule;
  if (Array.isArray(chains)) {
    const run = chains as readonly NftChain[];
    for (let i = 0; i < run.length; i++) renderChainRuleLines(ruleHead, run[i]!, out);
  } else {
    for (const chain of chains) renderChainRuleLines(ruleHead, chain, out);
  }
}

function renderChainRuleLines(ruleHead: string, chain: NftChain, out: ScriptWriter): void {
  if (chain instanceof EndpointChain && chain.writeRuleLines(ruleHead, out)) return;
  const rules = chain.rules;
  if (rules.length === 0) return;
  const name = chain.name;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    out.write(ruleHead);
    out.write(name);
    out.write(' ');
    if (rule instanceof NumgenVmapRule) {
      // Its words (it has no comment): the text is made only when something reads it.
      rule.writeText(out);
    } else {
      out.write(rule.text);
      if (rule.comment !== undefined) {
        out.write(' comment ');
        out.write(quoteComment(rule.comment));
      }
    }
    out.write('\n');
  }
}

/** A run's lines written where a later table can take them from: characters of the script. */
interface FreshSegment {
  readonly run: readonly NftChain[];
  readonly text: SegmentText;
}

/**
 * One table's lines: the table, its chains, sets and maps, then the rules, then the elements,
 * written once into the script: no intermediate strings per line or per table. Chains are
 * walked twice, once for their declarations and once for their rules (a node of a big cluster
 * has 150k of them spread over the heap; the second walk costs less than keeping the
 * declarations apart until the rules are written). The runs written here that a later table
 * can take over are returned with where they are in the script.
 */
function renderTable(table: NftTable, out: ScriptWriter): FreshSegment[] {
  const prefix = `${table.family} ${table.name}`;
  out.write(tableLine(table));
  out.write('\n');
  const chains = table.chains;
  const fresh: FreshSegment[] = [];
  if (chains instanceof ChainMap) {
    const { own, segments } = chains.runs();
    // The table's own chains (the fixed ones) are made for this table alone; segments are shared.
    // Each run's text when it is kept (known from a table before, or made now as a string of its
    // own), else it is written here, and kept from this table's text.
    const texts = new Array<SegmentText | undefined>(segments.length);
    let firstOfItsKind = true;
    for (let i = 0; i < segments.length; i++) {
      const known = knownSegment(prefix, segments[i]!);
      texts[i] = known;
      if (known !== undefined) firstOfItsKind = false;
    }
    const written = new Array<SegmentText | undefined>(segments.length);
    for (let i = 0; i < segments.length; i++) {
      if (texts[i] !== undefined) continue;
      const segment = segments[i]!;
      if (firstOfItsKind) {
        const text = (written[i] = new SegmentText(prefix, undefined));
        fresh.push({ run: segment, text });
      } else {
        const text = ownSegmentText(prefix, segment);
        segmentTexts.set(segment, text);
        texts[i] = text;
      }
    }
    renderChainDecls(prefix, own, out);
    writeRuns('decls', prefix, segments, texts, written, out);
    for (const set of table.sets.values()) {
      out.write(setLine(prefix, set));
      out.write('\n');
    }
    renderChainRules(prefix, own, out);
    writeRuns('body', prefix, segments, texts, written, out);
  } else {
    renderChainDecls(prefix, chains.values(), out);
    for (const set of table.sets.values()) {
      out.write(setLine(prefix, set));
      out.write('\n');
    }
    renderChainRules(prefix, chains.values(), out);
  }
  for (const set of table.sets.values()) {
    const head = `add element ${prefix} ${set.name} { `;
    const elements = set.elements;
    for (let i = 0; i < elements.length; i++) {
      out.write(head);
      writeElementText(elements[i]!, out);
      out.write(' }\n');
    }
  }
  return fresh;
}

/**
 * The runs' declarations (`decls`) or rules (`body`): a run whose text is kept as a span of it,
 * any other written here, where it starts and ends noted in `written` for the tables after.
 */
function writeRuns(
  part: 'decls' | 'body',
  prefix: string,
  segments: readonly (readonly NftChain[])[],
  texts: readonly (SegmentText | undefined)[],
  written: readonly (SegmentText | undefined)[],
  out: ScriptWriter,
): void {
  const render = part === 'decls' ? renderChainDecls : renderChainRules;
  for (let i = 0; i < segments.length; i++) {
    const text = texts[i];
    if (text !== undefined) {
      if (part === 'decls') out.addSpan(text.source!, text.declStart, text.declEnd);
      else out.addSpan(text.source!, text.bodyStart, text.bodyEnd);
      continue;
    }
    const run = written[i]!;
    out.flushSpan();
    const start = out.chars;
    render(prefix, segments[i]!, out);
    if (part === 'decls') {
      run.declStart = start;
      run.declEnd = out.chars;
    } else {
      run.bodyStart = start;
      run.bodyEnd = out.chars;
    }
  }
  out.flushSpan();
}

/** Where ownSegmentText writes, kept from one run to the next (a run is at most a port's endpoint chains). */
let ownText: TextBuffer | undefined;

/** A run's text as a string of its own, its declarations then its rules (a table that took other runs over: its text is not kept for this one). */
function ownSegmentText(prefix: string, run: readonly NftChain[]): SegmentText {
  const buffer = (ownText ??= new TextBuffer());
  buffer.reset(0);
  const out = new ScriptWriter(buffer);
  renderChainDecls(prefix, run, out);
  const declEnd = out.chars;
  renderChainRules(prefix, run, out);
  const text = buffer.toHeapString();
  if (text.length !== out.chars) throw new Error(`nft script: ${out.chars} characters written, ${text.length} read back`);
  const segment = new SegmentText(prefix, { text, ascii: buffer.isAscii });
  segment.declEnd = segment.bodyStart = declEnd;
  segment.bodyEnd = text.length;
  return segment;
}

export function renderNftScript(ruleset: NftRuleset): string {
  return renderNftScripts([{ heading: '', ruleset }]);
}

/**
 * renderNftScript. Its pieces were once joined into chunks of `chunkPieces`; the text is now
 * written once into a buffer, and the text is the same for any `chunkPieces`.
 */
export function renderNftScriptInChunks(ruleset: NftRuleset, chunkPieces: number): string {
  return renderNftScriptsInChunks([{ heading: '', ruleset }], chunkPieces);
}

/** A ruleset in a file of several (one per family), after a line of its own. */
export interface NftScriptPart {
  /** Text before the ruleset's tables ("# nft -f (IPv4), node n1\n"), or ''. */
  readonly heading: string;
  readonly ruleset: NftRuleset;
}

/**
 * The script's length in bytes, as a guess before it is written: the last script's (the nodes
 * of one cluster are much alike), else a little per chain and element.
 */
let lastScriptBytes = 0;

function expectedScriptBytes(parts: readonly NftScriptPart[]): number {
  if (lastScriptBytes > 0) return lastScriptBytes;
  let bytes = 0;
  for (const part of parts) {
    for (const table of part.ruleset.tables) {
      bytes += 4096 + 400 * table.chains.size;
      for (const set of table.sets.values()) bytes += 100 * set.elements.length;
    }
  }
  return bytes;
}

/**
 * The parts' scripts one after the other, as one text: the same as each heading followed by
 * renderNftScript of its ruleset, joined. Every line is written once, as bytes, into one buffer
 * made into the text returned (save-text.ts writeHeapText): string pieces joined into chunks
 * and the chunks joined into the script made the text twice, each time in fresh memory (67 MB
 * for the first node of a 5,000-node cluster), and left millions of pieces to the garbage
 * collector.
 */
export function renderNftScripts(parts: readonly NftScriptPart[]): string {
  const rendered: RenderedText = { text: '', ascii: false };
  let written: WrittenScript | undefined;
  rendered.text = writeHeapText(expectedScriptBytes(parts), (buffer) => {
    written = writeScripts(parts, buffer);
    rendered.ascii = buffer.isAscii;
  });
  keepSegments(written!, rendered, rendered.text.length);
  return rendered.text;
}

/**
 * renderNftScripts's text as bytes (UTF-8, as the string would be written), made no string: the
 * bytes it was written into, kept (TextBuffer.keepAsBytes), from which later tables copy the runs
 * written here first. A text that is not ASCII (its characters are not its bytes, and spans count
 * characters) is made a string as renderNftScripts makes it, and its bytes written from that.
 */
export function renderNftScriptsBytes(parts: readonly NftScriptPart[]): Uint8Array {
  const buffer = takeTextBuffer(expectedScriptBytes(parts));
  const written = writeScripts(parts, buffer);
  if (!buffer.isAscii) {
    const rendered: RenderedText = { text: buffer.toHeapString(), ascii: false };
    giveBackTextBuffer(buffer);
    keepSegments(written, rendered, rendered.text.length);
    return Buffer.from(rendered.text, 'utf8');
  }
  const bytes = buffer.keepAsBytes();
  keepSegments(written, { text: '', ascii: true, bytes: buffer }, bytes.length);
  return bytes;
}

/** A script as writeScripts wrote it: its runs written for the first time, and its characters. */
interface WrittenScript {
  readonly fresh: readonly FreshSegment[];
  readonly chars: number;
}

function writeScripts(parts: readonly NftScriptPart[], buffer: TextBuffer): WrittenScript {
  const fresh: FreshSegment[] = [];
  const out = new ScriptWriter(buffer);
  for (const part of parts) {
    if (part.heading !== '') out.write(part.heading);
    for (const table of part.ruleset.tables) fresh.push(...renderTable(table, out));
  }
  return { fresh, chars: out.chars };
}

/** The runs written first in `written` kept as spans of `rendered`, whose length (characters, or bytes as ASCII) is `length`. */
function keepSegments(written: WrittenScript, rendered: RenderedText, length: number): void {
  if (length !== written.chars) throw new Error(`nft script: ${written.chars} characters written, ${length} read back`);
  lastScriptBytes = Math.max(written.chars, 1 << 16);
  for (const f of written.fresh) {
    f.text.source = rendered;
    segmentTexts.set(f.run, f.text);
  }
}

/** renderNftScripts (see renderNftScriptInChunks: `chunkPieces` no longer changes anything). */
export function renderNftScriptsInChunks(parts: readonly NftScriptPart[], _chunkPieces: number): string {
  return renderNftScripts(parts);
}

/** Number of rules and elements, for reports and benchmarks. */
export function countNftRules(ruleset: NftRuleset): { rules: number; elements: number; chains: number } {
  let rules = 0;
  let elements = 0;
  let chains = 0;
  for (const table of ruleset.tables) {
    for (const chain of table.chains.values()) {
      chains++;
      rules += ruleCountOf(chain);
    }
    for (const set of table.sets.values()) elements += set.elements.length;
  }
  return { rules, elements, chains };
}
