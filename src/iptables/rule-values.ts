/**
 * The values inside iptables rule options, read the way iptables' own extensions read them
 * (libxtables and libxt_*.c) and printed the way iptables-save prints them back: ports and port
 * ranges, 32-bit marks, addresses with prefix or dotted masks, NAT ranges, and the statistic
 * match's probability, which the kernel keeps as a 31-bit fraction.
 *
 * Every reader returns undefined for a value iptables would refuse; callers turn that into a
 * problem report with the rule's location.
 */
import { familyOfValidIP, ipToBytes, maskPrefixLength, normalizeIP, prefixMaskBytes, type Family } from '../util/ip.js';

// ---------------------------------------------------------------- numbers

/** xtables_strtoui with base 0: "0x1f" hex, "017" octal, "15" decimal. */
export function parseUnsigned(text: string, max: number): number | undefined {
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) value = Number.parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = text.length === 1 ? 0 : Number.parseInt(text.slice(1), 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number.parseInt(text, 10);
  else return undefined;
  return Number.isSafeInteger(value) && value <= max ? value : undefined;
}

export const U32_MAX = 0xffffffff;

/** "0x4000" or "0x4000/0x4000" (libxtables xtables_parse_mark_mask): the mask defaults to all ones. */
export function parseMarkMask(text: string): { value: number; mask: number } | undefined {
  const slash = text.indexOf('/');
  const value = parseUnsigned(slash < 0 ? text : text.slice(0, slash), U32_MAX);
  const mask = slash < 0 ? U32_MAX : parseUnsigned(text.slice(slash + 1), U32_MAX);
  if (value === undefined || mask === undefined) return undefined;
  return { value, mask };
}

export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

// ---------------------------------------------------------------- ports

export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/**
 * "80", "80:90", ":90" (from 0), "80:" (to 65535), as libxt_tcp reads --dport. A service name
 * ("http") is valid to iptables, which looks it up in /etc/services; kpsim does not, so it comes
 * back as undefined with `isServiceName` telling the caller why.
 */
export function parsePortRange(text: string): PortRange | undefined {
  const colon = text.indexOf(':');
  if (colon < 0) {
    const port = parsePortNumber(text);
    return port === undefined ? undefined : { min: port, max: port };
  }
  const lowText = text.slice(0, colon);
  const highText = text.slice(colon + 1);
  const min = lowText === '' ? 0 : parsePortNumber(lowText);
  const max = highText === '' ? 65535 : parsePortNumber(highText);
  if (min === undefined || max === undefined || min > max) return undefined;
  return { min, max };
}

function parsePortNumber(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number.parseInt(text, 10);
  return port <= 65535 ? port : undefined;
}

export function isServiceName(text: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(text);
}

/** "80", or "80:90" for a range: libxt_tcp's print_port / print_ports. */
export function formatPortRange(range: PortRange): string {
  return range.min === range.max ? String(range.min) : `${range.min}:${range.max}`;
}

/** Multiport lists: "53,1000:2000" (at most 15 entries, a range counting twice). */
export function parsePortList(text: string): PortRange[] | undefined {
  const ranges: PortRange[] = [];
  let slots = 0;
  for (const part of text.split(',')) {
    const range = parsePortRange(part);
    // libxt_multiport wants both ends of a range, the first smaller than the second.
    if (range === undefined || part.startsWith(':') || part.endsWith(':')) return undefined;
    if (part.includes(':') && range.min >= range.max) return undefined;
    ranges.push(range);
    slots += part.includes(':') ? 2 : 1;
  }
  return slots <= 15 ? ranges : undefined;
}

// ---------------------------------------------------------------- addresses

/**
 * One -s/-d address: a network and a mask, both as bytes, plus the text iptables-save prints
 * ("10.0.0.0/24", "10.0.0.1/32", "fd00::1/128", or a dotted mask when it is not a prefix).
 */
export interface AddressSpec {
  readonly family: Family;
  readonly network: readonly number[];
  readonly mask: readonly number[];
  /** Prefix length, or undefined when the mask is not contiguous. */
  readonly prefixLength: number | undefined;
  readonly text: string;
}

/**
 * "10.0.0.1", "10.0.0.0/8", "10.0.0.0/255.0.0.0", "fd00::/64". Host names are valid to
 * iptables (it resolves them once, when the rule is added) but kpsim is pure and does not.
 */
export function parseAddressSpec(text: string): AddressSpec | undefined {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = normalizeIP(addrText);
  if (ip === undefined) return undefined;
  const family: Family = familyOfValidIP(ip);
  const bits = family === 4 ? 32 : 128;
  let mask: number[];
  if (slash < 0) {
    mask = prefixMaskBytes(bits, family);
  } else {
    const maskText = text.slice(slash + 1);
    if (/^[0-9]{1,3}$/.test(maskText)) {
      const length = Number.parseInt(maskText, 10);
      if (length > bits) return undefined;
      mask = prefixMaskBytes(length, family);
    } else {
      const maskIP = normalizeIP(maskText);
      if (maskIP === undefined || familyOfValidIP(maskIP) !== family) return undefined;
      mask = ipToBytes(maskIP);
    }
  }
  const network = ipToBytes(ip).map((byte, i) => byte & mask[i]!);
  const prefixLength = maskPrefixLength(mask);
  const networkText = bytesToText(network, family);
  const maskPart = prefixLength !== undefined ? String(prefixLength) : bytesToText(mask, family);
  return { family, network, mask, prefixLength, text: `${networkText}/${maskPart}` };
}

