/**
 * Rule text → statements. Reads both forms of a rule: the one kube-proxy writes through
 * knftables ("mark set mark or 0x4000", "ip daddr { 172.30.0.0/16 } drop",
 * "vmap { 0 : goto a , 1 : goto b }") and the one `nft list ruleset` prints back
 * ("meta mark set meta mark | 0x00004000", ...). Statements are read left to right; anything
 * outside the language of rule-ast.ts makes the whole rule unknown, with the word where
 * reading stopped.
 */
import type { Operand, ParsedRule, RelOp, Selector, Statement, Verdict, VerdictKind } from './rule-ast.js';

interface Token {
  readonly text: string;
  /** A "quoted" string (the quotes removed). */
  readonly quoted: boolean;
}

const PUNCTUATION = new Set(['{', '}', ',']);

/** Split on white space, keep "quoted strings" whole, and split `{`, `}` and `,` off words. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      const stop = end < 0 ? n : end;
      tokens.push({ text: text.slice(i + 1, stop), quoted: true });
      i = stop + 1;
      continue;
    }
    if (PUNCTUATION.has(c)) {
      tokens.push({ text: c, quoted: false });
      i++;
      continue;
    }
    let j = i;
    while (j < n) {
      const d = text[j]!;
      if (d === ' ' || d === '\t' || d === '\n' || d === '\r' || d === '"' || PUNCTUATION.has(d)) break;
      j++;
    }
    tokens.push({ text: text.slice(i, j), quoted: false });
    i = j;
  }
  return tokens;
}

class Unknown extends Error {}

const VERDICTS = new Set<VerdictKind>(['accept', 'drop', 'continue', 'return', 'jump', 'goto', 'queue']);
const TRANSPORT = new Set(['th', 'tcp', 'udp', 'sctp', 'udplite', 'dccp']);
/** Meta keys nft prints without "meta". */
const UNQUALIFIED_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype', 'iifgroup', 'oifgroup', 'mark', 'skuid', 'skgid', 'rtclassid']);
/** Words that start a statement other than a match: they end the flags of a NAT or reject. */
const STATEMENT_WORDS = new Set(['comment', 'dnat', 'snat', 'masquerade', 'redirect', 'reject', 'update', 'add', 'limit', 'meta', 'ct', 'mark']);
const REL_OPS = new Set<RelOp>(['==', '!=', '<', '>', '<=', '>=']);
/** Statements that never change a packet's fate, with the words each may take (a value after each). */
const NOOP_STATEMENTS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['counter', new Set(['packets', 'bytes'])],
  ['log', new Set(['prefix', 'level', 'group', 'snaplen', 'queue-threshold', 'flags'])],
  ['notrack', new Set<string>()],
]);

class RuleParser {
  private i = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  private peek(offset = 0): string | undefined {
    return this.tokens[this.i + offset]?.text;
  }

  private next(): string {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new Unknown('the rule ends too early');
    return t.text;
  }

  private expect(word: string): void {
    const got = this.next();
    if (got !== word) throw new Unknown(`expected "${word}" at "${got}"`);
  }

  private done(): boolean {
    return this.i >= this.tokens.length;
  }

  parse(): Statement[] {
    const statements: Statement[] = [];
    while (!this.done()) statements.push(this.statement());
    return statements;
  }

  private statement(): Statement {
    const word = this.peek()!;
    if (VERDICTS.has(word as VerdictKind)) return { kind: 'verdict', verdict: this.verdict() };
    switch (word) {
      case 'reject': {
        this.next();
        if (this.peek() === 'with') {
          this.next();
          const parts: string[] = [];
          while (!this.done() && !this.isStatementStart(this.peek()!)) parts.push(this.next());
          return { kind: 'reject', with: parts.join(' ') };
        }
        return { kind: 'reject' };
      }
      case 'dnat':
      case 'snat':
        return this.nat();
      case 'masquerade': {
        this.next();
        const args: string[] = [];
        while (!this.done() && !this.isStatementStart(this.peek()!)) args.push(this.next());
        return { kind: 'masquerade', args };
      }
      case 'update':
      case 'add': {
        this.next();
        const ref = this.next();
        if (!ref.startsWith('@')) throw new Unknown(`expected @set after ${word} at "${ref}"`);
        this.expect('{');
        const key = this.selector();
        this.expect('}');
        return { kind: 'dynset', op: word, set: ref.slice(1), key };
      }
      case 'meta':
        if (this.peek(1) === 'mark' && this.peek(2) === 'set') return this.markSet('meta', 3);
        if (this.peek(1) === 'nftrace' && this.peek(2) === 'set') return this.noopWords(4);
        break;
      case 'mark':
        if (this.peek(1) === 'set') return this.markSet('meta', 2);
        break;
      case 'ct':
        if (this.peek(1) === 'mark' && this.peek(2) === 'set') return this.markSet('ct', 3);
        break;
    }
    const noopArgs = NOOP_STATEMENTS.get(word);
    if (noopArgs) return this.noop(noopArgs);
    return this.match();
  }

