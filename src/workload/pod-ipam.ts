/**
 * Pod addresses as the kubelet's network plugin hands them out with host-local IPAM: one per
 * pod CIDR of the node, from the second address of the range on (the first is the node's
 * gateway to its pods), never the last (the broadcast address). Like host-local, a pool
 * remembers the last address it gave in each range and goes on from there, wrapping around at
 * the end, so an address freed by a deleted pod is not handed out again at once (host-local's
 * last_reserved_ip); a new pool starts at the beginning, so a cluster laid out in one pass gets
 * the lowest addresses. Pods with hostNetwork take the node's own addresses. Addresses in use
 * by other pods are skipped.
 */
import { nodeIPs } from '../model/node.js';
import type { Node } from '../model/types.js';
import { type Cidr, bigIntToIP, cidrContains, cidrSize, ipFamily, ipToBigInt, ipv4ToUint32, parseCIDR, uint32ToIPv4 } from '../util/ip.js';

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
  constructor(private inUse: Set<string> = new Set()) {}

  /** The addresses pods hold now (a pool kept from one pass of a live cluster to the next). */
  use(inUse: Set<string>): void {
    this.inUse = inUse;
  }

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

  /**
   * Takes up where the node's kubelet left off after a restart: each range goes on after the
   * highest of `ips` in it (the pods' addresses there), as host-local's last_reserved_ip would
   * have it when addresses were handed out in order.
   */
  resumeAfter(node: Node, ips: readonly string[]): void {
    for (const range of this.rangesOf(node)) {
      for (const ip of ips) {
        if (!cidrContains(range.cidr, ip)) continue;
        const offset = typeof range.base === 'number' ? ipv4ToUint32(ip) - range.base : Number(ipToBigInt(ip) - range.base);
        if (offset >= range.next && offset < range.end) range.next = offset + 1;
      }
    }
  }

  private next(range: Range): string | undefined {
    const size = range.end - RANGE_START_OFFSET;
    for (let tried = 0; tried < size; tried++) {
      if (range.next >= range.end) range.next = RANGE_START_OFFSET;
      const ip = typeof range.base === 'number' ? uint32ToIPv4(range.base + range.next) : bigIntToIP(range.base + BigInt(range.next), range.cidr.family);
      range.next++;
      if (!this.inUse.has(ip)) {
        this.inUse.add(ip);
        return ip;
      }
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
