/**
 * The IPVS table as the kernel holds it and ipvsadm lists it: virtual services (ip_vs_service)
 * with their flags, persistence and scheduler, each with its destinations (ip_vs_dest) in the
 * kernel's list order, counters and statistics. This is plain data: the compiler fills it from a
 * ProxierState, the formatter prints it, and `virtualServiceOf` turns one entry into a live
 * VirtualService that schedules.
 */
import { type Family, ipFamily, joinHostPort } from '../util/ip.js';

export type IpvsProtocol = 'TCP' | 'UDP' | 'SCTP';

/** The forwarding method of a destination, by ipvsadm's names. kube-proxy always uses Masq (NAT). */
export type ForwardMethod = 'Masq' | 'Local' | 'Tunnel' | 'Route';

/** Service flags (include/uapi/linux/ip_vs.h IP_VS_SVC_F_*). */
export const SVC_F_PERSISTENT = 0x1;
export const SVC_F_HASHED = 0x2;
export const SVC_F_ONEPACKET = 0x4;
export const SVC_F_SCHED1 = 0x8;
export const SVC_F_SCHED2 = 0x10;
export const SVC_F_SCHED3 = 0x20;

/** IP protocol numbers: ipvsadm sorts services by them (TCP 6 < UDP 17 < SCTP 132). */
export const PROTOCOL_NUMBERS: Readonly<Record<IpvsProtocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

