/**
 * Every golden ruleset, with kube-proxy's built-in jumps added, passes a real
 * `iptables-restore --test` (ip6tables-restore for IPv6) inside a fresh network namespace, and
 * then really loads there: `--test` only parses (iptables-nft accepts a jump to a missing chain
 * or a missing nfacct counter under --test), the commit is where the kernel checks. The
 * namespace is ours and thrown away, so loading is safe; iptables-save then shows every rule.
 *
 * Needs root, `ip` and iptables-restore. `-m nfacct` loads only when the counter exists, so the
 * counters kube-proxy creates are added in the namespace with `nfacct add`; without the nfacct
 * command the rules are compiled with nfacct off instead. Skipped, with the reason, otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import { CT_STATE_INVALID_DROPPED_COUNTER, LOCALHOST_NODEPORT_ACCEPTED_COUNTER } from '../../src/iptables/sync-context.js';
import { addBuiltinJumps } from '../../src/iptables/with-jumps.js';
import { kubeProxyJumpsInChainOrder } from '../../src/trace/default-jumps.js';
import { goldenState, loadRulesClusters } from '../helpers/cluster-builders.js';

function run(command: string, args: readonly string[], input?: string): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`.trim() };
}

/** Number of -A lines per table in iptables-save text. */
function ruleCounts(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith('-A ')) counts[table] = (counts[table] ?? 0) + 1;
  }
  return counts;
}

function hasCommand(command: string, probe: readonly string[]): boolean {
  return spawnSync(command, probe, { encoding: 'utf8' }).error === undefined;
}

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns add, iptables-restore)';
  if (!hasCommand('ip', ['-V'])) return 'the ip command (iproute2) is not installed';
  if (!hasCommand('iptables-restore', ['--version'])) return 'iptables-restore is not installed';
  return undefined;
}

const reason = skipReason();
const clusters = reason === undefined ? await loadRulesClusters() : [];
const withNfacct = reason === undefined && hasCommand('nfacct', ['version']);
let namespaces = 0;

if (reason !== undefined) {
  test('golden rulesets load with iptables-restore --test', { skip: reason }, () => {});
}

for (const rc of clusters) {
  for (const family of rc.families) {
    test(`${rc.name} IPv${family} loads with ${family === 4 ? 'iptables' : 'ip6tables'}-restore --test`, (t) => {
      const ns = `kpsim-test-${process.pid}-${namespaces++}`;
      const created = run('ip', ['netns', 'add', ns]);
      if (!created.ok) {
        t.skip(`cannot create a network namespace: ${created.output}`);
        return;
      }
      t.after(() => {
        run('ip', ['netns', 'delete', ns]);
      });
      if (withNfacct) {
        for (const counter of [CT_STATE_INVALID_DROPPED_COUNTER, LOCALHOST_NODEPORT_ACCEPTED_COUNTER]) {
          const added = run('ip', ['netns', 'exec', ns, 'nfacct', 'add', counter]);
          assert.ok(added.ok, `nfacct add ${counter}: ${added.output}`);
        }
      }
      const ruleset = compileIptablesRules(goldenState(rc.cluster, family), { nfacct: withNfacct });
      const text = renderIptablesSave(addBuiltinJumps(ruleset, kubeProxyJumpsInChainOrder(family)));
      const restore = family === 4 ? 'iptables-restore' : 'ip6tables-restore';
      const note = withNfacct ? '' : ' (nfacct off: no nfacct command)';
      const checked = run('ip', ['netns', 'exec', ns, restore, '--test'], text);
      assert.ok(checked.ok, `${restore} --test refused ${rc.name} IPv${family}${note}:\n${checked.output}`);
      const loaded = run('ip', ['netns', 'exec', ns, restore], text);
      assert.ok(loaded.ok, `${restore} refused ${rc.name} IPv${family}${note}:\n${loaded.output}`);

      const saved = run('ip', ['netns', 'exec', ns, family === 4 ? 'iptables-save' : 'ip6tables-save']);
      assert.ok(saved.ok, saved.output);
      assert.deepEqual(ruleCounts(saved.output), ruleCounts(text), 'rules per table after loading');
    });
  }
}
