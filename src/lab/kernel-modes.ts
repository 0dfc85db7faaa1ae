/**
 * The kernel's side of each proxy mode, one entry per mode, as src/node/modes.ts has one driver
 * per mode for kpsim's side. The lab never branches on the mode: it asks the mode driver for the
 * ruleset text (render(compiled, 'kube-proxy')) and this entry for how the kernel takes it (the
 * tool that loads it, the sysctls kube-proxy sets with it, how its rules are listed back, how a
 * sync is written). A mode kpsim does not compile yet is listed here already and says so when
 * asked; when its driver lands in modes.ts, it runs with no change here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { KpsimError } from '../errors.js';
import { braceDelta } from '../nftables/parse.js';
import type { ModeCompileOptions } from '../node/mode-driver.js';
import { driverOf, isRulesMode } from '../node/modes.js';
import type { ProxierState } from '../tracker/types.js';
import type { Family } from '../util/ip.js';
import { hasCommand, inNamespace, run } from './exec.js';
import { iptablesSaveRules } from './kernel-text.js';
import type { LoadedRuleset } from './lab.js';
import { IptablesRulesWriter } from '../iptables/incremental-sync.js';
import { renderRestore } from '../iptables/restore.js';
import { NftablesRulesWriter } from '../nftables/incremental-sync.js';
import { type NftTransaction, renderTransaction } from '../nftables/transaction.js';

export const LAB_MODES = ['iptables', 'nftables', 'ipvs'] as const;
export type LabMode = (typeof LAB_MODES)[number];

/** One sync's input and the command that applies it. */
export interface SyncStep {
  readonly argv: readonly string[];
  readonly input: string;
}

/**
 * The syncs `lab sync-bench` times, written in this order by one of the agent's rules writers (as
 * kube-proxy's proxier writes them, keeping what it wrote before): a full sync of `before`, a
 * one-service sync to `after` and one back, and a sync after no change.
 */
export interface SyncSteps {
  readonly full: SyncStep;
  readonly forth: SyncStep;
  readonly back: SyncStep;
  readonly noChange: SyncStep;
}

export interface KernelMode {
  readonly mode: LabMode;
  /** Commands this mode needs besides ip, conntrack and nft (the lab's own). */
  readonly tools: readonly string[];
  /** Why this machine cannot run the mode in a namespace; undefined when it can. */
  unavailable(): string | undefined;
  /** What the mode's compile needs to give a complete ruleset for an empty namespace. */
  readonly compileOptions: ModeCompileOptions;
  /** sysctls kube-proxy sets in this mode. */
  sysctls(states: readonly ProxierState[]): string[];
  /** Loads one family's ruleset (the driver's kube-proxy rendering) into an empty namespace. */
  load(ns: string, family: Family, text: string): Promise<{ tool: string; ms: number }>;
  /** The rules of each chain as the kernel prints them back, keyed "ip nat KUBE-SERVICES". */
  kernelRuleTexts(ns: string, families: readonly Family[]): Promise<Map<string, string[]>>;
  /**
   * The rules of each chain of what was loaded, in order, keyed the kernel's way, in the form the
   * mode's tracer names its hops' rules with.
   */
  renderedRules(ruleset: LoadedRuleset): Map<string, string[]>;
  /** The kernel's name of a trace hop's table: iptables' "nat" is nft's "ip nat". */
  kernelTable(hopTable: string, family: Family): string;
  /** Forgets every client's session affinity, so the next connection from any source is a fresh one. */
  resetAffinity(ns: string): Promise<void>;
  /**
   * kube-proxy's syncs over a loaded `before`: full, then partial (iptables) or incremental
   * (nftables) to `after`, where the Service `changed` ("namespace/name") differs, and back.
   */
  syncSteps(before: ProxierState, after: ProxierState, changed: string): SyncSteps;
  /** Words for the sync kinds, for reports: "iptables-restore full" ... */
  readonly syncNames: { readonly full: string; readonly partial: string };
}

/** A whole ruleset loaded at once: 10k services are 47 MB for nft -f, minutes on a busy machine. */
const LOAD_TIMEOUT_MS = 30 * 60_000;

const restoreTool = (family: Family): string => (family === 4 ? 'iptables-restore' : 'ip6tables-restore');
const saveTool = (family: Family): string => (family === 4 ? 'iptables-save' : 'ip6tables-save');

