/**
 * ipvsadm 1.31's list output, byte for byte (ipvsadm.c print_title, print_service_entry,
 * print_largenum, print_conn; libipvs ipvs_cmp_services/ipvs_cmp_dests):
 *
 *   IP Virtual Server version 1.2.1 (size=4096)
 *   Prot LocalAddress:Port Scheduler Flags
 *     -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
 *   TCP  10.96.0.1:443 rr
 *     -> 10.0.0.10:6443               Masq    1      2          1
 *
 * (the last column is printed with %-10u, so dest lines end in spaces). Formats: the default,
 * --stats, --rate, --thresholds, --persistent-conn, --exact, -S (rules), -c (connections).
 *
 * Order: ipvsadm sorts services and dests with qsort unless --nosort. Its comparators subtract
 * two unsigned 32-bit addresses into an int, so addresses more than 2^31 apart compare the wrong
 * way round (10.x sorts after 192.x) and the comparison is not even transitive; the order that
 * comes out is then the one glibc's qsort (a merge sort) makes, which `sortLikeGlibc` repeats.
 * With --nosort services come in the kernel's hash-table order (see `kernelServiceOrder`) and
 * dests in list order.
 */
import { TextBuffer, decimalDigits, giveBackTextBuffer, takeTextBuffer } from '../iptables/save-text.js';
import type { TextPiece } from '../iptables/text-sink.js';
import type { EndpointInfo } from '../tracker/types.js';
import { type Family, dottedNetmask, ipToWords, joinHostPort } from '../util/ip.js';
import { PendingDests } from './real-servers.js';
import { foldAddress } from './schedulers/hash.js';
import {
  type ForwardMethod,
  type IpvsProtocol,
  type IpvsTable,
  PROTOCOL_NUMBERS,
  type RealServer,
  SVC_F_ONEPACKET,
  SVC_F_PERSISTENT,
  SVC_F_SCHED1,
  SVC_F_SCHED2,
  SVC_F_SCHED3,
  type VirtualServer,
  deferredDestsOf,
  destCount,
  schedulerFlagNames,
} from './table.js';

/** The IPVS version the kernel reports since 2.6 (0x010201) and the default connection table size (2^12). */
export const IPVS_VERSION = '1.2.1';
export const DEFAULT_CONN_TAB_SIZE = 4096;

/**
 * The kernel hashes services into 256 buckets with `((size_t)ipvs >> 8)` mixed in, so the
 * unsorted order differs per boot. 0x10 is the value that reproduces the reference capture.
 */
export const DEFAULT_SVC_HASH_SALT = 0x10;

export interface IpvsadmListOptions {
  stats?: boolean;
  rate?: boolean;
  thresholds?: boolean;
  persistentConn?: boolean;
  /** --exact: full numbers in --stats/--rate instead of K/M/G/T. */
  exact?: boolean;
  /** --nosort: kernel order. */
  nosort?: boolean;
  /** The "size=" in the header: the connection hash table size (2^conn_tab_bits). */
  connTabSize?: number;
  /** The per-boot bucket salt for --nosort (only its low 8 bits matter). */
  hashSalt?: number;
}

const AF_INET = 2;
const AF_INET6 = 10;

// ---------------------------------------------------------------- numbers and padding

