/**
 * The kernel's IPVS scheduler ops table (include/net/ip_vs.h, struct ip_vs_scheduler), in
 * TypeScript: one `Scheduler` per algorithm, and per virtual service one `ServiceScheduler` that
 * owns what the kernel keeps in `svc->sched_data` (the rr cursor, wrr's cl/cw/mw/di, the sh and mh
 * lookup tables, the lblc cache).
 *
 * The real servers ("dests") live in a `DestList` that keeps the kernel's list order: a new dest is
 * inserted at the FRONT, and every scheduler scans from the front.
 */
import type { Family } from '../../util/ip.js';
import type { DestList } from './dest-list.js';

/** Every scheduler the kernel ships, exactly as ipvsadm prints them. */
export const schedulerNames = [
  'rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos',
] as const;

export type SchedulerName = (typeof schedulerNames)[number];

/**
 * The scheduler flags of `ipvsadm -b`. sh and mh give sched-flag-1 and sched-flag-2 these names;
 * the kernel stores them as the same two bits (IP_VS_SVC_F_SCHED1 = fallback, SCHED2 = port).
 */
export const schedulerFlagNames = ['sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'] as const;
export type SchedulerFlag = (typeof schedulerFlagNames)[number];

/** A real server of one virtual service, with the fields the schedulers read. */
export interface Dest {
  /** "ip:port", or "[ip]:port" for IPv6, normalised. */
  readonly addr: string;
  readonly ip: string;
  readonly port: number;
  readonly family: Family;
  /** The address folded to 32 bits as the hashing schedulers see it (ntohl(addr_fold)). */
  readonly ipFold: number;
  weight: number;
  /** The latest non-zero weight (0 only if added with weight 0); mh builds its table from it. */
  lastWeight: number;
  activeConns: number;
  inactConns: number;
  /** Persistence templates bound to this dest (ipvsadm's PersistConn). */
  persistConns: number;
  /** ipvsadm -x; 0 = no limit. */
  upperThreshold: number;
  /** ipvsadm -y; 0 = derive from the upper threshold. */
  lowerThreshold: number;
  /** IP_VS_DEST_F_OVERLOAD: set when a bind reaches the upper threshold. */
  overloaded: boolean;
  /** IP_VS_DEST_F_AVAILABLE: false once the dest was deleted (it may linger in the trash). */
  available: boolean;
  /**
   * Insertion sequence number: a larger number was added later, so it sits nearer the front.
   * List order is therefore descending `seq`, which lets an index order ties as the list does.
   */
  seq: number;
  /** Position in the least-connection index of its service, -1 when not in it (the index's own). */
  heapIndex: number;
}

/** The packet fields a scheduler hashes on: the new connection's source and destination. */
export interface Flow {
  /** Source address folded to 32 bits (ntohl of the address, or of the XOR of IPv6's words). */
  readonly srcFold: number;
  readonly srcPort: number;
  /** The packet's destination address (the virtual service's address), normalised. */
  readonly dstIP: string;
  readonly dstFold: number;
}

/** What a scheduler may read of its virtual service. */
export interface SchedulerService {
  readonly dests: DestList;
  readonly flags: ReadonlySet<SchedulerFlag>;
}

/** Sources the pure code is given rather than reaching for: a seconds clock and a random source. */
export interface SchedulerContext {
  /** Simulated time in seconds. */
  readonly now: () => number;
  /** Uniform in [0, 1), like Math.random. Only twos draws from it. */
  readonly rng: () => number;
}

/** A scheduler's state for one virtual service (the kernel's svc->sched_data plus its hooks). */
export interface ServiceScheduler {
  /** Pick the dest for a new connection; undefined is the kernel's "no destination available". */
  schedule(flow: Flow): Dest | undefined;
  /** ip_vs_scheduler.add_dest: called after the dest was linked at the front of the list. */
  addDest?(dest: Dest): void;
  /** ip_vs_scheduler.del_dest: called after the dest was unlinked. */
  delDest?(dest: Dest): void;
  /** ip_vs_scheduler.upd_dest: called after an edit (weight or thresholds). */
  updDest?(dest: Dest): void;
  /**
   * Not a kernel hook: the dest's counters or its OVERLOAD flag changed. Schedulers that keep an
   * index over the counters (the least-connection family) refresh it here; the pick stays the one
   * the kernel's linear scan would make.
   */
  countersChanged?(dest: Dest): void;
}

export interface Scheduler {
  readonly name: SchedulerName;
  /** ip_vs_scheduler.init_service: the service may already have dests. */
  init(service: SchedulerService, context: SchedulerContext): ServiceScheduler;
}

/** The kernel's test for "may take a new connection": weight > 0 and not OVERLOAD. */
export function isAvailable(dest: Dest): boolean {
  return dest.weight > 0 && !dest.overloaded;
}

/** include/net/ip_vs.h ip_vs_dest_conn_overhead: an active connection costs 256 inactive ones. */
export function connOverhead(dest: Dest): number {
  return dest.activeConns * 256 + dest.inactConns;
}
