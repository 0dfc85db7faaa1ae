/**
 * What a walk knows about the packet: the parts that never change during a walk (`Flow`) and
 * the parts one path of the walk changes (`PathState`: destination after DNAT, mark, conntrack
 * state, recent lists, where the path is in the chains). A path is copied when it forks on a
 * statistic rule, so PathState is small and flat.
 */
import type { CompiledChain } from './compile-rule.js';
import { addressTypeBit } from './fast-checks.js';
import type { Words } from '../util/ip.js';
import type { RecentChange } from './recent.js';
import type { TableName } from '../iptables/types.js';
import type { Verdict } from './types.js';

export interface Flow {
  readonly proto: string;
  /** 6, 17 or 132 (see protocolCode). */
  readonly protoCode: number;
  readonly src: string;
  readonly srcWords: Words;
  /** The IPv4 source as a number (-1 for IPv6): what IPv4 address checks compare. */
  readonly src32: number;
  readonly srcType: string;
  /** The source's address type as a bit (see addressTypeBit). */
  readonly srcTypeBit: number;
  readonly sport: number | undefined;
  readonly inInterface: string | undefined;
  readonly outInterface: string | undefined;
  /** Conntrack states before any NAT (NEW by default), as bits (see ctStateBits). */
  readonly ctBits: number;
  readonly fromNode: boolean;
}

/** The hooks a packet passes, in order. */
export type Stage =
  | 'nat PREROUTING' | 'nat OUTPUT' | 'filter INPUT' | 'filter FORWARD' | 'filter OUTPUT' | 'nat POSTROUTING' | 'done';

export function stageTable(stage: Exclude<Stage, 'done'>): TableName {
  return stage.startsWith('nat') ? 'nat' : 'filter';
}

export function stageChain(stage: Exclude<Stage, 'done'>): string {
  return stage.slice(stage.indexOf(' ') + 1);
}

export class PathState {
  dst: string;
  dstWords: Words;
  /** The IPv4 destination as a number (-1 for IPv6). */
  dst32: number;
  dstType: string;
  dstTypeBit: number;
  dport: number;
  mark: number;
  /** Conntrack's virtual DNAT state: set once a DNAT target has run. */
  dnatDone: boolean;
  probability: number;
  endpoint: string | undefined;
  masquerade: boolean;
  /** An explicit ACCEPT rule in filter let the packet through. */
  accepted: boolean;
  /** DROP or REJECT, once decided. */
  verdict: Verdict | undefined;
  recent: RecentChange | undefined;
  stage: Stage;
  /** The current stage's built-in chain has been entered (an empty stack then means it is over). */
  stageStarted: boolean;
  /**
   * The call stack, as parallel arrays of which only the first `depth` entries count: the
   * chain, its candidate rules (positions) and how far the walk is in them. A jump writes three
   * slots rather than allocating a frame object (about 8 jumps per path of a kube-proxy walk),
   * and a finished path's arrays are reused by the next fork (see copyFrom).
   */
  chains: CompiledChain[];
  candidates: (readonly number[])[];
  nexts: number[];
  depth: number;

  constructor(init: {
    dst: string; dstWords: Words; dstType: string; dstTypeBit?: number; dport: number; mark: number; stage: Stage;
  }) {
    this.dst = init.dst;
    this.dstWords = init.dstWords;
    this.dst32 = init.dstWords.length === 1 ? init.dstWords[0]! : -1;
    this.dstType = init.dstType;
    this.dstTypeBit = init.dstTypeBit ?? addressTypeBit(init.dstType);
    this.dport = init.dport;
    this.mark = init.mark;
    this.dnatDone = false;
    this.probability = 1;
    this.endpoint = undefined;
    this.masquerade = false;
    this.accepted = false;
    this.verdict = undefined;
    this.recent = undefined;
    this.stage = init.stage;
    this.stageStarted = false;
    this.chains = [];
    this.candidates = [];
    this.nexts = [];
    this.depth = 0;
  }

  /** Enter `chain`, at its first candidate. */
  push(chain: CompiledChain, candidates: readonly number[]): void {
    const d = this.depth++;
    this.chains[d] = chain;
    this.candidates[d] = candidates;
    this.nexts[d] = 0;
  }

  /** A copy that can go its own way; the stack is copied, the rest is values or persistent. */
  fork(): PathState {
    return new PathState(this).copyFrom(this);
  }

  /** Become a copy of `other` (reusing this state's arrays). */
  copyFrom(other: PathState): this {
    this.dst = other.dst;
    this.dstWords = other.dstWords;
    this.dst32 = other.dst32;
    this.dstType = other.dstType;
    this.dstTypeBit = other.dstTypeBit;
    this.dport = other.dport;
    this.mark = other.mark;
    this.dnatDone = other.dnatDone;
    this.probability = other.probability;
    this.endpoint = other.endpoint;
    this.masquerade = other.masquerade;
    this.accepted = other.accepted;
    this.verdict = other.verdict;
    this.recent = other.recent;
    this.stage = other.stage;
    this.stageStarted = other.stageStarted;
    const depth = other.depth;
    for (let i = 0; i < depth; i++) {
      this.chains[i] = other.chains[i]!;
      this.candidates[i] = other.candidates[i]!;
      this.nexts[i] = other.nexts[i]!;
    }
    this.depth = depth;
    return this;
  }
}
