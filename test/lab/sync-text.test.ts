/**
 * The syncs `kpsim lab sync-bench` times: what a partial (iptables) or incremental (nftables)
 * sync writes for a change, and, where the machine allows, that the kernel taking it ends with
 * the same rules as the kernel taking the new full ruleset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { kernelMode, labUnavailable } from '../../src/lab/kernel-modes.js';
import { withOneServiceChanged } from '../../src/lab/sync-bench.js';
import { iptablesPartialRestore, nftFullScript, nftIncrementalScript } from '../../src/lab/sync-text.js';
import { loadCluster } from '../../src/manifest/load.js';
import { modeDriver } from '../../src/node/modes.js';
import { buildProxierStates, resolveNode } from '../../src/tracker/proxier-state.js';

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

const skip = labUnavailable('iptables') ?? false;
const NS = `kpsim-test-${process.pid}-sync`;

function sh(argv: string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { input: input ?? '', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The -A lines of iptables-save, chain by chain (counters and the header left out). */
function savedRules(ns: string): string {
  return sh(['ip', 'netns', 'exec', ns, 'iptables-save']).split('\n').filter((l) => l.startsWith('-A ') || l.startsWith('*')).join('\n');
}

test('in the kernel: a partial iptables sync ends where loading the new rules does', { skip }, async (t) => {
  t.after(() => spawnSync('ip', ['netns', 'del', NS]));
  const { before, after, jumps } = await iptablesTexts();
  const iptables = kernelMode('iptables');
  sh(['ip', 'netns', 'add', NS]);
  await iptables.load(NS, 4, jumps);
  for (const step of [iptables.fullSync(4, before), iptables.partialSync(4, before, after)]) sh(['ip', 'netns', 'exec', NS, ...step.argv], step.input);
  const synced = savedRules(NS);
  // The same built-in jumps, then `after` in full over them.
  sh(['ip', 'netns', 'del', NS]);
  sh(['ip', 'netns', 'add', NS]);
  await iptables.load(NS, 4, jumps);
  const full = iptables.fullSync(4, after);
  sh(['ip', 'netns', 'exec', NS, ...full.argv], full.input);
  assert.equal(synced, savedRules(NS));
});

test('in the kernel: an incremental nftables sync ends where loading the new table does', { skip }, async (t) => {
  t.after(() => spawnSync('ip', ['netns', 'del', NS]));
  const nftables = kernelMode('nftables');
  const listing = (): string => sh(['ip', 'netns', 'exec', NS, 'nft', 'list', 'ruleset']);
  sh(['ip', 'netns', 'add', NS]);
  await nftables.load(NS, 4, NFT_BEFORE);
  const step = nftables.partialSync(4, NFT_BEFORE, NFT_AFTER);
  sh(['ip', 'netns', 'exec', NS, ...step.argv], step.input);
  const synced = listing();
  sh(['ip', 'netns', 'del', NS]);
  sh(['ip', 'netns', 'add', NS]);
  await nftables.load(NS, 4, NFT_AFTER);
  assert.equal(synced, listing());
  // And back again, which deletes the new chain and element.
  const back = nftables.partialSync(4, NFT_AFTER, NFT_BEFORE);
  sh(['ip', 'netns', 'exec', NS, ...back.argv], back.input);
  assert.doesNotMatch(listing(), /10\.244\.1\.6|10\.96\.0\.11/);
});