const iptablesMode: KernelMode = {
  mode: 'iptables',
  tools: ['iptables-restore', 'ip6tables-restore', 'iptables-save', 'ip6tables-save', 'nfacct'],
  unavailable: () => modeNotCompiled('iptables'),
  compileOptions: { withJumps: true },
  sysctls(states) {
    // kube-proxy's iptables mode lets localhost reach node ports (iptables.localhostNodePorts).
    return states.some((s) => s.family === 4 && s.config.localhostNodePorts) ? ['net.ipv4.conf.all.route_localnet=1'] : [];
  },
  async load(ns, family, text) {
    // `-m nfacct` matches load only when their counter exists: kube-proxy makes them first.
    for (const name of new Set([...text.matchAll(/--nfacct-name\s+(\S+)/g)].map((m) => m[1]!))) {
      await run(inNamespace(ns, ['nfacct', 'add', name]), { allowFailure: true });
    }
    const r = await run(inNamespace(ns, [restoreTool(family)]), { input: text, timeoutMs: LOAD_TIMEOUT_MS });
    return { tool: restoreTool(family), ms: r.ms };
  },
  async kernelRuleTexts(ns, families) {
    const all = new Map<string, string[]>();
    for (const family of families) {
      const saved = await run(inNamespace(ns, [saveTool(family)]));
      for (const [k, v] of iptablesSaveRules(saved.stdout, family)) all.set(k, v);
    }
    return all;
  },
  renderedRules: (r) => iptablesSaveRules(r.text, r.family),
  kernelTable: (table, family) => `${family === 4 ? 'ip' : 'ip6'} ${table}`,
  async resetAffinity(ns) {
    // ClientIP affinity lives in the `recent` match's lists; "/" clears one.
    await run(inNamespace(ns, ['sh', '-c', 'for f in /proc/net/xt_recent/*; do [ -e "$f" ] && echo / > "$f"; done; true']));
  },
  syncSteps(before, after, changed) {
    // Stale chains are left for a later cleanup (kube-proxy does it once a syncPeriod in large
    // clusters): the chain the change adds stays, flushed, and the next change rewrites it.
    const writer = new IptablesRulesWriter();
    const argv = [restoreTool(before.family as Family), '--noflush', '--counters'];
    const step = (state: ProxierState, full: boolean, updated: readonly string[]): SyncStep =>
      ({ argv, input: renderRestore(writer.sync({ state, full, updatedServices: new Set(updated) }).payload) });
    return { full: step(before, true, []), forth: step(after, false, [changed]), back: step(before, false, [changed]), noChange: step(before, false, []) };
  },
  syncNames: { full: 'iptables-restore full', partial: 'iptables-restore partial' },
};

