/**
 * The nodes of a cluster kpsim makes up: when the input has no Node objects, --allocate creates
 * some, as a kind or kubeadm cluster would have; and kube-controller-manager's node IPAM gives
 * every node without one a pod CIDR out of the cluster CIDR (--allocate-node-cidrs).
 */
import { KpsimError } from '../errors.js';
import type { Node } from '../model/types.js';
import { type Cidr, cidrsOverlap, ipv4ToUint32, nthSubnet, parseCIDR, uint32ToIPv4 } from '../util/ip.js';

/** The pod network of kubeadm's and flannel's examples, kpsim's default --cluster-cidr. */
export const DEFAULT_CLUSTER_CIDR = '10.244.0.0/16';
/** How many nodes --allocate creates when the input has none (--nodes). */
export const DEFAULT_NODE_COUNT = 3;
/** kube-controller-manager --node-cidr-mask-size: a /24 per node for IPv4, a /64 for IPv6. */
const NODE_CIDR_MASK = { 4: 24, 6: 64 } as const;
/** Created nodes' addresses: 192.168.0.2 on (192.168.0.1 is the network's gateway), 2001:db8::2 on for IPv6. */
const NODE_NETWORK_V4 = '192.168.0.0';
const NODE_NETWORK_V6_PREFIX = '2001:db8::';
const FIRST_NODE_HOST = 2;

/**
 * `count` nodes named node-1, node-2, ... (and `extraNames`, the nodes given pods name, after
 * them): Ready, with an InternalIP per family of the cluster CIDRs and the usual hostname, OS
 * and architecture labels. Their pod
 * CIDRs come from assignPodCIDRs.
 */
export function createNodes(count: number, clusterCIDRs: readonly Cidr[], extraNames: readonly string[] = [], file = '(--allocate)'): Node[] {
  const numbered = Array.from({ length: count }, (_, i) => `node-${i + 1}`);
  const names = [...numbered, ...extraNames.filter((n) => !numbered.includes(n))];
  // A node has an address of each family its pods have (IPv4 when the cluster CIDRs say nothing).
  const v6 = clusterCIDRs.some((c) => c.family === 6);
  const v4 = clusterCIDRs.some((c) => c.family === 4) || !v6;
  return names.map((name, i) => {
    const host = FIRST_NODE_HOST + i;
    const addresses: Node['addresses'] = [];
    if (v4) addresses.push({ type: 'InternalIP', address: uint32ToIPv4(ipv4ToUint32(NODE_NETWORK_V4) + host) });
    if (v6) addresses.push({ type: 'InternalIP', address: `${NODE_NETWORK_V6_PREFIX}${host.toString(16)}` });
    addresses.push({ type: 'Hostname', address: name });
    return {
      kind: 'Node',
      origin: { file, object: `Node ${name}` },
      name,
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
      addresses,
      podCIDRs: [],
      ready: true,
      generated: true,
    };
  });
}

export interface PodCIDRAssignment {
  nodes: Node[];
  /** The nodes that got pod CIDRs here, with them. */
  assigned: { node: string; podCIDRs: string[] }[];
  problems: KpsimError[];
}

/**
 * Node IPAM: every node without pod CIDRs gets, per cluster CIDR, the lowest block of the node
 * mask size that no other node's pod CIDR overlaps. Nodes that change are copied.
 */
export function assignPodCIDRs(nodes: readonly Node[], clusterCIDRs: readonly Cidr[]): PodCIDRAssignment {
  // Blocks handed out here never overlap each other (the cursor only moves on); only the pod
  // CIDRs the input gave can be in the way.
  const taken = nodes.flatMap((n) => n.podCIDRs.map((c) => parseCIDR(c)).filter((c): c is Cidr => c !== undefined));
  const cursors = clusterCIDRs.map(() => 0);
  const out: PodCIDRAssignment = { nodes: [], assigned: [], problems: [] };
  for (const node of nodes) {
    if (node.podCIDRs.length > 0 || clusterCIDRs.length === 0) {
      out.nodes.push(node);
      continue;
    }
    const podCIDRs: string[] = [];
    clusterCIDRs.forEach((cluster, c) => {
      const mask = Math.max(NODE_CIDR_MASK[cluster.family], cluster.prefixLength);
      for (;;) {
        const block = nthSubnet(cluster, mask, cursors[c]!);
        if (!block) {
          out.problems.push(
            new KpsimError('KPSIM_ERR_MODEL_ALLOCATION', `no pod CIDR could be allocated: the cluster CIDR ${cluster.text} has no free /${mask} left (--cluster-cidr)`, { file: node.origin.file, object: node.origin.object, path: 'spec.podCIDRs' }),
          );
          return;
        }
        cursors[c]!++;
        if (taken.some((t) => cidrsOverlap(t, block))) continue;
        podCIDRs.push(block.text);
        return;
      }
    });
    out.nodes.push({ ...node, podCIDRs });
    out.assigned.push({ node: node.name, podCIDRs });
  }
  return out;
}
