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
  AFFINITY_PREFIX, AFFINITY_PREFIX_BYTES, ENDPOINT_PREFIX, ENDPOINT_PREFIX_BYTES, MARK_MASQ_CHAIN, asciiBytes, endpointChainHashAfter, endpointChainName,
  endpointNames, endpointTextPrefix, hashedNameLength, hashedNameOfBytes, keptAsciiBytes, writeHashedNameTail,
} from './names.js';
import type { ByteTextWriter, NftChain, NftRule, TextWriter } from './types.js';

/** Hashes of 40 bits are kept as two numbers of 20 (small integers, not boxed doubles). */
const LOW_BITS = 2 ** 20;

/**
 * What every endpoint chain of one port in one family shares: the port, the family's word, and
 * the port's text in its chains' names as bytes (when they are hashed). One object per port that
 * each chain points to, instead of three fields in each of 150k chains.
 */
class ChainsPort {
  readonly ipX: 'ip' | 'ip6';
  readonly svc: ServicePortInfo;
  /** endpointTextPrefix of the port: what each of its chains' hashes is taken over first. */
  readonly text: string;
  /** The port's text as bytes (keptAsciiBytes), made when its first hashed chain is. */
  portText: Uint8Array | undefined;

  constructor(ipX: 'ip' | 'ip6', svc: ServicePortInfo) {
    this.ipX = ipX;
    this.svc = svc;
    this.text = endpointTextPrefix(svc.svcPortName);
    this.portText = undefined;
  }
}

/**
 * The ChainsPort of the chain made last: a port's endpoint chains are made one after the other,
 * so this makes one per port without an index of ports (a port made again later gets a second
 * one, which writes the same).
 */
let lastPort: ChainsPort | undefined;

function chainsPortOf(ipX: 'ip' | 'ip6', svc: ServicePortInfo): ChainsPort {
  const last = lastPort;
  if (last !== undefined && last.svc === svc && last.ipX === ipX) return last;
  return (lastPort = new ChainsPort(ipX, svc));
}

/**
 * What a chain made of itself when something asked, or was given that it cannot work out: its
 * name, its rule objects, its address when the endpoint's text does not hold it as is; with the
 * endpoint's text. Most chains never need one (they are only rendered).
 */
interface MadeParts {
  readonly endpoint: string;
  name: string | undefined;
  rules: NftRule[] | undefined;
  ip: string | undefined;
}

/**
 * A chain holds four fields (no private methods: those would add a brand field to every
 * instance; the port's parts in one shared object), its hash as two small integers (a double
 * would be a boxed number of its own): 56 bytes where it was 112, on 150k chains made and kept
 * by the first node of a big cluster and copied by the young generation's scavenges. Its
 * address is read from the endpoint's text ("ip:port", "[ip]:port"); its name and rules, made
 * only when read, are kept with the endpoint's text in one object that takes the text's place
 * (a field of their own was 8 bytes more on every chain, 1.1 MB kept on that first node, for
 * the few chains that make them).
 */
export class EndpointChain implements NftChain {
  readonly #port: ChainsPort;
  /**
   * The endpoint's text, not the endpoint: a renderer walking 150k chains reads it from the
   * chain, one object fewer to fetch from memory each time (an endpoint is an object of a dozen
   * fields made elsewhere, far from its chain). Once the chain makes or is given anything else
   * (MadeParts), that object, holding the text.
   */
  #endpoint: string | MadeParts;
  /** endpointChainHash's first and last 20 bits; -1 when the name was given or is made the general way. */
  readonly #hashHigh: number;
  readonly #hashLow: number;

