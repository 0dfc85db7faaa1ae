/**
 * The scheduling log that keeps several proxy workers' virtual services one (workers.ts).
 *
 * With `--workers N` every worker thread accepts connections from the same listening sockets,
 * and each holds a replica of every TCP virtual service (its IPVS scheduler, persistence
 * templates and connection counters). Every operation that changes a virtual service (a new
 * connection scheduled, a connection going inactive or expiring, an endpoint change) is appended
 * to this log under one lock, and a worker applies every entry it has not applied yet, in log
 * order, before it appends its own. Every replica thus goes through the same operations in the
 * same order and stays identical: rr is one round robin over all workers' connections, lc counts
 * every worker's connections, persistence and the hashing schedulers see the same state; the
 * schedulers are deterministic given the operations (the clock is the one written in each entry,
 * twos draws from a seeded source). It is the kernel's arrangement on a multi-core node: IPVS
 * schedules on every CPU against shared service state (rr takes svc->sched_lock).
 *
 * What it costs: each worker also applies the other workers' operations (three per connection:
 * scheduled, first FIN, closed), and the lock is taken once per operation. Workers that have
 * nothing to do catch up on a timer, so the ring never fills with entries they have not read.
 *
 * Layout: one SharedArrayBuffer, as Int32 words:
 *   [0] lock (0 free, 1 held, 2 held and someone waits), [1] tail (entries written, mod 2^32),
 *   [2 + w] entries applied by worker w, then the ring of ENTRY_WORDS-word entries.
 */

/**
 * An entry's words: [0] kind | listener << 8, [1] state, [2] dest, [4..5] time (a float64),
 * [6] avoided count, [7..] avoided dests, [AT_KEY_LENGTH] client key length (-1: none), then the
 * key's bytes.
 */
export const ENTRY_WORDS = 32;
/** Entries in the ring: 2 MiB. */
export const RING_ENTRIES = 1 << 14;
const LOCK = 0;
const TAIL = 1;
const APPLIED = 2;
/** Client keys ("ip" or "ip:port", IPv6 in brackets) of up to this many bytes. */
export const MAX_CLIENT_BYTES = 48;
/**
 * Dests a retry avoids: at most one per earlier dial attempt (3 with kube-proxy's four dial
 * timeouts). A longer list is cut here, the same for every worker, so the replicas still agree.
 */
export const MAX_AVOID = 12;
const AT_AVOID = 6;
const AT_KEY_LENGTH = AT_AVOID + 1 + MAX_AVOID;
const AT_KEY = AT_KEY_LENGTH + 1;

export const OpKind = {
  Connect: 1,
  ConnectAvoiding: 2,
  Bind: 3,
  Close: 4,
  Expire: 5,
  /** An endpoint change; its details come as a message (workers.ts), numbered by `dest`. */
  Control: 6,
} as const;
export type OpKind = (typeof OpKind)[keyof typeof OpKind];

/** One operation, as written to and read from the log. */
export interface LogEntry {
  kind: OpKind;
  /** The listener's index among the proxy's TCP listeners. */
  listener: number;
  /** Connect: 0 active, 1 inactive. Bind, Expire: the same for the state. */
  state: number;
  /** Bind, Close, Expire: the dest's id. Control: its sequence number. */
  dest: number;
  /** Seconds on the shared clock when the operation happened. */
  time: number;
  client: string | undefined;
  /** ConnectAvoiding: the dests' ids. */
  avoid: number[];
}

export function opLogBytes(workers: number): number {
  return headerWords(workers) * 4 + RING_ENTRIES * ENTRY_WORDS * 4;
}

function headerWords(workers: number): number {
  // Rounded up to an even count, so that the entries' time fields are 8-byte aligned.
  const words = APPLIED + workers;
  return words + (words % 2);
}

/** Statistics of one worker's use of the log. */
export interface OpLogCounters {
  /** Entries this worker appended. */
  written: number;
  /** Entries of other workers it applied. */
  replayed: number;
  /** Times it found the lock held and had to wait for it. */
  lockWaits: number;
}

export class OpLog {
  readonly #words: Int32Array;
  readonly #times: Float64Array;
  readonly #bytes: Uint8Array;
  readonly #workers: number;
  readonly #base: number;
  readonly counters: OpLogCounters = { written: 0, replayed: 0, lockWaits: 0 };

