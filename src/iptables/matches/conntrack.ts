/**
 * `-m conntrack --ctstate STATES` (libxt_conntrack) and its older form `-m state --state STATES`
 * (libxt_state): the connection's tracking state. Only the state is evaluated; the other
 * conntrack options are kept and assumed to match.
 */
import { not, renderRawOption, type MatchBase, type MatchModule, type Mutable } from './module.js';

export type CtState = 'INVALID' | 'NEW' | 'RELATED' | 'ESTABLISHED' | 'UNTRACKED' | 'SNAT' | 'DNAT';

/** libxt_conntrack prints states in this order, whatever order they were written in. */
export const CT_STATES: readonly CtState[] = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];

export interface ConntrackMatch extends MatchBase {
  readonly kind: 'conntrack';
  /** --ctstate (conntrack) or --state (state), states in the kernel's bit order. */
  readonly ctstate?: { readonly negated: boolean; readonly states: readonly CtState[] };
}

export const conntrack: MatchModule<ConntrackMatch> = {
  kind: 'conntrack',
  names: {
    conntrack: {
      arity: {
        '--ctstate': 1, '--ctproto': 1, '--ctorigsrc': 1, '--ctorigdst': 1, '--ctreplsrc': 1, '--ctrepldst': 1,
        '--ctorigsrcport': 1, '--ctorigdstport': 1, '--ctreplsrcport': 1, '--ctrepldstport': 1,
        '--ctstatus': 1, '--ctexpire': 1, '--ctdir': 1,
      },
    },
    state: { arity: { '--state': 1 } },
  },

  read(reader) {
    const stateOption = reader.option(reader.module === 'state' ? '--state' : '--ctstate');
    let ctstate: ConntrackMatch['ctstate'];
    if (stateOption) {
      const states = stateOption.values[0]!.split(',').map((s) => s.toUpperCase());
      const unknown = states.filter((s) => !(CT_STATES as readonly string[]).includes(s));
      if (unknown.length > 0) reader.problems.push(`${stateOption.name}: unknown state ${unknown.join(',')}`);
      ctstate = { negated: stateOption.negated, states: CT_STATES.filter((s) => states.includes(s)) };
    }
    reader.keepRest(['--ctstate', '--state']);
    const match: Mutable<ConntrackMatch> = { module: reader.module, implicit: reader.implicit, kind: 'conntrack' } as Mutable<ConntrackMatch>;
    if (ctstate) match.ctstate = ctstate;
    match.notes = reader.notes;
    match.other = reader.other;
    return match;
  },

  canonical(match) {
    const parts: string[] = [];
    if (match.ctstate) {
      const option = match.module === 'state' ? '--state' : '--ctstate';
      parts.push(`${not(match.ctstate.negated)}${option} ${match.ctstate.states.join(',')}`);
    }
    parts.push(...match.other.map(renderRawOption));
    return parts;
  },

  compile(match, checks) {
    if (match.ctstate) checks.ctStates(match.ctstate.states, match.ctstate.negated);
  },
};
