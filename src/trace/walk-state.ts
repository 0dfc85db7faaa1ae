/**
 * What a walk knows about the packet: the parts that never change during a walk (`Flow`) and
 * the parts one path of the walk changes (`PathState`: destination after DNAT, mark, conntrack
 * state, recent lists, where the path is in the chains). A path is copied when it forks on a
 * statistic rule, so PathState is small and flat.
 */
import type { CompiledChain } from './compile-rule.js';
import { addressTypeBit } from './fast-checks.js';
import type { Words } from './addresses.js';
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

/** One place in a chain: the candidate rules (positions) and how far the walk is. */
export interface Frame {
  readonly chain: CompiledChain;
  readonly candidates: readonly number[];
  next: number;
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
  stack: Frame[];

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
    this.stack = [];
  }

  /** A copy that can go its own way; frames are copied, the rest is values or persistent. */
  fork(): PathState {
    const copy = new PathState(this);
    copy.dstTypeBit = this.dstTypeBit;
    copy.dnatDone = this.dnatDone;
    copy.probability = this.probability;
    copy.endpoint = this.endpoint;
    copy.masquerade = this.masquerade;
    copy.accepted = this.accepted;
    copy.verdict = this.verdict;
    copy.recent = this.recent;
    copy.stageStarted = this.stageStarted;
    const stack = this.stack;
    for (let i = 0; i < stack.length; i++) {
      const f = stack[i]!;
      copy.stack.push({ chain: f.chain, candidates: f.candidates, next: f.next });
    }
    return copy;
  }
}
