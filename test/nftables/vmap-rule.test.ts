/**
 * NumgenVmapRule (src/nftables/vmap-rule.ts): a service chain's numgen verdict map kept as its
 * targets' names. Its text, as pieces or as a string, read first or not, is the rule kube-proxy
 * writes: `numgen random mod N vmap { 0 : goto a , 1 : goto b }`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRuleText } from '../../src/nftables/rule-parse.js';
import { NumgenVmapRule } from '../../src/nftables/vmap-rule.js';

/** The rule as kube-proxy's nftables proxier words it, written out plainly. */
function kubeProxyText(targets: readonly string[]): string {
  return `numgen random mod ${targets.length} vmap { ${targets.map((t, i) => `${i} : goto ${t}`).join(' , ')} }`;
}

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `endpoint-ABCDEFG${i % 10}-ns1/svc1/tcp/p80__10.180.${i >> 8}.${i & 255}/80`);

const cases: { name: string; targets: string[]; textFirst: boolean }[] = [
  { name: 'one endpoint', targets: names(1), textFirst: false },
  { name: 'three endpoints', targets: names(3), textFirst: false },
  { name: 'twelve endpoints (two-digit indexes)', targets: names(12), textFirst: false },
  { name: 'three hundred endpoints, text read before the pieces', targets: names(300), textFirst: true },
  { name: 'IPv6 endpoint names', targets: ['endpoint-AAAAAAAA-ns/s/udp/dns__fd00.10..1/53', 'endpoint-BBBBBBBB-ns/s/udp/dns__fd00.10..2/53'], textFirst: false },
];

for (const c of cases) {
  test(`numgen vmap rule: ${c.name}`, () => {
    const rule = new NumgenVmapRule(c.targets);
    const want = kubeProxyText(c.targets);
    const pieces = (): string => {
      const out: string[] = ['before '];
      rule.pushText(out);
      return out.join('');
    };
    const first = c.textFirst ? rule.text : pieces();
    const second = c.textFirst ? pieces() : rule.text;
    assert.equal(c.textFirst ? first : first.slice('before '.length), want);
    assert.equal(c.textFirst ? second.slice('before '.length) : second, want);
    assert.equal(pieces(), `before ${want}`, 'pieces once the text is made');
    assert.equal((rule as { comment?: string }).comment, undefined);
    const parsed = parseRuleText(rule.text);
    assert.equal(parsed.unknown, undefined, `parsed: ${JSON.stringify(parsed)}`);
    const vmap = parsed.statements[0];
    assert.ok(vmap?.kind === 'vmap' && vmap.map.kind === 'anon', `parsed: ${JSON.stringify(parsed)}`);
    assert.deepEqual(vmap.map.entries.map((e) => e.verdict.chain), c.targets);
  });
}
