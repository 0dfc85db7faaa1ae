/**
 * A Ruleset table's chains by name, as the tracer looks them up: from the table's Map once it
 * is made, else from its declaration list (iptables/declared-chains.ts), leaving the Map unmade.
 *
 * The first reader of `table.chains` makes a chain object for every chain of the service port
 * runs (110k KUBE-SEP chains at 10k services) and puts each into the Map: most of what a fresh
 * tracer's first trace cost, though it compiles a handful of chains. Here the chains other
 * chains jump to (the table's own chains, and each run's entry chains: a port's KUBE-SVC and
 * KUBE-SVL) are indexed by name, a run's other chains (its KUBE-SEP chains, jumped to only from
 * the run's own) are looked up within the run of the chain that jumps, and a run's chains are
 * made when one of them is first asked for: that run's alone. A name found in neither indexes
 * every chain of every run, once (a hand-made ruleset may jump anywhere).
 */
import { type ChainRun, isChainRun, pendingChainsOf } from '../iptables/declared-chains.js';
import { type Chain, isBuiltinChain, type Table } from '../iptables/types.js';

export class ChainsByName {
  /** Name → its declared chain, or the run that declares it (made on first lookup). */
  private index: Map<string, Chain | ChainRun> | undefined;
  /** Entries of the declaration list indexed so far: one declared after is indexed when asked. */
  private indexed = 0;
  /** The runs declared so far, and whether all their chains are indexed (not only their entry chains). */
  private readonly runs: ChainRun[] = [];
  private everyRunChain = false;
  /** The chains of each run asked for so far, and the run of each of them. */
  private readonly made = new Map<ChainRun, readonly Chain[]>();
  private readonly runOfChain = new Map<string, ChainRun>();

  constructor(private readonly table: Table) {}

  /** Whether the table has chain `name`, jumped to from chain `from` (whose run is searched first). */
  has(name: string, from?: string): boolean {
    const pending = pendingChainsOf(this.table);
    if (pending === undefined) return this.table.chains.has(name);
    return this.entryOf(pending.entries, name, from) !== undefined;
  }

  /** The chain `name` (made with its run's, when it is a run's), or undefined. */
  get(name: string, from?: string): Chain | undefined {
    const pending = pendingChainsOf(this.table);
    if (pending === undefined) return this.table.chains.get(name);
    const entry = this.entryOf(pending.entries, name, from);
    if (entry === undefined || !isChainRun(entry)) return entry;
    let chains = this.made.get(entry);
    if (chains === undefined) {
      chains = entry.makeChains();
      this.made.set(entry, chains);
      for (const chain of chains) this.runOfChain.set(chain.name, entry);
    }
    return chains.find((chain) => chain.name === name);
  }

  private entryOf(entries: readonly (Chain | ChainRun)[], name: string, from: string | undefined): Chain | ChainRun | undefined {
    const index = (this.index ??= new Map());
    for (; this.indexed < entries.length; this.indexed++) {
      const entry = entries[this.indexed]!;
      if (!isChainRun(entry)) {
        index.set(entry.name, entry);
        continue;
      }
      this.runs.push(entry);
      const count = this.everyRunChain ? entry.chainCount : entry.entryChainCount;
      for (let i = 0; i < count; i++) index.set(entry.chainName(i), entry);
    }
    const found = index.get(name);
    if (found !== undefined || this.everyRunChain) return found;
    const run = from === undefined ? undefined : this.runOfChain.get(from);
    if (run !== undefined) {
      for (let i = run.entryChainCount; i < run.chainCount; i++) if (run.chainName(i) === name) return run;
    }
    // A built-in chain the table leaves out (the tracer then assumes kube-proxy's jumps): runs
    // declare user chains only.
    if (isBuiltinChain(this.table.name, name)) return undefined;
    // Not an entry chain, nor one of the jumping chain's run: every run's every chain, once.
    this.everyRunChain = true;
    for (const other of this.runs) {
      for (let i = other.entryChainCount; i < other.chainCount; i++) index.set(other.chainName(i), other);
    }
    return index.get(name);
  }
}
