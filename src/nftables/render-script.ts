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
import { durationText } from './durations.js';
import { EndpointChain, ruleCountOf } from './endpoint-chain.js';
import type { NftChain, NftElement, NftRuleset, NftSet, NftTable } from './types.js';
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
  const parts: string[] = [];
  pushElementText(element, parts);
  return parts.join('');
}

/** elementText as pieces onto `out`: a table's elements are joined with the rest of its text. */
function pushElementText(element: NftElement, out: string[]): void {
  pushJoined(element.key, out);
  if (element.timeoutSeconds !== undefined) out.push(' timeout ', durationText(element.timeoutSeconds));
  if (element.expiresSeconds !== undefined) out.push(' expires ', durationText(element.expiresSeconds));
  if (element.comment !== undefined) out.push(' comment ', quoteComment(element.comment));
  if (element.value !== undefined && element.value.length > 0) {
    out.push(' : ');
    pushJoined(element.value, out);
  }
}

/** The words with " . " between them. */
function pushJoined(words: readonly string[], out: string[]): void {
  for (let i = 0; i < words.length; i++) {
    if (i > 0) out.push(' . ');
    out.push(words[i]!);
  }
}

/** A stretch of rendered text: characters start..end of `source.text`. */
interface Span {
  readonly source: RenderedText;
  readonly start: number;
  readonly end: number;
}

/** A text a span points into, set once it is made (a table's text is joined after its runs are rendered). */
interface RenderedText {
  text: string;
}

/** Where a run of chains' declarations and rules are, as renderChains writes them. */
interface SegmentText {
  readonly prefix: string;
  readonly decls: Span;
  readonly body: Span;
}

/**
 * The text of runs of chains shared by the tables of many nodes (chain-map.ts): an endpoint
 * chain block is the same on every node that sees its port alike, and so is its text. Kept
 * while the run is.
 *
 * The first table rendered with none of its runs known (the first node of a cluster) keeps
 * its runs as spans of the script's text it is part of (renderNftScripts: the text returned,
 * not a copy): 67 MB of lines at 10k services, which as a string per run
 * were each made, then copied into the table's text, and copied twice more by the young
 * generation's scavenges because they were kept. A later table takes known runs as slices of
 * that text (adjacent runs as one slice) and keeps its few new runs as strings of their own, so
 * that no node's whole text is kept for one run of it.
 */
const segmentTexts = new WeakMap<readonly NftChain[], SegmentText>();

function knownSegment(prefix: string, run: readonly NftChain[]): SegmentText | undefined {
  const known = segmentTexts.get(run);
  return known !== undefined && known.prefix === prefix ? known : undefined;
}

/**
 * Pieces so many that they are joined into a chunk before more are added: pieces are joined
 * while the strings they are (names, addresses scattered over a big heap) are still in the
 * processor's cache, and a chunk of this many pieces (some 300 KB) is big enough to be made in
 * the large-object space, which young-generation scavenges never copy. One join of two million
 * pieces at the end cost several times the joins of its chunks.
 */
const CHUNK_PIECES = 8192;

/**
 * Pieces of text, joined into chunks as they grow and into one text at the end, with their
 * length so far, and a slice of a rendered text pending at the end (runs taken over are
 * adjacent in the text they come from: one slice for all of them, grown until something else
 * is added).
 */
class Pieces {
  /** The pieces added since the last chunk was made. */
  readonly parts: string[] = [];
  readonly #chunks: string[] = [];
  readonly #chunkPieces: number;
  /** Characters in the chunks and in `parts` up to `counted`. */
  #chars = 0;
  #counted = 0;
  #pending: { source: RenderedText; start: number; end: number } | undefined;

  constructor(chunkPieces: number) {
    this.#chunkPieces = chunkPieces;
  }