function padRight(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function padLeft(text: string, width: number): string {
  return text.length >= width ? text : ' '.repeat(width - text.length) + text;
}

/** print_largenum: "%9llu" below 10^8, else "%8llu" of the value in K, M, G or T. */
export function formatLargeNumber(value: number, exact = false): string {
  const digits = String(value);
  if (exact) return padLeft(digits, digits.length <= 8 ? 9 : digits.length + 1);
  if (value < 1e8) return padLeft(digits, 9);
  if (value < 1e9) return `${padLeft(String(Math.floor(value / 1e3)), 8)}K`;
  if (value < 1e11) return `${padLeft(String(Math.floor(value / 1e6)), 8)}M`;
  if (value < 1e14) return `${padLeft(String(Math.floor(value / 1e9)), 8)}G`;
  return `${padLeft(String(Math.floor(value / 1e12)), 8)}T`;
}

// ---------------------------------------------------------------- names

function protocolOption(protocol: IpvsProtocol): string {
  return protocol === 'TCP' ? '-t' : protocol === 'UDP' ? '-u' : '--sctp-service';
}

/** The service column: "TCP  10.96.0.1:443" (cut to 33 characters for IPv4), or "FWM  7". */
function serviceName(vs: VirtualServer, rule: boolean): string {
  if (vs.fwmark !== 0) {
    if (rule) return vs.family === 6 ? `-f ${vs.fwmark} -6` : `-f ${vs.fwmark}`;
    return vs.family === 6 ? `FWM  ${vs.fwmark} IPv6` : `FWM  ${vs.fwmark}`;
  }
  const name = joinHostPort(vs.address, vs.port);
  if (rule) return `${protocolOption(vs.protocol)} ${name}`;
  const text = `${padRight(vs.protocol, 4)} ${name}`;
  return vs.family === 6 ? text : text.slice(0, 33);
}

function destName(dest: RealServer, rule: boolean): string {
  const name = joinHostPort(dest.ip, dest.port);
  return rule || dest.family === 6 ? name : name.slice(0, 28);
}

function fullMask(vs: VirtualServer): number {
  return vs.family === 4 ? 32 : 128;
}

const FORWARD_SWITCH: Readonly<Record<ForwardMethod, string>> = { Masq: '-m', Tunnel: '-i', Local: '-g', Route: '-g' };

// ---------------------------------------------------------------- ordering

/** glibc's qsort for arrays that fit its buffer: a top-down merge sort taking the left on ties (msort.c). */
export function sortLikeGlibc<T>(items: readonly T[], compare: (a: T, b: T) => number): T[] {
  const n = items.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  glibcMergeSort(order, new Int32Array(n), 0, n, (x, y) => compare(items[x]!, items[y]!));
  return Array.from(order, (i) => items[i]!);
}

/** glibc's msort of positions [lo, lo + n) of `order`, comparing the items at two positions; `temp` as long as `order`. */
function glibcMergeSort(order: Int32Array, temp: Int32Array, lo: number, n: number, compare: (a: number, b: number) => number): void {
  if (n <= 1) return;
  const n1 = n >> 1;
  const n2 = n - n1;
  glibcMergeSort(order, temp, lo, n1, compare);
  glibcMergeSort(order, temp, lo + n1, n2, compare);
  let i = lo;
  let j = lo + n1;
  let k = 0;
  let left = n1;
  let right = n2;
  while (left > 0 && right > 0) {
    if (compare(order[i]!, order[j]!) <= 0) {
      temp[k++] = order[i++]!;
      left--;
    } else {
      temp[k++] = order[j++]!;
      right--;
    }
  }
  while (left-- > 0) temp[k++] = order[i++]!;
  // The rest of the right run is already in place.
  for (let m = 0; m < k; m++) order[lo + m] = temp[m]!;
}

/** The address as the 32-bit words ntohl gives (one for IPv4, four for IPv6). */
export function addressWords(ip: string): number[] {
  if (!ip.includes(':')) return [ipv4Word(ip)];
  return ipv6Words(ip) ?? Array.from(ipToWords(ip));
}

/**
 * IPv6 text of hex groups (one "::" at most) as four words, read character by character; undefined
 * for anything else (an embedded IPv4 part), which the full parser then reads.
 */
function ipv6Words(ip: string): number[] | undefined {
  if (!ipv6WordsInto(ip, ipv6Scratch, 0)) return undefined;
  return [ipv6Scratch[0]!, ipv6Scratch[1]!, ipv6Scratch[2]!, ipv6Scratch[3]!];
}

const ipv6Scratch = new Float64Array(4);

/**
 * ipv6Words written into `out` from position `at` on, without a list of its own: the dests of a
 * big table's IPv6 services (12k on a 5,000-node cluster) are ordered from scratch arrays.
 * False, with `out` left as it was or partly written, for what ipv6Words cannot read.
 */
function ipv6WordsInto(ip: string, out: Float64Array, at: number): boolean {
  // The groups read so far, in a scratch array: a sort of a big table reads 10k addresses.
  const groups = ipv6Groups;
  let count = 0;
  let gap = -1;
  let group = 0;
  let digits = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 58) {
      if (i + 1 < ip.length && ip.charCodeAt(i + 1) === 58) {
        if (gap !== -1) return false;
        if (digits > 0) {
          if (count === 8) return false;
          groups[count++] = group;
        }
        gap = count;
        i++;
      } else if (digits > 0) {
        if (count === 8) return false;
        groups[count++] = group;
      } else {
        return false;
      }
      group = 0;
      digits = 0;
      continue;
    }
    const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (v < 0 || ++digits > 4) return false;
    group = group * 16 + v;
  }
  if (digits > 0) {
    if (count === 8) return false;
    groups[count++] = group;
  }
  if (gap === -1 ? count !== 8 : count > 7) return false;
  // The "::" gap filled by zeros: the groups after it move to the end.
  if (gap !== -1) {
    const zeros = 8 - count;
    for (let k = count - 1; k >= gap; k--) groups[k + zeros] = groups[k]!;
    for (let k = gap; k < gap + zeros; k++) groups[k] = 0;
  }
  for (let w = 0; w < 4; w++) out[at + w] = (groups[2 * w]! * 65536 + groups[2 * w + 1]!) >>> 0;
  return true;
}

const ipv6Groups: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

/**
 * Normalised IPv4 text (four decimal octets) as one word, read digit by digit: a sort of a
 * 10k-service table reads 100k addresses, and splitting each made five strings and two arrays.
 */
function ipv4Word(ip: string): number {
  let word = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      word = (word << 8) | octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  return ((word << 8) | octet) >>> 0;
}

/** `int r = u32 - u32`: the difference wrapped to a signed 32-bit int, as C does it. */
function wrappedDifference(a: number, b: number): number {
  return (a - b) | 0;
}

function compareWords(family: number, wa: readonly number[], wb: readonly number[]): number {
  if (family === 6) {
    let r = 0;
    for (let i = 0; r === 0 && i < 4; i++) r = wrappedDifference(wa[i]!, wb[i]!);
    return r;
  }
  return wrappedDifference(wa[0]!, wb[0]!);
}

/** An entry with its address words worked out once (a sort compares each entry many times). */
interface Keyed<T> {
  readonly item: T;
  readonly words: readonly number[];
}

function compareKeyedServices(a: Keyed<VirtualServer>, b: Keyed<VirtualServer>): number {
  const x = a.item;
  const y = b.item;
  let r = wrappedDifference(x.fwmark, y.fwmark);
  if (r !== 0) return r;
  r = (x.family === 6 ? AF_INET6 : AF_INET) - (y.family === 6 ? AF_INET6 : AF_INET);
  if (r !== 0) return r;
  r = PROTOCOL_NUMBERS[x.protocol] - PROTOCOL_NUMBERS[y.protocol];
  if (r !== 0) return r;
  r = compareWords(x.family, a.words, b.words);
  if (r !== 0) return r;
  return x.port - y.port;
}

/** ipvs_cmp_dests reads a dest's address, family and port only. */
type DestKey = Pick<RealServer, 'ip' | 'port' | 'family'>;

function compareKeyedDests(a: Keyed<DestKey>, b: Keyed<DestKey>): number {
  const r = compareWords(a.item.family, a.words, b.words);
  return r !== 0 ? r : a.item.port - b.item.port;
}

/** ipvs_cmp_services: fwmark, family, protocol, address, port. */
export function compareServices(a: VirtualServer, b: VirtualServer): number {
  return compareKeyedServices({ item: a, words: addressWords(a.address) }, { item: b, words: addressWords(b.address) });
}

/** ipvs_cmp_dests: address, then port. */
export function compareDests(a: RealServer, b: RealServer): number {
  return compareKeyedDests({ item: a, words: addressWords(a.ip) }, { item: b, words: addressWords(b.ip) });
}

