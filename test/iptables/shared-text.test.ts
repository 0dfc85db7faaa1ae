/**
 * Service ports' text shared across a cluster's nodes (shared-text.ts): compileIptablesSave with
 * shared work gives every node exactly the text it gets alone, whatever was compiled before
 * through the same shared work (text or Ruleset, all ports or a few), and the text sink lays
 * out text adopted from other compiles as it lays out the same chains written to it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { IptablesSharedWork, compileIptablesRules, compileIptablesSave, compileIptablesSaveEach } from '../../src/iptables/compile.js';
import type { IptablesCompileOptions } from '../../src/iptables/compile.js';
import { renderIptablesSave } from '../../src/iptables/render.js';
import { TextBuffer } from '../../src/iptables/save-text.js';
import { IptablesTextSink, type TextPiece } from '../../src/iptables/text-sink.js';
import type { Cluster } from '../../src/model/types.js';
import { iptablesDriver } from '../../src/node/modes/iptables.js';
import type { ProxierState } from '../../src/tracker/types.js';
import { firstDifference } from '../helpers/first-difference.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

function assertSameText(got: string, want: string, what: string): void {
  if (got !== want) assert.fail(`${what}: differs from the node compiled alone:\n${firstDifference(got, want, ['shared', 'alone'])}`);
}

/** Every node's states of every family, in node order. */
function statesOfEveryNode(cluster: Cluster): { node: string; state: ProxierState }[] {
  const view = new ClusterView(cluster);
  return cluster.nodes.flatMap((n) => view.statesOf(view.resolve(n.name)).map((state) => ({ node: n.name, state })));
}

const small = generatedCluster({ nodes: 10, pods: 300, services: 80, seed: 21 });
const large = generatedCluster({ nodes: 16, pods: 1600, services: 60, seed: 22 });
const CLUSTERS: readonly { name: string; cluster: Cluster; largeClusterMode: boolean }[] = [
  { name: 'generated, under 1000 endpoints (comments on every endpoint rule)', cluster: small, largeClusterMode: false },
  { name: 'generated, over 1000 endpoints (large-cluster mode)', cluster: large, largeClusterMode: true },
];

/** What is compiled through one shared work, node after node: the kinds in turn. */
const ORDERS: readonly { name: string; steps: readonly ('text' | 'rules' | 'some ports')[] }[] = [
  { name: 'text only', steps: ['text'] },
  { name: 'a Ruleset, then text', steps: ['rules', 'text'] },
  { name: 'text, then a Ruleset', steps: ['text', 'rules'] },
  { name: 'a few ports, then all of them', steps: ['some ports', 'text'] },
];

/** A third of the ports, by name: what a trace compiles. */
const someOptions: IptablesCompileOptions = { onlyServicePorts: (info) => info.spn.length % 3 === 0 };

for (const c of CLUSTERS) {
  test(`${c.name}: the proxier's endpoint count is on the intended side of the large-cluster threshold`, () => {
    const counts = statesOfEveryNode(c.cluster).map(({ state }) => state.endpointCount);
    // A dual-stack cluster's IPv6 proxier has fewer endpoints: the largest count decides.
    assert.equal(Math.max(...counts) > 1000, c.largeClusterMode, `endpoint counts ${counts.join(', ')}`);
  });
  test(`${c.name}: some node has its own view of a port (a local endpoint under a Local policy), written with names hashed again`, () => {
    // Text fragments keep no KUBE-SEP names: such a port's policy chains name their endpoints anew.
    const own = statesOfEveryNode(c.cluster).flatMap(({ node, state }) =>
      state.servicePorts.filter((sp) => (sp.info.externalPolicyLocal || sp.info.internalPolicyLocal) && sp.endpoints.some((ep) => ep.isLocal)).map((sp) => `${node} ${sp.info.spn}`));
    assert.ok(own.length > 0, 'no node sees a port with a local endpoint under a Local policy');
  });
  for (const order of ORDERS) {
    test(`${c.name}: every node's text through shared work equals its text alone (${order.name})`, () => {
      const everyNode = statesOfEveryNode(c.cluster);
      const shared = new IptablesSharedWork();
      for (const { node, state } of everyNode) {
        for (const step of order.steps) {
          const what = `node ${node} IPv${state.family}, ${step}`;
          if (step === 'rules') assertSameText(renderIptablesSave(compileIptablesRules(state, { shared })), compileIptablesSave(state), what);
          else if (step === 'text') assertSameText(compileIptablesSave(state, { shared }), compileIptablesSave(state), what);
          else assertSameText(compileIptablesSave(state, { ...someOptions, shared }), compileIptablesSave(state, someOptions), what);
        }
      }
    });
  }
}

