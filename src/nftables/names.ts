/**
 * kube-proxy's nftables names (pkg/proxy/nftables/proxier.go): the table, its fixed chains,
 * sets and maps, and the per-service and per-endpoint chains named by hashAndTruncate.
 *
 * Everything lives inside the `kube-proxy` table, so no name carries a "KUBE-" prefix. A
 * service port's chains are `<prefix><H>-ns/name/proto/portName`, an endpoint's
 * `<prefix><H>-ns/name/proto/portName__IP/port`, where H is the first 8 characters of the
 * base32 SHA-256 of the text after it. Unlike iptables' 28-character names these are readable;
 * the hash keeps names unique if one ever has to be cut to knftables' length limit.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { asciiBytes } from '../iptables/line-scratch.js';
import { sha256AsciiPrefix, sha256AsciiPrefixOf, sha256AsciiPrefixOfBytes } from '../iptables/sha256.js';
import { protocolWord } from '../iptables/names.js';
import type { ServicePortName } from '../tracker/types.js';
import { base32Std } from '../util/hash.js';
import { splitHostPortText } from '../util/ip.js';

export const KUBE_PROXY_TABLE = 'kube-proxy';
export const TABLE_COMMENT = 'rules for kube-proxy';

// Base chains (after kubernetes#132456).
export const FILTER_PREROUTING_PRE_DNAT = 'filter-prerouting-pre-dnat';
export const FILTER_OUTPUT_PRE_DNAT = 'filter-output-pre-dnat';
export const FILTER_INPUT = 'filter-input';
export const FILTER_FORWARD = 'filter-forward';
export const FILTER_OUTPUT = 'filter-output';
export const NAT_PREROUTING = 'nat-prerouting';
export const NAT_OUTPUT = 'nat-output';
export const NAT_POSTROUTING = 'nat-postrouting';

// Service dispatch.
export const SERVICES_CHAIN = 'services';
export const SERVICE_IPS_MAP = 'service-ips';
export const SERVICE_NODEPORTS_MAP = 'service-nodeports';
export const NODEPORT_IPS_SET = 'nodeport-ips';
export const CLUSTER_IPS_SET = 'cluster-ips';
export const CLUSTER_IPS_CHECK_CHAIN = 'cluster-ips-check';

// Services without (local) endpoints.
export const SERVICE_ENDPOINTS_CHECK_CHAIN = 'service-endpoints-check';
export const NODEPORT_ENDPOINTS_CHECK_CHAIN = 'nodeport-endpoints-check';
export const NO_ENDPOINT_SERVICES_MAP = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS_MAP = 'no-endpoint-nodeports';
export const REJECT_CHAIN = 'reject-chain';

// loadBalancerSourceRanges.
export const FIREWALL_IPS_MAP = 'firewall-ips';
export const FIREWALL_CHECK_CHAIN = 'firewall-check';

// Masquerading.
export const MARK_MASQ_CHAIN = 'mark-for-masquerade';
export const MASQUERADING_CHAIN = 'masquerading';

// Per service port and endpoint.
export const CLUSTER_POLICY_PREFIX = 'service-';
export const LOCAL_POLICY_PREFIX = 'local-';
export const EXTERNAL_PREFIX = 'external-';
export const FIREWALL_PREFIX = 'firewall-';
export const ENDPOINT_PREFIX = 'endpoint-';
export const AFFINITY_PREFIX = 'affinity-';

/** knftables.NameLengthMax (256) minus the longest prefix with its hyphen (16). */
const NAME_BASE_LENGTH_MAX = 256 - 16;

const BASE32_CODES = Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', (ch) => ch.charCodeAt(0));
const digest = new Uint8Array(5);

/**
 * The first 8 base32 characters of SHA-256(name): 40 bits, the first five digest bytes. This
 * runs once per endpoint, so it uses the same short-input SHA-256 as the iptables names.
 */
function hash8(name: string): string {
  if (!sha256AsciiPrefix(name, digest, 5)) return base32Std(createHash('sha256').update(name).digest()).slice(0, 8);
  return base32Prefix8(digest);
}

