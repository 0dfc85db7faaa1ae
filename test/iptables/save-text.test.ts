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
import { TextBuffer, giveBackTextBuffer, releaseTextBuffers, takeTextBuffer, writeHeapText } from '../../src/iptables/save-text.js';
import { IptablesTextSink, type TextPiece, finishTextSinks } from '../../src/iptables/text-sink.js';
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

/** A TextBuffer's text written through plain Buffers (not shared memory): what the shared-memory ones must give. */
function plainText(write: (b: TextBuffer) => void): string {
  // Room for every case from the start: a Buffer that never grows (growing past 1 MB would make it shared memory).
  const plain = new TextBuffer(8 << 20, false);
  write(plain);
  assert.equal(plain.isShared, false, 'an 8 MB buffer asked not to be shared memory is');
  return plain.toString();
}

/**
 * Buffers whose bytes are shared memory (a growable SharedArrayBuffer) or become it as they
 * grow: each HEAP_STRING_CASES text written into them, across the size they started with and
 * across the 1 MB from which a buffer is shared memory.
 */
const SHARED_CASES: readonly { name: string; make: () => TextBuffer; shared: (bytes: number) => boolean }[] = [
  { name: 'shared from the start, 64 bytes', make: () => new TextBuffer(64, true), shared: () => true },
  { name: 'shared from the start, 100 bytes (not a power of two)', make: () => new TextBuffer(100, true), shared: () => true },
  { name: 'shared by size, 1 MB', make: () => new TextBuffer(1 << 20), shared: () => true },
  { name: 'a Buffer first, shared memory once grown past 1 MB', make: () => new TextBuffer(16), shared: (bytes) => bytes > 1 << 20 },
  { name: 'a spare (takeTextBuffer)', make: () => takeTextBuffer(64), shared: () => true },
];

test('a TextBuffer in shared memory gives the text of one in Buffers, as toString and as one decoded heap string', async (t) => {
  for (const buffer of SHARED_CASES) {
    for (const { name, write } of HEAP_STRING_CASES) {
      await t.test(`${buffer.name}: ${name}`, () => {
        const want = plainText(write);
        const b = buffer.make();
        write(b);
        assert.equal(b.isShared, buffer.shared(b.length), `${b.length} bytes written: isShared is ${b.isShared}`);
        assert.ok(b.capacity >= b.length, `capacity ${b.capacity} below the ${b.length} bytes written`);
        assertSameText(b.toString(), want, `${name} (toString)`);
        assertSameText(b.toHeapString(), want, `${name} (toHeapString)`);
        assert.equal(b.isAscii, /^[\x00-\x7f]*$/.test(want), `isAscii of ${JSON.stringify(want.slice(0, 40))}`);
        // Written again from the start (reset), the same text: nothing of the first is left.
        b.reset(16);
        write(b);
        assertSameText(b.toHeapString(), want, `${name} written again after reset`);
        assertSameText(writeHeapText(16, write), want, `${name} (writeHeapText)`);
        giveBackTextBuffer(b);
        releaseTextBuffers();
      });
    }
  }
});

test('a shared-memory buffer grows in place: what was written before stays, bytes and text', () => {
  const b = new TextBuffer(64, true);
  const lines: string[] = [];
  // Past 64 bytes, 1 MB and 8 MB, a line not ASCII now and then.
  for (let i = 0; b.length < (9 << 20); i++) {
    const line = i % 1000 === 999 ? `-A KUBE-ÉTÉ-${i} -j RETURN` : `-A KUBE-SEP-${i} -m comment --comment ns/svc:p${i} -j DNAT --to-destination 10.0.${i & 255}.1:80`;
    b.write(line);
    b.writeCode(10);
    lines.push(line);
  }
  assert.ok(b.isShared && b.capacity >= 9 << 20, `capacity ${b.capacity}, shared ${b.isShared}`);
  assertSameText(b.toHeapString(), `${lines.join('\n')}\n`, 'grown across 64 bytes, 1 MB and 8 MB');
});

