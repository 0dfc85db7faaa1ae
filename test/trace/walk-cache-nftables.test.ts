/**
 * Kept walks in nftables mode (trace/nftables/tracer.ts with decisions.ts) must answer exactly
 * what a walk would, as in iptables mode (walk-cache.test.ts): a tracer that keeps walks and
 * one that walks every packet get the same packets, and their answers are held to the same
 * JSON, for every destination the table's maps name (service IPs, node ports on the node's
 * addresses), from sources on both sides of every network the table names (the cluster CIDR,
 * load-balancer source ranges, the endpoints' own addresses for hairpin masquerade), the node's
 * addresses (fib saddr type local), loopback and outside clients; all outcomes, seeded samples,
 * sampleOnly, marks and origins; and clients in each affinity set, inside and past its timeout.
 * Also: a caller's own recent lists (TraceOptions.recentLookup) answer as the same lists given
 * as `recent`, in both modes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { compileNftablesRules } from '../../src/nftables/compile.js';
import { renderNftScript } from '../../src/nftables/render-script.js';
import { createNftTracer } from '../../src/trace/nftables/tracer.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Packet, RecentLookup, RecentState, TraceOptions } from '../../src/trace/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { bigIntToIP, ipToBigInt, parseCIDR } from '../../src/util/ip.js';
import { generateClusterManifests, seededRandom } from '../helpers/cluster-builders.js';
import { KeptWalkCheck, nftServiceDestinations } from '../helpers/kept-walks.js';

function generatedState(seed: number) {
  const manifests = generateClusterManifests({ seed, services: 40, endpointsPerService: 4, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  return buildProxierState(cluster, resolveNode(cluster), 4);
}

/** An IPv4 address `delta` away (undefined past either end). */
function offset(ip: string, delta: number): string | undefined {
  const value = ipToBigInt(ip) + BigInt(delta);
  return value < 0n || value > 0xffffffffn ? undefined : bigIntToIP(value, 4);
}

/** Both sides of every IPv4 network and address the table names: first, last, and just outside. */
function boundarySources(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:\/(\d+))?(?![\d.])/g)) {
    const cidr = parseCIDR(`${m[1]}/${m[2] ?? 32}`, true);
    if (!cidr) continue;
    const first = ipToBigInt(cidr.network);
    const last = first + (1n << BigInt(32 - cidr.prefixLength)) - 1n;
    for (const value of [first - 1n, first, last, last + 1n]) {
      if (value >= 0n && value <= 0xffffffffn) out.add(bigIntToIP(value, 4));
    }
  }
  return [...out];
}


/** Affinity sets and their timeouts. */
function affinitySets(text: string): Map<string, number> {
  const sets = new Map<string, number>();
  for (const m of text.matchAll(/add set ip kube-proxy (affinity-\S+) \{[^}]*timeout (\d+)s/g)) sets.set(m[1]!, Number(m[2]));
  return sets;
}

