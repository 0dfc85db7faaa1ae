/**
 * One IPVS virtual service, driven the way ipvsadm drives the kernel:
 *   createScheduler(name, opts)       ipvsadm -A -s name [-p timeout [-M netmask]] [-b flags]
 *   vs.addDest({addr, weight})        ipvsadm -a -r addr -w weight   (the dest goes to the FRONT)
 *   vs.removeDest(addr)               ipvsadm -d -r addr
 *   vs.setWeight(addr, weight)        ipvsadm -e -r addr -w weight
 * plus what the data path does for a new connection: `pick` schedules it (persistence templates
 * first, as ip_vs_sched_persist does), `connect` also binds it to the dest, and `close`, `expire`,
 * `bind` and `activate` move the dest's active/inactive counters as connections change state.
 *
 * The list order, the scheduler hooks (add/del/upd), the OVERLOAD thresholds, the trash (a deleted
 * dest that still has connections keeps its counters and comes back with them when re-added) and
 * the persistence templates follow net/netfilter/ipvs/ip_vs_ctl.c, ip_vs_conn.c and ip_vs_core.c.
 * Time is simulated seconds from an injected clock; the default clock is a manual one that starts
 * at 0 and moves only with `advance`.
 */
import { KpsimError, type Where } from '../errors.js';
import { dottedNetmaskPrefix, ipFamily, joinHostPort, parseCIDR, splitHostOptionalPort, splitHostPort, type Family } from '../util/ip.js';
import { DestList, type LinkedDest } from './schedulers/dest-list.js';
import { foldAddress } from './schedulers/hash.js';
import { seededRng } from '../util/random.js';
import { getScheduler } from './schedulers/registry.js';
import {
  schedulerFlagNames, type Dest, type Flow, type SchedulerFlag, type SchedulerName, type ServiceScheduler,
} from './schedulers/types.js';

export { schedulerNames, type SchedulerName, type SchedulerFlag } from './schedulers/types.js';

/** Which counter a connection is in: TCP states ESTABLISHED/SYN_* are active, everything else not. */
export type ConnState = 'active' | 'inactive';
export type ServiceProtocol = 'tcp' | 'udp' | 'sctp';

export interface PersistenceOptions {
  /** ipvsadm -p: how long a client sticks to its dest after its last new connection. */
  timeoutSeconds: number;
  /** ipvsadm -M: dotted IPv4 mask ("255.255.255.0") or prefix length; default the full address. */
  netmask?: string | number;
}

export interface VirtualServiceOptions {
  persistence?: PersistenceOptions;
  /** ipvsadm -b: sh-port, sh-fallback, mh-port, mh-fallback. */
  flags?: readonly string[];
  sysctl?: {
    /** net.ipv4.vs.expire_quiescent_template: a template to a weight-0 dest is dropped (kube-proxy sets 1). */
    expireQuiescentTemplate?: boolean;
  };
  /** Random source in [0, 1) for twos; default a fixed-seed generator, so runs repeat. */
  rng?: () => number;
  /** Clock in seconds for persistence templates and lblc/lblcr caches; default a manual clock. */
  now?: () => number;
  /** The service's own "ip:port": the destination address dh, lblc and lblcr hash. Sets the family. */
  address?: string;
  protocol?: ServiceProtocol;
}

export interface DestSpec {
  /** "ip:port", or "[ip]:port" for IPv6. */
  addr: string;
  /** 0-65535, as ipvsadm accepts; 0 quiesces the dest. */
  weight: number;
  /** Connections to count on the dest from the start (bound without scheduling). */
  activeConns?: number;
  inactConns?: number;
  /** ipvsadm -x: OVERLOAD when active + inactive reaches it; 0 = no limit. */
  upperThreshold?: number;
  /** ipvsadm -y: OVERLOAD clears below it; 0 = below 3/4 of the upper threshold. */
  lowerThreshold?: number;
}

export interface DestStatus {
  addr: string;
  weight: number;
  activeConns: number;
  inactConns: number;
}