  /** Characters so far. */
  get chars(): number {
    this.flushPending();
    const parts = this.parts;
    let chars = this.#chars;
    for (let i = this.#counted; i < parts.length; i++) chars += parts[i]!.length;
    this.#chars = chars;
    this.#counted = parts.length;
    return chars;
  }

  addSpan(span: Span): void {
    const pending = this.#pending;
    if (pending !== undefined && pending.source === span.source && pending.end === span.start) {
      pending.end = span.end;
      return;
    }
    this.flushPending();
    this.#pending = { source: span.source, start: span.start, end: span.end };
  }

  /** Join the pieces added so far into a chunk once they are many. */
  chunkIfLarge(): void {
    if (this.parts.length < this.#chunkPieces) return;
    const chars = this.chars;
    this.#chunks.push(this.parts.join(''));
    this.parts.length = 0;
    this.#counted = 0;
    this.#chars = chars;
  }

  /** Every piece, the pending slice included, in order: chunks first, then `parts`. */
  settle(): string[] {
    this.flushPending();
    return this.#chunks.concat(this.parts);
  }

  /** Add the pending slice to `parts`: before pieces are pushed onto `parts` directly. */
  flushPending(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    this.parts.push(pending.source.text.slice(pending.start, pending.end));
  }
}

/** Chains' declaration lines onto `decls`, their rules' lines onto `body`. */
function renderChains(prefix: string, chains: Iterable<NftChain>, decls: string[], body: string[]): void {
  const chainHead = `add chain ${prefix} `;
  const ruleHead = `add rule ${prefix} `;
  for (const chain of chains) {
    // Most chains have neither hook nor comment: their line is three pieces, nothing made.
    if (chain.base === undefined && chain.comment === undefined) decls.push(chainHead, chain.name, '\n');
    else decls.push(chainLine(prefix, chain), '\n');
    if (chain instanceof EndpointChain && chain.pushRuleLines(ruleHead, body)) continue;
    const rules = chain.rules;
    if (rules.length === 0) continue;
    const name = chain.name;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      // The line's head as pieces: a string per chain would be kept until the table is joined.
      body.push(ruleHead, name, ' ');
      if (rule instanceof NumgenVmapRule) {
        // Its words as pieces (it has no comment): the text is made only when something reads it.
        rule.pushText(body);
      } else {
        body.push(rule.text);
        if (rule.comment !== undefined) body.push(' comment ', quoteComment(rule.comment));
      }
      body.push('\n');
    }
  }
}

/** A run's lines rendered where a later table can take them from: characters of its table's declarations and of its body. */
interface FreshSegment {
  readonly run: readonly NftChain[];
  readonly prefix: string;
  readonly declStart: number;
  readonly declEnd: number;
  readonly bodyStart: number;
  readonly bodyEnd: number;
}

/**
 * One table's lines as pieces: the table, its chains, sets and maps onto `decls`, then the
 * rules, then the elements onto `body`, joined once with the rest of the script: no
 * intermediate strings per line, which at 10k services meant half a million short-lived
 * concatenations. Chains are walked once for both their declaration and their rules: a node of
 * a big cluster has 150k of them spread over the heap, and each visit is a cache miss. The runs
 * rendered here that a later table can take over are returned with where they are in
 * `decls` and `body`.
 */
function renderTable(table: NftTable, decls: Pieces, body: Pieces): FreshSegment[] {
  // Empty pieces: a run's place in them is its place in the table's declarations and body.
  const prefix = `${table.family} ${table.name}`;
  decls.parts.push(tableLine(table), '\n');
  const chains = table.chains;
  const fresh: FreshSegment[] = [];
  if (chains instanceof ChainMap) {
    const { own, segments } = chains.runs();
    // The table's own chains (the fixed ones) are made for this table alone; segments are shared.
    renderChains(prefix, own, decls.parts, body.parts);
    const firstOfItsKind = !segments.some((segment) => knownSegment(prefix, segment) !== undefined);
    for (const segment of segments) {
      const known = knownSegment(prefix, segment);
      if (known !== undefined) {
        decls.addSpan(known.decls);
        body.addSpan(known.body);
      } else if (firstOfItsKind) {
        const declStart = decls.chars;
        const bodyStart = body.chars;
        renderChains(prefix, segment, decls.parts, body.parts);
        fresh.push({ run: segment, prefix, declStart, declEnd: decls.chars, bodyStart, bodyEnd: body.chars });
        decls.chunkIfLarge();
        body.chunkIfLarge();
      } else {
        const text = ownSegmentText(prefix, segment);
        segmentTexts.set(segment, text);
        decls.addSpan(text.decls);
        body.addSpan(text.body);
      }
    }
  } else {
    renderChains(prefix, chains.values(), decls.parts, body.parts);
  }
  decls.flushPending();
  body.flushPending();
  for (const set of table.sets.values()) decls.parts.push(setLine(prefix, set), '\n');
  for (const set of table.sets.values()) {
    const head = `add element ${prefix} ${set.name} { `;
    for (const element of set.elements) {
      body.parts.push(head);
      pushElementText(element, body.parts);
      body.parts.push(' }\n');
    }
  }
  return fresh;
}

/** A run's text as strings of its own (a table that took other runs over: its text is not kept for this one). */
function ownSegmentText(prefix: string, run: readonly NftChain[]): SegmentText {
  const decls: string[] = [];
  const body: string[] = [];
  renderChains(prefix, run, decls, body);
  const declText = decls.join('');
  const bodyText = body.join('');
  return {
    prefix,
    decls: { source: { text: declText }, start: 0, end: declText.length },
    body: { source: { text: bodyText }, start: 0, end: bodyText.length },
  };
}

export function renderNftScript(ruleset: NftRuleset): string {
  return renderNftScriptInChunks(ruleset, CHUNK_PIECES);
}

/** renderNftScript joining its pieces into chunks of `chunkPieces` (tests: the text is the same for any). */
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
 * The parts' scripts one after the other, as one text: the same as each heading followed by
 * renderNftScript of its ruleset, joined. Every table's pieces are joined once, into the text
 * returned: a text per table joined again into the file was a second copy of the whole, 67 MB
 * for the first node of a 5,000-node cluster, which the runs kept from it (segmentTexts) also
 * kept alive.
 */
export function renderNftScripts(parts: readonly NftScriptPart[]): string {
  return renderNftScriptsInChunks(parts, CHUNK_PIECES);
}

/** renderNftScripts joining its pieces into chunks of `chunkPieces` (tests: the text is the same for any). */
export function renderNftScriptsInChunks(parts: readonly NftScriptPart[], chunkPieces: number): string {
  const rendered: RenderedText = { text: '' };
  const all: string[] = [];
  // Where each table's declarations and body start in the text, for the runs it rendered.
  const placed: { fresh: FreshSegment[]; declAt: number; bodyAt: number }[] = [];
  let at = 0;
  for (const part of parts) {
    if (part.heading !== '') {
      all.push(part.heading);
      at += part.heading.length;
    }
    for (const table of part.ruleset.tables) {
      const decls = new Pieces(chunkPieces);
      const body = new Pieces(chunkPieces);
      const fresh = renderTable(table, decls, body);
      const declChars = decls.chars;
      placed.push({ fresh, declAt: at, bodyAt: at + declChars });
      at += declChars + body.chars;
      pushAll(all, decls.settle());
      pushAll(all, body.settle());
    }
  }
  rendered.text = all.join('');
  for (const { fresh, declAt, bodyAt } of placed) {
    for (const f of fresh) {
      segmentTexts.set(f.run, {
        prefix: f.prefix,
        decls: { source: rendered, start: declAt + f.declStart, end: declAt + f.declEnd },
        body: { source: rendered, start: bodyAt + f.bodyStart, end: bodyAt + f.bodyEnd },
      });
    }
  }
  return rendered.text;
}

function pushAll(out: string[], items: readonly string[]): void {
  for (let i = 0; i < items.length; i++) out.push(items[i]!);
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
