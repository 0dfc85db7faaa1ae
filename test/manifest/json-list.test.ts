/**
 * The List scanner against JSON.parse of the whole text. For every case: when the whole parses,
 * the scanner either declines (the loader then parses the whole) or its head and item slices parse
 * to exactly the whole; when the whole does not parse, the scanner declines or some slice fails to
 * parse, so the loader always ends up giving JSON.parse's own message.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scanJSONList } from '../../src/manifest/json-list.js';

interface ScanCase {
  name: string;
  text: string;
  /**
   * items: the scanner finds the items (and the whole parses); whole: the loader parses the whole
   * (the scanner declines, or one of its slices does not parse); invalid: the whole does not parse.
   */
  want: 'items' | 'whole' | 'invalid';
}

const cases: ScanCase[] = [
  { name: 'compact List', text: '{"apiVersion":"v1","kind":"List","items":[{"a":1},{"b":2}]}', want: 'items' },
  { name: 'kubectl order: items before kind and metadata', text: '{"apiVersion":"v1","items":[{"a":1}],"kind":"List","metadata":{"resourceVersion":""}}', want: 'items' },
  { name: 'whitespace everywhere', text: ' \r\n{\n\t"items" :\n[ {"a" : 1 } ,\n2 ,\t"x"\r\n] , "kind":"List" }\n\n', want: 'items' },
  { name: 'empty items', text: '{"kind":"List","items":[]}', want: 'items' },
  { name: 'empty items with spaces', text: '{"items":[ \n ],"kind":"List"}', want: 'items' },
  { name: 'one item', text: '{"items":[{}]}', want: 'items' },
  { name: 'brackets and braces inside strings', text: '{"items":[{"s":"a]}[{,"},{"t":"}}]]"}],"kind":"List"}', want: 'items' },
  { name: 'escaped quotes inside strings', text: String.raw`{"items":[{"s":"a\"]}\"[{"},{"t":"\""}],"kind":"List"}`, want: 'items' },
  { name: 'escaped backslash before a closing quote', text: String.raw`{"items":[{"s":"a\\"},{"t":"\\\\","u":"\\\"]"}],"kind":"List"}`, want: 'items' },
  { name: 'escaped quotes in top-level strings and string items', text: String.raw`{"note":"say \"items\": [","items":["a\"],b",1,"\\"],"kind":"List"}`, want: 'items' },
  { name: 'unicode, raw and escaped', text: '{"items":[{"name":"héllo ☃ 𝄞"},{"e":"\\u00e9\\ud834\\udd1e"}],"kind":"Lïst List"}', want: 'items' },
  { name: 'a List inside a List', text: '{"kind":"List","items":[{"kind":"List","items":[{"a":1}]},{"b":[[],[{}]]}]}', want: 'items' },
  { name: 'items of every JSON type', text: '{"items":[1,-2.5e3,true,false,null,"s",[1,[2]],{}],"kind":"List"}', want: 'items' },
  { name: 'items keys below the top level do not count', text: '{"metadata":{"items":[1]},"items":[{"items":[2]}],"x":[{"items":3}]}', want: 'items' },
  { name: 'the string "items" as a value', text: '{"kind":"items","items":["items"]}', want: 'items' },
  { name: 'kind given twice: the last wins, as in JSON.parse', text: '{"kind":"Pod","items":[1],"kind":"List"}', want: 'items' },
  { name: '__proto__ key at the top', text: '{"__proto__":{"kind":"x"},"items":[{"__proto__":1}],"kind":"List"}', want: 'items' },
  { name: 'one item a line, as kpsim generate writes', text: '{"apiVersion":"v1","items":[\n{"a":1},\n{"b":"x\\n}"},\n{"c":[{}]}\n],"kind":"List","metadata":{}}\n', want: 'items' },
  { name: 'one item a line, CRLF and trailing spaces', text: '{"items":[\r\n  {"a":1} , \r\n\t{"b":2}\r\n],"kind":"List"}\r\n', want: 'items' },
  { name: 'the whole List on one line, then a line feed', text: '{"items":[{"a":1},{"b":2}],"kind":"List"}\n', want: 'items' },
  { name: 'pretty-printed', text: `${JSON.stringify({ apiVersion: 'v1', items: [{ a: { b: [1, '}'] } }, { c: 2 }], kind: 'List' }, null, 2)}\n`, want: 'items' },
  { name: 'two items on one line: parsed whole', text: '{"items":[\n{"a":1}, {"b":2},\n{"c":3}\n],"kind":"List"}', want: 'whole' },
  { name: 'an item whose first line looks whole: parsed whole', text: '{"items":[\n{"a":{"b":1},\n"c":2}\n],"kind":"List"}', want: 'whole' },
  { name: 'items given twice', text: '{"items":[1],"kind":"List","items":[2]}', want: 'whole' },
  { name: 'items not an array', text: '{"items":{"a":1},"kind":"List"}', want: 'whole' },
  { name: 'items null', text: '{"items":null,"kind":"List"}', want: 'whole' },
  { name: 'no items', text: '{"kind":"List"}', want: 'whole' },
  { name: 'empty object', text: '{}', want: 'whole' },
  { name: 'top-level array', text: '[{"items":[1]}]', want: 'whole' },
  { name: 'top-level string', text: '"items"', want: 'whole' },
  { name: 'items key written with an escape', text: String.raw`{"it\u0065ms":[1],"kind":"List"}`, want: 'whole' },
  { name: 'an escaped key next to items', text: String.raw`{"items":[1],"it\u0065ms":[2]}`, want: 'whole' },
  { name: 'empty text', text: '', want: 'invalid' },
  { name: 'trailing garbage', text: '{"items":[],"kind":"List"} x', want: 'invalid' },
  { name: 'two objects', text: '{"items":[]}{"items":[]}', want: 'invalid' },
  { name: 'a byte order mark', text: '\ufeff{"items":[]}', want: 'invalid' },
  { name: 'unterminated string', text: '{"items":[{"a":"b}]}', want: 'invalid' },
  { name: 'unterminated List', text: '{"items":[{"a":1}', want: 'invalid' },
  { name: 'an empty item', text: '{"items":[1,,2]}', want: 'invalid' },
  { name: 'a trailing comma in items', text: '{"items":[1,]}', want: 'invalid' },
  { name: 'a trailing comma at the top', text: '{"items":[1],}', want: 'invalid' },
  { name: 'a missing comma between items', text: '{"items":[1 2]}', want: 'invalid' },
  { name: 'a missing comma after items', text: '{"items":[1] "kind":"List"}', want: 'invalid' },
  { name: 'a missing value inside an item', text: '{"items":[{"a":}],"kind":"List"}', want: 'invalid' },
  { name: 'mismatched brackets inside an item', text: '{"items":[{"a":[1}],"kind":"List"}', want: 'invalid' },
  { name: 'mismatched brackets closing the items', text: '{"items":[{"a":1}},"kind":"List"}', want: 'invalid' },
  { name: 'a syntax error in the last item only', text: '{"items":[{"a":1},{"b":2},{"c":tru}],"kind":"List"}', want: 'invalid' },
  { name: 'a syntax error after the items', text: '{"items":[{"a":1}],"kind":List}', want: 'invalid' },
  { name: 'an escape that swallows the closing quote', text: String.raw`{"items":[{"a":"\"}],"kind":"List"}`, want: 'invalid' },
  { name: 'single quotes', text: "{'items':[1]}", want: 'invalid' },
];

