/**
 * The kernel's nftables, as far as kube-proxy's transactions reach it: tables holding chains,
 * sets and maps, changed by `nft -f` transactions that apply whole or not at all. It refuses
 * what the kernel refuses (measured with nft 1.0.6 on kernel 6.18, see
 * ../shared/reference/kube-proxy-nftables.md §6):
 *
 * - a rule in, a jump/goto to, or an element's verdict naming a chain that does not exist, and a
 *   rule naming a set (`@name`) that does not exist: "No such file or directory";
 * - flushing or deleting a chain, set or map that does not exist, deleting an element that is
 *   not there: "No such file or directory";
 * - deleting a chain that a rule or a map element still jumps to, or a set a rule still uses:
 *   "Device or resource busy" (a chain's own rules go with it);
 * - adding an element whose key is there with another value: "File exists" (kube-proxy deletes
 *   and re-adds); the same key and value again is no change;
 * - adding a base chain that exists with another hook, type or priority: "Operation not supported"
 *   (why kube-proxy deletes and re-creates its base chains on its first sync).
 *
 * Chains, sets and elements keep creation order, which is the order `nft list ruleset` lists
 * them in (elements are sorted when printed). References are counted as they come and go, so a
 * transaction costs what it changes, not the size of the table.
 */
import { KUBE_PROXY_TABLE } from './names.js';
import type { NftOp, NftSetSpec, NftTransaction } from './transaction.js';
import { renderOp } from './transaction.js';
import type { NftBaseChain, NftChain, NftElement, NftFamily, NftRule, NftRuleset, NftSet, NftTable } from './types.js';

export class NftTransactionError extends Error {
  constructor(readonly line: number, readonly op: string, readonly reason: string) {
    super(`line ${line}: Error: Could not process rule: ${reason}\n${op}`);
  }
}

const ENOENT = 'No such file or directory';
const EBUSY = 'Device or resource busy';
const EEXIST = 'File exists';
const EOPNOTSUPP = 'Operation not supported';

interface KernelSet {
  readonly spec: NftSetSpec;
  /** By key text ("10.0.0.1 . tcp . 80"). */
  readonly elements: Map<string, NftElement>;
}

interface KernelTable {
  readonly family: NftFamily;
  readonly name: string;
  comment: string | undefined;
  readonly chains: Map<string, NftChain>;
  readonly sets: Map<string, KernelSet>;
  /** How many rules and map elements jump or go to each chain. */
  readonly chainRefs: Map<string, number>;
  /** How many rules use each set. */
  readonly setRefs: Map<string, number>;
}

const CHAIN_REF = /\b(?:jump|goto) ([A-Za-z0-9_./-]+)/g;
const SET_REF = /@([A-Za-z0-9_./-]+)/g;

/** The chains a rule or a verdict jumps or goes to, and the sets it names. */
function referencesOf(text: string): { chains: string[]; sets: string[] } {
  return { chains: [...text.matchAll(CHAIN_REF)].map((m) => m[1]!), sets: [...text.matchAll(SET_REF)].map((m) => m[1]!) };
}

export function elementKey(element: Pick<NftElement, 'key'>): string {
  return element.key.join(' . ');
}

function sameBase(a: NftBaseChain | undefined, b: NftBaseChain | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.type === b.type && a.hook === b.hook && a.priority === b.priority && (a.device ?? '') === (b.device ?? '');
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n === 0) map.delete(key);
  else map.set(key, n);
}

export class NftKernel {
  readonly #tables = new Map<string, KernelTable>();

