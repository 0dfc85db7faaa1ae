/**
 * Filling a table the way kube-proxy fills a knftables transaction: add a chain (once), add
 * rules to it in order, add a set or map, add elements. Adding the same chain or set twice is
 * a no-op, as `add chain` is in nft; adding an element whose key exists replaces its value,
 * as knftables' fake does.
 */
import { ChainMap } from './chain-map.js';
import type { NftBaseChain, NftChain, NftElement, NftFamily, NftRule, NftSet, NftTable } from './types.js';

export function createTable(family: NftFamily, name: string, comment?: string): NftTable {
  return { family, name, ...(comment !== undefined ? { comment } : {}), sets: new Map(), chains: new ChainMap() };
}

const NO_EXTRA: { comment?: string; base?: NftBaseChain } = {};

export function ensureChain(table: NftTable, name: string, extra = NO_EXTRA): NftChain {
  let chain = table.chains.get(name);
  if (chain === undefined) {
    chain = extra === NO_EXTRA ? { name, rules: [] } : { name, ...extra, rules: [] };
    table.chains.set(name, chain);
  }
  return chain;
}

export function chainOf(table: NftTable, name: string): NftChain {
  const chain = table.chains.get(name);
  if (!chain) throw new Error(`chain ${name} is not in table ${table.family} ${table.name}`);
  return chain;
}

export function addRule(chain: NftChain, text: string, comment?: string): void {
  const rule: NftRule = comment === undefined ? { text } : { text, comment };
  chain.rules.push(rule);
}

export type SetSpec = Omit<NftSet, 'elements'>;

export function ensureSet(table: NftTable, spec: SetSpec): NftSet {
  let set = table.sets.get(spec.name);
  if (set === undefined) {
    set = { ...spec, elements: [] };
    table.sets.set(spec.name, set);
  }
  return set;
}

export function setOf(table: NftTable, name: string): NftSet {
  const set = table.sets.get(name);
  if (!set) throw new Error(`set ${name} is not in table ${table.family} ${table.name}`);
  return set;
}

/** Each set's element positions by key, for the duplicate check. */
const positions = new WeakMap<NftSet, Map<string, number>>();

/**
 * Add an element, as kube-proxy's nftElementStorage.ensureElem does: a key already there with
 * the same value is left as it is (a service's cluster IP is added once per port); with another
 * value the old element is deleted and the new one added at the end.
 */
export function addElement(set: NftSet, element: NftElement): void {
  addKeyedElement(set, element, elementKey(element));
}

/** The element's key as one string: what the duplicate check compares. */
export function elementKey(element: NftElement): string {
  return element.key.length === 1 ? element.key[0]! : element.key.join(' . ');
}

/** addElement with the element's key (elementKey) worked out before: shared elements are added on many nodes. */
export function addKeyedElement(set: NftSet, element: NftElement, key: string): void {
  let byKey = positions.get(set);
  if (!byKey) {
    byKey = new Map();
    positions.set(set, byKey);
  }
  const at = byKey.get(key);
  if (at !== undefined) {
    const old = set.elements[at]!;
    if ((old.value ?? []).join(' . ') === (element.value ?? []).join(' . ')) return;
    set.elements.splice(at, 1);
    for (const [k, i] of byKey) if (i > at) byKey.set(k, i - 1);
  }
  byKey.set(key, set.elements.length);
  set.elements.push(element);
}

/** Empty a set, to be filled again from scratch (a table reused for one port after another). */
export function clearElements(set: NftSet): void {
  set.elements.length = 0;
  // Emptying a Map makes it a new table: only when it holds something.
  const byKey = positions.get(set);
  if (byKey !== undefined && byKey.size > 0) byKey.clear();
}
