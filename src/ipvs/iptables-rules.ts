/**
 * The iptables rules kube-proxy's IPVS mode still needs (writeIptablesRules, acceptIPVSTraffic
 * and createAndLinkKubeChain in pkg/proxy/ipvs/proxier.go): masquerading, the NodePort and
 * LoadBalancer marks, source-range firewalling and the filter that keeps VIPs from exposing
 * host ports. IPVS does the load balancing itself, so there is no DNAT here and the rule count
 * does not grow with services: most rules match an ipset.
 *
 * kube-proxy restores nat then filter with NoFlushTables; the jumps from the built-in chains are
 * placed by EnsureRule(Prepend) one by one, so the one ensured last ends up first. The ruleset
 * kpsim builds is what `iptables-save` then shows: built-in chains with those jumps, then the
 * KUBE- chains in kube-proxy's declaration order.
 */
import { appendRule, chainOf, createRuleset, declareChain, tableOf } from '../iptables/ruleset-builder.js';
import { BUILTIN_CHAINS, type Ruleset, type Table } from '../iptables/types.js';
import type { Family } from '../util/ip.js';
import {
  type IPSet,
  type IPSetBaseName,
  KUBE_CLUSTER_IP,
  KUBE_EXTERNAL_IP,
  KUBE_EXTERNAL_IP_LOCAL,
  KUBE_HEALTH_CHECK_NODE_PORT,
  KUBE_IPVS_IPS,
  KUBE_LOAD_BALANCER,
  KUBE_LOAD_BALANCER_FW,
  KUBE_LOAD_BALANCER_LOCAL,
  KUBE_LOAD_BALANCER_SOURCE_CIDR,
  KUBE_LOAD_BALANCER_SOURCE_IP,
  KUBE_LOOP_BACK,
  KUBE_NODE_PORT_LOCAL_SCTP,
  KUBE_NODE_PORT_LOCAL_TCP,
  KUBE_NODE_PORT_LOCAL_UDP,
  KUBE_NODE_PORT_SCTP,
  KUBE_NODE_PORT_TCP,
  KUBE_NODE_PORT_UDP,
} from './ipsets.js';

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_NODE_PORT = 'KUBE-NODE-PORT';
export const KUBE_LOAD_BALANCER_CHAIN = 'KUBE-LOAD-BALANCER';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_SOURCE_RANGES_FIREWALL = 'KUBE-SOURCE-RANGES-FIREWALL';
export const KUBE_IPVS_FILTER = 'KUBE-IPVS-FILTER';
export const KUBE_IPVS_OUT_FILTER = 'KUBE-IPVS-OUT-FILTER';

/** iptablesJumpChain: the jumps from the built-in chains, in the order kube-proxy ensures them. */
const JUMPS: readonly { table: 'nat' | 'filter'; from: string; to: string; comment: string }[] = [
  { table: 'nat', from: 'OUTPUT', to: KUBE_SERVICES, comment: 'kubernetes service portals' },
  { table: 'nat', from: 'PREROUTING', to: KUBE_SERVICES, comment: 'kubernetes service portals' },
  { table: 'nat', from: 'POSTROUTING', to: KUBE_POSTROUTING, comment: 'kubernetes postrouting rules' },
  { table: 'filter', from: 'FORWARD', to: KUBE_FORWARD, comment: 'kubernetes forwarding rules' },
  { table: 'filter', from: 'INPUT', to: KUBE_NODE_PORT, comment: 'kubernetes health check rules' },
  { table: 'filter', from: 'INPUT', to: KUBE_PROXY_FIREWALL, comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'FORWARD', to: KUBE_PROXY_FIREWALL, comment: 'kube-proxy firewall rules' },
  { table: 'filter', from: 'INPUT', to: KUBE_IPVS_FILTER, comment: 'kubernetes ipvs access filter' },
  { table: 'filter', from: 'OUTPUT', to: KUBE_IPVS_OUT_FILTER, comment: 'kubernetes ipvs access filter' },
];

