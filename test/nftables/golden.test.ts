/**
 * Every rules/<name>/ cluster compiles to exactly its golden nftables script (one file per IP
 * family the node runs), and every golden table holds together: each jump, goto and map verdict
 * names a chain of the table, each @set a set or map of the table, each regular chain is
 * reached from somewhere, each set and map is used. The goldens change only through
 * test/helpers/regenerate-nftables-goldens.ts (npm run golden); rules/kube-proxy-fixture was
 * checked line by line against kube-proxy's TestOverallNFTablesRules (compile.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseRuleText } from '../../src/nftables/rule-parse.js';
import type { NftTable } from '../../src/nftables/types.js';
import { loadRulesClusters } from '../helpers/cluster-builders.js';
import { compileNftGolden, nftGoldenFile, renderNftGolden } from '../helpers/nftables-goldens.js';

const clusters = await loadRulesClusters();

function firstDifference(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `line ${i + 1}:\n- ${a.slice(i, i + 5).join('\n- ')}\n+ ${b.slice(i, i + 5).join('\n+ ')}`;
}

/** Helpers kube-proxy writes in every sync, used or not (no service without endpoints, no masquerading). */
const ALWAYS_WRITTEN = new Set(['reject-chain', 'mark-for-masquerade']);

/** Chains and sets a table refers to, and the problems with them. */
function structureProblems(table: NftTable): string[] {
  const problems: string[] = [];
  const referencedChains = new Set<string>();
  const referencedSets = new Set<string>();
  const noteVerdict = (where: string, words: string): void => {
    const m = /^(jump|goto) (\S+)$/.exec(words.trim());
    if (!m) return;
    referencedChains.add(m[2]!);
    if (!table.chains.has(m[2]!)) problems.push(`${where}: ${m[1]} to missing chain ${m[2]}`);
  };
  for (const chain of table.chains.values()) {
    for (const rule of chain.rules) {
      const parsed = parseRuleText(rule.text);
      if (parsed.unknown !== undefined) problems.push(`${chain.name}: rule "${rule.text}" does not read: ${parsed.unknown}`);
      for (const st of parsed.statements) {
        if (st.kind === 'verdict') noteVerdict(chain.name, `${st.verdict.kind} ${st.verdict.chain ?? ''}`);
        if (st.kind === 'vmap' && st.map.kind === 'anon') for (const e of st.map.entries) noteVerdict(chain.name, `${e.verdict.kind} ${e.verdict.chain ?? ''}`);
        const set = st.kind === 'vmap' && st.map.kind === 'ref' ? st.map.set : st.kind === 'match' && st.right.kind === 'ref' ? st.right.set : st.kind === 'dynset' ? st.set : undefined;
        if (set !== undefined) {
          referencedSets.add(set);
          if (!table.sets.has(set)) problems.push(`${chain.name}: @${set} is not in the table`);
        }
      }
    }
  }
  for (const set of table.sets.values()) {
    for (const element of set.elements) noteVerdict(`${set.name} element ${element.key.join(' . ')}`, (element.value ?? []).join(' '));
    if (!referencedSets.has(set.name)) problems.push(`${set.kind} ${set.name} is never used`);
  }
  for (const chain of table.chains.values()) {
    if (!chain.base && !referencedChains.has(chain.name) && !ALWAYS_WRITTEN.has(chain.name)) problems.push(`chain ${chain.name} is never reached`);
  }
  return problems;
}

test('there is an nftables golden per example cluster and family', () => {
  assert.ok(clusters.length >= 15, `only ${clusters.length} folders under rules/`);
  for (const rc of clusters) {
    for (const family of [4, 6] as const) {
      assert.equal(existsSync(nftGoldenFile(rc.dir, family)), rc.families.includes(family), `${rc.name}: nftables.v${family}.txt should exist exactly when the node runs IPv${family}`);
    }
  }
});

for (const rc of clusters) {
  for (const family of rc.families) {
    test(`${rc.name} IPv${family} compiles to its nftables golden and holds together`, () => {
      const file = nftGoldenFile(rc.dir, family);
      assert.ok(existsSync(file), `${file} is missing: run npm run golden and review it`);
      const want = readFileSync(file, 'utf8');
      const got = renderNftGolden(rc.cluster, family);
      if (got !== want) assert.fail(`${rc.name} IPv${family} differs from ${file} at ${firstDifference(want, got)}`);
      const table = compileNftGolden(rc.cluster, family).tables[0]!;
      assert.deepEqual(structureProblems(table), []);
    });
  }
}
