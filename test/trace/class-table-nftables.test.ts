/**
 * nftables mode's kept walks keyed on source classes (nftables/source-matches.ts, kept-walks.ts,
 * the class table of class-table.ts): a tracer keeping walks answers every packet of a generated
 * set exactly as one walking every packet does (KeptWalkCheck: the same JSON, the same seeded
 * sample), as class-table.test.ts holds iptables mode to.
 *
 * The sources are the classes' boundaries as the tables themselves write them: both sides of
 * every network and address the rules name (the cluster CIDR of the local traffic detector,
 * each load-balancer source range, each endpoint's own address for hairpin masquerade, lists
 * and ranges of a second table's rules), the node's addresses and their neighbours (fib saddr
 * type local), the edges of loopback, multicast and the broadcast addresses (other address
 * types), and outside clients. Packets are asked in order (each boundary's addresses one after
 * another), then again in reverse (answered from the table, after every walk of the first pass
 * changed the tries), then with other seeds; and the later passes must be answered mostly from
 * the class table alone, so that the comparison is of the classes and not of walks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { parseNftRuleset } from '../../src/nftables/parse.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import type { NftRuleset } from '../../src/nftables/types.js';
import { prefixesOf } from '../../src/trace/nftables/source-matches.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import type { Packet, RecentState, TraceOptions } from '../../src/trace/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { bigIntToIP, ipToBigInt } from '../../src/util/ip.js';
import { generateClusterManifests } from '../helpers/cluster-builders.js';
import { KeptWalkCheck, nftServiceDestinations } from '../helpers/kept-walks.js';

function generatedState(seed: number, services: number) {
  const manifests = generateClusterManifests({ seed, services, endpointsPerService: 4, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  return buildProxierState(cluster, resolveNode(cluster), 4);
}

/**
 * A host firewall's table beside kube-proxy's, with every form of source match the packed
 * checks stand for: a range that is no prefix, a negated list of networks and an address,
 * address types (a list, a negation), and a range from address 0.
 */
const FIREWALL = `table ip firewall {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip saddr 192.168.1.10-192.168.1.37 drop
		ip saddr != { 10.0.0.0/8 , 172.16.5.7 , 192.168.0.0/16 , 203.0.113.0/24 } jump outside
		fib saddr type { broadcast , multicast } drop
		fib saddr type != local meta mark set 0x00000010
	}

	chain outside {
		ip saddr 203.0.113.128/25 drop
		ip saddr 0.0.0.0-0.255.255.255 drop
		fib saddr type local return
		ip saddr 100.64.0.0/10 accept
	}

	chain out {
		type filter hook output priority -300; policy accept;
		ip saddr 127.0.0.0/8 accept
		fib saddr type local meta mark set 0x00000020
	}
}
`;

/** Every IPv4 address or network written in `text`, as [first, last]. */
function networksIn(text: string): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (const m of text.matchAll(/(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d+)|-(\d{1,3}(?:\.\d{1,3}){3}))?(?![\d.])/g)) {
    const first = ipToBigInt(m[1]!);
    if (m[3] !== undefined) {
      out.push([first, ipToBigInt(m[3])]);
    } else {
      const host = 32n - BigInt(m[2] ?? 32);
      const network = (first >> host) << host;
      out.push([network, network + (1n << host) - 1n]);
    }
  }
  return out;
}

/** Both sides of every boundary: each network's first and last address and the ones just outside. */
function boundarySources(text: string, localAddresses: readonly string[]): string[] {
  const out = new Set<string>();
  const add = (value: bigint): void => {
    if (value >= 0n && value <= 0xffffffffn) out.add(bigIntToIP(value, 4));
  };
  for (const [first, last] of networksIn(text)) for (const v of [first - 1n, first, last, last + 1n]) add(v);
  for (const ip of localAddresses.filter((a) => !a.includes(':'))) for (const d of [-1n, 0n, 1n]) add(ipToBigInt(ip) + d);
  // Address types: broadcast (0.0.0.0, 255.255.255.255), multicast (224/4), loopback (local).
  for (const ip of ['0.0.0.0', '255.255.255.255', '255.255.255.254', '223.255.255.255', '224.0.0.0', '239.255.255.255', '240.0.0.0',
    '126.255.255.255', '127.0.0.1', '127.255.255.255', '128.0.0.0', '198.51.100.77']) out.add(ip);
  return [...out];
}


interface Case {
  readonly name: string;
  readonly rulesets: (text: string) => NftRuleset[];
}

const CASES: readonly Case[] = [
  { name: "kube-proxy's table", rulesets: () => [] },
  { name: "kube-proxy's table and a host firewall's", rulesets: () => [parseNftRuleset(FIREWALL)] },
];