/** The first 8 base32 characters of the 5 bytes `d` holds. */
function base32Prefix8(d: Uint8Array): string {
  const c = BASE32_CODES;
  // One call, one flat string (eight one-character concatenations made eight strings).
  return String.fromCharCode(
    c[d[0]! >> 3]!,
    c[((d[0]! & 7) << 2) | (d[1]! >> 6)]!,
    c[(d[1]! >> 1) & 31]!,
    c[((d[1]! & 1) << 4) | (d[2]! >> 4)]!,
    c[((d[2]! & 15) << 1) | (d[3]! >> 7)]!,
    c[(d[3]! >> 2) & 31]!,
    c[((d[3]! & 3) << 3) | (d[4]! >> 5)]!,
    c[d[4]! & 31]!,
  );
}

/**
 * kube-proxy's hashAndTruncate: "HASH-name", cut to 237 characters plus "..." when longer
 * than 240 (it never is for a service port; an endpoint with a long IPv6 address could be).
 */
export function hashAndTruncate(name: string): string {
  const base = [hash8(name), '-', name].join('');
  return base.length > NAME_BASE_LENGTH_MAX ? `${base.slice(0, NAME_BASE_LENGTH_MAX - 3)}...` : base;
}

/**
 * prefix + base as one flat string. `+` makes a concatenation node that V8 copies into a flat
 * string of its own the first time the name is hashed as a Map key (every chain name is), so
 * each name cost two strings and a copy; a join makes the flat one at once.
 */
function flatName(prefix: string, base: string): string {
  return [prefix, base].join('');
}

/** "ns/name/proto/portName": "/" cannot occur in any part, so it separates them. */
function servicePortText(spn: ServicePortName): string {
  // Joined flat: a template literal makes a tree of concatenations, copied flat again when hashed.
  return [spn.namespace, '/', spn.name, '/', protocolWord(spn.protocol), '/', spn.port].join('');
}

/** servicePortChainNameBase: "ULMVA6XW-ns1/svc1/tcp/p80". */
export function servicePortChainNameBase(spn: ServicePortName): string {
  // The port's text as its endpoint chains' names hold it, kept per port (endpointTextPrefix),
  // without its "__": the text is not made a second time per port.
  const prefix = endpointTextPrefix(spn);
  return hashAndTruncate(prefix.slice(0, prefix.length - 2));
}

/**
 * servicePortEndpointChainNameBase: "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80". Colons are not
 * allowed in chain names, so an IPv6 address is written with dots instead.
 */
export function endpointChainNameBase(spn: ServicePortName, endpoint: string): string {
  // The address as the endpoint's text has it (kube-proxy does not reformat it).
  const hp = splitHostPortText(endpoint);
  if (!hp) throw new Error(`endpoint ${endpoint} is not ip:port`);
  return hashAndTruncate(`${servicePortText(spn)}__${hp.host.replaceAll(':', '.')}/${hp.portText}`);
}

export interface ServicePortChains {
  /** service-: the endpoints for Cluster traffic policy. */
  readonly clusterPolicyChain: string;
  /** local-: the endpoints for Local traffic policy. */
  readonly localPolicyChain: string;
  /** external-: every external destination (node port, external IP, LB IP) goes here. */
  readonly externalChain: string;
  /** firewall-: loadBalancerSourceRanges. */
  readonly firewallChain: string;
}

export function servicePortChains(spn: ServicePortName): ServicePortChains {
  const base = servicePortChainNameBase(spn);
  return {
    clusterPolicyChain: flatName(CLUSTER_POLICY_PREFIX, base),
    localPolicyChain: flatName(LOCAL_POLICY_PREFIX, base),
    externalChain: flatName(EXTERNAL_PREFIX, base),
    firewallChain: flatName(FIREWALL_PREFIX, base),
  };
}

/** The port's service- chain name (servicePortChains' clusterPolicyChain), alone. */
export function clusterPolicyChainOf(spn: ServicePortName): string {
  return flatName(CLUSTER_POLICY_PREFIX, servicePortChainNameBase(spn));
}

