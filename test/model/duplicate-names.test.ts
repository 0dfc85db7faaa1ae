/**
 * Two objects of a kind are the same object when their "namespace/name" texts are equal (a
 * cluster-scoped one's text is its name). The check looks names up without making that text
 * for the usual object; these rows hold it to the text's answer, with the slashes and empty and
 * absent namespaces that make different pairs the same text.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KpsimError } from '../../src/errors.js';
import { assembleCluster } from '../../src/model/cluster.js';
import type { Pod } from '../../src/model/types.js';

/** Each object, and the row of the first with the same text when it has one. */
const ROWS: { namespace: string | undefined; name: string; twiceOf?: number }[] = [
  { namespace: 'a', name: 'x' },
  { namespace: 'a', name: 'x', twiceOf: 0 },
  { namespace: 'a', name: 'b/c' },
  { namespace: 'a/b', name: 'c', twiceOf: 2 },
  { namespace: 'b', name: 'x' },
  { namespace: undefined, name: 'a/x', twiceOf: 0 },
  { namespace: undefined, name: 'y' },
  { namespace: undefined, name: 'y', twiceOf: 6 },
  { namespace: '', name: 'y' },
  { namespace: '', name: 'y', twiceOf: 8 },
  { namespace: undefined, name: '/y', twiceOf: 8 },
  { namespace: 'a/b/c', name: 'd' },
  { namespace: 'a', name: 'b/c/d', twiceOf: 11 },
  { namespace: 'a/b', name: 'c/d', twiceOf: 11 },
  { namespace: undefined, name: 'a/b/c/d', twiceOf: 11 },
  { namespace: 'a', name: '' },
  { namespace: undefined, name: 'a/', twiceOf: 15 },
  { namespace: 'y', name: 'a' },
];

test('an object is defined twice exactly when its namespace/name text is another\'s', () => {
  // Only what the duplicate check reads of an object: its origin, name and namespace.
  const objects = ROWS.map((row, i) => ({ origin: { file: `f${i}.yaml`, object: `Pod ${i}` }, name: row.name, ...(row.namespace !== undefined ? { namespace: row.namespace } : {}) }) as unknown as Pod);
  let error: unknown;
  try {
    assembleCluster({ services: [], endpointSlices: [], nodes: [], configs: [], warnings: [], pods: objects });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof KpsimError, 'duplicates must fail the cluster');
  const want = ROWS.flatMap((row, i) => (row.twiceOf === undefined ? [] : [`f${i}.yaml: Pod ${i}: metadata.name: is defined twice (also in f${row.twiceOf}.yaml)`]));
  assert.equal(error.message, `${want.length} problems:\n${want.map((line) => `  ${line}`).join('\n')}`);
});
