/**
 * What a compile wrote for one list of endpoints (a port's endpoint chains), kept so that
 * another node's compile reaching the very same endpoints takes it over instead of walking them
 * again: the view most nodes share, and a few more (a zone's, for a topology-aware port).
 */
import type { EndpointInfo } from '../model/proxy-info.js';
import { withLast } from '../util/position-cache.js';
import { sameEndpoints } from './categorize.js';

export interface EndpointBlock {
  readonly endpoints: readonly EndpointInfo[];
}

export class EndpointBlocks<B extends EndpointBlock> {
  /** The block the last take() found (undefined when none). */
  taken: B | undefined;
  /**
   * The one block kept, or the blocks when more than one is (a few ports' only): an array of
   * one per port was 56 bytes more on each of a cluster's 12k ports.
   */
  #blocks: B | readonly B[] | undefined = undefined;
  readonly #kept: number;

  /** `kept`: how many blocks are kept, the oldest dropped first. */
  constructor(kept: number) {
    this.#kept = kept;
  }

  /** Whether a block for these endpoints, in this order, is kept (then `taken`). */
  take(endpoints: readonly EndpointInfo[]): boolean {
    const blocks = this.#blocks;
    if (blocks === undefined) this.taken = undefined;
    else if (isList(blocks)) this.taken = blocks.find((b) => sameEndpoints(b.endpoints, endpoints));
    else this.taken = sameEndpoints(blocks.endpoints, endpoints) ? blocks : undefined;
    return this.taken !== undefined;
  }

  /** The kept blocks, oldest first. */
  kept(): readonly B[] {
    const blocks = this.#blocks;
    return blocks === undefined ? [] : isList(blocks) ? blocks : [blocks];
  }

  keep(block: B): void {
    const blocks = this.#blocks;
    this.#blocks = blocks === undefined ? block : withLast(isList(blocks) ? blocks : [blocks], block, this.#kept);
  }
}

/** Whether what is kept is a list of blocks, not one block (Array.isArray, narrowing a readonly array). */
function isList<B extends EndpointBlock>(blocks: B | readonly B[]): blocks is readonly B[] {
  return Array.isArray(blocks);
}
