/** `-m comment --comment TEXT` (libxt_comment): matches every packet; kube-proxy names its rules with it. */
import { saveString, type MatchBase, type MatchModule } from './module.js';

export interface CommentMatch extends MatchBase {
  readonly kind: 'comment';
  readonly comment: string;
}

export const comment: MatchModule<CommentMatch> = {
  kind: 'comment',
  names: { comment: { arity: { '--comment': 1 } } },

  read(reader) {
    const text = reader.value('--comment') ?? '';
    if (text.length > 255) reader.problems.push('--comment: longer than 255 characters');
    return { module: reader.module, implicit: reader.implicit, kind: 'comment', comment: text, notes: reader.notes, other: reader.other };
  },

  canonical(match) {
    return [`--comment ${saveString(match.comment)}`];
  },

  compile() {
    // Always matches.
  },
};