/**
 * Whether the comparator's wrapped differences are the true ones for these entries: every
 * address word (position by position, within each family) less than 2^31 from every other. The
 * order is then a total one, and any stable sort gives what glibc's merge sort gives; only when
 * addresses lie further apart (10.x beside 192.x) must the merge sort be repeated step by step.
 */
function wordsWithinHalfRange(keyed: readonly Keyed<{ readonly family: Family }>[]): boolean {
  const low = [[Infinity], [Infinity, Infinity, Infinity, Infinity]];
  const high = [[-Infinity], [-Infinity, -Infinity, -Infinity, -Infinity]];
  for (const { item, words } of keyed) {
    const f = item.family === 6 ? 1 : 0;
    const lo = low[f]!;
    const hi = high[f]!;
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (w < lo[i]!) lo[i] = w;
      if (w > hi[i]!) hi[i] = w;
    }
  }
  for (let f = 0; f < 2; f++) for (let i = 0; i < low[f]!.length; i++) if (high[f]![i]! - low[f]![i]! >= 2 ** 31) return false;
  return true;
}

/** glibc's qsort of keyed entries: the engine's own (stable) sort when the comparison is a true order. */
function sortKeyed<T extends { readonly family: Family }>(keyed: Keyed<T>[], compare: (a: Keyed<T>, b: Keyed<T>) => number): T[] {
  const sorted = wordsWithinHalfRange(keyed) ? keyed.sort(compare) : sortLikeGlibc(keyed, compare);
  return sorted.map((k) => k.item);
}

/**
 * ipvsadm's qsort of the services (glibc's merge sort with ipvs_cmp_services). The comparison
 * reads each service's fields from typed arrays, filled once: glibc's merge sort, repeated step
 * by step, is right whether or not the wrapped differences make a true order (a big table's
 * ClusterIPs and load-balancer addresses lie more than 2^31 apart), and a 10k-service table
 * makes 150k comparisons.
 */
export function sortServices(services: readonly VirtualServer[]): VirtualServer[] {
  const n = services.length;
  if (serviceKeys.port.length < n) serviceKeys = serviceKeyArrays(Math.max(n, serviceKeys.port.length * 2));
  const { fwmark, af, protocol, words, port } = serviceKeys;
  for (let i = 0; i < n; i++) {
    const vs = services[i]!;
    fwmark[i] = vs.fwmark;
    af[i] = vs.family === 6 ? AF_INET6 : AF_INET;
    protocol[i] = PROTOCOL_NUMBERS[vs.protocol];
    port[i] = vs.port;
    if (vs.family === 6) {
      const w = serverWords(vs);
      for (let k = 0; k < 4; k++) words[4 * i + k] = w[k]!;
    } else {
      // Read straight from the text: a list of one word kept for each of a big table's 10k
      // IPv4 servers cost more to keep (and to make) than reading the address again.
      words[4 * i] = vs.address.includes(':') ? addressWords(vs.address)[0]! : ipv4Word(vs.address);
    }
  }
  const order = serviceKeys.order;
  for (let i = 0; i < n; i++) order[i] = i;
  glibcMergeSort(order, serviceKeys.temp, 0, n, compareServiceKeys);
  const sorted = new Array<VirtualServer>(n);
  for (let k = 0; k < n; k++) sorted[k] = services[order[k]!]!;
  return sorted;
}

interface ServiceKeyArrays {
  readonly fwmark: Float64Array;
  readonly af: Int32Array;
  readonly protocol: Int32Array;
  /** Four per service (IPv4: the first). */
  readonly words: Float64Array;
  readonly port: Float64Array;
  readonly order: Int32Array;
  readonly temp: Int32Array;
}

function serviceKeyArrays(size: number): ServiceKeyArrays {
  return {
    fwmark: new Float64Array(size),
    af: new Int32Array(size),
    protocol: new Int32Array(size),
    words: new Float64Array(4 * size),
    port: new Float64Array(size),
    order: new Int32Array(size),
    temp: new Int32Array(size),
  };
}

let serviceKeys = serviceKeyArrays(64);

/** compareKeyedServices of the services at positions a and b of serviceKeys. */
function compareServiceKeys(a: number, b: number): number {
  const { fwmark, af, protocol, words, port } = serviceKeys;
  let r = wrappedDifference(fwmark[a]!, fwmark[b]!);
  if (r !== 0) return r;
  r = af[a]! - af[b]!;
  if (r !== 0) return r;
  r = protocol[a]! - protocol[b]!;
  if (r !== 0) return r;
  const words6 = af[a] === AF_INET6 ? 4 : 1;
  for (let k = 0; r === 0 && k < words6; k++) r = wrappedDifference(words[4 * a + k]!, words[4 * b + k]!);
  if (r !== 0) return r;
  return port[a]! - port[b]!;
}


/** An IPv6 service's address words, kept for shared servers (every node's table sorts them). */
function serverWords(vs: VirtualServer): number[] {
  const shared = sharedServers.get(vs);
  if (shared === undefined) return addressWords(vs.address);
  return (shared.words ??= addressWords(vs.address));
}

/** ipvsadm's qsort of one service's dests (ipvs_cmp_dests). */
export function sortDests(dests: readonly RealServer[]): RealServer[] {
  if (dests.length < 2) return [...dests];
  return sortIPv4Dests(dests) ?? sortKeyed(dests.map((item) => ({ item, words: addressWords(item.ip) })), compareKeyedDests);
}

/**
 * IPv4 dests whose addresses lie within 2^31 of each other (a cluster's pod network) by address,
 * then port, as one number each: the comparison is then a true order and the engine's stable
 * sort gives glibc's order. Undefined for other dests.
 */
function sortIPv4Dests(dests: readonly RealServer[]): RealServer[] | undefined {
  if (!orderIPv4Dests(dests)) return undefined;
  const order = destOrder;
  const sorted = new Array<RealServer>(dests.length);
  for (let k = 0; k < dests.length; k++) sorted[k] = dests[order[k]!]!;
  return sorted;
}

/**
 * sortIPv4Dests as positions, in `destOrder` (scratch arrays, kept between calls: a big table
 * has 10k services, and a sort's arrays for each were most of what printing one allocated).
 * False, with nothing ordered, for other dests.
 */
