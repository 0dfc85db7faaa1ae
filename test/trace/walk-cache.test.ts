/**
 * Kept walks (walk-cache.ts, decisions.ts) must answer exactly what a walk would. A tracer that
 * keeps walks and one that walks every packet get the same packets, and their answers are held
 * to the same JSON (every field of the contract: hops, probabilities, outcomes, samples, the
 * recent changes of a sample) for:
 *
 * - every destination the rules name (cluster IPs, external and load-balancer IPs, node
 *   addresses with node ports), from sources on both sides of every class boundary the rules
 *   draw: each `-s` network's first and last address and the addresses just outside it (the
 *   cluster CIDR, load-balancer source ranges, hairpin /32s of endpoints, loopback), the node's
 *   addresses and their neighbours, and the endpoints themselves (hairpin);
 * - all outcomes, seeded samples, `sampleOnly`, marks, origins, and affinity states (a client in
 *   a `recent` list seen just inside, at and just past its timeout);
 * - packets sent in an order where each boundary pair comes back to back, so that the second
 *   of a pair is the one the kept walk of the first could wrongly answer.
 *
 * And the cache is used: most lookups are answered from it (counted by the tracer).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import type { Ruleset } from '../../src/iptables/types.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Packet, RecentState, TraceOptions } from '../../src/trace/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { bigIntToIP, ipFamily, ipToBigInt, normalizeIP, parseCIDR } from '../../src/util/ip.js';
import { generateClusterManifests, seededRandom } from '../helpers/cluster-builders.js';
import { KeptWalkCheck } from '../helpers/kept-walks.js';
import { IPV6, MASQUERADE_ALL, NODE_IPS, OVERALL, TRACE_PACKET_TEST } from './fixtures.js';

interface Case {
  readonly name: string;
  readonly rules: Ruleset;
  readonly text: string;
  readonly localAddresses: readonly string[];
  /** Extra sources (outside clients). */
  readonly sources: readonly string[];
}

/** An address `delta` away from `ip`, within its family (undefined past either end). */
function offset(ip: string, delta: number): string | undefined {
  const family = ipFamily(ip)!;
  const value = ipToBigInt(ip) + BigInt(delta);
  const max = family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
  return value < 0n || value > max ? undefined : bigIntToIP(value, family);
}

/**
 * Both sides of every source network of the rules wider than one address: its first and last
 * address, and just outside (one-address networks are endpoints' hairpin rules: see below).
 */
function boundarySources(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:^|\s)(?:-s|--source)\s+([0-9a-fA-F.:]+)(?:\/(\d+))?/gm)) {
    const ip = normalizeIP(m[1]!);
    if (ip === undefined) continue;
    const family = ipFamily(ip)!;
    const cidr = parseCIDR(`${ip}/${m[2] ?? (family === 4 ? 32 : 128)}`, true);
    if (!cidr || cidr.prefixLength === (family === 4 ? 32 : 128)) continue;
    const first = ipToBigInt(cidr.network);
    const bits = (family === 4 ? 32 : 128) - cidr.prefixLength;
    const last = first + (1n << BigInt(bits)) - 1n;
    for (const value of [first - 1n, first, first + 1n, last - 1n, last, last + 1n]) {
      const max = family === 4 ? (1n << 32n) - 1n : (1n << 128n) - 1n;
      if (value >= 0n && value <= max) out.add(bigIntToIP(value, family));
    }
  }
  return [...out];
}

/** Every address a rule sends to or from (-d, DNAT targets): the destinations and the endpoints. */
function namedAddresses(text: string): { destinations: string[]; endpoints: string[]; ports: number[] } {
  const destinations = new Set<string>();
  const endpoints = new Set<string>();
  const ports = new Set<number>();
  for (const m of text.matchAll(/-d\s+([0-9a-fA-F.:]+?)(?:\/(?:32|128))?\s/g)) {
    const ip = normalizeIP(m[1]!);
    if (ip !== undefined) destinations.add(ip);
  }
  for (const m of text.matchAll(/--to-destination\s+\[?([0-9a-fA-F.:]+?)\]?:(\d+)/g)) {
    const ip = normalizeIP(m[1]!);
    if (ip !== undefined) endpoints.add(ip);
    ports.add(Number(m[2]));
  }
  for (const m of text.matchAll(/--dport\s+(\d+)/g)) ports.add(Number(m[1]));
  return { destinations: [...destinations], endpoints: [...endpoints], ports: [...ports] };
}

