/**
 * The iptables-save text written straight into a buffer (save-text.ts, text-sink.ts) is the
 * text of the Ruleset path, byte for byte: compileIptablesSave against every golden file and
 * against renderIptablesSave(compileIptablesRules(...)) under each compile option; the buffer
 * renderer against the line-joining one (renderTable) on tokens that need quotes or are not
 * ASCII; the text sink against the Ruleset sink on chains written out of declaration order.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type IptablesCompileOptions, compileIptablesRules, compileIptablesSave } from '../../src/iptables/compile.js';
import { quoteToken, renderIptablesSave, renderTable } from '../../src/iptables/render.js';
import { type RuleSink, RulesetSink } from '../../src/iptables/rule-sink.js';
import { createRuleset } from '../../src/iptables/ruleset-builder.js';
import { TextBuffer, giveBackTextBuffer, takeTextBuffer, writeHeapText } from '../../src/iptables/save-text.js';
import { IptablesTextSink } from '../../src/iptables/text-sink.js';
import type { Ruleset, TableName } from '../../src/iptables/types.js';
import { generateClusterManifests, clusterOf, goldenFile, goldenState, loadRulesClusters } from '../helpers/cluster-builders.js';
import { buildProxierState, resolveNode } from '../../src/tracker/proxier-state.js';

/** The first line where two texts differ, for the failure message. */
function firstDifference(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `line ${i + 1}:\n- ${a[i] ?? '(end)'}\n+ ${b[i] ?? '(end)'}`;
}

function assertSameText(got: string, want: string, what: string): void {
  if (got !== want) assert.fail(`${what} differs (${got.length} bytes, want ${want.length}) at ${firstDifference(want, got)}`);
}

/** The old renderer: lines joined per table (what renderIptablesSave did before it wrote into a buffer). */
function renderByLines(ruleset: Ruleset): string {
  return [...ruleset.tables.values()].map((table) => renderTable(table)).join('');
}

const clusters = await loadRulesClusters();
const OPTION_VARIANTS: readonly IptablesCompileOptions[] = [{}, { nfacct: false }, { randomFully: true }, { nfacct: false, randomFully: true }];

for (const rc of clusters) {
  for (const family of rc.families) {
    test(`${rc.name} IPv${family}: the direct text is the golden file and the Ruleset's text under every option`, () => {
      const state = goldenState(rc.cluster, family);
      assertSameText(compileIptablesSave(state), readFileSync(goldenFile(rc.dir, family), 'utf8'), `${rc.name} IPv${family} compileIptablesSave`);
      for (const options of OPTION_VARIANTS) {
        const ruleset = compileIptablesRules(state, options);
        const want = renderByLines(ruleset);
        assertSameText(renderIptablesSave(ruleset), want, `${rc.name} IPv${family} renderIptablesSave ${JSON.stringify(options)}`);
        assertSameText(compileIptablesSave(state, options), want, `${rc.name} IPv${family} compileIptablesSave ${JSON.stringify(options)}`);
      }
    });
  }
}

test('a generated cluster of 300 services (large-cluster mode, every service type): the direct text is the Ruleset text', () => {
  const cluster = clusterOf(generateClusterManifests({ seed: 7, services: 300, endpointsPerService: 5, nodes: 4 }));
  const state = buildProxierState(cluster, resolveNode(cluster), 4);
  const ruleset = compileIptablesRules(state);
  const want = renderByLines(ruleset);
  assert.ok(want.length > 100_000, `the generated text is only ${want.length} bytes`);
  assertSameText(renderIptablesSave(ruleset), want, 'renderIptablesSave');
  assertSameText(compileIptablesSave(state), want, 'compileIptablesSave');
});

test('buffers kept between compiles leave nothing behind: large, small, then large again give the same texts', () => {
  const states = [300, 3, 300].map((services) => {
    const cluster = clusterOf(generateClusterManifests({ seed: 11, services, endpointsPerService: 4, nodes: 3 }));
    return buildProxierState(cluster, resolveNode(cluster), 4);
  });
  const texts = states.map((state) => compileIptablesSave(state));
  states.forEach((state, i) => assertSameText(texts[i]!, renderByLines(compileIptablesRules(state)), `compile ${i + 1} of 3`));
  assert.ok(texts[1]!.length < texts[0]!.length / 10, 'the small cluster should be much smaller');
});

