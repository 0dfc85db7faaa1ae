/**
 * The replay simulator: a stream of connection events played against a Picker (an IPVS virtual
 * service, or a mode's rules walked by the tracer), reporting where each connection went and
 * what every backend holds at the end. `kpsim simulate` and `kpsim compare` run on this.
 *
 * Events are taken in time order (a stable sort, so equal times keep their input order). A
 * connection opened with `durationSeconds` closes that long after it opened; one opened with an
 * `id` can be closed by a later close event; one with neither stays open. `keepaliveSeconds` sends
 * a packet on an open connection at that interval, as TCP keepalives or application traffic
 * would; without it an idle IPVS connection times out after 15 minutes like the kernel's.
 * Closes and keepalives that fall due at the same time as an event from the stream run first.
 */
import { Heap } from 'heap-js';
import { KpsimError } from '../errors.js';
import { ipvsPicker, type BackendCounts, type PickedConnection, type Picker } from './picker.js';
import { VirtualService } from '../ipvs/virtual-service.js';

export type ConnectionEvent =
  | {
    readonly kind: 'open';
    /** Seconds from the start of the replay. */
    readonly at: number;
    /** The client "ip:port". */
    readonly client: string;
    /** Names the connection for a later close event. */
    readonly id?: string;
    readonly durationSeconds?: number;
    readonly keepaliveSeconds?: number;
  }
  | { readonly kind: 'close'; readonly at: number; readonly id: string };

/** A new connection of the stream. */
export type OpenEvent = Extract<ConnectionEvent, { kind: 'open' }>;

export interface ReplayOptions {
  /** Run the clock on to this time after the last event (default: the last event's time). */
  readonly endAt?: number;
}

export interface BackendReport extends BackendCounts {
  /** New connections placed on this backend during the replay. */
  readonly received: number;
}

export interface ReplayReport {
  readonly label: string;
  /** For every open event in time order: the backend chosen, or null when it was refused. */
  readonly picks: (string | null)[];
  readonly backends: BackendReport[];
  readonly opened: number;
  readonly refused: number;
  readonly closed: number;
  /** The clock at the end, in seconds. */
  readonly endAt: number;
}

interface Scheduled {
  readonly at: number;
  /** Tie-break: scheduled first, runs first. */
  readonly order: number;
  readonly run: () => void;
}

/** Play `events` against `target` (a virtual service is wrapped with `ipvsPicker`). */
export function replayConnections(target: Picker | VirtualService, events: readonly ConnectionEvent[], opts: ReplayOptions = {}): ReplayReport {
  const picker = target instanceof VirtualService ? ipvsPicker(target) : target;
  const sorted = checkedEvents(events);
  const start = picker.now();
  const pending = new Heap<Scheduled>((a, b) => a.at - b.at || a.order - b.order);
  let order = 0;
  const schedule = (at: number, run: () => void): void => {
    pending.push({ at, order: order++, run });
  };
  const runPendingUpTo = (time: number, inclusive: boolean): void => {
    for (let top = pending.peek(); top !== undefined && (top.at < time || (inclusive && top.at === time)); top = pending.peek()) {
      pending.pop();
      picker.advanceTo(start + top.at);
      top.run();
    }
  };

  const open = new Map<string, PickedConnection>();
  const received = new Map<string, number>();
  const picks: (string | null)[] = [];
  let refused = 0;
  let closed = 0;

  const closeConnection = (conn: PickedConnection, isOpen: { value: boolean }): void => {
    if (!isOpen.value) return;
    isOpen.value = false;
    conn.close();
    closed++;
  };

  for (const event of sorted) {
    runPendingUpTo(event.at, true);
    picker.advanceTo(start + event.at);
    if (event.kind === 'close') {
      const conn = open.get(event.id);
      if (conn === undefined) continue;
      open.delete(event.id);
      conn.close();
      continue;
    }
    const conn = picker.pick(event.client);
    picks.push(conn?.addr ?? null);
    if (conn === undefined) {
      refused++;
      continue;
    }
    received.set(conn.addr, (received.get(conn.addr) ?? 0) + 1);
    const isOpen = { value: true };
    if (event.id !== undefined) {
      open.set(event.id, { addr: conn.addr, touch: () => conn.touch(), close: () => closeConnection(conn, isOpen) });
    }
    if (event.keepaliveSeconds !== undefined) {
      const every = event.keepaliveSeconds;
      const keepalive = (at: number): void => {
        schedule(at, () => {
          if (!isOpen.value) return;
          conn.touch();
          keepalive(at + every);
        });
      };
      keepalive(event.at + every);
    }
    if (event.durationSeconds !== undefined) schedule(event.at + event.durationSeconds, () => closeConnection(conn, isOpen));
  }
  const lastAt = sorted.length > 0 ? sorted[sorted.length - 1]!.at : 0;
  const endAt = Math.max(opts.endAt ?? lastAt, lastAt);
  // Keepalives on connections that never close would run forever: stop at the end time.
  runPendingUpTo(endAt, true);
  picker.advanceTo(start + endAt);

  const backends = picker.backends().map((b) => ({ ...b, received: received.get(b.addr) ?? 0 }));
  // Backends that received connections but are no longer listed (deleted) are still reported.
  for (const [addr, count] of received) {
    if (!backends.some((b) => b.addr === addr)) backends.push({ addr, activeConns: 0, inactConns: 0, received: count });
  }
  return { label: picker.label, picks, backends, opened: picks.length - refused, refused, closed, endAt: picker.now() - start };
}

function checkedEvents(events: readonly ConnectionEvent[]): ConnectionEvent[] {
  events.forEach((event, i) => {
    const bad = (path: string, detail: string): never => {
      throw new KpsimError('KPSIM_ERR_USAGE_BAD_FLAG', detail, { path: `events[${i}].${path}` });
    };
    if (!(Number.isFinite(event.at) && event.at >= 0)) bad('at', `${String(event.at)} is not a time in seconds >= 0`);
    if (event.kind === 'open') {
      if (event.durationSeconds !== undefined && !(Number.isFinite(event.durationSeconds) && event.durationSeconds >= 0)) {
        bad('durationSeconds', `${String(event.durationSeconds)} is not a number of seconds >= 0`);
      }
      if (event.keepaliveSeconds !== undefined && !(Number.isFinite(event.keepaliveSeconds) && event.keepaliveSeconds > 0)) {
        bad('keepaliveSeconds', `${String(event.keepaliveSeconds)} is not a number of seconds > 0`);
      }
    } else if (event.kind !== 'close') {
      bad('kind', `${String((event as { kind: unknown }).kind)} is not "open" or "close"`);
    }
  });
  return events.map((event, index) => ({ event, index }))
    .sort((a, b) => a.event.at - b.event.at || a.index - b.index)
    .map(({ event }) => event);
}
