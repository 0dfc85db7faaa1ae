/**
 * The class table (class-table.ts): kept answers laid out flat by destination side and source
 * class. Held to what it stands for:
 *
 * - the table itself: a source finds its own class on both sides of every boundary (the whole
 *   unsigned range, past the Int32 sign), a region whose trie changed is not answered from, a
 *   cleared table answers nothing, every side of an address (ports, origins, marks) keeps its
 *   own regions, past the first side of an address and past the table's first growth; a trie
 *   whose walks add no boundary makes its region again in place (the table does not grow by a
 *   region per walk kept), answering as a trie asked only once all walks were in;
 * - a tracer answering from it: every packet asked a second time (now from the table, after
 *   every walk of the first pass changed the tries) answers as a walk does; answers read from
 *   the table give way to the walk when the affinity state changes (a client put in a recent
 *   list, by the caller or by the tracer's context) and come back after; two tracers of two
 *   rulesets, asked in turn, each answer for their own rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import { clusterFromManifests } from '../../src/manifest/load.js';
import { CELL_ANSWER, ClassTable, NOT_FLAT } from '../../src/trace/class-table.js';
import { DecisionLog, DecisionTrie } from '../../src/trace/decisions.js';
import { createTracer } from '../../src/trace/tracer.js';
import type { Packet, RecentLookup, TraceOptions } from '../../src/trace/types.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';
import { SeededDraws } from '../../src/util/random.js';
import { generateClusterManifests, seededRandom } from '../helpers/cluster-builders.js';
import { KeptWalkCheck } from '../helpers/kept-walks.js';
import { NODE_IPS, OVERALL } from './fixtures.js';

const TYPE_BIT = 1 << 3;

/** A region over `bounds` whose class i (interval i, TYPE_BIT) answers `interval i`. */
function regionAnswering(table: ClassTable, bounds: readonly number[]): number {
  const region = table.region(bounds);
  for (let i = 0; i < bounds.length; i++) {
    const cell = table.cellOf(region, bounds[i]!, TYPE_BIT);
    table.data[cell] = CELL_ANSWER + 4 * table.ref(`interval ${i}`);
  }
  return region;
}

test('class table: a source finds the class of its interval on both sides of every boundary', () => {
  const bounds = [0, 0x0a000000, 0x0b000000, 0x7fffffff, 0x80000000, 0xcb007100, 0xffffffff];
  const table = new ClassTable();
  const region = regionAnswering(table, bounds);
  const rows: { src: number; want: string }[] = [
    { src: 0, want: 'interval 0' },
    { src: 0x09ffffff, want: 'interval 0' },
    { src: 0x0a000000, want: 'interval 1' },
    { src: 0x0affffff, want: 'interval 1' },
    { src: 0x0b000000, want: 'interval 2' },
    { src: 0x7ffffffe, want: 'interval 2' },
    { src: 0x7fffffff, want: 'interval 3' },
    { src: 0x80000000, want: 'interval 4' },
    { src: 0xcb0070ff, want: 'interval 4' },
    { src: 0xcb007100, want: 'interval 5' },
    { src: 0xfffffffe, want: 'interval 5' },
    { src: 0xffffffff, want: 'interval 6' },
  ];
  for (const { src, want } of rows) {
    assert.equal(table.answer(region, src, TYPE_BIT, undefined), want, `source 0x${src.toString(16)}`);
    // Another address type is another class: not asked yet.
    assert.equal(table.answer(region, src, TYPE_BIT << 1, undefined), NOT_FLAT, `source 0x${src.toString(16)}, another type`);
  }
});

