/**
 * The syncs `kpsim lab sync-bench` times: what a partial (iptables) or incremental (nftables)
 * sync writes for a change, and, where the machine allows, that the kernel taking it ends with
 * the same rules as the kernel taking the new full ruleset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kernelMode, labUnavailable } from '../../src/lab/kernel-modes.js';
import { withOneServiceChanged } from '../../src/lab/sync-bench.js';
import { iptablesPartialRestore, nftFullScript, nftIncrementalScript } from '../../src/lab/sync-text.js';
import { loadCluster } from '../../src/manifest/load.js';
import { braceDelta } from '../../src/nftables/parse.js';
import { modeDriver } from '../../src/node/modes.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';
import { createNamespace, mustInNamespace } from '../helpers/netns.js';

/** kube-proxy's iptables text of the example's IPv4 proxier, before and after one endpoint is added. */
async function iptablesTexts(): Promise<{ before: string; after: string; jumps: string }> {
  const cluster = await loadCluster(['rules/example']);
  const node = resolveNode(cluster);
  const driver = modeDriver('iptables');
  const text = (c: typeof cluster, withJumps: boolean): string => driver.render(driver.compile(node, buildProxierStates(c, node).filter((s) => s.family === 4), { withJumps }), 'kube-proxy');
  return { before: text(cluster, false), after: text(withOneServiceChanged(cluster), false), jumps: text(cluster, true) };
}

test('iptables partial sync: the whole filter table, nat\'s fixed chains, the changed service\'s chains, nothing else', async () => {
  const { before, after } = await iptablesTexts();
  const partial = iptablesPartialRestore(before, after);
  const declared = partial.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);
  const serviceChains = declared.filter((c) => /^KUBE-(SVC|SEP|EXT|FW|SVL)-/.test(c));
  // One endpoint added to one service: its KUBE-SVC chain changes and a new KUBE-SEP chain appears.
  assert.equal(serviceChains.filter((c) => c.startsWith('KUBE-SVC-')).length, 1, partial);
  assert.equal(serviceChains.filter((c) => c.startsWith('KUBE-SEP-')).length, 1, partial);
  for (const fixed of ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-FORWARD', 'KUBE-FIREWALL']) assert.ok(declared.includes(fixed), `${fixed} written`);
  assert.ok(partial.length < before.length / 2, `${partial.length} bytes of ${before.length}`);
  // Going back removes the new endpoint's chain.
  assert.match(iptablesPartialRestore(after, before), /^-X KUBE-SEP-[A-Z0-9]+$/m);
  assert.doesNotMatch(iptablesPartialRestore(before, before), /^:KUBE-(SVC|SEP)-/m, 'no change: no service chain');
});

