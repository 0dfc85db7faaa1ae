/**
 * The plan as commands (pure): `ip -batch` lines run from the host (namespaces and veth pairs),
 * one `ip -batch` per namespace (addresses, bridges, routes), and the node's sysctls. Building
 * and removing a lab is then a handful of processes however many pods it has.
 */
import { type Family, ipFamily } from '../util/ip.js';
import { IFACES, type LabPlan, type PlannedPod, hostCidr } from './plan.js';

export interface TopologyCommands {
  /** `ip -batch` lines run in the host's namespace: every namespace, every veth pair. */
  readonly host: readonly string[];
  /** `ip -n NS -batch` lines per namespace, node and client first. */
  readonly perNamespace: ReadonlyMap<string, readonly string[]>;
  /** sysctl name=value settings of the node namespace. */
  readonly nodeSysctls: readonly string[];
}

/**
 * What every lab's node sets, as a kube-proxy node has it: forwarding; bridged traffic through
 * iptables (br_netfilter, which kube-proxy requires so that a pod reaching its own service is
 * NATed); no ICMP redirects, since replies may leave by the interface they came in on and must
 * keep going through the node's conntrack; no reverse-path filter, as the client's sources are
 * routed by host routes.
 */
export function nodeSysctls(families: readonly Family[], extra: readonly string[] = []): string[] {
  const out = [
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.send_redirects=0',
    'net.ipv4.conf.default.send_redirects=0',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    'net.bridge.bridge-nf-call-iptables=1',
  ];
  if (families.includes(6)) out.push('net.ipv6.conf.all.forwarding=1', 'net.bridge.bridge-nf-call-ip6tables=1');
  return [...out, ...extra];
}

export function topologyCommands(plan: LabPlan, extraSysctls: readonly string[] = []): TopologyCommands {
  const { names } = plan;
  const podNamespaces = plan.pods.filter((p) => p.placement !== 'host');
  const host = [
    `netns add ${names.node}`,
    `netns add ${names.client}`,
    ...podNamespaces.map((p) => `netns add ${p.ns}`),
    `link add ${IFACES.uplink} netns ${names.client} type veth peer name ${IFACES.uplink} netns ${names.node}`,
    ...podNamespaces.map((p) => `link add ${IFACES.podEth} netns ${p.ns} type veth peer name ${p.hostInterface!} netns ${names.node}`),
  ];
  const perNamespace = new Map<string, string[]>();
  perNamespace.set(names.node, nodeLines(plan, podNamespaces));
  perNamespace.set(names.client, clientLines(plan));
  for (const pod of podNamespaces) perNamespace.set(pod.ns, podLines(plan, pod));
  return { host, perNamespace, nodeSysctls: nodeSysctls(plan.families, extraSysctls) };
}

/** `addr add` of a host address; IPv6 without duplicate address detection (nothing else is on the link). */
function addAddress(ip: string, dev: string): string {
  return `addr add ${hostCidr(ip)} dev ${dev}${ipFamily(ip) === 6 ? ' nodad' : ''}`;
}

/**
 * An interface that takes no IPv6 link-local address: with none there is no duplicate address
 * detection to wait for, and neighbour discovery uses the global addresses.
 */
function upWithoutLinkLocal(dev: string): string[] {
  return [`link set ${dev} addrgenmode none`, `link set ${dev} up`];
}

/**
 * A fixed IPv6 link-local address: the kernel sends a neighbour solicitation for a forwarded
 * packet from the outgoing interface's link-local address, and with none it sends nothing.
 * Unique on each link: the node is ::1 on all of its, the client ::2, pod N fe80::1:N.
 */
function linkLocal(plan: LabPlan, dev: string, host: string): string[] {
  return plan.families.includes(6) ? [`addr add fe80::${host}/64 dev ${dev} nodad`] : [];
}