test('a finished text sink refuses more writes', () => {
  const sink = new IptablesTextSink(['nat'], 16);
  const chain = sink.declareChain('nat', 'A');
  sink.appendRule(chain, ['-j', 'RETURN']);
  assert.equal(sink.finish(), '*nat\n:A - [0:0]\n-A A -j RETURN\nCOMMIT\n');
  assert.throws(() => sink.appendRule(chain, ['-j', 'RETURN']), /finished/);
  assert.throws(() => sink.finish(), /finished/);
});

const ODD_TOKENS: readonly { name: string; token: string }[] = [
  { name: 'empty', token: '' },
  { name: 'a space', token: 'ns1/svc1:p80 cluster IP' },
  { name: 'a double quote', token: 'say "hi"' },
  { name: 'a single quote', token: "it's" },
  { name: 'a backslash', token: 'a\\b' },
  { name: 'a tab', token: 'a\tb' },
  { name: 'not ASCII, no space', token: 'café' },
  { name: 'not ASCII, with a space', token: 'café au lait' },
  { name: 'a no-break space', token: 'a\u00a0b' },
  { name: 'an astral character', token: 'x\u{1F600}y' },
  { name: 'plain', token: 'KUBE-MARK-MASQ' },
];

test('renderIptablesSave writes every token as quoteToken quotes it', async (t) => {
  for (const { name, token } of ODD_TOKENS) {
    await t.test(name, () => {
      const ruleset = createRuleset(4, ['filter', 'nat']);
      const sink = new RulesetSink(ruleset);
      const chain = sink.declareChain('nat', 'KUBE-TEST');
      sink.appendRule(chain, ['-m', 'comment', '--comment', token, '-j', 'ACCEPT']);
      sink.appendRule(chain, [token]);
      const got = renderIptablesSave(ruleset);
      assertSameText(got, renderByLines(ruleset), `token ${JSON.stringify(token)}`);
      assert.ok(got.includes(` ${quoteToken(token)} -j ACCEPT\n`), `${JSON.stringify(token)} is not written as ${quoteToken(token)}:\n${got}`);
    });
  }
});

test('a chain name that is not ASCII is written as UTF-8, in its declaration and its rules', () => {
  const ruleset = createRuleset(4, ['filter', 'nat']);
  const sink = new RulesetSink(ruleset);
  sink.appendRule(sink.declareChain('filter', 'KUBE-A'), ['-j', 'ACCEPT']);
  const chain = sink.declareChain('nat', 'KUBE-ÉTÉ');
  sink.appendRule(chain, ['-m', 'comment', '--comment', 'été 2', '-j', 'ACCEPT']);
  sink.appendRule(chain, ['-j', 'RETURN']);
  const got = renderIptablesSave(ruleset);
  assertSameText(got, renderByLines(ruleset), 'non-ASCII chain');
  assert.ok(got.includes('-A KUBE-ÉTÉ -m comment --comment "été 2" -j ACCEPT\n-A KUBE-ÉTÉ -j RETURN\n'), got);
});

test('a TextBuffer that starts small grows without losing or reordering bytes', () => {
  const buffer = new TextBuffer(1);
  const want: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const token = i % 7 === 0 ? `tok en ${i}` : i % 11 === 0 ? `é${i}` : `token-${i}`;
    buffer.writeToken(token);
    buffer.writeCode(10);
    want.push(quoteToken(token));
  }
  assertSameText(buffer.toString(), `${want.join('\n')}\n`, 'grown buffer');
});

