/**
 * Rewrite the nftables golden files rules/<name>/nftables.v4.txt and .v6.txt from the
 * compiler's output. Tests never write goldens: run this by hand (or `npm run golden`), then
 * review the diff against kube-proxy before committing it.
 *
 *   npx tsx test/helpers/regenerate-nftables-goldens.ts
 *
 * Under `node --test` (which runs every file below test/) it does nothing.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { loadRulesClusters } from './cluster-builders.js';
import { nftGoldenFile, renderNftGolden } from './nftables-goldens.js';

async function main(): Promise<void> {
  for (const rc of await loadRulesClusters()) {
    for (const family of [4, 6] as const) {
      const file = nftGoldenFile(rc.dir, family);
      if (rc.families.includes(family)) {
        writeFileSync(file, renderNftGolden(rc.cluster, family));
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
  const { test } = await import('node:test');
  test('regenerate-nftables-goldens is a script, not a test', { skip: 'run it by hand to rewrite the goldens' }, () => {});
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