function nodeLines(plan: LabPlan, pods: readonly PlannedPod[]): string[] {
  const lines = ['link set lo up', ...upWithoutLinkLocal(IFACES.uplink), ...linkLocal(plan, IFACES.uplink, '1')];
  for (const ip of uplinkAddresses(plan)) lines.push(addAddress(ip, IFACES.uplink));
  for (const [dev, addresses] of [[IFACES.bridge, plan.podGateways], [IFACES.fabric, plan.fabricAddresses]] as const) {
    // No forwarding delay: a new port forwards at once (a bridge without STP otherwise waits 15 s on some ports).
    lines.push(`link add ${dev} type bridge forward_delay 0 stp_state 0`, `link set ${dev} addrgenmode none`, ...linkLocal(plan, dev, '1'));
    for (const family of plan.families) lines.push(addAddress(addresses[family]!, dev));
    lines.push(`link set ${dev} up`);
  }
  for (const pod of pods) {
    const bridge = pod.placement === 'local' ? IFACES.bridge : IFACES.fabric;
    lines.push(`link set ${pod.hostInterface!} addrgenmode none`, `link set ${pod.hostInterface!} master ${bridge}`);
    // kubelet's hairpin-veth mode: a frame DNATed back to the pod it came from leaves by its own port.
    lines.push(`link set ${pod.hostInterface!} type bridge_slave hairpin on`, `link set ${pod.hostInterface!} up`);
    for (const ip of pod.ips) lines.push(`route add ${hostCidr(ip)} dev ${bridge}`);
  }
  // Each client source through the client's first address of its family (IPv6: its link-local):
  // one neighbour entry for the client, not one per source. The kernel's neighbour table is
  // shared by every namespace and holds 1024 entries by default.
  for (const family of plan.families) {
    const sources = plan.clientSources.filter((ip) => ipFamily(ip) === family);
    const gateway = family === 6 ? 'fe80::2' : sources[0];
    if (family === 4 && gateway !== undefined) lines.push(`route add ${hostCidr(gateway)} dev ${IFACES.uplink}`);
    for (const ip of sources) {
      if (ip !== gateway) lines.push(`route add ${hostCidr(ip)} via ${gateway} dev ${IFACES.uplink}`);
    }
  }
  // Service addresses are routed out like any other off-node address; nat OUTPUT rewrites them
  // first. Without a route, a connect() from the node fails before the rules see the packet.
  for (const family of plan.families) lines.push(`route add ${family === 4 ? 'default' : '::/0'} dev ${IFACES.uplink}`);
  return lines;
}

/** The node's IPs, and for a family it has none of, the fabric's stand-in: the client's gateway. */
export function uplinkAddresses(plan: LabPlan): string[] {
  const out = [...plan.nodeIPs];
  for (const family of plan.families) if (!out.includes(plan.fabricAddresses[family]!)) out.push(plan.fabricAddresses[family]!);
  return out;
}

function clientLines(plan: LabPlan): string[] {
  const lines = ['link set lo up', ...upWithoutLinkLocal(IFACES.uplink), ...linkLocal(plan, IFACES.uplink, '2')];
  for (const ip of plan.clientSources) lines.push(addAddress(ip, IFACES.uplink));
  for (const family of plan.families) {
    const gateway = plan.fabricAddresses[family]!;
    lines.push(`route add ${hostCidr(gateway)} dev ${IFACES.uplink}`);
    for (const ip of plan.nodeIPs.filter((n) => ipFamily(n) === family && n !== gateway)) lines.push(`route add ${hostCidr(ip)} dev ${IFACES.uplink}`);
    lines.push(`route add ${family === 4 ? 'default' : '::/0'} via ${gateway}`);
  }
  return lines;
}

function podLines(plan: LabPlan, pod: PlannedPod): string[] {
  const lines = ['link set lo up', ...upWithoutLinkLocal(IFACES.podEth), ...linkLocal(plan, IFACES.podEth, `1:${Number(pod.hostInterface!.slice(1)).toString(16)}`)];
  for (const ip of pod.ips) lines.push(addAddress(ip, IFACES.podEth));
  for (const family of plan.families) {
    if (!pod.ips.some((ip) => ipFamily(ip) === family)) continue;
    const gateway = pod.placement === 'local' ? plan.podGateways[family]! : plan.fabricAddresses[family]!;
    lines.push(`route add ${hostCidr(gateway)} dev ${IFACES.podEth}`, `route add ${family === 4 ? 'default' : '::/0'} via ${gateway}`);
  }
  return lines;
}