function orderIPv4Dests(dests: readonly RealServer[]): boolean {
  const n = dests.length;
  growDestScratch(n);
  const keys = destKeys;
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < n; i++) {
    const dest = dests[i]!;
    if (dest.family !== 4) return false;
    const word = ipv4Word(dest.ip);
    if (word < low) low = word;
    if (word > high) high = word;
    keys[i] = word * 65536 + dest.port;
  }
  if (high - low >= 2 ** 31) return false;
  stableOrder(keys, n, destOrder, destMerge);
  return true;
}

/** Room for n dests in the scratch arrays. */
function growDestScratch(n: number): void {
  if (destKeys.length >= n) return;
  const size = Math.max(n, destKeys.length * 2);
  destKeys = new Float64Array(size);
  destOrder = new Int32Array(size);
  destMerge = new Int32Array(size);
}

let destKeys = new Float64Array(64);
let destOrder = new Int32Array(64);
let destMerge = new Int32Array(64);

/**
 * 0..n-1 in `order`, stably sorted by `keys` (ties keep their order, as the engine's sort does):
 * insertion sort for runs of 16, then bottom-up merges through `temp`.
 */
function stableOrder(keys: Float64Array, n: number, order: Int32Array, temp: Int32Array): void {
  const RUN = 16;
  for (let i = 0; i < n; i++) order[i] = i;
  for (let lo = 0; lo < n; lo += RUN) {
    const hi = Math.min(lo + RUN, n);
    for (let i = lo + 1; i < hi; i++) {
      const item = order[i]!;
      const key = keys[item]!;
      let j = i - 1;
      while (j >= lo && keys[order[j]!]! > key) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = item;
    }
  }
  let from = order;
  let to = temp;
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) to[k++] = keys[from[j]!]! < keys[from[i]!]! ? from[j++]! : from[i++]!;
      while (i < mid) to[k++] = from[i++]!;
      while (j < hi) to[k++] = from[j++]!;
    }
    const swap = from;
    from = to;
    to = swap;
  }
  // Copied by a loop: a subarray is a new typed array object, for each of a big table's 14k services.
  if (from !== order) for (let i = 0; i < n; i++) order[i] = from[i]!;
}

/**
 * The order the kernel dumps services in (ip_vs_genl_dump_services): bucket 0 to 255 of the
 * service table, each bucket newest first (hlist_add_head), then the fwmark table likewise.
 * Bucket = ip_vs_svc_hashkey: (proto ^ ntohl(addr_fold) ^ salt ^ (port >> 8) ^ port) & 255, where
 * an IPv6 address is folded by XOR of its words.
 */
export function kernelServiceOrder(services: readonly VirtualServer[], salt = DEFAULT_SVC_HASH_SALT): VirtualServer[] {
  const bucketOf = (vs: VirtualServer): number => {
    if (vs.fwmark !== 0) return 256 + ((salt ^ vs.fwmark) & 0xff);
    const fold = foldAddress(vs.address);
    return (PROTOCOL_NUMBERS[vs.protocol] ^ fold ^ salt ^ (vs.port >> 8) ^ vs.port) & 0xff;
  };
  // Creation order in, newest first within a bucket out.
  return services
    .map((vs, created) => ({ vs, created, bucket: bucketOf(vs) }))
    .sort((x, y) => x.bucket - y.bucket || y.created - x.created)
    .map((x) => x.vs);
}

function orderedServices(table: IpvsTable, opts: IpvsadmListOptions): VirtualServer[] {
  return opts.nosort ? kernelServiceOrder(table.services, opts.hashSalt) : sortServices(table.services);
}

function orderedDests(vs: VirtualServer, nosort: boolean | undefined): RealServer[] {
  return nosort ? vs.dests : sortDests(vs.dests);
}

// ---------------------------------------------------------------- -L

