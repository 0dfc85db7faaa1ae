/**
 * The renderers' line scratch (src/iptables/line-scratch.ts): a rule written through it is the
 * text TextBuffer.writeRule writes, or it declines (nothing kept) where only the general writer
 * can write it; text handed on by flush() keeps its order; again() copies bytes still there.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineScratch, asciiBytes } from '../../src/iptables/line-scratch.js';
import { TextBuffer } from '../../src/iptables/save-text.js';

interface RuleCase {
  readonly name: string;
  readonly chain: string;
  readonly args: readonly string[];
  /** false: the scratch declines (a token or the chain is not ASCII). */
  readonly taken: boolean;
}

const RULES: readonly RuleCase[] = [
  { name: 'bare tokens', chain: 'KUBE-SEP-ABC', args: ['-s', '10.180.0.1', '-j', 'KUBE-MARK-MASQ'], taken: true },
  { name: 'a comment with spaces is quoted', chain: 'KUBE-SVC-ABC', args: ['-m', 'comment', '--comment', 'ns1/svc1:p80 cluster IP', '-j', 'KUBE-MARK-MASQ'], taken: true },
  { name: 'quote and backslash escaped', chain: 'KUBE-SVC-ABC', args: ['--comment', 'a "b" \\c'], taken: true },
  { name: 'a bare token with a quote is quoted', chain: 'KUBE-SVC-ABC', args: ['--comment', 'we"ird'], taken: true },
  { name: 'an empty token is ""', chain: 'KUBE-SVC-ABC', args: ['--comment', '', '-j', 'X'], taken: true },
  { name: 'tab and single quote are quoted', chain: 'C', args: ["it's", 'a\tb'], taken: true },
  { name: 'no arguments', chain: 'KUBE-MARK-MASQ', args: [], taken: true },
  { name: 'a token that is not ASCII is declined', chain: 'KUBE-SVC-ABC', args: ['--comment', 'café'], taken: false },
  { name: 'a chain that is not ASCII is declined', chain: 'KUBE-SVC-É', args: ['-j', 'X'], taken: false },
];

function viaTextBuffer(write: (out: TextBuffer) => void): string {
  const out = new TextBuffer(64);
  write(out);
  return out.toString();
}

for (const c of RULES) {
  test(`line scratch rule: ${c.name}`, () => {
    const scratch = new LineScratch();
    const want = viaTextBuffer((out) => out.writeRule(c.chain, c.args));
    const got = viaTextBuffer((out) => {
      out.write('before\n');
      const taken = scratch.rule(out, c.chain, c.args);
      assert.equal(taken, c.taken, `taken for ${JSON.stringify(c.args)}`);
      if (!taken) {
        assert.equal(scratch.length, 0, 'nothing kept when declined');
        out.writeRule(c.chain, c.args);
      }
      scratch.flush(out);
    });
    assert.equal(got, `before\n${want}`);
  });
}

interface TokenCase {
  readonly token: string;
  readonly bare: boolean;
  readonly inQuotes: boolean;
}

const TOKENS: readonly TokenCase[] = [
  { token: 'KUBE-SEP-ABC', bare: true, inQuotes: true },
  { token: '10.180.0.1:80', bare: true, inQuotes: true },
  { token: 'ns1/svc1:p80 -> x', bare: false, inQuotes: true },
  { token: '', bare: false, inQuotes: true },
  { token: 'a"b', bare: false, inQuotes: false },
  { token: 'a\\b', bare: false, inQuotes: false },
  { token: 'é', bare: false, inQuotes: false },
];

for (const c of TOKENS) {
  test(`line scratch token ${JSON.stringify(c.token)}: bare ${c.bare}, between quotes ${c.inQuotes}`, () => {
    const scratch = new LineScratch();
    const out = new TextBuffer(64);
    assert.ok(scratch.room(out, 2 * c.token.length + 2));
    assert.equal(scratch.bare(c.token), c.bare);
    if (c.bare) assert.equal(scratch.length, c.token.length);
    scratch.length = 0;
    assert.equal(scratch.inQuotes(c.token), c.inQuotes);
    if (c.inQuotes) assert.equal(scratch.length, c.token.length);
  });
}

test('line scratch: room hands the bytes on in order, again() copies bytes still there, a line longer than the scratch is declined', () => {
  const scratch = new LineScratch();
  const out = new TextBuffer(64);
  const line = asciiBytes('-A KUBE-SEP-ABC -j X\n');
  let written = 0;
  let flushes = scratch.flushes;
  // Enough lines to fill the scratch several times.
  for (let i = 0; i < 10000; i++) {
    assert.ok(scratch.room(out, line.length * 2));
    if (scratch.flushes !== flushes) {
      assert.equal(scratch.length, 0, 'empty after handing on');
      flushes = scratch.flushes;
    }
    const at = scratch.length;
    scratch.bytes(line);
    scratch.again(at, at + line.length);
    written += 2 * line.length;
  }
  scratch.flush(out);
  assert.ok(scratch.flushes > 3, `handed on ${scratch.flushes} times`);
  assert.equal(out.length, written);
  assert.equal(out.toString(), '-A KUBE-SEP-ABC -j X\n'.repeat(20000));
  assert.equal(scratch.room(out, 1 << 20), false, 'a megabyte does not fit');
  assert.equal(scratch.rule(out, 'C', ['x'.repeat(1 << 17)]), false, 'a rule longer than the scratch is declined');
});

test('asciiBytes refuses text that is not ASCII', () => {
  assert.deepEqual([...asciiBytes('-A ')], [45, 65, 32]);
  assert.throws(() => asciiBytes('é'), /not ASCII/);
});