function bytesToText(bytes: readonly number[], family: Family): string {
  if (family === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return normalizeIP(groups.join(':'))!;
}

/** True when the spec is one host: /32 or /128. */
export function isHostAddress(spec: AddressSpec): boolean {
  return spec.prefixLength === (spec.family === 4 ? 32 : 128);
}

/** The host address of a /32 or /128 spec, normalised ("10.0.0.1", "fd00::1"). */
export function hostOf(spec: AddressSpec): string {
  return bytesToText(spec.network, spec.family);
}

// ---------------------------------------------------------------- NAT ranges

/** --to-destination / --to-source: an address range and a port range, either optional. */
export interface NatRange {
  readonly minIP?: string;
  readonly maxIP?: string;
  readonly minPort?: number;
  readonly maxPort?: number;
  /** As libipt_DNAT / libip6t_DNAT print it back. */
  readonly text: string;
}

/**
 * "10.0.0.1", "10.0.0.1:80", "10.0.0.1-10.0.0.2:80-90", ":53", "[fd00::1]:80", "fd00::1",
 * "[fd00::1]-[fd00::2]:80".
 */
export function parseNatRange(text: string, family: Family): NatRange | undefined {
  let addrPart: string;
  let portPart: string | undefined;
  if (family === 6 && text.startsWith('[')) {
    const m = /^(\[[^\]]+\](?:-\[[^\]]+\])?)(?::(.*))?$/.exec(text);
    if (!m) return undefined;
    addrPart = m[1]!.replace(/[[\]]/g, '');
    portPart = m[2];
  } else if (family === 6 && !text.startsWith(':')) {
    addrPart = text; // a bare IPv6 address (or range) cannot carry a port
  } else {
    const colon = text.indexOf(':');
    addrPart = colon < 0 ? text : text.slice(0, colon);
    portPart = colon < 0 ? undefined : text.slice(colon + 1);
  }
  let minIP: string | undefined;
  let maxIP: string | undefined;
  if (addrPart !== '') {
    const dash = addrPart.indexOf('-');
    minIP = normalizeIP(dash < 0 ? addrPart : addrPart.slice(0, dash));
    maxIP = dash < 0 ? minIP : normalizeIP(addrPart.slice(dash + 1));
    if (minIP === undefined || maxIP === undefined) return undefined;
    if (familyOfValidIP(minIP) !== family || familyOfValidIP(maxIP) !== family) return undefined;
  }
  let minPort: number | undefined;
  let maxPort: number | undefined;
  if (portPart !== undefined) {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(portPart);
    if (!m) return undefined;
    minPort = Number.parseInt(m[1]!, 10);
    maxPort = m[2] === undefined ? minPort : Number.parseInt(m[2], 10);
    if (maxPort > 65535 || minPort > maxPort) return undefined;
  }
  if (minIP === undefined && minPort === undefined) return undefined;
  return { minIP, maxIP, minPort, maxPort, text: formatNatRange(family, minIP, maxIP, minPort, maxPort) };
}

function formatNatRange(family: Family, minIP?: string, maxIP?: string, minPort?: number, maxPort?: number): string {
  const ports = minPort === undefined ? '' : minPort === maxPort ? `${minPort}` : `${minPort}-${maxPort}`;
  let addr = '';
  if (minIP !== undefined) {
    const range = minIP === maxIP ? minIP : `${minIP}-${maxIP}`;
    addr = family === 6 && ports !== '' ? (minIP === maxIP ? `[${minIP}]` : `[${minIP}]-[${maxIP}]`) : range;
  }
  return ports === '' ? addr : `${addr}:${ports}`;
}

// ---------------------------------------------------------------- statistic

/** The kernel's scale for --probability: xt_statistic compares a 31-bit random number. */
export const PROBABILITY_SCALE = 0x80000000;

/**
 * --probability p as libxt_statistic stores it: lround(2^31 * p). The kernel matches when
 * (random & 0x7fffffff) < stored, so the real chance is stored / 2^31.
 */
export function probabilityToKernel(p: number): number {
  return Math.round(PROBABILITY_SCALE * p);
}

export function parseProbability(text: string): number | undefined {
  if (!/^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(text)) return undefined;
  const p = Number.parseFloat(text);
  return p >= 0 && p <= 1 ? p : undefined;
}

/**
 * The stored value printed as libxt_statistic does, `%.11f` of stored / 2^31. printf rounds the
 * exact binary value half-to-even; Number#toFixed breaks ties upwards, so the digits are worked
 * out exactly here.
 */
export function formatKernelProbability(stored: number): string {
  const scaled = BigInt(stored) * 10n ** 11n;
  const divisor = BigInt(PROBABILITY_SCALE);
  let quotient = scaled / divisor;
  const twiceRemainder = (scaled % divisor) * 2n;
  if (twiceRemainder > divisor || (twiceRemainder === divisor && quotient % 2n === 1n)) quotient += 1n;
  const digits = quotient.toString().padStart(12, '0');
  return `${digits.slice(0, -11)}.${digits.slice(-11)}`;
}