/** iptablesChains: the KUBE- chains, in kube-proxy's declaration order. */
const NAT_CHAINS = [KUBE_SERVICES, KUBE_POSTROUTING, KUBE_NODE_PORT, KUBE_LOAD_BALANCER_CHAIN, KUBE_MARK_MASQ];
const FILTER_CHAINS = [KUBE_FORWARD, KUBE_NODE_PORT, KUBE_PROXY_FIREWALL, KUBE_SOURCE_RANGES_FIREWALL, KUBE_IPVS_FILTER, KUBE_IPVS_OUT_FILTER];

/**
 * ipsetWithIptablesChain: one `-m set` rule per non-empty set, in this order. The -LOCAL node
 * port sets must come before the plain ones (RETURN before the mark).
 */
const SET_RULES: readonly { set: IPSetBaseName; table: 'nat' | 'filter'; from: string; to: string; matchType: string; protocol?: string }[] = [
  { set: KUBE_LOOP_BACK, table: 'nat', from: KUBE_POSTROUTING, to: 'MASQUERADE', matchType: 'dst,dst,src' },
  { set: KUBE_LOAD_BALANCER, table: 'nat', from: KUBE_SERVICES, to: KUBE_LOAD_BALANCER_CHAIN, matchType: 'dst,dst' },
  { set: KUBE_LOAD_BALANCER_LOCAL, table: 'nat', from: KUBE_LOAD_BALANCER_CHAIN, to: 'RETURN', matchType: 'dst,dst' },
  { set: KUBE_NODE_PORT_LOCAL_TCP, table: 'nat', from: KUBE_NODE_PORT, to: 'RETURN', matchType: 'dst', protocol: 'tcp' },
  { set: KUBE_NODE_PORT_TCP, table: 'nat', from: KUBE_NODE_PORT, to: KUBE_MARK_MASQ, matchType: 'dst', protocol: 'tcp' },
  { set: KUBE_NODE_PORT_LOCAL_UDP, table: 'nat', from: KUBE_NODE_PORT, to: 'RETURN', matchType: 'dst', protocol: 'udp' },
  { set: KUBE_NODE_PORT_UDP, table: 'nat', from: KUBE_NODE_PORT, to: KUBE_MARK_MASQ, matchType: 'dst', protocol: 'udp' },
  { set: KUBE_NODE_PORT_LOCAL_SCTP, table: 'nat', from: KUBE_NODE_PORT, to: 'RETURN', matchType: 'dst,dst', protocol: 'sctp' },
  { set: KUBE_NODE_PORT_SCTP, table: 'nat', from: KUBE_NODE_PORT, to: KUBE_MARK_MASQ, matchType: 'dst,dst', protocol: 'sctp' },
  { set: KUBE_LOAD_BALANCER_FW, table: 'filter', from: KUBE_PROXY_FIREWALL, to: KUBE_SOURCE_RANGES_FIREWALL, matchType: 'dst,dst' },
  { set: KUBE_LOAD_BALANCER_SOURCE_CIDR, table: 'filter', from: KUBE_SOURCE_RANGES_FIREWALL, to: 'RETURN', matchType: 'dst,dst,src' },
  { set: KUBE_LOAD_BALANCER_SOURCE_IP, table: 'filter', from: KUBE_SOURCE_RANGES_FIREWALL, to: 'RETURN', matchType: 'dst,dst,src' },
];

/** A LoadBalancer VIP whose source ranges leave out the node itself (kubernetes#119656). */
export interface NoNodeAccessEntry {
  readonly ip: string;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly port: number;
}

export interface IpvsIptablesInput {
  readonly family: Family;
  readonly ipsets: ReadonlyMap<IPSetBaseName, IPSet>;
  /** "0x4000". */
  readonly masqueradeMark: string;
  readonly masqueradeAll: boolean;
  /** The local detector's CIDR (`! -s CIDR` is off-cluster traffic), undefined without one. */
  readonly localDetectorCIDR: string | undefined;
  /** kube-proxy adds --random-fully when iptables supports it. */
  readonly randomFully: boolean;
  readonly noNodeAccess: readonly NoNodeAccessEntry[];
}

