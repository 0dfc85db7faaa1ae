/**
 * The ipsets kube-proxy's IPVS mode keeps (pkg/proxy/ipvs/ipset.go, the ipsetInfo table in
 * proxier.go) and the way its ipset util creates them (pkg/proxy/ipvs/ipset/ipset.go):
 *
 *   create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
 *   create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
 *   add KUBE-CLUSTER-IP 10.96.0.1,tcp:443
 *
 * kube-proxy passes no `comment` option any more (old kernels refused it); the comments below
 * live only in the iptables rules that match the sets. An IPv6 proxier renames "KUBE-" to
 * "KUBE-6-" and cuts names to ipset's 31 characters.
 */
import { type Cidr, type Family, cidrContains, parseCIDR } from '../util/ip.js';

export type IPSetType = 'hash:ip' | 'hash:ip,port' | 'hash:ip,port,ip' | 'hash:ip,port,net' | 'bitmap:port';

export const KUBE_LOOP_BACK = 'KUBE-LOOP-BACK';
export const KUBE_CLUSTER_IP = 'KUBE-CLUSTER-IP';
export const KUBE_EXTERNAL_IP = 'KUBE-EXTERNAL-IP';
export const KUBE_EXTERNAL_IP_LOCAL = 'KUBE-EXTERNAL-IP-LOCAL';
export const KUBE_LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const KUBE_LOAD_BALANCER_FW = 'KUBE-LOAD-BALANCER-FW';
export const KUBE_LOAD_BALANCER_LOCAL = 'KUBE-LOAD-BALANCER-LOCAL';
export const KUBE_LOAD_BALANCER_SOURCE_IP = 'KUBE-LOAD-BALANCER-SOURCE-IP';
export const KUBE_LOAD_BALANCER_SOURCE_CIDR = 'KUBE-LOAD-BALANCER-SOURCE-CIDR';
export const KUBE_NODE_PORT_TCP = 'KUBE-NODE-PORT-TCP';
export const KUBE_NODE_PORT_LOCAL_TCP = 'KUBE-NODE-PORT-LOCAL-TCP';
export const KUBE_NODE_PORT_UDP = 'KUBE-NODE-PORT-UDP';
export const KUBE_NODE_PORT_LOCAL_UDP = 'KUBE-NODE-PORT-LOCAL-UDP';
export const KUBE_NODE_PORT_SCTP = 'KUBE-NODE-PORT-SCTP-HASH';
export const KUBE_NODE_PORT_LOCAL_SCTP = 'KUBE-NODE-PORT-LOCAL-SCTP-HASH';
export const KUBE_HEALTH_CHECK_NODE_PORT = 'KUBE-HEALTH-CHECK-NODE-PORT';
export const KUBE_IPVS_IPS = 'KUBE-IPVS-IPS';

export type IPSetBaseName =
  | typeof KUBE_LOOP_BACK | typeof KUBE_CLUSTER_IP | typeof KUBE_EXTERNAL_IP | typeof KUBE_EXTERNAL_IP_LOCAL
  | typeof KUBE_LOAD_BALANCER | typeof KUBE_LOAD_BALANCER_FW | typeof KUBE_LOAD_BALANCER_LOCAL
  | typeof KUBE_LOAD_BALANCER_SOURCE_IP | typeof KUBE_LOAD_BALANCER_SOURCE_CIDR
  | typeof KUBE_NODE_PORT_TCP | typeof KUBE_NODE_PORT_LOCAL_TCP | typeof KUBE_NODE_PORT_UDP | typeof KUBE_NODE_PORT_LOCAL_UDP
  | typeof KUBE_NODE_PORT_SCTP | typeof KUBE_NODE_PORT_LOCAL_SCTP | typeof KUBE_HEALTH_CHECK_NODE_PORT | typeof KUBE_IPVS_IPS;

export interface IPSetDefinition {
  readonly baseName: IPSetBaseName;
  readonly type: IPSetType;
  /** The comment the iptables rules matching the set carry. */
  readonly comment: string;
}

