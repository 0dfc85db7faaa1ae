/**
 * One worker's replicas of the proxy's TCP virtual services, kept in step with the other
 * workers' through the scheduling log (op-log.ts): every change goes through the log, and is
 * applied to the replicas in log order, the worker's own changes included.
 *
 * Endpoint changes come from the main thread: it posts the change to each worker's control port
 * and appends a Control entry with its number; a worker applies the change when it reaches that
 * entry, so it happens at the same point of every worker's sequence of operations.
 */
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import type { ConnState } from '../ipvs/virtual-service.js';
import type { ProxierState } from '../tracker/types.js';
import { type LogEntry, type OpKind, OpKind as Op, type OpLog, emptyEntry } from './op-log.js';
import { connectAvoiding } from './pick.js';
import type { ConnectionScheduler, VirtualServer } from './virtual-server.js';

/** An endpoint change the main thread sends the workers. */
export type ControlChange =
  | { readonly kind: 'update'; readonly states: readonly ProxierState[] }
  | { readonly kind: 'remove'; readonly endpoint: string; readonly spn?: string };

export interface ControlMessage {
  readonly seq: number;
  readonly change: ControlChange;
}

/** Seconds on a clock every thread of the process shares (CLOCK_MONOTONIC). */
export function sharedClockSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

/**
 * Endpoint addresses as small numbers, for log entries. Every worker builds the same table: the
 * initial endpoints in text order, then each change's new ones in text order, in log order.
 */
export class EndpointIds {
  readonly #ids = new Map<string, number>();
  readonly #addrs: string[] = [];

  constructor(states: readonly ProxierState[]) {
    this.extend(states);
  }

  extend(states: readonly ProxierState[]): void {
    const fresh = new Set<string>();
    for (const state of states) {
      for (const sp of state.servicePorts) for (const ep of sp.endpoints) if (!this.#ids.has(ep.endpoint)) fresh.add(ep.endpoint);
    }
    for (const addr of [...fresh].sort()) {
      this.#ids.set(addr, this.#addrs.length);
      this.#addrs.push(addr);
    }
  }

  id(addr: string): number {
    const id = this.#ids.get(addr);
    if (id === undefined) throw new Error(`endpoint ${addr} has no id in the scheduling log`);
    return id;
  }

  addr(id: number): string {
    const addr = this.#addrs[id];
    if (addr === undefined) throw new Error(`no endpoint has id ${id} in the scheduling log`);
    return addr;
  }
}

export interface ReplicaHooks {
  /** Apply an endpoint change to this worker's listeners (their virtual services included). */
  applyChange(change: ControlChange): void;
}

const STATE_CODES: readonly ConnState[] = ['active', 'inactive'];

export class Replicas {
  readonly #log: OpLog;
  readonly #servers: readonly VirtualServer[];
  readonly #ids: EndpointIds;
  readonly #clock: { now: number };
  readonly #control: MessagePort;
  readonly #hooks: ReplicaHooks;
  readonly #entry: LogEntry = emptyEntry();
  readonly #draft: LogEntry = emptyEntry();
  readonly #wait = new Int32Array(new SharedArrayBuffer(4));

  /**
   * `servers`: this worker's TCP virtual servers, in listener order (the same in every worker);
   * `clock`: what their virtual services read as the time, set from each entry before it applies.
   */
  constructor(log: OpLog, servers: readonly VirtualServer[], ids: EndpointIds, clock: { now: number }, control: MessagePort, hooks: ReplicaHooks) {
    this.#log = log;
    this.#servers = servers;
    this.#ids = ids;
    this.#clock = clock;
    this.#control = control;
    this.#hooks = hooks;
  }

