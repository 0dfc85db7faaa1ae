/**
 * Virtual addresses → loopback addresses, for the userspace proxy.
 *
 * The proxy cannot bind a ClusterIP, a node IP or a load balancer IP on this machine, and must
 * never send traffic anywhere but loopback. So every virtual address a kube-proxy would serve on
 * this node is given a loopback stand-in, and so is every pod:
 *
 *   ClusterIP     10.96.0.10:80     -> 127.10.0.1:80
 *   NodePort      192.168.0.2:30080 -> 127.30.0.1:30080
 *   ExternalIP    192.0.2.10:9000   -> 127.40.0.1:9000
 *   LoadBalancer  203.0.113.50:443  -> 127.50.0.1:443
 *   Backend       10.244.0.5:8080   -> 127.1.0.1:8080
 *
 * Each kind has its own block (127.K.0.0/16); within a block the distinct virtual IPs, sorted,
 * get consecutive host numbers, so the map depends only on the cluster. Ports keep their number:
 * a virtual IP's ports all land on the same loopback IP. IPv6 has only ::1, so there every
 * (address, port) needs its own port on ::1: the first to ask for a port keeps it, later ones fall
 * back to an ephemeral port. The proxy falls back the same way when binding fails (a privileged
 * port without permission, a port in use) and records why in the map.
 *
 * Pure: planning takes proxier states and returns a map; binding happens in proxy.ts, which
 * reports the ports it got through `withBoundPorts`.
 */
import { KpsimError } from '../errors.js';
import type { Protocol } from '../model/types.js';
import type { EndpointInfo, ProxierServicePort, ProxierState } from '../tracker/types.js';
import { type ProxyInput, statesOf } from './input.js';
import { type Family, ipToBytes, ipFamily, joinHostPort, normalizeIP } from '../util/ip.js';

export const virtualKinds = ['ClusterIP', 'NodePort', 'ExternalIP', 'LoadBalancer'] as const;
export type VirtualKind = (typeof virtualKinds)[number];

export interface HostPort {
  readonly address: string;
  readonly port: number;
}

/** One address kube-proxy would serve on this node, and where the proxy serves it instead. */
export interface VirtualEntry {
  /** "ClusterIP 10.96.0.10:80/TCP": unique within a map. */
  readonly key: string;
  readonly kind: VirtualKind;
  readonly spn: string;
  readonly protocol: Protocol;
  readonly family: Family;
  readonly virtual: HostPort;
  /** Where the proxy listens. Port 0 means "an ephemeral port, not bound yet". */
  readonly loopback: HostPort;
  /** TCP and UDP service ports are proxied; SCTP ports are not. */
  readonly proxied: boolean;
  /** Set when the loopback port is not the service's own: the reason it fell back. */
  readonly fallback?: string;
  /** A remark shown in the map, e.g. why the entry is not proxied. */
  readonly note?: string;
}

/** One pod endpoint and the loopback address its backend server listens on. */
export interface BackendEntry {
  /** The cluster address, "10.244.0.5:8080" or "[fd00::5]:8080". */
  readonly endpoint: string;
  readonly ip: string;
  readonly port: number;
  readonly family: Family;
  readonly podName?: string;
  /**
   * Where its TCP server listens (for an endpoint of UDP ports only, where its UDP responder
   * does). Port 0 means "an ephemeral port, not bound yet".
   */
  readonly loopback: HostPort;
  readonly fallback?: string;
  /** The service ports this endpoint serves (spn). */
  readonly spns: readonly string[];
  /**
   * A socket already bound to the endpoint's own address and listening, inherited from whoever
   * made it (kpsim lab binds each in its pod's network namespace): served instead of `loopback`.
   */
  readonly listenFd?: number;
  /** The same for its UDP responder: a datagram socket already bound, served instead of `udpLoopback`. */
  readonly udpListenFd?: number;
  /** The protocols its service ports use (TCP, UDP), in that order. */
  readonly protocols: readonly Protocol[];
  /** Where its UDP responder listens, when it serves a UDP port; port 0 as for `loopback`. */
  readonly udpLoopback?: HostPort;
  /**
   * What answers there: 'pod', kpsim's backend pod (the default); 'user', a server of yours
   * (`--backend`); 'none', nothing (`--no-pods`), so a dial is refused as by a dead pod.
   */
  readonly server?: BackendServer;
}