/** kube-proxy's ipsetInfo, in its order (also the order kpsim prints them in). */
export const IPSET_DEFINITIONS: readonly IPSetDefinition[] = [
  { baseName: KUBE_LOOP_BACK, type: 'hash:ip,port,ip', comment: 'Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose' },
  { baseName: KUBE_CLUSTER_IP, type: 'hash:ip,port', comment: 'Kubernetes service cluster ip + port for masquerade purpose' },
  { baseName: KUBE_EXTERNAL_IP, type: 'hash:ip,port', comment: 'Kubernetes service external ip + port for masquerade and filter purpose' },
  { baseName: KUBE_EXTERNAL_IP_LOCAL, type: 'hash:ip,port', comment: 'Kubernetes service external ip + port with externalTrafficPolicy=local' },
  { baseName: KUBE_LOAD_BALANCER, type: 'hash:ip,port', comment: 'Kubernetes service lb portal' },
  { baseName: KUBE_LOAD_BALANCER_FW, type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port for load balancer with sourceRange' },
  { baseName: KUBE_LOAD_BALANCER_LOCAL, type: 'hash:ip,port', comment: 'Kubernetes service load balancer ip + port with externalTrafficPolicy=local' },
  { baseName: KUBE_LOAD_BALANCER_SOURCE_IP, type: 'hash:ip,port,ip', comment: 'Kubernetes service load balancer ip + port + source IP for packet filter purpose' },
  { baseName: KUBE_LOAD_BALANCER_SOURCE_CIDR, type: 'hash:ip,port,net', comment: 'Kubernetes service load balancer ip + port + source cidr for packet filter purpose' },
  { baseName: KUBE_NODE_PORT_TCP, type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port for masquerade purpose' },
  { baseName: KUBE_NODE_PORT_LOCAL_TCP, type: 'bitmap:port', comment: 'Kubernetes nodeport TCP port with externalTrafficPolicy=local' },
  { baseName: KUBE_NODE_PORT_UDP, type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port for masquerade purpose' },
  { baseName: KUBE_NODE_PORT_LOCAL_UDP, type: 'bitmap:port', comment: 'Kubernetes nodeport UDP port with externalTrafficPolicy=local' },
  { baseName: KUBE_NODE_PORT_SCTP, type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'" },
  { baseName: KUBE_NODE_PORT_LOCAL_SCTP, type: 'hash:ip,port', comment: "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'" },
  { baseName: KUBE_HEALTH_CHECK_NODE_PORT, type: 'bitmap:port', comment: 'Kubernetes health check node port' },
  { baseName: KUBE_IPVS_IPS, type: 'hash:ip', comment: 'Addresses on the ipvs interface' },
];

/** ipset's limit on set names (IPSET_MAXNAMELEN - 1). */
export const MAX_IPSET_NAME_LENGTH = 31;
/** The ipset util's defaults (setIPSetDefaults). */
export const DEFAULT_HASH_SIZE = 1024;
export const DEFAULT_MAX_ELEM = 65536;
export const DEFAULT_PORT_RANGE = '0-65535';

export interface IPSet {
  /** The name as created: "KUBE-CLUSTER-IP", or "KUBE-6-CLUSTER-IP" on the IPv6 proxier. */
  readonly name: string;
  readonly baseName: IPSetBaseName;
  readonly type: IPSetType;
  readonly family: Family;
  readonly comment: string;
  /** kube-proxy's activeEntries: entry text as its Entry.String() writes it. */
  readonly entries: Set<string>;
}

/** The set's name for a proxier family (NewIPSet: KUBE- → KUBE-6-, cut to 31 characters). */
export function ipsetName(baseName: string, family: Family): string {
  if (family === 4 || !baseName.startsWith('KUBE-')) return baseName;
  return `KUBE-6-${baseName.slice('KUBE-'.length)}`.slice(0, MAX_IPSET_NAME_LENGTH);
}

/** Every set kube-proxy creates, empty, keyed by base name. */
export function createIPSets(family: Family): Map<IPSetBaseName, IPSet> {
  const sets = new Map<IPSetBaseName, IPSet>();
  for (const def of IPSET_DEFINITIONS) {
    sets.set(def.baseName, { name: ipsetName(def.baseName, family), baseName: def.baseName, type: def.type, family, comment: def.comment, entries: new Set() });
  }
  return sets;
}

// ---------------------------------------------------------------- entries (utilipset.Entry.String)

type EntryProtocol = 'tcp' | 'udp' | 'sctp';

/** hash:ip,port: "10.96.0.1,tcp:443". */
export function ipPortEntry(ip: string, protocol: EntryProtocol, port: number): string {
  // Joined flat from a reused parts array: the entry goes into a set at once (hashed), and a
  // concatenation is a tree of strings flattened into one more first (a big node has 12k).
  IP_PORT_PARTS[0] = ip;
  IP_PORT_PARTS[2] = protocol;
  IP_PORT_PARTS[4] = port;
  return IP_PORT_PARTS.join('');
}
const IP_PORT_PARTS: (string | number)[] = ['', ',', '', ':', 0];

/** hash:ip,port,ip: "10.244.0.5,tcp:8080,10.244.0.5". */
export function ipPortIPEntry(ip: string, protocol: EntryProtocol, port: number, ip2: string): string {
  return `${ip},${protocol}:${port},${ip2}`;
}

/** hash:ip,port,net: "10.0.100.50,tcp:443,198.51.100.0/24". */
export function ipPortNetEntry(ip: string, protocol: EntryProtocol, port: number, net: string): string {
  return `${ip},${protocol}:${port},${net}`;
}

// ---------------------------------------------------------------- rendering

/** The create line with the options kube-proxy's ipset util passes. */
export function ipsetCreateLine(set: IPSet): string {
  if (set.type === 'bitmap:port') return `create ${set.name} ${set.type} range ${DEFAULT_PORT_RANGE}`;
  return `create ${set.name} ${set.type} family ${set.family === 4 ? 'inet' : 'inet6'} hashsize ${DEFAULT_HASH_SIZE} maxelem ${DEFAULT_MAX_ELEM}`;
}

/**
 * The entries in print order. A bitmap lists its ports in ascending order, as the kernel walks
 * the bitmap; a hash set's order is the kernel's hash order, which kpsim does not model, so hash
 * entries come in the order kube-proxy adds them (sets.String.List(): sorted text).
 */
export function orderedEntries(set: IPSet): string[] {
  const entries = [...set.entries];
  if (set.type === 'bitmap:port') return entries.sort((a, b) => Number(a) - Number(b));
  return entries.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `ipset save` text for the sets, in the given order: each create line, then its adds. */
export function renderIPSets(sets: Iterable<IPSet>): string {
  const lines: string[] = [];
  for (const set of sets) {
    lines.push(ipsetCreateLine(set));
    for (const entry of orderedEntries(set)) lines.push(`add ${set.name} ${entry}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------- matching (xt_set)

/** The packet fields an `-m set --match-set NAME dirs` match reads. */
export interface SetMatchPacket {
  readonly src: string;
  readonly dst: string;
  /** Lower-case protocol; ports count only for tcp, udp and sctp. */
  readonly protocol: string;
  readonly sport?: number;
  readonly dport?: number;
}

/**
 * Whether the packet is in the set, reading each dimension from the side `flags` names, as
 * xt_set does ("dst,dst,src": the destination address, the destination port, the source).
 */
export function ipsetContains(set: IPSet, flags: readonly ('src' | 'dst')[], packet: SetMatchPacket): boolean {
  const addr = (i: number): string => (flags[i] === 'src' ? packet.src : packet.dst);
  const port = (i: number): number | undefined => (flags[i] === 'src' ? packet.sport : packet.dport);
  const proto = packet.protocol.toLowerCase();
  const hasPorts = proto === 'tcp' || proto === 'udp' || proto === 'sctp';
  switch (set.type) {
    case 'hash:ip':
      return set.entries.has(addr(0));
    case 'bitmap:port': {
      const p = port(0);
      // bitmap:port stores bare ports: the iptables rule's -p chooses the protocol.
      return hasPorts && p !== undefined && set.entries.has(String(p));
    }
    case 'hash:ip,port': {
      const p = port(1);
      return hasPorts && p !== undefined && set.entries.has(ipPortEntry(addr(0), proto as EntryProtocol, p));
    }
    case 'hash:ip,port,ip': {
      const p = port(1);
      return hasPorts && p !== undefined && set.entries.has(ipPortIPEntry(addr(0), proto as EntryProtocol, p, addr(2)));
    }
    case 'hash:ip,port,net': {
      const p = port(1);
      if (!hasPorts || p === undefined) return false;
      const prefix = `${ipPortEntry(addr(0), proto as EntryProtocol, p)},`;
      const third = addr(2);
      for (const entry of set.entries) {
        if (!entry.startsWith(prefix)) continue;
        const cidr: Cidr | undefined = parseCIDR(entry.slice(prefix.length), true);
        if (cidr && cidrContains(cidr, third)) return true;
      }
      return false;
    }
  }
}
