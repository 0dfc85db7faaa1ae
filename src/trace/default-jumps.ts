/**
 * The jumps from the kernel's built-in chains into kube-proxy's chains.
 *
 * kube-proxy does not write these into its iptables-restore input (that would replace every
 * rule of PREROUTING, INPUT, ...). It ensures them one at a time at each full sync,
 * `EnsureRule(Prepend, ...)`, walking `iptablesJumpChains` and then `iptablesKubeletJumpChains`
 * (pkg/proxy/iptables/proxier.go), each rule being
 * `[extraArgs...] -m comment --comment <comment> -j <chain>` (no comment for KUBE-FIREWALL).
 *
 * Because each one is prepended, a chain ends up holding them in the reverse of that order.
 * KUBE-FIREWALL's jumps are kubelet's too, and kubelet starts first and creates them, so on a
 * real node they sit last and kube-proxy's check finds them already there:
 *
 *   INPUT:   KUBE-PROXY-FIREWALL, KUBE-NODEPORTS, KUBE-EXTERNAL-SERVICES, KUBE-FIREWALL
 *   FORWARD: KUBE-PROXY-FIREWALL, KUBE-FORWARD, KUBE-SERVICES, KUBE-EXTERNAL-SERVICES
 *   OUTPUT:  KUBE-PROXY-FIREWALL, KUBE-SERVICES, KUBE-FIREWALL
 *
 * which is what `iptables -L` shows on a kubeadm node.
 */
import type { Family } from '../util/ip.js';
import { BUILTIN_CHAINS, type Chain, type Rule, type Ruleset, type TableName } from '../iptables/types.js';

export interface JumpRule {
  readonly table: TableName;
  /** The built-in chain the rule sits in. */
  readonly chain: string;
  /** Rule tokens after "-A CHAIN", ending in "-j <target>". */
  readonly args: readonly string[];
  /** The kube-proxy chain it jumps to. */
  readonly target: string;
}

export interface KubeProxyJumpOptions {
  /**
   * Include INPUT/OUTPUT → KUBE-FIREWALL (kubelet's chain, which kube-proxy also ensures).
   * Default true.
   */
  kubeletFirewall?: boolean;
}

const NEW_ONLY = ['-m', 'conntrack', '--ctstate', 'NEW'] as const;

/** [table, target chain, source chain, comment, extra args], as proxier.go lists them. */
const JUMPS: readonly (readonly [TableName, string, string, string, readonly string[]])[] = [
  ['filter', 'KUBE-EXTERNAL-SERVICES', 'INPUT', 'kubernetes externally-visible service portals', NEW_ONLY],
  ['filter', 'KUBE-EXTERNAL-SERVICES', 'FORWARD', 'kubernetes externally-visible service portals', NEW_ONLY],
  ['filter', 'KUBE-NODEPORTS', 'INPUT', 'kubernetes health check service ports', []],
  ['filter', 'KUBE-SERVICES', 'FORWARD', 'kubernetes service portals', NEW_ONLY],
  ['filter', 'KUBE-SERVICES', 'OUTPUT', 'kubernetes service portals', NEW_ONLY],
  ['filter', 'KUBE-FORWARD', 'FORWARD', 'kubernetes forwarding rules', []],
  ['filter', 'KUBE-PROXY-FIREWALL', 'INPUT', 'kubernetes load balancer firewall', NEW_ONLY],
  ['filter', 'KUBE-PROXY-FIREWALL', 'OUTPUT', 'kubernetes load balancer firewall', NEW_ONLY],
  ['filter', 'KUBE-PROXY-FIREWALL', 'FORWARD', 'kubernetes load balancer firewall', NEW_ONLY],
  ['nat', 'KUBE-SERVICES', 'OUTPUT', 'kubernetes service portals', []],
  ['nat', 'KUBE-SERVICES', 'PREROUTING', 'kubernetes service portals', []],
  ['nat', 'KUBE-POSTROUTING', 'POSTROUTING', 'kubernetes postrouting rules', []],
];