test('kept walks answer as walks do: nftables mode, a generated cluster (load-balancer source ranges, affinity, eTP=Local)', () => {
  const state = generatedState(4242);
  const ruleset = compileNftablesRules(state);
  const text = renderNftScript(ruleset);
  const context = { localAddresses: state.localAddresses };
  const keeping = createNftTracer(ruleset, context);
  const walking = createNftTracer(ruleset, context, { cache: false });
  const nodeNeighbours = state.localAddresses.flatMap((ip) => [ip, offset(ip, -1), offset(ip, 1)]).filter((ip): ip is string => ip !== undefined && !ip.includes(':'));
  const sources = [...new Set([...boundarySources(text), ...nodeNeighbours, '203.0.113.9', '198.51.100.77', '100.64.3.3', '127.0.0.1'])];
  const random = seededRandom(7);
  const check = new KeptWalkCheck(keeping, walking);
  const compare = (packet: Packet, opts: TraceOptions): void => check.compare(packet, opts);
  const dsts = nftServiceDestinations(text, state.nodeIPs);
  assert.ok(dsts.length > 20, `destinations found in the table: ${dsts.length}`);
  for (const { dst, proto, dport } of dsts) {
    // Sources in order, so that each boundary's addresses come one after another; twice, so
    // that the second round is answered from kept walks.
    for (let round = 0; round < 2; round++) {
      for (const src of sources) {
        const roll = random();
        const seed = Math.floor(random() * 1000);
        const opts: TraceOptions = roll < 0.35 ? {} : roll < 0.6 ? { seed } : roll < 0.8 ? { seed, sampleOnly: true }
          : roll < 0.9 ? { seed, mark: [0x4000, 0x8000, 0][Math.floor(random() * 3)]! } : { seed, fromNode: random() < 0.5 };
        compare({ proto, src, dst, dport }, opts);
      }
    }
  }
  // Affinity: a client in each set, inside and past the timeout.
  const sets = affinitySets(text);
  assert.ok(sets.size > 0, 'the generated cluster has services with ClientIP affinity');
  for (const { dst, proto, dport } of dsts.slice(0, 40)) {
    for (const src of sources.slice(0, 8)) {
      for (const [set, timeout] of sets) {
        for (const age of [timeout - 1, timeout]) {
          const recent: RecentState = { [set]: [{ address: src, ageSeconds: age }] };
          compare({ proto, src, dst, dport }, { recent });
          compare({ proto, src, dst, dport, sport: 40000 }, { recent, seed: check.compared % 97, sampleOnly: check.compared % 2 === 0 });
        }
      }
    }
  }
  assert.ok(check.compared > 500, `compared ${check.compared} answers`);
  const stats = keeping.cacheStats();
  assert.ok(stats.hits > stats.lookups / 2, `most lookups answered from kept walks: ${JSON.stringify(stats)}`);
});

/** A caller's lists over a RecentState, as the simulator keeps its clients'. */
function lookupOf(state: RecentState): RecentLookup {
  const entry = (e: RecentState[string][number]) => typeof e === 'string' ? { address: e, ageSeconds: 0, hits: 1 } : { address: e.address, ageSeconds: e.ageSeconds ?? 0, hits: e.hits ?? 1 };
  return {
    find(list, address) {
      const found = (state[list] ?? []).map(entry).find((e) => e.address === address);
      return found === undefined ? undefined : { ageSeconds: found.ageSeconds, hits: found.hits };
    },
    *entries(list) {
      for (const e of (state[list] ?? []).map(entry)) yield [e.address, { ageSeconds: e.ageSeconds, hits: e.hits }] as const;
    },
  };
}

test('recentLookup answers as the same lists given as recent (iptables and nftables modes)', () => {
  const state = generatedState(99);
  const iptablesText = renderNftScript(compileNftablesRules(state));
  const tracers = [
    { mode: 'iptables', tracer: createTracer(compileIptablesRules(state), { localAddresses: state.localAddresses }) },
    { mode: 'nftables', tracer: createNftTracer(compileNftablesRules(state), { localAddresses: state.localAddresses }) },
  ];
  const sets = affinitySets(iptablesText);
  let compared = 0;
  for (const { mode, tracer } of tracers) {
    for (const { dst, proto, dport } of nftServiceDestinations(iptablesText, state.nodeIPs).slice(0, 30)) {
      const src = '10.244.7.9';
      // iptables mode's lists are named after the KUBE-SEP chains: take the names its walk sets.
      const names = new Set([...sets.keys(), ...(tracer.trace({ proto, src, dst, dport }, { seed: 1 }).sample?.recent ?? []).map((u) => u.list)]);
      for (const list of names) {
        for (const age of [0, 100000]) {
          const recent: RecentState = { [list]: [{ address: src, ageSeconds: age, hits: 2 }] };
          for (const seed of [1, 2, 3]) {
            const packet: Packet = { proto, src, dst, dport };
            assert.equal(JSON.stringify(tracer.trace(packet, { recentLookup: lookupOf(recent), seed })), JSON.stringify(tracer.trace(packet, { recent, seed })), `${mode} ${JSON.stringify(packet)} ${list} ${age}`);
            // Twice: the second is answered from kept walks.
            for (let round = 0; round < 2; round++) {
              assert.equal(JSON.stringify(tracer.sample(packet, seed, { recentLookup: lookupOf(recent) })), JSON.stringify(tracer.sample(packet, seed, { recent })), `${mode} sample ${JSON.stringify(packet)} ${list} ${age}`);
            }
            compared++;
          }
        }
      }
    }
  }
  assert.ok(compared > 50, `compared ${compared}`);
});