/** What a TextBuffer is given, for toHeapString against toString: small and over Node's external-string size. */
const HEAP_STRING_CASES: readonly { name: string; write: (b: TextBuffer) => void }[] = [
  { name: 'nothing', write: () => {} },
  { name: 'one ASCII rule', write: (b) => b.writeRule('KUBE-SERVICES', ['-m', 'comment', '--comment', 'ns1/svc1:p80 cluster IP', '-j', 'KUBE-SVC-X']) },
  { name: 'every ASCII code', write: (b) => { for (let c = 0; c < 128; c++) b.writeCode(c); } },
  { name: 'a token that is not ASCII', write: (b) => { b.write('a'); b.writeToken('café au lait'); b.write('\n'); } },
  { name: 'an astral character', write: (b) => b.writeToken('x\u{1F600}y') },
  { name: '3 MB of ASCII (an external string for toString)', write: (b) => { for (let i = 0; i < 100_000; i++) b.writeRule(`KUBE-SEP-${i}`, ['-j', 'DNAT', '--to-destination', `10.0.${i & 255}.1:80`]); } },
  { name: '3 MB, not ASCII at the end', write: (b) => { for (let i = 0; i < 100_000; i++) b.writeRule(`KUBE-SEP-${i}`, ['-j', 'RETURN']); b.writeToken('été'); } },
];

test('toHeapString is toString, for the whole buffer and for a range', async (t) => {
  for (const { name, write } of HEAP_STRING_CASES) {
    await t.test(name, () => {
      const buffer = new TextBuffer(16);
      write(buffer);
      assertSameText(buffer.toHeapString(), buffer.toString(), name);
      // A range that starts and ends on whole lines (or anywhere, while the text is ASCII).
      const text = buffer.toString();
      const from = text.indexOf('\n') + 1;
      const start = Buffer.byteLength(text.slice(0, from));
      assertSameText(buffer.toHeapString(start), buffer.toString(start), `${name}, from byte ${start}`);
      assertSameText(buffer.toHeapString(0, start), buffer.toString(0, start), `${name}, up to byte ${start}`);
    });
  }
});

test('a sealed TextBuffer reads as before, refuses writes, and hands its bytes to the next one', async (t) => {
  for (const { name, write } of HEAP_STRING_CASES) {
    await t.test(name, () => {
      const buffer = new TextBuffer(16);
      write(buffer);
      const before = buffer.toString();
      const length = buffer.length;
      const next = buffer.seal();
      assert.equal(next.length, 0);
      assertSameText(buffer.toString(), before, `${name}: toString after seal`);
      assertSameText(buffer.toHeapString(), before, `${name}: toHeapString after seal`);
      const copy = new TextBuffer(16);
      copy.append(buffer, 0, length);
      assertSameText(copy.toString(), before, `${name}: appended whole after seal`);
      const half = Math.floor(length / 2);
      if (/^[\x00-\x7f]*$/.test(before)) {
        assertSameText(buffer.toString(half), before.slice(half), `${name}: second half after seal`);
        const part = new TextBuffer(16);
        part.append(buffer, half, length);
        assertSameText(part.toString(), before.slice(half), `${name}: second half appended after seal`);
      }
      // The next buffer writes what comes after, and leaves the sealed text as it was.
      next.writeRule('KUBE-NEXT', ['-j', 'RETURN']);
      assert.equal(next.toString(), '-A KUBE-NEXT -j RETURN\n');
      assertSameText(buffer.toString(), before, `${name}: after the next buffer was written`);
      if (length > 0 && /^[\x00-\x7f]*$/.test(before)) assert.throws(() => buffer.write('x'.repeat(100)), /sealed/);
    });
  }
});

test('a TextBuffer that spills when full gives the whole text as one string, whatever its chunk size', async (t) => {
  for (const chunk of [64, 100, 4096, 1 << 20]) {
    for (const { name, write } of HEAP_STRING_CASES) {
      await t.test(`${chunk}-byte chunks: ${name}`, () => {
        const want = new TextBuffer(16);
        write(want);
        const spilling = new TextBuffer(chunk).spillWhenFull();
        write(spilling);
        assertSameText(spilling.toHeapString(), want.toString(), name);
        assertSameText(spilling.toString(), want.toString(), `${name} (toString)`);
        assert.ok(spilling.capacity <= Math.max(chunk, 64 * 3), `grew to ${spilling.capacity} bytes`);
        assertSameText(writeHeapText(chunk, write), want.toString(), `${name} (writeHeapText)`);
      });
    }
  }
});

