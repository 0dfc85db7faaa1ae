/**
 * IP and CIDR helpers over ipaddr.js, in the forms kube-proxy uses.
 *
 * Addresses are handled as normalised strings ("10.180.0.1", "fd00:10::1") everywhere in kpsim;
 * these helpers are the one place that parses them.
 */
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

/** IPv4 dotted-quad with optional leading zeros, read as decimal (Go's ParseIPSloppy does so). */
const SLOPPY_IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const v4 = SLOPPY_IPV4.exec(text);
  if (v4) {
    const octets = v4.slice(1).map((o) => Number.parseInt(o, 10));
    return octets.every((o) => o <= 255) ? new ipaddr.IPv4(octets) : undefined;
  }
  // ipaddr.js would also take "0x0a.1" or "10.1" as IPv4: only a colon form may go on to IPv6.
  if (!text.includes(':') || !ipaddr.IPv6.isValid(text)) return undefined;
  const v6 = ipaddr.IPv6.parse(text);
  // An IPv4-mapped IPv6 address is an IPv4 address to the kernel and to Go's net.ParseIP.
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/**
 * The normalised text of an IP address, or undefined when `text` is not one. An address already
 * in normal form (nearly every one a manifest holds: 150,000 pods have two each) is the answer
 * itself, said without parsing it; any other text is parsed.
 */
export function normalizeIP(text: string): string | undefined {
  if (plainIPv4Value(text) >= 0 || isNormalIPv6(text)) return text;
  return slowNormalizeIP(text);
}

/** normalizeIP by parsing, whatever the text: what the fast checks are tested against. */
export function slowNormalizeIP(text: string): string | undefined {
  const addr = parseAddress(text.trim());
  return addr?.toString();
}

/** The groups of the address isNormalIPv6 last read, as written (reused: no array per address). */
const writtenGroups = new Int32Array(8);

/**
 * Whether `text` is an IPv6 address exactly as normalizeIP writes it (ipaddr.js's RFC 5952
 * form): groups of lower-case hex without leading zeros; the longest run of two or more zero
 * groups (the leftmost of equals) written "::", and no other; not IPv4-mapped (that one is
 * written as IPv4); no zone, no dotted tail. False means only "not known to be normal": the
 * caller parses the text. Nothing is allocated.
 */
export function isNormalIPv6(text: string): boolean {
  const n = text.length;
  if (n < 2 || n > 39) return false;
  let i = 0;
  let groups = 0;
  /** How many groups are written before the "::"; -1 when there is none. */
  let gapAt = -1;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gapAt = 0;
    i = 2;
  }
  while (i < n) {
    const start = i;
    let value = 0;
    for (; i < n; i++) {
      const ch = text.charCodeAt(i);
      const digit = ch >= 48 && ch <= 57 ? ch - 48 : ch >= 97 && ch <= 102 ? ch - 87 : -1;
      if (digit < 0) break;
      value = value * 16 + digit;
    }
    const digits = i - start;
    // An empty group, more than four digits, a leading zero, or a ninth group: not normal form.
    if (digits === 0 || digits > 4 || (digits > 1 && text.charCodeAt(start) === 48) || groups === 8) return false;
    writtenGroups[groups++] = value;
    if (i === n) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i === n) return false;
    if (text.charCodeAt(i) === 58) {
      if (gapAt >= 0) return false;
      gapAt = groups;
      i++;
    }
  }
  // "::" stands for two or more zero groups in normal form; without one, all eight are written.
  if (gapAt < 0 ? groups !== 8 : groups > 6) return false;
  const gap = gapAt < 0 ? 0 : 8 - groups;
  // The longest run of zero groups of the whole address, leftmost first, as toRFC5952String picks it.
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  let leadingZeros = 0;
  let group5 = -1;
  for (let g = 0; g <= 8; g++) {
    const value = g === 8 ? -1 : gapAt < 0 || g < gapAt ? writtenGroups[g]! : g < gapAt + gap ? 0 : writtenGroups[g - gap]!;
    if (g === 5) group5 = value;
    if (value === 0) {
      if (runStart < 0) runStart = g;
      if (g === leadingZeros) leadingZeros++;
      continue;
    }
    if (runStart >= 0 && g - runStart > bestLength) {
      bestStart = runStart;
      bestLength = g - runStart;
    }
    runStart = -1;
  }
  // ::ffff:a.b.c.d is IPv4 to normalizeIP.
  if (leadingZeros >= 5 && group5 === 0xffff) return false;
  return bestStart < 0 ? gapAt < 0 : gapAt === bestStart && gap === bestLength;
}

export function isIP(text: string): boolean {
  return normalizeIP(text) !== undefined;
}

/** 4 or 6 for an address (normalised or not); undefined when it is not an address. */
/**
 * The family of an address already validated (decoded into the model, or checked): IPv6 text
 * always has a colon, IPv4 text never. What ipFamily says, without parsing the address again.
 */