export interface TemplateStatus {
  /** The client address after the persistence netmask. */
  client: string;
  addr: string;
  /** When the template's timer fires next (seconds on the service's clock). */
  expiresAt: number;
  /** Live connections it controls (only the connection table attaches them). */
  controls: number;
}

/** ipvsadm's weight range (-w 0..65535). */
const MAX_WEIGHT = 65535;
/** The kernel keeps thresholds in an int. */
const MAX_THRESHOLD = 2 ** 31 - 1;
/** ip_vs_conn_expire: a template that still controls connections is looked at again in 60 s. */
const TEMPLATE_RECHECK_SECONDS = 60;

/** A persistence template (a connection entry with IP_VS_CONN_F_TEMPLATE) for one client net. */
export class PersistenceTemplate {
  /** When the timer fires next; each new connection through the template re-arms it. */
  expiresAt: number;
  /** svc->timeout, or 60 s once the timer has fired while connections were still controlled. */
  timeoutSeconds: number;
  /** n_control: live connections created through this template. */
  controls = 0;
  /** When `controls` last dropped to 0 (the creation time while it never had any). */
  lastReleaseAt: number;

  constructor(readonly client: string, readonly dest: Dest, now: number, timeoutSeconds: number) {
    this.timeoutSeconds = timeoutSeconds;
    this.expiresAt = now + timeoutSeconds;
    this.lastReleaseAt = now;
  }

  /** A connection was created through the template (ip_vs_control_add). */
  control(): void {
    this.controls++;
  }

  /** A connection it controlled expired at `at` (ip_vs_control_del). */
  release(at: number): void {
    if (this.controls === 0) throw new Error('template released more often than controlled');
    if (--this.controls === 0) this.lastReleaseAt = at;
  }

  /**
   * The time the template expired by `now`, or undefined while it lives. Its timer fired at
   * `expiresAt`; if it still controlled connections then, the kernel put it off by 60 s and kept
   * 60 s as its timeout. Between two looks at a template its connection count can only fall (a
   * new connection always looks first), so the firing that finds it at 0 is the first one at or
   * after `lastReleaseAt`.
   */
  expiredBy(now: number): number | undefined {
    if (this.expiresAt > now) return undefined;
    if (this.controls === 0 && this.lastReleaseAt <= this.expiresAt) return this.expiresAt;
    const delays = this.controls === 0
      ? Math.ceil((this.lastReleaseAt - this.expiresAt) / TEMPLATE_RECHECK_SECONDS)
      : Math.floor((now - this.expiresAt) / TEMPLATE_RECHECK_SECONDS) + 1;
    const firing = this.expiresAt + delays * TEMPLATE_RECHECK_SECONDS;
    if (this.controls === 0 && firing <= now) return firing;
    this.expiresAt = firing;
    this.timeoutSeconds = TEMPLATE_RECHECK_SECONDS;
    return undefined;
  }
}

/** What scheduling a new connection produced: the dest, and the template that chose it. */
export interface Assignment {
  readonly dest: Dest;
  readonly template?: PersistenceTemplate;
}

interface ParsedClient {
  readonly flow: Flow;
  readonly family: Family;
  readonly ip: string;
  /** Memo of the persistence template key. */
  templateKey?: string;
}

/** Clients parsed so far (parsing an address is the costly part of a pick). */
const CLIENT_CACHE_LIMIT = 4096;

interface ManualClock {
  now: () => number;
  advance: (seconds: number) => void;
}

function manualClock(): ManualClock {
  let seconds = 0;
  return { now: () => seconds, advance: (by) => { seconds += by; } };
}

function isCount(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
}

/** ipvsadm -M: a prefix length, or a dotted IPv4 mask, as a prefix length; undefined when it is neither. */
function netmaskPrefix(mask: string | number): number | undefined {
  if (typeof mask === 'number') return Number.isInteger(mask) && mask >= 0 && mask <= 128 ? mask : undefined;
  if (/^\d{1,3}$/.test(mask)) return netmaskPrefix(Number.parseInt(mask, 10));
  return dottedNetmaskPrefix(mask);
}

