/**
 * A Ruleset read from the iptables-save text its compile wrote, each piece made when first read.
 *
 * A 10k-service sync is 370k rules in 122k chains. As objects (a rule object and an argument
 * array per rule, a chain object per chain, a Map of them) they are most of what the garbage
 * collector traces and promotes during the compile, and reading them back to render the text
 * costs as much as writing it. Most readers want the text (render, `kpsim compile`), or a few
 * chains (the tracer compiles the chains a packet reaches). So the compile writes the text, as
 * compileIptablesSave does, and keeps where each table and chain lies in it: a table's Map of
 * chains is made when `chains` is first read, a chain's rules when its `rules` is first read
 * (tokenized from its lines, exactly the tokens the compiler wrote: the text quotes only what
 * tokenizeLine unquotes).
 *
 * Once made, the Map and the rule arrays are the ruleset, as in any other: readers may change
 * them (with-jumps.ts, incremental-sync.ts do), and render.ts renders a chain from its text only
 * while its rules were never made, and a table wholly from its text only while its Map was never
 * made. The text is one Latin-1 string Node keeps outside V8's heap. Tables and chains are plain
 * objects with a getter (`chains`, `rules`), of the same keys as any other ruleset's.
 */
import type { Family } from '../util/ip.js';
import type { TextLayout } from './text-sink.js';
import { tokenizeLine } from './tokenize.js';
import type { Chain, Rule, Ruleset, Table, TableName } from './types.js';

/** The text and where each chain lies in it, shared by the tables and chains of one ruleset. */
class SavedText {
  /** By chain id: 1 once its rules were read. */
  readonly read: Uint8Array;
  /** By chain id: the chain object, once its table's Map was made; `made` of them. */
  readonly byId: Chain[] = [];
  made = 0;
  /** byId inverted, made when first wanted (render of a table that was read) and again when more chains were made. */
  #ids: Map<Chain, number> | undefined;

  constructor(readonly layout: TextLayout) {
    this.read = new Uint8Array(layout.ruleCount.length);
  }

  /** The id of a chain made from this text (undefined for any other chain). */
  idOf(chain: Chain): number | undefined {
    if (this.#ids === undefined || this.#ids.size !== this.made) {
      const ids = new Map<Chain, number>();
      this.byId.forEach((c, id) => ids.set(c, id));
      this.#ids = ids;
    }
    return this.#ids.get(chain);
  }

  get text(): string {
    return this.layout.text;
  }

  /** The rules of chain `id`, tokenized from its lines. */
  rulesOf(id: number, chain: string): Rule[] {
    const { ruleStart, ruleEnd, ruleCount } = this.layout;
    // The chain's own lines, so that every search below stops at its end.
    const text = this.layout.text.slice(ruleStart[id]!, ruleEnd[id]!);
    const rules = new Array<Rule>(ruleCount[id]!);
    let n = 0;
    let p = 0;
    // Every line is "-A CHAIN token ...": the arguments start after the chain's name.
    const skip = 4 + chain.length;
    let quote = text.indexOf('"');
    while (p < text.length) {
      let lineEnd = text.indexOf('\n', p);
      if (lineEnd < 0) lineEnd = text.length;
      if (quote >= 0 && quote < p) quote = text.indexOf('"', p);
      let args: string[];
      if (quote < 0 || quote > lineEnd) {
        // No quoted token: single spaces separate the tokens, none of which is empty.
        args = lineEnd > p + skip ? text.slice(p + skip, lineEnd).split(' ') : [];
      } else {
        // A quoted token may hold a newline: the line ends at the first one outside quotes.
        lineEnd = lineEndOutsideQuotes(text, p);
        const tokenized = tokenizeLine(text.slice(p, lineEnd));
        if (!tokenized.ok) throw new Error(`chain ${chain}: its own text does not tokenize: ${tokenized.detail}`);
        args = tokenized.tokens.slice(2);
      }
      if (n < rules.length) rules[n] = { chain, args };
      n++;
      p = lineEnd + 1;
    }
    if (n !== rules.length) throw new Error(`chain ${chain}: ${n} rules read back from its text, ${rules.length} written`);
    return rules;
  }
}

/** The position of the newline that ends the line starting at `p`, skipping quoted parts. */
function lineEndOutsideQuotes(text: string, p: number): number {
  let quoted = false;
  for (let i = p; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quoted) {
      if (c === 92) i++;
      else if (c === 34) quoted = false;
    } else if (c === 34) {
      quoted = true;
    } else if (c === 10) {
      return i;
    }
  }
  return text.length;
}