export type BackendServer = 'pod' | 'user' | 'none';

export interface LookupQuery {
  /** Any kind when left out (ClusterIP first). */
  kind?: VirtualKind;
  /** The virtual (cluster-side) address, any text form. */
  address: string;
  port: number;
  /** TCP when left out. */
  protocol?: Protocol;
}

export interface PlanOptions {
  /**
   * 'service' (default) keeps each service's port number on loopback; 'ephemeral' asks the
   * kernel for a free port everywhere (tests, and running beside something that holds the ports).
   */
  ports?: 'service' | 'ephemeral';
}

/** What binding produced for one entry: the port it got, and why it differs, if it does. */
export interface BoundPort {
  port: number;
  fallback?: string;
}

/** The 127.K.0.0/16 block of each kind. */
const LOOPBACK_BLOCK: Record<VirtualKind | 'Backend', number> = {
  Backend: 1,
  ClusterIP: 10,
  NodePort: 30,
  ExternalIP: 40,
  LoadBalancer: 50,
};
const IPV6_LOOPBACK = '::1';
/** What the userspace proxy forwards: kube-proxy's userspace mode had TCP and UDP proxy sockets. */
const PROXIED_PROTOCOLS: ReadonlySet<Protocol> = new Set(['TCP', 'UDP']);
const PROTOCOL_ORDER: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
/** Host numbers 1..65535 in a /16. */
const BLOCK_CAPACITY = 65535;

export class AddressMap {
  readonly entries: readonly VirtualEntry[];
  readonly backends: readonly BackendEntry[];
  /** Things the map cannot show as an entry, e.g. a NodePort on a node without an address. */
  readonly notes: readonly string[];
  readonly #byVirtual = new Map<string, VirtualEntry>();
  readonly #byKey = new Map<string, VirtualEntry>();
  readonly #byEndpoint = new Map<string, BackendEntry>();

