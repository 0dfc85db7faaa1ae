/** `-m set --match-set NAME FLAGS` (libxt_set): membership in an ipset; IPVS mode's rules are made of it. */
import { not, renderRawOption, type MatchBase, type MatchModule } from './module.js';

export interface SetMatch extends MatchBase {
  readonly kind: 'set';
  readonly negated: boolean;
  readonly setName: string;
  /** One direction per dimension of the set, as in "dst,dst". */
  readonly flags: readonly ('src' | 'dst')[];
}

export const set: MatchModule<SetMatch> = {
  kind: 'set',
  names: {
    set: {
      arity: {
        '--match-set': 2, '--return-nomatch': 0, '--update-counters': 0, '--update-subcounters': 0,
        '--packets-eq': 1, '--packets-lt': 1, '--packets-gt': 1, '--bytes-eq': 1, '--bytes-lt': 1, '--bytes-gt': 1,
      },
    },
  },

  read(reader) {
    const { problems } = reader;
    const option = reader.option('--match-set');
    if (!option) problems.push('-m set needs --match-set NAME FLAGS');
    const flagText = option?.values[1] ?? '';
    const flags = flagText.split(',');
    if (option && (flags.length > 6 || flags.some((f) => f !== 'src' && f !== 'dst'))) {
      problems.push(`--match-set ${option.values[0]} ${flagText}: flags must be src or dst, comma separated`);
    }
    reader.keepRest(['--match-set']);
    return {
      module: reader.module, implicit: reader.implicit, kind: 'set', negated: option?.negated ?? false, setName: option?.values[0] ?? '',
      flags: flags.filter((f): f is 'src' | 'dst' => f === 'src' || f === 'dst'), notes: reader.notes, other: reader.other,
    };
  },

  canonical(match) {
    return [`${not(match.negated)}--match-set ${match.setName} ${match.flags.join(',')}`, ...match.other.map(renderRawOption)];
  },

  compile(match, checks) {
    const { flags, negated } = match;
    const ipset = checks.ipset(match.setName);
    if (!ipset) {
      checks.note(`ipset ${match.setName} was not given: taken as empty`);
      checks.test(() => negated);
      return;
    }
    if (ipset.unreadable.length > 0) checks.note(`ipset ${match.setName}: members not understood: ${ipset.unreadable.join(' ')}`);
    checks.test((flow, path) => ipset.has(
      { proto: flow.proto, src: flow.srcWords, dst: path.dstWords, sport: flow.sport, dport: path.dport }, flags,
    ) !== negated);
  },
};
