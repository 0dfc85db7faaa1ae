/**
 * The text sink's rules for a chain other than the one being filled (src/iptables/text-sink.ts,
 * OwnRules): lines written for it (appendRule) and stretches of shared text taken for it
 * (appendRuleText) come out in the order they were given, whether the stretches follow on in
 * their buffer (taken as one) or not, and whether that buffer is sealed by then or not. A
 * list of pieces (PieceList) joins a piece to the last one only when its bytes follow on in the
 * same buffer, and adopted text given as one list is laid out as given as pieces.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TextBuffer } from '../../src/iptables/save-text.js';
import { IptablesTextSink, type PieceList, addPiece } from '../../src/iptables/text-sink.js';

/** One step for chain KUBE-SERVICES: a rule written, or lines of the shared buffer taken (by line number). */
type Step = { readonly write: string } | { readonly take: readonly [number, number] };

interface Case {
  readonly name: string;
  readonly steps: readonly Step[];
  /** Seal the shared buffer after the steps (its text is then read from its string). */
  readonly seal: boolean;
}

const SHARED_LINES = Array.from({ length: 8 }, (_, i) => `-A KUBE-SERVICES -m comment --comment ns/svc${i}:p -j KUBE-SVC-${i}`);

const CASES: readonly Case[] = [
  { name: 'taken only, following on', steps: [{ take: [0, 1] }, { take: [1, 3] }, { take: [3, 4] }], seal: false },
  { name: 'taken only, with gaps and back', steps: [{ take: [0, 1] }, { take: [2, 3] }, { take: [1, 2] }], seal: false },
  { name: 'written, taken, written', steps: [{ write: 'first' }, { take: [0, 2] }, { write: 'last' }], seal: false },
  { name: 'taken between writes, following on across them', steps: [{ take: [0, 1] }, { write: 'a' }, { take: [1, 2] }, { write: 'b' }, { write: 'c' }, { take: [2, 5] }], seal: false },
  { name: 'written only', steps: [{ write: 'a' }, { write: 'b' }], seal: false },
  { name: 'nothing taken but an empty stretch', steps: [{ take: [3, 3] }, { write: 'a' }], seal: false },
  { name: 'taken from a buffer sealed after', steps: [{ write: 'a' }, { take: [4, 8] }, { take: [0, 2] }, { write: 'z' }], seal: true },
];

for (const c of CASES) {
  test(`text sink own rules: ${c.name}`, () => {
    const shared = new TextBuffer(64);
    const at = [0];
    for (const line of SHARED_LINES) {
      shared.write(`${line}\n`);
      at.push(shared.length);
    }
    const sink = new IptablesTextSink(['nat'], 16);
    const services = sink.declareChain('nat', 'KUBE-SERVICES');
    // Another chain declared and filled after it: KUBE-SERVICES' rules are its own from then on.
    sink.appendRule(sink.declareChain('nat', 'KUBE-OTHER'), ['-j', 'RETURN']);
    const want: string[] = [];
    for (const step of c.steps) {
      if ('write' in step) {
        sink.appendRule(services, ['-j', step.write]);
        want.push(`-A KUBE-SERVICES -j ${step.write}`);
      } else {
        const [from, to] = step.take;
        sink.appendRuleText(services, shared, at[from]!, at[to]!);
        want.push(...SHARED_LINES.slice(from, to));
      }
    }
    if (c.seal) shared.seal();
    const rules = want.map((line) => `${line}\n`).join('');
    assert.equal(sink.finish(), `*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-OTHER - [0:0]\n${rules}-A KUBE-OTHER -j RETURN\nCOMMIT\n`, JSON.stringify(c.steps));
  });
}

interface PieceCase {
  readonly name: string;
  /** Pieces added: buffer a or b, start, end. */
  readonly add: readonly (readonly ['a' | 'b', number, number])[];
  /** The list after, the buffers by name. */
  readonly want: readonly (string | number)[];
}

const PIECE_CASES: readonly PieceCase[] = [
  { name: 'one piece', add: [['a', 0, 4]], want: ['a', 0, 4] },
  { name: 'following on: joined', add: [['a', 0, 4], ['a', 4, 9], ['a', 9, 10]], want: ['a', 0, 10] },
  { name: 'a gap: two pieces', add: [['a', 0, 4], ['a', 5, 9]], want: ['a', 0, 4, 'a', 5, 9] },
  { name: 'same offsets, other buffer: two pieces', add: [['a', 0, 4], ['b', 4, 9]], want: ['a', 0, 4, 'b', 4, 9] },
  { name: 'back in the buffer: two pieces', add: [['a', 4, 9], ['a', 0, 4]], want: ['a', 4, 9, 'a', 0, 4] },
  { name: 'empty pieces are left out', add: [['a', 3, 3], ['a', 0, 2], ['b', 7, 5], ['a', 2, 6]], want: ['a', 0, 6] },
  { name: 'joined to the last piece only', add: [['a', 0, 4], ['b', 0, 1], ['a', 4, 8]], want: ['a', 0, 4, 'b', 0, 1, 'a', 4, 8] },
];

for (const c of PIECE_CASES) {
  test(`piece list: ${c.name}`, () => {
    const buffers = { a: new TextBuffer(16), b: new TextBuffer(16) };
    const pieces: PieceList = [];
    for (const [from, start, end] of c.add) addPiece(pieces, buffers[from], start, end);
    const got = pieces.map((entry) => (entry === buffers.a ? 'a' : entry === buffers.b ? 'b' : entry));
    assert.deepEqual(got, c.want, JSON.stringify(c.add));
  });
}

test('adopted text as one list of pieces is laid out as the same pieces given apart', () => {
  const declarations = new TextBuffer(64);
  declarations.write(':C - [0:0]\n:D - [0:0]\n');
  const rules = new TextBuffer(64);
  rules.write('-A C -j c1\n-A C -j c2\n-A D -j d1\n');
  const write = (adopt: (sink: IptablesTextSink) => void): string => {
    const sink = new IptablesTextSink(['nat'], 16);
    sink.appendRule(sink.declareChain('nat', 'KUBE-SERVICES'), ['-j', 'C']);
    adopt(sink);
    sink.appendRule(sink.declareChain('nat', 'E'), ['-j', 'RETURN']);
    return sink.finish();
  };
  const apart = write((sink) => sink.adoptText('nat', [{ from: declarations, start: 0, end: 11 }, { from: declarations, start: 11, end: 22 }], [{ from: rules, start: 11, end: 33 }, { from: rules, start: 0, end: 11 }]));
  // As a fragment holds them: something else first, then the declarations, then the rules to the end.
  const list = [7, declarations, 0, 11, declarations, 11, 22, rules, 11, 33, rules, 0, 11];
  const together = write((sink) => sink.adoptPieces('nat', list, 1, 7));
  assert.equal(together, apart);
  assert.equal(apart, '*nat\n:KUBE-SERVICES - [0:0]\n:C - [0:0]\n:D - [0:0]\n:E - [0:0]\n-A KUBE-SERVICES -j C\n-A C -j c2\n-A D -j d1\n-A C -j c1\n-A E -j RETURN\nCOMMIT\n');
});