test('spare buffers: taken again as they were given back, the smallest that fits, at most two, shared memory only', async (t) => {
  const filled = (capacity: number): TextBuffer => {
    const b = takeTextBuffer(capacity);
    b.write('x'.repeat(capacity));
    return b;
  };
  const cases: { name: string; run: () => string | undefined }[] = [
    {
      name: 'a buffer given back is the next one taken, empty, with its room',
      run: () => {
        const b = filled(5000);
        giveBackTextBuffer(b);
        const again = takeTextBuffer(100);
        if (again !== b) return 'a new buffer, not the one given back';
        if (again.length !== 0 || again.capacity < 5000) return `length ${again.length}, capacity ${again.capacity}`;
        return undefined;
      },
    },
    {
      name: 'the smallest spare with room is taken, else the largest',
      run: () => {
        const small = filled(1000);
        const large = filled(100_000);
        giveBackTextBuffer(large);
        giveBackTextBuffer(small);
        if (takeTextBuffer(500) !== small) return 'a 500-byte text did not get the 1000-byte spare';
        giveBackTextBuffer(small);
        if (takeTextBuffer(200_000) !== large) return 'a text larger than every spare did not get the largest';
        return undefined;
      },
    },
    {
      name: 'at most two are kept: a third gives way, the smallest going',
      run: () => {
        const [a, b, c] = [filled(1000), filled(2000), filled(3000)];
        giveBackTextBuffer(a);
        giveBackTextBuffer(b);
        giveBackTextBuffer(c);
        const got = [takeTextBuffer(1), takeTextBuffer(1), takeTextBuffer(1)];
        if (got[0] !== b || got[1] !== c) return `kept ${got.slice(0, 2).map((x) => x.capacity).join(', ')}`;
        if (got[2] === a) return 'the smallest was kept as a third spare';
        return undefined;
      },
    },
    {
      name: 'a buffer given back twice is kept once (two writers would share its bytes)',
      run: () => {
        const b = filled(1000);
        giveBackTextBuffer(b);
        giveBackTextBuffer(b);
        const first = takeTextBuffer(1);
        const second = takeTextBuffer(1);
        return first === second ? 'the same buffer taken twice' : undefined;
      },
    },
    {
      name: 'a Buffer-backed buffer is not kept',
      run: () => {
        const plain = new TextBuffer(1000, false);
        giveBackTextBuffer(plain);
        const got = takeTextBuffer(1);
        if (got === plain) return 'the Buffer-backed buffer was handed out as a spare';
        return got.isShared ? undefined : 'takeTextBuffer gave a buffer that is not shared memory';
      },
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      releaseTextBuffers();
      const problem = c.run();
      releaseTextBuffers();
      assert.equal(problem, undefined, problem);
    });
  }
});

test('a buffer made of ASCII text already a string reads as that text, by range', () => {
  const text = '-A KUBE-SERVICES -j KUBE-NODEPORTS\n-A KUBE-SEP-X -j DNAT\n';
  const b = TextBuffer.ofAsciiText(text);
  assert.equal(b.length, text.length);
  assert.ok(b.isSealed);
  assert.equal(b.toString(), text);
  const to = new TextBuffer(16);
  to.append(b, 35, text.length);
  to.append(b, 0, 35);
  assert.equal(to.toString(), text.slice(35) + text.slice(0, 35));
  assert.throws(() => b.write('more text than it has room for'), /sealed/);
});

/** Lines written into a buffer, as pieces (one a line), the buffer sealed or not. */
function linePieces(lines: readonly string[], sealed: boolean): TextPiece[] {
  const from = new TextBuffer(16);
  const pieces = lines.map((line) => {
    const start = from.length;
    from.write(`${line}\n`);
    return { from, start, end: from.length };
  });
  if (sealed) from.seal();
  return pieces;
}

