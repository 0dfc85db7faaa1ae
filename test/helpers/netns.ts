/**
 * What the kernel tests share: whether this machine can run them (and if not, the reason to skip
 * with), network namespaces named kpsim-test-<pid>-... that are deleted when the test ends, and
 * iptables-restore / iptables-save run inside one. Only namespaces this process created are ever
 * touched.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import type { Family } from '../../src/util/ip.js';

/** Commands a kernel test may need, each with the Debian package that has it. */
const TOOLS = {
  ip: 'iproute2',
  'iptables-restore': 'iptables',
  nfacct: 'nfacct',
  ipset: 'ipset',
  conntrack: 'conntrack',
} as const;
export type Tool = keyof typeof TOOLS;

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

/**
 * Why the kernel tests cannot run here (not Linux, not root, a command missing, ...), or false.
 * `ip` and iptables with the nf_tables backend are always needed.
 */
export function kernelSkipReason(extra: readonly Tool[] = [], opts: { bridgeNetfilter?: boolean } = {}): string | false {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns add, iptables-restore)';
  for (const tool of ['ip', 'iptables-restore', ...extra] as const) {
    if (!hasCommand(tool)) return `needs ${tool} (Debian package ${TOOLS[tool]})`;
  }
  const tools = iptablesTools();
  if (typeof tools === 'string') return tools;
  if (opts.bridgeNetfilter && !existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) return 'needs bridge netfilter (modprobe br_netfilter)';
  return false;
}

export interface IptablesTools {
  restore: Record<Family, string>;
  save: Record<Family, string>;
}

/**
 * The iptables-nft commands (kpsim's canonical form is what iptables-nft 1.8.9 prints back), or
 * why there are none: the legacy backend prints some matches differently.
 */
export function iptablesTools(): IptablesTools | string {
  const pick = (nft: string, plain: string): string | undefined => {
    if (hasCommand(nft)) return nft;
    if (!hasCommand(plain)) return undefined;
    const version = spawnSync(plain, ['--version'], { encoding: 'utf8' }).stdout ?? '';
    return version.includes('nf_tables') ? plain : undefined;
  };
  const restore4 = pick('iptables-nft-restore', 'iptables-restore');
  const save4 = pick('iptables-nft-save', 'iptables-save');
  const restore6 = pick('ip6tables-nft-restore', 'ip6tables-restore');
  const save6 = pick('ip6tables-nft-save', 'ip6tables-save');
  if (!restore4 || !save4 || !restore6 || !save6) return 'needs iptables with the nf_tables backend (iptables-nft-restore/-save)';
  return { restore: { 4: restore4, 6: restore6 }, save: { 4: save4, 6: save6 } };
}

let namespaces = 0;

/** A fresh network namespace, deleted when the test (or suite) `t` ends, whatever happens. */
export function createNamespace(t: Pick<TestContext, 'after'>, label = ''): string {
  const name = `kpsim-test-${process.pid}-${++namespaces}${label === '' ? '' : `-${label}`}`;
  const created = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  assert.equal(created.status, 0, `ip netns add ${name}: ${created.stderr}`);
  t.after(() => {
    spawnSync('ip', ['netns', 'del', name]);
  });
  return name;
}

/** `fn` run with a namespace of its own, deleted before this returns (for probes at load time). */
export function withTemporaryNamespace<T>(fn: (ns: string) => T): T {
  const name = `kpsim-test-${process.pid}-${++namespaces}-probe`;
  const created = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`ip netns add ${name}: ${created.stderr}`);
  try {
    return fn(name);
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
  }
}

/**
 * Why this kernel cannot load a rule with `-m <module>` (its xt_ module is not built or not
 * loadable here), or false. `--test` would not tell: it only parses.
 */
export function missingMatchModule(family: Family, module: string, args: readonly string[]): string | false {
  const tools = iptablesTools();
  if (typeof tools === 'string') return tools;
  const rule = `*filter\n:KPSIM-PROBE - [0:0]\n-A KPSIM-PROBE -m ${module} ${args.join(' ')} -j ACCEPT\nCOMMIT\n`;
  const loaded = withTemporaryNamespace((ns) => inNamespace(ns, [tools.restore[family]], rule));
  return loaded.ok ? false : `this kernel cannot load "-m ${module}" (xt_${module} missing): ${loaded.output.split('\n')[0]}`;
}

export interface RunResult { ok: boolean; stdout: string; output: string }

/** A command inside namespace `ns`, with `input` on its stdin. */
export function inNamespace(ns: string, command: readonly string[], input?: string): RunResult {
  const result = spawnSync('ip', ['netns', 'exec', ns, ...command], { input, encoding: 'utf8', timeout: 60_000 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`.trim();
  return { ok: result.status === 0, stdout: result.stdout ?? '', output };
}

/** Like inNamespace, but a failure fails the test with the command's output (and its input). */
export function mustInNamespace(ns: string, command: readonly string[], input?: string): string {
  const r = inNamespace(ns, command, input);
  assert.ok(r.ok, `${command.join(' ')} in ${ns} failed:\n${r.output}${input === undefined ? '' : `\n--- input ---\n${input}`}`);
  return r.stdout;
}

/**
 * iptables-save's text with only what the kernel adds taken out: its "# Generated by" and
 * "# Completed on" comment lines, and the packet and byte counters (zeroed, as kpsim's canonical
 * form prints them).
 */
export function withoutSaveNoise(saved: string): string {
  return saved
    .split('\n')
    .filter((line) => !line.startsWith('# Generated by ') && !line.startsWith('# Completed on '))
    .map((line) => line.replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1 [0:0]'))
    .join('\n');
}

/** restore --test (parse only), restore (the kernel checks), save: the kernel's text, noise removed. */
export function loadAndSave(ns: string, family: Family, text: string): string {
  const tools = iptablesTools();
  assert.ok(typeof tools !== 'string', tools as string);
  mustInNamespace(ns, [tools.restore[family], '--test'], text);
  mustInNamespace(ns, [tools.restore[family]], text);
  return withoutSaveNoise(mustInNamespace(ns, [tools.save[family]]));
}
