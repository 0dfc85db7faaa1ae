/**
 * Label selectors as the API reads them: a Service's spec.selector (a plain map, every pair must
 * match) and a workload's metav1.LabelSelector (matchLabels and matchExpressions), node
 * selectors and node affinity. Decoding with field paths, matching, and the text messages show.
 */
import { child, type FieldReader, type Json, type JsonObject, isObject } from './fields.js';
import type { LabelSelector, LabelSelectorRequirement, NodeSelectorRequirement, NodeSelectorTerm } from './types.js';

const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
const NODE_SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const;

/** A plain selector map (Service spec.selector, nodeSelector): every pair must be in `labels`. */
export function matchesMap(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  for (const key in selector) if (labels[key] !== selector[key]) return false;
  return true;
}

/** metav1.LabelSelector semantics (an empty selector matches everything; validation refuses it for workloads). */
export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  if (!matchesMap(selector.matchLabels, labels)) return false;
  return selector.matchExpressions.every((r) => matchesRequirement(r, labels));
}

function matchesRequirement(r: LabelSelectorRequirement | NodeSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = labels[r.key];
  switch (r.operator) {
    case 'In':
      return has && r.values.includes(value!);
    case 'NotIn':
      return !has || !r.values.includes(value!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      // Both sides must parse as integers, else the requirement does not match (labels.Requirement).
      if (!has || !/^-?\d+$/.test(value!) || r.values.length !== 1 || !/^-?\d+$/.test(r.values[0]!)) return false;
      const [a, b] = [Number(value), Number(r.values[0])];
      return r.operator === 'Gt' ? a > b : a < b;
    }
  }
}

/** Node affinity: any term matches when all of its requirements hold (matchFields only knows metadata.name). */
export function matchesNodeSelectorTerms(terms: readonly NodeSelectorTerm[], nodeName: string, labels: Readonly<Record<string, string>>): boolean {
  return terms.some(
    (term) =>
      (term.matchExpressions.length > 0 || term.matchFields.length > 0) &&
      term.matchExpressions.every((r) => matchesRequirement(r, labels)) &&
      term.matchFields.every((r) => r.key === 'metadata.name' && matchesRequirement(r, { 'metadata.name': nodeName })),
  );
}

/** "app=web,tier=backend", as kubectl prints a selector. */
export function formatSelectorMap(selector: Readonly<Record<string, string>>): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

/**
 * metav1.FormatLabelSelector: the selector's requirements in key order, as labels.Selector
 * prints them ("app=web,tier in (a,b),!legacy"); "<none>" for an empty one.
 */
export function formatLabelSelector(selector: LabelSelector): string {
  const parts: { key: string; text: string }[] = Object.keys(selector.matchLabels).map((key) => ({ key, text: `${key}=${selector.matchLabels[key]}` }));
  for (const r of selector.matchExpressions) {
    const values = [...r.values].sort().join(',');
    const text = r.operator === 'In' ? `${r.key} in (${values})` : r.operator === 'NotIn' ? `${r.key} notin (${values})` : r.operator === 'Exists' ? r.key : `!${r.key}`;
    parts.push({ key: r.key, text });
  }
  parts.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return parts.length > 0 ? parts.map((p) => p.text).join(',') : '<none>';
}

/**
 * A label map as the API server prints an "Invalid value" since v1.34: JSON, keys sorted, null
 * when there are none (older servers printed Go syntax, map[string]string{"app":"web"}).
 */
export function labelsValueText(map: Readonly<Record<string, string>>): string {
  const keys = Object.keys(map).sort();
  if (keys.length === 0) return 'null';
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(map[k])}`).join(',')}}`;
}

/** metav1.LabelSelector at `path`, with the API server's checks of its requirements; undefined when absent. */
export function readLabelSelector(parent: JsonObject, key: string, path: string, r: FieldReader): LabelSelector | undefined {
  const value = r.object_(parent, key, path);
  if (!value) return undefined;
  const here = child(path, key);
  const matchLabels = r.stringMap(value, 'matchLabels', here);
  const matchExpressions = r
    .list(value, 'matchExpressions', here)
    .map((e, i) => readRequirement(e, child(child(here, 'matchExpressions'), i), SELECTOR_OPERATORS, r))
    .filter((e): e is LabelSelectorRequirement => e !== undefined);
  return { matchLabels, matchExpressions };
}

/** nodeSelectorTerms of requiredDuringSchedulingIgnoredDuringExecution. */
export function readNodeSelectorTerms(parent: JsonObject, key: string, path: string, r: FieldReader): NodeSelectorTerm[] {
  return r.list(parent, key, path).flatMap((t, i) => {
    const here = child(child(path, key), i);
    if (!isObject(t)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', here, 'is not an object');
      return [];
    }
    const read = (field: 'matchExpressions' | 'matchFields'): NodeSelectorRequirement[] =>
      r
        .list(t, field, here)
        .map((e, j) => readRequirement(e, child(child(here, field), j), NODE_SELECTOR_OPERATORS, r))
        .filter((e): e is NodeSelectorRequirement => e !== undefined);
    return [{ matchExpressions: read('matchExpressions'), matchFields: read('matchFields') }];
  });
}

function readRequirement<Op extends string>(value: Json, path: string, operators: readonly Op[], r: FieldReader): { key: string; operator: Op; values: string[] } | undefined {
  if (!isObject(value)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
    return undefined;
  }
  const key = r.string(value, 'key', path, true);
  const operator = r.string(value, 'operator', path, true);
  const values = r.list(value, 'values', path).map((v, i) => (typeof v === 'string' ? v : (r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(child(path, 'values'), i), 'is not a string'), '')));
  if (key === undefined || operator === undefined) return undefined;
  if (!(operators as readonly string[]).includes(operator)) {
    r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'operator'), `Unsupported value: ${JSON.stringify(operator)}: supported values: ${operators.map((o) => JSON.stringify(o)).join(', ')}`);
    return undefined;
  }
  // The API server's own checks (ValidateLabelSelectorRequirement, ValidateNodeSelectorRequirement).
  const needsValues = operator === 'In' || operator === 'NotIn';
  if (needsValues && values.length === 0) r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'values'), 'Required value: must be specified when `operator` is \'In\' or \'NotIn\'');
  if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'values'), 'Forbidden: may not be specified when `operator` is \'Exists\' or \'DoesNotExist\'');
  if ((operator === 'Gt' || operator === 'Lt') && values.length !== 1) r.fail('KPSIM_ERR_MODEL_BAD_FIELD', child(path, 'values'), 'Required value: must be specified single value when `operator` is \'Lt\' or \'Gt\'');
  return { key, operator: operator as Op, values };
}
