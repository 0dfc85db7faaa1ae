/**
 * Every rules/<name>/ cluster compiles to exactly its golden iptables-save text (one file per
 * IP family the node runs). The goldens were reviewed against kube-proxy (rules/kube-proxy-fixture
 * against TestOverallIPTablesRules in pkg/proxy/iptables/proxier_test.go); they change only
 * through test/helpers/regenerate-goldens.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { goldenFile, loadRulesClusters, renderGolden } from '../helpers/cluster-builders.js';

const CONTEXT_LINES = 3;
const MAX_DIFF_LINES = 40;

/** The first differing lines, with a little context: enough to see what changed. */
function firstDifferences(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  let first = 0;
  while (first < a.length && first < b.length && a[first] === b[first]) first++;
  let endA = a.length - 1;
  let endB = b.length - 1;
  while (endA >= first && endB >= first && a[endA] === b[endB]) {
    endA--;
    endB--;
  }
  const out = [`@@ golden line ${first + 1}, compiled line ${first + 1} @@`];
  for (let i = Math.max(0, first - CONTEXT_LINES); i < first; i++) out.push(`  ${a[i]}`);
  for (let i = first; i <= endA && out.length < MAX_DIFF_LINES; i++) out.push(`- ${a[i]}`);
  for (let i = first; i <= endB && out.length < MAX_DIFF_LINES * 2; i++) out.push(`+ ${b[i]}`);
  for (let i = endA + 1; i < Math.min(a.length, endA + 1 + CONTEXT_LINES); i++) out.push(`  ${a[i]}`);
  return out.join('\n');
}

const clusters = await loadRulesClusters();

test('there are example clusters, each with a golden file per family', () => {
  assert.ok(clusters.length >= 15, `only ${clusters.length} folders under rules/`);
  for (const rc of clusters) {
    assert.ok(rc.families.length > 0, `${rc.name}: no IP family`);
    for (const family of [4, 6] as const) {
      assert.equal(existsSync(goldenFile(rc.dir, family)), rc.families.includes(family), `${rc.name}: iptables-save.v${family}.txt should exist exactly when the node runs IPv${family}`);
    }
  }
});

for (const rc of clusters) {
  for (const family of rc.families) {
    test(`${rc.name} IPv${family} compiles to its golden iptables-save`, () => {
      const file = goldenFile(rc.dir, family);
      assert.ok(existsSync(file), `${file} is missing: run npx tsx test/helpers/regenerate-goldens.ts and review it`);
      const want = readFileSync(file, 'utf8');
      const got = renderGolden(rc.cluster, family);
      if (got !== want) assert.fail(`${rc.name} IPv${family} differs from ${file}:\n${firstDifferences(want, got)}`);
    });
  }
}