test('class table: draws laid out flat are followed with the seed\'s draws', () => {
  const table = new ClassTable();
  const region = table.region([0]);
  // Two draws as a kube-proxy service of three endpoints: 1/3, then 1/2 (stored: p * 2^31).
  const third = Math.floor(0x80000000 / 3);
  const half = 0x40000000;
  const steps = [third, 0, -1, 1, half, 0, -2, -3];
  const at = table.addDraws(steps, ['first', 'second', 'third'], 0);
  table.data[table.cellOf(region, 0x0a000001, TYPE_BIT)] = 2 + 4 * at;
  for (let seed = 0; seed < 200; seed++) {
    const d = new SeededDraws().reset(seed);
    const a = d.next() & 0x7fffffff;
    const want = a < third ? 'first' : (d.next() & 0x7fffffff) < half ? 'second' : 'third';
    assert.equal(table.answer(region, 0x0a000001, TYPE_BIT, new SeededDraws().reset(seed)), want, `seed ${seed}`);
  }
  // Always and never: stored 2^31 (and past it) always matches, 0 never does.
  for (const [stored, want] of [[0x80000000, 'yes'], [0xffffffff, 'yes'], [0, 'no']] as const) {
    const r = table.region([0]);
    const a = table.addDraws([stored, 0, -1, -2], ['yes', 'no'], 0);
    table.data[table.cellOf(r, 1, TYPE_BIT)] = 2 + 4 * a;
    for (let seed = 0; seed < 50; seed++) assert.equal(table.answer(r, 1, TYPE_BIT, new SeededDraws().reset(seed)), want, `stored ${stored}, seed ${seed}`);
  }
});

test('class table: a killed region and a cleared table answer nothing', () => {
  const table = new ClassTable();
  const region = regionAnswering(table, [0, 0x0a000000]);
  assert.equal(table.answer(region, 0x0a000001, TYPE_BIT, undefined), 'interval 1');
  table.kill(region);
  assert.equal(table.answer(region, 0x0a000001, TYPE_BIT, undefined), NOT_FLAT);
  const other = regionAnswering(table, [0]);
  table.setSideRegion(3, 80, 0, 0, other);
  assert.equal(table.sideRegion(3, 80, 0, 0), other);
  const generation = table.generation;
  table.clear();
  assert.equal(table.generation, generation + 1);
  assert.equal(table.sideRegion(3, 80, 0, 0), -1);
});

test('class table: every side of an address keeps its own regions (ports, marks, both tries, past growth)', () => {
  const table = new ClassTable();
  const want = new Map<string, number>();
  const random = seededRandom(7);
  // 3,000 IPv4 destinations (by number: 0.0.0.0 on, and the top of the space, where numbers
  // pass 2^31), the first with 2,000 sides (a node address's node ports), the rest one or two.
  const addresses = [...Array.from({ length: 2000 }, (_, i) => i), ...Array.from({ length: 1000 }, (_, i) => 0xffffffff - i)];
  for (const address of addresses) {
    const sides = address === 0 ? 2000 : 1 + (address % 2);
    for (let s = 0; s < sides; s++) {
      const key = 30000 + s;
      const mark = s % 3 === 2 ? 0x4000 : 0;
      for (const which of [0, 1] as const) {
        const region = Math.floor(random() * 1e6);
        table.setSideRegion(address, key, mark, which, region);
        want.set(`${address} ${key} ${mark} ${which}`, region);
      }
    }
  }
  for (const [k, region] of want) {
    const [address, key, mark, which] = k.split(' ').map(Number) as [number, number, number, 0 | 1];
    assert.equal(table.sideRegion(address, key, mark, which), region, k);
  }
  assert.equal(table.sideRegion(0, 30000, 0x8000, 0), -1, 'another mark');
  assert.equal(table.sideRegion(5, 29999, 0, 1), -1, 'another port');
  assert.equal(table.sideRegion(3000, 30000, 0, 0), -1, 'another address');
  assert.equal(table.sideRegion(0xffffffff - 1000, 30000, 0, 0), -1, 'another address past 2^31');
  assert.equal(table.sideRegion(0xffffffff, 30001, 0, 1), want.get(`${0xffffffff} 30001 0 1`), 'the second side of 255.255.255.255');
});