  /** `worker`: this thread's index, or -1 for a writer that keeps no replica (the main thread). */
  constructor(buffer: SharedArrayBuffer, workers: number, readonly worker: number) {
    this.#words = new Int32Array(buffer);
    this.#times = new Float64Array(buffer);
    this.#bytes = new Uint8Array(buffer);
    this.#workers = workers;
    this.#base = headerWords(workers);
  }

  /** Entries written so far (mod 2^32). */
  get tail(): number {
    return Atomics.load(this.#words, TAIL) >>> 0;
  }

  /** Entries this worker has applied (mod 2^32). */
  get applied(): number {
    return Atomics.load(this.#words, APPLIED + this.worker) >>> 0;
  }

  set applied(position: number) {
    Atomics.store(this.#words, APPLIED + this.worker, position | 0);
  }

  /** A futex-style lock: spin briefly, then sleep until the holder wakes us. */
  lock(): void {
    const words = this.#words;
    if (Atomics.compareExchange(words, LOCK, 0, 1) === 0) return;
    this.counters.lockWaits++;
    for (let spin = 0; spin < 64; spin++) {
      if (Atomics.compareExchange(words, LOCK, 0, 1) === 0) return;
    }
    while (Atomics.exchange(words, LOCK, 2) !== 0) Atomics.wait(words, LOCK, 2, 5);
  }

  unlock(): void {
    if (Atomics.exchange(this.#words, LOCK, 0) === 2) Atomics.notify(this.#words, LOCK, 1);
  }

  /**
   * Whether there is room for one more entry: no worker may be a whole ring behind. Under the
   * lock; when there is none, the caller lets go of the lock and waits for the others to catch up.
   */
  hasRoom(): boolean {
    const tail = this.tail;
    for (let w = 0; w < this.#workers; w++) {
      const behind = (tail - (Atomics.load(this.#words, APPLIED + w) >>> 0)) >>> 0;
      if (behind >= RING_ENTRIES) return false;
    }
    return true;
  }

  /** Append an entry (under the lock, with room checked). Returns its position. */
  append(entry: LogEntry): number {
    const position = this.tail;
    const at = this.#base + (position & (RING_ENTRIES - 1)) * ENTRY_WORDS;
    const words = this.#words;
    words[at] = entry.kind | (entry.listener << 8);
    words[at + 1] = entry.state;
    words[at + 2] = entry.dest;
    this.#times[(at + 4) >> 1] = entry.time;
    const avoid = entry.avoid;
    const avoided = Math.min(avoid.length, MAX_AVOID);
    words[at + AT_AVOID] = avoided;
    for (let i = 0; i < avoided; i++) words[at + AT_AVOID + 1 + i] = avoid[i]!;
    const client = entry.client;
    if (client === undefined) {
      words[at + AT_KEY_LENGTH] = -1;
    } else {
      const bytes = this.#bytes;
      const start = (at + AT_KEY) * 4;
      const length = Math.min(client.length, MAX_CLIENT_BYTES);
      // Client keys are addresses and ports: ASCII.
      for (let i = 0; i < length; i++) bytes[start + i] = client.charCodeAt(i);
      words[at + AT_KEY_LENGTH] = length;
    }
    Atomics.store(words, TAIL, (position + 1) | 0);
    this.counters.written++;
    return position;
  }

  /** The entry at a position (which must be between this worker's applied position and the tail). */
  read(position: number, into: LogEntry): LogEntry {
    const at = this.#base + (position & (RING_ENTRIES - 1)) * ENTRY_WORDS;
    const words = this.#words;
    const head = words[at]!;
    into.kind = (head & 0xff) as OpKind;
    into.listener = head >>> 8;
    into.state = words[at + 1]!;
    into.dest = words[at + 2]!;
    into.time = this.#times[(at + 4) >> 1]!;
    const avoided = words[at + AT_AVOID]!;
    into.avoid.length = avoided;
    for (let i = 0; i < avoided; i++) into.avoid[i] = words[at + AT_AVOID + 1 + i]!;
    const length = words[at + AT_KEY_LENGTH]!;
    if (length < 0) {
      into.client = undefined;
    } else {
      const start = (at + AT_KEY) * 4;
      let text = '';
      for (let i = 0; i < length; i++) text += String.fromCharCode(this.#bytes[start + i]!);
      into.client = text;
    }
    return into;
  }
}

export function emptyEntry(): LogEntry {
  return { kind: OpKind.Connect, listener: 0, state: 0, dest: 0, time: 0, client: undefined, avoid: [] };
}
