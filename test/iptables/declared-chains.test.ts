/**
 * A Ruleset table's chains kept as a list until its Map is read (src/iptables/declared-chains.ts),
 * a service port's KUBE-SVC/SVL/SEP chains as one run (src/iptables/service-port-chains.ts): the
 * text, rule count and chain count read from the list are those of the Map made from it, the Map
 * holds every chain in declaration order, a chain declared twice is found, and a table compares
 * as one made with a Map.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import { chainCountOf, createTable, declareRunInto, pendingChainsOf } from '../../src/iptables/declared-chains.js';
import type { EndpointChainShape, PolicyChainPlan } from '../../src/iptables/deferred-chains.js';
import { ProbabilityCache } from '../../src/iptables/probability.js';
import { countRules, renderIptablesSave, renderRule } from '../../src/iptables/render.js';
import { appendRule, declareChain } from '../../src/iptables/ruleset-builder.js';
import { ServicePortChains } from '../../src/iptables/service-port-chains.js';
import type { Chain, Ruleset, Table } from '../../src/iptables/types.js';
import type { EndpointInfo } from '../../src/model/proxy-info.js';
import { fixtureState, generateClusterManifests, overallServices } from '../helpers/cluster-builders.js';

function endpoint(ip: string, port: number): EndpointInfo {
  return { ip, port, endpoint: `${ip}:${port}`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: new Set(), nodeHints: new Set() };
}

const ENDPOINTS = [endpoint('10.180.0.1', 80), endpoint('10.180.0.2', 80), endpoint('10.180.1.3', 8080)];
/** KUBE-SEP chain names of the endpoints of the port whose chains' hash is `hash`. */
const sepsOf = (hash: string): string[] => ENDPOINTS.map((_, i) => `KUBE-SEP-${i}${hash.slice(1)}`);
/** One cache for every plan, so that two builds of a case compare equal (it fills as it is read). */
const PROBABILITIES = new ProbabilityCache();
const MASQUERADE = ['-m', 'comment', '--comment', 'ns1/svc1:p80 cluster IP', '-m', 'tcp', '-p', 'tcp', '-d', '172.30.0.41', '--dport', '80', '!', '-s', '10.0.0.0/8', '-j', 'KUBE-MARK-MASQ'];

interface PortCase {
  readonly spn?: string;
  readonly large: boolean;
  readonly affinitySeconds?: string;
  /** Endpoints of the cluster policy chain (undefined: no KUBE-SVC), of the local one (KUBE-SVL). */
  readonly cluster?: number;
  readonly local?: number;
  readonly masquerade?: boolean;
  /** Reachable endpoints (KUBE-SEP chains). */
  readonly reachable: number;
}

/** `odd`: the endpoint at that position has an address that is not ASCII (as no real one has). */
function portChains(c: PortCase, hash: string, odd?: number): ServicePortChains {
  const spn = c.spn ?? 'ns1/svc1:p80';
  const endpoints = ENDPOINTS.map((ep, i) => (i === odd ? endpoint('10.180.0.é', 81) : ep));
  const seps = sepsOf(hash);
  const plan = (n: number, masquerade: boolean): PolicyChainPlan => ({
    masquerade: masquerade ? MASQUERADE : undefined,
    spn,
    endpoints: endpoints.slice(0, n),
    endpointChains: seps.slice(0, n),
    affinitySeconds: c.affinitySeconds ?? '',
    large: c.large,
    probabilities: PROBABILITIES,
  });
  const policies = [];
  if (c.cluster !== undefined) policies.push({ name: `KUBE-SVC-${hash}`, plan: plan(c.cluster, c.masquerade === true) });
  if (c.local !== undefined) policies.push({ name: `KUBE-SVL-${hash}`, plan: plan(c.local, false) });
  const shape: EndpointChainShape = { spn, protocol: 'tcp', affinity: (c.affinitySeconds ?? '') !== '', large: c.large };
  return new ServicePortChains(policies, shape, endpoints.slice(0, c.reachable), seps.slice(0, c.reachable));
}

/** What is declared into the nat table: a plain chain with rules, or a service port's run. */
type Step = { readonly chain: string; readonly rules: readonly (readonly string[])[] } | { readonly port: PortCase; readonly hash: string; readonly odd?: number };

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
}

const SERVICES = { chain: 'KUBE-SERVICES', rules: [['-m', 'comment', '--comment', 'ns1/svc1:p80 cluster IP', '-d', '172.30.0.41', '-j', 'KUBE-SVC-AAAAAAAAAAAAAAAA']] };

const CASES: readonly Case[] = [
  { name: 'plain chains only', steps: [SERVICES, { chain: 'KUBE-MARK-MASQ', rules: [['-j', 'MARK', '--or-mark', '0x4000']] }, { chain: 'KUBE-EMPTY', rules: [] }] },
  { name: 'a port with comments between plain chains', steps: [SERVICES, { port: { large: false, cluster: 3, reachable: 3, masquerade: true }, hash: 'AAAAAAAAAAAAAAAA' }, { chain: 'KUBE-EXT-AAAAAAAAAAAAAAAA', rules: [['-j', 'KUBE-SVC-AAAAAAAAAAAAAAAA']] }] },
  { name: 'large-cluster mode, cluster and local policy chains', steps: [SERVICES, { port: { large: true, cluster: 3, local: 1, reachable: 3 }, hash: 'BBBBBBBBBBBBBBBB' }] },
  { name: 'session affinity', steps: [{ port: { large: false, affinitySeconds: '10800', cluster: 2, reachable: 2 }, hash: 'CCCCCCCCCCCCCCCC' }, SERVICES] },
  { name: 'a comment with a quote (general quoting path)', steps: [{ port: { spn: 'ns1/we"ird:p80', large: false, cluster: 2, reachable: 2 }, hash: 'DDDDDDDDDDDDDDDD' }] },
  { name: 'a port without endpoints: a local policy chain with no rules, no KUBE-SEP', steps: [{ port: { large: false, local: 0, reachable: 0 }, hash: 'EEEEEEEEEEEEEEEE' }] },
  { name: 'large-cluster mode, a KUBE-SEP name that needs quotes: those lines through the general writer', steps: [{ port: { large: true, cluster: 3, reachable: 3, masquerade: true }, hash: 'ODD NAME\'QUOTED' }] },
  { name: 'comments, an endpoint that is not ASCII: those lines through the general writer', steps: [{ port: { large: false, cluster: 3, reachable: 3 }, hash: 'JJJJJJJJJJJJJJJJ', odd: 1 }] },
  { name: 'two ports one after the other', steps: [{ port: { large: true, cluster: 2, reachable: 2 }, hash: 'FFFFFFFFFFFFFFFF' }, { port: { large: true, cluster: 1, reachable: 1 }, hash: 'GGGGGGGGGGGGGGGG' }] },
];

