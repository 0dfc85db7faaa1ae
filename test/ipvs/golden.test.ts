/**
 * The IPVS goldens of every rules/<name>/ folder (ipvsadm.txt, ipvsadm-stats.txt, ipsets.txt,
 * ipvs-iptables-save.v4/v6.txt) against the compiler, plus structural checks that hold whatever
 * the cluster: every jump lands on a declared chain, every declared KUBE- chain is used, every
 * `-m set` names a created set, and ipvsadm lists exactly the compiled virtual servers.
 * Regenerate with test/helpers/regenerate-ipvs-goldens.ts, never from a test.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileIpvs } from '../../src/ipvs/compile.js';
import { renderRule } from '../../src/iptables/render.js';
import { isBuiltinChain } from '../../src/iptables/types.js';
import { buildProxierState, familiesInUse, resolveNode } from '../../src/tracker/proxier-state.js';
import { loadRulesClusters } from '../helpers/cluster-builders.js';
import { IPVS_GOLDEN_NAMES, ipvsGoldenFiles } from '../helpers/regenerate-ipvs-goldens.js';

const REGENERATE = 'npx tsx test/helpers/regenerate-ipvs-goldens.ts';
const BUILTIN_TARGETS = new Set(['ACCEPT', 'DROP', 'REJECT', 'RETURN', 'MARK', 'MASQUERADE']);

/** The first line that differs, for a readable failure on large files. */
function firstDifference(got: string, want: string): string {
  const a = got.split('\n');
  const b = want.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}:\n  got:  ${JSON.stringify(a[i])}\n  want: ${JSON.stringify(b[i])}`;
  }
  return 'no difference';
}

const clusters = await loadRulesClusters();

test('there are rules folders to check', () => {
  assert.ok(clusters.length > 0);
  assert.ok(clusters.some((c) => c.name === 'example'));
});

for (const rc of clusters) {
  test(`golden ${rc.name}: every IPVS file matches the compiler`, () => {
    const files = ipvsGoldenFiles(rc.cluster);
    for (const name of IPVS_GOLDEN_NAMES) {
      const path = join(rc.dir, name);
      const want = files.get(name);
      if (want === undefined) {
        assert.ok(!existsSync(path), `${path} is stale (the cluster has no such family): run ${REGENERATE}`);
        continue;
      }
      assert.ok(existsSync(path), `${path} is missing: run ${REGENERATE}`);
      const golden = readFileSync(path, 'utf8');
      assert.ok(golden === want, `${path} differs from the compiler at ${firstDifference(want, golden)}\nreview, then run ${REGENERATE}`);
    }
  });

  test(`golden ${rc.name}: jumps land on declared chains, chains are used, sets exist, ipvsadm lists every virtual server`, () => {
    const node = resolveNode(rc.cluster);
    for (const family of familiesInUse(rc.cluster, node)) {
      const compiled = compileIpvs(buildProxierState(rc.cluster, node, family));
      const setNames = new Set([...compiled.ipsets.values()].map((s) => s.name));
      for (const table of compiled.ruleset.tables.values()) {
        const jumpedTo = new Set<string>();
        for (const chain of table.chains.values()) {
          for (const rule of chain.rules) {
            const target = rule.args[rule.args.indexOf('-j') + 1] ?? '';
            assert.ok(BUILTIN_TARGETS.has(target) || table.chains.has(target), `${rc.name} ${table.name}: ${renderRule(rule)} jumps nowhere`);
            jumpedTo.add(target);
            const m = rule.args.indexOf('--match-set');
            if (m >= 0) assert.ok(setNames.has(rule.args[m + 1]!), `${rc.name}: ${renderRule(rule)} matches a set kube-proxy does not create`);
          }
        }
        for (const name of table.chains.keys()) {
          if (isBuiltinChain(table.name, name)) continue;
          // kube-proxy declares these two whatever the services; they are jumped to only when the
          // set that feeds them has entries.
          const feeder = { 'KUBE-LOAD-BALANCER': 'KUBE-LOAD-BALANCER', 'KUBE-SOURCE-RANGES-FIREWALL': 'KUBE-LOAD-BALANCER-FW' }[name];
          const expectUsed = feeder === undefined || [...compiled.ipsets.values()].some((s) => s.baseName === feeder && s.entries.size > 0);
          assert.equal(jumpedTo.has(name), expectUsed, `${rc.name} ${table.name} ${name}: used ${jumpedTo.has(name)}, expected ${expectUsed}`);
        }
      }
      const listing = readFileSync(join(rc.dir, 'ipvsadm.txt'), 'utf8');
      for (const vs of compiled.table.services) {
        const addr = vs.family === 6 ? `[${vs.address}]:${vs.port}` : `${vs.address}:${vs.port}`;
        assert.ok(listing.includes(`\n${vs.protocol.padEnd(4)} ${addr} ${vs.scheduler}`), `${rc.name}: ipvsadm.txt lacks ${vs.protocol} ${addr}`);
      }
      // The KUBE-IPVS-IPS set is exactly the bound addresses.
      const ipvsIPs = [...compiled.ipsets.values()].find((s) => s.baseName === 'KUBE-IPVS-IPS')!;
      assert.deepEqual([...ipvsIPs.entries].sort(), [...compiled.boundAddresses].sort());
    }
  });
}
