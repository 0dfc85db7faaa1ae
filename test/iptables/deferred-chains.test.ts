/**
 * Deferred KUBE-SVC/KUBE-SVL and KUBE-SEP chains (src/iptables/deferred-chains.ts): the text a
 * chain writes before its rules are made is the text of the rules it then makes, its rule
 * count is theirs, and the rules are those the text sinks are handed (one writer for both).
 * Cases cover comments and large-cluster mode, session affinity, the masquerade rule, zero to
 * three endpoints, and a comment with a quote (written through the general quoting path).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileIptablesRules } from '../../src/iptables/compile.js';
import {
  DeferredChain, EndpointArgsScratch, EndpointChain, type EndpointChainShape, PolicyChain, type PolicyChainPlan,
  endpointChainArgs, makeDeferredRules, ruleCountOf, writeServiceToEndpointRules,
} from '../../src/iptables/deferred-chains.js';
import { ProbabilityCache } from '../../src/iptables/probability.js';
import { countRules, renderIptablesSave, renderRule } from '../../src/iptables/render.js';
import { TextBuffer } from '../../src/iptables/save-text.js';
import type { EndpointInfo } from '../../src/model/proxy-info.js';
import type { Chain } from '../../src/iptables/types.js';
import { fixtureState, overallServices } from '../helpers/cluster-builders.js';

function endpoint(ip: string, port: number): EndpointInfo {
  return { ip, port, endpoint: `${ip}:${port}`, isLocal: false, ready: true, serving: true, terminating: false, zoneHints: new Set(), nodeHints: new Set() };
}

const ENDPOINTS = [endpoint('10.180.0.1', 80), endpoint('10.180.0.2', 80), endpoint('10.180.1.3', 8080)];
const MASQUERADE = ['-m', 'comment', '--comment', 'ns1/svc1:p80 cluster IP', '-m', 'tcp', '-p', 'tcp', '-d', '172.30.0.41', '--dport', '80', '!', '-s', '10.0.0.0/8', '-j', 'KUBE-MARK-MASQ'];

interface Case {
  readonly name: string;
  readonly spn?: string;
  readonly endpoints: number;
  readonly large: boolean;
  readonly affinitySeconds: string;
  readonly masquerade: boolean;
}

const CASES: readonly Case[] = [
  { name: 'three endpoints, comments', endpoints: 3, large: false, affinitySeconds: '', masquerade: false },
  { name: 'three endpoints, comments, masquerade rule first', endpoints: 3, large: false, affinitySeconds: '', masquerade: true },
  { name: 'three endpoints, large-cluster mode', endpoints: 3, large: true, affinitySeconds: '', masquerade: false },
  { name: 'three endpoints, session affinity', endpoints: 3, large: false, affinitySeconds: '10800', masquerade: true },
  { name: 'three endpoints, session affinity, large-cluster mode', endpoints: 3, large: true, affinitySeconds: '10800', masquerade: false },
  { name: 'one endpoint', endpoints: 1, large: false, affinitySeconds: '', masquerade: false },
  { name: 'no endpoint, masquerade rule only', endpoints: 0, large: false, affinitySeconds: '', masquerade: true },
  { name: 'a comment with a quote and a backslash', spn: 'ns1/we"ird\\:p80', endpoints: 2, large: false, affinitySeconds: '', masquerade: false },
];

function planOf(c: Case): PolicyChainPlan {
  const endpoints = ENDPOINTS.slice(0, c.endpoints);
  return {
    masquerade: c.masquerade ? MASQUERADE : undefined,
    spn: c.spn ?? 'ns1/svc1:p80',
    endpoints,
    endpointChains: endpoints.map((_, i) => `KUBE-SEP-ENDPOINT${i}AAAAAAAAAA`),
    affinitySeconds: c.affinitySeconds,
    large: c.large,
    probabilities: new ProbabilityCache(),
  };
}

function shapeOf(c: Case): EndpointChainShape {
  return { spn: c.spn ?? 'ns1/svc1:p80', protocol: 'tcp', affinity: c.affinitySeconds !== '', large: c.large };
}

/** The chain's rules as renderRule writes them, one line each. */
function linesOf(chain: Chain): string {
  return chain.rules.map((rule) => `${renderRule(rule)}\n`).join('');
}