export function familyOfValidIP(ip: string): Family {
  return ip.includes(':') ? 6 : 4;
}

export function ipFamily(text: string): Family | undefined {
  if (plainIPv4Value(text) >= 0) return 4;
  if (isNormalIPv6(text)) return 6;
  const addr = parseAddress(text.trim());
  if (!addr) return undefined;
  return addr.kind() === 'ipv4' ? 4 : 6;
}

export interface Cidr {
  readonly family: Family;
  readonly prefixLength: number;
  /** The network address, normalised, host bits cleared. */
  readonly network: string;
  /** "network/prefix", normalised. */
  readonly text: string;
  readonly addr: ipaddr.IPv4 | ipaddr.IPv6;
}

/**
 * Parse "a.b.c.d/n" or "x::/n". A bare address is taken as a host route (/32 or /128) only when
 * `allowBareIP` is set, as iptables does for -s/-d.
 */
export function parseCIDR(text: string, allowBareIP = false): Cidr | undefined {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addrText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const addr = parseAddress(addrText);
  if (!addr) return undefined;
  const family: Family = addr.kind() === 'ipv4' ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  let prefixLength = bits;
  if (slash >= 0) {
    const lenText = trimmed.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) return undefined;
    prefixLength = Number.parseInt(lenText, 10);
    if (prefixLength > bits) return undefined;
  } else if (!allowBareIP) {
    return undefined;
  }
  const network = networkAddress(addr, prefixLength);
  // Written once: an IPv6 address's text is ipaddr.js's RFC 5952 writer, regular expressions and all.
  const networkText = network.toString();
  return { family, prefixLength, network: networkText, text: `${networkText}/${prefixLength}`, addr: network };
}

function networkAddress(addr: ipaddr.IPv4 | ipaddr.IPv6, prefixLength: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = addr.toByteArray();
  for (let bit = prefixLength; bit < bytes.length * 8; bit++) {
    const byteIndex = bit >> 3;
    bytes[byteIndex] = bytes[byteIndex]! & ~(0x80 >> (bit & 7));
  }
  return ipaddr.fromByteArray(bytes);
}

/** Whether `ip` (any text form) lies inside `cidr`. Addresses of another family never do. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const addr = parseAddress(ip);
  if (!addr || addr.kind() !== cidr.addr.kind()) return false;
  return addr.match(cidr.addr, cidr.prefixLength);
}

/** "ip:port", or "[ip]:port" for IPv6: the endpoint form kube-proxy hashes and prints. */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** "host:port" / "[host]:port" split as written (the host may be a name); undefined when not that form. */
export function splitHostPortText(text: string): { host: string; portText: string } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  return m ? { host: m[1]!, portText: m[2]! } : undefined;
}

/** Split "ip:port" / "[ip]:port"; undefined when it is not that form or the port is not 0-65535. */
export function splitHostPort(text: string): { ip: string; port: number } | undefined {
  const parts = splitHostPortText(text);
  if (!parts) return undefined;
  const ip = normalizeIP(parts.host);
  const port = Number.parseInt(parts.portText, 10);
  if (ip === undefined || port > 65535) return undefined;
  return { ip, port };
}

/** The address after `ip` (the first host of a network address): "10.244.1.0" → "10.244.1.1". */
export function nextAddress(ip: string): string {
  const addr = parseAddress(ip);
  if (!addr) throw new Error(`nextAddress: ${ip} is not an IP address`);
  const bytes = addr.toByteArray();
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = (bytes[i]! + 1) & 0xff;
    if (bytes[i] !== 0) break;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** A host as written in a URL or beside a port: "[fd00::1]" → "fd00::1"; other text as it is. */
export function unbracketHost(text: string): string {
  return text.length >= 2 && text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
}

/**
 * An address with or without a port: "ip:port", "[ip]:port", "ip" or "[ip]" (the port is
 * undefined then); undefined when it is none of these.
 */
export function splitHostOptionalPort(text: string): { ip: string; port: number | undefined } | undefined {
  const hostPort = splitHostPort(text);
  if (hostPort) return hostPort;
  const ip = normalizeIP(unbracketHost(text));
  return ip === undefined ? undefined : { ip, port: undefined };
}

export function isLoopback(ip: string): boolean {
  const addr = parseAddress(ip);
  return addr !== undefined && addr.range() === 'loopback';
}

/** The address as an unsigned 32-bit integer (IPv4) or a bigint (IPv6), for hashing and ordering. */
/**
 * The first `end` characters of `text` as an IPv4 address in normal form (four decimal octets
 * without leading zeros), as a number; -1 when they are anything else. No string is made: hot
 * paths (the simulator's client names, the tracer's kept-walk lookups) read addresses this way.
 */
export function plainIPv4Value(text: string, end = text.length): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < end; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
      continue;
    }
    const digit = ch - 48;
    if (digit < 0 || digit > 9 || (digits > 0 && octet === 0)) return -1;
    octet = octet * 10 + digit;
    digits++;
    if (octet > 255) return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