function titleLines(opts: IpvsadmListOptions): string[] {
  const columns = (a: string, widths: number[], names: string[], left: boolean): string =>
    `${padRight(a, 33)}${names.map((n, i) => ` ${left ? padRight(n, widths[i]!) : padLeft(n, widths[i]!)}`).join('')}`;
  if (opts.stats) return [columns('Prot LocalAddress:Port', [8, 8, 8, 8, 8], ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'], false), '  -> RemoteAddress:Port'];
  if (opts.rate) return [columns('Prot LocalAddress:Port', [8, 8, 8, 8, 8], ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'], false), '  -> RemoteAddress:Port'];
  if (opts.thresholds) return [columns('Prot LocalAddress:Port', [10, 10, 10, 10], ['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'], true), '  -> RemoteAddress:Port'];
  if (opts.persistentConn) return [columns('Prot LocalAddress:Port', [9, 11, 10, 10], ['Weight', 'PersistConn', 'ActiveConn', 'InActConn'], true), '  -> RemoteAddress:Port'];
  return ['Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn'];
}

/** The service line of the default, --thresholds and --persistent-conn formats. */
function serviceSummary(vs: VirtualServer): string {
  let line = `${serviceName(vs, false)} ${vs.scheduler}`;
  if (vs.flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3)) line += ` (${schedulerFlagNames(vs).join(',')})`;
  if (vs.flags & SVC_F_PERSISTENT) {
    line += ` persistent ${vs.timeoutSeconds}`;
    if (vs.netmaskPrefix !== fullMask(vs)) line += vs.family === 4 ? ` mask ${dottedNetmask(vs.netmaskPrefix)}` : ` mask ${vs.netmaskPrefix}`;
    if (vs.pe !== '') line += ` pe ${vs.pe}`;
  }
  if (vs.flags & SVC_F_ONEPACKET) line += ' ops';
  return line;
}

function serviceLine(vs: VirtualServer, opts: IpvsadmListOptions): string {
  const exact = opts.exact ?? false;
  if (opts.stats) {
    const s = vs.stats;
    return padRight(serviceName(vs, false), 33) + [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes].map((n) => formatLargeNumber(n, exact)).join('');
  }
  if (opts.rate) {
    const r = vs.rates;
    return padRight(serviceName(vs, false), 33) + [r.cps, r.inPps, r.outPps, r.inBps, r.outBps].map((n) => formatLargeNumber(n, exact)).join('');
  }
  return serviceSummary(vs);
}

/** The columns after the name of a fresh Masq dest of weight 1, as the default format prints them. */
const FRESH_MASQ_COLUMNS = ` ${padRight('Masq', 7)} ${padRight('1', 6)} ${padRight('0', 10)} ${padRight('0', 10)}`;

function destLine(dest: RealServer, opts: IpvsadmListOptions): string {
  const name = `  -> ${padRight(destName(dest, false), 28)}`;
  if (dest.forward === 'Masq' && dest.weight === 1 && dest.activeConns === 0 && dest.inactConns === 0 && !opts.stats && !opts.rate && !opts.thresholds && !opts.persistentConn) {
    // What nearly every line of a compiled table is: one concatenation, not five paddings.
    return name + FRESH_MASQ_COLUMNS;
  }
  const exact = opts.exact ?? false;
  if (opts.stats) {
    const s = dest.stats;
    return name + [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes].map((n) => formatLargeNumber(n, exact)).join('');
  }
  if (opts.rate) {
    const r = dest.rates;
    // The per-dest CPS and PPS columns are plain "%8llu", never scaled.
    return `${name} ${padLeft(String(r.cps), 8)} ${padLeft(String(r.inPps), 8)} ${padLeft(String(r.outPps), 8)}${formatLargeNumber(r.inBps, exact)}${formatLargeNumber(r.outBps, exact)}`;
  }
  if (opts.thresholds) {
    return `${name} ${[dest.upperThreshold, dest.lowerThreshold, dest.activeConns, dest.inactConns].map((n) => padRight(String(n), 10)).join(' ')}`;
  }
  if (opts.persistentConn) {
    return `${name} ${padRight(String(dest.weight), 9)} ${padRight(String(dest.persistConns), 11)} ${padRight(String(dest.activeConns), 10)} ${padRight(String(dest.inactConns), 10)}`;
  }
  return `${name} ${padRight(dest.forward, 7)} ${padRight(String(dest.weight), 6)} ${padRight(String(dest.activeConns), 10)} ${padRight(String(dest.inactConns), 10)}`;
}

/**
 * Virtual servers that many nodes' tables share (shared-plans.ts), with their lines in each list
 * format once printed: the next node's table copies those bytes instead of sorting and printing
 * every real server again. Such servers never change once made (a compiled table is data; live
 * services have their own dests).
 */
const sharedServers = new WeakMap<VirtualServer, SharedRendering>();

/**
 * What is kept of a shared server for every table that prints it, in one record: looked up once
 * per server and listing, and one weak-map entry per server (not one in a set that marks it
 * shared and one more in a map for each thing kept: 10k servers on the first node of a big
 * cluster, and every later node looks each up).
 */
interface SharedRendering {
  /** Its IPv6 address as sort words (serverWords), once sorted. */
  words: number[] | undefined;
  /** Its lines in each format printed, latest first. */
  printed: PrintedBlock | undefined;
}

/**
 * A shared server's lines in one format, linked to those in the next format printed: nearly
 * every server is printed in one format only, and one record each is what 10k of them keep.
 */
interface PrintedBlock extends TextPiece {
  readonly format: string;
  readonly next: PrintedBlock | undefined;
}

function printedBlock(shared: SharedRendering, format: string): TextPiece | undefined {
  for (let block = shared.printed; block !== undefined; block = block.next) if (block.format === format) return block;
  return undefined;
}

/** Mark a virtual server that several tables share, so that its lines are printed once per format. */
export function shareServerRendering(vs: VirtualServer): void {
  if (!sharedServers.has(vs)) sharedServers.set(vs, { words: undefined, printed: undefined });
}

/** Whether the options print dests in the default columns (where a fresh dest has one fixed tail). */
function defaultColumns(opts: IpvsadmListOptions): boolean {
  return !opts.stats && !opts.rate && !opts.thresholds && !opts.persistentConn;
}

/** The service line and its dest lines, each ended by a newline. */
function writeServiceBlock(out: TextBuffer, vs: VirtualServer, opts: IpvsadmListOptions): void {
  const fresh = defaultColumns(opts);
  if (!(fresh && writePlainServiceLine(out, vs))) out.write(serviceLine(vs, opts));
  out.writeCode(NEWLINE);
  const pending = deferredDestsOf(vs);
  if (fresh && pending instanceof PendingDests && !pending.isMade) {
    writePendingDests(out, pending, opts.nosort ?? false);
    return;
  }
  const dests = vs.dests;
  if (!opts.nosort && dests.length >= 2 && orderIPv4Dests(dests)) {
    // destOrder is not touched again until this loop is done.
    const order = destOrder;
    for (let k = 0; k < dests.length; k++) writeDest(out, dests[order[k]!]!, opts, fresh);
    return;
  }
  for (const dest of orderedDests(vs, opts.nosort)) writeDest(out, dest, opts, fresh);
}

/** The protocol column and its padding: padRight(protocol, 4) and a space. */
const PROTOCOL_COLUMNS: Readonly<Record<IpvsProtocol, string>> = { TCP: 'TCP  ', UDP: 'UDP  ', SCTP: 'SCTP ' };

/**
 * serviceSummary of a service without fwmark, persistence or flags (nearly every service of a
 * compiled table), written in pieces without making the line; false, with nothing written, for
 * any other or for an IPv4 name serviceName must cut.
 */
function writePlainServiceLine(out: TextBuffer, vs: VirtualServer): boolean {
  if (vs.fwmark !== 0 || (vs.flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3 | SVC_F_PERSISTENT | SVC_F_ONEPACKET)) !== 0) return false;
  const port = vs.port;
  if (!Number.isSafeInteger(port) || port < 0) return false;
  const ip = vs.address;
  // joinHostPort: brackets around an address with a colon.
  const bracket = ip.includes(':');
  const columns = PROTOCOL_COLUMNS[vs.protocol];
  if (vs.family !== 6 && columns.length + ip.length + (bracket ? 2 : 0) + 1 + decimalDigits(port) > 33) return false;
  out.write(columns);
  if (bracket) out.writeCode(91);
  out.write(ip);
  if (bracket) out.writeCode(93);
  out.writeCode(58);
  out.writeDecimal(port);
  out.writeCode(32);
  out.write(vs.scheduler);
  return true;
}

function writeDest(out: TextBuffer, dest: RealServer, opts: IpvsadmListOptions, fresh: boolean): void {
  if (!(fresh && writeFreshDest(out, dest))) out.write(destLine(dest, opts));
  out.writeCode(NEWLINE);
}

const NEWLINE = 10;

/**
 * destLine of a fresh Masq dest of weight 1 in the default format, written without making the
 * line: what nearly every line of a compiled table is. False (nothing written) for any other dest.
 */
function writeFreshDest(out: TextBuffer, dest: RealServer): boolean {
  if (dest.forward !== 'Masq' || dest.weight !== 1 || dest.activeConns !== 0 || dest.inactConns !== 0) return false;
  return writeFreshName(out, dest.ip, dest.port, dest.family);
}

/** writeFreshDest's line (without the newline) for the dest at ip:port; false, with nothing written, for a name destLine must cut. */
function writeFreshName(out: TextBuffer, ip: string, port: number, family: Family): boolean {
  if (!Number.isSafeInteger(port) || port < 0) return false;
  // joinHostPort: brackets around an address with a colon.
  const bracket = ip.includes(':');
  const nameLength = ip.length + (bracket ? 2 : 0) + 1 + decimalDigits(port);
  // An IPv4 name longer than 28 characters is cut (destName): leave that to destLine.
  if (family !== 6 && nameLength > 28) return false;
  out.write('  -> ');
  if (bracket) out.writeCode(91);
  out.write(ip);
  if (bracket) out.writeCode(93);
  out.writeCode(58);
  out.writeDecimal(port);
  out.writeBytes(FRESH_TAILS[Math.max(0, 28 - nameLength)]!);
  return true;
}

/**
 * The dest lines of real servers not made yet (PendingDests), in the default columns: every one
 * a fresh dest, printed from its endpoint. The list holds the endpoints reversed, so list
 * position i is endpoint n-1-i; ipvsadm sorts them as it sorts made ones.
 */
function writePendingDests(out: TextBuffer, pending: PendingDests, nosort: boolean): void {
  const endpoints = pending.endpoints;
  const n = endpoints.length;
  const family = pending.family;
  if (nosort || n < 2) {
    for (let k = n - 1; k >= 0; k--) writeFreshEndpointInfo(out, endpoints[k]!, family);
    return;
  }
  if (family === 4 && orderIPv4Endpoints(endpoints)) {
    // destOrder is not touched again until this loop is done.
    const order = destOrder;
    for (let k = 0; k < n; k++) writeFreshEndpointInfo(out, endpoints[n - 1 - order[k]!]!, family);
    return;
  }
  if (orderEndpointsByWords(endpoints, family)) {
    const order = destOrder;
    for (let k = 0; k < n; k++) writeFreshEndpointInfo(out, endpoints[n - 1 - order[k]!]!, family);
    return;
  }
  const keyed: Keyed<DestKey>[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const ep = endpoints[n - 1 - i]!;
    keyed[i] = { item: { ip: ep.ip, port: ep.port, family }, words: addressWords(ep.ip) };
  }
  for (const dest of sortKeyed(keyed, compareKeyedDests)) writeFreshEndpoint(out, dest, family);
}

/**
 * writeFreshEndpoint for an endpoint, from its "ip:port" text (what joinHostPort makes of its
 * address and port, made once by the tracker): the name is written as one string, not as
 * address, colon and port apart, and the padding, columns and newline as one run of bytes. A
 * name destLine must cut (IPv4, longer than 28) goes to writeFreshEndpoint.
 */
function writeFreshEndpointInfo(out: TextBuffer, ep: EndpointInfo, family: Family): void {
  const name = ep.endpoint;
  const n = name.length;
  if (family !== 6 && n > 28) {
    writeFreshEndpoint(out, ep, family);
    return;
  }
  out.write('  -> ');
  out.write(name);
  out.writeBytes(FRESH_LINE_ENDS[n < 28 ? 28 - n : 0]!);
}

/** destLine of a fresh dest (weight 1, Masq, no connections) at this address, and a newline. */
function writeFreshEndpoint(out: TextBuffer, at: { readonly ip: string; readonly port: number }, family: Family): void {
  if (!writeFreshName(out, at.ip, at.port, family)) {
    const name = joinHostPort(at.ip, at.port);
    out.write(`  -> ${padRight(family === 6 ? name : name.slice(0, 28), 28)}${FRESH_MASQ_COLUMNS}`);
  }
  out.writeCode(NEWLINE);
}

/**
 * orderIPv4Dests for pending dests: the positions of the list (endpoint n-1-i at position i) in
 * `destOrder`. False, with nothing ordered, when addresses lie 2^31 apart or more.
 */
function orderIPv4Endpoints(endpoints: readonly { readonly ip: string; readonly port: number }[]): boolean {
  const n = endpoints.length;
  growDestScratch(n);
  const keys = destKeys;
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < n; i++) {
    const ep = endpoints[n - 1 - i]!;
    const word = ipv4Word(ep.ip);
    if (word < low) low = word;
    if (word > high) high = word;
    keys[i] = word * 65536 + ep.port;
  }
  if (high - low >= 2 ** 31) return false;
  stableOrder(keys, n, destOrder, destMerge);
  return true;
}

/**
 * The positions of pending dests of any family (endpoint n-1-i at position i) in `destOrder`, as
 * ipvsadm's qsort leaves them: glibc's merge sort step by step with ipvs_cmp_dests, which reads
 * each address's words and port from scratch arrays filled once. The keyed sort made two records
 * and a list of words for each dest (12k IPv6 dests on the first node of a 5,000-node cluster).
 * False, with nothing ordered, for an address ipv4Word or ipv6WordsInto does not read.
 */
function orderEndpointsByWords(endpoints: readonly { readonly ip: string; readonly port: number }[], family: Family): boolean {
  const n = endpoints.length;
  growDestScratch(n);
  const size = family === 6 ? 4 : 1;
  if (destWords.length < size * n) destWords = new Float64Array(Math.max(size * n, 2 * destWords.length));
  const words = destWords;
  const ports = destKeys;
  for (let i = 0; i < n; i++) {
    const ep = endpoints[n - 1 - i]!;
    const ip = ep.ip;
    if (size === 4) {
      if (!ipv6WordsInto(ip, words, 4 * i)) return false;
    } else {
      if (ip.includes(':')) return false;
      words[i] = ipv4Word(ip);
    }
    ports[i] = ep.port;
  }
  const order = destOrder;
  for (let i = 0; i < n; i++) order[i] = i;
  destWordsEach = size;
  // A service's few dests, when the wrapped differences are the true ones (wordsWithinHalfRange):
  // the comparison is then a total order, and a stable insertion sort gives glibc's order without
  // its recursion (about ten dests for each of a big table's 1,200 IPv6 services).
  if (n <= DEST_INSERTION_MAX && destWordsWithinHalfRange(n, size)) insertionOrder(order, n, compareDestWords);
  else glibcMergeSort(order, destMerge, 0, n, compareDestWords);
  return true;
}

/** Dests up to this many are ordered by insertion when their comparison is a total order. */
const DEST_INSERTION_MAX = 32;

/** Whether the dests' words in destWords, position by position, lie less than 2^31 apart. */
function destWordsWithinHalfRange(n: number, size: number): boolean {
  const words = destWords;
  for (let k = 0; k < size; k++) {
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < n; i++) {
      const w = words[size * i + k]!;
      if (w < low) low = w;
      if (w > high) high = w;
    }
    if (high - low >= 2 ** 31) return false;
  }
  return true;
}