const NFT_BEFORE = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-AAA-ns/web/tcp/http
add chain ip kube-proxy endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy service-AAA-ns/web/tcp/http numgen random mod 1 vmap { 0 : goto endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 }
add rule ip kube-proxy endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 meta l4proto tcp dnat to 10.244.0.5:8080
add element ip kube-proxy service-ips { 10.96.0.10 . tcp . 80 : goto service-AAA-ns/web/tcp/http }
`;
const NFT_AFTER = NFT_BEFORE
  .replace('add map ip', 'add chain ip kube-proxy endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080\nadd map ip')
  .replace('numgen random mod 1 vmap { 0 : goto endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 }', 'numgen random mod 2 vmap { 0 : goto endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 , 1 : goto endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080 }')
  .replace('add element', 'add rule ip kube-proxy endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080 meta l4proto tcp dnat to 10.244.1.6:8080\nadd element')
  + 'add element ip kube-proxy service-ips { 10.96.0.11 . tcp . 80 : goto service-AAA-ns/web/tcp/http }\n';

test('nftables incremental sync: new chains added, a changed chain flushed and written again, elements diffed', () => {
  const script = nftIncrementalScript(NFT_BEFORE, NFT_AFTER).trim().split('\n');
  assert.deepEqual(script, [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    'add chain ip kube-proxy endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080',
    'flush chain ip kube-proxy service-AAA-ns/web/tcp/http',
    'add rule ip kube-proxy service-AAA-ns/web/tcp/http numgen random mod 2 vmap { 0 : goto endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 , 1 : goto endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080 }',
    'add rule ip kube-proxy endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080 meta l4proto tcp dnat to 10.244.1.6:8080',
    'add element ip kube-proxy service-ips { 10.96.0.11 . tcp . 80 : goto service-AAA-ns/web/tcp/http }',
  ]);
  const back = nftIncrementalScript(NFT_AFTER, NFT_BEFORE);
  assert.match(back, /^delete element ip kube-proxy service-ips \{ 10\.96\.0\.11 \. tcp \. 80 \}$/m);
  assert.match(back, /^flush chain ip kube-proxy endpoint-CCC-ns\/web\/tcp\/http__10\.244\.1\.6\/8080\ndelete chain ip kube-proxy endpoint-CCC-ns\/web\/tcp\/http__10\.244\.1\.6\/8080$/m);
  assert.match(nftFullScript(NFT_BEFORE), /^add table ip kube-proxy .*\nflush table ip kube-proxy\n/);
});

// ---------------------------------------------------------------- in a real kernel

const skip = labUnavailable('nftables') ?? false;

/** The -A lines of iptables-save, chain by chain (counters and the header left out). */
function savedRules(ns: string): string {
  return mustInNamespace(ns, ['iptables-save']).split('\n').filter((l) => l.startsWith('-A ') || l.startsWith('*')).join('\n');
}

/**
 * A listing's chains, sets and maps in name order: nft lists them in the order they were made,
 * and a chain an incremental sync adds comes after those a full load made before it.
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
  return blocks.sort().join('\n');
}

/** The nftables driver's `nft -f` script of the example's IPv4 proxier, before and after one endpoint is added. */
async function nftablesTexts(): Promise<{ before: string; after: string }> {
  const cluster = await loadCluster(['rules/example']);
  const node = resolveNode(cluster);
  const driver = modeDriver('nftables');
  const text = (c: typeof cluster): string => driver.render(driver.compile(node, buildProxierStates(c, node).filter((s) => s.family === 4), {}), 'kube-proxy');
  return { before: text(cluster), after: text(withOneServiceChanged(cluster)) };
}

test('in the kernel: a partial iptables sync ends where loading the new rules does', { skip }, async (t) => {
  const { before, after, jumps } = await iptablesTexts();
  const iptables = kernelMode('iptables');
  const synced = createNamespace(t, 'sync-partial');
  await iptables.load(synced, 4, jumps);
  for (const step of [iptables.fullSync(4, before), iptables.partialSync(4, before, after)]) mustInNamespace(synced, step.argv, step.input);
  // The same built-in jumps, then `after` in full over them.
  const loaded = createNamespace(t, 'sync-full');
  await iptables.load(loaded, 4, jumps);
  const full = iptables.fullSync(4, after);
  mustInNamespace(loaded, full.argv, full.input);
  assert.equal(savedRules(synced), savedRules(loaded));
});

test('in the kernel: an incremental nftables sync of the driver\'s tables ends where loading the new table does', { skip }, async (t) => {
  const { before, after } = await nftablesTexts();
  const nftables = kernelMode('nftables');
  const listing = (ns: string): string => blocksInAnyOrder(mustInNamespace(ns, ['nft', 'list', 'ruleset']));
  const synced = createNamespace(t, 'sync-incremental');
  await nftables.load(synced, 4, before);
  const step = nftables.partialSync(4, before, after);
  assert.ok(step.input.length < after.length / 2, `an incremental sync writes the change, not the table: ${step.input.length} of ${after.length} bytes`);
  mustInNamespace(synced, step.argv, step.input);
  const loaded = createNamespace(t, 'sync-new');
  await nftables.load(loaded, 4, after);
  assert.equal(listing(synced), listing(loaded));
  // And back again, which deletes the new endpoint's chain and elements.
  const back = nftables.partialSync(4, after, before);
  mustInNamespace(synced, back.argv, back.input);
  const fresh = createNamespace(t, 'sync-before');
  await nftables.load(fresh, 4, before);
  assert.equal(listing(synced), listing(fresh));
});
