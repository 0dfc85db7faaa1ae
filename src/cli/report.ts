/**
 * The exit-code contract of every command: 0 done, 1 bad input, 2 bad usage, 70 a bug; the
 * message on stderr, a stack trace only with --debug. Light on purpose: main.ts loads it before
 * any command.
 */
import { isKpsimError } from '../errors.js';

export const EXIT_INPUT = 1;
export const EXIT_USAGE = 2;
export const EXIT_BUG = 70;

export function reportError(e: unknown, debug: boolean): number {
  if (isKpsimError(e)) {
    process.stderr.write(`kpsim: ${e.message}\n`);
    if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
    return e.code.startsWith('KPSIM_ERR_USAGE_') ? EXIT_USAGE : EXIT_INPUT;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`kpsim: internal error: ${err.message}${debug ? '' : ' (run with --debug for the stack trace)'}\n`);
  if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
  return EXIT_BUG;
}