test('finishTextSinks gives the same text whether it joins sealed text or copies it into one buffer', async (t) => {
  // Many adopted chains (most of the text), a few written in the sink, a header per sink.
  const write = (sealed: boolean, nonAscii: boolean): string => {
    const sinks = [0, 1].map((k) => {
      const sink = new IptablesTextSink(['filter', 'nat'], 16);
      const services = sink.declareChain('nat', 'KUBE-SERVICES');
      sink.appendRule(sink.declareChain('filter', 'KUBE-FORWARD'), ['-j', `ACCEPT${k}`]);
      for (let port = 0; port < 50; port++) {
        const chain = `KUBE-SVC-${k}-${port}${nonAscii && port === 7 ? '-É' : ''}`;
        if (port % 10 === 0) {
          const rules = linePieces([`-A KUBE-SERVICES -m comment --comment "ns/svc${port}:p" -j ${chain}`], sealed)[0]!;
          sink.appendRuleText(services, rules.from, rules.start, rules.end);
        }
        sink.adoptText('nat', linePieces([`:${chain} - [0:0]`], sealed), linePieces([`-A ${chain} -j KUBE-SEP-${port}a`, `-A ${chain} -j KUBE-SEP-${port}b`], sealed));
      }
      sink.appendRule(services, ['-j', 'KUBE-NODEPORTS']);
      return sink;
    });
    // Sealed, the adopted text is most of it: finishTextSinks joins strings (else it copies bytes).
    const { size, sealed: sealedBytes } = sinks[0]!.measure();
    assert.equal(2 * sealedBytes >= size, sealed, `${sealedBytes} of ${size} bytes sealed`);
    return finishTextSinks(sinks, ['# first\n', '# second\n']);
  };
  for (const nonAscii of [false, true]) {
    await t.test(nonAscii ? 'a chain name not ASCII (its buffer is left unsealed)' : 'ASCII', () => {
      const joined = write(true, nonAscii);
      const copied = write(false, nonAscii);
      assertSameText(joined, copied, 'sealed pieces joined vs copied');
      assert.ok(joined.startsWith('# first\n*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -j ACCEPT0\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-0-0 - [0:0]\n'), joined.slice(0, 300));
      assert.ok(joined.endsWith('-A KUBE-SVC-1-49 -j KUBE-SEP-49b\nCOMMIT\n'), joined.slice(-300));
      assert.ok(joined.includes('# second\n*filter\n'), 'the second header');
    });
  }
});

/**
 * A node's text most of which is one buffer's rules, written with room before them (as the
 * shared text's rules buffer is): finishTextSinks writes the rest around them in place when it
 * can, and the text is the same as when every piece is copied.
 */
const IN_PLACE_CASES: readonly { name: string; room: number; ports: number; skipFirst: boolean; nonAscii: boolean; sealedPad: number; inPlace: boolean }[] = [
  { name: 'the whole buffer, room enough: in place', room: 1 << 16, ports: 50, skipFirst: false, nonAscii: false, sealedPad: 0, inPlace: true },
  { name: 'room for exactly the text before', room: -1, ports: 50, skipFirst: false, nonAscii: false, sealedPad: 0, inPlace: true },
  { name: 'room one byte short of the text before', room: -2, ports: 50, skipFirst: false, nonAscii: false, sealedPad: 0, inPlace: false },
  { name: 'the buffer\'s first rules not laid out', room: 1 << 16, ports: 50, skipFirst: true, nonAscii: false, sealedPad: 0, inPlace: false },
  { name: 'a chain name not ASCII in the text before', room: 1 << 16, ports: 50, skipFirst: false, nonAscii: true, sealedPad: 0, inPlace: false },
  { name: 'the buffer less than half of the text, nothing sealed: in place all the same', room: 1 << 16, ports: 1, skipFirst: false, nonAscii: false, sealedPad: 0, inPlace: true },
  { name: 'the buffer less than half of a text mostly sealed: joined', room: 1 << 16, ports: 1, skipFirst: false, nonAscii: false, sealedPad: 200, inPlace: false },
  { name: 'the buffer most of a text partly sealed: in place', room: 1 << 16, ports: 50, skipFirst: false, nonAscii: false, sealedPad: 20, inPlace: true },
];

