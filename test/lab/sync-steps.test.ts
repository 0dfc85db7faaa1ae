/**
 * The syncs `kpsim lab sync-bench` times, written by the agent's rules writers as kube-proxy's
 * proxier writes them: what a partial (iptables) or incremental (nftables) sync holds for a
 * one-service change, and, where the machine allows, that the kernel taking the full sync and
 * then the change ends with the same rules as the kernel loading the new ruleset whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type SyncSteps, kernelMode, labUnavailable } from '../../src/lab/kernel-modes.js';
import { oneServiceChange } from '../../src/lab/sync-bench.js';
import { loadCluster } from '../../src/manifest/load.js';
import { braceDelta } from '../../src/nftables/parse.js';
import { modeDriver } from '../../src/node/modes.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { createNamespace, mustInNamespace } from '../helpers/netns.js';

/** The example's IPv4 proxier state before and after one endpoint is added, and the Service changed. */
async function example(): Promise<{ before: ProxierState; after: ProxierState; service: string; text: (state: ProxierState, mode: 'iptables' | 'nftables') => string }> {
  const cluster = await loadCluster(['rules/example']);
  const node = resolveNode(cluster);
  const change = oneServiceChange(cluster);
  const v4 = (c: typeof cluster): ProxierState => buildProxierStates(c, node).find((s) => s.family === 4)!;
  // The whole ruleset as the lab loads it: iptables with the built-in chains' jumps.
  const text = (state: ProxierState, mode: 'iptables' | 'nftables'): string => {
    const driver = modeDriver(mode);
    return driver.render(driver.compile(node, [state], mode === 'iptables' ? { withJumps: true } : {}), 'kube-proxy');
  };
  return { before: v4(cluster), after: v4(change.cluster), service: change.service, text };
}

function declaredChains(payload: string): string[] {
  return payload.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);
}

