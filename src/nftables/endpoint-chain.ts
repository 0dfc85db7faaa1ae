/**
 * endpoint-: hairpin masquerade (a pod reaching itself through the service), affinity, DNAT,
 * as kube-proxy's nftables syncProxyRules writes one chain per reachable endpoint of a port.
 *
 * A cluster has one of these per endpoint (150k at 5,000 nodes), made once and shared by the
 * tables of every node (shared-work.ts). Most of those tables are only rendered and counted,
 * which needs the rules' words, not rule objects: so a chain keeps what its rules are made of
 * (the port and the endpoint, objects that exist anyway) and makes its rule objects the first
 * time something reads `rules` (a tracer, a kernel model). Three small objects per endpoint fewer
 * to allocate and to copy through the young generation while a big table is built.
 *
 * Its name too is kept as what it is made of: the hash (names.ts endpointChainHash), the port's
 * text and the endpoint's text. The renderer writes it from those four times per endpoint (its
 * declaration, its two rules, the service chain's verdict map), and the string is made only when
 * something reads `name`: 150k names of 60 to 110 characters were 17 MB made on the first node
 * of a big cluster, copied by the young generation's scavenges and kept.
 */
import { copyAscii } from '../iptables/line-scratch.js';
import { protocolWord } from '../iptables/names.js';
import { isAsciiString } from '../iptables/save-text.js';
import type { EndpointInfo, ServicePortInfo } from '../tracker/types.js';
import {
  AFFINITY_PREFIX, AFFINITY_PREFIX_BYTES, ENDPOINT_PREFIX, ENDPOINT_PREFIX_BYTES, MARK_MASQ_CHAIN, asciiBytes, endpointChainHash, endpointChainName,
  endpointNames, endpointTextPrefix, endpointTextPrefixBytes, hashedName, hashedNameLength, writeHashedName,
} from './names.js';
import type { ByteTextWriter, NftChain, NftRule, TextWriter } from './types.js';

/** Hashes of 40 bits are kept as two numbers of 20 (small integers, not boxed doubles). */
const LOW_BITS = 2 ** 20;

export class EndpointChain implements NftChain {
  /** Its name, as given, or made from the hash when first read. */
  #name: string | undefined;
  /** endpointChainHash's first and last 20 bits; -1 when the name was given or is made the general way. */
  readonly #hashHigh: number;
  readonly #hashLow: number;
  /** The port's text in the name, as bytes (hashed names only). */
  readonly #portText: Uint8Array | undefined;
  readonly #ipX: 'ip' | 'ip6';
  readonly #svc: ServicePortInfo;
  readonly #ep: EndpointInfo;
  #rules: NftRule[] | undefined;

  /** `name` undefined: the chain is named by endpointChainName (written from its hash, made when read). */
  constructor(name: string | undefined, ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo) {
    let hash = -1;
    if (name === undefined) {
      hash = endpointChainHash(svc.svcPortName, ep.endpoint);
      if (hash < 0) name = endpointChainName(svc.svcPortName, ep.endpoint);
    }
    this.#name = name;
    this.#hashHigh = hash < 0 ? -1 : Math.floor(hash / LOW_BITS);
    this.#hashLow = hash < 0 ? -1 : hash % LOW_BITS;
    this.#portText = hash < 0 ? undefined : endpointTextPrefixBytes(svc.svcPortName);
    this.#ipX = ipX;
    this.#svc = svc;
    this.#ep = ep;
  }

