/**
 * Addresses as nft reads and prints them: a single address, a prefix ("10.0.0.0/8") or a range
 * ("10.0.0.0-10.0.1.127"), each an interval of numbers; and the interval set nft builds from a
 * list of them (overlaps and neighbours merged, sorted), printed back as nft prints it: an
 * address, a prefix when the interval is one, else a range.
 */
import { normalizeIP } from '../util/ip.js';
import ipaddr from 'ipaddr.js';

export interface AddressInterval {
  readonly family: 4 | 6;
  readonly lo: bigint;
  readonly hi: bigint;
}

function bits(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

/** The address as a number; undefined when `text` is not an address. */
export function addressValue(text: string): { family: 4 | 6; value: bigint } | undefined {
  const normalized = normalizeIP(text);
  if (normalized === undefined) return undefined;
  const bytes = ipaddr.parse(normalized).toByteArray();
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family: bytes.length === 4 ? 4 : 6, value };
}

export function addressText(family: 4 | 6, value: bigint): string {
  const n = family === 4 ? 4 : 16;
  const bytes = new Array<number>(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** "1.2.3.4", "10.0.0.0/8" or "10.0.0.1-10.0.0.9" → its interval; undefined when not one. */
export function parseAddressInterval(text: string): AddressInterval | undefined {
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const base = addressValue(text.slice(0, slash));
    const lenText = text.slice(slash + 1);
    if (!base || !/^\d{1,3}$/.test(lenText)) return undefined;
    const len = Number(lenText);
    const width = bits(base.family);
    if (len > width) return undefined;
    const hostBits = BigInt(width - len);
    const lo = (base.value >> hostBits) << hostBits;
    return { family: base.family, lo, hi: lo + (1n << hostBits) - 1n };
  }
  // A range: "a-b". IPv6 addresses have no "-", so the first one splits it.
  const dash = text.indexOf('-');
  if (dash > 0) {
    const lo = addressValue(text.slice(0, dash));
    const hi = addressValue(text.slice(dash + 1));
    if (!lo || !hi || lo.family !== hi.family || hi.value < lo.value) return undefined;
    return { family: lo.family, lo: lo.value, hi: hi.value };
  }
  const one = addressValue(text);
  return one ? { family: one.family, lo: one.value, hi: one.value } : undefined;
}

/** Overlapping and adjacent intervals merged, sorted by start: what nft keeps of an interval set. */
export function mergeIntervals(intervals: readonly AddressInterval[]): AddressInterval[] {
  const sorted = [...intervals].sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: AddressInterval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last && last.family === iv.family && iv.lo <= last.hi + 1n) {
      if (iv.hi > last.hi) out[out.length - 1] = { family: last.family, lo: last.lo, hi: iv.hi };
    } else {
      out.push(iv);
    }
  }
  return out;
}

/** An interval as nft prints it: an address, a prefix when it is one, else "lo-hi". */
export function intervalText(iv: AddressInterval): string {
  if (iv.lo === iv.hi) return addressText(iv.family, iv.lo);
  const size = iv.hi - iv.lo + 1n;
  // A prefix: the size is a power of two and the start is aligned to it.
  if ((size & (size - 1n)) === 0n && (iv.lo & (size - 1n)) === 0n) {
    let hostBits = 0;
    while (1n << BigInt(hostBits) < size) hostBits++;
    return `${addressText(iv.family, iv.lo)}/${bits(iv.family) - hostBits}`;
  }
  return `${addressText(iv.family, iv.lo)}-${addressText(iv.family, iv.hi)}`;
}

export function intervalContains(iv: AddressInterval, family: 4 | 6, value: bigint): boolean {
  return iv.family === family && value >= iv.lo && value <= iv.hi;
}
