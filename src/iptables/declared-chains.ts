/**
 * The chains of a Ruleset table in declaration order, kept as a list while the compile writes
 * them and made the table's Map (name → chain) on first read.
 *
 * A 10k-service sync declares 130k chains. Putting each into the table's Map as it is declared
 * (the Map grows, rehashing, seventeen times on the way) cost a fifth of the compile, and a
 * compile whose ruleset is only rendered (`kpsim compile`, the cluster-wide texts) never looks a
 * chain up by name. A service port's KUBE-SVC, KUBE-SVL and KUBE-SEP chains are declared as one
 * run (ChainRun), which holds what they are made of, not a chain object each: the render writes
 * their text from it. The first reader of `table.chains` (the tracer, the rules graph, an
 * incremental sync) gets the Map of every chain in declaration order, the runs' chains made then
 * as deferred chains (deferred-chains.ts), and from then on the table is an ordinary one.
 *
 * A chain declared twice is a bug in the compiler (declareChain in ruleset-builder.ts): while
 * the chains are a list it is found when the Map is made, not when the chain is declared.
 */
import type { TextBuffer } from './save-text.js';
import type { Chain, Table } from './types.js';

/**
 * Chains declared one after the other and written from what they are made of (a service
 * port's). A class, not an interface, so that telling a run from a chain is one instanceof:
 * the render asks for each of a big table's 20k entries three times.
 */
export abstract class ChainRun {
  /** How many chains the run declares. */
  abstract readonly chainCount: number;
  /** The run's chains, in declaration order (made on call). */
  abstract makeChains(): Chain[];
  /** The name of the run's chain `i` (makeChains()[i].name), without making it. */
  abstract chainName(i: number): string;
  /**
   * How many of the run's first chains other chains jump to: the rest are jumped to only from
   * the run's own chains (a service port's KUBE-SEP chains, from its KUBE-SVC and KUBE-SVL).
   */
  abstract readonly entryChainCount: number;
  /** Rules in the run's chains, without making them. */
  abstract ruleCount(): number;
  /** The chains' `:NAME - [0:0]` lines. */
  abstract writeDeclarations(out: TextBuffer): void;
  /** The chains' `-A` lines, chain after chain. */
  abstract writeRules(out: TextBuffer): void;
  /** About the bytes writeDeclarations and writeRules write. */
  abstract estimatedTextBytes(): number;
}

/** One table's chains in declaration order: a list, until the Map is read. */
export class DeclaredChains {
  /** Chains and runs in declaration order; emptied when the Map is made. */
  #entries: (Chain | ChainRun)[] = [];
  #map: Map<string, Chain> | undefined;

  constructor(readonly table: string) {}

  /** Whether the Map is made: `entries` are then no longer kept. */
  get isMapped(): boolean {
    return this.#map !== undefined;
  }

  /** Chains and runs in declaration order (only while the Map is not made). */
  get entries(): readonly (Chain | ChainRun)[] {
    if (this.#map !== undefined) throw new Error(`table ${this.table}: its chains are a Map now`);
    return this.#entries;
  }

  declare(chain: Chain): void {
    if (this.#map === undefined) this.#entries.push(chain);
    else addChain(this.#map, chain, this.table);
  }

  declareRun(run: ChainRun): void {
    if (this.#map === undefined) {
      this.#entries.push(run);
      return;
    }
    for (const chain of run.makeChains()) addChain(this.#map, chain, this.table);
  }

  /** Every chain by name, in declaration order: made on first read, the runs' chains with it. */
  get map(): Map<string, Chain> {
    if (this.#map !== undefined) return this.#map;
    const map = new Map<string, Chain>();
    for (const entry of this.#entries) {
      if (isRun(entry)) for (const chain of entry.makeChains()) addChain(map, chain, this.table);
      else addChain(map, entry, this.table);
    }
    this.#entries = [];
    this.#map = map;
    return map;
  }
}

function isRun(entry: Chain | ChainRun): entry is ChainRun {
  return entry instanceof ChainRun;
}

/** Whether a declared entry is a run (else a chain). */
export { isRun as isChainRun };

/** One Map operation, not has() then set(): this runs once per chain. */
function addChain(map: Map<string, Chain>, chain: Chain, table: string): void {
  const before = map.size;
  map.set(chain.name, chain);
  if (map.size === before) throw new Error(`chain ${chain.name} declared twice in table ${table}`);
}

/** The declarations of the tables createTable made. */
const declaredOf = new WeakMap<Table, DeclaredChains>();

/**
 * An empty table whose `chains` Map is made on first read from what was declared through
 * declaredChainsOf(table). `chains` is an own enumerable property (a getter until the Map is
 * made, then the Map itself), so the table compares and prints as one made with a Map.
 */
export function createTable(name: Table['name']): Table {
  const declared = new DeclaredChains(name);
  const table = { name } as { name: Table['name']; chains: Map<string, Chain> };
  Object.defineProperty(table, 'chains', {
    enumerable: true,
    configurable: true,
    get(): Map<string, Chain> {
      const map = declared.map;
      // From now on a plain property: the tracer reads it on every chain lookup.
      Object.defineProperty(table, 'chains', { value: map, enumerable: true, writable: false, configurable: false });
      return map;
    },
  });
  declaredOf.set(table, declared);
  return table;
}

/** The declaration list of a table createTable made whose Map is not read yet, else undefined. */
export function pendingChainsOf(table: Table): DeclaredChains | undefined {
  const declared = declaredOf.get(table);
  return declared === undefined || declared.isMapped ? undefined : declared;
}

/** Where chains are declared into a table: its declaration list, or its Map once made (or if it has no list). */
export function declareInto(table: Table, chain: Chain): void {
  const declared = declaredOf.get(table);
  if (declared !== undefined) declared.declare(chain);
  else addChain(table.chains, chain, table.name);
}

/** Declare a run of chains into a table (made as chains at once if its Map is read). */
export function declareRunInto(table: Table, run: ChainRun): void {
  const declared = declaredOf.get(table);
  if (declared !== undefined) declared.declareRun(run);
  else for (const chain of run.makeChains()) addChain(table.chains, chain, table.name);
}

/** How many chains a table has, without making its Map. */
export function chainCountOf(table: Table): number {
  const pending = pendingChainsOf(table);
  if (pending === undefined) return table.chains.size;
  let n = 0;
  for (const entry of pending.entries) n += isRun(entry) ? entry.chainCount : 1;
  return n;
}
