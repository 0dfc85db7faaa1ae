/**
 * Statements → rule text as `nft list ruleset` prints it (nft 1.0.6). What differs from what
 * kube-proxy writes: marks are printed as `meta mark` with 8-digit hex values and `|`, `^`, `&`
 * for or, xor, and; an anonymous set of one element loses its braces; address sets are merged
 * and sorted, as nft keeps them as intervals; verdict map entries are separated by ", ".
 */
import { intervalText, mergeIntervals, parseAddressInterval, type AddressInterval } from './addresses.js';
import type { Operand, ParsedRule, Selector, Statement, Verdict } from './rule-ast.js';

/** Meta keys nft prints without the word "meta". */
const UNQUALIFIED_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype', 'iifgroup', 'oifgroup']);

export function hex8(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

export function selectorText(sel: Selector): string {
  switch (sel.kind) {
    case 'payload':
      return `${sel.base} ${sel.field}`;
    case 'transport':
      return `${sel.proto} ${sel.field}`;
    case 'meta':
      return UNQUALIFIED_META.has(sel.key) ? sel.key : `meta ${sel.key}`;
    case 'ct':
      return `ct ${sel.key}`;
    case 'fib':
      return `fib ${sel.flags.join(' . ')} ${sel.result}`;
    case 'numgen':
      return `numgen ${sel.mode} mod ${sel.mod}${sel.offset !== 0 ? ` offset ${sel.offset}` : ''}`;
    case 'concat':
      return sel.parts.map(selectorText).join(' . ');
    case 'bitwise':
      return `${selectorText(sel.left)} ${sel.op} ${hex8(sel.value)}`;
  }
}

/** Whether the selector's values are addresses (printed normalised, sets merged as intervals). */
function isAddressSelector(sel: Selector): boolean {
  return sel.kind === 'payload' && (sel.field === 'saddr' || sel.field === 'daddr');
}

function isMarkSelector(sel: Selector): boolean {
  return (sel.kind === 'meta' && sel.key === 'mark') || (sel.kind === 'ct' && sel.key === 'mark') || (sel.kind === 'bitwise' && isMarkSelector(sel.left));
}

function valueText(sel: Selector, text: string): string {
  if (isAddressSelector(sel)) {
    const iv = parseAddressInterval(text);
    return iv ? intervalText(iv) : text;
  }
  if (isMarkSelector(sel) && /^(0x[0-9a-f]+|\d+)$/i.test(text)) return hex8(Number(text));
  return text;
}

function operandText(sel: Selector, right: Operand): string {
  switch (right.kind) {
    case 'ref':
      return `@${right.set}`;
    case 'value':
      return valueText(sel, right.text);
    case 'list': {
      if (isAddressSelector(sel)) {
        const intervals = right.items.map((item) => parseAddressInterval(item));
        if (intervals.every((iv): iv is AddressInterval => iv !== undefined)) {
          // One element: nft compares with it directly, no set.
          if (right.items.length === 1) return intervalText(intervals[0]!);
          return `{ ${mergeIntervals(intervals).map(intervalText).join(', ')} }`;
        }
      }
      if (right.items.length === 1) return valueText(sel, right.items[0]!);
      const items = right.items.map((item) => valueText(sel, item));
      if (items.every((item) => /^\d+$/.test(item))) items.sort((a, b) => Number(a) - Number(b));
      return `{ ${items.join(', ')} }`;
    }
  }
}

export function verdictText(v: Verdict): string {
  return v.chain === undefined ? v.kind : `${v.kind} ${v.chain}`;
}

export function statementText(st: Statement): string {
  switch (st.kind) {
    case 'match': {
      // nft leaves out "==" except after a bitwise expression, where it would be ambiguous.
      const op = st.op === '==' ? (st.left.kind === 'bitwise' ? ' ==' : '') : ` ${st.op}`;
      return `${selectorText(st.left)}${op} ${operandText(st.left, st.right)}`;
    }
    case 'vmap': {
      const map = st.map.kind === 'ref'
        ? `@${st.map.set}`
        : `{ ${[...st.map.entries].sort(byNumericKey).map((e) => `${e.key} : ${verdictText(e.verdict)}`).join(', ')} }`;
      return `${selectorText(st.key)} vmap ${map}`;
    }
    case 'mark-set': {
      const self = st.target === 'meta' ? 'meta mark' : 'ct mark';
      return st.op === 'set' ? `${self} set ${hex8(st.value)}` : `${self} set ${self} ${st.op} ${hex8(st.value)}`;
    }
    case 'dynset':
      return `${st.op} @${st.set} { ${selectorText(st.key)} }`;
    case 'verdict':
      return verdictText(st.verdict);
    case 'reject':
      return st.with === undefined ? 'reject' : `reject with ${st.with}`;
    case 'nat':
      return `${st.type}${st.l3 !== undefined ? ` ${st.l3}` : ''} to ${st.to}${st.flags.length > 0 ? ` ${st.flags.join(' ')}` : ''}`;
    case 'masquerade':
      return ['masquerade', ...st.args].join(' ');
    case 'noop':
      // A new counter lists with its (zero) counts.
      return st.text === 'counter' ? 'counter packets 0 bytes 0' : st.text;
  }
}

function byNumericKey(a: { key: string }, b: { key: string }): number {
  const x = Number(a.key);
  const y = Number(b.key);
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return 0;
}

/** A parsed rule as nft prints it; `original` when kpsim could not read it. */
export function canonicalRuleText(parsed: ParsedRule, original: string): string {
  if (parsed.unknown !== undefined) return original;
  return parsed.statements.map(statementText).join(' ');
}
