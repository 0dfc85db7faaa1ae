/** Hostile inputs shared by the bad-input tests of the file reader, the CLI and the API. */

/** Billion laughs: nine levels of nine aliases each, 9^9 strings if it were expanded. */
export const aliasBomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  .concat('bcdefghi'.split('').map((level, i) => `${level}: &${level} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`))
  .join('\n');