  get name(): string {
    return (this.#name ??= hashedName(ENDPOINT_PREFIX, this.#hashHigh, this.#hashLow, endpointTextPrefix(this.#svc.svcPortName), this.#ep.endpoint));
  }

  get rules(): NftRule[] {
    return (this.#rules ??= endpointRules(this.#ipX, this.#svc, this.#ep));
  }

  get ruleCount(): number {
    return this.#rules !== undefined ? this.#rules.length : this.#svc.sessionAffinityTimeoutSeconds > 0 ? 3 : 2;
  }

  /** `head` then the chain's name, written onto `out` (a declaration's line, a verdict map's entry). */
  writeNameAfter(head: string, out: ByteTextWriter): void {
    const headBytes = this.#hashHigh < 0 ? null : headBytesOf(head);
    if (headBytes === null) {
      out.write(head);
      out.write(this.name);
      return;
    }
    const endpoint = this.#ep.endpoint;
    const b = out.room(headBytes.length + this.#nameLength(ENDPOINT_PREFIX_BYTES));
    const at = out.at;
    b.set(headBytes, at);
    out.end(writeHashedName(b, at + headBytes.length, ENDPOINT_PREFIX_BYTES, this.#hashHigh, this.#hashLow, this.#portText!, endpoint));
  }

  /** The length of the hashed name after `prefix`. */
  #nameLength(prefix: Uint8Array): number {
    return hashedNameLength(prefix, this.#portText!, this.#ep.endpoint);
  }

  /**
   * Each rule's line written onto `out`: `ruleHead` ("add rule <table> "), the chain's name, the
   * rule's text, a newline. False, and nothing written, once the rule objects are made: they
   * are then what the chain holds.
   */
  writeRuleLines(ruleHead: string, out: ByteTextWriter): boolean {
    if (this.#rules !== undefined) return false;
    if (this.#hashHigh < 0 || !this.#writeHashedRuleLines(ruleHead, out)) this.#writeRuleLines(ruleHead, out);
    return true;
  }

  /**
   * writeRuleLines as bytes, in one go: constants copied in one call each (TypedArray.set), the
   * name written from its hash once and copied within the line after (copyWithin); false
   * (nothing written) for a head that is not ASCII.
   */
  #writeHashedRuleLines(ruleHead: string, out: ByteTextWriter): boolean {
    const head = headBytesOf(ruleHead);
    if (head === null) return false;
    const ep = this.#ep;
    const endpoint = ep.endpoint;
    const ip = ep.ip;
    const v4 = this.#ipX === 'ip';
    const saddr = v4 ? IP_SADDR : IP6_SADDR;
    const dnat = dnatHeadBytes(this.#svc.protocol);
    const affinity = this.#svc.sessionAffinityTimeoutSeconds > 0;
    const nameLength = this.#nameLength(ENDPOINT_PREFIX_BYTES);
    const lines = affinity ? 3 : 2;
    let n = lines * (head.length + nameLength) + saddr.length + ip.length + MASQUERADE_TAIL.length + dnat.length + endpoint.length + 1;
    if (affinity) n += UPDATE_AT.length + nameLength + (v4 ? IP_AFFINITY_TAIL : IP6_AFFINITY_TAIL).length;
    const b = out.room(n);
    let p = out.at;
    b.set(head, p);
    p += head.length;
    const name = p;
    p = writeHashedName(b, p, ENDPOINT_PREFIX_BYTES, this.#hashHigh, this.#hashLow, this.#portText!, endpoint);
    b.set(saddr, p);
    p = copyAscii(b, p + saddr.length, ip);
    // Nothing is kept of what was written (end() not called) if the address is not ASCII.
    if (p < 0) return false;
    b.set(MASQUERADE_TAIL, p);
    p += MASQUERADE_TAIL.length;
    if (affinity) {
      // The affinity set is named after the chain (names.ts): "affinity-" and the rest of its name.
      b.set(head, p);
      p += head.length;
      b.copyWithin(p, name, name + nameLength);
      p += nameLength;
      b.set(UPDATE_AT, p);
      p += UPDATE_AT.length;
      b.set(AFFINITY_PREFIX_BYTES, p);
      b.copyWithin(p + AFFINITY_PREFIX_BYTES.length, name + ENDPOINT_PREFIX_BYTES.length, name + nameLength);
      p += nameLength;
      const tail = v4 ? IP_AFFINITY_TAIL : IP6_AFFINITY_TAIL;
      b.set(tail, p);
      p += tail.length;
    }
    b.set(head, p);
    p += head.length;
    b.copyWithin(p, name, name + nameLength);
    p += nameLength;
    b.set(dnat, p);
    p = copyAscii(b, p + dnat.length, endpoint);
    if (p < 0) return false;
    b[p++] = 10;
    out.end(p);
    return true;
  }

  /** writeRuleLines piece by piece, through the name string. */
  #writeRuleLines(ruleHead: string, out: TextWriter): void {
    const saddr = this.#ipX === 'ip' ? ' ip saddr ' : ' ip6 saddr ';
    const ep = this.#ep;
    const name = this.name;
    // Each piece a constant or a string that exists: nothing is made per line.
    out.write(ruleHead);
    out.write(name);
    out.write(saddr);
    out.write(ep.ip);
    out.write(MASQUERADE_TAIL_TEXT);
    if (this.#svc.sessionAffinityTimeoutSeconds > 0) {
      out.write(ruleHead);
      out.write(name);
      out.write(UPDATE_AT_TEXT);
      out.write(AFFINITY_PREFIX);
      out.write(name.slice(ENDPOINT_PREFIX.length));
      out.write(this.#ipX === 'ip' ? ' { ip saddr }\n' : ' { ip6 saddr }\n');
    }
    out.write(ruleHead);
    out.write(name);
    out.write(dnatHead(this.#svc.protocol));
    out.write(ep.endpoint);
    out.write('\n');
  }
}

const MASQUERADE_TAIL_TEXT = ` jump ${MARK_MASQ_CHAIN}\n`;
const UPDATE_AT_TEXT = ' update @';

// The constant parts of the rules' lines, as bytes (TypedArray.set copies them in one call).
const MASQUERADE_TAIL = asciiBytes(MASQUERADE_TAIL_TEXT);
const UPDATE_AT = asciiBytes(UPDATE_AT_TEXT);
const IP_SADDR = asciiBytes(' ip saddr ');
const IP6_SADDR = asciiBytes(' ip6 saddr ');
const IP_AFFINITY_TAIL = asciiBytes(' { ip saddr }\n');
const IP6_AFFINITY_TAIL = asciiBytes(' { ip6 saddr }\n');

/**
 * Heads of lines ("add rule ip kube-proxy ", " , 7 : goto ") as bytes, by their text; null for
 * one that is not ASCII (written through the writer's strings then). Heads are few (a table's,
 * a verdict map's indexes), the bound only a guard.
 */
const HEAD_BYTES = new Map<string, Uint8Array | null>();
const MAX_HEADS = 1 << 14;

function headBytesOf(head: string): Uint8Array | null {
  let bytes = HEAD_BYTES.get(head);
  if (bytes === undefined) {
    bytes = isAsciiString(head) ? asciiBytes(head) : null;
    if (HEAD_BYTES.size < MAX_HEADS) HEAD_BYTES.set(head, bytes);
  }
  return bytes;
}

const DNAT_HEADS = new Map<string, string>();
const DNAT_HEAD_BYTES = new Map<string, Uint8Array>();

function dnatHeadBytes(protocol: ServicePortInfo['protocol']): Uint8Array {
  let bytes = DNAT_HEAD_BYTES.get(protocol);
  if (bytes === undefined) DNAT_HEAD_BYTES.set(protocol, (bytes = asciiBytes(dnatHead(protocol))));
  return bytes;
}

/** " meta l4proto tcp dnat to " (after the chain name), made once per protocol. */
function dnatHead(protocol: ServicePortInfo['protocol']): string {
  let head = DNAT_HEADS.get(protocol);
  if (head === undefined) DNAT_HEADS.set(protocol, (head = ` meta l4proto ${protocolWord(protocol)} dnat to `));
  return head;
}

/**
 * The rules of an endpoint chain. Their texts are joined flat (a template literal makes a tree
 * of concatenations, twice the bytes) and the array has no room to grow (an array grown by push
 * has room for 16).
 */
export function endpointRules(ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo): NftRule[] {
  const masquerade: NftRule = { text: [ipX, ' saddr ', ep.ip, ' jump ', MARK_MASQ_CHAIN].join('') };
  const dnat: NftRule = { text: ['meta l4proto ', protocolWord(svc.protocol), ' dnat to ', ep.endpoint].join('') };
  return svc.sessionAffinityTimeoutSeconds > 0 ? [masquerade, { text: affinityRuleText(ipX, svc, ep) }, dnat] : [masquerade, dnat];
}

function affinityRuleText(ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo): string {
  return `update @${endpointNames(svc.svcPortName, ep.endpoint).affinitySet} { ${ipX} saddr }`;
}

/** How many rules a chain holds, without making an endpoint chain's rule objects. */
export function ruleCountOf(chain: NftChain): number {
  return chain instanceof EndpointChain ? chain.ruleCount : chain.rules.length;
}