  private isStatementStart(word: string): boolean {
    return VERDICTS.has(word as VerdictKind) || NOOP_STATEMENTS.has(word) || STATEMENT_WORDS.has(word);
  }

  private verdict(): Verdict {
    const kind = this.next() as VerdictKind;
    if (kind === 'jump' || kind === 'goto') return { kind, chain: this.next() };
    if (kind === 'queue') {
      while (!this.done()) this.next();
    }
    return { kind };
  }

  /** `dnat [ip|ip6] to ADDR[:PORT] [flags]` */
  private nat(): Statement {
    const type = this.next() as 'dnat' | 'snat';
    let l3: 'ip' | 'ip6' | undefined;
    if (this.peek() === 'ip' || this.peek() === 'ip6') l3 = this.next() as 'ip' | 'ip6';
    this.expect('to');
    const to = this.next();
    const flags: string[] = [];
    while (!this.done() && !this.isStatementStart(this.peek()!)) {
      const w = this.next();
      if (w !== ',') flags.push(w);
    }
    return l3 === undefined ? { kind: 'nat', type, to, flags } : { kind: 'nat', type, l3, to, flags };
  }

  /** After `mark set` / `meta mark set` / `ct mark set`: a value, or the mark combined with one. */
  private markSet(target: 'meta' | 'ct', skip: number): Statement {
    this.i += skip;
    const first = this.peek();
    const isSelf = target === 'meta'
      ? first === 'mark' || (first === 'meta' && this.peek(1) === 'mark')
      : first === 'ct' && this.peek(1) === 'mark';
    if (!isSelf) return { kind: 'mark-set', target, op: 'set', value: this.number(this.next()) };
    this.i += first === 'mark' ? 1 : 2;
    const opWord = this.next();
    const op = opWord === 'or' || opWord === '|' ? '|' : opWord === 'xor' || opWord === '^' ? '^' : opWord === 'and' || opWord === '&' ? '&' : undefined;
    if (op === undefined) throw new Unknown(`unknown mark operation "${opWord}"`);
    return { kind: 'mark-set', target, op, value: this.number(this.next()) };
  }

