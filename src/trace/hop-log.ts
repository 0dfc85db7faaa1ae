/**
 * The rules a walk matched, kept compactly while walking (a few values per hop, no object) and
 * turned into Hop objects only when someone reads them: a tracer answering thousands of
 * lookups a second for a load test never pays for hops nobody looks at. Results expose them
 * through a getter written in the result's object literal: an own, enumerable property, so
 * JSON.stringify, spreading and deepEqual see a plain array.
 */
import { ruleText, type CompiledChain, type CompiledRule } from './compile-rule.js';
import type { Hop } from './types.js';

/**
 * Two arrays, one entry per hop in `what` (a rule, or a chain whose policy decided) and two in
 * `numbers` (the chance of getting there, the call depth): numbers stay unboxed this way, and
 * the chain's name is the rule's own (CompiledRule.chain). Four parallel arrays, as before,
 * cost twice the reallocations as they grew to the ~100 hops of a 10-endpoint walk.
 */
export class HopLog {
  private materialized: Hop[] | undefined;
  private readonly what: (CompiledRule | CompiledChain)[] = [];
  private readonly numbers: number[] = [];
  private extra: Hop[] | undefined;

  /** Hop probabilities are left out when false (a sampled walk has one path). */
  constructor(private readonly withProbability: boolean) {}

  rule(rule: CompiledRule, probability: number, depth: number): void {
    this.what.push(rule);
    this.numbers.push(probability, depth);
  }

  /** A built-in chain's DROP policy decided. */
  policy(chain: CompiledChain, probability: number): void {
    this.what.push(chain);
    this.numbers.push(probability, 0);
  }

  /** A remark that is not a rule (appended after the walk's hops). */
  note(hop: Hop): void {
    (this.extra ??= []).push(hop);
  }

  /** The hops as objects, made once. */
  toHops(): Hop[] {
    return (this.materialized ??= this.materialize());
  }

  private materialize(): Hop[] {
    const hops: Hop[] = [];
    for (let i = 0; i < this.what.length; i++) {
      const what = this.what[i]!;
      const chain = 'rule' in what ? what.chain : what.name;
      const probability = this.numbers[2 * i]!;
      const depth = this.numbers[2 * i + 1]!;
      const hop: { -readonly [K in keyof Hop]: Hop[K] } = 'rule' in what
        ? { table: what.table, chain, rule: ruleText(what), target: what.targetName }
        : { table: what.table, chain, rule: `-P ${chain} DROP`, target: 'DROP' };
      if (this.withProbability) hop.probability = probability;
      if ('rule' in what) {
        if (what.assumed) hop.assumed = true;
        if (what.notes.length > 0) hop.notes = what.notes;
      } else {
        hop.notes = ['the chain\'s policy'];
      }
      hop.depth = depth;
      hops.push(hop);
    }
    if (this.extra) hops.push(...this.extra);
    return hops;
  }
}