/**
 * The name of the port's chain with `prefix` (local-, external-, firewall-), from its service-
 * chain's name (clusterPolicyChainOf): they share the hashed part after the prefix, so the
 * port's text need not be hashed again.
 */
export function siblingChainName(prefix: string, clusterPolicyChain: string): string {
  return flatName(prefix, clusterPolicyChain.slice(CLUSTER_POLICY_PREFIX.length));
}

export interface EndpointNames {
  readonly chain: string;
  /** Made when asked for: only services with ClientIP affinity have the sets. */
  readonly affinitySet: string;
}

/**
 * Names by service port and endpoint: every node of a cluster names a port's endpoints alike,
 * and each name is a SHA-256 (a DaemonSet's port, on every node, has an endpoint per node).
 */
const namesByPort = new WeakMap<ServicePortName, Map<string, EndpointNames>>();

export function endpointNames(spn: ServicePortName, endpoint: string): EndpointNames {
  let byEndpoint = namesByPort.get(spn);
  if (byEndpoint === undefined) namesByPort.set(spn, (byEndpoint = new Map()));
  let names = byEndpoint.get(endpoint);
  if (names === undefined) byEndpoint.set(endpoint, (names = makeEndpointNames(spn, endpoint)));
  return names;
}

/**
 * endpointNames without keeping them: for a caller that keeps the chains they name (the shared
 * work of a cluster's compiles), where a second copy of the index would only be more to keep.
 */
export function makeEndpointNames(spn: ServicePortName, endpoint: string): EndpointNames {
  return new LazyEndpointNames(endpointChainName(spn, endpoint));
}

/** The names of the endpoint whose chain is `chain` (a name made by endpointChainName). */
export function endpointNamesOfChain(chain: string): EndpointNames {
  return new LazyEndpointNames(chain);
}

/** "ns/name/proto/port__": what every endpoint chain name of a port hashes and ends with first. */
const endpointTextPrefixes = new WeakMap<ServicePortName, string>();

/** The port's part of its endpoint chain names: "ns/name/proto/port__", made once per port. */
export function endpointTextPrefix(spn: ServicePortName): string {
  let prefix = endpointTextPrefixes.get(spn);
  if (prefix === undefined) endpointTextPrefixes.set(spn, (prefix = [servicePortText(spn), '__'].join('')));
  return prefix;
}

/** The host and "/port" the last hashEndpointText hashed (the name's last parts). */
let hashedHost = '';
let hashedPort = '';

/**
 * SHA-256 of the text an endpoint chain's name is made of, the port's text and the endpoint's
 * parts read where they are, into `digest` (its first 5 bytes): the port's text, or undefined
 * when the name is made the general way (long enough to be cut, or not ASCII).
 */
function hashEndpointText(spn: ServicePortName, endpoint: string): string | undefined {
  const prefix = endpointTextPrefix(spn);
  const colon = ipv4HostPortColon(endpoint);
  let host: string;
  let port: string;
  if (colon > 0) {
    host = endpoint.slice(0, colon);
    port = slashPort(endpoint, colon);
  } else {
    const close = ipv6HostPortClose(endpoint);
    if (close > 0) {
      host = endpoint.slice(1, close).replaceAll(':', '.');
      port = slashPort(endpoint, close + 1);
    } else {
      const hp = splitHostPortText(endpoint);
      if (!hp) throw new Error(`endpoint ${endpoint} is not ip:port`);
      host = hp.host.replaceAll(':', '.');
      port = `/${hp.portText}`;
    }
  }
  if (9 + prefix.length + host.length + port.length > NAME_BASE_LENGTH_MAX || !sha256AsciiPrefixOf(prefix, host, port, digest, 5)) return undefined;
  hashedHost = host;
  hashedPort = port;
  return prefix;
}

/**
 * "endpoint-" + endpointChainNameBase, made as one flat string: the port's part of the hashed
 * text is made once per port, the hash reads the parts where they are, and no intermediate
 * name is made (this runs once per endpoint of the cluster: 150k times at 5,000 nodes).
 */
