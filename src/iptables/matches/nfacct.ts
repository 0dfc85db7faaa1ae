/** `-m nfacct --nfacct-name NAME` (libxt_nfacct): counts into a named accounting object, matches every packet. */
import { saveString, type MatchBase, type MatchModule } from './module.js';

export interface NfacctMatch extends MatchBase {
  readonly kind: 'nfacct';
  readonly name: string;
}

export const nfacct: MatchModule<NfacctMatch> = {
  kind: 'nfacct',
  names: { nfacct: { arity: { '--nfacct-name': 1 } } },

  read(reader) {
    return { module: reader.module, implicit: reader.implicit, kind: 'nfacct', name: reader.value('--nfacct-name') ?? '', notes: reader.notes, other: reader.other };
  },

  canonical(match) {
    // xtables_save_string writes its own leading space: hence two.
    return [`--nfacct-name  ${saveString(match.name)}`];
  },

  compile() {
    // Counting is not traced; the match always matches.
  },
};