test('class table: a trie whose walks add no boundary makes its region again in place, answering as a fresh one', () => {
  const table = new ClassTable(1 << 16);
  assert.equal(table.data.length, 1 << 16, 'the size asked for');
  const live = new DecisionTrie<string>(table);
  const logs: DecisionLog[] = [];
  const regions = new Set<number>();
  const draws = new SeededDraws();
  // Walk k: k draws of one half that fail, then one that succeeds (a statistic chain).
  for (let k = 0; k < 40; k++) {
    const log = new DecisionLog();
    for (let j = 0; j < k; j++) log.addDraw(0x40000000, false, false);
    log.addDraw(0x40000000, false, true);
    logs.push(log);
    live.insert(log, `walk ${k}`);
    live.find(0x0a000001, TYPE_BIT, undefined, undefined, draws.reset(k));
    regions.add(live.region());
  }
  assert.deepEqual([...regions], [[...regions][0]], `one region for every walk kept, got ${regions.size}`);
  const fresh = new DecisionTrie<string>(new ClassTable());
  logs.forEach((log, k) => fresh.insert(log, `walk ${k}`));
  for (let seed = 0; seed < 200; seed++) {
    for (const src of [0x0a000001, 0xc0a80001]) {
      const got = live.find(src, TYPE_BIT, undefined, undefined, draws.reset(seed));
      const want = fresh.find(src, TYPE_BIT, undefined, undefined, new SeededDraws().reset(seed));
      assert.equal(got, want, `seed ${seed}, source ${src.toString(16)}`);
    }
  }
});

function generatedRules(services: number): { rules: ReturnType<typeof compileIptablesRules>; localAddresses: readonly string[] } {
  const manifests = generateClusterManifests({ seed: 777, services, endpointsPerService: 3, nodes: 3 });
  const cluster = clusterFromManifests([{ file: 'generated.json', text: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) }]);
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  return { rules: compileIptablesRules(state), localAddresses: state.localAddresses };
}

/** Destinations (cluster IPs with their port, and the node's node ports) and sources around the class boundaries. */
function packetsOf(rules: ReturnType<typeof compileIptablesRules>, localAddresses: readonly string[]): Packet[] {
  const text = renderIptablesSave(rules);
  const sides = new Set<string>();
  for (const m of text.matchAll(/-d ([0-9.]+)(?:\/32)? .*?--dport (\d+)/g)) sides.add(`${m[1]} ${m[2]}`);
  const sources = ['10.244.0.1', '10.243.255.255', '10.244.0.0', '10.244.255.255', '10.245.0.0', '203.0.113.9', '198.51.100.1', '127.0.0.1',
    '0.0.0.1', '255.255.255.254', ...localAddresses.filter((a) => !a.includes(':'))];
  const packets: Packet[] = [];
  for (const side of sides) {
    const [dst, port] = side.split(' ');
    for (const src of sources) packets.push({ proto: 'tcp', src, dst: dst!, dport: Number(port) });
  }
  return packets;
}

test('a tracer answering from the class table: every packet asked again answers as a walk does', () => {
  const { rules, localAddresses } = generatedRules(30);
  const context = { localAddresses };
  const keeping = createTracer(rules, context);
  const walking = createTracer(rules, context, { cache: false });
  const check = new KeptWalkCheck(keeping, walking);
  const packets = packetsOf(rules, localAddresses);
  assert.ok(packets.length > 300, `${packets.length} packets`);
  const optsOf = (i: number): TraceOptions => [{}, { seed: i % 37, sampleOnly: true }, { seed: i % 41 }, { seed: i % 13, mark: 0x4000 }][i % 4]!;
  // First pass: walks added one after another (each changes its trie: new boundaries, new draws).
  packets.forEach((p, i) => check.compare(p, optsOf(i)));
  const first = keeping.cacheStats();
  // Second pass, in reverse: answers read from the table, every region made after the last change.
  for (let i = packets.length - 1; i >= 0; i--) check.compare(packets[i]!, optsOf(i));
  // And once more with other seeds, so that flattened draws lead to answers not walked yet.
  packets.forEach((p, i) => check.compare(p, { seed: (i * 7) % 101, sampleOnly: true }));
  const stats = keeping.cacheStats();
  const secondHits = stats.hits - first.hits;
  assert.ok(secondHits > (stats.lookups - first.lookups) * 0.7, `later passes mostly answered from kept walks: ${JSON.stringify({ first, stats })}`);
});