test('compileIptablesSaveEach is each state\'s text after its header line, in one string', () => {
  const states = statesOfEveryNode(small).slice(0, 3).map((s) => s.state);
  const header = (state: ProxierState): string => `# IPv${state.family} ${state.servicePorts.length}\n`;
  for (const shared of [undefined, new IptablesSharedWork()]) {
    const options: IptablesCompileOptions = shared ? { shared } : {};
    const what = shared ? 'with shared work' : 'alone';
    assertSameText(compileIptablesSaveEach(states, options, header), states.map((s) => header(s) + compileIptablesSave(s)).join(''), `with headers, ${what}`);
    assertSameText(compileIptablesSaveEach(states, options), states.map((s) => compileIptablesSave(s)).join(''), `without headers, ${what}`);
  }
  assert.equal(compileIptablesSaveEach([]), '');
});

test('a node rendered after its Ruleset was read renders from the Ruleset, and the text is the same', () => {
  const view = new ClusterView(small);
  for (const n of small.nodes.slice(0, 4)) {
    const node = view.resolve(n.name);
    const textFirst = view.compile('iptables', node);
    const text = iptablesDriver.render(textFirst as Parameters<typeof iptablesDriver.render>[0], 'kube-proxy');
    const rulesFirst = view.compile('iptables', node) as Parameters<typeof iptablesDriver.render>[0];
    assert.ok(rulesFirst.rulesets.length > 0, `node ${n.name} has no ruleset`);
    assertSameText(iptablesDriver.render(rulesFirst, 'kube-proxy'), text, `node ${n.name} rendered from its Ruleset`);
  }
});

/** Text written by another compile: `lines`, as pieces of one buffer (one piece per line). */
function pieces(lines: readonly string[]): TextPiece[] {
  const from = new TextBuffer(16);
  return lines.map((line) => {
    const start = from.length;
    from.write(`${line}\n`);
    return { from, start, end: from.length };
  });
}

test('text adopted by the text sink is laid out as the same chains declared and filled there', () => {
  // Fixed chains A and B; then a port's chains C and D (adopted or written); then rules for A
  // and B again (another port); then chain E written after the adopted ones.
  const write = (adopt: boolean): string => {
    const sink = new IptablesTextSink(['filter', 'nat'], 16);
    const a = sink.declareChain('nat', 'A');
    const b = sink.declareChain('nat', 'B');
    const f = sink.declareChain('filter', 'F');
    sink.appendRule(b, ['-j', 'b1']);
    if (adopt) {
      const rules = pieces(['-A A -j a1', '-A F -j f1']);
      sink.appendRuleText(a, rules[0]!.from, rules[0]!.start, rules[0]!.end);
      sink.appendRuleText(f, rules[1]!.from, rules[1]!.start, rules[1]!.end);
      sink.adoptText('nat', pieces([':C - [0:0]', ':D - [0:0]']), pieces(['-A C -j c1', '-A C -j c2', '-A D -j d1']));
    } else {
      sink.appendRule(a, ['-j', 'a1']);
      sink.appendRule(f, ['-j', 'f1']);
      const c = sink.declareChain('nat', 'C');
      sink.appendRule(c, ['-j', 'c1']);
      sink.appendRule(c, ['-j', 'c2']);
      sink.appendRule(sink.declareChain('nat', 'D'), ['-j', 'd1']);
    }
    sink.appendRule(a, ['-j', 'a2']);
    sink.appendRule(b, ['-j', 'b2']);
    sink.appendRule(sink.declareChain('nat', 'E'), ['-j', 'e1']);
    return sink.finish();
  };
  const want = '*filter\n:F - [0:0]\n-A F -j f1\nCOMMIT\n*nat\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n:D - [0:0]\n:E - [0:0]\n'
    + '-A A -j a1\n-A A -j a2\n-A B -j b1\n-A B -j b2\n-A C -j c1\n-A C -j c2\n-A D -j d1\n-A E -j e1\nCOMMIT\n';
  assert.equal(write(false), want, 'the chains written to the sink');
  assert.equal(write(true), want, 'the same chains adopted as text');
});