export function endpointChainName(spn: ServicePortName, endpoint: string): string {
  const prefix = hashEndpointText(spn, endpoint);
  // A name long enough to be cut, or not ASCII: the general path.
  if (prefix === undefined) return flatName(ENDPOINT_PREFIX, endpointChainNameBase(spn, endpoint));
  // One array for every name joined: the name is all that is kept.
  const parts = nameParts;
  parts[1] = base32Prefix8(digest);
  parts[3] = prefix;
  parts[4] = hashedHost;
  parts[5] = hashedPort;
  const name = parts.join('');
  parts[1] = parts[3] = parts[4] = parts[5] = '';
  return name;
}

/**
 * endpointChainName's hash as a number, its 40 bits (the 8 base32 characters) in order, for a
 * chain that writes its name from the hash, the port's text (endpointTextPrefix) and the
 * endpoint's text (writeHashedName) instead of keeping it as a string: -1 when the name is made
 * the general way (endpointChainName must then be kept), or the endpoint's text is not of the
 * two forms the name is written from ("a.b.c.d:port", "[v6]:port").
 */
export function endpointChainHash(spn: ServicePortName, endpoint: string): number {
  return endpointChainHashAfter(endpointTextPrefix(spn), endpoint);
}

/**
 * endpointChainHash with the port's text (endpointTextPrefix) at hand: a caller that names a
 * port's endpoints one after the other looks it up once per port, not once per endpoint (a
 * weak map's lookup, 150k times on the first node of a 5,000-node cluster).
 */
export function endpointChainHashAfter(prefix: string, endpoint: string): number {
  if (ipv4HostPortColon(endpoint) < 0 && ipv6HostPortClose(endpoint) < 0) return -1;
  // The endpoint's part of the hashed text written as bytes, as the name has it: no string is
  // made per endpoint for its host (a slice, or a copy with colons replaced) and port.
  const n = endpoint.length - (endpoint.charCodeAt(0) === 91 /* [ */ ? 2 : 0);
  if (9 + prefix.length + n > NAME_BASE_LENGTH_MAX || !isAsciiText(endpoint)) return -1;
  if (writeEndpointText(endpointScratch, 0, endpoint) !== n) throw new Error(`endpoint ${endpoint}: its name's text is not ${n} characters`);
  if (!sha256AsciiPrefixOfBytes(prefix, endpointScratch, n, digest, 5)) return -1;
  return digest[0]! * 2 ** 32 + (((digest[1]! << 24) | (digest[2]! << 16) | (digest[3]! << 8) | digest[4]!) >>> 0);
}

/** Where endpointChainHash writes an endpoint's part of the hashed text (at most NAME_BASE_LENGTH_MAX bytes). */
const endpointScratch = new Uint8Array(NAME_BASE_LENGTH_MAX);

/** Whether every character of `text` is ASCII. */
function isAsciiText(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * How many characters writeHashedName writes: `prefix`, the hash, "-", the port's text, the
 * endpoint's text as the name has it (brackets left out).
 */
export function hashedNameLength(prefix: string | Uint8Array, portText: string | Uint8Array, endpoint: string): number {
  return prefix.length + 9 + portText.length + endpoint.length - (endpoint.charCodeAt(0) === 91 /* [ */ ? 2 : 0);
}


/** ASCII text as bytes (the line scratch's, re-exported for the nftables writers). */
export { asciiBytes };

export const ENDPOINT_PREFIX_BYTES = asciiBytes(ENDPOINT_PREFIX);
export const AFFINITY_PREFIX_BYTES = asciiBytes(AFFINITY_PREFIX);

/**
 * endpointTextPrefix as bytes of their own, for writeHashedName; only for a port whose names are
 * hashed (ASCII: endpointChainHash). Not kept: a chain keeps its port's once (keptAsciiBytes).
 */
export function endpointTextPrefixBytes(spn: ServicePortName): Uint8Array {
  return asciiBytes(endpointTextPrefix(spn));
}

/** The slab keptAsciiBytes cuts texts from, and where its free bytes start. */
let slab = new Uint8Array(0);
let slabAt = 0;
const SLAB_BYTES = 1 << 16;

/**
 * ASCII text as bytes kept for the life of the process (a port's text, a verdict map's entry
 * head): a view of a slab shared with other such texts. A Uint8Array of its own is a typed
 * array, an array buffer and their bytes, some 220 bytes for 40 bytes of text; a view is the
 * typed array alone. 12k ports' texts and 8k entry heads on the first node of a 5,000-node
 * cluster were 3 MB kept, copied by the young generation's scavenges first.
 */
export function keptAsciiBytes(s: string): Uint8Array {
  const n = s.length;
  if (n > SLAB_BYTES >>> 4) return asciiBytes(s);
  if (slabAt + n > slab.length) {
    slab = new Uint8Array(SLAB_BYTES);
    slabAt = 0;
  }
  const at = slabAt;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 127) throw new Error(`not ASCII: ${JSON.stringify(s)}`);
    slab[at + i] = c;
  }
  slabAt = at + n;
  return slab.subarray(at, at + n);
}