/** The whole text's value, or undefined when JSON.parse refuses it. */
function parseWhole(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** What the loader rebuilds from the scanner's extents: the head with the parsed items put back, or why not. */
function rebuild(bytes: Buffer): { value?: unknown; declined?: true; sliceFailed?: string } {
  const list = scanJSONList(bytes);
  if (!list) return { declined: true };
  const head = `${bytes.toString('utf8', 0, list.arrayStart)}[]${bytes.toString('utf8', list.arrayEnd)}`;
  const slices = [head];
  for (let k = 0; k < list.items.length; k += 2) slices.push(bytes.toString('utf8', list.items[k], list.items[k + 1]));
  const parsed: unknown[] = [];
  for (const slice of slices) {
    try {
      parsed.push(JSON.parse(slice));
    } catch {
      return { sliceFailed: slice };
    }
  }
  const value = parsed[0] as Record<string, unknown>;
  value['items'] = parsed.slice(1);
  return { value };
}

for (const c of cases) {
  test(`scanJSONList: ${c.name}`, () => {
    const bytes = Buffer.from(c.text, 'utf8');
    const whole = parseWhole(c.text);
    const got = rebuild(bytes);
    if (c.want === 'invalid') {
      assert.equal(whole, undefined, 'the case is meant to be invalid JSON');
      assert.ok(got.declined || got.sliceFailed !== undefined, `every piece parsed though the whole does not: ${JSON.stringify(got.value)}`);
      return;
    }
    assert.notEqual(whole, undefined, 'the case is meant to be valid JSON');
    if (c.want === 'whole') {
      assert.ok(got.declined || got.sliceFailed !== undefined, `the List should be parsed whole, got ${JSON.stringify(got)}`);
      return;
    }
    assert.equal(got.sliceFailed, undefined, `a slice of a valid List failed to parse: ${got.sliceFailed}`);
    assert.deepEqual(got.value, whole);
    // Key order too: the head keeps items where the whole had it.
    assert.equal(JSON.stringify(got.value), JSON.stringify(whole));
  });
}

test('scanJSONList: item extents are the items exactly (no surrounding spaces or commas)', () => {
  const text = '{"items":[ {"a":1} ,\n"s" , [2] ],"kind":"List"}';
  const list = scanJSONList(Buffer.from(text));
  assert.ok(list);
  const items: string[] = [];
  for (let k = 0; k < list.items.length; k += 2) items.push(text.slice(list.items[k], list.items[k + 1]));
  assert.deepEqual(items, ['{"a":1}', '"s"', '[2]']);
  assert.equal(text.slice(list.arrayStart, list.arrayEnd), '[ {"a":1} ,\n"s" , [2] ]');
});
