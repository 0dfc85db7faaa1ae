/**
 * Split one line of iptables-save / iptables-restore text into arguments, the way
 * iptables-restore does it (xshared.c add_param_to_argv):
 *
 * - spaces, tabs and newlines separate arguments; runs of them count as one;
 * - a double quote opens a quoted part, which may hold spaces; inside it a backslash makes the
 *   next character literal (iptables-save writes \" \\ \' there);
 * - the closing quote ends the argument, even when more text follows without a space
 *   (`"a b"c` is the two arguments `a b` and `c`), and `""` is an empty argument;
 * - outside quotes a backslash is an ordinary character.
 *
 * iptables-restore quietly keeps a quote left open at the end of a line; we report it instead,
 * because it nearly always means the text was cut or mangled.
 */

export type TokenizeResult =
  | { readonly ok: true; readonly tokens: string[] }
  | { readonly ok: false; readonly detail: string };

export function tokenizeLine(text: string): TokenizeResult {
  const tokens: string[] = [];
  let current = '';
  let quoteOpen = false;
  let escaped = false;

  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoteOpen) {
      if (escaped) {
        current += ch;
        escaped = false;
      } else if (ch === '\\') {
        escaped = true;
      } else if (ch === '"') {
        // The closing quote ends the argument, even an empty one: `""` is "".
        quoteOpen = false;
        tokens.push(current);
        current = '';
      } else {
        current += ch;
      }
      continue;
    }
    if (ch === '"') {
      quoteOpen = true;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (current !== '') {
        tokens.push(current);
        current = '';
      }
      continue;
    }
    current += ch;
  }
  if (quoteOpen) {
    return { ok: false, detail: 'a quoted argument is not closed before the end of the line' };
  }
  if (current !== '') tokens.push(current);
  return { ok: true, tokens };
}
