/**
 * `kpsim compile`: every mode and output flag, --family, the mode from the configuration, and
 * the flags that belong to another mode. The expected text comes from the reviewed golden files
 * of rules/<name>/ (and, for --rate, from real ipvsadm 1.31 output), never from the code under
 * test: a flag's effect is checked as the golden edited the way the flag is documented to edit it.
 * Most cases run compileText in this process; the real CLI (a child process) holds the
 * exit-code contract and a few outputs byte for byte.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileText } from '../../src/cli/compile.js';
import { isKpsimError } from '../../src/errors.js';
import { renderCanonical } from '../../src/iptables/canonical.js';
import { parseIptablesSave } from '../../src/iptables/parse.js';
import { repoRoot } from '../helpers/cluster-builders.js';
import { runCli } from '../helpers/run-cli.js';

const RULES = join(repoRoot(), 'rules');
const golden = (cluster: string, file: string): string => readFileSync(join(RULES, cluster, file), 'utf8');

/** What kpsim prints before each family's ruleset when a node runs both (README: "each after a `#` comment line"). */
const header = (family: 4 | 6, node: string): string => `# ${family === 4 ? 'iptables' : 'ip6tables'}-save (IPv${family}), node ${node}\n`;
const bothFamilies = (cluster: string, node: string, file: (family: 4 | 6) => string): string =>
  `${header(4, node)}${golden(cluster, file(4))}${header(6, node)}${golden(cluster, file(6))}`;

/**
 * The golden with --random-fully on kube-proxy's masquerade rule ("kubernetes service traffic
 * requiring SNAT"); IPVS mode's hairpin MASQUERADE (KUBE-LOOP-BACK) never has it, as on a node.
 */
const withRandomFully = (text: string): string =>
  changed(text, text.replace(/^(-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE)$/m, '$1 --random-fully'));
/**
 * The golden without the nfacct counters: the accounting rule for localhost node ports exists
 * only to count (kube-proxy writes it only when the counter is there), and the INVALID drop
 * loses its -m nfacct match.
 */
const withoutNfacct = (text: string): string =>
  changed(text, text.replace(/^.* -m nfacct --nfacct-name localhost_nps_accepted_pkts .*\n/gm, '').replace(/ -m nfacct --nfacct-name ct_state_invalid_dropped_pkts/g, ''));
/** `after`, which must differ from `before`: a flag's case whose golden has nothing to edit proves nothing. */
function changed(before: string, after: string): string {
  assert.notEqual(after, before, 'the golden has none of the lines this flag changes');
  return after;
}

interface OutputCase {
  name: string;
  args: Record<string, unknown>;
  cluster: string;
  want: () => string;
}

