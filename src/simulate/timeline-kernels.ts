/**
 * What holds a node's connections while its rules change, per kind of connection table (each
 * mode's driver says which it uses): the kernel's conntrack in front of the rules (iptables and
 * nftables modes), or IPVS's own connection table.
 *
 * Each kernel places new connections as the mode does now, follows a connection's later packets
 * as the kernel would (by its entry, not by the rules), and is reprogrammed when kube-proxy's
 * sync brings new rules:
 * - conntrack: a new picker for new flows (the rules walked with the kernel's draw); entries keep
 *   their endpoint; with kube-proxy's cleanup, UDP entries to an endpoint that is no longer
 *   serving are deleted (src/conntrack/cleanup.ts), so their next packet is placed again;
 * - IPVS: real servers added and deleted as kube-proxy's syncEndpoint does, a TCP one with
 *   connections drained at weight 0 and deleted once they are gone (its graceful termination
 *   manager looks every minute), a UDP one deleted at once; with expire_nodest_conn (kube-proxy
 *   sets it) a packet for a connection whose real server was deleted expires the connection and
 *   is dropped, and the next packet is scheduled anew.
 */
import { cleanStaleEntries } from '../conntrack/cleanup.js';
import { type ConntrackEntry, ConntrackTable } from '../conntrack/table.js';
import { ConnTable, type Connection } from '../ipvs/conn-table.js';
import { liveServiceOf } from '../ipvs/live-service.js';
import { destAddr, type VirtualServer } from '../ipvs/table.js';
import type { VirtualService } from '../ipvs/virtual-service.js';
import type { CompiledNode, ModeDriver, SimulationTarget } from '../node/mode-driver.js';
import type { CompiledIpvsNode } from '../node/modes/ipvs.js';
import type { ProxierState } from '../tracker/types.js';
import type { PickedConnection, Picker } from './picker.js';

/** What one packet of an open connection met. */
export type PacketOutcome =
  | { readonly kind: 'delivered'; readonly endpoint: string }
  /** UDP to an endpoint whose pod is gone: the packet is lost, the flow goes on. */
  | { readonly kind: 'blackholed'; readonly endpoint: string }
  /** TCP to an endpoint whose pod is gone, or the service is gone: the connection is over. */
  | { readonly kind: 'broken'; readonly endpoint: string | undefined }
  /** The flow was placed again (its entry was gone) and went to another endpoint. */
  | { readonly kind: 'rebalanced'; readonly from: string; readonly to: string };

export interface KernelConnection {
  readonly client: string;
  endpoint: string;
}

export interface TimelineKernel {
  /** A new connection now; undefined when it is refused (no endpoint, no service). */
  open(client: string, now: number): KernelConnection | undefined;
  packet(conn: KernelConnection, now: number, alive: (endpoint: string) => boolean): PacketOutcome;
  close(conn: KernelConnection, now: number): void;
  /** kube-proxy synced: the rules of `compiled` from now on (target undefined: the service is gone). */
  reprogram(compiled: CompiledNode, target: SimulationTarget | undefined, state: ProxierState, now: number): void;
  /** Periodic work due by `now` (IPVS's graceful termination checks). */
  advance(now: number): void;
}

export interface KernelOptions {
  readonly seed: number;
  readonly protocol: 'tcp' | 'udp';
  /** "ip:port" connections are made to. */
  readonly destination: string;
  /** kube-proxy's stale-UDP conntrack cleanup after each sync. */
  readonly conntrackCleanup: boolean;
}

/** conntrack + the rules: iptables and nftables modes. */
export class ConntrackKernel implements TimelineKernel {
  readonly #table = new ConntrackTable();
  readonly #entries = new WeakMap<KernelConnection, { entry: ConntrackEntry; picked: PickedConnection }>();
  #picker: Picker | undefined;
  #seed: number;

  constructor(private readonly driver: ModeDriver<CompiledNode>, private readonly options: KernelOptions) {
    this.#seed = options.seed;
  }

