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
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenFile, largeClusterManifestFiles, renderGolden, repoRoot } from './cluster-builders.js';
import { regenerateFamilyGoldens, runGoldenScript } from './golden-files.js';

async function main(): Promise<void> {
  if (process.argv.includes('--large-cluster-manifests')) {
    const dir = join(repoRoot(), 'rules', 'large-cluster');
    for (const { file, text } of largeClusterManifestFiles()) writeFileSync(join(dir, file), text);
    console.log(`wrote manifests of ${dir}`);
  }
  await regenerateFamilyGoldens(goldenFile, (cluster, family) => renderGolden(cluster, family));
}

await runGoldenScript('regenerate-goldens', main);
