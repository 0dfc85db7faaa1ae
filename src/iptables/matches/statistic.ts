/**
 * `-m statistic --mode random --probability P` and `--mode nth --every N --packet P`
 * (libxt_statistic): kube-proxy's choice among endpoints. The kernel keeps a probability as
 * round(2^31 * P) and matches when a 31-bit random draw is below it.
 */
import { formatKernelProbability, parseProbability, parseUnsigned, probabilityToKernel, U32_MAX } from '../rule-values.js';
import { not, type MatchBase, type MatchModule } from './module.js';

export interface StatisticMatch extends MatchBase {
  readonly kind: 'statistic';
  readonly mode: 'random' | 'nth';
  readonly negated: boolean;
  /** random: the value the kernel stores, round(2^31 * p); the chance is this / 2^31. */
  readonly probabilityStored: number;
  /** nth: match one packet in `every`, the `packet`-th (0-based). */
  readonly every: number;
  readonly packet: number;
}

export const statistic: MatchModule<StatisticMatch> = {
  kind: 'statistic',
  names: { statistic: { arity: { '--mode': 1, '--probability': 1, '--every': 1, '--packet': 1 } } },

  read(reader) {
    const { module, implicit, problems, notes, other } = reader;
    const mode = reader.value('--mode');
    const probability = reader.option('--probability');
    const every = reader.option('--every');
    const packet = reader.option('--packet');
    const negated = (probability?.negated ?? false) || (every?.negated ?? false);
    if (mode === 'random') {
      const p = probability ? parseProbability(probability.values[0]!) : undefined;
      if (!probability) problems.push('statistic --mode random needs --probability');
      else if (p === undefined) problems.push(`--probability ${probability.values[0]}: not a number from 0 to 1`);
      return { module, implicit, kind: 'statistic', mode: 'random', negated, probabilityStored: probabilityToKernel(p ?? 1), every: 0, packet: 0, notes, other };
    }
    if (mode !== 'nth') problems.push(`statistic --mode ${mode ?? '(missing)'}: must be random or nth`);
    const everyValue = every ? parseUnsigned(every.values[0]!, U32_MAX) : undefined;
    const packetValue = packet ? parseUnsigned(packet.values[0]!, U32_MAX) : undefined;
    if (mode === 'nth') {
      if (everyValue === undefined || everyValue === 0) problems.push('statistic --mode nth needs --every N (N > 0)');
      if (packetValue === undefined) problems.push('statistic --mode nth needs --packet P');
      else if (everyValue !== undefined && packetValue >= everyValue) problems.push('statistic --packet must be smaller than --every');
    }
    return { module, implicit, kind: 'statistic', mode: 'nth', negated, probabilityStored: 0, every: everyValue ?? 1, packet: packetValue ?? 0, notes, other };
  },

  canonical(match) {
    if (match.mode === 'random') return [`--mode random ${not(match.negated)}--probability ${formatKernelProbability(match.probabilityStored)}`];
    return [`--mode nth ${not(match.negated)}--every ${match.every} --packet ${match.packet}`];
  },

  compile(match, checks) {
    if (match.mode === 'nth') checks.note(`statistic --mode nth: taken as 1 packet in ${match.every}`);
    checks.random(match.mode, match.probabilityStored, match.every, match.negated);
  },
};
