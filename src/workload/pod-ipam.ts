/**
 * Pod addresses as the kubelet's network plugin hands them out with host-local IPAM: one per
 * pod CIDR of the node, the lowest free one from the second address of the range on (the
 * first is the node's gateway to its pods), never the last (the broadcast address). Pods with
 * hostNetwork take the node's own addresses. Addresses already in use by given pods are skipped.
 */
import { nodeIPs } from '../model/node.js';
import type { Node } from '../model/types.js';
import { type Cidr, bigIntToIP, cidrSize, ipFamily, ipToBigInt, ipv4ToUint32, parseCIDR, uint32ToIPv4 } from '../util/ip.js';

/** host-local's default rangeStart: the network address plus two. */
const RANGE_START_OFFSET = 2;

/** One pod CIDR of a node; offsets from its network address (numbers: a node's range is small enough). */
interface Range {
  readonly cidr: Cidr;
  /** The network address: a number for IPv4, a bigint for IPv6. */
  readonly base: number | bigint;
  /** The last offset handed out is size - 2 (the last address is the broadcast address). */
  readonly end: number;
  next: number;
}

/** Offsets beyond this are never reached by the pods of one node; keeps IPv6 /64 ranges in plain numbers. */
const MAX_OFFSET = 2 ** 31;

export class PodAddressPool {
  private readonly ranges = new Map<string, Range[]>();

  /** `inUse`: addresses of pods that have them already. */
  constructor(private readonly inUse: Set<string> = new Set()) {}

  /** One address per pod CIDR of the node (the node's own for hostNetwork); a reason when a range is full. */
  allocate(node: Node, hostNetwork: boolean): { ips: string[] } | { reason: string } {
    if (hostNetwork) {
      const ips = nodeIPs(node);
      return ips.length > 0 ? { ips: firstPerFamily(ips) } : { reason: `node ${node.name} has no InternalIP or ExternalIP for a hostNetwork pod` };
    }
    const ranges = this.rangesOf(node);
    if (ranges.length === 0) return { reason: `node ${node.name} has no spec.podCIDRs` };
    const ips: string[] = [];
    for (const range of ranges) {
      const ip = this.next(range);
      if (ip === undefined) return { reason: `no IP addresses available in node ${node.name}'s pod CIDR ${range.cidr.text}` };
      ips.push(ip);
    }
    return { ips };
  }

  private next(range: Range): string | undefined {
    while (range.next < range.end) {
      const ip = typeof range.base === 'number' ? uint32ToIPv4(range.base + range.next) : bigIntToIP(range.base + BigInt(range.next), range.cidr.family);
      range.next++;
      // The cursor never comes back, so only addresses given in the input can be in the way.
      if (!this.inUse.has(ip)) return ip;
    }
    return undefined;
  }

  private rangesOf(node: Node): Range[] {
    let ranges = this.ranges.get(node.name);
    if (!ranges) {
      ranges = node.podCIDRs
        .map((text) => parseCIDR(text))
        .filter((c): c is Cidr => c !== undefined)
        .map((cidr) => ({
          cidr,
          base: cidr.family === 4 ? ipv4ToUint32(cidr.network) : ipToBigInt(cidr.network),
          end: Number(cidrSize(cidr) - 1n > BigInt(MAX_OFFSET) ? BigInt(MAX_OFFSET) : cidrSize(cidr) - 1n),
          next: RANGE_START_OFFSET,
        }));
      this.ranges.set(node.name, ranges);
    }
    return ranges;
  }
}

function firstPerFamily(ips: readonly string[]): string[] {
  const seen = new Set<number>();
  return ips.filter((ip) => {
    const family = ipFamily(ip)!;
    if (seen.has(family)) return false;
    seen.add(family);
    return true;
  });
}
