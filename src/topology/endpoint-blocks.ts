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
  #blocks: readonly B[] = [];
  readonly #kept: number;

  /** `kept`: how many blocks are kept, the oldest dropped first. */
  constructor(kept: number) {
    this.#kept = kept;
  }

  /** Whether a block for these endpoints, in this order, is kept (then `taken`). */
  take(endpoints: readonly EndpointInfo[]): boolean {
    this.taken = this.#blocks.find((b) => sameEndpoints(b.endpoints, endpoints));
    return this.taken !== undefined;
  }

  /** The kept blocks, oldest first. */
  kept(): readonly B[] {
    return this.#blocks;
  }

  keep(block: B): void {
    this.#blocks = withLast(this.#blocks, block, this.#kept);
  }
}
