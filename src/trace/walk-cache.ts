/**
 * Walks kept for later packets. A walk's answer follows from the destination side of the packet
 * (destination address, port, protocol, its mark, and whether the node sends it) and from the decisions
 * it took that read the source or a draw (decisions.ts). So the cache is keyed by the
 * destination side, and under each key a DecisionTrie holds the walks made so far: one for
 * every outcome (TraceResult without a sample), one for seeded samples.
 *
 * Only walks with the default conntrack state and interfaces are kept (the tracer walks the
 * others every time): those are what load tests, the simulator, IPVS mode's walks after the
 * virtual server (with the mark set before it) and the bench ask.
 */
import { ClassTable } from './class-table.js';
import { DecisionTrie, type RecentTemplate } from './decisions.js';
import type { Hop, TraceResult, TraceSample } from './types.js';

/**
 * A sampled walk's answer: the sample (shared), and its recent changes with the source's address
 * left open; the `sampleOnly` answer made from it when first asked (shared, frozen) when the
 * walk changed no recent list (else each packet's own is made).
 */
export interface SampleLeaf {
  readonly sample: TraceSample;
  readonly recent: readonly RecentTemplate[] | undefined;
  /** A recent change keys the source's address with a mask (so needs its words; see recentKey). */
  readonly recentMasks: boolean;
  sampleOnly: TraceResult | undefined;
  /**
   * The sample's hops, made when a packet's own sample first needs them (a walk that changed
   * recent lists: each packet gets its own sample, all with these hops, which name no source).
   */
  hops: readonly Hop[] | undefined;
}

/** The walks of one destination side. */
export interface CacheSlot {
  readonly protoCode: number;
  readonly dport: number;
  readonly fromNode: boolean;
  readonly mark: number;
  /** Every outcome, the result without `sample` (shared, frozen). */
  readonly all: DecisionTrie<TraceResult>;
  readonly one: DecisionTrie<SampleLeaf>;
  /** The slot of the same protocol, port and origin with another mark. */
  otherMark: CacheSlot | undefined;
}

/**
 * Trie nodes kept before the cache starts over: about 100 bytes each, so some 100 MB at most.
 * A load test of 10k services x 10 endpoints keeps ~30 per destination for every outcome and
 * ~40 for samples.
 */
const MAX_NODES = 1_000_000;

/**
 * Where a destination address's slots are kept: on what the tracer already looks up for that
 * address (its facts), so a lookup pays no map of its own beyond the one by port.
 */
export interface SlotHolder {
  /** By slotKey (protocol, origin, port); marks other than the first are chained (otherMark). */
  slots: Map<number, CacheSlot> | undefined;
}

/** A destination side's key under its address: one small integer, no string built. */
export function slotKey(protoCode: number, dport: number, fromNode: boolean): number {
  return (protoCode * 2 + (fromNode ? 1 : 0)) * 65536 + dport;
}

/** The slot of a destination side (its slotKey and mark) when walks were kept for it. */
export function findSlot(holder: SlotHolder, key: number, mark: number): CacheSlot | undefined {
  let slot = holder.slots?.get(key);
  while (slot !== undefined && slot.mark !== mark) slot = slot.otherMark;
  return slot;
}

export class WalkCache {
  /** The holders given slots, to let go of them all at once. */
  private holders: SlotHolder[] = [];
  private nodes = 0;
  /** The source classes of every slot's tries, and each destination side's regions (class-table.ts). */
  readonly classes: ClassTable;

  /** `classCapacity`: the class table's first size (see ClassTable). */
  constructor(classCapacity?: number) {
    this.classes = new ClassTable(classCapacity);
  }

  /** The slot of a destination side (the address's holder, then the rest), made empty when new. */
  slot(holder: SlotHolder, protoCode: number, dport: number, fromNode: boolean, mark: number): CacheSlot {
    let slots = holder.slots;
    if (slots === undefined) {
      slots = holder.slots = new Map();
      this.holders.push(holder);
    }
    const key = slotKey(protoCode, dport, fromNode);
    const first = slots.get(key);
    for (let s = first; s !== undefined; s = s.otherMark) if (s.mark === mark) return s;
    const made: CacheSlot = { protoCode, dport, fromNode, mark, all: new DecisionTrie(this.classes), one: new DecisionTrie(this.classes), otherMark: first };
    slots.set(key, made);
    return made;
  }

  /** Count nodes a walk added; past MAX_NODES everything kept is let go. */
  added(nodes: number): void {
    this.nodes += nodes;
    if (this.nodes > MAX_NODES) {
      for (const holder of this.holders) holder.slots = undefined;
      this.holders = [];
      this.nodes = 0;
      this.classes.clear();
    }
  }
}