  /**
   * Apply a transaction whole, or throw NftTransactionError (naming the op, 1-based line of
   * the rendered transaction) and leave everything as it was.
   */
  apply(tx: NftTransaction): void {
    const id = `${tx.family} ${tx.table}`;
    const undo: (() => void)[] = [];
    let line = 0;
    try {
      for (const op of tx.ops) {
        line++;
        const reason = this.#apply(id, tx, op, undo);
        if (reason !== undefined) throw new NftTransactionError(line, renderOp(tx.family, tx.table, op), reason);
      }
    } catch (e) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      throw e;
    }
  }

  /** The chains of a table, in creation order (knftables' List("chains")). */
  chainNames(family: NftFamily, table = KUBE_PROXY_TABLE): string[] {
    return [...(this.#tables.get(`${family} ${table}`)?.chains.keys() ?? [])];
  }

  /** The sets and maps of a table, in creation order (List("sets") and List("maps")). */
  setNames(family: NftFamily, table = KUBE_PROXY_TABLE): string[] {
    return [...(this.#tables.get(`${family} ${table}`)?.sets.keys() ?? [])];
  }

  /** Everything, as `nft list ruleset` would list it (render with renderNftCanonical). */
  ruleset(): NftRuleset {
    const tables: NftTable[] = [];
    for (const t of this.#tables.values()) {
      const sets = new Map<string, NftSet>();
      for (const [name, s] of t.sets) sets.set(name, { ...s.spec, elements: [...s.elements.values()] });
      const chains = new Map<string, NftChain>();
      for (const [name, c] of t.chains) chains.set(name, { ...c, rules: [...c.rules] });
      tables.push({ family: t.family, name: t.name, ...(t.comment !== undefined ? { comment: t.comment } : {}), sets, chains });
    }
    return { tables, skipped: [] };
  }

  /** One op; a reason when the kernel refuses it. Every change pushes its inverse onto `undo`. */
  #apply(id: string, tx: NftTransaction, op: NftOp, undo: (() => void)[]): string | undefined {
    if (op.kind === 'table') {
      const existing = this.#tables.get(id);
      if (existing === undefined) {
        this.#tables.set(id, { family: tx.family, name: tx.table, comment: op.comment, chains: new Map(), sets: new Map(), chainRefs: new Map(), setRefs: new Map() });
        undo.push(() => this.#tables.delete(id));
      }
      return undefined;
    }
    const t = this.#tables.get(id);
    if (t === undefined) return ENOENT;
    switch (op.kind) {
      case 'chain':
        return this.#chainOp(t, op, undo);
      case 'set':
        return this.#setOp(t, op, undo);
      case 'rule': {
        const chain = t.chains.get(op.chain);
        if (chain === undefined) return ENOENT;
        const refs = referencesOf(op.rule.text);
        if (refs.chains.some((c) => !t.chains.has(c)) || refs.sets.some((s) => !t.sets.has(s))) return ENOENT;
        chain.rules.push(op.rule);
        this.#countRule(t, op.rule, 1);
        undo.push(() => {
          chain.rules.pop();
          this.#countRule(t, op.rule, -1);
        });
        return undefined;
      }
      case 'element':
        return this.#elementOp(t, op, undo);
    }
  }

  #chainOp(t: KernelTable, op: Extract<NftOp, { kind: 'chain' }>, undo: (() => void)[]): string | undefined {
    const chain = t.chains.get(op.name);
    if (op.verb === 'add') {
      if (chain !== undefined) return op.base === undefined || sameBase(chain.base, op.base) ? undefined : EOPNOTSUPP;
      const created: NftChain = { name: op.name, ...(op.comment !== undefined ? { comment: op.comment } : {}), ...(op.base !== undefined ? { base: op.base } : {}), rules: [] };
      t.chains.set(op.name, created);
      undo.push(() => t.chains.delete(op.name));
      return undefined;
    }
    if (chain === undefined) return ENOENT;
    if (op.verb === 'delete' && (t.chainRefs.get(op.name) ?? 0) > 0) return EBUSY;
    const rules = chain.rules.splice(0);
    for (const rule of rules) this.#countRule(t, rule, -1);
    undo.push(() => {
      chain.rules.push(...rules);
      for (const rule of rules) this.#countRule(t, rule, 1);
    });
    if (op.verb === 'delete') {
      t.chains.delete(op.name);
      // Back at the end (a refused transaction may reorder the listing; copying a table of a
      // hundred thousand chains per delete to keep the order would cost more than it is worth).
      undo.push(() => t.chains.set(op.name, chain));
    }
    return undefined;
  }

  #setOp(t: KernelTable, op: Extract<NftOp, { kind: 'set' }>, undo: (() => void)[]): string | undefined {
    if (op.verb === 'add') {
      const existing = t.sets.get(op.set.name);
      if (existing !== undefined) {
        const same = existing.spec.kind === op.set.kind && existing.spec.type === op.set.type && (existing.spec.flags ?? []).join(',') === (op.set.flags ?? []).join(',');
        return same ? undefined : EEXIST;
      }
      t.sets.set(op.set.name, { spec: op.set, elements: new Map() });
      undo.push(() => t.sets.delete(op.set.name));
      return undefined;
    }
    const set = t.sets.get(op.name);
    if (set === undefined || set.spec.kind !== op.setKind) return ENOENT;
    if (op.verb === 'delete' && (t.setRefs.get(op.name) ?? 0) > 0) return EBUSY;
    const elements = [...set.elements.values()];
    set.elements.clear();
    for (const e of elements) this.#countElement(t, e, -1);
    undo.push(() => {
      for (const e of elements) {
        set.elements.set(elementKey(e), e);
        this.#countElement(t, e, 1);
      }
    });
    if (op.verb === 'delete') {
      t.sets.delete(op.name);
      undo.push(() => t.sets.set(op.name, set));
    }
    return undefined;
  }

  #elementOp(t: KernelTable, op: Extract<NftOp, { kind: 'element' }>, undo: (() => void)[]): string | undefined {
    const set = t.sets.get(op.set);
    if (set === undefined || set.spec.kind !== op.setKind) return ENOENT;
    const key = elementKey(op.element);
    const existing = set.elements.get(key);
    if (op.verb === 'delete') {
      if (existing === undefined) return ENOENT;
      set.elements.delete(key);
      this.#countElement(t, existing, -1);
      undo.push(() => {
        set.elements.set(key, existing);
        this.#countElement(t, existing, 1);
      });
      return undefined;
    }
    const value = (op.element.value ?? []).join(' . ');
    if (existing !== undefined) return (existing.value ?? []).join(' . ') === value ? undefined : EEXIST;
    if (referencesOf(value).chains.some((c) => !t.chains.has(c))) return ENOENT;
    set.elements.set(key, op.element);
    this.#countElement(t, op.element, 1);
    undo.push(() => {
      set.elements.delete(key);
      this.#countElement(t, op.element, -1);
    });
    return undefined;
  }

  #countRule(t: KernelTable, rule: NftRule, by: number): void {
    if (!rule.text.includes('jump') && !rule.text.includes('goto') && !rule.text.includes('@')) return;
    const refs = referencesOf(rule.text);
    for (const c of refs.chains) bump(t.chainRefs, c, by);
    for (const s of refs.sets) bump(t.setRefs, s, by);
  }

  #countElement(t: KernelTable, element: NftElement, by: number): void {
    if (element.value === undefined) return;
    for (const c of referencesOf(element.value.join(' . ')).chains) bump(t.chainRefs, c, by);
  }
}
