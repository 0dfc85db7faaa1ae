/**
 * Set and map elements as the kernel hands them back and nft 1.0.6 prints them: sorted (nft's
 * mergesort.c), and wrapped the way its set printer wraps them (expression.c calculate_delim).
 *
 * Sorting: a one-part key compares as a number (an address in network order, a port, a
 * protocol number). A concatenated key is laid out as its parts' bytes one after the other,
 * each in its own byte order (addresses and ports big-endian), and that byte string is read as
 * one little-endian number: so `10.0.0.1 . tcp . 80` sorts by the port's low byte first, then
 * its high byte, the protocol, and the address from its last byte.
 */
import { addressText, addressValue } from './addresses.js';
import type { NftElement, NftSet } from './types.js';

/** /etc/protocols numbers of the protocol names nft prints. */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, tcp: 6, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, sctp: 132, udplite: 136,
};

/** Bytes of one key part in the set's layout; undefined when kpsim does not know the type or the value. */
function partBytes(type: string, text: string): number[] | undefined {
  switch (type) {
    case 'ipv4_addr':
    case 'ipv6_addr': {
      const a = addressValue(text);
      const n = type === 'ipv4_addr' ? 4 : 16;
      if (!a || a.family !== (n === 4 ? 4 : 6)) return undefined;
      const bytes = new Array<number>(n);
      let v = a.value;
      for (let i = n - 1; i >= 0; i--) {
        bytes[i] = Number(v & 0xffn);
        v >>= 8n;
      }
      return bytes;
    }
    case 'inet_proto': {
      const p = /^\d+$/.test(text) ? Number(text) : PROTOCOL_NUMBERS[text];
      return p === undefined || p > 255 ? undefined : [p];
    }
    case 'inet_service': {
      if (!/^\d+$/.test(text)) return undefined;
      const port = Number(text);
      return port > 65535 ? undefined : [port >> 8, port & 0xff];
    }
    case 'mark': {
      const v = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
      // Host byte order (little-endian).
      return Number.isFinite(v) ? [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24] : undefined;
    }
    default:
      return undefined;
  }
}

/** A key part as nft prints it for its type: marks as 8 hex digits, addresses normalised. */
export function keyPartText(type: string | undefined, text: string): string {
  switch (type) {
    case 'mark': {
      const v = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
      return Number.isFinite(v) ? `0x${(v >>> 0).toString(16).padStart(8, '0')}` : text;
    }
    case 'ipv4_addr':
    case 'ipv6_addr': {
      const a = addressValue(text);
      return a ? addressText(a.family, a.value) : text;
    }
    default:
      return text;
  }
}

/** The set's key types: "ipv4_addr . inet_proto . inet_service : verdict" → its three key parts. */
export function keyTypes(set: Pick<NftSet, 'type' | 'typeOf'>): string[] | undefined {
  if (set.typeOf !== undefined) return undefined;
  const key = set.type.split(' : ')[0]!;
  return key.split(' . ').map((t) => t.trim());
}

/** A number to sort by (see the file comment); undefined when a part cannot be laid out. */
function sortValue(types: readonly string[], element: NftElement): bigint | undefined {
  if (element.key.length !== types.length) return undefined;
  if (types.length === 1) {
    const bytes = partBytes(types[0]!, element.key[0]!);
    if (!bytes) return undefined;
    // A value of one type compares as the number it is (a mark's bytes are little-endian).
    const ordered = types[0] === 'mark' ? [...bytes].reverse() : bytes;
    return ordered.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  }
  const all: number[] = [];
  for (let i = 0; i < types.length; i++) {
    const bytes = partBytes(types[i]!, element.key[i]!);
    if (!bytes) return undefined;
    all.push(...bytes);
  }
  // Read as a little-endian number: the last byte is the most significant.
  let value = 0n;
  for (let i = all.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(all[i]!);
  return value;
}

/** The elements in the order nft lists them; insertion order when the type is not one kpsim lays out. */
export function sortedElements(set: NftSet): readonly NftElement[] {
  const types = keyTypes(set);
  if (!types || set.elements.length < 2 || (set.flags ?? []).includes('interval')) return set.elements;
  const keyed: { value: bigint; element: NftElement }[] = [];
  for (const element of set.elements) {
    const value = sortValue(types, element);
    if (value === undefined) return set.elements;
    keyed.push({ value, element });
  }
  keyed.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return keyed.map((k) => k.element);
}

const NEWLINE = ',\n\t\t\t     ';
const SINGLE_LINE = ', ';

/** How many elements nft prints per line: by the key's type (calculate_delim); 1 for concatenations. */
export function elementsPerLine(set: Pick<NftSet, 'type' | 'typeOf'>): number {
  const types = keyTypes(set);
  if (!types || types.length !== 1) return 1;
  switch (types[0]) {
    case 'ipv4_addr':
    case 'ct_state':
    case 'ct_status':
    case 'pkt_type':
      return 2;
    case 'nf_proto':
    case 'integer':
    case 'arp_op':
    case 'inet_proto':
    case 'inet_service':
    case 'tcp_flag':
    case 'dccp_pkttype':
    case 'mark':
    case 'iface_index':
    case 'classid':
    case 'uid':
    case 'gid':
    case 'ct_dir':
      return 5;
    default:
      return 1;
  }
}

/** `{ a, b,\n\t\t\t     c }` as nft prints a named set's elements. */
export function joinElements(texts: readonly string[], perLine: number): string {
  let out = '{ ';
  let count = 0;
  for (let i = 0; i < texts.length; i++) {
    out += texts[i]!;
    if (i === texts.length - 1) break;
    count++;
    if (count < perLine) {
      out += SINGLE_LINE;
    } else {
      count = 0;
      out += NEWLINE;
    }
  }
  return `${out} }`;
}
