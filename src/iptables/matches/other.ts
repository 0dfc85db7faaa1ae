/**
 * A module kpsim does not model: its options are kept as written (each up to the next option),
 * printed back as they were, and assumed to match when tracing (with a note on the hop).
 */
import { renderRawOption, type MatchBase, type MatchModule } from './module.js';

export interface OtherMatch extends MatchBase {
  readonly kind: 'other';
}

export const other: MatchModule<OtherMatch> = {
  kind: 'other',
  // Loaded by any name no other module has (see registry.ts).
  names: {},

  read(reader) {
    reader.notes.push(`-m ${reader.module} is not modelled`);
    return { module: reader.module, implicit: reader.implicit, kind: 'other', notes: reader.notes, other: reader.options };
  },

  canonical(match) {
    return match.other.map(renderRawOption);
  },

  compile() {
    // The reader's note says it is assumed to match.
  },
};
