/**
 * Addresses as 32-bit words, for matching a packet against -s/-d networks many times a second,
 * and the node's view of an address: local or not, and its addrtype (RTN_*) type.
 */
import { bytesToWords, ipToWords, normalizeIP, plainIPv4Value, type Words } from '../util/ip.js';
import type { AddressSpec } from '../iptables/rule-values.js';

/** The normalised text of an address: normalizeIP, which takes one already in normal form as it is, unparsed. */
export function normalizeAddress(text: string): string | undefined {
  return normalizeIP(text);
}

/** A network to test addresses against: (address & mask) === network, word by word. */
export interface Network {
  readonly network: Words;
  readonly mask: Words;
}

export function networkOf(spec: AddressSpec): Network {
  return { network: bytesToWords(spec.network), mask: bytesToWords(spec.mask) };
}

export function inNetwork(address: Words, net: Network): boolean {
  if (address.length !== net.network.length) return false;
  for (let i = 0; i < address.length; i++) {
    if (((address[i]! & net.mask[i]!) >>> 0) !== net.network[i]) return false;
  }
  return true;
}

/** Parses each distinct address once: the same few endpoint addresses come back constantly. */
export class AddressCache {
  private readonly cache = new Map<string, Words>();

  words(ip: string): Words {
    let words = this.cache.get(ip);
    if (!words) {
      words = ipToWords(ip);
      if (this.cache.size > 100_000) this.cache.clear(); // bounded: a long-lived tracer sees many clients
      this.cache.set(ip, words);
    }
    return words;
  }
}

const LOOPBACK_V4: Network = { network: Uint32Array.of(0x7f000000), mask: Uint32Array.of(0xff000000) };
const MULTICAST_V4: Network = { network: Uint32Array.of(0xe0000000), mask: Uint32Array.of(0xf0000000) };
const MULTICAST_V6: Network = { network: Uint32Array.of(0xff000000, 0, 0, 0), mask: Uint32Array.of(0xff000000, 0, 0, 0) };

/**
 * The node's addresses. As in the kernel's local routing table, all of 127.0.0.0/8 and ::1 are
 * local besides the node's own addresses.
 */
export class LocalAddresses {
  private readonly local: Set<string>;
  /** The IPv4 ones as numbers (for isLocalV4). */
  private readonly localV4 = new Set<number>();
  /**
   * The IPv4 ones again, as Int32 bits (for isLocalV4Bits): a node has a few, and a number past
   * 2^30 asked of a Set is a heap number made per lookup.
   */
  readonly localV4Bits: Int32Array;

  constructor(addresses: readonly string[]) {
    this.local = new Set(['::1']);
    for (const address of addresses) {
      const ip = normalizeIP(address);
      if (ip === undefined) continue;
      this.local.add(ip);
      const v4 = plainIPv4Value(ip);
      if (v4 >= 0) this.localV4.add(v4);
    }
    this.localV4Bits = Int32Array.from(this.localV4, (v4) => v4 | 0);
  }

  /** isLocalV4 for an IPv4 address given as its 32 bits in an Int32 (allocates nothing). */
  isLocalV4Bits(bits: number): boolean {
    if (bits >>> 24 === 127) return true;
    const list = this.localV4Bits;
    for (let i = 0; i < list.length; i++) if (list[i] === bits) return true;
    return false;
  }

  /** isLocal for an IPv4 address given as a number (no string read). */
  isLocalV4(value: number): boolean {
    return this.localV4.has(value) || value >>> 24 === 127;
  }

  /** addressType for an IPv4 address given as a number. */
  addressTypeV4(value: number): 'BROADCAST' | 'MULTICAST' | 'LOCAL' | 'UNICAST' {
    if (value === 0 || value === 0xffffffff) return 'BROADCAST';
    if (value >>> 28 === 0xe) return 'MULTICAST';
    return this.isLocalV4(value) ? 'LOCAL' : 'UNICAST';
  }

  isLocal(ip: string, words: Words): boolean {
    return this.local.has(ip) || (words.length === 1 && inNetwork(words, LOOPBACK_V4));
  }

  /**
   * The address type xt_addrtype sees (inet_addr_type): BROADCAST for 0.0.0.0 and
   * 255.255.255.255, MULTICAST, LOCAL, else UNICAST (kpsim has no routes that would say
   * BLACKHOLE, UNREACHABLE and the like).
   */
  addressType(ip: string, words: Words): string {
    if (words.length === 1) {
      if (words[0] === 0 || words[0] === 0xffffffff) return 'BROADCAST';
      if (inNetwork(words, MULTICAST_V4)) return 'MULTICAST';
    } else if (inNetwork(words, MULTICAST_V6)) {
      return 'MULTICAST';
    }
    return this.isLocal(ip, words) ? 'LOCAL' : 'UNICAST';
  }

}
