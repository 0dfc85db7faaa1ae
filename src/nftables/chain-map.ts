/**
 * A table's chains by name, in creation order, that can also hold whole runs of chains written
 * elsewhere ("segments"): the endpoint- chains a service port wrote on another node of the
 * cluster (shared-work.ts), taken over by every node that sees the port alike.
 *
 * A node of a 5,000-node cluster holds 150k endpoint chains. Put into a Map one by one, each
 * node paid a hash-table insertion per chain (and the garbage of growing the table) although
 * most nodes only list their chains: rendered, counted. Appended as segments they cost one
 * array push per port; the name index is made the first time something asks for a chain by
 * name (a tracer, a kernel model), and from then on the map is a plain Map.
 *
 * Segments are appended only with chains whose names the map does not hold yet (a port's
 * chains are named after the port, so two ports never share one): the caller vouches for that,
 * which is what lets `size` and iteration work without the index.
 */
import type { NftChain } from './types.js';

export class ChainMap extends Map<string, NftChain> {
  /** Runs appended after the map's own entries and not yet indexed, in order. */
  #pending: (readonly NftChain[])[] = [];
  #pendingCount = 0;

  /** Append chains, named like no chain already here, after every chain here. */
  appendSegment(chains: readonly NftChain[]): void {
    if (chains.length === 0) return;
    this.#pending.push(chains);
    this.#pendingCount += chains.length;
  }

  /**
   * The chains in order: the indexed ones first, then each appended segment as it was handed
   * in (a renderer can recognise a shared segment by identity).
   */
  runs(): { readonly own: readonly NftChain[]; readonly segments: readonly (readonly NftChain[])[] } {
    return { own: [...super.values()], segments: [...this.#pending] };
  }

  /**
   * The chains in order, as an array of exactly their number: without a generator's iterator
   * result per chain, and without the room an array grown by push keeps (16 more slots, on each
   * of the 12k ports' chain lists shared work keeps for a 5,000-node cluster).
   */
  toArray(): NftChain[] {
    const chains = new Array<NftChain>(this.size);
    let at = 0;
    if (super.size > 0) for (const chain of super.values()) chains[at++] = chain;
    const pending = this.#pending;
    for (let s = 0; s < pending.length; s++) {
      const segment = pending[s]!;
      for (let i = 0; i < segment.length; i++) chains[at++] = segment[i]!;
    }
    return chains;
  }

  /** Index every appended chain: from now on this is a plain Map. */
  #index(): void {
    if (this.#pendingCount === 0) return;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingCount = 0;
    for (const segment of pending) for (const chain of segment) super.set(chain.name, chain);
  }

  override get size(): number {
    return super.size + this.#pendingCount;
  }

  override get(name: string): NftChain | undefined {
    this.#index();
    return super.get(name);
  }

  override has(name: string): boolean {
    this.#index();
    return super.has(name);
  }

  override set(name: string, chain: NftChain): this {
    this.#index();
    return super.set(name, chain);
  }

  override delete(name: string): boolean {
    this.#index();
    return super.delete(name);
  }

  override clear(): void {
    this.#pending = [];
    this.#pendingCount = 0;
    // Emptying a Map makes it a new hash table: only when it holds something (a table written
    // port after port holds runs only).
    if (super.size > 0) super.clear();
  }

  override forEach(callback: (value: NftChain, key: string, map: Map<string, NftChain>) => void, thisArg?: unknown): void {
    for (const [name, chain] of this.entries()) callback.call(thisArg, chain, name, this);
  }

  override *values(): MapIterator<NftChain> {
    yield* super.values();
    for (const segment of this.#pending) yield* segment;
  }

  override *keys(): MapIterator<string> {
    yield* super.keys();
    for (const segment of this.#pending) for (const chain of segment) yield chain.name;
  }

  override *entries(): MapIterator<[string, NftChain]> {
    yield* super.entries();
    for (const segment of this.#pending) for (const chain of segment) yield [chain.name, chain];
  }

  override [Symbol.iterator](): MapIterator<[string, NftChain]> {
    return this.entries();
  }
}

/** Append `chains` to the table's chains: as a segment where the map takes one, else one by one. */
export function appendChains(chains: Map<string, NftChain>, segment: readonly NftChain[]): void {
  if (chains instanceof ChainMap) chains.appendSegment(segment);
  else for (const chain of segment) chains.set(chain.name, chain);
}