  reprogram(compiled: CompiledNode, target: SimulationTarget | undefined, state: ProxierState, now: number): void {
    // A new walk of the new rules; its random draws continue from another seed.
    this.#picker = target === undefined ? undefined : this.driver.picker(compiled, target, { seed: this.#seed++ });
    this.#picker?.advanceTo(now);
    if (this.options.conntrackCleanup && this.options.protocol === 'udp') cleanStaleEntries(this.#table, state);
  }

  open(client: string, now: number): KernelConnection | undefined {
    const picked = this.#pick(client, now);
    if (picked === undefined) return undefined;
    const conn: KernelConnection = { client, endpoint: picked.addr };
    const entry = this.#table.create(this.#flow(client), picked.addr, now);
    this.#entries.set(conn, { entry, picked });
    return conn;
  }

  packet(conn: KernelConnection, now: number, alive: (endpoint: string) => boolean): PacketOutcome {
    const held = this.#entries.get(conn);
    const entry = this.#table.lookup(this.#flow(conn.client), now);
    if (entry === undefined || held === undefined) {
      // The entry is gone (cleaned up, or timed out): the packet is a new flow for the rules.
      if (this.options.protocol === 'tcp') return { kind: 'broken', endpoint: conn.endpoint };
      held?.picked.close();
      const picked = this.#pick(conn.client, now);
      if (picked === undefined) return { kind: 'broken', endpoint: conn.endpoint };
      const fresh = this.#table.create(this.#flow(conn.client), picked.addr, now);
      this.#table.refresh(fresh, now, alive(picked.addr));
      this.#entries.set(conn, { entry: fresh, picked });
      const from = conn.endpoint;
      conn.endpoint = picked.addr;
      return from === picked.addr ? { kind: 'delivered', endpoint: from } : { kind: 'rebalanced', from, to: picked.addr };
    }
    const endpoint = entry.dnat ?? conn.endpoint;
    if (!alive(endpoint)) {
      if (this.options.protocol === 'tcp') return { kind: 'broken', endpoint };
      // The client's datagram still refreshes the entry: a flow that keeps sending keeps it.
      this.#table.refresh(entry, now, false);
      return { kind: 'blackholed', endpoint };
    }
    this.#table.refresh(entry, now, true);
    return { kind: 'delivered', endpoint };
  }

  close(conn: KernelConnection, now: number): void {
    const held = this.#entries.get(conn);
    if (held === undefined) return;
    held.picked.close();
    const entry = this.#table.lookup(this.#flow(conn.client), now);
    if (entry !== undefined) this.#table.close(entry, now);
  }

  advance(now: number): void {
    this.#picker?.advanceTo(now);
  }

  #pick(client: string, now: number): PickedConnection | undefined {
    if (this.#picker === undefined) return undefined;
    this.#picker.advanceTo(now);
    return this.#picker.pick(client);
  }

  #flow(client: string) {
    return { protocol: this.options.protocol, src: client, dst: this.options.destination };
  }
}

/** How often kube-proxy's graceful termination manager looks at draining real servers. */
const GRACEFUL_CHECK_SECONDS = 60;

/** IPVS's connection table: IPVS mode. */
export class IpvsKernel implements TimelineKernel {
  #vs: VirtualService | undefined;
  #table: ConnTable | undefined;
  readonly #conns = new WeakMap<KernelConnection, Connection>();
  /** TCP real servers kube-proxy is draining (weight 0) until their connections end. */
  readonly #draining = new Set<string>();
  #nextCheck = GRACEFUL_CHECK_SECONDS;

  constructor(private readonly options: KernelOptions) {}

