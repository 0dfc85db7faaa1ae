/**
 * Rewrite the golden files rules/<name>/iptables-save.v4.txt and .v6.txt from the compiler's
 * output. Tests never write goldens: run this by hand, then review the diff against kube-proxy
 * before committing it.
 *
 *   npx tsx test/helpers/regenerate-goldens.ts [--large-cluster-manifests]
 *   node dist/test/helpers/regenerate-goldens.js
 *
 * Under `node --test` (which runs every file below test/) it does nothing.
 *
 * --large-cluster-manifests also regenerates the manifests of rules/large-cluster (seeded, so
 * the same every time) before compiling.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenFile, largeClusterManifestFiles, loadRulesClusters, renderGolden, repoRoot } from './cluster-builders.js';

async function main(): Promise<void> {
  if (process.argv.includes('--large-cluster-manifests')) {
    const dir = join(repoRoot(), 'rules', 'large-cluster');
    for (const { file, text } of largeClusterManifestFiles()) writeFileSync(join(dir, file), text);
    console.log(`wrote manifests of ${dir}`);
  }
  for (const rc of await loadRulesClusters()) {
    for (const family of [4, 6] as const) {
      const file = goldenFile(rc.dir, family);
      if (rc.families.includes(family)) {
        writeFileSync(file, renderGolden(rc.cluster, family));
        console.log(`wrote ${file}`);
      } else if (existsSync(file)) {
        // The cluster no longer has this family: a stale golden would never be checked.
        rmSync(file);
        console.log(`removed ${file}`);
      }
    }
  }
}

if (process.env['NODE_TEST_CONTEXT'] !== undefined) {
  // `node --test dist/test/` runs every file under a test/ folder, this one too: it must not
  // rewrite the goldens the tests are about to check.
  const { test } = await import('node:test');
  test('regenerate-goldens is a script, not a test', { skip: 'run it by hand to rewrite the goldens' }, () => {});
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
