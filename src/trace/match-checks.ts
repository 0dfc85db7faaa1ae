/**
 * The tracer's side of a match module's checks (src/iptables/matches/module.ts MatchChecks):
 * for one rule, the checks the modules state are packed into the rule's FastRow where the row
 * has a free slot of that kind (the walk tests those words without a call), and become closures
 * otherwise; `recent` and statistic steps are kept for the walk, which runs them in order.
 */
import type { IpsetLookup, MatchChecks, PacketTest, ProtocolMatch, RecentCheck } from '../iptables/matches/module.js';
import type { PortRange } from '../iptables/rule-values.js';
import type { Predicate, RandomStep, RecentStep } from './compile-rule.js';
import { addressTypeBit, CHECK, CT_DNAT_BIT, ctStateBits, type FastRow } from './fast-checks.js';
import type { Ipset } from './ipsets.js';

export class RuleChecks implements MatchChecks {
  /** Checks the row could not hold, in the order stated. */
  readonly predicates: Predicate[] = [];
  readonly recents: RecentStep[] = [];
  readonly randoms: RandomStep[] = [];

  constructor(
    readonly protocol: ProtocolMatch | undefined,
    private readonly row: FastRow,
    private readonly ipsets: ReadonlyMap<string, Ipset>,
    /** The rule's notes, added to in order. */
    private readonly notes: string[],
  ) {}

  note(text: string): void {
    this.notes.push(text);
  }

  test(check: PacketTest): void {
    this.predicates.push(check);
  }

  dport(range: PortRange, negated: boolean): void {
    const row = this.row;
    if (!(row.flags & CHECK.DPORT)) {
      row.flags |= CHECK.DPORT | (negated ? CHECK.DPORT_NEG : 0);
      row.dportMin = range.min;
      row.dportMax = range.max;
      return;
    }
    this.predicates.push((_flow, state) => (state.dport >= range.min && state.dport <= range.max) !== negated);
  }

  mark(value: number, mask: number, negated: boolean): void {
    const row = this.row;
    if (!(row.flags & CHECK.MARK)) {
      row.flags |= CHECK.MARK | (negated ? CHECK.MARK_NEG : 0);
      row.markValue = value;
      row.markMask = mask;
      return;
    }
    this.predicates.push((_flow, state) => (((state.mark & mask) >>> 0) === value) !== negated);
  }

  ctStates(states: readonly string[], negated: boolean): void {
    const row = this.row;
    const wanted = ctStateBits(states);
    if (!(row.flags & CHECK.CT)) {
      row.flags |= CHECK.CT | (negated ? CHECK.CT_NEG : 0);
      row.ctBits = wanted;
      return;
    }
    this.predicates.push((flow, state) => (((flow.ctBits | (state.dnatDone ? CT_DNAT_BIT : 0)) & wanted) !== 0) !== negated);
  }

  addressTypes(side: 'src' | 'dst', types: readonly string[], negated: boolean): void {
    const row = this.row;
    const wanted = types.reduce((acc, t) => acc | addressTypeBit(t), 0);
    if (side === 'src') {
      if (!(row.flags & CHECK.SRC_TYPE)) {
        row.flags |= CHECK.SRC_TYPE | (negated ? CHECK.SRC_TYPE_NEG : 0);
        row.srcTypes = wanted;
        return;
      }
      this.predicates.push((flow) => ((flow.srcTypeBit & wanted) !== 0) !== negated);
      return;
    }
    if (!(row.flags & CHECK.DST_TYPE)) {
      row.flags |= CHECK.DST_TYPE | (negated ? CHECK.DST_TYPE_NEG : 0);
      row.dstTypes = wanted;
      return;
    }
    this.predicates.push((_flow, state) => ((state.dstTypeBit & wanted) !== 0) !== negated);
  }

  random(mode: 'random' | 'nth', stored: number, every: number, negated: boolean): void {
    const row = this.row;
    if (mode === 'random' && !(row.flags & CHECK.RANDOM)) {
      // kube-proxy's one --probability per rule: packed, so losing draws never touch the rule.
      row.flags |= CHECK.RANDOM | (negated ? CHECK.RANDOM_NEG : 0);
      row.random = stored;
      return;
    }
    this.randoms.push({ mode, stored, every, negated });
  }

  recent(check: RecentCheck): void {
    this.recents.push(check);
  }

  ipset(name: string): IpsetLookup | undefined {
    return this.ipsets.get(name);
  }
}