export function buildIpvsIptables(input: IpvsIptablesInput): Ruleset {
  const ruleset = createRuleset(input.family, ['nat', 'filter']);
  const nat = tableOf(ruleset, 'nat');
  const filter = tableOf(ruleset, 'filter');
  for (const table of [nat, filter]) for (const name of BUILTIN_CHAINS[table.name]) declareChain(table, name, 'ACCEPT');
  for (const name of NAT_CHAINS) declareChain(nat, name);
  for (const name of FILTER_CHAINS) declareChain(filter, name);
  writeJumps(nat, filter);

  const set = (name: IPSetBaseName): IPSet => {
    const found = input.ipsets.get(name);
    if (!found) throw new Error(`ipset ${name} missing from the compiled sets`);
    return found;
  };
  const isEmpty = (name: IPSetBaseName): boolean => set(name).entries.size === 0;
  const natRule = (chain: string, args: string[]): void => appendRule(chainOf(nat, chain), args);
  const filterRule = (chain: string, args: string[]): void => appendRule(chainOf(filter, chain), args);

  // Dismiss connections to localhost early in the service chain.
  natRule(KUBE_SERVICES, ['-s', input.family === 4 ? '127.0.0.0/8' : '::1/128', '-j', 'RETURN']);

  for (const rule of SET_RULES) {
    if (isEmpty(rule.set)) continue;
    const args = [
      ...(rule.protocol !== undefined ? ['-p', rule.protocol] : []),
      '-m', 'comment', '--comment', set(rule.set).comment,
      '-m', 'set', '--match-set', set(rule.set).name, rule.matchType,
      '-j', rule.to,
    ];
    if (rule.table === 'filter') filterRule(rule.from, args); else natRule(rule.from, args);
  }

  if (!isEmpty(KUBE_CLUSTER_IP)) {
    const clusterIP = set(KUBE_CLUSTER_IP);
    const args = ['-m', 'comment', '--comment', clusterIP.comment, '-m', 'set', '--match-set', clusterIP.name];
    if (input.masqueradeAll) {
      args.push('dst,dst');
    } else if (input.localDetectorCIDR !== undefined) {
      // Off-cluster traffic to a service VIP may bounce off-node: masquerade it.
      args.push('dst,dst', '!', '-s', input.localDetectorCIDR);
    } else {
      // Without a local detector: masquerade node traffic that picked a VIP on kube-ipvs0 as
      // its source address (VIP:port → VIP:port).
      args.push('src,dst');
    }
    natRule(KUBE_SERVICES, [...args, '-j', KUBE_MARK_MASQ]);
  }

  if (!isEmpty(KUBE_EXTERNAL_IP)) {
    const external = set(KUBE_EXTERNAL_IP);
    const args = ['-m', 'comment', '--comment', external.comment, '-m', 'set', '--match-set', external.name, 'dst,dst'];
    natRule(KUBE_SERVICES, [...args, '-j', KUBE_MARK_MASQ]);
    writeExternalIPAccepts(args, (a) => natRule(KUBE_SERVICES, a));
  }
  if (!isEmpty(KUBE_EXTERNAL_IP_LOCAL)) {
    const externalLocal = set(KUBE_EXTERNAL_IP_LOCAL);
    const args = ['-m', 'comment', '--comment', externalLocal.comment, '-m', 'set', '--match-set', externalLocal.name, 'dst,dst'];
    writeExternalIPAccepts(args, (a) => natRule(KUBE_SERVICES, a));
  }

  natRule(KUBE_SERVICES, ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', KUBE_NODE_PORT]);
  // Whatever reaches KUBE-LOAD-BALANCER and is not ETP=Local is masqueraded.
  natRule(KUBE_LOAD_BALANCER_CHAIN, ['-j', KUBE_MARK_MASQ]);
  filterRule(KUBE_SOURCE_RANGES_FIREWALL, ['-j', 'DROP']);
  // A LoadBalancer VIP whose source ranges leave out the node: the node itself may not reach it
  // (with IPVS the node's packet has the VIP as both source and destination).
  for (const entry of input.noNodeAccess) {
    filterRule(KUBE_IPVS_OUT_FILTER, ['-s', entry.ip, '-m', 'ipvs', '--vaddr', entry.ip, '--vproto', entry.protocol, '--vport', String(entry.port), '-j', 'DROP']);
  }
  // acceptIPVSTraffic: last in KUBE-SERVICES, so no later rule can stop traffic IPVS must see.
  for (const name of [KUBE_CLUSTER_IP, KUBE_LOAD_BALANCER] as const) {
    if (isEmpty(name)) continue;
    const matchType = set(name).type === 'bitmap:port' ? 'dst' : 'dst,dst';
    natRule(KUBE_SERVICES, ['-m', 'set', '--match-set', set(name).name, matchType, '-j', 'ACCEPT']);
  }

  const mark = input.masqueradeMark;
  // Marked traffic is forwarded even when the FORWARD policy is DROP, and so are its replies.
  filterRule(KUBE_FORWARD, ['-m', 'comment', '--comment', 'kubernetes forwarding rules', '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'ACCEPT']);
  filterRule(KUBE_FORWARD, ['-m', 'comment', '--comment', 'kubernetes forwarding conntrack rule', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT']);
  const healthCheck = set(KUBE_HEALTH_CHECK_NODE_PORT);
  filterRule(KUBE_NODE_PORT, ['-m', 'comment', '--comment', healthCheck.comment, '-m', 'set', '--match-set', healthCheck.name, 'dst', '-j', 'ACCEPT']);

  // kubernetes#72236: VIPs on kube-ipvs0 are local addresses, so without this a connection to
  // VIP:22 would reach the node's sshd. Only the service ports themselves may pass.
  for (const [name, matchType] of [
    [KUBE_LOAD_BALANCER, 'dst,dst'], [KUBE_CLUSTER_IP, 'dst,dst'], [KUBE_EXTERNAL_IP, 'dst,dst'],
    [KUBE_EXTERNAL_IP_LOCAL, 'dst,dst'], [KUBE_HEALTH_CHECK_NODE_PORT, 'dst'],
  ] as const) {
    filterRule(KUBE_IPVS_FILTER, ['-m', 'set', '--match-set', set(name).name, matchType, '-j', 'RETURN']);
  }
  filterRule(KUBE_IPVS_FILTER, ['-m', 'conntrack', '--ctstate', 'NEW', '-m', 'set', '--match-set', set(KUBE_IPVS_IPS).name, 'dst', '-j', 'REJECT']);

  natRule(KUBE_POSTROUTING, ['-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN']);
  // Clear the mark so a packet that goes through the stack again is not masqueraded twice.
  natRule(KUBE_POSTROUTING, ['-j', 'MARK', '--xor-mark', mark]);
  natRule(KUBE_POSTROUTING, [
    '-m', 'comment', '--comment', 'kubernetes service traffic requiring SNAT', '-j', 'MASQUERADE',
    ...(input.randomFully ? ['--random-fully'] : []),
  ]);
  natRule(KUBE_MARK_MASQ, ['-j', 'MARK', '--or-mark', mark]);
  return ruleset;
}

/** The jumps from the built-in chains: each EnsureRule(Prepend) puts its rule on top. */
function writeJumps(nat: Table, filter: Table): void {
  for (const jump of JUMPS) {
    const chain = chainOf(jump.table === 'nat' ? nat : filter, jump.from);
    chain.rules.unshift({ chain: chain.name, args: ['-m', 'comment', '--comment', jump.comment, '-j', jump.to] });
  }
}

/**
 * externalIPRules: accept external-IP traffic that comes from off the machine (not from a
 * bridge port, not from a local address), and traffic to an external IP that is a local address.
 */
function writeExternalIPAccepts(args: readonly string[], write: (args: string[]) => void): void {
  write([...args, '-m', 'physdev', '!', '--physdev-is-in', '-m', 'addrtype', '!', '--src-type', 'LOCAL', '-j', 'ACCEPT']);
  write([...args, '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'ACCEPT']);
}