test('iptables partial sync: the whole filter table, nat\'s fixed chains, the changed service\'s chains, nothing else', async () => {
  const { before, after, service } = await example();
  const { full, forth, noChange } = kernelMode('iptables').syncSteps(before, after, service);
  const serviceChains = declaredChains(forth.input).filter((c) => /^KUBE-(SVC|SEP|EXT|FW|SVL)-/.test(c));
  // One endpoint added to one service: its KUBE-SVC chain and its endpoints' KUBE-SEP chains, one of them new.
  assert.equal(serviceChains.filter((c) => c.startsWith('KUBE-SVC-')).length, 1, forth.input);
  const endpoints = after.servicePorts.filter((sp) => `${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}` === service).reduce((n, sp) => n + sp.categorized.allReachableEndpoints.length, 0);
  assert.equal(serviceChains.filter((c) => c.startsWith('KUBE-SEP-')).length, endpoints, forth.input);
  assert.equal(serviceChains.filter((c) => !declaredChains(full.input).includes(c)).length, 1, 'one chain is new');
  for (const fixed of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-FORWARD', 'KUBE-FIREWALL']) assert.ok(declaredChains(forth.input).includes(fixed), `${fixed} written`);
  assert.ok(forth.input.length < full.input.length / 2, `${forth.input.length} bytes of ${full.input.length}`);
  assert.doesNotMatch(noChange.input, /^:KUBE-(SVC|SEP)-/m, 'no change: no service chain');
  assert.deepEqual(full.argv, ['iptables-restore', '--noflush', '--counters']);
});

test('nftables incremental sync: the changed service\'s chains flushed and written again, the new endpoint\'s chain added, its elements only', async () => {
  const { before, after, service } = await example();
  const { full, forth, back, noChange } = kernelMode('nftables').syncSteps(before, after, service);
  const lines = forth.input.trim().split('\n');
  const added = lines.filter((l) => l.startsWith('add chain ')).map((l) => l.split(' ')[4]!);
  assert.ok(added.every((c) => c.includes(`-${service}/`)), `only ${service}'s chains: ${added.join(', ')}`);
  assert.ok(added.some((c) => c.startsWith('endpoint-') && !full.input.includes(`add chain ip kube-proxy ${c}`)), `a new endpoint chain: ${added.join(', ')}`);
  assert.ok(forth.input.length < full.input.length / 4, `${forth.input.length} bytes of ${full.input.length}`);
  // Going back flushes the new endpoint's chain (deleted by the stale-chain cleanup a second later).
  const fresh = added.find((c) => !full.input.includes(`add chain ip kube-proxy ${c}`))!;
  assert.ok(back.input.includes(`flush chain ip kube-proxy ${fresh}`), back.input);
  assert.doesNotMatch(noChange.input, /^add rule /m, 'no change: no rule written');
});

// ---------------------------------------------------------------- in a real kernel

/** The -A lines of iptables-save (counters and the header left out), except those of chains in `leave`. */
function savedRules(ns: string, leave: ReadonlySet<string> = new Set()): string {
  return mustInNamespace(ns, ['iptables-save']).split('\n')
    .filter((l) => (l.startsWith('-A ') && !leave.has(l.split(' ')[1]!)) || l.startsWith('*')).join('\n');
}

/**
 * A listing's chains, sets and maps in name order (nft lists them in the order they were made),
 * without empty chains (one a sync flushed as stale, for the cleanup to delete later).
 */
function blocksInAnyOrder(listing: string): string {
  const blocks: string[] = [];
  let depth = 0;
  for (const line of listing.split('\n')) {
    if (depth === 1 && line.trim() !== '') {
      if (line.trim().endsWith('{')) blocks.push(line);
      else if (blocks.length > 0 && !line.trim().startsWith('}')) blocks[blocks.length - 1] += `\n${line}`;
      else blocks.push(line);
    } else if (depth > 1) blocks[blocks.length - 1] += `\n${line}`;
    depth += braceDelta(line);
  }
  return blocks.filter((b) => !/^\s*chain \S+ \{\s*\}\s*$/.test(b)).sort().join('\n');
}

function apply(ns: string, steps: readonly SyncSteps[keyof SyncSteps][]): void {
  for (const step of steps) mustInNamespace(ns, step.argv, step.input);
}

/**
 * Each mode's rules as listed back, and the chains a sync back leaves behind for a later cleanup
 * (the one the change added): iptables-save's rules without those, nft's listing without empty
 * (flushed) chains.
 */
const kernels = [
  {
    mode: 'iptables' as const,
    listing: (ns: string, leave: ReadonlySet<string>): string => savedRules(ns, leave),
    leftover: (steps: SyncSteps): Set<string> => new Set(declaredChains(steps.forth.input).filter((c) => !declaredChains(steps.full.input).includes(c))),
  },
  {
    mode: 'nftables' as const,
    listing: (ns: string): string => blocksInAnyOrder(mustInNamespace(ns, ['nft', 'list', 'ruleset'])),
    leftover: (): Set<string> => new Set(),
  },
];

for (const k of kernels) {
  test(`in the kernel: ${k.mode}'s full sync and then the one-service sync end where loading the new rules does; back again where the old do`, { skip: labUnavailable(k.mode) ?? false }, async (t) => {
    const { before, after, service, text } = await example();
    const kernel = kernelMode(k.mode);
    const steps = kernel.syncSteps(before, after, service);
    const synced = createNamespace(t, 'sync-synced');
    await kernel.load(synced, 4, text(before, k.mode));
    apply(synced, [steps.full, steps.forth]);
    const loaded = createNamespace(t, 'sync-after');
    await kernel.load(loaded, 4, text(after, k.mode));
    assert.equal(k.listing(synced, new Set()), k.listing(loaded, new Set()));
    apply(synced, [steps.back, steps.noChange]);
    const fresh = createNamespace(t, 'sync-before');
    await kernel.load(fresh, 4, text(before, k.mode));
    const leftover = k.leftover(steps);
    assert.ok(k.mode !== 'iptables' || leftover.size === 1, `the new endpoint's chain: ${[...leftover].join(', ')}`);
    assert.equal(k.listing(synced, leftover), k.listing(fresh, leftover));
  });
}
