/**
 * The nftables tracer's kept walks (as iptables mode's walk-cache.ts): by destination side
 * (the destination address, interned to an id by the tracer's AddressFactsCache; protocol,
 * port and origin as slotKey; the mark), a DecisionTrie of every-outcome walks and one of
 * seeded samples. Every trie lays its source classes out in one ClassTable, which also records
 * each side's regions, so that a plain packet's lookup reads typed arrays only (see the
 * tracer's plain path).
 */
import { ClassTable } from '../class-table.js';
import { DecisionTrie, type RecentTemplate } from '../decisions.js';
import type { TraceResult, TraceSample } from '../types.js';
import { slotKey } from '../walk-cache.js';
import type { NftFlow } from './walk.js';

/** A sampled walk kept: the sample, and the dynamic-set updates with the source left open. */
export interface NftSampleLeaf {
  readonly sample: TraceSample;
  readonly updates: readonly RecentTemplate[] | undefined;
  /** The sampleOnly answer made from it when first asked (shared, frozen), when it made no updates. */
  sampleOnly: TraceResult | undefined;
}

/** The walks kept for one destination side. */
export interface NftSlot {
  readonly key: number;
  readonly mark: number;
  readonly all: DecisionTrie<TraceResult, NftFlow>;
  readonly one: DecisionTrie<NftSampleLeaf, NftFlow>;
  /** The slot of the same address, protocol, port and origin with another mark. */
  otherMark: NftSlot | undefined;
}

/** Trie nodes kept before the kept walks are let go (as iptables mode's). */
const MAX_NODES = 1_000_000;

export class NftKeptWalks {
  /** By destination address id: its slots by slotKey, marks chained. */
  private byAddress: (Map<number, NftSlot> | undefined)[] = [];
  private nodes = 0;
  /** The source classes of every slot's tries, and each side's regions. */
  readonly classes: ClassTable;

  /** `classCapacity`: the class table's first size (see ClassTable). */
  constructor(classCapacity?: number) {
    this.classes = new ClassTable(classCapacity);
  }

  /** The slot of a side when walks were kept for it. */
  find(addressId: number, key: number, mark: number): NftSlot | undefined {
    let slot = this.byAddress[addressId]?.get(key);
    while (slot !== undefined && slot.mark !== mark) slot = slot.otherMark;
    return slot;
  }

  /** The slot of a side, made empty when new. */
  slot(addressId: number, protoCode: number, dport: number, fromNode: boolean, mark: number): NftSlot {
    const key = slotKey(protoCode, dport, fromNode);
    const found = this.find(addressId, key, mark);
    if (found !== undefined) return found;
    const slots = (this.byAddress[addressId] ??= new Map());
    const made: NftSlot = { key, mark, all: new DecisionTrie(this.classes), one: new DecisionTrie(this.classes), otherMark: slots.get(key) };
    slots.set(key, made);
    return made;
  }

  /** Count nodes a walk added; past MAX_NODES everything kept is let go. */
  added(nodes: number): void {
    this.nodes += nodes;
    if (this.nodes > MAX_NODES) this.clear();
  }

  /** Let everything go (also when the addresses' ids are given again). */
  clear(): void {
    this.byAddress = [];
    this.nodes = 0;
    this.classes.clear();
  }
}
