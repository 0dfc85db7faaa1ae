/**
 * What the golden-regeneration scripts share: rewriting one golden file per example cluster
 * and IP family (removing a family's file the cluster no longer runs), and staying idle when
 * `node --test` runs every file below test/.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import type { Cluster } from '../../src/model/types.js';
import type { Family } from '../../src/util/ip.js';
import { loadRulesClusters } from './cluster-builders.js';

export async function regenerateFamilyGoldens(fileOf: (dir: string, family: Family) => string, render: (cluster: Cluster, family: Family) => string): Promise<void> {
  for (const rc of await loadRulesClusters()) {
    for (const family of [4, 6] as const) {
      const file = fileOf(rc.dir, family);
      if (rc.families.includes(family)) {
        writeFileSync(file, render(rc.cluster, family));
        console.log(`wrote ${file}`);
      } else if (existsSync(file)) {
        // The cluster no longer has this family: a stale golden would never be checked.
        rmSync(file);
        console.log(`removed ${file}`);
      }
    }
  }
}

/** Run `main` as a script; under `node --test` only report it as a skipped test. */
export async function runGoldenScript(name: string, main: () => Promise<void>): Promise<void> {
  if (process.env['NODE_TEST_CONTEXT'] !== undefined) {
    // `node --test dist/test/` runs every file under a test/ folder, this one too: it must not
    // rewrite the goldens the tests are about to check.
    const { test } = await import('node:test');
    test(`${name} is a script, not a test`, { skip: 'run it by hand to rewrite the goldens' }, () => {});
    return;
  }
  await main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