/**
 * `prefix` ("endpoint-" or "affinity-", as bytes) and the rest of the endpoint chain's name
 * whose hash is `high` and `low` (its first and last 20 bits), `portText` the port's text as
 * bytes (endpointTextPrefixBytes), written from `at` on: the same characters as
 * endpointChainName's after its prefix, with no string made. Returns where they end. The
 * constant parts are copied in one call each; a loop over characters costs some five times
 * more than TypedArray.set for a name's 40 characters of port text.
 */
export function writeHashedName(bytes: Uint8Array, at: number, prefix: Uint8Array, high: number, low: number, portText: Uint8Array, endpoint: string): number {
  bytes.set(prefix, at);
  return writeHashedNameTail(bytes, at + prefix.length, high, low, portText, endpoint);
}

/**
 * writeHashedName without its prefix, from the hash on: for a writer that copies the prefix
 * with what comes before it ("add chain ip kube-proxy endpoint-") in one call.
 */
export function writeHashedNameTail(bytes: Uint8Array, at: number, high: number, low: number, portText: Uint8Array, endpoint: string): number {
  let p = at;
  const c = BASE32_CODES;
  bytes[p++] = c[(high >>> 15) & 31]!;
  bytes[p++] = c[(high >>> 10) & 31]!;
  bytes[p++] = c[(high >>> 5) & 31]!;
  bytes[p++] = c[high & 31]!;
  bytes[p++] = c[(low >>> 15) & 31]!;
  bytes[p++] = c[(low >>> 10) & 31]!;
  bytes[p++] = c[(low >>> 5) & 31]!;
  bytes[p++] = c[low & 31]!;
  bytes[p++] = 45; // -
  bytes.set(portText, p);
  return writeEndpointText(bytes, p + portText.length, endpoint);
}

/**
 * The endpoint's part of its chain's name, written from `at` on: "10.0.0.1:80" as "10.0.0.1/80",
 * "[a:b::1]:80" as "a.b..1/80" (the two forms endpointChainHash takes). Returns where it ends.
 */
function writeEndpointText(bytes: Uint8Array, at: number, endpoint: string): number {
  let p = at;
  const n = endpoint.length;
  if (endpoint.charCodeAt(0) === 91 /* [ */) {
    // "[a:b::1]:80" → "a.b..1/80"
    let i = 1;
    for (; i < n; i++) {
      const ch = endpoint.charCodeAt(i);
      if (ch === 93 /* ] */) break;
      bytes[p++] = ch === 58 ? 46 : ch;
    }
    bytes[p++] = 47; // /
    for (i += 2; i < n; i++) bytes[p++] = endpoint.charCodeAt(i);
  } else {
    // "10.0.0.1:80" → "10.0.0.1/80": its only colon is the port's.
    for (let i = 0; i < n; i++) {
      const ch = endpoint.charCodeAt(i);
      bytes[p++] = ch === 58 ? 47 : ch;
    }
  }
  return p;
}