export class VirtualService {
  readonly scheduler: SchedulerName;
  readonly protocol: ServiceProtocol;
  readonly flags: readonly SchedulerFlag[];
  /** undefined when the service is not persistent. */
  readonly persistence: { readonly timeoutSeconds: number; readonly prefixLength: number | undefined } | undefined;
  readonly expireQuiescentTemplate: boolean;

  readonly #list = new DestList();
  readonly #byAddr = new Map<string, LinkedDest>();
  /** Deleted dests that still have connections (the kernel's dest trash), by addr. */
  readonly #trash = new Map<string, LinkedDest>();
  readonly #sched: ServiceScheduler;
  readonly #now: () => number;
  readonly #manualClock: ManualClock | undefined;
  readonly #templates = new Map<string, PersistenceTemplate>();
  readonly #clients = new Map<string, ParsedClient>();
  #family: Family | undefined;
  #address: string | undefined;
  #dstIP: string;
  #dstFold: number;
  #nextSeq = 1;
  readonly #where: Where;

  constructor(name: string, opts: VirtualServiceOptions = {}) {
    this.#where = opts.address === undefined ? {} : { object: `virtual service ${opts.address}` };
    const scheduler = getScheduler(name, this.#where);
    this.scheduler = scheduler.name;
    this.protocol = opts.protocol ?? 'tcp';
    if (!['tcp', 'udp', 'sctp'].includes(this.protocol)) this.#usage('protocol', `${String(this.protocol)} is not tcp, udp or sctp`);

    // The packet's destination (what dh, lblc and lblcr hash) is the service's own address.
    this.#dstIP = '0.0.0.0';
    if (opts.address !== undefined) {
      const hostPort = splitHostPort(opts.address);
      if (!hostPort) this.#usage('address', `${opts.address} is not "ip:port"`);
      this.#address = opts.address;
      this.#family = ipFamily(hostPort.ip);
      this.#dstIP = hostPort.ip;
    }
    this.#dstFold = foldAddress(this.#dstIP);

    const flags = opts.flags ?? [];
    for (const flag of flags) {
      if (!(schedulerFlagNames as readonly string[]).includes(flag)) {
        this.#usage('flags', `unknown scheduler flag ${JSON.stringify(flag)}: valid flags are ${schedulerFlagNames.join(', ')}`);
      }
      // ipvsadm refuses sh-* flags on a non-sh service and mh-* flags on a non-mh one.
      const owner = flag.slice(0, 2);
      if (owner !== this.scheduler) this.#usage('flags', `${flag} is a flag of the ${owner} scheduler, not of ${this.scheduler}`);
    }
    this.flags = [...new Set(flags as readonly SchedulerFlag[])];
    for (const [name, value] of [['rng', opts.rng], ['now', opts.now]] as const) {
      if (value !== undefined && typeof value !== 'function') this.#usage(name, `${name} must be a function`);
    }

    this.persistence = opts.persistence === undefined ? undefined : this.#persistenceOf(opts.persistence);
    this.expireQuiescentTemplate = opts.sysctl?.expireQuiescentTemplate ?? false;

    if (opts.now !== undefined) {
      this.#now = opts.now;
    } else {
      this.#manualClock = manualClock();
      this.#now = this.#manualClock.now;
    }
    this.#sched = scheduler.init(
      { dests: this.#list, flags: new Set(this.flags) },
      { now: this.#now, rng: opts.rng ?? seededRng(0) },
    );
  }

  /** The service's "ip:port" when it was given one. */
  get address(): string | undefined {
    return this.#address;
  }

  /** The service's clock, in seconds. */
  now(): number {
    return this.#now();
  }

  /** Move the default manual clock forward. A service given `now` is advanced by its owner. */
  advance(seconds: number): void {
    if (this.#manualClock === undefined) this.#usage('now', 'the clock was supplied as opts.now; advance that clock instead');
    if (!(Number.isFinite(seconds) && seconds >= 0)) this.#usage('seconds', `${seconds} is not a number of seconds >= 0`);
    this.#manualClock.advance(seconds);
  }

  // ---- ipvsadm -a / -d / -e ----

  /** ip_vs_add_dest: the dest is linked at the FRONT of the list, then the add hook runs. */
  addDest(spec: DestSpec): void {
    const where = { ...this.#where, path: 'addr' };
    const hostPort = typeof spec?.addr === 'string' ? splitHostPort(spec.addr) : undefined;
    if (!hostPort) throw new KpsimError('KPSIM_ERR_IPVS_BAD_DEST', `${String(spec?.addr)} is not "ip:port" or "[ip]:port"`, where);
    const family = ipFamily(hostPort.ip)!;
    if (this.#family !== undefined && family !== this.#family) {
      throw new KpsimError('KPSIM_ERR_IPVS_BAD_DEST', `${spec.addr} is IPv${family} but the service is IPv${this.#family} (masquerading keeps the family)`, where);
    }
    this.#checkDestNumbers(spec);
    const addr = joinHostPort(hostPort.ip, hostPort.port);
    if (this.#byAddr.has(addr)) throw new KpsimError('KPSIM_ERR_IPVS_DUPLICATE_DEST', `${addr} is already a real server of this service`, where);
    this.#family = family;

    // A dest deleted while it still had connections comes back from the trash with its counters
    // (ip_vs_trash_get_dest), and its templates become valid again.
    if (this.#trash.has(addr)) this.#sweepTemplates(this.#now());
    let dest = this.#trash.get(addr);
    if (dest !== undefined) {
      this.#trash.delete(addr);
    } else {
      dest = {
        addr, ip: hostPort.ip, port: hostPort.port, family, ipFold: foldAddress(hostPort.ip),
        weight: 0, lastWeight: 0, activeConns: 0, inactConns: 0, persistConns: 0,
        upperThreshold: 0, lowerThreshold: 0, overloaded: false, available: false, seq: 0, heapIndex: -1,
      } as LinkedDest;
    }
    if (spec.activeConns !== undefined) dest.activeConns = spec.activeConns;
    if (spec.inactConns !== undefined) dest.inactConns = spec.inactConns;
    this.#updateDest(dest, spec.weight, spec.upperThreshold ?? 0, spec.lowerThreshold ?? 0, true);
    if (dest.upperThreshold !== 0 && this.#totalConns(dest) >= dest.upperThreshold) dest.overloaded = true;
    dest.seq = this.#nextSeq++;
    this.#byAddr.set(addr, dest);
    this.#list.addFront(dest);
    this.#sched.addDest?.(dest);
  }

  /** ip_vs_del_dest: unlink, then the del hook. A dest with connections left goes to the trash. */
  removeDest(addr: string): void {
    const dest = this.#destInList(addr);
    dest.available = false;
    this.#byAddr.delete(dest.addr);
    this.#list.remove(dest);
    this.#sched.delDest?.(dest);
    // Connections and templates still hold the dest: it waits in the trash. Its templates are
    // found invalid when next looked up, unless the dest was re-added by then.
    if (this.#isReferenced(dest)) this.#trash.set(dest.addr, dest);
  }

  /** ipvsadm -e -w: an edit keeps the list position and the thresholds, then the upd hook runs. */
  setWeight(addr: string, weight: number): void {
    const dest = this.#destInList(addr);
    if (!isCount(weight, MAX_WEIGHT)) throw new KpsimError('KPSIM_ERR_IPVS_BAD_DEST', `weight ${String(weight)} is not an integer from 0 to ${MAX_WEIGHT}`, { ...this.#where, path: 'weight' });
    this.#updateDest(dest, weight, dest.upperThreshold, dest.lowerThreshold, false);
    this.#sched.updDest?.(dest);
  }

  // ---- the data path ----

  /**
   * Schedule one new connection from `client` ("ip:port"; default the unspecified address, port
   * 0) and return the chosen dest's addr, or undefined when no dest is available. Persistence
   * templates are consulted and created; the connection counters do not change.
   */
  pick(client?: string): string | undefined {
    return this.assign(client)?.dest.addr;
  }

  /** `pick`, then bind the connection to the dest in the given counter. */
  connect(client?: string, state: ConnState = 'active'): string | undefined {
    const assignment = this.assign(client);
    if (assignment === undefined) return undefined;
    this.#bindDest(assignment.dest, state);
    return assignment.dest.addr;
  }

  /**
   * One active connection of the dest becomes inactive (a TCP FIN or RST; set_tcp_state leaving
   * the active states). A deleted dest's connections still can.
   */
  close(addr: string): void {
    this.#moveConn(addr, 'active', 'inactive');
  }

  /** One inactive connection of the dest becomes active (set_tcp_state entering an active state, e.g. a SYN). */
  activate(addr: string): void {
    this.#moveConn(addr, 'inactive', 'active');
  }

  /** A connection of the dest expired (ip_vs_unbind_dest); a deleted dest's connections still can. */
  expire(addr: string, state: ConnState = 'inactive'): void {
    const dest = this.#destWithConns(addr);
    this.#requireConn(dest, state);
    this.#unbindDest(dest, state);
  }

  /**
   * Count a connection on a dest of the service (ip_vs_bind_dest: the upper threshold is
   * checked) without scheduling it: the caller placed it.
   */
  bind(addr: string, state: ConnState): void {
    this.#bindDest(this.#destInList(addr), state);
  }

  /** The dests in list order (front first), with their counters. */
  dests(): DestStatus[] {
    return this.#list.toArray().map((d) => ({ addr: d.addr, weight: d.weight, activeConns: d.activeConns, inactConns: d.inactConns }));
  }

  /** The persistence templates alive now. */
  templates(): TemplateStatus[] {
    const now = this.#now();
    this.#sweepTemplates(now);
    return [...this.#templates.values()].map((t) => ({ client: t.client, addr: t.dest.addr, expiresAt: t.expiresAt, controls: t.controls }));
  }

  // ---- for the connection table ----

  /**
   * Schedule a new connection: through a valid persistence template if there is one (the
   * scheduler is not called then, and the template is re-armed), otherwise by the scheduler,
   * creating a template for a persistent service.
   */
  assign(client?: string): Assignment | undefined {
    const parsed = this.#client(client);
    if (this.persistence === undefined) {
      const dest = this.#sched.schedule(parsed.flow);
      return dest === undefined ? undefined : { dest };
    }
    return this.#assignPersistent(parsed);
  }

  // ---- internals ----

  #assignPersistent(client: ParsedClient): Assignment | undefined {
    const now = this.#now();
    const key = this.#templateKey(client);
    let template = this.#templates.get(key);
    if (template !== undefined) template = this.#settleTemplate(template, now);
    // ip_vs_check_template: the template's dest must still be in the service and, with
    // expire_quiescent_template, have a weight.
    if (template !== undefined && (!template.dest.available || (this.expireQuiescentTemplate && template.dest.weight === 0))) {
      this.#removeTemplate(template);
      template = undefined;
    }
    if (template !== undefined) {
      // ip_vs_conn_put(ct) re-arms the template's timer with its current timeout.
      template.expiresAt = now + template.timeoutSeconds;
      return { dest: template.dest, template };
    }
    const dest = this.#sched.schedule(client.flow);
    if (dest === undefined) return undefined;
    template = new PersistenceTemplate(key, dest, now, this.persistence!.timeoutSeconds);
    this.#templates.set(key, template);
    dest.persistConns++;
    return { dest, template };
  }

  /** The template if it is still alive at `now`; an expired one is removed. */
  #settleTemplate(template: PersistenceTemplate, now: number): PersistenceTemplate | undefined {
    if (template.expiredBy(now) === undefined) return template;
    this.#removeTemplate(template);
    return undefined;
  }

  #removeTemplate(template: PersistenceTemplate): void {
    if (this.#templates.get(template.client) === template) this.#templates.delete(template.client);
    template.dest.persistConns--;
    this.#leaveTrashIfUnreferenced(template.dest);
  }

  /** Remove the templates that expired by now. */
  #sweepTemplates(now: number): void {
    for (const template of [...this.#templates.values()]) this.#settleTemplate(template, now);
  }

  #isReferenced(dest: Dest): boolean {
    return this.#totalConns(dest) > 0 || dest.persistConns > 0;
  }

  /** A deleted dest nothing refers to any more is freed (it can no longer come back with counters). */
  #leaveTrashIfUnreferenced(dest: Dest): void {
    if (!dest.available && !this.#isReferenced(dest)) this.#trash.delete(dest.addr);
  }

  /** The client address masked with the persistence netmask: the template's identity. */
  #templateKey(client: ParsedClient): string {
    if (client.templateKey !== undefined) return client.templateKey;
    const bits = client.family === 4 ? 32 : 128;
    const prefix = Math.min(this.persistence!.prefixLength ?? bits, bits);
    const key = prefix === bits ? client.ip : parseCIDR(`${client.ip}/${prefix}`)!.network;
    client.templateKey = key;
    return key;
  }

  #client(client: string | undefined): ParsedClient {
    const text = client ?? '';
    let parsed = this.#clients.get(text);
    if (parsed !== undefined) return parsed;
    let ip: string | undefined;
    let port = 0;
    if (client === undefined) {
      ip = this.#family === 6 ? '::' : '0.0.0.0';
    } else {
      const address = splitHostOptionalPort(client);
      ip = address?.ip;
      port = address?.port ?? 0;
    }
    if (ip === undefined) this.#usage('client', `${text} is not "ip:port" or "[ip]:port"`);
    const family = ipFamily(ip)!;
    if (this.#family !== undefined && family !== this.#family) this.#usage('client', `${text} is IPv${family} but the service is IPv${this.#family}`);
    parsed = { ip, family, flow: { srcFold: foldAddress(ip), srcPort: port, dstIP: this.#dstIP, dstFold: this.#dstFold } };
    // Until the first dest fixes the family, a client is not remembered (its family is unchecked).
    if (this.#family !== undefined) {
      if (this.#clients.size >= CLIENT_CACHE_LIMIT) this.#clients.clear();
      this.#clients.set(text, parsed);
    }
    return parsed;
  }

  /** __ip_vs_update_dest: weight, last_weight, thresholds and the OVERLOAD flag. */
  #updateDest(dest: LinkedDest, weight: number, upper: number, lower: number, add: boolean): void {
    if (add || weight !== 0) dest.lastWeight = weight;
    dest.weight = weight;
    dest.available = true;
    if (upper === 0 || upper > dest.upperThreshold) dest.overloaded = false;
    dest.upperThreshold = upper;
    dest.lowerThreshold = lower;
  }

  #bindDest(dest: Dest, state: ConnState): void {
    if (state === 'active') dest.activeConns++; else dest.inactConns++;
    if (dest.upperThreshold !== 0 && this.#totalConns(dest) >= dest.upperThreshold) dest.overloaded = true;
    this.#sched.countersChanged?.(dest);
  }

  #moveConn(addr: string, from: ConnState, to: ConnState): void {
    const dest = this.#destWithConns(addr);
    this.#requireConn(dest, from);
    if (from === 'active') dest.activeConns--; else dest.inactConns--;
    if (to === 'active') dest.activeConns++; else dest.inactConns++;
    this.#sched.countersChanged?.(dest);
  }

  #unbindDest(dest: Dest, state: ConnState): void {
    if (state === 'active') dest.activeConns--; else dest.inactConns--;
    const total = this.#totalConns(dest);
    if (dest.lowerThreshold !== 0) {
      if (total < dest.lowerThreshold) dest.overloaded = false;
    } else if (dest.upperThreshold !== 0) {
      if (total * 4 < dest.upperThreshold * 3) dest.overloaded = false;
    } else {
      dest.overloaded = false;
    }
    this.#sched.countersChanged?.(dest);
    this.#leaveTrashIfUnreferenced(dest);
  }

  #totalConns(dest: Dest): number {
    return dest.activeConns + dest.inactConns;
  }

  #checkDestNumbers(spec: DestSpec): void {
    const bad = (path: string, detail: string): never => {
      throw new KpsimError('KPSIM_ERR_IPVS_BAD_DEST', detail, { ...this.#where, path });
    };
    if (!isCount(spec.weight, MAX_WEIGHT)) bad('weight', `weight ${String(spec.weight)} is not an integer from 0 to ${MAX_WEIGHT}`);
    for (const field of ['activeConns', 'inactConns'] as const) {
      const value = spec[field];
      if (value !== undefined && !isCount(value, Number.MAX_SAFE_INTEGER)) bad(field, `${field} ${String(value)} is not a count`);
    }
    const upper = spec.upperThreshold ?? 0;
    const lower = spec.lowerThreshold ?? 0;
    if (!isCount(upper, MAX_THRESHOLD)) bad('upperThreshold', `upper threshold ${String(upper)} is not an integer from 0 to ${MAX_THRESHOLD}`);
    if (!isCount(lower, MAX_THRESHOLD)) bad('lowerThreshold', `lower threshold ${String(lower)} is not an integer from 0 to ${MAX_THRESHOLD}`);
    // ip_vs_add_dest refuses l_threshold > u_threshold (-ERANGE).
    if (lower > upper) bad('lowerThreshold', `lower threshold ${lower} is above the upper threshold ${upper}`);
  }

  #persistenceOf(persistence: PersistenceOptions): { timeoutSeconds: number; prefixLength: number | undefined } {
    const { timeoutSeconds, netmask } = persistence;
    if (!(Number.isInteger(timeoutSeconds) && timeoutSeconds >= 1)) this.#usage('persistence.timeoutSeconds', `${String(timeoutSeconds)} is not a whole number of seconds >= 1`);
    if (netmask === undefined) return { timeoutSeconds, prefixLength: undefined };
    const prefixLength = netmaskPrefix(netmask);
    if (prefixLength === undefined) this.#usage('persistence.netmask', `${String(netmask)} is not a dotted netmask or a prefix length`);
    if (typeof netmask === 'string' && netmask.includes('.') && this.#family === 6) this.#usage('persistence.netmask', 'an IPv6 service takes a prefix length, not a dotted netmask');
    if (prefixLength > 32 && this.#family !== 6) this.#usage('persistence.netmask', `prefix length ${prefixLength} needs an IPv6 service address`);
    return { timeoutSeconds, prefixLength };
  }

  #destInList(addr: string): LinkedDest {
    const dest = this.#byAddr.get(addr) ?? this.#byAddr.get(this.#canonicalAddr(addr));
    if (dest === undefined) throw new KpsimError('KPSIM_ERR_IPVS_UNKNOWN_DEST', `${addr} is not a real server of this service`, { ...this.#where, path: 'addr' });
    return dest;
  }

  /** A dest of the service, or a deleted one whose connections have not all expired yet. */
  #destWithConns(addr: string): Dest {
    const found = this.#byAddr.get(addr) ?? this.#trash.get(addr);
    if (found !== undefined) return found;
    const key = this.#canonicalAddr(addr);
    const dest = this.#byAddr.get(key) ?? this.#trash.get(key);
    if (dest === undefined) throw new KpsimError('KPSIM_ERR_IPVS_UNKNOWN_DEST', `${addr} is not a real server of this service`, { ...this.#where, path: 'addr' });
    return dest;
  }

  #requireConn(dest: Dest, state: ConnState): void {
    const count = state === 'active' ? dest.activeConns : dest.inactConns;
    if (count === 0) this.#usage('addr', `${dest.addr} has no ${state} connection`);
  }

  /** The addr as the service keys it ("[ip6]:port", normalised); unparsable text stays as it is. */
  #canonicalAddr(addr: string): string {
    const hostPort = typeof addr === 'string' ? splitHostPort(addr) : undefined;
    if (!hostPort) return addr;
    return joinHostPort(hostPort.ip, hostPort.port);
  }

  #usage(path: string, detail: string): never {
    throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', detail, { ...this.#where, path });
  }
}

/** ipvsadm -A -s name: a new, empty virtual service. */
export function createScheduler(name: string, opts: VirtualServiceOptions = {}): VirtualService {
  return new VirtualService(name, opts);
}
