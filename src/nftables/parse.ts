/**
 * `nft list ruleset` text → NftRuleset: kpsim's canonical output, or a real node's dump where
 * other tables (firewalld, Docker, CNI plugins) sit beside kube-proxy's. Every table is kept;
 * what kpsim does not evaluate (flowtables, counters and other named objects, tables of the
 * arp, bridge and netdev families, rules with statements outside rule-ast.ts) is kept too and
 * listed in `skipped` with the reason.
 *
 *   table ip kube-proxy {            # handle 3      (handles, as `nft -a` prints them, are ignored)
 *   	comment "rules for kube-proxy"
 *   	set cluster-ips { ... }
 *   	map service-ips { ... elements = { 172.30.0.41 . tcp . 80 : goto service-..., ... } }
 *   	chain services { type ...; policy accept; <one rule per line> }
 *   }
 *
 * A dump whose structure cannot be read throws a KpsimError (KPSIM_ERR_NFTABLES_PARSE) naming
 * the line and column; nothing is returned half-read.
 */
import { KpsimError } from '../errors.js';
import { parseDuration } from './durations.js';
import { parseRuleText, tokenize } from './rule-parse.js';
import type { NftBaseChain, NftChain, NftElement, NftFamily, NftOtherObject, NftRule, NftRuleset, NftSet, NftSkipped, NftTable } from './types.js';

export interface NftParseOptions {
  /** Names the text in error messages. */
  file?: string;
}

const FAMILIES = new Set<NftFamily>(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);
const TRACED_FAMILIES = new Set<NftFamily>(['ip', 'ip6', 'inet']);

const NAMED_PRIORITIES: Readonly<Record<string, number>> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };
const BRIDGE_PRIORITIES: Readonly<Record<string, number>> = { dstnat: -300, filter: -200, out: 100, srcnat: 300 };

class ParseError extends Error {
  constructor(readonly line: number, readonly column: number, detail: string) {
    super(detail);
  }
}

interface Line {
  readonly number: number;
  /** Without leading white space and without a trailing "# handle N" / "# progname x". */
  readonly text: string;
  /** 1-based column of `text` in the original line. */
  readonly column: number;
}

/** A line's content, with nft's trailing handle annotations cut off (not inside a quoted string). */
function readLine(raw: string, number: number): Line {
  const trimmedEnd = raw.replace(/\r$/, '');
  const start = trimmedEnd.search(/\S/);
  if (start < 0) return { number, text: '', column: 1 };
  let text = trimmedEnd.slice(start);
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') inQuote = !inQuote;
    else if (c === '#' && !inQuote && (i === 0 || text[i - 1] === ' ' || text[i - 1] === '\t')) {
      text = text.slice(0, i);
      break;
    }
  }
  return { number, text: text.trimEnd(), column: start + 1 };
}

/** The column of `word`'s first occurrence in the line (for error messages). */
function columnOf(line: Line, word: string): number {
  const i = line.text.indexOf(word);
  return line.column + (i < 0 ? 0 : i);
}

function unquote(text: string): string {
  return text.startsWith('"') && text.endsWith('"') && text.length >= 2 ? text.slice(1, -1) : text;
}

/** A rule line's trailing `comment "..."`, split off. */
export function splitRuleComment(text: string): { text: string; comment?: string } {
  const m = /\s+comment\s+"((?:[^"\\]|\\.)*)"$/.exec(text);
  if (!m) return { text };
  return { text: text.slice(0, m.index), comment: m[1]! };
}

