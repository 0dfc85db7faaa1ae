/**
 * The docs cannot drift from the code: every error code is in the README's error table with
 * its meaning, the README names the test command CI runs, and the CLI's version is package.json's.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { codes } from '../../src/errors.js';
import { VERSION } from '../../src/cli/version.js';

const readme = readFileSync('README.md', 'utf8');

test('every error code is documented in the README with its meaning', () => {
  const missing = Object.entries(codes).filter(([code, meaning]) => !readme.includes(`| \`${code}\` | ${meaning} |`));
  assert.deepEqual(missing.map(([code]) => code), [], 'add these rows to the README error table: | `CODE` | meaning |');
});

test('the README documents no error code that does not exist', () => {
  const documented = [...readme.matchAll(/\| `(KPSIM_ERR_[A-Z_]+)` \|/g)].map((m) => m[1]!);
  assert.deepEqual(documented.filter((code) => !(code in codes)), []);
});

test('CI runs the README test command', () => {
  assert.match(readme, /npm test/);
  assert.match(readFileSync('.ci/run', 'utf8'), /^npm test$/m);
  assert.match(readme, /npm install && npm start/);
});

test('the CLI version is the package version', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});

test('the README\'s trace --json example shows the probabilities kpsim prints for that flow', async () => {
  const { loadCluster } = await import('../../src/manifest/load.js');
  const { compileIptables, tracePacket } = await import('../../src/index.js');
  const m = /"probabilities":(\{[^}]*\})/.exec(readme);
  assert.ok(m, 'the README has a "probabilities" example');
  const documented = JSON.parse(m[1]!) as Record<string, number>;
  const result = tracePacket(compileIptables(await loadCluster('rules/example')), { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 });
  assert.deepEqual(documented, JSON.parse(JSON.stringify(result.probabilities)), 'update the README example from `kpsim trace --json`');
});

test('the README\'s human trace example is what kpsim trace prints for that flow, line for line (rules shortened with "...")', async () => {
  const { loadCluster } = await import('../../src/manifest/load.js');
  const { compileIptables, formatTraceBranches, tracePacket } = await import('../../src/index.js');
  const m = /```\n(tcp 10\.244\.1\.20 -> 10\.96\.100\.20:80,[^`]*)```/.exec(readme);
  assert.ok(m, 'the README has a human trace example');
  const packet = { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 } as const;
  const printed = formatTraceBranches(tracePacket(compileIptables(await loadCluster('rules/example')), packet), { packet });
  const documented = m[1]!.trimEnd().split('\n');
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  assert.equal(documented.length, printed.length, `update the README example from \`kpsim trace\`:\n${printed.join('\n')}`);
  documented.forEach((line, i) => {
    assert.match(printed[i]!, new RegExp(`^${line.split(' ... ').map(escape).join(' .+ ')}$`), `README example line ${i + 1}`);
  });
});

test('the README documents every flag of kpsim agent and every metric it serves', async () => {
  const { Command } = await import('commander');
  const { registerAgent } = await import('../../src/cli/agent.js');
  const { ProxyMetrics } = await import('../../src/agent/metrics.js');
  const { AGENT_MODES, modeSyncer } = await import('../../src/agent/syncers.js');
  const program = new Command();
  registerAgent(program);
  const flags = program.commands[0]!.options.map((o) => o.long!).filter((f) => f !== '--help');
  const section = readme.slice(readme.indexOf('### `kpsim agent`'), readme.indexOf('### `kpsim dump`'));
  assert.ok(section.length > 0, 'the README has a kpsim agent section before kpsim dump');
  assert.deepEqual(flags.filter((f) => !section.includes(`\`${f}`) && !section.includes(`, \`${f}`)), [], 'document these flags in the kpsim agent section');
  const names = new Set<string>();
  for (const mode of AGENT_MODES) {
    const metrics = new ProxyMetrics(modeSyncer(mode).metrics, { processMetrics: false });
    for (const m of await metrics.registry.getMetricsAsJSON()) names.add(m.name);
  }
  assert.deepEqual([...names].filter((n) => !section.includes(n) && !section.includes(n.replace(/^kubeproxy_sync_proxy_rules/, '...'))), [], 'document these metrics in the kpsim agent section');
});
