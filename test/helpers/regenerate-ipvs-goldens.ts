/**
 * Rewrite the IPVS golden files of every rules/<name>/ folder from the compiler's output:
 *
 *   ipvsadm.txt                 ipvsadm -Ln (both families: one kernel table)
 *   ipvsadm-stats.txt           ipvsadm -Ln --stats (a fresh table: zero counters)
 *   ipsets.txt                  ipset save of kube-proxy's sets (IPv4 sets, then KUBE-6- ones)
 *   ipvs-iptables-save.v4.txt   the iptables rules IPVS mode keeps (and .v6.txt)
 *
 * Tests never write goldens: run this by hand, then review the diff against kube-proxy and the
 * kernel before committing it.
 *
 *   npx tsx test/helpers/regenerate-ipvs-goldens.ts
 *   node dist/test/helpers/regenerate-ipvs-goldens.js
 *
 * test/ipvs/golden.test.ts imports `ipvsGoldenFiles` from here; run as a test file (node --test
 * runs every file under test/) it only registers a skipped test.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderIptablesSave } from '../../src/iptables/render.js';
import { compileIpvs } from '../../src/ipvs/compile.js';
import { renderIPSets } from '../../src/ipvs/ipsets.js';
import { formatIpvsadmList } from '../../src/ipvs/ipvsadm-format.js';
import type { Cluster } from '../../src/model/types.js';
import { buildProxierState, familiesInUse, resolveNode } from '../../src/tracker/proxier-state.js';
import { loadRulesClusters } from './cluster-builders.js';

/** Every IPVS golden file name kpsim may write into a rules folder. */
export const IPVS_GOLDEN_NAMES = ['ipvsadm.txt', 'ipvsadm-stats.txt', 'ipsets.txt', 'ipvs-iptables-save.v4.txt', 'ipvs-iptables-save.v6.txt'] as const;

/** File name → content, for one cluster seen from its node (hostnameOverride, else the first Node). */
export function ipvsGoldenFiles(cluster: Cluster): Map<string, string> {
  const node = resolveNode(cluster);
  const compiled = familiesInUse(cluster, node).map((family) => compileIpvs(buildProxierState(cluster, node, family)));
  const table = { services: compiled.flatMap((c) => c.table.services) };
  const files = new Map<string, string>([
    ['ipvsadm.txt', formatIpvsadmList(table)],
    ['ipvsadm-stats.txt', formatIpvsadmList(table, { stats: true })],
    ['ipsets.txt', renderIPSets(compiled.flatMap((c) => [...c.ipsets.values()]))],
  ]);
  for (const c of compiled) files.set(`ipvs-iptables-save.v${c.family}.txt`, renderIptablesSave(c.ruleset));
  return files;
}

async function main(): Promise<void> {
  for (const rc of await loadRulesClusters()) {
    const files = ipvsGoldenFiles(rc.cluster);
    for (const name of IPVS_GOLDEN_NAMES) {
      const path = join(rc.dir, name);
      const text = files.get(name);
      if (text !== undefined) {
        writeFileSync(path, text);
        console.log(`wrote ${path}`);
      } else if (existsSync(path)) {
        // The cluster no longer has this family: a stale golden would never be checked.
        rmSync(path);
        console.log(`removed ${path}`);
      }
    }
  }
}

const isEntryPoint = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint && process.env['NODE_TEST_CONTEXT'] !== undefined) {
  const { test } = await import('node:test');
  test('regenerate-ipvs-goldens is a script, not a test', { skip: 'run it by hand to rewrite the IPVS goldens' }, () => {});
} else if (isEntryPoint) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