for (const c of CASES) {
  test(`nftables: every packet of a generated set, asked again, answers as a walk does (${c.name})`, () => {
    const state = generatedState(4243, 30);
    const kubeProxy = compileNftablesRules(state);
    const text = renderNftScript(kubeProxy);
    const rulesets = [kubeProxy, ...c.rulesets(text)];
    const context = { localAddresses: state.localAddresses };
    const keeping = createNftTracer(rulesets, context);
    const walking = createNftTracer(rulesets, context, { cache: false });
    const check = new KeptWalkCheck(keeping, walking);
    const sources = boundarySources(text + FIREWALL, state.localAddresses);
    const packets: Packet[] = [];
    for (const { dst, proto, dport } of nftServiceDestinations(text, state.nodeIPs)) for (const src of sources) packets.push({ proto, src, dst, dport });
    assert.ok(packets.length > 3000, `${packets.length} packets`);
    const optsOf = (i: number): TraceOptions => [{}, { seed: i % 37, sampleOnly: true }, { seed: i % 41 }, { seed: i % 13, mark: 0x4000 }, { fromNode: true }, { seed: i % 7, sampleOnly: true, fromNode: true }][i % 6]!;
    // First pass: walks added one after another (each changes its trie: new boundaries, new draws).
    packets.forEach((p, i) => check.compare(p, optsOf(i)));
    const first = keeping.cacheStats();
    // Second pass, in reverse: answers read from the class table, every region made after the last change.
    for (let i = packets.length - 1; i >= 0; i--) check.compare(packets[i]!, optsOf(i));
    // And with other seeds, so that draws lead to answers not walked yet.
    packets.forEach((p, i) => check.compare(p, { seed: (i * 7) % 101, sampleOnly: true }));
    const stats = keeping.cacheStats();
    const later = stats.lookups - first.lookups;
    assert.ok(stats.hits - first.hits > later * 0.7, `later passes mostly answered from kept walks: ${JSON.stringify({ first, stats })}`);
    // Answers read from the class table alone (a class's answer, no trie asked): what holds the classes to the walks.
    assert.ok(stats.tableHits - first.tableHits > later * 0.3, `later passes answered from the class table: ${JSON.stringify({ first, stats })}`);
  });
}

test('nftables: answers read from the class table give way when a client enters an affinity set, and come back after', () => {
  const state = generatedState(4244, 30);
  const ruleset = compileNftablesRules(state);
  const text = renderNftScript(ruleset);
  const context = { localAddresses: state.localAddresses };
  const keeping = createNftTracer(ruleset, context);
  const walking = createNftTracer(ruleset, context, { cache: false });
  const check = new KeptWalkCheck(keeping, walking);
  // A service with ClientIP affinity: its service chain checks @affinity-* sets before numgen.
  const sets = [...text.matchAll(/add set ip kube-proxy (affinity-\S+) \{/g)].map((m) => m[1]!);
  assert.ok(sets.length > 0, 'the generated cluster has services with ClientIP affinity');
  const client = '10.244.1.77';
  let pinned = 0;
  const affinityPackets: Packet[] = [];
  for (const { dst, proto, dport } of nftServiceDestinations(text, state.nodeIPs)) {
    const packet: Packet = { proto, src: client, dst, dport };
    // The set the walk with seed 1 updates (none: the service has no affinity).
    const set = keeping.trace(packet, { seed: 1 }).sample?.recent?.[0]?.list;
    if (set !== undefined) affinityPackets.push(packet);
    for (let round = 0; round < 2; round++) {
      for (let seed = 0; seed < 12; seed++) {
        check.compare(packet, { seed, sampleOnly: true });
        check.compare(packet, {});
      }
      if (set === undefined) continue;
      const recent: RecentState = { [set]: [{ address: client, ageSeconds: 1 }] };
      const want = walking.trace(packet, { seed: 3, sampleOnly: true, recent }).endpoints;
      for (let seed = 0; seed < 12; seed++) {
        check.compare(packet, { seed, sampleOnly: true, recent });
        assert.deepEqual(keeping.trace(packet, { seed, sampleOnly: true, recent }).endpoints, want, `${JSON.stringify(packet)} seed ${seed}, the client in @${set}`);
      }
      pinned++;
    }
  }
  assert.ok(pinned > 0, 'clients were pinned by an affinity set');
  // With every set empty again, an affinity service's answers come back to the class table: its
  // affinity checks answer the same for every source then (and so are no reason to walk).
  for (const packet of affinityPackets) {
    const ask = (): void => {
      keeping.trace(packet);
      keeping.trace(packet, { seed: 5, sampleOnly: true });
    };
    ask();
    const before = keeping.cacheStats();
    ask();
    const after = keeping.cacheStats();
    assert.equal(after.tableHits - before.tableHits, 2, `${JSON.stringify(packet)}: both answers read from the class table (${JSON.stringify({ before, after })})`);
  }
});

test('prefixesOf: the prefixes that cover an IPv4 range exactly, largest first at each step', () => {
  const rows: { lo: number; hi: number; want: string[] }[] = [
    { lo: 0, hi: 0xffffffff, want: ['0.0.0.0/0'] },
    { lo: 0xc0a8010a, hi: 0xc0a80125, want: ['192.168.1.10/31', '192.168.1.12/30', '192.168.1.16/28', '192.168.1.32/30', '192.168.1.36/31'] },
    { lo: 0x0a000000, hi: 0x0affffff, want: ['10.0.0.0/8'] },
    { lo: 0xffffffff, hi: 0xffffffff, want: ['255.255.255.255/32'] },
    { lo: 0x7fffffff, hi: 0x80000000, want: ['127.255.255.255/32', '128.0.0.0/32'] },
    { lo: 1, hi: 0xfffffffe, want: [] },
  ];
  for (const { lo, hi, want } of rows) {
    const got = prefixesOf(lo, hi);
    const texts = got.map(([net, mask]) => `${bigIntToIP(BigInt(net), 4)}/${32 - Math.log2(((~mask) >>> 0) + 1)}`);
    if (want.length > 0) assert.deepEqual(texts, want, `${lo}-${hi}`);
    // Exactly the range, in order, with no overlap.
    let next = lo;
    for (const [net, mask] of got) {
      assert.equal(net, next, `${lo}-${hi}: ${texts.join(' ')}`);
      assert.equal((net & mask) >>> 0, net, `${lo}-${hi}: ${net} is aligned to its mask`);
      next = net + ((~mask) >>> 0) + 1;
    }
    assert.equal(next, hi + 1, `${lo}-${hi} covered: ${texts.join(' ')}`);
  }
});