const outputCases: OutputCase[] = [
  { name: 'iptables mode: both families, each after its # line', cluster: 'example', args: { mode: 'iptables' }, want: () => bothFamilies('example', 'node-a', (f) => `iptables-save.v${f}.txt`) },
  { name: 'the config\'s mode (iptables) without --mode', cluster: 'example', args: {}, want: () => bothFamilies('example', 'node-a', (f) => `iptables-save.v${f}.txt`) },
  { name: 'the config\'s mode (ipvs) without --mode', cluster: 'ipvs-mode', args: {}, want: () => golden('ipvs-mode', 'ipvsadm.txt') },
  { name: '--mode iptables overrides a config that says ipvs', cluster: 'ipvs-mode', args: { mode: 'iptables' }, want: () => golden('ipvs-mode', 'iptables-save.v4.txt') },
  { name: '--family 4: one ruleset, no # line', cluster: 'example', args: { mode: 'iptables', family: '4' }, want: () => golden('example', 'iptables-save.v4.txt') },
  { name: '--family 6', cluster: 'example', args: { mode: 'iptables', family: '6' }, want: () => golden('example', 'iptables-save.v6.txt') },
  { name: 'a single-family node prints no # line', cluster: 'clusterip-basic', args: { mode: 'iptables' }, want: () => golden('clusterip-basic', 'iptables-save.v4.txt') },
  {
    name: '--canonical: as the kernel prints it back',
    cluster: 'example',
    args: { mode: 'iptables', canonical: true },
    want: () => `${header(4, 'node-a')}${renderCanonical(parseIptablesSave(golden('example', 'iptables-save.v4.txt'), { family: 4 }))}`
      + `${header(6, 'node-a')}${renderCanonical(parseIptablesSave(golden('example', 'iptables-save.v6.txt'), { family: 6 }))}`,
  },
  { name: '--random-fully on every MASQUERADE', cluster: 'example', args: { mode: 'iptables', family: '4', randomFully: true }, want: () => withRandomFully(golden('example', 'iptables-save.v4.txt')) },
  { name: '--no-nfacct leaves out the counters\' matches', cluster: 'example', args: { mode: 'iptables', family: '4', nfacct: false }, want: () => withoutNfacct(golden('example', 'iptables-save.v4.txt')) },
  { name: 'ipvs mode: ipvsadm -Ln of both families in one table', cluster: 'example', args: { mode: 'ipvs' }, want: () => golden('example', 'ipvsadm.txt') },
  { name: '--stats', cluster: 'example', args: { mode: 'ipvs', stats: true }, want: () => golden('example', 'ipvsadm-stats.txt') },
  { name: '--ipsets', cluster: 'example', args: { mode: 'ipvs', ipsets: true }, want: () => golden('example', 'ipsets.txt') },
  { name: '--iptables: IPVS mode\'s rules, per family', cluster: 'example', args: { mode: 'ipvs', iptables: true }, want: () => bothFamilies('example', 'node-a', (f) => `ipvs-iptables-save.v${f}.txt`) },
  { name: '--iptables --family 4', cluster: 'example', args: { mode: 'ipvs', iptables: true, family: '4' }, want: () => golden('example', 'ipvs-iptables-save.v4.txt') },
  { name: '--iptables --random-fully', cluster: 'example', args: { mode: 'ipvs', iptables: true, family: '4', randomFully: true }, want: () => withRandomFully(golden('example', 'ipvs-iptables-save.v4.txt')) },
  {
    name: '--scheduler lc names lc on every virtual server',
    cluster: 'example',
    args: { mode: 'ipvs', scheduler: 'lc' },
    want: () => changed(golden('example', 'ipvsadm.txt'), golden('example', 'ipvsadm.txt').replace(/^((?:TCP|UDP|SCTP) +\S+) rr\b/gm, '$1 lc')),
  },
];

for (const c of outputCases) {
  test(`compile: ${c.name}`, async () => {
    const got = await compileText({ file: [join(RULES, c.cluster)], quiet: true, ...c.args });
    assert.equal(got, c.want());
  });
}

test('compile --rate: ipvsadm 1.31\'s --rate columns over the --stats golden\'s rows', async () => {
  const got = (await compileText({ file: [join(RULES, 'example')], quiet: true, mode: 'ipvs', rate: true })).split('\n');
  const capture = readFileSync(join(repoRoot(), 'test', 'fixtures', 'ipvsadm-1.31-sample.txt'), 'utf8').split('\n');
  const block = capture.indexOf('==== ipvsadm -Ln --rate ====');
  assert.ok(block >= 0, 'the capture has an ipvsadm -Ln --rate block');
  assert.deepEqual(got.slice(0, 3), capture.slice(block + 1, block + 4), 'the header lines, as real ipvsadm prints them');
  const stats = golden('example', 'ipvsadm-stats.txt').split('\n');
  const firstColumn = (lines: string[]): string[] => lines.slice(3).map((l) => l.split(/ +/).slice(0, 2).join(' '));
  assert.deepEqual(firstColumn(got), firstColumn(stats), 'the same services and real servers, in the same order');
  assert.ok(got.slice(3, -1).every((l) => /( +0){5}$/.test(l)), 'a compiled table has no traffic: every rate is 0');
});

test('compile --with-jumps: the golden, plus the built-in chains holding kube-proxy\'s jumps', async () => {
  const got = await compileText({ file: [join(RULES, 'example')], quiet: true, mode: 'iptables', family: '4', withJumps: true });
  const builtin = /^(:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT \[0:0\]|-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*)$/;
  assert.deepEqual(got.split('\n').filter((l) => !builtin.test(l)), golden('example', 'iptables-save.v4.txt').split('\n'), 'without the built-in chains, the golden');
  for (const jump of [
    '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    '-A INPUT -j KUBE-FIREWALL',
    '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
  ]) assert.ok(got.includes(`\n${jump}\n`), `missing: ${jump}`);
});