/** 0..n-1 in `order` sorted stably by `compare` (a total order) by insertion: for a few items. */
function insertionOrder(order: Int32Array, n: number, compare: (a: number, b: number) => number): void {
  for (let i = 1; i < n; i++) {
    const item = order[i]!;
    let j = i - 1;
    while (j >= 0 && compare(order[j]!, item) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = item;
  }
}

/** Address words of the dests orderEndpointsByWords orders (destWordsEach per dest); their ports are in destKeys. */
let destWords = new Float64Array(256);
let destWordsEach = 1;

/** compareKeyedDests of the dests at positions a and b of destWords and destKeys. */
function compareDestWords(a: number, b: number): number {
  const size = destWordsEach;
  const words = destWords;
  let r = 0;
  for (let k = 0; r === 0 && k < size; k++) r = wrappedDifference(words[size * a + k]!, words[size * b + k]!);
  if (r !== 0) return r;
  return destKeys[a]! - destKeys[b]!;
}

/** For each dest name length up to 28: the padding to 28 characters, then FRESH_MASQ_COLUMNS, as bytes. */
const FRESH_TAILS: readonly Uint8Array[] = Array.from({ length: 29 }, (_, pad) => new TextEncoder().encode(' '.repeat(pad) + FRESH_MASQ_COLUMNS));
/** FRESH_TAILS with the newline that ends the line. */
const FRESH_LINE_ENDS: readonly Uint8Array[] = Array.from({ length: 29 }, (_, pad) => new TextEncoder().encode(`${' '.repeat(pad)}${FRESH_MASQ_COLUMNS}\n`));

/** `ipvsadm -Ln [--stats|--rate|--thresholds|--persistent-conn] [--exact] [--nosort]`. */
export function formatIpvsadmList(table: IpvsTable, opts: IpvsadmListOptions = {}): string {
  const { out, printed, format } = writeIpvsadmList(table, opts);
  // A heap string, not Node's external Latin-1 one: a 12 MB listing counted as external memory
  // moves V8 towards a full collection of the whole heap (save-text.ts, toHeapString).
  const text = out.toHeapString();
  // The bytes were written into a spare buffer (the one the node's iptables text was written
  // in, already touched), given back for the next listing unless the printed servers keep them.
  if (!keepPrinted(out, text, printed, format)) giveBackTextBuffer(out);
  return text;
}

/**
 * formatIpvsadmList's listing as bytes (UTF-8, as the string would be written), made no string:
 * the bytes it was written into, which the listing keeps (TextBuffer.keepAsBytes), and from
 * which the servers printed here for the first time are read by later listings.
 */
export function formatIpvsadmListBytes(table: IpvsTable, opts: IpvsadmListOptions = {}): Uint8Array {
  const { out, printed, format } = writeIpvsadmList(table, opts);
  const bytes = out.keepAsBytes();
  keepPrinted(out, undefined, printed, format);
  return bytes;
}

/** The listing written into a spare text buffer, with the shared servers printed in it for the first time. */
function writeIpvsadmList(table: IpvsTable, opts: IpvsadmListOptions): { out: TextBuffer; printed: PrintedServer[]; format: string } {
  // Indexed loops here: the listing runs once per node, mostly before it is optimised, and a
  // for-of there allocates an iterator result per step (1 MB for a big table's 14k services).
  const services = orderedServices(table, opts);
  let dests = 0;
  for (let k = 0; k < services.length; k++) dests += destCount(services[k]!);
  const capacity = 256 + 64 * table.services.length + 72 * dests;
  const out = takeTextBuffer(capacity);
  out.write(`IP Virtual Server version ${IPVS_VERSION} (size=${opts.connTabSize ?? DEFAULT_CONN_TAB_SIZE})`);
  out.writeCode(NEWLINE);
  for (const line of titleLines(opts)) {
    out.write(line);
    out.writeCode(NEWLINE);
  }
  const format = `${opts.stats ? 's' : ''}${opts.rate ? 'r' : ''}${opts.thresholds ? 't' : ''}${opts.persistentConn ? 'p' : ''}${opts.exact ? 'e' : ''}${opts.nosort ? 'n' : ''}`;
  /** Shared servers printed here for the first time, with where their bytes are. */
  const printed: PrintedServer[] = [];
  for (let k = 0; k < services.length; k++) {
    const vs = services[k]!;
    const shared = sharedServers.get(vs);
    if (shared === undefined) {
      writeServiceBlock(out, vs, opts);
      continue;
    }
    const kept = printedBlock(shared, format);
    if (kept !== undefined) {
      out.append(kept.from, kept.start, kept.end);
      continue;
    }
    const start = out.length;
    writeServiceBlock(out, vs, opts);
    printed.push({ shared, start, end: out.length });
  }
  return { out, printed, format };
}

/** A shared server printed for the first time in a listing, where its bytes are in it. */
interface PrintedServer {
  readonly shared: SharedRendering;
  readonly start: number;
  readonly end: number;
}

/**
 * Keep the bytes of shared servers printed for the first time; true when they are kept where
 * `out` has them (the buffer is then theirs). When they are most of the listing (the first node
 * of a cluster) they are kept in `text`, the listing itself (as ASCII, its characters are its
 * bytes): copying them would make the same bytes twice, and keeping the buffer would keep a
 * spare from the next listing; with no `text` (a listing kept as bytes), in `out`, whose bytes
 * the listing keeps anyway. Otherwise (a later node prints only a few new servers) they are
 * copied together into one store of their own.
 */
function keepPrinted(out: TextBuffer, text: string | undefined, printed: readonly PrintedServer[], format: string): boolean {
  if (printed.length === 0) return false;
  let size = 0;
  for (let k = 0; k < printed.length; k++) size += printed[k]!.end - printed[k]!.start;
  if (2 * size >= out.length) {
    const from = text !== undefined && out.isAscii ? TextBuffer.ofAsciiText(text) : out;
    for (let k = 0; k < printed.length; k++) {
      const p = printed[k]!;
      keepPiece(p.shared, format, from, p.start, p.end);
    }
    return from === out;
  }
  const store = new TextBuffer(size);
  for (let k = 0; k < printed.length; k++) {
    const p = printed[k]!;
    const at = store.length;
    store.append(out, p.start, p.end);
    keepPiece(p.shared, format, store, at, store.length);
  }
  return false;
}

function keepPiece(shared: SharedRendering, format: string, from: TextBuffer, start: number, end: number): void {
  shared.printed = { format, from, start, end, next: shared.printed };
}

// ---------------------------------------------------------------- -S

/** How ipvsadm names a virtual service in a command: "-t 10.96.0.1:443", "-u [fd00::a]:53". */
export function ipvsadmServiceName(vs: VirtualServer): string {
  return serviceName(vs, true);
}

/** The options of `-A`/`-E` after the service name: " -s rr -p 10800", as ipvsadm -S writes them. */
export function ipvsadmServiceOptions(vs: VirtualServer): string {
  let line = ` -s ${vs.scheduler}`;
  if (vs.flags & SVC_F_PERSISTENT) {
    line += ` -p ${vs.timeoutSeconds}`;
    if (vs.netmaskPrefix !== fullMask(vs)) line += vs.family === 4 ? ` -M ${dottedNetmask(vs.netmaskPrefix)}` : ` -M ${vs.netmaskPrefix}`;
  }
  if (vs.pe !== '') line += ` --pe ${vs.pe}`;
  if (vs.flags & SVC_F_ONEPACKET) line += ' -o';
  if (vs.flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3)) line += ` -b ${schedulerFlagNames(vs).join(',')}`;
  return line;
}