test('a spilling buffer given back is an ordinary buffer again when taken', () => {
  const first = takeTextBuffer(64).spillWhenFull();
  for (let i = 0; i < 100; i++) first.writeRule('KUBE-A', ['-j', `X${i}`]);
  const text = first.toHeapString();
  giveBackTextBuffer(first);
  const again = takeTextBuffer(64);
  again.write('only this');
  assert.equal(again.toString(), 'only this');
  assert.ok(text.startsWith('-A KUBE-A -j X0\n') && text.endsWith('-A KUBE-A -j X99\n'));
  giveBackTextBuffer(again);
});

/** A script of sink operations: declare a chain in a table, or append a rule to a declared chain. */
type Step = { declare: string; table: TableName } | { rule: string; args: readonly string[] };

function play<C>(sink: RuleSink<C>, steps: readonly Step[]): void {
  const chains = new Map<string, C>();
  for (const step of steps) {
    if ('declare' in step) chains.set(step.declare, sink.declareChain(step.table, step.declare));
    else sink.appendRule(chains.get(step.rule)!, step.args);
  }
}

const SINK_SCRIPTS: readonly { name: string; steps: readonly Step[] }[] = [
  { name: 'no chains', steps: [] },
  { name: 'declared, never written', steps: [{ declare: 'A', table: 'nat' }, { declare: 'B', table: 'filter' }] },
  {
    name: 'each chain filled right after it is declared',
    steps: [{ declare: 'A', table: 'nat' }, { rule: 'A', args: ['-j', 'X'] }, { rule: 'A', args: ['-j', 'Y'] }, { declare: 'B', table: 'nat' }, { rule: 'B', args: ['-j', 'Z'] }],
  },
  {
    name: 'an early chain written between later ones, before and after its own run',
    steps: [
      { declare: 'TOP', table: 'nat' },
      { rule: 'TOP', args: ['-j', 'first'] },
      { declare: 'S1', table: 'nat' },
      { rule: 'S1', args: ['-j', 's1'] },
      { rule: 'TOP', args: ['-j', 'second'] },
      { declare: 'S2', table: 'nat' },
      { rule: 'S2', args: ['-j', 's2'] },
      { rule: 'S1', args: ['-j', 's1 again'] },
      { rule: 'TOP', args: ['-j', 'third'] },
      { rule: 'S2', args: ['-j', 's2 again'] },
    ],
  },
  {
    name: 'two tables interleaved, filter printed first though nat is written first',
    steps: [
      { declare: 'F1', table: 'filter' },
      { declare: 'N1', table: 'nat' },
      { rule: 'N1', args: ['-j', 'n1'] },
      { rule: 'F1', args: ['-j', 'f1'] },
      { declare: 'F2', table: 'filter' },
      { rule: 'F2', args: ['-j', 'f2'] },
      { declare: 'N2', table: 'nat' },
      { rule: 'N2', args: ['-m', 'comment', '--comment', 'n2 with spaces', '-j', 'n2'] },
      { rule: 'N1', args: ['-j', 'n1 again'] },
      { rule: 'F1', args: ['-j', 'f1 again'] },
      { declare: 'F3', table: 'filter' },
      { rule: 'F2', args: ['-j', 'f2 again'] },
    ],
  },
  {
    name: 'a declared chain left empty between filled ones, and a chain written only after a later one was declared',
    steps: [
      { declare: 'A', table: 'nat' },
      { declare: 'B', table: 'nat' },
      { rule: 'B', args: ['-j', 'b'] },
      { declare: 'C', table: 'nat' },
      { declare: 'D', table: 'nat' },
      { rule: 'C', args: ['-j', 'c'] },
      { rule: 'D', args: ['-j', 'd'] },
      { rule: 'A', args: ['-j', 'a'] },
    ],
  },
];

test('the text sink lays out chains and rules as renderIptablesSave lays out the Ruleset sink', async (t) => {
  for (const { name, steps } of SINK_SCRIPTS) {
    await t.test(name, () => {
      const ruleset = createRuleset(4, ['filter', 'nat']);
      play(new RulesetSink(ruleset), steps);
      const text = new IptablesTextSink(['filter', 'nat'], 16);
      play(text, steps);
      assertSameText(text.finish(), renderByLines(ruleset), name);
    });
  }
});