/** A ruleset with an empty filter table and the case's nat table, and the names declared in order. */
function build(c: Case): { ruleset: Ruleset; nat: Table; names: string[] } {
  const filter = createTable('filter');
  const nat = createTable('nat');
  const names: string[] = [];
  for (const step of c.steps) {
    if ('chain' in step) {
      const chain = declareChain(nat, step.chain);
      for (const args of step.rules) appendRule(chain, args);
      names.push(step.chain);
    } else {
      const run = portChains(step.port, step.hash, step.odd);
      declareRunInto(nat, run);
      names.push(...run.policies.map((p) => p.name), ...run.endpointChains);
    }
  }
  return { ruleset: { family: 4, tables: new Map([['filter', filter], ['nat', nat]]) }, nat, names };
}

/** The text of a table rendered line by line from its Map, as renderTable's reader would see it. */
function textFromMap(ruleset: Ruleset): string {
  let text = '';
  for (const table of ruleset.tables.values()) {
    text += `*${table.name}\n`;
    for (const chain of table.chains.values()) text += `:${chain.name} - [0:0]\n`;
    for (const chain of table.chains.values()) for (const rule of chain.rules) text += `${renderRule(rule)}\n`;
    text += 'COMMIT\n';
  }
  return text;
}

for (const c of CASES) {
  test(`declared chains, ${c.name}: text, rule and chain counts from the list are the Map's`, () => {
    const { ruleset, nat, names } = build(c);
    assert.ok(pendingChainsOf(nat) !== undefined, 'the chains are a list before the Map is read');
    const text = renderIptablesSave(ruleset);
    const rules = countRules(ruleset);
    const chains = chainCountOf(nat);
    assert.ok(pendingChainsOf(nat) !== undefined, 'rendering and counting do not make the Map');
    assert.deepEqual([...nat.chains.keys()], names, 'the Map holds every chain in declaration order');
    assert.equal(pendingChainsOf(nat), undefined);
    assert.equal(chains, nat.chains.size);
    assert.equal(text, textFromMap(ruleset), `text written from the list:\n${text}`);
    assert.equal(renderIptablesSave(ruleset), text, 'the same text rendered from the Map');
    assert.equal(countRules(ruleset), rules);
    const fresh = build(c).ruleset;
    assert.deepEqual(fresh.tables.get('nat'), { name: 'nat', chains: new Map<string, Chain>(nat.chains) }, 'a table compares as one made with its Map');
  });
}

test('a chain declared after the Map is read goes into the Map, after the others', () => {
  const { nat, names } = build(CASES[1]!);
  assert.equal(nat.chains.size, names.length);
  declareChain(nat, 'KUBE-LATE');
  declareRunInto(nat, portChains({ large: true, cluster: 1, reachable: 1 }, 'HHHHHHHHHHHHHHHH'));
  assert.deepEqual([...nat.chains.keys()], [...names, 'KUBE-LATE', 'KUBE-SVC-HHHHHHHHHHHHHHHH', sepsOf('HHHHHHHHHHHHHHHH')[0]]);
});

const TWICE: readonly { name: string; declare: (nat: Table) => void }[] = [
  { name: 'a plain chain', declare: (nat) => { declareChain(nat, 'KUBE-SERVICES'); declareChain(nat, 'KUBE-SERVICES'); } },
  { name: 'a chain of a run and a plain chain', declare: (nat) => { declareRunInto(nat, portChains({ large: true, cluster: 1, reachable: 1 }, 'IIIIIIIIIIIIIIII')); declareChain(nat, sepsOf('IIIIIIIIIIIIIIII')[0]!); } },
];

for (const c of TWICE) {
  test(`${c.name} declared twice is found when the Map is made`, () => {
    const nat = createTable('nat');
    c.declare(nat);
    assert.throws(() => nat.chains, /declared twice in table nat/);
  });
}

test('a compiled ruleset: the same text, counts and chains whether the Map is read before rendering or not', () => {
  const states = [
    fixtureState(overallServices()),
    // More than 1000 endpoints: large-cluster mode, no comments on the endpoint rules.
    fixtureState(generateClusterManifests({ seed: 7, services: 120, endpointsPerService: 10, nodes: 4 })),
  ];
  for (const state of states) {
    const listed = compileIptablesRules(state);
    const mapped = compileIptablesRules(state);
    for (const table of mapped.tables.values()) assert.ok(table.chains.size > 0);
    const text = renderIptablesSave(listed);
    assert.equal(text, renderIptablesSave(mapped));
    assert.equal(countRules(listed), countRules(mapped));
    assert.equal(chainCountOf(listed.tables.get('nat')!), mapped.tables.get('nat')!.chains.size);
  }
});