// ------------------------------------------------------------------ usage errors, in process

interface UsageCase { name: string; cluster?: string; args: Record<string, unknown>; flag: string; detail: RegExp }

const usageCases: UsageCase[] = [
  ...(['stats', 'rate', 'ipsets', 'iptables'] as const).map((key) => ({ name: `--${key} with iptables`, args: { mode: 'iptables', [key]: true }, flag: `--${key}`, detail: /does not apply to iptables mode/ })),
  { name: '--scheduler with iptables', args: { mode: 'iptables', scheduler: 'lc' }, flag: '--scheduler', detail: /does not apply to iptables mode/ },
  { name: '--canonical with ipvs', args: { mode: 'ipvs', canonical: true }, flag: '--canonical', detail: /does not apply to ipvs mode/ },
  { name: '--with-jumps with ipvs', args: { mode: 'ipvs', withJumps: true }, flag: '--with-jumps', detail: /does not apply to ipvs mode/ },
  { name: '--no-nfacct with ipvs', args: { mode: 'ipvs', nfacct: false }, flag: '--no-nfacct', detail: /does not apply to ipvs mode/ },
  { name: '--with-jumps with the config\'s ipvs mode', cluster: 'ipvs-mode', args: { withJumps: true }, flag: '--with-jumps', detail: /does not apply to ipvs mode/ },
  { name: 'two output formats', args: { mode: 'ipvs', stats: true, rate: true }, flag: '--rate', detail: /give one of --stats, --rate/ },
  { name: 'an unknown --mode', args: { mode: 'bpf' }, flag: '--mode', detail: /"bpf" is not one of iptables, ipvs, nftables/ },
  { name: '--family 5', args: { family: '5' }, flag: '--family', detail: /"5" is not one of 4, 6/ },
  { name: '--family 6 on an IPv4-only node', cluster: 'clusterip-basic', args: { family: '6' }, flag: '--family', detail: /no IPv6 services or node addresses/ },
];

for (const c of usageCases) {
  test(`compile usage error: ${c.name} names ${c.flag}`, async () => {
    await assert.rejects(compileText({ file: [join(RULES, c.cluster ?? 'example')], quiet: true, ...c.args }), (e: unknown) => {
      assert.ok(isKpsimError(e), `not a KpsimError: ${String(e)}`);
      assert.equal(e.code, 'KPSIM_ERR_USAGE_BAD_FLAG');
      assert.ok(e.message.startsWith(`${c.flag}: `), `the message names ${c.flag}: ${e.message}`);
      assert.match(e.message, c.detail);
      return true;
    });
  });
}

// ------------------------------------------------------------------ the real process

test('kpsim compile (process): exit 0 and the golden text on stdout, nothing on stderr with -q', () => {
  const got = runCli(['compile', '-q', '-f', 'rules/example', '--mode', 'ipvs', '--stats']);
  assert.equal(got.status, 0, got.stderr);
  assert.equal(got.stdout, golden('example', 'ipvsadm-stats.txt'));
  assert.equal(got.stderr, '');
});

const processUsage: { args: string[]; stderr: string }[] = [
  { args: ['--mode', 'iptables', '--stats'], stderr: 'kpsim: --stats: does not apply to iptables mode\n' },
  { args: ['--mode', 'ipvs', '--with-jumps'], stderr: 'kpsim: --with-jumps: does not apply to ipvs mode\n' },
  { args: ['--family', '7'], stderr: 'kpsim: --family: "7" is not one of 4, 6\n' },
];
for (const c of processUsage) {
  test(`kpsim compile (process) ${c.args.join(' ')}: exit 2, the flag named, nothing on stdout`, () => {
    const got = runCli(['compile', '-q', '-f', 'rules/example', ...c.args]);
    assert.equal(got.status, 2, got.stderr);
    assert.equal(got.stderr, c.stderr);
    assert.equal(got.stdout, '');
  });
}
