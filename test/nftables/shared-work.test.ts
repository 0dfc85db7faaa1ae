/**
 * The nftables work shared across the nodes of a cluster (src/nftables/shared-work.ts): a port's
 * endpoint chains are kept as one block that other nodes take over whole, and a node whose view
 * of the port reaches other endpoints (a zone's, under topology hints) takes the chains it has in
 * common with the kept blocks one by one. Those chains are the same objects in several nodes'
 * tables, so nothing a later node writes may show up in an earlier node's table, and a node's
 * own difference (its local endpoints, its zone's endpoints) must not reach another node's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterView } from '../../src/cluster/cluster-view.js';
import { compileNode } from '../../src/node/compile-node.js';
import { type CompiledNftables, nftablesDriver } from '../../src/node/modes/nftables.js';
import { sameEndpoints } from '../../src/topology/categorize.js';
import { endpointNames } from '../../src/nftables/names.js';
import { renderNftScript, renderNftScriptInChunks, renderNftScripts, renderNftScriptsInChunks } from '../../src/nftables/render-script.js';
import { firstDifference } from '../helpers/first-difference.js';
import { generatedCluster } from '../helpers/generated-cluster.js';

const cluster = generatedCluster({ nodes: 12, pods: 600, services: 150, seed: 12 });
const nodeNames = cluster.nodes.map((n) => n.name);

function compileAll(): { view: ClusterView; compiled: CompiledNftables[]; texts: string[] } {
  const view = new ClusterView(cluster);
  const compiled: CompiledNftables[] = [];
  const texts: string[] = [];
  for (const name of nodeNames) {
    const c = view.compile('nftables', view.resolve(name)) as CompiledNftables;
    compiled.push(c);
    texts.push(nftablesDriver.render(c, 'kube-proxy'));
  }
  return { view, compiled, texts };
}

test('no node compiled later changes the table of a node compiled before it (shared chains are never written again)', () => {
  const { compiled, texts } = compileAll();
  for (let i = 0; i < compiled.length; i++) {
    const again = nftablesDriver.render(compiled[i]!, 'kube-proxy');
    if (again !== texts[i]) assert.fail(`node ${nodeNames[i]}: its table changed once the nodes after it were compiled:\n${firstDifference(again, texts[i]!)}`);
    const alone = nftablesDriver.render(compileNode(cluster, 'nftables', { node: nodeNames[i]! }) as CompiledNftables, 'kube-proxy');
    if (again !== alone) assert.fail(`node ${nodeNames[i]}: differs from the node compiled alone:\n${firstDifference(again, alone)}`);
  }
});

test('a node whose view of a port reaches other endpoints shares the endpoint chains it has in common with a node before it', () => {
  const { view, compiled } = compileAll();
  let shared = 0;
  let differing = 0;
  const evidence: string[] = [];
  for (let i = 1; i < compiled.length; i++) {
    const before = view.statesOf(view.resolve(nodeNames[i - 1]!));
    const now = view.statesOf(view.resolve(nodeNames[i]!));
    for (let f = 0; f < now.length; f++) {
      const chainsBefore = compiled[i - 1]!.rulesets[f]!.tables[0]!.chains;
      const chainsNow = compiled[i]!.rulesets[f]!.tables[0]!.chains;
      now[f]!.servicePorts.forEach((sp, k) => {
        const was = before[f]!.servicePorts[k];
        if (was === undefined || was.info !== sp.info) return;
        const a = was.categorized.allReachableEndpoints;
        const b = sp.categorized.allReachableEndpoints;
        if (sameEndpoints(a, b)) return;
        const common = b.filter((ep) => a.some((x) => x.endpoint === ep.endpoint));
        if (common.length === 0) return;
        differing++;
        for (const ep of common) {
          const name = endpointNames(sp.info.svcPortName, ep.endpoint).chain;
          const x = chainsBefore.get(name);
          const y = chainsNow.get(name);
          if (x !== undefined && x === y) shared++;
          else evidence.push(`${sp.info.spn} ${ep.endpoint} on ${nodeNames[i - 1]} and ${nodeNames[i]}: ${name} ${x === undefined || y === undefined ? 'missing' : 'written again'}`);
        }
      });
    }
  }
  assert.ok(differing > 0, 'the generated cluster has no port that two consecutive nodes see with different but overlapping endpoints: nothing is checked');
  assert.deepEqual(evidence, [], `endpoint chains written again instead of shared (${shared} shared)`);
});

test('a shared table reads the same whether its endpoint chains\' rule objects are made or not (render, counts, canonical listing)', () => {
  // Endpoint chains of the shared work render from their words until something reads `rules`
  // (src/nftables/endpoint-chain.ts); afterwards from the rule objects. Both must say the same.
  const view = new ClusterView(cluster);
  const size = nftablesDriver.size;
  assert.ok(size !== undefined, 'the nftables driver has no size');
  const evidence: string[] = [];
  for (const name of nodeNames.slice(0, 4)) {
    const lazy = view.compile('nftables', view.resolve(name)) as CompiledNftables;
    const before = { script: nftablesDriver.render(lazy, 'kube-proxy'), size: JSON.stringify(size(lazy)) };
    const alone = compileNode(cluster, 'nftables', { node: name }) as CompiledNftables;
    const made = { script: nftablesDriver.render(alone, 'kube-proxy'), size: JSON.stringify(size(alone)), canonical: nftablesDriver.render(alone, 'canonical') };
    // The canonical listing reads every rule: from here on the shared chains hold rule objects.
    const canonical = nftablesDriver.render(lazy, 'canonical');
    const after = { script: nftablesDriver.render(lazy, 'kube-proxy'), size: JSON.stringify(size(lazy)) };
    if (before.script !== made.script) evidence.push(`${name}: script before the rules were read differs from the node alone:\n${firstDifference(before.script, made.script)}`);
    if (after.script !== made.script) evidence.push(`${name}: script after the rules were read differs from the node alone:\n${firstDifference(after.script, made.script)}`);
    if (canonical !== made.canonical) evidence.push(`${name}: canonical listing differs from the node alone:\n${firstDifference(canonical, made.canonical)}`);
    if (before.size !== made.size || after.size !== made.size) evidence.push(`${name}: size ${before.size} / ${after.size}, alone ${made.size}`);
  }
  assert.deepEqual(evidence, []);
});

test('a node\'s script reads the same whatever nodes were rendered before it (runs kept as spans of a first table, slices, strings of their own)', () => {
  // render-script.ts keeps the runs of the first table rendered with none of them known as
  // spans of its text, takes known runs over as slices (adjacent ones as one), and keeps a later
  // table's new runs as strings of their own. Every order must give each node the text it has
  // compiled alone.
  const alone = new Map<string, string>();
  const aloneText = (name: string): string => {
    let text = alone.get(name);
    if (text === undefined) alone.set(name, (text = nftablesDriver.render(compileNode(cluster, 'nftables', { node: name }) as CompiledNftables, 'kube-proxy')));
    return text;
  };
  const last = nodeNames.length - 1;
  // Pieces are joined into chunks as they grow (the default is more than this cluster's tables
  // have): chunks of every size must give the same text.
  const cases: { name: string; compileFirst: boolean; order: number[]; chunkPieces?: number }[] = [
    { name: 'in order, each rendered as compiled', compileFirst: false, order: nodeNames.map((_, i) => i) },
    { name: 'every node compiled, then rendered backwards', compileFirst: true, order: nodeNames.map((_, i) => last - i) },
    { name: 'one node rendered twice, then the others, then it again', compileFirst: true, order: [3, 3, 0, 1, last, 3] },
    { name: 'every other node, then the rest', compileFirst: false, order: [...nodeNames.keys()].sort((a, b) => (a % 2) - (b % 2) || a - b) },
    { name: 'in order, in chunks of 1 piece', compileFirst: false, order: [0, 1, 2, 0], chunkPieces: 1 },
    { name: 'in order, in chunks of 100 pieces', compileFirst: true, order: [2, 0, 1, 2], chunkPieces: 100 },
    { name: 'in order, in chunks of 4096 pieces', compileFirst: true, order: [0, 1, 2, 0], chunkPieces: 4096 },
  ];
  const evidence: string[] = [];
  for (const c of cases) {
    const view = new ClusterView(cluster);
    const compiled = new Map<number, CompiledNftables>();
    const compile = (i: number): CompiledNftables => {
      let got = compiled.get(i);
      if (got === undefined) compiled.set(i, (got = view.compile('nftables', view.resolve(nodeNames[i]!)) as CompiledNftables));
      return got;
    };
    if (c.compileFirst) for (let i = 0; i < nodeNames.length; i++) compile(i);
    for (const i of c.order) {
      const node = compile(i);
      const got = c.chunkPieces === undefined
        ? nftablesDriver.render(node, 'kube-proxy')
        : node.rulesets.length === 1
          ? renderNftScriptInChunks(node.rulesets[0]!, c.chunkPieces)
          : renderNftScriptsInChunks(node.rulesets.map((ruleset, f) => ({ heading: `# nft -f (IPv${node.states[f]!.family}), node ${node.node.name}\n`, ruleset })), c.chunkPieces);
      const want = aloneText(nodeNames[i]!);
      if (got !== want) evidence.push(`${c.name}: node ${nodeNames[i]}:\n${firstDifference(got, want)}`);
    }
  }
  assert.deepEqual(evidence, []);
});

test('a script of several rulesets is each heading followed by its ruleset\'s script, whichever was rendered first', () => {
  // renderNftScripts joins every table of its parts once, and the runs of the first tables
  // rendered are kept as spans of that one text (the second family's at an offset): the text
  // must be the parts rendered one by one, and a later node taking those spans over must read
  // what it reads compiled alone.
  const byParts = (node: CompiledNftables, headed: boolean) => node.rulesets.map((ruleset, f) => ({
    heading: headed ? `# nft -f (IPv${node.states[f]!.family}), node ${node.node.name}\n` : '',
    ruleset,
  }));
  const oneByOne = (node: CompiledNftables, headed: boolean): string =>
    byParts(node, headed).map((part) => part.heading + renderNftScript(part.ruleset)).join('');
  const cases: { name: string; first: 'joined' | 'one by one'; headed: boolean; order: number[]; chunkPieces?: number; ipv6First?: true }[] = [
    { name: 'joined first, with headings', first: 'joined', headed: true, order: [0, 1, 2] },
    { name: 'joined first, without headings', first: 'joined', headed: false, order: [1, 0, 2] },
    { name: 'one by one first, then joined', first: 'one by one', headed: true, order: [2, 1, 0] },
    { name: 'joined first, in chunks of 7 pieces', first: 'joined', headed: true, order: [0, 2, 1], chunkPieces: 7 },
    { name: 'the IPv6 ruleset before the IPv4 one', first: 'joined', headed: true, order: [0, 1], ipv6First: true },
  ];
  const evidence: string[] = [];
  for (const c of cases) {
    const view = new ClusterView(cluster);
    const nodes = c.order.map((i) => view.compile('nftables', view.resolve(nodeNames[i]!)) as CompiledNftables);
    nodes.forEach((node, k) => {
      const parts = c.ipv6First ? byParts(node, c.headed).reverse() : byParts(node, c.headed);
      const joined = (): string => (c.chunkPieces === undefined ? renderNftScripts(parts) : renderNftScriptsInChunks(parts, c.chunkPieces));
      const separate = (): string => parts.map((part) => part.heading + renderNftScript(part.ruleset)).join('');
      // The first node is rendered the case's way first (its runs kept from that text), then the other way.
      const [a, b] = k === 0 && c.first === 'one by one' ? [separate(), joined()] : [joined(), separate()];
      if (a !== b) evidence.push(`${c.name}: node ${node.node.name}:\n${firstDifference(a, b)}`);
      if (!c.ipv6First) {
        const alone = oneByOne(compileNode(cluster, 'nftables', { node: node.node.name }) as CompiledNftables, c.headed);
        if (a !== alone) evidence.push(`${c.name}: node ${node.node.name} differs from the node compiled alone:\n${firstDifference(a, alone)}`);
      }
    });
  }
  assert.deepEqual(evidence, []);
});