function generatedCase(): Case {
  const manifests = generateClusterManifests({ seed: 4242, services: 40, endpointsPerService: 4, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const rules = compileIptablesRules(state);
  return {
    name: 'a generated cluster (load-balancer source ranges, affinity, eTP=Local)', rules, text: renderIptablesSave(rules),
    localAddresses: state.localAddresses, sources: ['203.0.113.9', '198.51.100.77', '100.64.3.3'],
  };
}

function fixtureCase(name: string, text: string): Case {
  return { name, rules: parseIptablesSave(text), text, localAddresses: NODE_IPS, sources: ['203.0.113.2', '203.0.113.130', '2001:db8:ffff::9'] };
}

const cases: Case[] = [
  generatedCase(),
  fixtureCase('the overall fixture (LB source ranges, affinity, eTP=Local)', OVERALL),
  fixtureCase('the kube-proxy packet-test fixture', TRACE_PACKET_TEST),
  fixtureCase('masquerade-all', MASQUERADE_ALL),
  fixtureCase('IPv6 (closures for every address check)', IPV6),
];

/**
 * The ports the rules name beside `dst` (a service's port, a node port), else two of all
 * ports, and one no rule names: each packet then reaches the rules of its destination.
 */
function portsOf(text: string, dst: string, all: readonly number[], random: () => number): number[] {
  const near = new Set<number>();
  const escaped = dst.replace(/[.:]/g, (ch) => `\\${ch}`);
  for (const m of text.matchAll(new RegExp(`-d ${escaped}(?:/(?:32|128))? .*?--dport (\\d+)`, 'g'))) near.add(Number(m[1]));
  const some = near.size > 0 ? [...near].slice(0, 4) : [all[Math.floor(random() * all.length)]!, all[Math.floor(random() * all.length)]!];
  return [...new Set([...some, 1 + Math.floor(random() * 65535)])];
}

/** The destinations of services with ClientIP affinity (their rules check recent lists). */
function affinityDestinations(text: string): Set<string> {
  const svcs = new Set<string>();
  for (const m of text.matchAll(/-A (KUBE-SVC-\S+) .*--rcheck/g)) svcs.add(m[1]!);
  const out = new Set<string>();
  for (const m of text.matchAll(/-d ([0-9a-fA-F.:]+?)(?:\/(?:32|128))? .*-j (KUBE-(?:SVC|EXT|FW)-\S+)/g)) {
    const target = m[2]!.replace(/^KUBE-(?:EXT|FW)-/, 'KUBE-SVC-');
    if (svcs.has(target)) out.add(normalizeIP(m[1]!) ?? m[1]!);
  }
  return out;
}

/** Affinity states: every recent list of the rules holding `src`, seen just inside, at and past `seconds`. */
function affinityStates(text: string, src: string): RecentState[] {
  const lists = new Map<string, number>();
  for (const m of text.matchAll(/--name\s+(\S+)\s+--rcheck\s+--seconds\s+(\d+)/g)) lists.set(m[1]!, Number(m[2]));
  const states: RecentState[] = [];
  for (const [list, seconds] of lists) {
    for (const age of [seconds - 1, seconds, seconds + 1]) states.push({ [list]: [{ address: src, ageSeconds: age }] });
  }
  return states;
}

for (const c of cases) {
  test(`kept walks answer as walks do: ${c.name}`, () => {
    const context = { localAddresses: c.localAddresses };
    const keeping = createTracer(c.rules, context);
    const walking = createTracer(c.rules, context, { cache: false });
    const { destinations, endpoints, ports } = namedAddresses(c.text);
    const nodeNeighbours = c.localAddresses.flatMap((ip) => [ip, offset(ip, -1), offset(ip, 1)]).filter((ip): ip is string => ip !== undefined);
    const sources = [...new Set([...boundarySources(c.text), ...nodeNeighbours, ...c.sources, '127.0.0.1', '::1'])];
    void endpoints;
    /** The endpoints a destination leads to, each with its neighbours: the hairpin boundary. */
    const hairpins = (dst: string, dport: number): string[] => {
      const external = ipFamily(dst) === 4 ? '203.0.113.250' : '2001:db8:ffff::250';
      const reached = walking.trace({ proto: 'tcp', src: external, dst, dport }).endpoints;
      return reached.map((e) => normalizeIP(e.replace(/^\[?(.*?)\]?:\d+$/, '$1'))!)
        .flatMap((ip) => [offset(ip, -1), ip, offset(ip, 1)]).filter((ip): ip is string => ip !== undefined);
    };
    const dsts = [...new Set([...destinations, ...c.localAddresses, '127.0.0.1'])].filter((d) => ipFamily(d) === c.rules.family);
    const random = seededRandom(99);
    const check = new KeptWalkCheck(keeping, walking);
    const compare = (packet: Packet, opts: TraceOptions): void => check.compare(packet, opts);
    for (const dst of dsts) {
      const family = ipFamily(dst);
      const sameFamily = sources.filter((s) => ipFamily(s) === family);
      for (const dport of portsOf(c.text, dst, ports, random)) {
        // Sources in their listed order: a boundary's addresses one after another.
        for (const src of [...sameFamily, ...hairpins(dst, dport)]) {
          const packet: Packet = { proto: 'tcp', src, dst, dport };
          const roll = random();
          const seed = Math.floor(random() * 1000);
          const opts: TraceOptions = roll < 0.35 ? {} : roll < 0.6 ? { seed } : roll < 0.8 ? { seed, sampleOnly: true }
            : roll < 0.9 ? { seed, mark: [0x4000, 0x8000, 0][Math.floor(random() * 3)]! } : { seed, fromNode: random() < 0.5 };
          compare(packet, opts);
        }
      }
    }
    // Affinity: each client in each list, just inside, at and past the timeout, sampled and not.
    const affinityDsts = dsts.filter((d) => affinityDestinations(c.text).has(d));
    for (const dst of affinityDsts) {
      if (ipFamily(dst) !== 4) continue;
      for (const dport of portsOf(c.text, dst, ports, random).slice(0, 2)) {
        for (const src of [...sources.filter((s) => ipFamily(s) === 4).slice(0, 6), ...hairpins(dst, dport)]) {
          for (const recent of affinityStates(c.text, src)) {
            compare({ proto: 'tcp', src, dst, dport }, { recent });
            compare({ proto: 'tcp', src, dst, dport, sport: 40000 }, { recent, seed: check.compared % 97 });
          }
        }
      }
    }
    const stats = keeping.cacheStats();
    assert.ok(check.compared > 50, `compared ${check.compared} answers`);
    assert.ok(stats.hits > stats.lookups / 2, `most lookups answered from kept walks: ${JSON.stringify(stats)}`);
  });
}

test('sampleOnly: the seeded walk alone, in the fields of every outcome; a seed is needed', () => {
  const tracer = createTracer(parseIptablesSave(OVERALL), { localAddresses: NODE_IPS });
  const packet: Packet = { proto: 'tcp', src: '10.0.0.2', dst: '172.30.0.47', dport: 80 };
  for (let seed = 0; seed < 20; seed++) {
    const full = tracer.trace(packet, { seed });
    const only = tracer.trace(packet, { seed, sampleOnly: true });
    const sample = full.sample!;
    assert.deepEqual(only.sample, sample);
    assert.equal(only.verdict, sample.verdict);
    assert.deepEqual(only.endpoints, sample.endpoint === undefined ? [] : [sample.endpoint]);
    assert.deepEqual(only.probabilities, {});
    assert.equal(only.masquerade, sample.masquerade);
    assert.deepEqual(only.hops, sample.hops);
    assert.equal(only.sampleOnly, true);
    assert.equal(full.sampleOnly, undefined);
  }
  assert.throws(() => tracer.trace(packet, { sampleOnly: true }), { code: 'KPSIM_ERR_USAGE_MISSING_FLAG' });
});