  /** `name` undefined: the chain is named by endpointChainName (written from its hash, made when read). */
  constructor(name: string | undefined, ipX: 'ip' | 'ip6', svc: ServicePortInfo, ep: EndpointInfo) {
    const port = chainsPortOf(ipX, svc);
    let hash = -1;
    if (name === undefined) {
      hash = endpointChainHashAfter(port.text, ep.endpoint);
      if (hash < 0) name = endpointChainName(svc.svcPortName, ep.endpoint);
    }
    if (hash >= 0 && port.portText === undefined) port.portText = keptAsciiBytes(port.text);
    this.#port = port;
    const ipFromText = hostIsIP(ep.endpoint, ep.ip);
    this.#endpoint = name === undefined && ipFromText ? ep.endpoint : { endpoint: ep.endpoint, name, rules: undefined, ip: ipFromText ? undefined : ep.ip };
    this.#hashHigh = hash < 0 ? -1 : Math.floor(hash / LOW_BITS) | 0;
    this.#hashLow = hash < 0 ? -1 : (hash % LOW_BITS) | 0;
  }

  get name(): string {
    const made = this.#endpoint;
    if (typeof made === 'object' && made.name !== undefined) return made.name;
    // Only a chain named from its hash has no name yet.
    const endpoint = textOf(made);
    const name = hashedNameOfBytes(ENDPOINT_PREFIX_BYTES, this.#hashHigh, this.#hashLow, this.#port.portText!, endpoint);
    if (typeof made === 'object') made.name = name;
    else this.#endpoint = { endpoint, name, rules: undefined, ip: undefined };
    return name;
  }

  get rules(): NftRule[] {
    const made = this.#endpoint;
    if (typeof made === 'object' && made.rules !== undefined) return made.rules;
    const endpoint = textOf(made);
    const rules = endpointRulesOf(this.#port.ipX, this.#port.svc, ipOf(made, endpoint), endpoint);
    if (typeof made === 'object') made.rules = rules;
    else this.#endpoint = { endpoint, name: undefined, rules, ip: undefined };
    return rules;
  }

  get ruleCount(): number {
    const made = this.#endpoint;
    if (typeof made === 'object' && made.rules !== undefined) return made.rules.length;
    return this.#port.svc.sessionAffinityTimeoutSeconds > 0 ? 3 : 2;
  }

  /** `head` then the chain's name, written onto `out` (a verdict map's entry). */
  writeNameAfter(head: string, out: ByteTextWriter, headName?: Uint8Array): void {
    // `headName`: the head and "endpoint-" as bytes, when the caller keeps them (a verdict map's entries).
    if (writeHashedNameAfter(head, out, this.#port, textOf(this.#endpoint), this.#hashHigh, this.#hashLow, false, headName)) return;
    out.write(head);
    out.write(this.name);
  }

  /** `head`, the chain's name and a newline, written onto `out` (a declaration's line). */
  writeNameLine(head: string, out: ByteTextWriter): void {
    if (writeHashedNameAfter(head, out, this.#port, textOf(this.#endpoint), this.#hashHigh, this.#hashLow, true)) return;
    out.write(head);
    out.write(this.name);
    out.write('\n');
  }

  /**
   * Each rule's line written onto `out`: `ruleHead` ("add rule <table> "), the chain's name, the
   * rule's text, a newline. False, and nothing written, once the rule objects are made: they
   * are then what the chain holds.
   */
  writeRuleLines(ruleHead: string, out: ByteTextWriter): boolean {
    const made = this.#endpoint;
    if (typeof made === 'object' && made.rules !== undefined) return false;
    const port = this.#port;
    const endpoint = textOf(made);
    // The address from the endpoint's text (the hashed forms hold it as is), else as given.
    const fromText = typeof made === 'string' || made.ip === undefined;
    if (this.#hashHigh < 0 || !fromText || !writeHashedRuleLines(ruleHead, out, port, endpoint, this.#hashHigh, this.#hashLow)) {
      writeRuleLinesOf(ruleHead, out, port, ipOf(made, endpoint), endpoint, this.name);
    }
    return true;
  }
}

/** The endpoint's text a chain holds, as it is or with what it made (a function: see ipOf). */
function textOf(made: string | MadeParts): string {
  return typeof made === 'string' ? made : made.endpoint;
}

/**
 * The endpoint's address: its text's host part, unless the chain was given another (a function,
 * not a private getter: that would add a brand field to every chain).
 */
function ipOf(made: string | MadeParts, endpoint: string): string {
  if (typeof made === 'object' && made.ip !== undefined) return made.ip;
  return endpoint.slice(hostStart(endpoint), hostEnd(endpoint));
}

/** Where the host of "host:port" or "[host]:port" starts. */
function hostStart(endpoint: string): number {
  return endpoint.charCodeAt(0) === 91 /* [ */ ? 1 : 0;
}

/** Where it ends: before "]" or the (last) colon. */
function hostEnd(endpoint: string): number {
  return endpoint.charCodeAt(0) === 91 /* [ */ ? endpoint.indexOf(']') : endpoint.lastIndexOf(':');
}

/** Whether `ip` is the host part of the endpoint's text, as hostStart and hostEnd find it. */
function hostIsIP(endpoint: string, ip: string): boolean {
  const start = hostStart(endpoint);
  return hostEnd(endpoint) - start === ip.length && endpoint.startsWith(ip, start);
}

/**
 * `head` and the name of the chain whose hash is `high` and `low` (and a newline), as bytes:
 * the head and "endpoint-" in one copy, then the name from its hash on. False, nothing written,
 * for a chain named the general way (high < 0) or a head that is not ASCII.
 */
function writeHashedNameAfter(
  head: string, out: ByteTextWriter, port: ChainsPort, endpoint: string, high: number, low: number, newline: boolean, headName?: Uint8Array,
): boolean {
  const headBytes = high < 0 ? null : headName ?? headNameBytesOf(head);
  if (headBytes === null) return false;
  const portText = port.portText!;
  const b = out.room(headBytes.length + hashedNameLength(ENDPOINT_PREFIX_BYTES, portText, endpoint) + 1);
  const at = out.at;
  b.set(headBytes, at);
  let p = writeHashedNameTail(b, at + headBytes.length, high, low, portText, endpoint);
  if (newline) b[p++] = 10;
  out.end(p);
  return true;
}

/**
 * An endpoint chain's rule lines as bytes, in one go (its address from the endpoint's text): constants copied in one call each
 * (TypedArray.set), the name written from its hash once and copied within the line after
 * (copyWithin); false (nothing written) for a head that is not ASCII.
 */
function writeHashedRuleLines(ruleHead: string, out: ByteTextWriter, port: ChainsPort, endpoint: string, high: number, low: number): boolean {
  const headName = headNameBytesOf(ruleHead);
  if (headName === null) return false;
  const head = headBytesOf(ruleHead)!;
  const portText = port.portText!;
  const v4 = port.ipX === 'ip';
  const saddr = v4 ? IP_SADDR : IP6_SADDR;
  const dnat = dnatHeadBytes(port.svc.protocol);
  const affinity = port.svc.sessionAffinityTimeoutSeconds > 0;
  const nameLength = hashedNameLength(ENDPOINT_PREFIX_BYTES, portText, endpoint);
  const lines = affinity ? 3 : 2;
  const ipStart = hostStart(endpoint);
  const ipEnd = hostEnd(endpoint);
  let n = lines * (head.length + nameLength) + saddr.length + (ipEnd - ipStart) + MASQUERADE_TAIL.length + dnat.length + endpoint.length + 1;
  if (affinity) n += UPDATE_AT.length + nameLength + (v4 ? IP_AFFINITY_TAIL : IP6_AFFINITY_TAIL).length;
  const b = out.room(n);
  let p = out.at;
  b.set(headName, p);
  const name = p + head.length;
  p = writeHashedNameTail(b, p + headName.length, high, low, portText, endpoint);
  b.set(saddr, p);
  // The address, as the endpoint's text holds it (checked when the chain was made); the text is
  // ASCII, or it would not have been hashed (names.ts).
  p += saddr.length;
  for (let i = ipStart; i < ipEnd; i++) b[p++] = endpoint.charCodeAt(i);
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

/** An endpoint chain's rule lines piece by piece, through its name's string. */
function writeRuleLinesOf(ruleHead: string, out: TextWriter, port: ChainsPort, ip: string, endpoint: string, name: string): void {
  const saddr = port.ipX === 'ip' ? ' ip saddr ' : ' ip6 saddr ';
  // Each piece a constant or a string that exists: nothing is made per line.
  out.write(ruleHead);
  out.write(name);
  out.write(saddr);
  out.write(ip);
  out.write(MASQUERADE_TAIL_TEXT);
  if (port.svc.sessionAffinityTimeoutSeconds > 0) {
    out.write(ruleHead);
    out.write(name);
    out.write(UPDATE_AT_TEXT);
    out.write(AFFINITY_PREFIX);
    out.write(name.slice(ENDPOINT_PREFIX.length));
    out.write(port.ipX === 'ip' ? ' { ip saddr }\n' : ' { ip6 saddr }\n');
  }
  out.write(ruleHead);
  out.write(name);
  out.write(dnatHead(port.svc.protocol));
  out.write(endpoint);
  out.write('\n');
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
 * Heads of lines ("add rule ip kube-proxy ", " , 7 : goto "), each followed by a fixed text, as
 * bytes by the head's text; null for a head that is not ASCII (written through the writer's
 * strings then). Heads are few (a table's, a verdict map's indexes), the bound only a guard.
 * The head last asked for is checked first: most calls in a row ask for the same one.
 */
class HeadBytes {
  static readonly MAX_HEADS = 1 << 14;
  readonly #suffix: string;
  readonly #byHead = new Map<string, Uint8Array | null>();
  #lastHead: string | undefined = undefined;
  #lastBytes: Uint8Array | null = null;

  constructor(suffix: string) {
    this.#suffix = suffix;
  }

  of(head: string): Uint8Array | null {
    if (head === this.#lastHead) return this.#lastBytes;
    let bytes = this.#byHead.get(head);
    if (bytes === undefined) {
      bytes = isAsciiString(head) ? asciiBytes(head + this.#suffix) : null;
      if (this.#byHead.size < HeadBytes.MAX_HEADS) this.#byHead.set(head, bytes);
    }
    this.#lastHead = head;
    this.#lastBytes = bytes;
    return bytes;
  }
}

/** A head as bytes. */
const HEADS = new HeadBytes('');
/** A head and "endpoint-" as bytes (what comes before an endpoint chain's hash). */
const HEAD_NAMES = new HeadBytes(ENDPOINT_PREFIX);

function headBytesOf(head: string): Uint8Array | null {
  return HEADS.of(head);
}

function headNameBytesOf(head: string): Uint8Array | null {
  return HEAD_NAMES.of(head);
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
  return endpointRulesOf(ipX, svc, ep.ip, ep.endpoint);
}

/** endpointRules of the endpoint whose address is `ip` and text `endpoint`. */
function endpointRulesOf(ipX: 'ip' | 'ip6', svc: ServicePortInfo, ip: string, endpoint: string): NftRule[] {
  const masquerade: NftRule = { text: [ipX, ' saddr ', ip, ' jump ', MARK_MASQ_CHAIN].join('') };
  const dnat: NftRule = { text: ['meta l4proto ', protocolWord(svc.protocol), ' dnat to ', endpoint].join('') };
  return svc.sessionAffinityTimeoutSeconds > 0 ? [masquerade, { text: affinityRuleText(ipX, svc, endpoint) }, dnat] : [masquerade, dnat];
}

function affinityRuleText(ipX: 'ip' | 'ip6', svc: ServicePortInfo, endpoint: string): string {
  return `update @${endpointNames(svc.svcPortName, endpoint).affinitySet} { ${ipX} saddr }`;
}

/** How many rules a chain holds, without making an endpoint chain's rule objects. */
export function ruleCountOf(chain: NftChain): number {
  return chain instanceof EndpointChain ? chain.ruleCount : chain.rules.length;
}
