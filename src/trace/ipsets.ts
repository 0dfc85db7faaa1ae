/**
 * ipsets for `-m set --match-set NAME FLAGS`, from their members as `ipset add` takes them.
 *
 * A member is a comma-separated tuple: an address or network ("10.0.0.1", "10.0.0.0/24") or a
 * port ("tcp:80", "80", "udp:30000-30010"). A bare port means tcp in a multi-part member, as
 * ipset reads hash:ip,port; a member that is only a port (bitmap:port) ignores the protocol.
 * The flags pick, per part, the packet's source or destination (kube-proxy's IPVS rules use
 * "dst,dst" for hash:ip,port and "dst,dst,src" for hash:ip,port,ip / hash:ip,port,net).
 */
import { parseAddressSpec } from '../iptables/rule-values.js';
import type { Words } from '../util/ip.js';
import { inNetwork, networkOf, type Network } from './addresses.js';

type MemberPart =
  | { readonly kind: 'address'; readonly net: Network }
  | { readonly kind: 'port'; readonly proto: string | undefined; readonly min: number; readonly max: number };

export interface IpsetPacket {
  readonly proto: string;
  readonly src: Words;
  readonly dst: Words;
  readonly sport: number | undefined;
  readonly dport: number;
}

export class Ipset {
  readonly members: readonly (readonly MemberPart[])[];
  /** Members kpsim could not read (kept out of the set, reported as a note). */
  readonly unreadable: readonly string[];

  constructor(readonly name: string, memberTexts: readonly string[]) {
    const members: MemberPart[][] = [];
    const unreadable: string[] = [];
    for (const text of memberTexts) {
      const parts = text.split(',').map((part, _i, all) => readPart(part.trim(), all.length > 1));
      if (parts.every((p): p is MemberPart => p !== undefined)) members.push(parts);
      else unreadable.push(text);
    }
    this.members = members;
    this.unreadable = unreadable;
  }

  /** Whether the packet's tuple, read through `flags`, is a member. */
  has(packet: IpsetPacket, flags: readonly ('src' | 'dst')[]): boolean {
    return this.members.some((member) => member.length === flags.length
      && member.every((part, i) => partMatches(part, packet, flags[i]!)));
  }
}

function readPart(text: string, inTuple: boolean): MemberPart | undefined {
  const port = /^(?:([a-z0-9-]+):)?([0-9]{1,5})(?:-([0-9]{1,5}))?$/i.exec(text);
  if (port && (port[1] !== undefined || /^[0-9]+(?:-[0-9]+)?$/.test(text))) {
    const min = Number.parseInt(port[2]!, 10);
    const max = port[3] === undefined ? min : Number.parseInt(port[3], 10);
    if (max > 65535 || min > max) return undefined;
    const proto = port[1]?.toLowerCase() ?? (inTuple ? 'tcp' : undefined);
    return { kind: 'port', proto, min, max };
  }
  const spec = parseAddressSpec(text);
  return spec ? { kind: 'address', net: networkOf(spec) } : undefined;
}

function partMatches(part: MemberPart, packet: IpsetPacket, flag: 'src' | 'dst'): boolean {
  if (part.kind === 'address') return inNetwork(flag === 'src' ? packet.src : packet.dst, part.net);
  if (part.proto !== undefined && part.proto !== packet.proto) return false;
  const port = flag === 'src' ? packet.sport : packet.dport;
  return port !== undefined && port >= part.min && port <= part.max;
}