function textOf(write: (out: TextBuffer) => void): string {
  const out = new TextBuffer(64);
  write(out);
  return out.toString();
}

/** What a text sink is handed for the policy chain, each array copied as it comes. */
function handedToTextSink(plan: PolicyChainPlan): string[][] {
  const got: string[][] = plan.masquerade ? [[...plan.masquerade]] : [];
  writeServiceToEndpointRules(plan, { copiesArgs: true, rule: (args) => got.push([...args]) });
  return got;
}

for (const c of CASES) {
  test(`policy chain, ${c.name}: text before and after its rules are made, count, rules as a text sink gets them`, () => {
    const plan = planOf(c);
    const unread = new PolicyChain('KUBE-SVC-XPGD46QRK7WJZT7O', plan);
    const count = ruleCountOf(unread);
    const before = textOf((out) => unread.writeRules(out));
    const read = new PolicyChain('KUBE-SVC-XPGD46QRK7WJZT7O', plan);
    assert.equal(read.rules.length, count, 'rule count before the rules are made');
    assert.equal(before, linesOf(read), `text written from the plan:\n${before}`);
    assert.equal(textOf((out) => read.writeRules(out)), before, 'text once the rules are made');
    assert.deepEqual(read.rules.map((rule) => rule.args), handedToTextSink(plan));
    assert.ok(read.rules.every((rule) => rule.chain === read.name));
    const estimate = new PolicyChain(read.name, plan).estimatedTextBytes();
    assert.ok(Math.abs(estimate - before.length) <= before.length * 0.25 + 64, `estimated ${estimate} bytes for ${before.length}`);
  });

  test(`endpoint chain, ${c.name}: text before and after its rules are made, count, rules as a text sink gets them`, () => {
    const shape = shapeOf(c);
    const scratch = new EndpointArgsScratch();
    for (const [i, ep] of ENDPOINTS.entries()) {
      const name = `KUBE-SEP-ENDPOINT${i}AAAAAAAAAA`;
      const unread = new EndpointChain(name, shape, ep.ip, ep.endpoint);
      assert.equal(ruleCountOf(unread), 2);
      const before = textOf((out) => unread.writeRules(out));
      const read = new EndpointChain(name, shape, ep.ip, ep.endpoint);
      assert.equal(before, linesOf(read), `text written from the endpoint:\n${before}`);
      assert.equal(textOf((out) => read.writeRules(out)), before);
      assert.deepEqual(read.rules.map((rule) => rule.args), endpointChainArgs(shape, ep.ip, ep.endpoint, name));
      // The scratch pair, filled anew for each endpoint of the port, holds the same arguments.
      assert.deepEqual(scratch.fill(shape, ep.ip, ep.endpoint, name).map((args) => [...args]), endpointChainArgs(shape, ep.ip, ep.endpoint, name));
      const estimate = new EndpointChain(name, shape, ep.ip, ep.endpoint).estimatedTextBytes();
      assert.ok(Math.abs(estimate - before.length) <= before.length * 0.25 + 32, `estimated ${estimate} bytes for ${before.length}`);
    }
  });
}

test('a made chain is an ordinary one: its rule list is kept and may be changed', () => {
  const chain = new PolicyChain('KUBE-SVC-XPGD46QRK7WJZT7O', planOf(CASES[0]!));
  const rules = chain.rules;
  assert.equal(chain.rules, rules, 'the same list on every read');
  rules.length = 1;
  assert.equal(ruleCountOf(chain), 1);
  assert.equal(textOf((out) => chain.writeRules(out)), linesOf(chain));
});

test('a compiled ruleset renders and counts the same before and after its deferred chains make their rules', () => {
  const ruleset = compileIptablesRules(fixtureState(overallServices()));
  const deferred = [...ruleset.tables.get('nat')!.chains.values()].filter((chain) => chain instanceof DeferredChain).length;
  assert.ok(deferred > 0, 'the fixture has KUBE-SVC and KUBE-SEP chains');
  const text = renderIptablesSave(ruleset);
  const count = countRules(ruleset);
  makeDeferredRules(ruleset);
  assert.equal(renderIptablesSave(ruleset), text);
  assert.equal(countRules(ruleset), count);
});
