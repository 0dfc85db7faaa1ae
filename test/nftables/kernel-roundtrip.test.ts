/**
 * The kernel decides: every golden nftables script is loaded with `nft -f` into a network
 * namespace this test creates, and what `nft list ruleset` prints must be, byte for byte,
 * renderNftCanonical of the compiled ruleset. The listing, read back with parseNftRuleset,
 * must render to itself and trace every service's packets exactly as the compiled ruleset
 * does. A table of rule forms kube-proxy does not write (intervals, marks, wrapped element
 * lists, durations, priorities) pins down the rest of the printer the same way.
 *
 * Needs root, `ip` and `nft`; skipped with the reason otherwise. The namespace is deleted
 * afterwards, whatever happens.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { renderNftCanonical } from '../../src/nftables/canonical.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import { addElement, addRule, createTable, ensureChain, ensureSet } from '../../src/nftables/table-builder.js';
import type { NftRuleset } from '../../src/nftables/types.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import type { Packet, TraceResult } from '../../src/trace/types.js';
import { loadRulesClusters, goldenState } from '../helpers/cluster-builders.js';
import { compileNftGolden, nftGoldenFile } from '../helpers/nftables-goldens.js';

function why(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and nft)';
  const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!has('ip')) return 'needs iproute2 (ip)';
  if (!has('nft')) return 'needs nft (apt-get install nftables)';
  return false;
}

const skip = why();

/** A fresh namespace for the whole test, deleted when it ends. */
function namespace(t: TestContext): (args: string[], input?: string) => string {
  const name = `kpsim-test-${process.pid}-nftrt`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => {
    spawnSync('ip', ['netns', 'del', name]);
  });
  return (args, input) => {
    const r = spawnSync('ip', ['netns', 'exec', name, 'nft', ...args], { input, encoding: 'utf8', maxBuffer: 1 << 30 });
    assert.equal(r.status, 0, `nft ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
}

function firstDifference(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `line ${i + 1}:\n  kernel: ${JSON.stringify(a.slice(i, i + 3))}\n  kpsim:  ${JSON.stringify(b.slice(i, i + 3))}`;
}

function outcome(r: TraceResult): unknown {
  return { verdict: r.verdict, endpoints: r.endpoints, probabilities: r.probabilities, masquerade: r.masquerade, outcomes: r.outcomes };
}

/** A packet to every element of service-ips and service-nodeports, from a pod, the node and outside. */
function packetsFor(rs: NftRuleset, sources: readonly string[], nodeIP: string | undefined): Packet[] {
  const table = rs.tables[0]!;
  const packets: Packet[] = [];
  const proto = (p: string): Packet['proto'] => p as Packet['proto'];
  for (const e of table.sets.get('service-ips')?.elements ?? []) {
    for (const src of sources) packets.push({ proto: proto(e.key[1]!), src, dst: e.key[0]!, dport: Number(e.key[2]) });
  }
  if (nodeIP !== undefined) {
    for (const e of table.sets.get('service-nodeports')?.elements ?? []) {
      for (const src of sources) packets.push({ proto: proto(e.key[0]!), src, dst: nodeIP, dport: Number(e.key[1]) });
    }
  }
  return packets;
}

test('every nftables golden loads, lists as renderNftCanonical, and traces the same read back', { skip, timeout: 300_000 }, async (t) => {
  const nft = namespace(t);
  for (const rc of await loadRulesClusters()) {
    for (const family of rc.families) {
      await t.test(`${rc.name} IPv${family}`, () => {
        const compiled = compileNftGolden(rc.cluster, family);
        nft(['flush', 'ruleset']);
        nft(['-f', nftGoldenFile(rc.dir, family)]);
        const listed = nft(['list', 'ruleset']);
        const canonical = renderNftCanonical(compiled);
        if (listed !== canonical) assert.fail(`nft list ruleset differs from renderNftCanonical at ${firstDifference(listed, canonical)}`);

        const parsed = parseNftRuleset(listed, { file: 'nft list ruleset' });
        assert.equal(renderNftCanonical(parsed), listed, 'the listing read back renders to itself');
        assert.deepEqual(parsed.skipped, [], 'nothing of kube-proxy\'s table is left unread');

        const state = goldenState(rc.cluster, family);
        const context = { localAddresses: state.localAddresses };
        const fromCompiled = createNftTracer(compiled, context);
        const fromListing = createNftTracer(parsed, context);
        const pod = family === 4 ? '10.244.7.7' : 'fd00:10:244::7';
        const outside = family === 4 ? '203.0.113.9' : '2001:db8:ffff::9';
        const sources = [pod, outside, ...(state.nodeIPs[0] !== undefined ? [state.nodeIPs[0]] : [])];
        for (const packet of packetsFor(compiled, sources, state.nodeIPs[0])) {
          assert.deepEqual(outcome(fromListing.trace(packet)), outcome(fromCompiled.trace(packet)), `${JSON.stringify(packet)}`);
        }
      });
    }
  }
});

/** Rule and set forms beyond kube-proxy's table, each checked against the kernel's listing. */
function formsRuleset(): NftRuleset {
  const ip = createTable('ip', 'forms', 'forms kpsim prints');
  const c = ensureChain(ip, 'c');
  ensureChain(ip, 'target');
  ensureChain(ip, 'base-input', { base: { type: 'filter', hook: 'input', priority: -5, policy: 'drop' } });
  ensureChain(ip, 'base-prerouting', { base: { type: 'filter', hook: 'prerouting', priority: -300 } });
  ensureChain(ip, 'base-postrouting', { base: { type: 'nat', hook: 'postrouting', priority: 105 } });
  ensureChain(ip, 'base-output', { base: { type: 'nat', hook: 'output', priority: -100 } });
  ensureChain(ip, 'base-forward', { base: { type: 'filter', hook: 'forward', priority: 50 } });
  for (const rule of [
    'ip saddr != { 10.0.0.0/8 , 10.1.0.0/16 } drop',
    'ip saddr != { 10.0.0.0/24 , 10.0.1.0/24 } drop',
    'ip saddr != { 10.0.0.0/24 , 10.0.1.0/25 } drop',
    'ip saddr != { 203.0.113.5/32 } drop',
    'ip saddr != { 203.0.113.5/32 , 1.2.3.4 , 192.168.0.0/24 } drop',
    'ip daddr { 172.30.0.0/16,172.50.0.0/16 } drop',
    'ip daddr 10.1.2.3/8 accept',
    'mark set mark or 0x4000',
    'mark and 0x4000 == 0 return',
    'mark set mark xor 0x4000',
    'mark set 0x1',
    'meta mark 0x10 accept',
    'ct state new jump target',
    'ct state != established drop',
    'tcp dport { 443, 80, 8080 } accept',
    'th dport 30000-32767 meta l4proto udp counter accept',
    'iifname "eth0" oifname != "lo" accept',
    'numgen random mod 3 vmap { 0 : goto target , 1 : goto target , 2 : jump target }',
    'fib daddr type local ip daddr != 127.0.0.0/8 accept',
    'meta l4proto sctp dnat to 10.0.0.1:80',
    'masquerade fully-random',
    'reject',
  ]) addRule(c, rule);
  addRule(c, 'ip saddr 10.0.0.0/8 goto target', 'a comment');
  const services = ensureSet(ip, { kind: 'set', name: 'ports', type: 'inet_service' });
  for (const port of [8080, 22, 443, 80, 1, 65535, 3000]) addElement(services, { key: [String(port)] });
  const marks = ensureSet(ip, { kind: 'set', name: 'marks', type: 'mark' });
  for (const m of ['0x10', '0x1', '0x100']) addElement(marks, { key: [m] });
  for (const [name, seconds] of [['t90', 90], ['t1d', 86400], ['tmix', 3700], ['t1', 1]] as const) {
    ensureSet(ip, { kind: 'set', name, type: 'ipv4_addr', flags: ['timeout', 'dynamic'], timeoutSeconds: seconds });
  }
  const svcIPs = ensureSet(ip, { kind: 'map', name: 'vm', type: 'ipv4_addr . inet_proto . inet_service : verdict' });
  for (const [a, p, port] of [['10.0.0.1', 'tcp', '256'], ['10.0.0.2', 'udp', '53'], ['9.0.0.1', 'tcp', '80'], ['10.0.0.1', 'tcp', '80'], ['10.0.0.1', 'udp', '80'], ['10.0.0.1', 'tcp', '443']] as const) {
    addElement(svcIPs, { key: [a, p, port], value: ['goto target'], ...(port === '53' ? { comment: 'dns' } : {}) });
  }
  addRule(c, 'ip daddr . meta l4proto . th dport vmap @vm');
  addRule(c, 'tcp dport @ports meta mark @marks accept');
  const ip6 = createTable('ip6', 'forms6');
  const c6 = ensureChain(ip6, 'c');
  ensureSet(ip6, { kind: 'set', name: 'aff', type: 'ipv6_addr', flags: ['dynamic', 'timeout'], timeoutSeconds: 10800 });
  const s6 = ensureSet(ip6, { kind: 'set', name: 's', type: 'ipv6_addr' });
  for (const a of ['fd00::2', 'fd00::1', '2001:db8::1']) addElement(s6, { key: [a] });
  for (const rule of [
    'ip6 daddr fd00::1 ip6 saddr != fd00:10::/64 jump c',
    'update @aff { ip6 saddr }',
    'ip6 saddr @aff accept',
    'ip6 daddr @s accept',
    'ip6 saddr != { 2001:db8::/64 , fd00::1 } drop',
    'meta l4proto tcp dnat to [fd00:10:180::1]:80',
  ]) addRule(c6, rule);
  return { tables: [ip, ip6], skipped: [] };
}

test('rule, set and chain forms print as the kernel lists them', { skip }, (t) => {
  const nft = namespace(t);
  const ruleset = formsRuleset();
  nft(['-f', '-'], renderNftScript(ruleset));
  const listed = nft(['list', 'ruleset']);
  const canonical = renderNftCanonical(ruleset);
  if (listed !== canonical) assert.fail(`nft list ruleset differs from renderNftCanonical at ${firstDifference(listed, canonical)}`);
  assert.equal(renderNftCanonical(parseNftRuleset(listed)), listed, 'the listing read back renders to itself');
});