  constructor(entries: readonly VirtualEntry[], backends: readonly BackendEntry[], notes: readonly string[] = []) {
    this.entries = entries;
    this.backends = backends;
    this.notes = notes;
    for (const entry of entries) {
      this.#byKey.set(entry.key, entry);
      const virtualKey = lookupKey(entry.kind, entry.virtual.address, entry.virtual.port, entry.protocol);
      if (!this.#byVirtual.has(virtualKey)) this.#byVirtual.set(virtualKey, entry);
    }
    for (const backend of backends) this.#byEndpoint.set(backend.endpoint, backend);
  }

  /** Where an endpoint's backend takes this protocol's traffic ("not bound" is port 0). */
  backendAddress(endpoint: string, protocol: Protocol = 'TCP'): HostPort | undefined {
    const backend = this.#byEndpoint.get(endpoint);
    if (backend === undefined) return undefined;
    return protocol === 'UDP' ? backend.udpLoopback : backend.loopback;
  }

  /** The entry for a virtual address and port; undefined when the node serves no such address. */
  lookup(query: LookupQuery): VirtualEntry | undefined {
    const address = normalizeIP(query.address);
    if (address === undefined) return undefined;
    const protocol = query.protocol ?? 'TCP';
    for (const kind of query.kind === undefined ? virtualKinds : [query.kind]) {
      const entry = this.#byVirtual.get(lookupKey(kind, address, query.port, protocol));
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  /** The entry with this key ("ClusterIP 10.96.0.10:80/TCP"). */
  entry(key: string): VirtualEntry | undefined {
    return this.#byKey.get(key);
  }

  /** The backend of an endpoint ("10.244.0.5:8080", "[fd00::5]:8080"). */
  lookupBackend(endpoint: string): BackendEntry | undefined {
    return this.#byEndpoint.get(endpoint);
  }

  /**
   * The same map with the ports binding produced: entries by key, backends by endpoint (their
   * TCP server, or their only one) and by udpBindingKey(endpoint) (their UDP responder).
   */
  withBoundPorts(bound: ReadonlyMap<string, BoundPort>): AddressMap {
    const entries = this.entries.map((e) => {
      const got = bound.get(e.key);
      return got === undefined ? e : withPort(e, got);
    });
    const backends = this.backends.map((b) => {
      const got = bound.get(b.endpoint);
      let next = got === undefined ? b : withPort(b, got);
      const udp = bound.get(udpBindingKey(b.endpoint));
      if (udp !== undefined && b.udpLoopback !== undefined) next = { ...next, udpLoopback: { address: b.udpLoopback.address, port: udp.port } };
      return next;
    });
    return new AddressMap(entries, backends, this.notes);
  }

  /** The same map with each backend's server kind set (see BackendEntry.server). */
  withServers(serverOf: (endpoint: string) => BackendServer): AddressMap {
    return new AddressMap(this.entries, this.backends.map((b) => ({ ...b, server: serverOf(b.endpoint) })), this.notes);
  }

  /** The printed map: one line per entry, then one per backend, then the notes. */
  render(): string {
    const rows: string[][] = [];
    for (const e of this.entries) {
      const target = e.proxied ? formatTarget(e.loopback, e.fallback) : `not proxied (${e.note ?? e.protocol})`;
      rows.push([e.kind, formatVirtual(e.virtual, e.protocol), '->', target, e.spn + (e.proxied && e.note ? `  (${e.note})` : '')]);
    }
    for (const b of this.backends) rows.push(['Backend', b.endpoint, '->', formatBackendTarget(b), backendRemark(b)]);
    const lines = alignColumns(rows);
    for (const note of this.notes) lines.push(`note: ${note}`);
    return lines.join('\n') + (lines.length > 0 ? '\n' : '');
  }

  toJSON(): { entries: readonly VirtualEntry[]; backends: readonly BackendEntry[]; notes: readonly string[] } {
    return { entries: this.entries, backends: this.backends, notes: this.notes };
  }
}

/** The address map of one node: its states' virtual addresses and their endpoints' pods. */
export function planAddressMap(input: ProxyInput, options: PlanOptions = {}): AddressMap {
  const states = statesOf(input);
  const ephemeral = options.ports === 'ephemeral';
  const notes: string[] = [];
  const wanted: Omit<VirtualEntry, 'loopback' | 'key'>[] = [];
  for (const state of states) {
    for (const sp of state.servicePorts) wanted.push(...virtualAddressesOf(sp, state, notes));
  }
  const hostNumbers = assignHostNumbers(wanted.map((w) => ({ block: w.kind, ip: w.virtual.address })));
  const ports = new PortBook(ephemeral);
  const entries = wanted.map((w): VirtualEntry => {
    const address = loopbackAddress(w.family, w.kind, hostNumbers.get(`${w.kind}\0${w.virtual.address}`)!);
    const key = entryKey(w.kind, w.virtual, w.protocol);
    if (!w.proxied) return { ...w, key, loopback: { address, port: 0 } };
    const { port, fallback } = ports.claim(address, w.virtual.port, w.protocol, key);
    return { ...w, key, loopback: { address, port }, ...(fallback !== undefined ? { fallback } : {}) };
  });

  const endpoints = collectBackendEndpoints(states);
  const backendHosts = assignHostNumbers(endpoints.map((e) => ({ block: 'Backend' as const, ip: e.info.ip })));
  const backends = endpoints.map(({ info, spns, protocols }): BackendEntry => {
    const family = ipFamily(info.ip)!;
    const address = loopbackAddress(family, 'Backend', backendHosts.get(`Backend\0${info.ip}`)!);
    const first = protocols[0]!;
    const { port, fallback } = ports.claim(address, info.port, first, `Backend ${info.endpoint}`);
    const udp = !protocols.includes('UDP') ? undefined
      : first === 'UDP' ? { port } : ports.claim(address, info.port, 'UDP', `Backend ${info.endpoint}/UDP`);
    return {
      endpoint: info.endpoint, ip: info.ip, port: info.port, family,
      ...(info.podName !== undefined ? { podName: info.podName } : {}),
      loopback: { address, port },
      ...(fallback !== undefined ? { fallback } : {}),
      spns,
      protocols,
      ...(udp !== undefined ? { udpLoopback: { address, port: udp.port } } : {}),
    };
  });
  return new AddressMap(entries, backends, notes);
}

/** The key under which withBoundPorts takes the port an endpoint's UDP responder bound. */
export function udpBindingKey(endpoint: string): string {
  return `${endpoint}/UDP`;
}

/** "ClusterIP 10.96.0.10:80/TCP": the key of an entry. */
export function entryKey(kind: VirtualKind, virtual: HostPort, protocol: Protocol): string {
  return `${kind} ${joinHostPort(virtual.address, virtual.port)}/${protocol}`;
}

/** The addresses one service port is served on from this node, before loopback is assigned. */
export function virtualAddressesOf(sp: ProxierServicePort, state: ProxierState, notes: string[]): Omit<VirtualEntry, 'loopback' | 'key'>[] {
  const { info } = sp;
  const proxied = PROXIED_PROTOCOLS.has(info.protocol);
  const base = {
    spn: info.spn,
    protocol: info.protocol,
    family: state.family,
    proxied,
    ...(proxied ? {} : { note: `${info.protocol} ports are not proxied` }),
  };
  const out: Omit<VirtualEntry, 'loopback' | 'key'>[] = [{ ...base, kind: 'ClusterIP', virtual: { address: info.clusterIP, port: info.port } }];
  if (info.nodePort !== 0) {
    const nodeIPs = state.nodeIPs.filter((ip) => ipFamily(ip) === state.family);
    if (nodeIPs.length === 0) {
      notes.push(`${info.spn} NodePort ${info.nodePort}/${info.protocol}: node ${state.nodeName} has no ${state.family === 4 ? 'IPv4' : 'IPv6'} address, so it is not served`);
    }
    for (const ip of nodeIPs) out.push({ ...base, kind: 'NodePort', virtual: { address: ip, port: info.nodePort } });
  }
  for (const ip of info.externalIPs) out.push({ ...base, kind: 'ExternalIP', virtual: { address: ip, port: info.port } });
  for (const ip of info.loadBalancerVIPs) {
    const note = info.loadBalancerSourceRanges.length > 0 && proxied
      ? 'loadBalancerSourceRanges not enforced: every client is on loopback'
      : base.note;
    out.push({ ...base, ...(note !== undefined ? { note } : {}), kind: 'LoadBalancer', virtual: { address: ip, port: info.port } });
  }
  return out;
}

/** Every endpoint of every proxied service port, once, with the service ports and protocols it serves. */
function collectBackendEndpoints(states: readonly ProxierState[]): { info: EndpointInfo; spns: string[]; protocols: Protocol[] }[] {
  const byEndpoint = new Map<string, { info: EndpointInfo; spns: string[]; protocols: Protocol[] }>();
  for (const state of states) {
    for (const sp of state.servicePorts) {
      const protocol = sp.info.protocol;
      if (!PROXIED_PROTOCOLS.has(protocol)) continue;
      for (const ep of sp.endpoints) {
        const seen = byEndpoint.get(ep.endpoint);
        if (seen === undefined) {
          byEndpoint.set(ep.endpoint, { info: ep, spns: [sp.info.spn], protocols: [protocol] });
          continue;
        }
        if (!seen.spns.includes(sp.info.spn)) seen.spns.push(sp.info.spn);
        if (!seen.protocols.includes(protocol)) seen.protocols.push(protocol);
      }
    }
  }
  const all = [...byEndpoint.values()];
  for (const e of all) e.protocols.sort((a, b) => PROTOCOL_ORDER.indexOf(a) - PROTOCOL_ORDER.indexOf(b));
  return all.sort((a, b) => compareAddress(a.info.ip, b.info.ip) || a.info.port - b.info.port);
}

/** Within each block, the distinct IPs in address order get host numbers 1, 2, 3, ... */
function assignHostNumbers(items: readonly { block: VirtualKind | 'Backend'; ip: string }[]): Map<string, number> {
  const byBlock = new Map<string, Set<string>>();
  for (const { block, ip } of items) {
    const set = byBlock.get(block) ?? new Set<string>();
    byBlock.set(block, set.add(ip));
  }
  const numbers = new Map<string, number>();
  for (const [block, ips] of byBlock) {
    const sorted = [...ips].filter((ip) => ipFamily(ip) === 4).sort(compareAddress);
    if (sorted.length > BLOCK_CAPACITY) {
      throw new KpsimError('KPSIM_ERR_PROXY_LISTEN', `${sorted.length} ${block} addresses do not fit in 127.${LOOPBACK_BLOCK[block as VirtualKind]}.0.0/16 (at most ${BLOCK_CAPACITY})`);
    }
    sorted.forEach((ip, i) => numbers.set(`${block}\0${ip}`, i + 1));
    // IPv6 addresses all share ::1; they still get an entry so lookups stay uniform.
    for (const ip of ips) if (ipFamily(ip) === 6) numbers.set(`${block}\0${ip}`, 0);
  }
  return numbers;
}

export function loopbackAddress(family: Family, block: VirtualKind | 'Backend', hostNumber: number): string {
  if (family === 6) return IPV6_LOOPBACK;
  return `127.${LOOPBACK_BLOCK[block]}.${hostNumber >> 8}.${hostNumber & 255}`;
}

/**
 * Which ports on which loopback address are spoken for, in planning order. TCP and UDP ports
 * are separate spaces, as in the kernel: DNS's 53/TCP and 53/UDP share a loopback port number.
 */
class PortBook {
  readonly #taken = new Map<string, string>();
  constructor(readonly ephemeral: boolean) {}

  claim(address: string, port: number, protocol: Protocol, owner: string): BoundPort {
    if (this.ephemeral) return { port: 0, fallback: 'ephemeral ports requested' };
    const key = `${joinHostPort(address, port)}/${protocol}`;
    const holder = this.#taken.get(key);
    if (holder !== undefined) return { port: 0, fallback: `port ${port} on ${address} is taken by ${holder}` };
    this.#taken.set(key, owner);
    return { port };
  }
}

function withPort<T extends { loopback: HostPort; fallback?: string }>(item: T, got: BoundPort): T {
  const fallback = got.fallback ?? item.fallback;
  return { ...item, loopback: { address: item.loopback.address, port: got.port }, fallback };
}

function lookupKey(kind: VirtualKind, address: string, port: number, protocol: Protocol): string {
  return `${kind}\0${address}\0${port}\0${protocol}`;
}

function formatVirtual(virtual: HostPort, protocol: Protocol): string {
  const text = joinHostPort(virtual.address, virtual.port);
  return protocol === 'TCP' ? text : `${text}/${protocol}`;
}

/** "127.1.0.3:53", with "(tcp, udp :5353)" when it serves UDP on another port too. */
function formatBackendTarget(b: BackendEntry): string {
  const text = formatTarget(b.loopback, b.fallback);
  if (b.protocols.length < 2 || b.udpLoopback === undefined) return b.protocols[0] === 'UDP' ? `${text}/UDP` : text;
  return b.udpLoopback.port === b.loopback.port ? `${text} (tcp, udp)` : `${text} (udp :${b.udpLoopback.port})`;
}

function backendRemark(b: BackendEntry): string {
  const pod = b.podName ?? '';
  if (b.server === 'user') return `${pod}${pod === '' ? '' : ' '}(your server, --backend)`.trim();
  if (b.server === 'none') return `${pod}${pod === '' ? '' : ' '}(no pod: unreachable)`.trim();
  return pod;
}

function formatTarget(loopback: HostPort, fallback: string | undefined): string {
  const text = joinHostPort(loopback.address, loopback.port);
  return fallback === undefined ? text : `${text} (ephemeral: ${fallback})`;
}

function alignColumns(rows: readonly string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** Order endpoints ("ip:port", "[ip]:port") by address, then port: IPv4 before IPv6. */
export function compareEndpoints(a: { ip: string; port: number }, b: { ip: string; port: number }): number {
  return compareAddress(a.ip, b.ip) || a.port - b.port;
}

function compareAddress(a: string, b: string): number {
  const x = ipToBytes(a);
  const y = ipToBytes(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}
