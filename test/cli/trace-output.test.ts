/**
 * `kpsim trace`'s human output as a user gets it from the installed entry point: by outcome and
 * plain when piped, coloured on a terminal (a real pseudo-terminal, through util-linux `script`)
 * unless NO_COLOR is set, the full walk with --verbose (what formatTrace prints, never coloured),
 * --json untouched by --verbose; and `kpsim demo`'s IPv6 destinations written [address]:port.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { formatTrace } from '../../src/trace/format.js';
import { formatTraceBranches } from '../../src/trace/format-branches.js';
import { stripStyle } from '../../src/trace/text-style.js';
import type { Packet, TraceResult } from '../../src/trace/types.js';
import { cliEntry, runAsync, runCli } from '../helpers/run-cli.js';

interface FlowCase {
  name: string;
  args: string[];
  packet: Packet;
}

const flows: FlowCase[] = [
  { name: 'iptables, a pod to a three-endpoint ClusterIP', args: [], packet: { proto: 'tcp', src: '10.244.1.20', dst: '10.96.100.20', dport: 80 } },
  { name: 'IPVS, UDP DNS', args: ['--mode', 'ipvs'], packet: { proto: 'udp', src: '10.244.1.20', dst: '10.96.0.10', dport: 53 } },
  { name: 'nftables, a NodePort from outside', args: ['--mode', 'nftables'], packet: { proto: 'tcp', src: '203.0.113.9', dst: '192.168.0.2', dport: 30080 } },
];

const traceArgs = (c: FlowCase, ...more: string[]): string[] =>
  ['trace', '-q', '-f', 'rules/example', ...c.args, '--proto', c.packet.proto, '--src', c.packet.src, '--dst', c.packet.dst, '--dport', String(c.packet.dport), ...more];

function ok(args: readonly string[]): string {
  const got = runCli(args);
  assert.equal(got.status, 0, `kpsim ${args.join(' ')}\n${got.stderr}`);
  return got.stdout;
}

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const NO_SCRIPT = hasScript ? false : 'util-linux `script` (a pseudo-terminal) is not installed';

/** The CLI on a pseudo-terminal (util-linux `script`), its output with the terminal's CRLF as LF. */
async function onTerminal(args: readonly string[], env: Record<string, string | undefined>): Promise<string> {
  const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, ...process.execArgv, cliEntry(), ...args].map(quote).join(' ');
  const { NO_COLOR: _drop, ...inherited } = process.env;
  const got = await runAsync('script', ['-qec', command, '/dev/null'], { env: { ...inherited, TERM: 'xterm-256color', ...env } as NodeJS.ProcessEnv });
  assert.equal(got.status, 0, `script -c kpsim ${args.join(' ')}\n${got.stdout}\n${got.stderr}`);
  return got.stdout.replace(/\r\n/g, '\n');
}

/** Each flow's outputs, run once: --json, plain, --verbose, --json --verbose. */
const outputs = new Map<FlowCase, { json: string; plain: string; verbose: string; jsonVerbose: string }>();
function outputsOf(c: FlowCase): { json: string; plain: string; verbose: string; jsonVerbose: string } {
  let got = outputs.get(c);
  if (!got) {
    got = { json: ok(traceArgs(c, '--json')), plain: ok(traceArgs(c)), verbose: ok(traceArgs(c, '--verbose')), jsonVerbose: ok(traceArgs(c, '--json', '--verbose')) };
    outputs.set(c, got);
  }
  return got;
}

for (const c of flows) {
  test(`trace (process), ${c.name}: piped, the by-outcome text of its own JSON, no colour`, () => {
    const { json, plain } = outputsOf(c);
    assert.ok(!plain.includes('\x1b'), `no escape sequence when piped:\n${JSON.stringify(plain)}`);
    assert.equal(plain, `${formatTraceBranches(JSON.parse(json) as TraceResult, { packet: c.packet }).join('\n')}\n`);
    assert.match(plain, /^then, on every branch:$/m, plain);
  });

  test(`trace (process), ${c.name}: --verbose prints the full walk (formatTrace), --json ignores it`, () => {
    const { json, plain, verbose, jsonVerbose } = outputsOf(c);
    assert.equal(jsonVerbose, json, '--json is the same with --verbose');
    assert.equal(verbose, `${formatTrace(JSON.parse(json) as TraceResult)}\n`);
    assert.notEqual(verbose, plain, 'the by-outcome text differs from the walk');
  });
}

const example = flows[0]!;

interface TerminalCase {
  name: string;
  env: Record<string, string>;
  extra: string[];
  coloured: boolean;
}

const terminalCases: TerminalCase[] = [
  { name: 'a terminal gets colours', env: {}, extra: [], coloured: true },
  { name: 'NO_COLOR=1 turns them off', env: { NO_COLOR: '1' }, extra: [], coloured: false },
  { name: 'an empty NO_COLOR does not (no-color.org)', env: { NO_COLOR: '' }, extra: [], coloured: true },
  { name: 'TERM=dumb turns them off', env: { TERM: 'dumb' }, extra: [], coloured: false },
  { name: '--verbose is never coloured', env: {}, extra: ['--verbose'], coloured: false },
];

for (const c of terminalCases) {
  test(`trace (process, pseudo-terminal): ${c.name}`, { skip: NO_SCRIPT }, async () => {
    const piped = c.extra.includes('--verbose') ? outputsOf(example).verbose : outputsOf(example).plain;
    const text = await onTerminal(traceArgs(example, ...c.extra), c.env);
    assert.equal(text.includes('\x1b['), c.coloured, `colour ${c.coloured ? 'expected' : 'unexpected'}:\n${JSON.stringify(text.slice(0, 400))}`);
    assert.equal(stripStyle(text), piped, 'the same text, colours aside');
    if (c.coloured) assert.match(text, /\x1b\[32mDNAT\x1b\[39m/, 'the verdict in green');
  });
}

test('trace --help lists --verbose and says when the output is coloured', () => {
  const help = ok(['trace', '--help']);
  assert.match(help, /--verbose +print the full walk/);
  assert.match(help, /Coloured on a terminal; not when piped, nor with NO_COLOR set\./);
});

test('demo (process): an IPv6 destination is [address]:port', () => {
  const text = ok(['demo', '-q', '-f', 'rules/example', '--no-compare']);
  const ipv6 = text.split('\n').filter((l) => /^ {4}(tcp|udp|sctp) [0-9a-f]*:[0-9a-f:]* -> /.test(l));
  assert.ok(ipv6.length > 0, `rules/example has IPv6 flows in the demo:\n${text}`);
  for (const line of ipv6) assert.match(line, / -> \[[0-9a-f:]+\]:\d+$/, line);
});
