/**
 * The kernel decides on nftables syncs over time: every transaction of a random history (full
 * first, then partial ones, stale chains deleted in transactions of their own, a full sync now
 * and then) is loaded with `nft -f` into a network namespace this test creates, in order. After
 * each, what `nft list ruleset` prints must be what kpsim's kernel model lists, byte for byte,
 * and, read back, the table a full compile of the current objects writes (in any creation
 * order, stale chains aside). A transaction the model refuses must be refused by nft too.
 *
 * Needs root, `ip` and `nft`; skipped with the reason otherwise. The namespace is deleted
 * afterwards, whatever happens.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { renderNftCanonical } from '../../src/nftables/canonical.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { NftablesRulesWriter, STALE_CHAIN_DELAY_MS } from '../../src/nftables/incremental-sync.js';
import { NftKernel } from '../../src/nftables/kernel-nftables.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { renderTransaction, type NftTransaction } from '../../src/nftables/transaction.js';
import { seededRng } from '../../src/util/random.js';
import { TEST_NODE_NAME, fixtureConfig, fixtureNode } from '../helpers/cluster-builders.js';
import { createNamespace, hasCommand } from '../helpers/netns.js';
import { nftDifference } from '../helpers/nft-sync.js';
import { ProxierDriver } from '../helpers/proxier-driver.js';

function why(): string | false {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and nft)';
  if (!hasCommand('ip')) return 'needs iproute2 (ip)';
  if (!hasCommand('nft')) return 'needs nft (apt-get install nftables)';
  return false;
}

function nft(ns: string, args: readonly string[], input?: string): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { input, encoding: 'utf8', maxBuffer: 1 << 28, timeout: 60_000 });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function load(ns: string, tx: NftTransaction, what: string): void {
  const text = renderTransaction(tx);
  const r = nft(ns, ['-f', '-'], text);
  assert.ok(r.ok, `nft -f refused the ${what}:\n${r.stderr}\n--- transaction ---\n${text}`);
}

test('nftables transactions over a random history load into the kernel and leave the compiled table', { skip: why(), timeout: 600_000 }, (t) => {
  const ns = createNamespace(t, 'nftsync');
  for (const seed of [31, 32]) {
    nft(ns, ['delete', 'table', 'ip', 'kube-proxy']);
    const rng = seededRng(seed);
    const driver = new ProxierDriver([fixtureNode(), fixtureConfig()]);
    const writer = new NftablesRulesWriter();
    const model = new NftKernel();
    const log: string[] = [];
    let now = 1_000_000;
    let first = true;
    let syncs = 0;
    for (let step = 0; step < 120; step++) {
      log.push(driver.randomChange(rng, TEST_NODE_NAME));
      if (rng() > 0.35 && step !== 119) continue;
      now += Math.floor(rng() * 2 * STALE_CHAIN_DELAY_MS);
      const update = driver.update();
      const full = first || rng() < 0.1;
      first = false;
      const cleanup = writer.staleChainCleanup('ip', now);
      if (cleanup) {
        model.apply(cleanup);
        load(ns, cleanup, `stale-chain cleanup at step ${step} (seed ${seed})`);
      }
      const { tx } = writer.sync({ state: update.state, full, updatedServices: update.updatedServices, now, existingChains: model.chainNames('ip'), existingSets: model.setNames('ip') });
      model.apply(tx);
      load(ns, tx, `${full ? 'full' : 'partial'} transaction at step ${step} (seed ${seed}); events:\n${log.join('\n')}`);
      syncs++;
      const listed = nft(ns, ['list', 'ruleset']);
      assert.ok(listed.ok, listed.stderr);
      assert.equal(renderNftCanonical(model.ruleset()), listed.stdout, `seed ${seed} step ${step}: the model lists what the kernel lists`);
      const diff = nftDifference(parseNftRuleset(listed.stdout), compileNftablesRules(update.state));
      assert.equal(diff, undefined, `seed ${seed} step ${step}: the kernel's table against a full compile: ${diff}\ntransaction:\n${renderTransaction(tx)}`);
      log.push('-- sync');
    }
    assert.ok(syncs > 20, `seed ${seed}: ${syncs} syncs`);
  }
});

test('what the model refuses, nft refuses, and the kernel keeps what it had', { skip: why(), timeout: 120_000 }, (t) => {
  const ns = createNamespace(t, 'nftrefuse');
  const model = new NftKernel();
  const setup: NftTransaction = { family: 'ip', table: 'kube-proxy', ops: [
    { verb: 'add', kind: 'table' },
    { verb: 'add', kind: 'chain', name: 'a' },
    { verb: 'add', kind: 'chain', name: 'b' },
    { verb: 'add', kind: 'chain', name: 'nat-output', base: { type: 'nat', hook: 'output', priority: -100 } },
    { verb: 'add', kind: 'set', set: { kind: 'map', name: 'm', type: 'ipv4_addr : verdict' } },
    { verb: 'add', kind: 'rule', chain: 'a', rule: { text: 'ip daddr vmap @m' } },
    { verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'], value: ['goto b'] } },
  ] };
  model.apply(setup);
  load(ns, setup, 'setup');
  const before = nft(ns, ['list', 'ruleset']).stdout;
  const refused: { name: string; ops: NftTransaction['ops'] }[] = [
    { name: 'deleting a chain a map element goes to', ops: [{ verb: 'delete', kind: 'chain', name: 'b' }] },
    { name: 'deleting a set a rule uses', ops: [{ verb: 'delete', kind: 'set', name: 'm', setKind: 'map' }] },
    { name: 'deleting a missing element', ops: [{ verb: 'delete', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.9.9.9'] } }] },
    { name: 'adding a key again with another verdict', ops: [{ verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.1'], value: ['drop'] } }] },
    { name: 'an element going to a missing chain', ops: [{ verb: 'add', kind: 'element', set: 'm', setKind: 'map', element: { key: ['10.0.0.2'], value: ['goto c'] } }] },
    { name: 'a changed base chain priority', ops: [{ verb: 'add', kind: 'chain', name: 'nat-output', base: { type: 'nat', hook: 'output', priority: -90 } }] },
    { name: 'good ops before a bad one', ops: [{ verb: 'flush', kind: 'chain', name: 'a' }, { verb: 'add', kind: 'chain', name: 'c' }, { verb: 'delete', kind: 'chain', name: 'b' }] },
  ];
  for (const c of refused) {
    const tx: NftTransaction = { family: 'ip', table: 'kube-proxy', ops: c.ops };
    assert.throws(() => model.apply(tx), /Could not process rule/, `${c.name}: the model refuses`);
    const r = nft(ns, ['-f', '-'], renderTransaction(tx));
    assert.equal(r.ok, false, `${c.name}: nft refuses too`);
    assert.equal(nft(ns, ['list', 'ruleset']).stdout, before, `${c.name}: the kernel kept what it had`);
    assert.equal(renderNftCanonical(model.ruleset()), before, `${c.name}: so does the model`);
  }
});
