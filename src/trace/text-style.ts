/**
 * How the human trace output is styled: plain text, or ANSI colours for a terminal. The caller
 * (the CLI) decides which; the renderers stay pure and take the style as a value.
 */
import type { Verdict } from './types.js';

export interface TextStyle {
  /** Headings: a branch, the verdict's label. */
  readonly strong: (text: string) => string;
  /** Where a rule is: "nat KUBE-SVC-...:". */
  readonly location: (text: string) => string;
  /** Remarks: (assumed), notes, a table's header. */
  readonly faint: (text: string) => string;
  /** A verdict word, coloured by how it ends. */
  readonly verdict: (verdict: Verdict | string) => string;
  /** Something to notice: a masqueraded path. */
  readonly notice: (text: string) => string;
}

const same = (text: string): string => text;

export const PLAIN_STYLE: TextStyle = { strong: same, location: same, faint: same, verdict: same, notice: same };

/** SGR sequences; each styled piece resets what it set, so pieces can sit side by side. */
const sgr = (on: string, off: string) => (text: string): string => (text === '' ? '' : `\x1b[${on}m${text}\x1b[${off}m`);
const bold = sgr('1', '22');
const dim = sgr('2', '22');
const cyan = sgr('36', '39');
const green = sgr('32', '39');
const red = sgr('31', '39');
const yellow = sgr('33', '39');

export const ANSI_STYLE: TextStyle = {
  strong: bold,
  location: cyan,
  faint: dim,
  verdict: (verdict) => (verdict === 'DNAT' || verdict === 'ACCEPT' ? green : verdict === 'REJECT' || verdict === 'DROP' ? red : yellow)(verdict),
  notice: yellow,
};

/** The text without the ANSI sequences a style added. */
export function stripStyle(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}