test('finishTextSinks writes the text around a buffer with room before it in place, or as it would otherwise', async (t) => {
  const build = (rules: TextBuffer, ports: number, skipFirst: boolean, nonAscii: boolean, sealedPad: number): { sink: IptablesTextSink; pieces: TextPiece[] } => {
    const sink = new IptablesTextSink(['filter', 'nat'], 16);
    const services = sink.declareChain('nat', 'KUBE-SERVICES');
    sink.appendRule(sink.declareChain('filter', `KUBE-FORWARD${nonAscii ? '-É' : ''}`), ['-j', 'ACCEPT']);
    if (sealedPad > 0) {
      // Chains declared by another compile, their text sealed (a string, as shared text is).
      const pad = new TextBuffer(64);
      for (let i = 0; i < sealedPad; i++) pad.writeChainDeclaration(`KUBE-SEP-PAD${i}`, undefined);
      const end = pad.length;
      pad.seal();
      sink.adoptText('nat', [{ from: pad, start: 0, end }], []);
    }
    const declarations = new TextBuffer(64);
    const pieces: TextPiece[] = [];
    for (let port = 0; port < ports; port++) {
      const chain = `KUBE-SVC-${port}`;
      const d = declarations.length;
      declarations.writeChainDeclaration(chain, undefined);
      const r = rules.length;
      rules.writeRule(chain, ['-m', 'comment', '--comment', `ns/svc${port}:p -> 10.0.0.${port}:80`, '-j', `KUBE-SEP-${port}`]);
      rules.writeRule(chain, ['-j', `KUBE-SEP-${port}b`]);
      pieces.push({ from: rules, start: r, end: rules.length });
      if (skipFirst && port === 0) continue;
      sink.appendRule(services, ['-d', `10.96.0.${port}`, '-j', chain]);
      sink.adoptText('nat', [{ from: declarations, start: d, end: declarations.length }], [pieces[pieces.length - 1]!]);
    }
    sink.appendRule(services, ['-j', 'KUBE-NODEPORTS']);
    return { sink, pieces };
  };
  for (const c of IN_PLACE_CASES) {
    await t.test(c.name, () => {
      const expected = build(new TextBuffer(64, false), c.ports, c.skipFirst, c.nonAscii, c.sealedPad).sink.finish();
      const rulesAt = expected.indexOf('-A KUBE-SVC-');
      // Room for the text before the rules exactly (-1), or one byte less (-2).
      const room = c.room >= 0 ? c.room : Buffer.byteLength(expected.slice(0, rulesAt)) + c.room + 1;
      const rules = TextBuffer.withRoomBefore(64, room);
      const { sink, pieces } = build(rules, c.ports, c.skipFirst, c.nonAscii, c.sealedPad);
      const before = pieces.map((p) => rules.toString(p.start, p.end));
      const text = sink.finish();
      assertSameText(text, expected, `${c.name}: the text`);
      assert.equal(rules.isSealed, c.inPlace, `${c.name}: the rules buffer sealed in place`);
      // Its text reads as before, by range, sealed in place (a slice of the node's text) or not.
      pieces.forEach((p, i) => {
        assert.equal(rules.toHeapString(p.start, p.end), before[i], `${c.name}: rules of port ${i} by range`);
        const copy = new TextBuffer(16);
        copy.append(rules, p.start, p.end);
        assert.equal(copy.toString(), before[i], `${c.name}: rules of port ${i} appended`);
      });
    });
  }
  releaseTextBuffers();
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

test('a text buffer kept as bytes: its bytes are its text, it refuses writes, is never a spare, and is still read', () => {
  const cases = [
    { name: 'ASCII, shared memory', text: 'add chain ip kube-proxy a\n'.repeat(50_000), room: 0 },
    { name: 'not ASCII, small', text: 'naïve – chain ✓\n', room: 0 },
    { name: 'with room before', text: 'rules\n'.repeat(1000), room: 4096 },
  ];
  for (const c of cases) {
    const buffer = c.room > 0 ? TextBuffer.withRoomBefore(c.text.length, c.room) : takeTextBuffer(c.text.length);
    buffer.write(c.text);
    const bytes = buffer.keepAsBytes();
    assert.equal(Buffer.from(bytes).toString('utf8'), c.text, `${c.name}: the bytes kept are not the text`);
    assert.ok(buffer.isKept, `${c.name}: not kept`);
    assert.throws(() => buffer.write('x'), /kept as bytes/, `${c.name}: a write was taken`);
    assert.throws(() => buffer.reset(16), /kept as bytes/, `${c.name}: a reset was taken`);
    giveBackTextBuffer(buffer);
    const next = takeTextBuffer(16);
    assert.notEqual(next, buffer, `${c.name}: given back as a spare`);
    next.write('y');
    assert.equal(Buffer.from(bytes).toString('utf8'), c.text, `${c.name}: the kept bytes changed after another buffer was written`);
    assert.equal(buffer.toString(), c.text, `${c.name}: toString of a kept buffer`);
    const copy = new TextBuffer();
    copy.append(buffer, c.room, buffer.length);
    assert.equal(copy.toString(), c.text, `${c.name}: appended from a kept buffer`);
    giveBackTextBuffer(next);
  }
});