export function ipv4ToUint32(ip: string): number {
  const addr = parseAddress(ip);
  if (!addr || addr.kind() !== 'ipv4') throw new Error(`ipv4ToUint32: ${ip} is not an IPv4 address`);
  const [a, b, c, d] = addr.toByteArray() as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function ipToBytes(ip: string): number[] {
  const addr = parseAddress(ip);
  if (!addr) throw new Error(`ipToBytes: ${ip} is not an IP address`);
  return addr.toByteArray();
}

/**
 * An address as 32-bit words, most significant first: one for IPv4, four for IPv6 (what ntohl
 * gives word by word). A typed array: every address and mask has the same element kind, which
 * keeps the code that matches them monomorphic.
 */
export type Words = Readonly<Uint32Array>;

/** Address or mask bytes (4 or 16) as Words. */
export function bytesToWords(bytes: readonly number[]): Uint32Array {
  const words = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < bytes.length; i += 4) {
    words[i / 4] = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
  }
  return words;
}

export function ipToWords(ip: string): Uint32Array {
  return bytesToWords(ipToBytes(ip));
}

export function familyName(family: Family): 'IPv4' | 'IPv6' {
  return family === 4 ? 'IPv4' : 'IPv6';
}

/** The host route for an address: "/32" for IPv4, "/128" for IPv6. */
export function hostPrefix(family: Family): number {
  return family === 4 ? 32 : 128;
}

// ---------------------------------------------------------------- netmasks

/** The mask of a prefix length as bytes (4 for IPv4, 16 for IPv6): 24 → [255, 255, 255, 0]. */
export function prefixMaskBytes(prefixLength: number, family: Family): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < (family === 4 ? 4 : 16); i++) {
    const inByte = Math.max(0, Math.min(8, prefixLength - i * 8));
    bytes.push((0xff << (8 - inByte)) & 0xff);
  }
  return bytes;
}

/** The prefix length of a mask given as bytes; undefined when its ones are not contiguous. */
export function maskPrefixLength(mask: readonly number[]): number | undefined {
  let length = 0;
  let seenZero = false;
  for (const byte of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      const set = (byte >> bit) & 1;
      if (set && seenZero) return undefined;
      if (set) length++;
      else seenZero = true;
    }
  }
  return length;
}

/**
 * A dotted IPv4 netmask ("255.255.255.0", as ipvsadm -M and ifconfig take one) as a prefix
 * length; undefined when the text is not a dotted quad or its ones are not contiguous.
 */
export function dottedNetmaskPrefix(text: string): number | undefined {
  const octets = SLOPPY_IPV4.exec(text);
  if (!octets) return undefined;
  const bytes = octets.slice(1).map((o) => Number.parseInt(o, 10));
  return bytes.every((b) => b <= 255) ? maskPrefixLength(bytes) : undefined;
}

/** The dotted IPv4 netmask of a prefix length: inet_ntoa of the mask (24 → "255.255.255.0"). */
export function dottedNetmask(prefixLength: number): string {
  return prefixMaskBytes(prefixLength, 4).join('.');
}

// ---------------------------------------------------------------- address arithmetic

/** The address as an unsigned integer (any family): for address arithmetic. */
export function ipToBigInt(ip: string): bigint {
  return ipToBytes(ip).reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}

/** The normalised text of an address given as an unsigned integer of `family`. */
export function bigIntToIP(value: bigint, family: Family): string {
  if (family === 4) return uint32ToIPv4(Number(value & 0xffffffffn));
  const bytes: number[] = [];
  for (let i = 15; i >= 0; i--) bytes.push(Number((value >> BigInt(i * 8)) & 0xffn));
  return ipaddr.fromByteArray(bytes).toString();
}

/** Dotted-quad text of an unsigned 32-bit integer. */
export function uint32ToIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** How many addresses a CIDR holds (network and broadcast included). */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(hostPrefix(cidr.family) - cidr.prefixLength);
}

/**
 * The index-th block of prefix length `prefixLength` inside `cidr` ("10.244.0.0/16", 24, 3 →
 * 10.244.3.0/24), or undefined when the CIDR holds fewer blocks or the blocks are larger than it.
 */
export function nthSubnet(cidr: Cidr, prefixLength: number, index: number): Cidr | undefined {
  if (prefixLength < cidr.prefixLength || prefixLength > hostPrefix(cidr.family)) return undefined;
  const count = 1n << BigInt(prefixLength - cidr.prefixLength);
  if (BigInt(index) >= count) return undefined;
  const base = ipToBigInt(cidr.network) + (BigInt(index) << BigInt(hostPrefix(cidr.family) - prefixLength));
  return parseCIDR(`${bigIntToIP(base, cidr.family)}/${prefixLength}`);
}

/** Whether two CIDRs share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  return a.prefixLength <= b.prefixLength ? cidrContains(a, b.network) : cidrContains(b, a.network);
}
