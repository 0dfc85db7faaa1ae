/**
 * Stages walked once per all-outcomes walk. A kube-proxy walk forks into one path per
 * endpoint in KUBE-SVC, and each path then walks filter FORWARD and nat POSTROUTING again:
 * the same few rules, with only the destination (the endpoint) different, which those rules
 * almost never look at. So the first path records what a stage did, and the next paths take
 * the record instead of walking the stage, when nothing it depended on differs.
 *
 * What a stage depends on: the flow (fixed for a walk); the path's mark, port, DNAT state,
 * ACCEPT and masquerade flags (compared); the destination, only through the chain index
 * lookups (made again and compared by identity of the list found) and through rules that check
 * it. A stage is recorded only when it is "clean": no rule with a destination, address-type,
 * closure, recent or random check was looked at, no DNAT ran, no fork was made, and the path
 * had no recent changes. The walk in such a stage is then the same rules with the same
 * outcomes, so its effect (mark, ACCEPT, masquerade, verdict) is the same too.
 *
 * Used only when hops are not recorded: hops are made by walking again (see tracer.ts).
 */
import type { CompiledChain } from './compile-rule.js';
import { CHECK } from './fast-checks.js';
import type { Verdict } from './types.js';
import type { PathState, Stage } from './walk-state.js';

/** Checks that read the destination, run a closure, or change the walk's course. */
export const UNCLEAN_CHECKS = CHECK.DST | CHECK.DST_TYPE | CHECK.SLOW | CHECK.RECENT | CHECK.RANDOM | CHECK.MORE_RANDOM;

interface StageRecord {
  readonly stage: Stage;
  readonly mark: number;
  readonly dport: number;
  readonly dnatDone: boolean;
  readonly accepted: boolean;
  readonly masquerade: boolean;
  /** Index lookups in walk order: the chain, and the candidate list it gave. */
  readonly chains: CompiledChain[];
  readonly found: (readonly number[])[];
  outMark: number;
  outAccepted: boolean;
  outMasquerade: boolean;
  outVerdict: Verdict | undefined;
}

export type Lookup = (chain: CompiledChain, state: PathState) => readonly number[];

export class StageMemo {
  private readonly records: StageRecord[] = [];
  /** The stage being recorded, while it is still clean. */
  private current: StageRecord | undefined;

  /** Apply a record of this stage to `state` if one fits; false when the stage must be walked. */
  replay(state: PathState, lookup: Lookup): boolean {
    if (state.recent !== undefined) return false;
    for (const r of this.records) {
      if (r.stage !== state.stage || r.mark !== state.mark || r.dport !== state.dport || r.dnatDone !== state.dnatDone
        || r.accepted !== state.accepted || r.masquerade !== state.masquerade || !sameLookups(r, state, lookup)) continue;
      state.mark = r.outMark;
      state.accepted = r.outAccepted;
      state.masquerade = r.outMasquerade;
      state.verdict = r.outVerdict;
      return true;
    }
    return false;
  }

  /** The path starts walking its current stage. */
  begin(state: PathState): void {
    this.current = state.recent !== undefined ? undefined : {
      stage: state.stage, mark: state.mark, dport: state.dport, dnatDone: state.dnatDone,
      accepted: state.accepted, masquerade: state.masquerade, chains: [], found: [],
      outMark: 0, outAccepted: false, outMasquerade: false, outVerdict: undefined,
    };
  }

  get recording(): boolean {
    return this.current !== undefined;
  }

  /** A chain index was asked for candidates. */
  looked(chain: CompiledChain, found: readonly number[]): void {
    const r = this.current;
    if (!r) return;
    r.chains.push(chain);
    r.found.push(found);
  }

  /** Something the record cannot repeat happened: this stage will not be recorded. */
  spoil(): void {
    this.current = undefined;
  }

  /** The stage is over (its chains left, or a verdict): keep the record if it is clean. */
  end(state: PathState): void {
    const r = this.current;
    if (!r) return;
    this.current = undefined;
    r.outMark = state.mark;
    r.outAccepted = state.accepted;
    r.outMasquerade = state.masquerade;
    r.outVerdict = state.verdict;
    this.records.push(r);
  }
}

function sameLookups(r: StageRecord, state: PathState, lookup: Lookup): boolean {
  for (let i = 0; i < r.chains.length; i++) if (lookup(r.chains[i]!, state) !== r.found[i]) return false;
  return true;
}