test('answers read from the class table give way when the affinity state changes, and come back after', () => {
  const rules = parseIptablesSave(OVERALL);
  const walking = createTracer(rules, { localAddresses: NODE_IPS }, { cache: false });
  const keeping = createTracer(rules, { localAddresses: NODE_IPS });
  const check = new KeptWalkCheck(keeping, walking);
  // svc8 (172.30.0.48:80) has ClientIP affinity: a client in KUBE-SEP-SVC8BBBBBBBBBBBB goes to 10.180.1.8:80.
  const packet: Packet = { proto: 'tcp', src: '10.0.0.77', dst: '172.30.0.48', dport: 80 };
  const inList = { 'KUBE-SEP-SVC8BBBBBBBBBBBB': [{ address: '10.0.0.77', ageSeconds: 5 }] };
  const entry = { ageSeconds: 5, hits: 1 };
  const callerLookup: RecentLookup = {
    find: (list, address) => (list === 'KUBE-SEP-SVC8BBBBBBBBBBBB' && address === '10.0.0.77' ? entry : undefined),
    entries: (list) => (list === 'KUBE-SEP-SVC8BBBBBBBBBBBB' ? [['10.0.0.77', entry] as const] : []),
  };
  const endpoints = new Set<string>();
  for (let round = 0; round < 3; round++) {
    for (let seed = 0; seed < 40; seed++) {
      check.compare(packet, { seed, sampleOnly: true });
      check.compare(packet, {});
      endpoints.add(keeping.trace(packet, { seed, sampleOnly: true }).endpoints[0]!);
    }
    for (let seed = 0; seed < 40; seed++) {
      check.compare(packet, { seed, sampleOnly: true, recent: inList });
      assert.deepEqual(keeping.trace(packet, { seed, sampleOnly: true, recent: inList }).endpoints, ['10.180.1.8:80'], `seed ${seed}, client in the list`);
      assert.equal(keeping.sample(packet, seed, { recentLookup: callerLookup }).endpoint, '10.180.1.8:80', `seed ${seed}, the caller's lists`);
    }
  }
  assert.ok(endpoints.size > 1, `without affinity the seeds spread over endpoints: ${[...endpoints].join(' ')}`);
  // The tracer's own affinity state: the same client is in the list for every packet.
  const pinned = createTracer(rules, { localAddresses: NODE_IPS, recent: inList });
  const pinnedWalking = createTracer(rules, { localAddresses: NODE_IPS, recent: inList }, { cache: false });
  const pinnedCheck = new KeptWalkCheck(pinned, pinnedWalking);
  for (let round = 0; round < 2; round++) {
    for (let seed = 0; seed < 40; seed++) {
      pinnedCheck.compare(packet, { seed, sampleOnly: true });
      pinnedCheck.compare({ ...packet, src: '10.0.0.78' }, { seed, sampleOnly: true });
      assert.deepEqual(pinned.trace(packet, { seed, sampleOnly: true }).endpoints, ['10.180.1.8:80'], `seed ${seed}, the context's list`);
    }
  }
});

test('two tracers of two rulesets, asked in turn, each answer for their own rules', () => {
  const before = generatedRules(12);
  const after = generatedRules(13);
  const tracers = [before, after].map(({ rules, localAddresses }) => {
    const keeping = createTracer(rules, { localAddresses });
    const walking = createTracer(rules, { localAddresses }, { cache: false });
    return { check: new KeptWalkCheck(keeping, walking), packets: packetsOf(rules, localAddresses) };
  });
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < Math.max(tracers[0]!.packets.length, tracers[1]!.packets.length); i++) {
      for (const { check, packets } of tracers) {
        const p = packets[i % packets.length]!;
        check.compare(p, { seed: i % 11, sampleOnly: true });
        check.compare(p, {});
      }
    }
  }
  assert.ok(tracers.every((t) => t.check.compared > 100));
});

