/**
 * Whether human output gets colours: only on a terminal (never when piped or redirected), and
 * not when NO_COLOR is set to anything but the empty string (no-color.org) or the terminal is
 * dumb.
 */
import { ANSI_STYLE, PLAIN_STYLE, type TextStyle } from '../trace/text-style.js';

export function wantsColour(stream: { readonly isTTY?: boolean }, env: Readonly<Record<string, string | undefined>>): boolean {
  if (stream.isTTY !== true) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return env.TERM !== 'dumb';
}

/** The style for output written to `stream`. */
export function styleFor(stream: { readonly isTTY?: boolean }, env: Readonly<Record<string, string | undefined>>): TextStyle {
  return wantsColour(stream, env) ? ANSI_STYLE : PLAIN_STYLE;
}
