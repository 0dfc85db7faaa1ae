/**
 * Dial timeouts for a listener's connections that are still connecting to an endpoint, on one
 * timer: the same idea as the idle sweep (idle-sweep.ts). A dial on loopback completes or is
 * refused within a loop turn or two, so a timer per dial (made, inserted and cleared for every
 * connection) was mostly overhead; here a dial records its deadline and leaves a set, and one
 * interval, running only while dials are pending, checks the deadlines SLICES times per the
 * shortest timeout. A dial thus times out up to an eighth of that timeout late. The interval stops
 * after a few ticks without a dial (not at the first: under steady load a tick often falls
 * between two connections, and restarting it cost a timer per such gap).
 *
 * A deadline found passed is acted on only after the loop's I/O of that turn: timers run before
 * I/O in a libuv loop turn, so after the process stalled (a loaded machine, a long GC) the check
 * would see deadlines passed for dials whose connect already completed in the kernel and only
 * waits to be read. The kernel's SYN timeout does not stall with the process; so an expired dial
 * is looked at again from setImmediate (after the poll phase), and given up only if it is still
 * pending and still past its deadline (a retry has a deadline of its own).
 */
import { performance } from 'node:perf_hooks';

const SLICES = 8;
/** Ticks in a row without a pending dial before the interval stops. */
const IDLE_TICKS = 8;

export interface DialMember {
  /** performance.now() after which the dial has taken too long. */
  dialDeadline: number;
  /** The deadline passed: give up on this attempt. */
  onDialTimeout(): void;
}

export class DialWatch {
  readonly #members = new Set<DialMember>();
  readonly #periodMs: number;
  #timer: NodeJS.Timeout | undefined;
  #emptyTicks = 0;

  readonly #now: () => number;
  readonly #afterIo: (fn: () => void) => void;

  /**
   * `shortestTimeoutMs`: the shortest dial timeout, which sets how often deadlines are checked;
   * `now`: a millisecond clock; `afterIo`: runs a function after this loop turn's I/O (tests
   * pass their own of both).
   */
  constructor(shortestTimeoutMs: number, now: () => number = () => performance.now(), afterIo: (fn: () => void) => void = setImmediate) {
    this.#periodMs = Math.max(1, shortestTimeoutMs / SLICES);
    this.#now = now;
    this.#afterIo = afterIo;
  }

  /** Watch a dial that must complete within `timeoutMs` from now. */
  add(member: DialMember, timeoutMs: number): void {
    member.dialDeadline = this.#now() + timeoutMs;
    this.#members.add(member);
    // Unref'd: a pending dial timeout alone never keeps the process alive.
    this.#timer ??= setInterval(this.#check, this.#periodMs).unref();
  }

  delete(member: DialMember): void {
    this.#members.delete(member);
  }

  /** Stop the timer now (the listener is closed); a later add starts it again. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#emptyTicks = 0;
  }

  #check = (): void => {
    const now = this.#now();
    let expired: DialMember[] | undefined;
    for (const member of this.#members) {
      if (now >= member.dialDeadline) (expired ??= []).push(member);
    }
    if (expired !== undefined) this.#afterIo(() => this.#expire(expired));
    if (this.#members.size > 0) this.#emptyTicks = 0;
    else if (++this.#emptyTicks >= IDLE_TICKS) this.stop();
  };

  /** Give up the dials still pending and past their deadline (see the file's comment). */
  #expire(members: readonly DialMember[]): void {
    const now = this.#now();
    for (const member of members) {
      if (!this.#members.has(member) || now < member.dialDeadline) continue;
      this.#members.delete(member);
      member.onDialTimeout();
    }
  }
}