/** A piece of the text, while what it stands for was never read. */
export interface UntouchedText {
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly rules: number;
}

/**
 * Where a text-backed table comes from, and whether it was read. Tables and chains are plain
 * objects with a getter, shaped as any other ruleset's (a reader may compare them with
 * assert.deepStrictEqual, which reads the getter), so this is kept beside them: for the few
 * tables in a WeakMap, for the many chains by id in their SavedText (a WeakMap entry per chain
 * cost more than the rest of making the chain).
 */
interface TableSource {
  readonly saved: SavedText;
  readonly index: number;
  read: boolean;
}

const tableSources = new WeakMap<Table, TableSource>();

/** A chain whose rules are read from the text when first wanted. */
function textBackedChain(name: string, saved: SavedText, id: number): Chain {
  let rules: Rule[] | undefined;
  return {
    name,
    get rules(): Rule[] {
      if (rules === undefined) {
        rules = saved.rulesOf(id, name);
        saved.read[id] = 1;
      }
      return rules;
    },
  };
}

/**
 * The text of a chain of a text-backed table's Map, while its rules were never read (undefined
 * for a chain the table's text does not hold, or one that was read).
 */
function untouchedChainText(saved: SavedText, chain: Chain): UntouchedText | undefined {
  const id = saved.idOf(chain);
  if (id === undefined || saved.read[id] !== 0) return undefined;
  const { text, ruleStart, ruleEnd, ruleCount } = saved.layout;
  return { text, start: ruleStart[id]!, end: ruleEnd[id]!, rules: ruleCount[id]! };
}

/**
 * For each chain of `table` in order, its text while untouched (else undefined): what render.ts
 * may copy instead of rendering the chain's rules. Only chains of a text-backed table's own text
 * are found; a chain carried into another table (with-jumps.ts) is rendered from its rules.
 */
export function untouchedChainTexts(table: Table): (chain: Chain) => UntouchedText | undefined {
  const source = tableSources.get(table);
  if (source === undefined) return () => undefined;
  return (chain) => untouchedChainText(source.saved, chain);
}

/** A table whose Map of chains is made when first wanted. */
function textBackedTable(name: TableName, saved: SavedText, index: number): Table {
  const source: TableSource = { saved, index, read: false };
  let chains: Map<string, Chain> | undefined;
  const table: Table = {
    name,
    get chains(): Map<string, Chain> {
      if (chains === undefined) {
        const { names, tables } = saved.layout;
        const ids = tables[index]!.chains;
        chains = new Map<string, Chain>();
        for (let i = 0; i < ids.length; i++) {
          const id = ids[i]!;
          const chain = textBackedChain(names[id]!, saved, id);
          saved.byId[id] = chain;
          saved.made++;
          chains.set(names[id]!, chain);
        }
        source.read = true;
      }
      return chains;
    },
  };
  tableSources.set(table, source);
  return table;
}

/** A table's whole text (`*name` to COMMIT) and rule count, while its chains were never read (undefined for any other table). */
export function untouchedTableText(table: Table): UntouchedText | undefined {
  const source = tableSources.get(table);
  if (source === undefined || source.read) return undefined;
  const { text, tables, ruleCount } = source.saved.layout;
  const t = tables[source.index]!;
  let rules = 0;
  for (let i = 0; i < t.chains.length; i++) rules += ruleCount[t.chains[i]!]!;
  return { text, start: t.start, end: t.end, rules };
}

/**
 * A Ruleset over the text of a compile (a TextLayout with names). The text must be ASCII, as
 * kube-proxy's is: its offsets are then characters and bytes alike; the caller writes a Ruleset
 * the usual way otherwise.
 */
export function textBackedRuleset(family: Family, layout: TextLayout): Ruleset {
  if (!layout.ascii) throw new Error('a text-backed ruleset needs ASCII text');
  const saved = new SavedText(layout);
  const tables = new Map<TableName, Table>();
  layout.tables.forEach((t, i) => tables.set(t.name, textBackedTable(t.name, saved, i)));
  return { family, tables };
}

/**
 * The whole text of a ruleset none of whose tables was read (every table text-backed, of one
 * text, in its order, none left out): then rendering it is that text.
 */
export function untouchedRulesetText(ruleset: Ruleset): string | undefined {
  let text: string | undefined;
  let at = 0;
  for (const table of ruleset.tables.values()) {
    const untouched = untouchedTableText(table);
    if (untouched === undefined || untouched.start !== at || (text !== undefined && untouched.text !== text)) return undefined;
    text = untouched.text;
    at = untouched.end;
  }
  return text !== undefined && at === text.length ? text : undefined;
}