const KUBELET_JUMPS: readonly (readonly [TableName, string, string])[] = [
  ['filter', 'KUBE-FIREWALL', 'INPUT'],
  ['filter', 'KUBE-FIREWALL', 'OUTPUT'],
];

/**
 * The jump rules in the order kube-proxy ensures them (each one is prepended to its chain).
 * The list is the same for both families: kube-proxy ensures the KUBE-FIREWALL jumps for IPv6
 * too, where the chain stays empty. `family` is taken so callers need not know that.
 */
export function kubeProxyJumps(family: Family, opts: KubeProxyJumpOptions = {}): JumpRule[] {
  void family;
  const rules: JumpRule[] = JUMPS.map(([table, target, chain, comment, extra]) => ({
    table, chain, target, args: [...extra, '-m', 'comment', '--comment', comment, '-j', target],
  }));
  if (opts.kubeletFirewall ?? true) {
    for (const [table, target, chain] of KUBELET_JUMPS) rules.push({ table, chain, target, args: ['-j', target] });
  }
  return rules;
}

/**
 * The same rules in the order they sit in each built-in chain on a node: kube-proxy's own
 * jumps reversed (prepends), then kubelet's KUBE-FIREWALL jumps, which were there first.
 * Grouped by table and chain; use this to write `-A INPUT ...` lines into a restore file.
 */
export function kubeProxyJumpsInChainOrder(family: Family, opts: KubeProxyJumpOptions = {}): JumpRule[] {
  const all = kubeProxyJumps(family, opts);
  const kubelet = all.filter((r) => r.target === 'KUBE-FIREWALL');
  const own = all.filter((r) => r.target !== 'KUBE-FIREWALL').reverse();
  const inChainOrder = [...own, ...kubelet];
  // Stable sort: filter before nat (as kube-proxy writes its tables), built-in chains in the
  // kernel's order, and within a chain the order worked out above.
  const rank = (r: JumpRule): number => (r.table === 'filter' ? 0 : 100) + BUILTIN_CHAINS[r.table].indexOf(r.chain);
  return inChainOrder.map((rule, i) => ({ rule, i }))
    .sort((a, b) => rank(a.rule) - rank(b.rule) || a.i - b.i)
    .map((x) => x.rule);
}

/** The rules of one built-in chain, as kpsim Rules. */
export function kubeProxyJumpRules(family: Family, table: TableName, chain: string, opts: KubeProxyJumpOptions = {}): Rule[] {
  return kubeProxyJumpsInChainOrder(family, opts)
    .filter((r) => r.table === table && r.chain === chain)
    .map((r) => ({ chain: r.chain, args: r.args }));
}

/**
 * The ruleset as it sits on a node after kube-proxy's sync: every built-in chain of its tables
 * declared (first, in the kernel's order), holding kube-proxy's jumps into the chains the
 * ruleset has. A built-in chain the ruleset already has is kept as it is. The result loads
 * with one iptables-restore, and traces like the restore input with the jumps assumed.
 */
export function withKubeProxyJumps(ruleset: Ruleset, opts: KubeProxyJumpOptions = {}): Ruleset {
  const jumps = kubeProxyJumpsInChainOrder(ruleset.family, opts);
  const tables = new Map(ruleset.tables);
  for (const [name, table] of ruleset.tables) {
    const chains = new Map<string, Chain>();
    for (const builtin of BUILTIN_CHAINS[name]) chains.set(builtin, table.chains.get(builtin) ?? { name: builtin, rules: [] });
    for (const jump of jumps) {
      if (jump.table !== name || !table.chains.has(jump.target) || table.chains.has(jump.chain)) continue;
      chains.get(jump.chain)!.rules.push({ chain: jump.chain, args: [...jump.args] });
    }
    for (const [chainName, chain] of table.chains) chains.set(chainName, chain);
    tables.set(name, { name: table.name, chains });
  }
  return { family: ruleset.family, tables };
}
