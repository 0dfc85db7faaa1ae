/** `-m mark --mark VALUE[/MASK]` (libxt_mark): the packet's mark, masked; kube-proxy's masquerade bit. */
import { hex, parseMarkMask, U32_MAX } from '../rule-values.js';
import { not, type MatchBase, type MatchModule } from './module.js';

export interface MarkMatch extends MatchBase {
  readonly kind: 'mark';
  readonly negated: boolean;
  readonly value: number;
  readonly mask: number;
}

export const mark: MatchModule<MarkMatch> = {
  kind: 'mark',
  names: { mark: { arity: { '--mark': 1 } } },

  read(reader) {
    const option = reader.option('--mark');
    const parsed = option ? parseMarkMask(option.values[0]!) : undefined;
    if (!option) reader.problems.push('-m mark needs --mark');
    else if (!parsed) reader.problems.push(`--mark ${option.values[0]}: not a mark (value[/mask], 32 bits)`);
    return {
      module: reader.module, implicit: reader.implicit, kind: 'mark', negated: option?.negated ?? false,
      value: parsed?.value ?? 0, mask: parsed?.mask ?? U32_MAX, notes: reader.notes, other: reader.other,
    };
  },

  canonical(match) {
    return [`${not(match.negated)}--mark ${hex(match.value)}${match.mask === U32_MAX ? '' : `/${hex(match.mask)}`}`];
  },

  compile(match, checks) {
    checks.mark(match.value, match.mask, match.negated);
  },
};
