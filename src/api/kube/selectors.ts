/**
 * Label and field selectors as the API server reads them from `labelSelector=` and
 * `fieldSelector=` (apimachinery pkg/labels/selector.go and pkg/fields/selector.go): kube-proxy's
 * informers send `!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name`,
 * kubectl sends `-l` and `--field-selector` as written. A selector that does not parse is a 400.
 */
import type { Json, JsonObject } from '../../model/fields.js';
import type { ResourceType } from './resources.js';
import { badRequest } from './status.js';

type LabelOperator = 'exists' | 'notexists' | '=' | '!=' | 'in' | 'notin' | 'gt' | 'lt';

interface LabelRequirement {
  key: string;
  op: LabelOperator;
  values: string[];
}

/** Tests an object's labels; `everything` when the selector was empty. */
export interface LabelSelector {
  readonly empty: boolean;
  matches(labels: Readonly<Record<string, string>>): boolean;
}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;
const VALUE = /^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$/;

/** Splits on commas outside parentheses. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function checkKey(key: string, whole: string): void {
  if (!KEY.test(key) || key.length > 317) throw badRequest(`unable to parse requirement: invalid label key "${key}" in selector "${whole}"`);
}

function checkValue(value: string, whole: string): void {
  if (!VALUE.test(value) || value.length > 63) throw badRequest(`unable to parse requirement: invalid label value "${value}" in selector "${whole}"`);
}

function parseRequirement(text: string, whole: string): LabelRequirement {
  if (text === '') throw badRequest(`unable to parse requirement: found '', expected: identifier in selector "${whole}"`);
  if (text.startsWith('!')) {
    const key = text.slice(1).trim();
    checkKey(key, whole);
    return { key, op: 'notexists', values: [] };
  }
  const set = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(text);
  if (set) {
    const key = set[1]!;
    checkKey(key, whole);
    const values = set[3]!.split(',').map((v) => v.trim());
    for (const v of values) checkValue(v, whole);
    return { key, op: set[2] === 'in' ? 'in' : 'notin', values };
  }
  const cmp = /^([^!=<>\s]+)\s*(==|!=|=|>|<)\s*(.*)$/.exec(text);
  if (cmp) {
    const key = cmp[1]!;
    checkKey(key, whole);
    const value = cmp[3]!.trim();
    const op = cmp[2]!;
    if (op === '>' || op === '<') {
      if (!/^-?\d+$/.test(value)) throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in selector "${whole}"`);
      return { key, op: op === '>' ? 'gt' : 'lt', values: [value] };
    }
    checkValue(value, whole);
    return { key, op: op === '!=' ? '!=' : '=', values: [value] };
  }
  checkKey(text, whole);
  return { key: text, op: 'exists', values: [] };
}

function requirementMatches(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  switch (r.op) {
    case 'exists':
      return has;
    case 'notexists':
      return !has;
    case '=':
      return has && value === r.values[0];
    case '!=':
      return !has || value !== r.values[0];
    case 'in':
      return has && r.values.includes(value!);
    case 'notin':
      return !has || !r.values.includes(value!);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(value!)) return false;
      const n = Number(value);
      const bound = Number(r.values[0]);
      return r.op === 'gt' ? n > bound : n < bound;
    }
  }
}

export function parseLabelSelector(text: string | undefined): LabelSelector {
  const whole = (text ?? '').trim();
  if (whole === '') return { empty: true, matches: () => true };
  const requirements = splitRequirements(whole).map((part) => parseRequirement(part, whole));
  return { empty: false, matches: (labels) => requirements.every((r) => requirementMatches(r, labels)) };
}

interface FieldRequirement {
  key: string;
  value: string;
  equal: boolean;
}

export interface FieldSelector {
  readonly empty: boolean;
  matches(obj: JsonObject): boolean;
  /** The value a `metadata.name=X` requirement pins, for a get instead of a scan. */
  readonly name?: string;
}

/** Splits on a separator that is not escaped with a backslash, then unescapes. */
function splitUnescaped(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length) {
      current += c + text[i + 1];
      i++;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(text: string): string {
  return text.replace(/\\(.)/g, '$1');
}

function metadataField(obj: JsonObject, key: 'name' | 'namespace'): string {
  const meta = obj['metadata'] as Json;
  const value = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? meta[key] : undefined;
  return typeof value === 'string' ? value : '';
}

export function parseFieldSelector(text: string | undefined, type: ResourceType): FieldSelector {
  const whole = (text ?? '').trim();
  if (whole === '') return { empty: true, matches: () => true };
  const requirements: FieldRequirement[] = splitUnescaped(whole, ',').map((part) => {
    const m = /^([^=!]+?)\s*(==|!=|=)\s*(.*)$/.exec(part.trim());
    if (!m) throw badRequest(`invalid selector: '${whole}'; can't understand '${part}'`);
    return { key: m[1]!, value: unescapeFieldValue(m[3]!), equal: m[2] !== '!=' };
  });
  const readers = requirements.map((r) => {
    if (r.key === 'metadata.name') return (o: JsonObject) => metadataField(o, 'name');
    if (r.key === 'metadata.namespace') return (o: JsonObject) => metadataField(o, 'namespace');
    const reader = type.fieldSelectors[r.key];
    if (!reader) throw badRequest(`field label not supported: ${r.key}`);
    return reader;
  });
  const pinned = requirements.find((r) => r.key === 'metadata.name' && r.equal);
  return {
    empty: false,
    matches: (obj) => requirements.every((r, i) => (readers[i]!(obj) === r.value) === r.equal),
    ...(pinned ? { name: pinned.value } : {}),
  };
}
