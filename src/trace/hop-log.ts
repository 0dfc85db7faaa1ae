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
 * Parallel arrays, one entry per hop: what matched (a rule, or a chain whose policy decided),
 * in which chain, the chance of getting there, the call depth. Numbers stay unboxed this way.
 */
export class HopLog {
  private materialized: Hop[] | undefined;
  private readonly what: (CompiledRule | CompiledChain)[] = [];
  private readonly chains: string[] = [];
  private readonly probabilities: number[] = [];
  private readonly depths: number[] = [];
  private extra: Hop[] | undefined;

  /** Hop probabilities are left out when false (a sampled walk has one path). */
  constructor(private readonly withProbability: boolean) {}

  rule(rule: CompiledRule, chain: string, probability: number, depth: number): void {
    this.what.push(rule);
    this.chains.push(chain);
    this.probabilities.push(probability);
    this.depths.push(depth);
  }

  /** A built-in chain's DROP policy decided. */
  policy(chain: CompiledChain, probability: number): void {
    this.what.push(chain);
    this.chains.push(chain.name);
    this.probabilities.push(probability);
    this.depths.push(0);
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
      const chain = this.chains[i]!;
      const probability = this.probabilities[i]!;
      const depth = this.depths[i]!;
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
