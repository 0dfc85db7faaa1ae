/**
 * nftables rulesets prepared for tracing one IP family: the base chains of every table the
 * family's packets pass (ip or ip6, and inet), grouped by hook and ordered by priority as the
 * kernel runs them; each chain's rules read into statements once, on first use; each set and
 * map indexed by its elements' keys, so a verdict-map lookup costs one Map.get whatever the
 * number of services.
 */
import { addressText, addressValue, intervalContains, parseAddressInterval, type AddressInterval } from '../../nftables/addresses.js';
import { canonicalRule } from '../../nftables/canonical.js';
import { PROTOCOL_NUMBERS } from '../../nftables/elements.js';
import { parseRuleText } from '../../nftables/rule-parse.js';
import type { ParsedRule } from '../../nftables/rule-ast.js';
import type { NftBaseChain, NftChain, NftElement, NftRule, NftRuleset, NftSet, NftTable } from '../../nftables/types.js';
import type { Family } from '../../util/ip.js';
import { normalizeIP } from '../../util/ip.js';

export const PROTOCOL_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PROTOCOL_NUMBERS).map(([name, number]) => [number, name]),
);

export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

/** A key part as packets and elements both write it: a normalised address, a protocol name, a decimal port. */
export function normalizeKeyPart(part: string): string {
  if (/^\d+$/.test(part)) return part;
  if (part.includes('.') || part.includes(':')) return normalizeIP(part) ?? part;
  return part;
}

export function keyOf(parts: readonly string[]): string {
  return parts.length === 1 ? parts[0]! : parts.join(' . ');
}

/** A prefix or range of addresses as an interval; anything else as its normalised text. */
function keyPartOf(part: string): AddressInterval | string {
  if (part.includes('/') || part.includes('-')) {
    const iv = parseAddressInterval(part);
    if (iv) return iv.lo === iv.hi ? addressText(iv.family, iv.lo) : iv;
  }
  return normalizeKeyPart(part);
}

/** A set or map, indexed for lookups. */
export class IndexedSet {
  private readonly exact = new Map<string, NftElement>();
  /** Elements with address intervals (interval sets, prefixes): tested one by one. */
  private readonly intervals: { readonly element: NftElement; readonly parts: readonly (AddressInterval | string)[] }[] = [];

  constructor(readonly table: NftTable, readonly set: NftSet) {
    for (const element of set.elements) {
      const parts = element.key.map(keyPartOf);
      if (parts.some((p) => typeof p !== 'string')) {
        this.intervals.push({ element, parts });
      } else {
        this.exact.set(keyOf(parts as string[]), element);
      }
    }
  }

  get name(): string {
    return this.set.name;
  }

  /** The element whose key the packet's parts match. */
  lookup(parts: readonly string[]): NftElement | undefined {
    const found = this.exact.get(keyOf(parts));
    if (found || this.intervals.length === 0) return found;
    for (const { element, parts: keys } of this.intervals) {
      if (keys.length !== parts.length) continue;
      let all = true;
      for (let i = 0; i < keys.length && all; i++) {
        const key = keys[i]!;
        if (typeof key === 'string') {
          all = key === parts[i];
        } else {
          const v = addressValue(parts[i]!);
          all = v !== undefined && intervalContains(key, v.family, v.value);
        }
      }
      if (all) return element;
    }
    return undefined;
  }
}

export interface CompiledRule {
  readonly table: NftTable;
  readonly chain: NftChain;
  readonly rule: NftRule;
  readonly parsed: ParsedRule;
  /** The rule as nft prints it (made when a hop is read). */
  text(): string;
}

export interface CompiledChain {
  readonly table: NftTable;
  readonly chain: NftChain;
  readonly rules: readonly CompiledRule[];
}

export interface BaseChainEntry {
  readonly table: NftTable;
  readonly chain: NftChain;
  readonly base: NftBaseChain;
}

function familyTables(rulesets: readonly NftRuleset[], family: Family): NftTable[] {
  const own = family === 4 ? 'ip' : 'ip6';
  return rulesets.flatMap((r) => r.tables).filter((t) => t.family === own || t.family === 'inet');
}

/** One IP family's view of the rulesets. */
export class NftProgram {
  readonly tables: readonly NftTable[];
  private readonly hooks = new Map<string, BaseChainEntry[]>();
  private readonly compiled = new Map<NftChain, CompiledChain>();
  private readonly indexed = new Map<NftSet, IndexedSet>();

  constructor(rulesets: readonly NftRuleset[], readonly family: Family) {
    this.tables = familyTables(rulesets, family);
    const order: BaseChainEntry[] = [];
    for (const table of this.tables) {
      for (const chain of table.chains.values()) if (chain.base) order.push({ table, chain, base: chain.base });
    }
    // By priority; the kernel runs equal priorities in registration order, which kpsim takes as listing order.
    const sorted = order.map((e, i) => ({ e, i })).sort((a, b) => a.e.base.priority - b.e.base.priority || a.i - b.i).map((x) => x.e);
    for (const entry of sorted) {
      const list = this.hooks.get(entry.base.hook) ?? [];
      list.push(entry);
      this.hooks.set(entry.base.hook, list);
    }
  }

  baseChains(hook: Hook): readonly BaseChainEntry[] {
    return this.hooks.get(hook) ?? [];
  }

  chain(table: NftTable, name: string): CompiledChain | undefined {
    const chain = table.chains.get(name);
    return chain === undefined ? undefined : this.compile(table, chain);
  }

  compile(table: NftTable, chain: NftChain): CompiledChain {
    let compiled = this.compiled.get(chain);
    if (!compiled) {
      const rules = chain.rules.map((rule): CompiledRule => {
        let text: string | undefined;
        return { table, chain, rule, parsed: parseRuleText(rule.text), text: () => (text ??= canonicalRule(rule)) };
      });
      compiled = { table, chain, rules };
      this.compiled.set(chain, compiled);
    }
    return compiled;
  }

  set(table: NftTable, name: string): IndexedSet | undefined {
    const set = table.sets.get(name);
    if (set === undefined) return undefined;
    let indexed = this.indexed.get(set);
    if (!indexed) {
      indexed = new IndexedSet(table, set);
      this.indexed.set(set, indexed);
    }
    return indexed;
  }

  /** Index every set and read every rule now, rather than on first use. */
  warm(): void {
    for (const table of this.tables) {
      for (const chain of table.chains.values()) this.compile(table, chain);
      for (const name of table.sets.keys()) this.set(table, name);
    }
  }
}