const nftablesMode: KernelMode = {
  mode: 'nftables',
  tools: [],
  unavailable: () => modeNotCompiled('nftables'),
  compileOptions: {},
  sysctls: () => [],
  async load(ns, _family, text) {
    const r = await run(inNamespace(ns, ['nft', '-f', '-']), { input: text, timeoutMs: LOAD_TIMEOUT_MS });
    return { tool: 'nft -f', ms: r.ms };
  },
  async kernelRuleTexts(ns) {
    const listed = await run(inNamespace(ns, ['nft', 'list', 'ruleset']));
    return nftListedRules(listed.stdout);
  },
  // The tracer names rules as `nft list ruleset` prints them (the driver's canonical rendering,
  // which the kernel prints back byte for byte), not as the `nft -f` script wrote them.
  renderedRules: (r) => nftListedRules(driverOf(r.compiled).render(r.compiled, 'canonical')),
  kernelTable: (table) => table,
  async resetAffinity(ns) {
    // ClientIP affinity lives in kube-proxy's affinity-* sets (one per endpoint): emptied, one line each.
    const listed = await run(inNamespace(ns, ['nft', 'list', 'sets']));
    const flushes: string[] = [];
    let table = '';
    for (const line of listed.stdout.split('\n')) {
      const t = /^table (\S+ \S+) \{/.exec(line);
      if (t) table = t[1]!;
      const set = /^\s*set (affinity-\S+) \{/.exec(line);
      if (set) flushes.push(`flush set ${table} ${set[1]}`);
    }
    if (flushes.length > 0) await run(inNamespace(ns, ['nft', '-f', '-']), { input: `${flushes.join('\n')}\n` });
  },
  syncSteps(before, after, changed) {
    // What the kernel holds is what the table's transactions added: the lab loaded `before`, and
    // a chain the change adds stays, flushed as stale, for the cleanup a second later (not timed).
    const writer = new NftablesRulesWriter();
    const chains = new Set<string>();
    const sets = new Set<string>();
    let now = 0;
    const step = (state: ProxierState, full: boolean, updated: readonly string[]): SyncStep => {
      const { tx } = writer.sync({ state, full, updatedServices: new Set(updated), now: now++, existingChains: [...chains], existingSets: [...sets] });
      addedNames(tx, chains, sets);
      return { argv: ['nft', '-f', '-'], input: renderTransaction(tx) };
    };
    return { full: step(before, true, []), forth: step(after, false, [changed]), back: step(before, false, [changed]), noChange: step(before, false, []) };
  },
  syncNames: { full: 'nft -f full', partial: 'nft -f incremental' },
};

const ipvsMode: KernelMode = {
  mode: 'ipvs',
  tools: ['ipvsadm', 'ipset'],
  unavailable() {
    // kube-proxy loads the module itself when it starts in IPVS mode; so does the lab.
    if (!existsSync('/proc/net/ip_vs') && hasCommand('modprobe')) spawnSync('modprobe', ['ip_vs'], { stdio: 'ignore', timeout: 10_000 });
    if (!existsSync('/proc/net/ip_vs')) return 'IPVS: this kernel has no ip_vs (CONFIG_IP_VS is not set, or the module cannot be loaded), so kernel-ipvs is skipped';
    return 'IPVS: kpsim\'s lab does not load IPVS tables yet';
  },
  compileOptions: {},
  sysctls: () => [],
  load: () => Promise.reject(new Error('ipvs: not loadable')),
  kernelRuleTexts: () => Promise.resolve(new Map()),
  renderedRules: () => new Map(),
  kernelTable: (table) => table,
  resetAffinity: () => Promise.resolve(),
  syncSteps() {
    const none = { argv: [], input: '' };
    return { full: none, forth: none, back: none, noChange: none };
  },
  syncNames: { full: 'ipvsadm full', partial: 'ipvsadm partial' },
};

/** The chains and sets a transaction adds, into those the kernel holds. */
function addedNames(tx: NftTransaction, chains: Set<string>, sets: Set<string>): void {
  for (const op of tx.ops) {
    if (op.verb !== 'add') continue;
    if (op.kind === 'chain') chains.add(op.name);
    else if (op.kind === 'set') sets.add(op.set.name);
  }
}

const kernelModes: Readonly<Record<LabMode, KernelMode>> = { iptables: iptablesMode, nftables: nftablesMode, ipvs: ipvsMode };

export function kernelMode(mode: LabMode): KernelMode {
  return kernelModes[mode];
}

export function isLabMode(value: string): value is LabMode {
  return (LAB_MODES as readonly string[]).includes(value);
}

export function parseLabMode(value: string, flag: string): LabMode {
  if (isLabMode(value)) return value;
  throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', `${flag}: ${JSON.stringify(value)} is not one of ${LAB_MODES.join(', ')}`);
}

/** kpsim compiles the mode (its driver is in src/node/modes.ts), or a sentence saying it does not yet. */
function modeNotCompiled(mode: LabMode): string | undefined {
  return isRulesMode(mode) ? undefined : `${mode}: this kpsim does not compile ${mode} mode yet (no driver in src/node/modes.ts)`;
}

/**
 * Why the lab cannot run here at all (not root, no ip, no network namespaces, no netfilter
 * tools), else why this mode cannot: a sentence, or undefined when everything is in place.
 */
export function labUnavailable(mode: LabMode): string | undefined {
  if (process.getuid?.() !== 0) return 'the kernel lab needs root (it makes network namespaces and loads netfilter rules)';
  const missing = (tools: readonly string[]): string | undefined => {
    const tool = tools.find((t) => !hasCommand(t));
    return tool === undefined ? undefined : `the kernel lab needs ${tool} (Debian packages: iproute2 nftables conntrack iptables nfacct perl-base)`;
  };
  const common = missing(['ip', 'nft', 'conntrack', 'perl']);
  if (common !== undefined) return common;
  if (!existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables')) return 'the kernel lab needs bridge netfilter (br_netfilter), as kube-proxy does';
  // The kernel (or kpsim) first: no IPVS in the kernel is the one line to say, not a missing ipvsadm.
  return kernelMode(mode).unavailable() ?? missing(kernelMode(mode).tools);
}

/** The kernel's rule listing of `nft list ruleset`, each rule's text by chain ("ip kube-proxy services"). */
export function nftListedRules(text: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  let table: string | undefined;
  let chain: string | undefined;
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const before = depth;
    depth += braceDelta(line);
    if (before === 0) table = /^table (\S+ \S+) \{/.exec(line)?.[1];
    else if (before === 1) chain = /^chain (\S+) \{/.exec(line)?.[1];
    else if (before === 2 && depth === 2 && chain !== undefined && table !== undefined && line !== '' && !/^(type|policy|comment) /.test(line)) {
      const key = `${table} ${chain}`;
      chains.set(key, [...(chains.get(key) ?? []), line.replace(/\s*# handle \d+$/, '')]);
    }
  }
  return chains;
}

/** The Linux kernel's release, for reports. */
export function kernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
