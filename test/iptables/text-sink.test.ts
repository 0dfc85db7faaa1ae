/**
 * The text sink's rules for a chain other than the one being filled (src/iptables/text-sink.ts,
 * OwnRules): lines written for it (appendRule) and stretches of shared text taken for it
 * (appendRuleText) come out in the order they were given, whether the stretches follow on in
 * their buffer (taken as one) or not, and whether that buffer is sealed by then or not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TextBuffer } from '../../src/iptables/save-text.js';
import { IptablesTextSink } from '../../src/iptables/text-sink.js';

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