function parsePriority(family: NftFamily, text: string): number | undefined {
  const trimmed = text.trim();
  if (/^-?\d+$/.test(trimmed)) return Number(trimmed);
  const m = /^([a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(trimmed);
  if (!m) return undefined;
  const base = (family === 'bridge' ? BRIDGE_PRIORITIES : NAMED_PRIORITIES)[m[1]!];
  if (base === undefined) return undefined;
  const offset = m[2] === undefined ? 0 : (m[2] === '-' ? -1 : 1) * Number(m[3]);
  return base + offset;
}

/** `type filter hook input priority filter; policy accept;` → the base chain. */
function parseBaseLine(family: NftFamily, line: Line): NftBaseChain {
  const m = /^type\s+(\S+)\s+hook\s+(\S+)(?:\s+device\s+("[^"]*"|\S+))?(?:\s+devices\s*=\s*\{[^}]*\})?\s+priority\s+([^;]+);(?:\s*policy\s+(accept|drop)\s*;)?(?:\s*flags\s+\S+\s*;)?\s*$/.exec(line.text);
  if (!m) throw new ParseError(line.number, line.column, `cannot read the base chain declaration "${line.text}" (expected "type T hook H priority P; policy accept;")`);
  const priority = parsePriority(family, m[4]!);
  if (priority === undefined) throw new ParseError(line.number, columnOf(line, m[4]!), `unknown chain priority "${m[4]!.trim()}"`);
  return {
    type: m[1]!,
    hook: m[2]!,
    priority,
    ...(m[5] !== undefined ? { policy: m[5] as 'accept' | 'drop' } : {}),
    ...(m[3] !== undefined ? { device: unquote(m[3]) } : {}),
  };
}

/** Split `a, b : c, d` at commas outside quoted strings. */
function splitTopLevel(text: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') inQuote = !inQuote;
    else if (!inQuote && c === '{') depth++;
    else if (!inQuote && c === '}') depth--;
    else if (!inQuote && depth === 0 && c === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const ELEMENT_ATTRIBUTES = new Set(['timeout', 'expires', 'comment', 'counter', 'packets', 'bytes']);

/** One element: `KEY [timeout T] [expires E] [counter packets N bytes M] [comment "C"] [: VALUE]`. */
function parseElement(text: string, isMap: boolean, where: () => ParseError): NftElement {
  let keyText = text;
  let valueText: string | undefined;
  if (isMap) {
    // The value follows the last " : " outside quotes; keys never contain one.
    const tokens = tokenize(text);
    const colon = tokens.findIndex((t) => t.text === ':' && !t.quoted);
    if (colon < 0) throw where();
    keyText = tokens.slice(0, colon).map((t) => (t.quoted ? `"${t.text}"` : t.text)).join(' ');
    valueText = tokens.slice(colon + 1).map((t) => t.text).join(' ');
  }
  const tokens = tokenize(keyText);
  const key: string[] = [];
  let comment: string | undefined;
  let timeoutSeconds: number | undefined;
  let expiresSeconds: number | undefined;
  let i = 0;
  let part: string[] = [];
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!t.quoted && ELEMENT_ATTRIBUTES.has(t.text)) break;
    if (!t.quoted && t.text === '.') {
      key.push(part.join(' '));
      part = [];
    } else {
      part.push(t.quoted ? `"${t.text}"` : t.text);
    }
  }
  if (part.length > 0) key.push(part.join(' '));
  for (; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.text === 'comment') comment = tokens[++i]?.text;
    else if (t.text === 'timeout') timeoutSeconds = parseDuration(tokens[++i]?.text ?? '');
    else if (t.text === 'expires') expiresSeconds = parseDuration(tokens[++i]?.text ?? '');
    else if (t.text === 'packets' || t.text === 'bytes') i++;
  }
  if (key.length === 0) throw where();
  return {
    key,
    ...(valueText !== undefined ? { value: [valueText] } : {}),
    ...(comment !== undefined ? { comment } : {}),
    ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    ...(expiresSeconds !== undefined ? { expiresSeconds } : {}),
  };
}

interface MutableSet {
  kind: 'set' | 'map';
  name: string;
  type?: string;
  typeOf?: string;
  flags?: string[];
  timeoutSeconds?: number;
  gcIntervalSeconds?: number;
  size?: number;
  policy?: string;
  autoMerge?: boolean;
  comment?: string;
  elements: NftElement[];
}

class DumpParser {
  private readonly lines: Line[];
  private at = 0;
  readonly tables: NftTable[] = [];
  readonly skipped: NftSkipped[] = [];

  constructor(text: string) {
    this.lines = text.split('\n').map((raw, i) => readLine(raw, i + 1));
  }

  private nextLine(): Line | undefined {
    while (this.at < this.lines.length) {
      const line = this.lines[this.at++]!;
      if (line.text !== '') return line;
    }
    return undefined;
  }

  private unexpectedEnd(what: string): ParseError {
    const last = this.lines.length;
    return new ParseError(last, 1, `the text ends inside ${what} (a "}" is missing)`);
  }

  parse(): void {
    for (let line = this.nextLine(); line !== undefined; line = this.nextLine()) {
      const m = /^table\s+(\S+)\s+(\S+)\s*\{$/.exec(line.text);
      if (!m) {
        throw new ParseError(line.number, line.column, `expected "table FAMILY NAME {", found "${line.text}"`);
      }
      const family = m[1] as NftFamily;
      if (!FAMILIES.has(family)) throw new ParseError(line.number, columnOf(line, m[1]!), `unknown table family "${m[1]}" (ip, ip6, inet, arp, bridge or netdev)`);
      this.table(family, m[2]!);
    }
  }

  private table(family: NftFamily, name: string): void {
    const sets = new Map<string, NftSet>();
    const chains = new Map<string, NftChain>();
    const others: NftOtherObject[] = [];
    let comment: string | undefined;
    let flags: string[] | undefined;
    const id = `${family} ${name}`;
    for (;;) {
      const line = this.nextLine();
      if (!line) throw this.unexpectedEnd(`table ${id}`);
      if (line.text === '}') break;
      let m: RegExpExecArray | null;
      if ((m = /^comment\s+("(?:[^"\\]|\\.)*")$/.exec(line.text))) {
        comment = unquote(m[1]!);
      } else if ((m = /^flags\s+(\S+)$/.exec(line.text))) {
        flags = m[1]!.split(',');
      } else if ((m = /^(set|map)\s+(\S+)\s*\{$/.exec(line.text))) {
        const set = this.set(m[1] as 'set' | 'map', m[2]!, line);
        sets.set(set.name, set);
      } else if ((m = /^chain\s+(\S+)\s*\{$/.exec(line.text))) {
        const chain = this.chain(family, m[1]!, id);
        chains.set(chain.name, chain);
      } else if ((m = /^(.+?)\s+(\S+)\s*\{(.*)$/.exec(line.text))) {
        // A flowtable, counter, quota, ct helper, ...: kept as its lines.
        const other = this.other(m[1]!, m[2]!, line);
        others.push(other);
        this.skipped.push({ table: id, what: `${other.kind} ${other.name}`, reason: `kpsim does not model ${other.kind} objects` });
      } else {
        throw new ParseError(line.number, line.column, `unexpected "${line.text}" in table ${id}`);
      }
    }
    if (!TRACED_FAMILIES.has(family)) this.skipped.push({ table: id, what: `table ${id}`, reason: `tables of family ${family} are kept but not traced` });
    this.tables.push({
      family, name, sets, chains,
      ...(comment !== undefined ? { comment } : {}),
      ...(flags !== undefined ? { flags } : {}),
      ...(others.length > 0 ? { others } : {}),
    });
  }

  /** A block kpsim keeps as text: everything up to its closing brace. */
  private other(kind: string, name: string, first: Line): NftOtherObject {
    const lines = [first.text];
    let depth = braceDelta(first.text);
    while (depth > 0) {
      const line = this.nextLine();
      if (!line) throw this.unexpectedEnd(`${kind} ${name}`);
      lines.push(`\t${line.text}`);
      depth += braceDelta(line.text);
    }
    if (lines.length > 1) lines[lines.length - 1] = lines[lines.length - 1]!.trimStart();
    return { kind, name, lines };
  }

  private set(kind: 'set' | 'map', name: string, start: Line): NftSet {
    const set: MutableSet = { kind, name, elements: [] };
    for (;;) {
      const line = this.nextLine();
      if (!line) throw this.unexpectedEnd(`${kind} ${name}`);
      if (line.text === '}') break;
      let m: RegExpExecArray | null;
      if ((m = /^type\s+(.+)$/.exec(line.text))) set.type = m[1]!;
      else if ((m = /^typeof\s+(.+)$/.exec(line.text))) set.typeOf = m[1]!;
      else if ((m = /^flags\s+(\S+)$/.exec(line.text))) set.flags = m[1]!.split(',');
      else if ((m = /^size\s+(\d+)$/.exec(line.text))) set.size = Number(m[1]);
      else if ((m = /^policy\s+(\S+)$/.exec(line.text))) set.policy = m[1]!;
      else if (line.text === 'auto-merge') set.autoMerge = true;
      else if ((m = /^(timeout|gc-interval)\s+(\S+)$/.exec(line.text))) {
        const seconds = parseDuration(m[2]!);
        if (seconds === undefined) throw new ParseError(line.number, columnOf(line, m[2]!), `"${m[2]}" is not a duration`);
        if (m[1] === 'timeout') set.timeoutSeconds = seconds;
        else set.gcIntervalSeconds = seconds;
      } else if ((m = /^comment\s+("(?:[^"\\]|\\.)*")$/.exec(line.text))) set.comment = unquote(m[1]!);
      else if (line.text.startsWith('elements')) set.elements.push(...this.elements(kind, line));
      else if (/^(counter|quota|limit|last)\b/.test(line.text)) continue; // per-element statements of the set
      else throw new ParseError(line.number, line.column, `unexpected "${line.text}" in ${kind} ${name}`);
    }
    if (set.type === undefined && set.typeOf === undefined) {
      throw new ParseError(start.number, start.column, `${kind} ${name} has no type`);
    }
    const { type, typeOf, ...rest } = set;
    return { ...rest, type: type ?? typeOf!, ...(typeOf !== undefined ? { typeOf } : {}) };
  }

  /** `elements = { a, b,` ... `c }`, over as many lines as it takes. */
  private elements(kind: 'set' | 'map', first: Line): NftElement[] {
    const m = /^elements\s*=\s*\{(.*)$/.exec(first.text);
    if (!m) throw new ParseError(first.number, first.column, `expected "elements = {", found "${first.text}"`);
    let body = m[1]!;
    let depth = 1 + braceDelta(body);
    while (depth > 0) {
      const line = this.nextLine();
      if (!line) throw this.unexpectedEnd(`the elements of ${kind}`);
      body += ` ${line.text}`;
      depth += braceDelta(line.text);
    }
    const close = body.lastIndexOf('}');
    const inner = body.slice(0, close);
    if (body.slice(close + 1).trim() !== '') {
      throw new ParseError(first.number, first.column, `unexpected text after the elements of ${kind}: "${body.slice(close + 1).trim()}"`);
    }
    return splitTopLevel(inner, ',').map((text) =>
      parseElement(text, kind === 'map', () => new ParseError(first.number, first.column, `cannot read the element "${text}"`)),
    );
  }

  private chain(family: NftFamily, name: string, tableName: string): NftChain {
    const rules: NftRule[] = [];
    let comment: string | undefined;
    let base: NftBaseChain | undefined;
    for (;;) {
      const line = this.nextLine();
      if (!line) throw this.unexpectedEnd(`chain ${name}`);
      if (line.text === '}') break;
      let m: RegExpExecArray | null;
      if (rules.length === 0 && base === undefined && comment === undefined && (m = /^comment\s+("(?:[^"\\]|\\.)*")$/.exec(line.text))) {
        comment = unquote(m[1]!);
        continue;
      }
      if (rules.length === 0 && base === undefined && /^type\s+\S+\s+hook\s/.test(line.text)) {
        base = parseBaseLine(family, line);
        continue;
      }
      if (line.text.endsWith('{')) throw new ParseError(line.number, line.column, `a block cannot start inside chain ${name} (is a "}" missing above?)`);
      const rule = splitRuleComment(line.text);
      rules.push(rule.comment === undefined ? { text: rule.text, listed: true } : { text: rule.text, comment: rule.comment, listed: true });
      const parsed = parseRuleText(rule.text);
      if (parsed.unknown !== undefined) {
        this.skipped.push({ table: tableName, chain: name, what: `rule "${rule.text}"`, reason: `not evaluated: ${parsed.unknown}` });
      }
    }
    return { name, rules, ...(comment !== undefined ? { comment } : {}), ...(base !== undefined ? { base } : {}) };
  }
}

/** Opening minus closing braces outside double quotes (a line of nft's text). */
export function braceDelta(text: string): number {
  let depth = 0;
  let inQuote = false;
  for (const c of text) {
    if (c === '"') inQuote = !inQuote;
    else if (!inQuote && c === '{') depth++;
    else if (!inQuote && c === '}') depth--;
  }
  return depth;
}

/** Read `nft list ruleset` text. Throws KPSIM_ERR_NFTABLES_PARSE with the line and column of the first problem. */
export function parseNftRuleset(text: string, opts: NftParseOptions = {}): NftRuleset {
  const parser = new DumpParser(text);
  try {
    parser.parse();
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    throw new KpsimError('KPSIM_ERR_NFTABLES_PARSE', e.message, {
      ...(opts.file !== undefined ? { file: opts.file } : {}),
      path: `line ${e.line} column ${e.column}`,
    });
  }
  return { tables: parser.tables, skipped: parser.skipped };
}
