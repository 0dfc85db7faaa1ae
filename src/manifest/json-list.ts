/**
 * Where the items of a JSON List are in a file's bytes, without parsing it or making its text.
 *
 * `kubectl get -o json` and `kpsim generate` write a List as one top-level object with an `items`
 * array. JSON.parse of a whole 22 MB List builds its whole tree at once, and that tree stays alive
 * (copied by every scavenge) until the List is decoded; the 22 MB text itself is fresh memory too.
 * Knowing each item's extent lets the loader make, parse and decode one item's text at a time, so
 * each item's text and tree die young.
 *
 * The scanner only finds extents: it does not validate. The caller JSON.parses every item's slice
 * and the top-level object with the items taken out (the head: bytes before `arrayStart`, `[]`,
 * bytes from `arrayEnd`); when all of those parse, the whole text is valid JSON and means exactly
 * the head with those items (a valid array put for `[]` at a value position of a valid document),
 * so nothing the scanner misses can change what is decoded. Anything the scanner does not expect
 * (no top-level object, `items` twice or not an array, a top-level key written with escapes,
 * trailing text) is `undefined`: the caller then parses the whole text as before, and every error
 * message stays the one JSON.parse gives.
 *
 * Bytes, not characters: every byte the scanner looks for is ASCII, and in UTF-8 no byte of a
 * multi-byte character is below 0x80, so offsets found here cut the text only between characters.
 */

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LINE_FEED = 0x0a;

export interface JSONListExtents {
  /** Byte offset of the items array's `[` and one past its `]`. */
  arrayStart: number;
  arrayEnd: number;
  /** Each item's start (its first character) and end (one past its last), as flat pairs. */
  items: number[];
}

/** The extents of the top-level `items` array and of each of its items; undefined when in any doubt. */
export function scanJSONList(bytes: Uint8Array): JSONListExtents | undefined {
  const n = bytes.length;
  let i = skipSpace(bytes, 0);
  if (bytes[i] !== LBRACE) return undefined;
  let arrayStart = -1;
  let arrayEnd = -1;
  const items: number[] = [];
  i = skipSpace(bytes, i + 1);
  if (bytes[i] === RBRACE) return undefined; // {}: no items
  for (;;) {
    if (bytes[i] !== QUOTE) return undefined;
    const keyStart = i;
    i = plainStringEnd(bytes, i);
    if (i < 0) return undefined; // unterminated, or a key written with escapes
    const isItems = i - keyStart === 7 && isItemsKey(bytes, keyStart);
    i = skipSpace(bytes, i);
    if (bytes[i] !== COLON) return undefined;
    i = skipSpace(bytes, i + 1);
    if (isItems) {
      if (arrayStart >= 0 || bytes[i] !== LBRACKET) return undefined;
      arrayStart = i;
      i = scanItems(bytes, i, items);
      arrayEnd = i;
    } else {
      i = valueEnd(bytes, i);
    }
    if (i < 0) return undefined;
    i = skipSpace(bytes, i);
    const c = bytes[i];
    if (c === RBRACE) break;
    if (c !== COMMA) return undefined;
    i = skipSpace(bytes, i + 1);
  }
  if (arrayStart < 0 || skipSpace(bytes, i + 1) !== n) return undefined;
  return { arrayStart, arrayEnd, items };
}

/** The items of the array whose `[` is at `i`, pushed as pairs; one past its `]`, or -1. */
function scanItems(bytes: Uint8Array, i: number, items: number[]): number {
  i = skipSpace(bytes, i + 1);
  if (bytes[i] === RBRACKET) return i + 1; // []
  for (;;) {
    const start = i;
    i = lineItemEnd(bytes, i);
    if (i < 0) i = valueEnd(bytes, start);
    if (i < 0 || i === start) return -1;
    items.push(start, i);
    i = skipSpace(bytes, i);
    const c = bytes[i];
    if (c === RBRACKET) return i + 1;
    if (c !== COMMA) return -1;
    i = skipSpace(bytes, i + 1);
  }
}

/**
 * The end of an object item written on a line of its own (a line feed, `{...}` and `,` or a line
 * feed), as `kpsim generate` writes Lists, one item a line; -1 when the item is not written so. A
 * raw line feed is never inside a JSON string, and a Buffer's indexOf is a memchr: finding an item's
 * end this way costs next to nothing, where scanning its bytes is most of the scanner's time. The
 * guess is safe: if the line is not the whole item, its slice does not parse (an object's text can
 * end only where its braces balance), and the loader then parses the whole text.
 */
function lineItemEnd(bytes: Uint8Array, start: number): number {
  if (bytes[start] !== LBRACE || !startsLine(bytes, start)) return -1;
  const lineEnd = bytes.indexOf(LINE_FEED, start);
  if (lineEnd < 0) return -1;
  let j = skipSpaceBack(bytes, lineEnd - 1, start);
  if (bytes[j] === COMMA) j = skipSpaceBack(bytes, j - 1, start);
  return bytes[j] === RBRACE && j > start ? j + 1 : -1;
}

/** Only spaces, tabs and carriage returns between the line feed before `i` and `i`. */
function startsLine(bytes: Uint8Array, i: number): boolean {
  for (i--; i >= 0; i--) {
    const c = bytes[i];
    if (c === LINE_FEED) return true;
    if (c !== 0x20 && c !== 0x0d && c !== 0x09) return false;
  }
  return false;
}

/** The last offset at or before `i` (and after `floor`) that is not a space. */
function skipSpaceBack(bytes: Uint8Array, i: number, floor: number): number {
  while (i > floor) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i--;
  }
  return i;
}

/**
 * One past the value that starts at `i`, or -1: a string to its closing quote, an object or array
 * to the bracket that brings the depth back to zero (strings skipped, so brackets inside them do not
 * count), anything else (a number, true, false, null) to the next space or delimiter.
 */
function valueEnd(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  let c = bytes[i];
  if (c === QUOTE) return stringEnd(bytes, i);
  if (c !== LBRACE && c !== LBRACKET) {
    while (i < n && !isDelimiter(bytes[i])) i++;
    return i;
  }
  let depth = 0;
  for (; i < n; i++) {
    c = bytes[i];
    if (c === QUOTE) {
      // Skip the string: its brackets and escaped quotes are not structure.
      for (i++; i < n; i++) {
        c = bytes[i];
        if (c === QUOTE) break;
        if (c === BACKSLASH) i++;
      }
      if (i >= n) return -1;
    } else if (c === LBRACE || c === LBRACKET) {
      depth++;
    } else if (c === RBRACE || c === RBRACKET) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** One past the closing quote of the string whose opening quote is at `i`, or -1 when unterminated. */
function stringEnd(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  for (i++; i < n; i++) {
    const c = bytes[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** Like stringEnd, but -1 for a string with an escape (a key spelled "it\u0065ms" is still "items"). */
function plainStringEnd(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  for (i++; i < n; i++) {
    const c = bytes[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) return -1;
  }
  return -1;
}

/** JSON's four spaces: space, tab, line feed, carriage return. */
function skipSpace(bytes: Uint8Array, i: number): number {
  const n = bytes.length;
  while (i < n) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function isDelimiter(c: number): boolean {
  return c === COMMA || c === RBRACE || c === RBRACKET || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** The 7 bytes at `i` are "items" (quotes included). */
function isItemsKey(bytes: Uint8Array, i: number): boolean {
  return bytes[i + 1] === 0x69 && bytes[i + 2] === 0x74 && bytes[i + 3] === 0x65 && bytes[i + 4] === 0x6d && bytes[i + 5] === 0x73;
}