  reprogram(compiled: CompiledNode, target: SimulationTarget | undefined, _state: ProxierState, now: number): void {
    const desired = target === undefined ? undefined : virtualServerOf(compiled as CompiledIpvsNode, target);
    if (desired === undefined) {
      // kube-proxy deletes the virtual service; its connections die with it.
      this.#vs = undefined;
      this.#table = undefined;
      return;
    }
    if (this.#vs === undefined) {
      this.#vs = liveServiceOf(desired, {});
      this.#vs.advance(now - this.#vs.now());
      this.#table = new ConnTable(this.#vs, { expireNodestConn: true });
      return;
    }
    const vs = this.#vs;
    this.advance(now);
    const want = new Set(desired.dests.filter((d) => d.weight > 0).map((d) => destAddr(d)));
    for (const dest of vs.dests()) {
      if (want.has(dest.addr)) {
        if (this.#draining.delete(dest.addr)) vs.setWeight(dest.addr, 1);
        continue;
      }
      if (this.#draining.has(dest.addr)) continue;
      // Graceful termination: only TCP waits for its connections.
      if (this.options.protocol === 'tcp' && dest.activeConns + dest.inactConns > 0) {
        vs.setWeight(dest.addr, 0);
        this.#draining.add(dest.addr);
      } else {
        vs.removeDest(dest.addr);
      }
    }
    const have = new Set(vs.dests().map((d) => d.addr));
    // ipvsadm -a adds each in front: add in reverse list order, as the compiled table was built.
    for (let i = desired.dests.length - 1; i >= 0; i--) {
      const dest = desired.dests[i]!;
      if (dest.weight > 0 && !have.has(destAddr(dest))) vs.addDest({ addr: destAddr(dest), weight: 1 });
    }
  }

  open(client: string, now: number): KernelConnection | undefined {
    const table = this.#at(now);
    if (table === undefined) return undefined;
    const opened = table.open(client);
    if (opened === undefined) return undefined;
    const conn = (this.options.protocol === 'tcp' ? table.establish(opened) : opened) ?? opened;
    const kc: KernelConnection = { client, endpoint: conn.addr };
    this.#conns.set(kc, conn);
    return kc;
  }

  packet(kc: KernelConnection, now: number, alive: (endpoint: string) => boolean): PacketOutcome {
    const table = this.#at(now);
    if (table === undefined) return { kind: 'broken', endpoint: kc.endpoint };
    const conn = this.#conns.get(kc);
    if (conn === undefined) {
      // Expired by expire_nodest_conn at its last packet: this one is scheduled anew.
      if (this.options.protocol === 'tcp') return { kind: 'broken', endpoint: kc.endpoint };
      const opened = table.open(kc.client);
      if (opened === undefined) return { kind: 'broken', endpoint: kc.endpoint };
      this.#conns.set(kc, opened);
      const from = kc.endpoint;
      kc.endpoint = opened.addr;
      return from === opened.addr ? { kind: 'delivered', endpoint: from } : { kind: 'rebalanced', from, to: opened.addr };
    }
    if (!alive(conn.addr) && this.#vs!.dests().some((d) => d.addr === conn.addr)) {
      // The real server is still in the table but its pod is gone.
      if (this.options.protocol === 'tcp') return { kind: 'broken', endpoint: conn.addr };
      table.packet(conn, 'input');
      return { kind: 'blackholed', endpoint: conn.addr };
    }
    const after = table.packet(conn, 'input', { ack: true });
    if (after === undefined) {
      // expire_nodest_conn: the real server was deleted; the connection is expired and this
      // packet dropped (its conntrack entry was confirmed), the next one scheduled anew.
      this.#conns.delete(kc);
      return this.options.protocol === 'tcp' ? { kind: 'broken', endpoint: conn.addr } : { kind: 'blackholed', endpoint: conn.addr };
    }
    if (!alive(after.addr)) return this.options.protocol === 'tcp' ? { kind: 'broken', endpoint: after.addr } : { kind: 'blackholed', endpoint: after.addr };
    this.#conns.set(kc, after);
    return { kind: 'delivered', endpoint: after.addr };
  }

  close(kc: KernelConnection, now: number): void {
    const table = this.#at(now);
    const conn = this.#conns.get(kc);
    if (table !== undefined && conn !== undefined) table.closeFromClient(conn);
  }

  advance(now: number): void {
    this.#at(now);
  }

  /** The table with its clock at `now`, after the graceful-termination checks due by then. */
  #at(now: number): ConnTable | undefined {
    const table = this.#table;
    const vs = this.#vs;
    if (table === undefined || vs === undefined) return undefined;
    while (this.#nextCheck <= now) {
      if (this.#nextCheck > vs.now()) table.advance(this.#nextCheck - vs.now());
      for (const dest of vs.dests()) {
        if (this.#draining.has(dest.addr) && dest.activeConns + dest.inactConns === 0) {
          vs.removeDest(dest.addr);
          this.#draining.delete(dest.addr);
        }
      }
      this.#nextCheck += GRACEFUL_CHECK_SECONDS;
    }
    if (now > vs.now()) table.advance(now - vs.now());
    return table;
  }
}

function virtualServerOf(compiled: CompiledIpvsNode, target: SimulationTarget): VirtualServer | undefined {
  const table = compiled.tables.find((t) => t.family === target.state.family);
  const protocol = target.proto.toUpperCase();
  return table?.table.services.find((s) => s.address === target.address && s.port === target.port && s.protocol === protocol);
}