/** The options of `-a`/`-e` naming a real server: "-r 10.244.0.5:8080 -m -w 1". */
export function ipvsadmDestOptions(dest: RealServer): string {
  return `-r ${destName(dest, true)} ${FORWARD_SWITCH[dest.forward]} -w ${dest.weight}`;
}

/** `ipvsadm -Sn [--nosort]`: the table as ipvsadm commands (no header). */
export function formatIpvsadmSave(table: IpvsTable, opts: Pick<IpvsadmListOptions, 'nosort' | 'hashSalt'> = {}): string {
  const lines: string[] = [];
  for (const vs of orderedServices(table, opts)) {
    const name = serviceName(vs, true);
    lines.push(`-A ${name}${ipvsadmServiceOptions(vs)}`);
    for (const dest of orderedDests(vs, opts.nosort)) lines.push(`-a ${name} ${ipvsadmDestOptions(dest)}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** `ipvsadm -L --timeout`. */
export function formatIpvsadmTimeout(tcpSeconds: number, tcpFinSeconds: number, udpSeconds: number): string {
  return `Timeout (tcp tcpfin udp): ${tcpSeconds} ${tcpFinSeconds} ${udpSeconds}\n`;
}

// ---------------------------------------------------------------- -c

/** One row of /proc/net/ip_vs_conn as `ipvsadm -Lnc` prints it. */
export interface IpvsConnectionRow {
  protocol: IpvsProtocol;
  /** Seconds until the entry expires. */
  expiresSeconds: number;
  /** "ESTABLISHED", "CLOSE_WAIT", "UDP", "ASSURED" (a persistence template), ... */
  state: string;
  clientIP: string;
  clientPort: number;
  virtualIP: string;
  virtualPort: number;
  destIP: string;
  destPort: number;
}

/** `ipvsadm -Lnc`: rows in the order given (the kernel's connection hash order). */
export function formatIpvsadmConnections(rows: readonly IpvsConnectionRow[]): string {
  const lines = ['IPVS connection entries', `pro expire ${padRight('state', 11)} ${padRight('source', 18)} ${padRight('virtual', 18)} destination`];
  for (const row of rows) {
    const minutes = Math.floor(row.expiresSeconds / 60);
    const seconds = row.expiresSeconds % 60;
    const expire = `${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
    lines.push([
      padRight(row.protocol, 3), padRight(expire, 6), padRight(row.state, 11),
      padRight(joinHostPort(row.clientIP, row.clientPort), 18), padRight(joinHostPort(row.virtualIP, row.virtualPort), 18),
      joinHostPort(row.destIP, row.destPort),
    ].join(' '));
  }
  return `${lines.join('\n')}\n`;
}
