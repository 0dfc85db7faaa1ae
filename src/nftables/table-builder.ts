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

/**
 * Give a chain that is written (every rule added) an array of exactly its rules: an array grown
 * by push keeps room for 17, and a cluster's service ports keep one chain each (12k at 5,000
 * nodes) with mostly two rules. Only for a chain of the caller's own making, that nothing else
 * holds the rules of yet.
 */
export function fitRules(chain: NftChain): void {
  const rules = chain.rules;
  if (rules.length === 0 || Object.getPrototypeOf(chain) !== Object.prototype) return;
  (chain as { rules: NftRule[] }).rules = rules.slice();
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

/**
 * Each set's element keys (elementKey), in the order of its elements, and from INDEXED_FROM
 * elements on their positions by key too, for the duplicate check. A set of a few elements is
 * checked by a scan of its keys: the scratch table shared work writes each port into (five
 * sets emptied and filled again per port, a few elements each) made and dropped an index per
 * set and port.
 */
interface SetIndex {
  readonly keys: string[];
  byKey: Map<string, number> | undefined;
}

const indexes = new WeakMap<NftSet, SetIndex>();

/** From this many elements on a set's keys are indexed by a Map; below, scanned. */
const INDEXED_FROM = 8;

/** The set's index, made again from its elements if they were changed by something else than the functions here. */
function indexOf(set: NftSet): SetIndex {
  let index = indexes.get(set);
  if (index === undefined || index.keys.length !== set.elements.length) {
    const keys = set.elements.map(elementKey);
    index = { keys, byKey: undefined };
    if (keys.length >= INDEXED_FROM) index.byKey = byKeyOf(keys);
    indexes.set(set, index);
  }
  return index;
}

function byKeyOf(keys: readonly string[]): Map<string, number> {
  const byKey = new Map<string, number>();
  for (let i = 0; i < keys.length; i++) byKey.set(keys[i]!, i);
  return byKey;
}

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

/** elementKey of the set's element at `i`, as the set keeps it (not joined again). */
export function elementKeyAt(set: NftSet, i: number): string {
  return indexOf(set).keys[i]!;
}

/** addElement with the element's key (elementKey) worked out before: shared elements are added on many nodes. */
export function addKeyedElement(set: NftSet, element: NftElement, key: string): void {
  const index = indexOf(set);
  const keys = index.keys;
  let at: number | undefined;
  if (index.byKey !== undefined) at = index.byKey.get(key);
  else {
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === key) {
        at = i;
        break;
      }
    }
  }
  if (at !== undefined) {
    const old = set.elements[at]!;
    if ((old.value ?? []).join(' . ') === (element.value ?? []).join(' . ')) return;
    set.elements.splice(at, 1);
    keys.splice(at, 1);
    const byKey = index.byKey;
    if (byKey !== undefined) for (const [k, i] of byKey) if (i > at) byKey.set(k, i - 1);
  }
  if (index.byKey !== undefined) index.byKey.set(key, keys.length);
  keys.push(key);
  set.elements.push(element);
  if (index.byKey === undefined && keys.length >= INDEXED_FROM) index.byKey = byKeyOf(keys);
}

/** Empty a set, to be filled again from scratch (a table reused for one port after another). */
export function clearElements(set: NftSet): void {
  emptyArray(set.elements);
  const index = indexes.get(set);
  if (index !== undefined) {
    emptyArray(index.keys);
    // Dropped, not emptied: emptying a Map makes it a new table, and most sets refilled are small.
    index.byKey = undefined;
  }
}

/**
 * Empty an array and keep its storage when it is small: setting the length to 0 drops the
 * storage, and the next push makes a new one (room for 17), so a scratch set emptied and filled
 * again per port of a big cluster made two arrays of garbage per port; pop keeps it.
 */
function emptyArray(array: unknown[]): void {
  if (array.length > 64) array.length = 0;
  else while (array.length > 0) array.pop();
}