  /** The scheduler connections of listener `index` use. */
  schedulerFor(index: number): ConnectionScheduler {
    const ids = this.#ids;
    return {
      connect: (client, state) => this.#op(Op.Connect, index, STATE_CODES.indexOf(state), 0, client, NO_AVOID),
      connectAvoiding: (client, avoid) => this.#op(Op.ConnectAvoiding, index, 0, 0, client, avoid.map((a) => ids.id(a))),
      bind: (addr, state) => void this.#op(Op.Bind, index, STATE_CODES.indexOf(state), ids.id(addr), undefined, NO_AVOID),
      close: (addr) => void this.#op(Op.Close, index, 0, ids.id(addr), undefined, NO_AVOID),
      expire: (addr, state) => void this.#op(Op.Expire, index, STATE_CODES.indexOf(state), ids.id(addr), undefined, NO_AVOID),
    };
  }

  /** Apply what the other workers (and the main thread) logged since this worker last looked. */
  catchUp(): void {
    const log = this.#log;
    if (log.applied === log.tail) return;
    log.lock();
    try {
      this.#applyPending();
    } finally {
      log.unlock();
    }
  }

  /** Append one operation and apply it (after everything logged before it); its result. */
  #op(kind: OpKind, listener: number, state: number, dest: number, client: string | undefined, avoid: readonly number[]): string | undefined {
    const log = this.#log;
    log.lock();
    try {
      this.#applyPending();
      while (!log.hasRoom()) {
        // Another worker is a whole ring behind: let go, so that its catch-up timer can run.
        log.unlock();
        Atomics.wait(this.#wait, 0, 0, 1);
        log.lock();
        this.#applyPending();
      }
      const draft = this.#draft;
      draft.kind = kind;
      draft.listener = listener;
      draft.state = state;
      draft.dest = dest;
      draft.time = sharedClockSeconds();
      draft.client = client;
      draft.avoid = avoid as number[];
      log.append(draft);
      return this.#applyNext();
    } finally {
      log.unlock();
    }
  }

  #applyPending(): void {
    const log = this.#log;
    while (log.applied !== log.tail) {
      this.#applyNext();
      log.counters.replayed++;
    }
  }

  #applyNext(): string | undefined {
    const log = this.#log;
    const position = log.applied;
    const entry = log.read(position, this.#entry);
    const result = this.#apply(entry);
    log.applied = (position + 1) >>> 0;
    return result;
  }

  #apply(entry: LogEntry): string | undefined {
    if (entry.kind === Op.Control) {
      this.#applyControl(entry.dest);
      return undefined;
    }
    const vs = this.#servers[entry.listener]!.vs;
    this.#clock.now = entry.time;
    const state = STATE_CODES[entry.state]!;
    switch (entry.kind) {
      case Op.Connect:
        return vs.connect(entry.client, state);
      case Op.ConnectAvoiding:
        return connectAvoiding(vs, entry.client, entry.avoid.map((id) => this.#ids.addr(id)));
      case Op.Bind:
        vs.bind(this.#ids.addr(entry.dest), state);
        return undefined;
      case Op.Close:
        vs.close(this.#ids.addr(entry.dest));
        return undefined;
      case Op.Expire:
        vs.expire(this.#ids.addr(entry.dest), state);
        return undefined;
      default:
        throw new Error(`unknown scheduling log entry kind ${String(entry.kind)}`);
    }
  }

  /** The main thread posted change `seq` before logging it: it is waiting on the control port. */
  #applyControl(seq: number): void {
    for (;;) {
      const received = receiveMessageOnPort(this.#control) as { message: ControlMessage } | undefined;
      if (received === undefined) throw new Error(`endpoint change ${seq} is in the scheduling log but not on the control port`);
      const { message } = received;
      if (message.seq < seq) continue;
      if (message.seq > seq) throw new Error(`endpoint change ${message.seq} came before ${seq}`);
      if (message.change.kind === 'update') this.#ids.extend(message.change.states);
      this.#hooks.applyChange(message.change);
      return;
    }
  }
}

const NO_AVOID: readonly number[] = [];