/** The kernel's 64-bit counters (ip_vs_kstats), as `ipvsadm -L --stats` shows them. */
export interface IpvsStats {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

/** The estimator's rates (ip_vs_estimator.c), as `ipvsadm -L --rate` shows them. */
export interface IpvsRates {
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/** One real server (ip_vs_dest). */
export interface RealServer {
  readonly ip: string;
  readonly port: number;
  readonly family: Family;
  weight: number;
  forward: ForwardMethod;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  /** ipvsadm -x / -y; 0 = no limit. kube-proxy never sets them. */
  upperThreshold: number;
  lowerThreshold: number;
  /** Replaced as a whole when counters change (a fresh table shares one frozen zero record). */
  stats: Readonly<IpvsStats>;
  rates: Readonly<IpvsRates>;
  /**
   * What kube-proxy did to it, for the simulator and the tracer: `weight 0` on a dest that was
   * added with weight 1 and then quiesced (graceful termination) is an edit, which matters to mh
   * (an edited dest keeps its Maglev slots).
   */
  readonly quiesced?: boolean;
  /** The endpoint is terminating and kube-proxy is draining it (weight 0 until its conns end). */
  readonly draining?: boolean;
}

/** Why kube-proxy created a virtual server: which address of the service port it stands for. */
export type VirtualServerKind = 'ClusterIP' | 'ExternalIP' | 'LoadBalancer' | 'NodePort';

export interface VirtualServerOrigin {
  /** ServicePortName.String(): "ns/name:port". */
  readonly spn: string;
  readonly kind: VirtualServerKind;
  /** Which endpoint set kube-proxy used for its real servers. */
  readonly endpointScope: 'cluster' | 'local' | 'local-fallback-cluster';
}

/** One virtual service (ip_vs_service). */
export interface VirtualServer {
  readonly family: Family;
  readonly protocol: IpvsProtocol;
  /** The service address; for a fwmark service the unspecified address. */
  readonly address: string;
  readonly port: number;
  /** 0 unless the service is keyed by a firewall mark (kube-proxy never uses them). */
  readonly fwmark: number;
  scheduler: string;
  /** IP_VS_SVC_F_* bits (the kernel's internal HASHED bit is never shown). */
  flags: number;
  /** Persistence timeout in seconds (meaningful with SVC_F_PERSISTENT). */
  timeoutSeconds: number;
  /** Persistence netmask as a prefix length: 32 (IPv4) or 128 (IPv6) means per client address. */
  netmaskPrefix: number;
  /** Persistence engine name ("sip"), "" when none. */
  pe: string;
  /** In the kernel's list order: the dest added last is first. */
  dests: RealServer[];
  stats: Readonly<IpvsStats>;
  rates: Readonly<IpvsRates>;
  /** Set by the compiler. */
  readonly origin?: VirtualServerOrigin;
}

/** The whole table, services in the order they were created. */
export interface IpvsTable {
  readonly services: VirtualServer[];
}

/** The counters of a fresh service or dest, shared (frozen) so a big table does not repeat them. */
export const ZERO_STATS: Readonly<IpvsStats> = Object.freeze({ conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 });
export const ZERO_RATES: Readonly<IpvsRates> = Object.freeze({ cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 });

export interface RealServerSpec {
  ip: string;
  port: number;
  /** Known by the caller: saves parsing the address. */
  family?: Family;
  weight?: number;
  forward?: ForwardMethod;
  activeConns?: number;
  inactConns?: number;
  persistConns?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  stats?: Partial<IpvsStats>;
  rates?: Partial<IpvsRates>;
  quiesced?: boolean;
  draining?: boolean;
}

/** A real server with kube-proxy's defaults (weight 1, Masq) and zero counters. */
export function realServer(spec: RealServerSpec): RealServer {
  const family = spec.family ?? ipFamily(spec.ip);
  if (family === undefined) throw new Error(`realServer: ${spec.ip} is not an IP address`);
  const dest: { -readonly [K in keyof RealServer]: RealServer[K] } = {
    ip: spec.ip,
    port: spec.port,
    family,
    weight: spec.weight ?? 1,
    forward: spec.forward ?? 'Masq',
    activeConns: spec.activeConns ?? 0,
    inactConns: spec.inactConns ?? 0,
    persistConns: spec.persistConns ?? 0,
    upperThreshold: spec.upperThreshold ?? 0,
    lowerThreshold: spec.lowerThreshold ?? 0,
    stats: spec.stats ? { ...ZERO_STATS, ...spec.stats } : ZERO_STATS,
    rates: spec.rates ? { ...ZERO_RATES, ...spec.rates } : ZERO_RATES,
  };
  // Set afterwards, not spread in: a literal with spreads is built field by field at run time (a table has 100k dests).
  if (spec.quiesced) dest.quiesced = true;
  if (spec.draining) dest.draining = true;
  return dest;
}

export interface VirtualServerSpec {
  protocol: IpvsProtocol;
  address: string;
  port: number;
  /** Known by the caller: saves parsing the address. */
  family?: Family;
  fwmark?: number;
  scheduler?: string;
  flags?: number;
  timeoutSeconds?: number;
  netmaskPrefix?: number;
  pe?: string;
  /** In list order (front first); or made when first read (DeferredDests). */
  dests?: RealServer[] | DeferredDests;
  stats?: Partial<IpvsStats>;
  rates?: Partial<IpvsRates>;
  origin?: VirtualServerOrigin;
}

/**
 * Real servers made when first read. A big compiled table has 150k real servers, nearly all of
 * them fresh ones (weight 1, Masq, zero counters) that are only ever printed, and ipvsadm -Ln
 * prints those from the endpoints they stand for (`deferredDestsOf`): the records are made only
 * for what reads them one by one (the tracer, live services, the kernel model).
 */
export interface DeferredDests {
  /** How many real servers there are, without making them. */
  readonly length: number;
  /** The real servers in list order, made on the first call; the same list on every later one. */
  made(): RealServer[];
}

/**
 * Where a virtual server made with DeferredDests keeps them (or the list assigned to its `dests`
 * since): a property of its own that is not enumerable, so that copies, JSON and deep equality
 * see a virtual server's fields only.
 */
const DEFERRED_DESTS = Symbol('deferredDests');

interface HoldsDeferredDests {
  [DEFERRED_DESTS]?: DeferredDests | RealServer[];
}

/** `dests` of a virtual server made with DeferredDests: one getter and setter for all, so they share a hidden class. */
const DEFERRED_DESTS_ACCESSOR: PropertyDescriptor = {
  get(this: HoldsDeferredDests): RealServer[] {
    const dests = this[DEFERRED_DESTS]!;
    return Array.isArray(dests) ? dests : dests.made();
  },
  set(this: HoldsDeferredDests, dests: RealServer[]): void {
    this[DEFERRED_DESTS] = dests;
  },
  enumerable: true,
  configurable: true,
};

const DEFERRED_DESTS_HOLDER: PropertyDescriptor = { value: undefined, writable: true, enumerable: false, configurable: true };

/** The DeferredDests of a virtual server, while its dests are still those (undefined for any other). */
export function deferredDestsOf(vs: VirtualServer): DeferredDests | undefined {
  const dests = (vs as HoldsDeferredDests)[DEFERRED_DESTS];
  return dests === undefined || Array.isArray(dests) ? undefined : dests;
}

/** How many real servers a virtual server has, without making deferred ones. */
export function destCount(vs: VirtualServer): number {
  return ((vs as HoldsDeferredDests)[DEFERRED_DESTS] ?? vs.dests).length;
}

/** A virtual server as ipvsadm -A creates it (default scheduler wlc, as ipvsadm's own default). */
export function virtualServer(spec: VirtualServerSpec): VirtualServer {
  const family = spec.family ?? ipFamily(spec.address);
  if (family === undefined) throw new Error(`virtualServer: ${spec.address} is not an IP address`);
  const dests = spec.dests ?? [];
  if (!Array.isArray(dests)) return deferredVirtualServer(spec, family, dests);
  const vs: { -readonly [K in keyof VirtualServer]: VirtualServer[K] } = {
    family,
    protocol: spec.protocol,
    address: spec.address,
    port: spec.port,
    fwmark: spec.fwmark ?? 0,
    scheduler: spec.scheduler ?? 'wlc',
    flags: spec.flags ?? 0,
    timeoutSeconds: spec.timeoutSeconds ?? 0,
    netmaskPrefix: spec.netmaskPrefix ?? (family === 4 ? 32 : 128),
    pe: spec.pe ?? '',
    dests,
    stats: spec.stats ? { ...ZERO_STATS, ...spec.stats } : ZERO_STATS,
    rates: spec.rates ? { ...ZERO_RATES, ...spec.rates } : ZERO_RATES,
  };
  if (spec.origin) vs.origin = spec.origin;
  return vs;
}

/**
 * virtualServer with `dests` an accessor over DeferredDests: an own, enumerable property in the
 * same place, so spreading, JSON and deep equality see the same fields as a plain one's.
 */
function deferredVirtualServer(spec: VirtualServerSpec, family: Family, dests: DeferredDests): VirtualServer {
  const fields = {
    family,
    protocol: spec.protocol,
    address: spec.address,
    port: spec.port,
    fwmark: spec.fwmark ?? 0,
    scheduler: spec.scheduler ?? 'wlc',
    flags: spec.flags ?? 0,
    timeoutSeconds: spec.timeoutSeconds ?? 0,
    netmaskPrefix: spec.netmaskPrefix ?? (family === 4 ? 32 : 128),
    pe: spec.pe ?? '',
  };
  Object.defineProperty(fields, 'dests', DEFERRED_DESTS_ACCESSOR);
  const vs = fields as typeof fields & HoldsDeferredDests & { -readonly [K in keyof VirtualServer]: VirtualServer[K] };
  vs.stats = spec.stats ? { ...ZERO_STATS, ...spec.stats } : ZERO_STATS;
  vs.rates = spec.rates ? { ...ZERO_RATES, ...spec.rates } : ZERO_RATES;
  if (spec.origin) vs.origin = spec.origin;
  Object.defineProperty(vs, DEFERRED_DESTS, DEFERRED_DESTS_HOLDER);
  vs[DEFERRED_DESTS] = dests;
  return vs;
}

/** "ip:port" or "[ip]:port": how ipvsadm -n prints an address and how the schedulers key dests. */
export function destAddr(dest: Pick<RealServer, 'ip' | 'port'>): string {
  return joinHostPort(dest.ip, dest.port);
}

export function serviceAddr(vs: Pick<VirtualServer, 'address' | 'port'>): string {
  return joinHostPort(vs.address, vs.port);
}

/** kube-proxy's VirtualServer.String(): "10.96.0.10:53/UDP", the key of its active-service set. */
export function virtualServerKey(vs: Pick<VirtualServer, 'address' | 'port' | 'protocol'>): string {
  // Joined flat from a reused parts array: the key is hashed at once (a sync's map of servers),
  // and a concatenation is a tree of strings flattened into one more first (a big node has 14k).
  const address = vs.address;
  const parts = address.includes(':') ? IPV6_KEY_PARTS : IPV4_KEY_PARTS;
  const at = parts === IPV6_KEY_PARTS ? 1 : 0;
  parts[at] = address;
  parts[at + 2] = vs.port;
  parts[at + 4] = vs.protocol;
  return parts.join('');
}
const IPV4_KEY_PARTS: (string | number)[] = ['', ':', 0, '/', ''];
const IPV6_KEY_PARTS: (string | number)[] = ['[', '', ']:', 0, '/', ''];

export function isPersistent(vs: Pick<VirtualServer, 'flags'>): boolean {
  return (vs.flags & SVC_F_PERSISTENT) !== 0;
}

/** ipvsadm's "-b" flag names for this scheduler's SCHED1/SCHED2 bits (sh and mh name them). */
export function schedulerFlagNames(vs: Pick<VirtualServer, 'scheduler' | 'flags'>): string[] {
  const names: string[] = [];
  const named = vs.scheduler === 'sh' || vs.scheduler === 'mh';
  if (vs.flags & SVC_F_SCHED1) names.push(named ? `${vs.scheduler}-fallback` : 'flag-1');
  if (vs.flags & SVC_F_SCHED2) names.push(named ? `${vs.scheduler}-port` : 'flag-2');
  if (!named && vs.flags & SVC_F_SCHED3) names.push('flag-3');
  return names;
}