/** What writeHashedName writes, as a string (for a reader of the name: a tracer, a set's name). */
export function hashedName(prefix: string, high: number, low: number, portText: string, endpoint: string): string {
  return hashedNameOfBytes(asciiBytes(prefix), high, low, asciiBytes(portText), endpoint);
}

/**
 * Where hashedNameOfBytes writes a name before making it a string: a hashed name is at most
 * NAME_BASE_LENGTH_MAX characters after a prefix (longer ones are made the general way).
 */
const nameScratch = Buffer.alloc(512);

/**
 * hashedName with the prefix and the port's text as bytes (ENDPOINT_PREFIX_BYTES,
 * endpointTextPrefixBytes): written into one reused buffer and made a string there, nothing
 * else made (the names of a port with ClientIP affinity are all made, for its affinity sets).
 */
export function hashedNameOfBytes(prefix: Uint8Array, high: number, low: number, portText: Uint8Array, endpoint: string): string {
  const n = hashedNameLength(prefix, portText, endpoint);
  const bytes = n <= nameScratch.length ? nameScratch : Buffer.alloc(n);
  writeHashedName(bytes, 0, prefix, high, low, portText, endpoint);
  return bytes.toString('latin1', 0, n);
}

/** endpointChainName's parts: "endpoint-", the hash, "-", the port's text, the host, "/port". */
const nameParts = [ENDPOINT_PREFIX, '', '-', '', '', ''];

/**
 * Where the "]" of "[host]:port" is (a bracketed IPv6 address, as splitHostPortText's first
 * form reads it: a non-empty host without "]", digits after the colon); -1 for anything else.
 */
function ipv6HostPortClose(text: string): number {
  if (text.charCodeAt(0) !== 91 /* [ */) return -1;
  const close = text.indexOf(']');
  if (close < 2 || text.charCodeAt(close + 1) !== 58 /* : */ || close + 2 >= text.length) return -1;
  for (let i = close + 2; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return close;
}

/** The last "/port" slashPort made. */
let lastSlashPort = '/';

/**
 * "/port" for the endpoint "host:port" whose colon is at `colon`: the last one made when the
 * port is the same (a port's endpoints mostly share their target port), so that naming an
 * endpoint makes no string for its port.
 */
function slashPort(endpoint: string, colon: number): string {
  const n = endpoint.length - colon;
  const last = lastSlashPort;
  if (last.length === n) {
    let same = true;
    for (let i = 1; i < n; i++) {
      if (endpoint.charCodeAt(colon + i) !== last.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) return last;
  }
  return (lastSlashPort = `/${endpoint.slice(colon + 1)}`);
}

/**
 * Where the colon of "host:port" is when the host has no colon or bracket (an IPv4 address, as
 * splitHostPortText's second form reads it); -1 for anything else. A scan instead of a regular
 * expression: this runs once per endpoint of the cluster.
 */
function ipv4HostPortColon(text: string): number {
  let colon = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 58 /* : */) {
      if (colon >= 0) return -1;
      colon = i;
    } else if (c === 91 /* [ */ || c === 93 /* ] */) {
      return -1;
    } else if (colon >= 0 && (c < 48 || c > 57)) {
      return -1;
    }
  }
  return colon > 0 && colon < text.length - 1 ? colon : -1;
}

/**
 * A class, not an object literal with a getter: a literal's getter is a closure with its own
 * context and accessor pair, several times the object's size, and a big cluster keeps one of
 * these per endpoint (150k at 5,000 nodes).
 */
class LazyEndpointNames implements EndpointNames {
  /** The only string kept: the affinity set's name is made from it when asked for. */
  readonly chain: string;

  constructor(chain: string) {
    this.chain = chain;
  }

  get affinitySet(): string {
    return affinitySetOf(this.chain);
  }
}

/** The affinity set's name of the endpoint whose chain is `chain` (a name made by endpointChainName). */
export function affinitySetOf(chain: string): string {
  return flatName(AFFINITY_PREFIX, chain.slice(ENDPOINT_PREFIX.length));
}

/** kube-proxy's isServiceChainName: its own fixed chains never contain "/". */
export function isServiceChainName(chain: string): boolean {
  return chain.includes('/');
}