  private number(text: string): number {
    const value = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isFinite(value)) throw new Unknown(`"${text}" is not a number`);
    return value >>> 0;
  }

  /** counter [packets N bytes N], log [prefix "x"] [...]: kept as text. */
  private noop(args: ReadonlySet<string>): Statement {
    const start = this.i;
    this.next();
    while (!this.done() && args.has(this.peek()!)) {
      this.next();
      this.next();
    }
    return { kind: 'noop', text: this.textFrom(start) };
  }

  private noopWords(count: number): Statement {
    const start = this.i;
    this.i += count;
    return { kind: 'noop', text: this.textFrom(start) };
  }

  private textFrom(start: number): string {
    return this.tokens.slice(start, this.i).map((t) => (t.quoted ? `"${t.text}"` : t.text)).join(' ');
  }

  /** SELECTOR (vmap MAP | [OP] OPERAND) */
  private match(): Statement {
    const left = this.selector();
    if (this.peek() === 'vmap') {
      this.next();
      return { kind: 'vmap', key: left, map: this.vmap() };
    }
    let op: RelOp = '==';
    if (REL_OPS.has(this.peek() as RelOp)) op = this.next() as RelOp;
    return { kind: 'match', left, op, right: this.operand() };
  }

  private vmap(): Extract<Statement, { kind: 'vmap' }>['map'] {
    const first = this.next();
    if (first.startsWith('@')) return { kind: 'ref', set: first.slice(1) };
    if (first !== '{') throw new Unknown(`expected a verdict map at "${first}"`);
    const entries: { key: string; verdict: Verdict }[] = [];
    for (;;) {
      const key = this.next();
      this.expect(':');
      entries.push({ key, verdict: this.verdict() });
      const sep = this.next();
      if (sep === '}') break;
      if (sep !== ',') throw new Unknown(`expected "," or "}" in a verdict map at "${sep}"`);
    }
    return { kind: 'anon', entries };
  }

  private operand(): Operand {
    const first = this.tokens[this.i];
    if (first === undefined) throw new Unknown('a match without a value');
    if (first.text === '{' && !first.quoted) {
      this.next();
      const items: string[] = [];
      let parts: string[] = [];
      for (;;) {
        const t = this.next();
        if (t === ',' || t === '}') {
          if (parts.length > 0) items.push(parts.join(' '));
          parts = [];
          if (t === '}') break;
        } else {
          parts.push(this.tokens[this.i - 1]!.quoted ? `"${t}"` : t);
        }
      }
      return { kind: 'list', items };
    }
    this.i++;
    if (!first.quoted && first.text.startsWith('@')) return { kind: 'ref', set: first.text.slice(1) };
    // A quoted string (an interface name) keeps its quotes, as nft prints them.
    if (first.quoted) return { kind: 'value', text: `"${first.text}"` };
    // A flag list such as "ct state new,established" arrives as words and commas.
    let text = first.text;
    while (this.peek() === ',') {
      this.next();
      text += `,${this.next()}`;
    }
    return { kind: 'value', text };
  }

  /** One selector, a concatenation of them, or one combined with a mask. */
  selector(): Selector {
    const parts = [this.single()];
    while (this.peek() === '.') {
      this.next();
      parts.push(this.single());
    }
    let sel: Selector = parts.length === 1 ? parts[0]! : { kind: 'concat', parts };
    const opWord = this.peek();
    const op = opWord === '&' || opWord === 'and' ? '&' : opWord === '|' || opWord === 'or' ? '|' : opWord === '^' || opWord === 'xor' ? '^' : undefined;
    if (op !== undefined) {
      this.next();
      sel = { kind: 'bitwise', left: sel, op, value: this.number(this.next()) };
    }
    return sel;
  }

  private single(): Selector {
    const word = this.next();
    if (word === 'ip' || word === 'ip6') return { kind: 'payload', base: word, field: this.next() };
    if (TRANSPORT.has(word)) return { kind: 'transport', proto: word, field: this.next() };
    if (word === 'meta') return { kind: 'meta', key: this.next() };
    if (UNQUALIFIED_META.has(word)) return { kind: 'meta', key: word };
    if (word === 'ct') return { kind: 'ct', key: this.next() };
    if (word === 'fib') {
      const flags = [this.next()];
      while (this.peek() === '.') {
        this.next();
        flags.push(this.next());
      }
      return { kind: 'fib', flags, result: this.next() };
    }
    if (word === 'numgen') {
      const mode = this.next();
      this.expect('mod');
      const mod = this.number(this.next());
      let offset = 0;
      if (this.peek() === 'offset') {
        this.next();
        offset = this.number(this.next());
      }
      return { kind: 'numgen', mode, mod, offset };
    }
    throw new Unknown(`"${word}" is not something kpsim evaluates`);
  }
}

/**
 * Statements of a rule's text (without its comment). Never throws on odd input: a rule kpsim
 * cannot read comes back with `unknown` set.
 */
export function parseRuleText(text: string): ParsedRule {
  try {
    return { statements: new RuleParser(tokenize(text)).parse() };
  } catch (e) {
    if (e instanceof Unknown) return { statements: [], unknown: e.message };
    throw e;
  }
}

/** `{ ip saddr }` of a set update, or a set's `typeof` text, read as a selector. */
export function parseSelectorText(text: string): Selector | undefined {
  try {
    const parser = new RuleParser(tokenize(text));
    return parser.selector();
  } catch (e) {
    if (e instanceof Unknown) return undefined;
    throw e;
  }
}
