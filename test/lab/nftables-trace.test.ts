/**
 * nftables mode in the lab, ahead of its driver: a table in kube-proxy's form (knftables' script,
 * as the nftables driver renders it) loaded with `nft -f`, a packet traced through it, and the
 * kernel's path placed rule by rule in the script that was loaded, as the differential check
 * places it. When the nftables driver lands in src/node/modes.ts, the lab runs it through here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { inNamespace, startMonitor } from '../../src/lab/exec.js';
import { kernelMode, labUnavailable, nftListedRules } from '../../src/lab/kernel-modes.js';
import { parseNftTrace, parseRuleHandles } from '../../src/lab/kernel-text.js';
import { traceTableScript } from '../../src/lab/probe.js';
import { PathIndex, firstDifferenceOf } from '../../src/lab/verify.js';

const skip = labUnavailable('iptables') ?? false;
const NODE = `kpsim-test-${process.pid}-nft-node`;
const CLIENT = `kpsim-test-${process.pid}-nft-client`;

const TABLE = `add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-AAA-ns/web/tcp/http
add chain ip kube-proxy endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080
add chain ip kube-proxy endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy service-AAA-ns/web/tcp/http numgen random mod 2 vmap { 0 : goto endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 , 1 : goto endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080 }
add rule ip kube-proxy endpoint-BBB-ns/web/tcp/http__10.244.0.5/8080 meta l4proto udp dnat to 10.244.0.5:8080
add rule ip kube-proxy endpoint-CCC-ns/web/tcp/http__10.244.1.6/8080 meta l4proto udp dnat to 10.244.1.6:8080
add element ip kube-proxy service-ips { 10.96.0.10 . udp . 80 : goto service-AAA-ns/web/tcp/http }
`;

function sh(argv: string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { input: input ?? '', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('a packet through an nftables table in kube-proxy\'s form: its kernel path, placed in the loaded script', { skip }, async (t) => {
  t.after(() => {
    spawnSync('ip', ['netns', 'del', NODE]);
    spawnSync('ip', ['netns', 'del', CLIENT]);
  });
  sh(['ip', 'netns', 'add', NODE]);
  sh(['ip', 'netns', 'add', CLIENT]);
  sh(['ip', 'link', 'add', 'eth0', 'netns', CLIENT, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NODE]);
  sh(['ip', '-n', CLIENT, '-batch', '-'], 'link set eth0 up\naddr add 100.64.0.1/24 dev eth0\nroute add default via 100.64.0.2\n');
  sh(['ip', '-n', NODE, '-batch', '-'], 'link set eth0 up\naddr add 100.64.0.2/24 dev eth0\n');
  const nftables = kernelMode('nftables');
  await nftables.load(NODE, 4, TABLE);
  sh(['ip', 'netns', 'exec', NODE, 'nft', '-f', '-'], traceTableScript());
  const listing = sh(['ip', 'netns', 'exec', NODE, 'nft', '-a', 'list', 'ruleset']);
  const monitor = startMonitor(inNamespace(NODE, ['nft', '-a', 'monitor', 'trace']));
  // A datagram (each from a port of its own) until the monitor, which reads the ruleset first, prints one.
  for (let i = 0; i < 100 && monitor.bytes() === 0; i++) {
    sh(['ip', 'netns', 'exec', CLIENT, process.execPath, '-e', `const s = require('node:dgram').createSocket('udp4'); s.bind(${10_000 + i}, '100.64.0.1', () => s.send('x', 80, '10.96.0.10', () => s.close()));`]);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300));
  const packets = parseNftTrace(await monitor.stop()).filter((p) => p.events.length > 0);
  assert.ok(packets.length > 0, 'nft traced the datagram');
  const index = new PathIndex(nftables, [{ family: 4, text: TABLE }], parseRuleHandles(listing), nftListedRules(listing));
  const kernelPath = index.kernelPath(packets.at(-1)!.events);
  const endpoint = kernelPath.at(-1)!.key.includes('10.244.0.5') ? 'BBB-ns/web/tcp/http__10.244.0.5/8080' : 'CCC-ns/web/tcp/http__10.244.1.6/8080';
  const rule = (chain: string): string => TABLE.split('\n').find((l) => l.startsWith(`add rule ip kube-proxy ${chain} `))!.slice(`add rule ip kube-proxy ${chain} `.length);
  // The walk the nftables tracer reports: each hop the table, chain and rule text it loaded.
  const hops = ['nat-prerouting', 'services', 'service-AAA-ns/web/tcp/http', `endpoint-${endpoint}`].map((chain) => ({ table: 'ip kube-proxy', chain, rule: rule(chain), target: '' }));
  const tracePath = index.tracePath(hops, 4);
  assert.equal(firstDifferenceOf(kernelPath, tracePath), -1, `kernel ${JSON.stringify(kernelPath)}\nkpsim ${JSON.stringify(tracePath)}`);
  assert.deepEqual(kernelPath.map((s) => s.key), [
    'ip kube-proxy nat-prerouting #1', 'ip kube-proxy services #1', 'ip kube-proxy service-AAA-ns/web/tcp/http #1', `ip kube-proxy endpoint-${endpoint} #1`,
  ]);
});
