/**
 * A virtual service's real servers in the kernel's order: a circular doubly linked list with a
 * head sentinel (svc->destinations). Adding links a dest at the FRONT; deleting unlinks it but
 * leaves its own links as they were, as list_del_rcu does, so a cursor that still points at it can
 * find its way back (ip_vs_rr_del_dest relies on this). Editing never reorders.
 */
import type { Dest } from './types.js';

/** One position in the list: the head sentinel or a dest. */
export interface ListLink {
  prev: ListLink;
  next: ListLink;
}

/** A dest as the list stores it (the links live on the dest, like the kernel's n_list). */
export type LinkedDest = Dest & ListLink;

export class DestList {
  /** The sentinel: "head" is both the position before the first dest and after the last. */
  readonly head: ListLink;
  #size = 0;

  constructor() {
    const head = {} as ListLink;
    head.prev = head;
    head.next = head;
    this.head = head;
  }

  get size(): number {
    return this.#size;
  }

  /** list_add_rcu(&dest->n_list, &svc->destinations): the new dest becomes the first. */
  addFront(dest: LinkedDest): void {
    const first = this.head.next;
    dest.prev = this.head;
    dest.next = first;
    first.prev = dest;
    this.head.next = dest;
    this.#size++;
  }

  /** list_del_rcu: neighbours skip the dest; the dest keeps its own prev/next. */
  remove(dest: LinkedDest): void {
    dest.prev.next = dest.next;
    dest.next.prev = dest.prev;
    this.#size--;
  }

  /** The dest at a position, or undefined for the head. */
  destAt(link: ListLink): LinkedDest | undefined {
    return link === this.head ? undefined : (link as LinkedDest);
  }

  first(): LinkedDest | undefined {
    return this.destAt(this.head.next);
  }

  /** The dest after a position, undefined when the end of the list is reached. */
  after(link: ListLink): LinkedDest | undefined {
    return this.destAt(link.next);
  }

  /**
   * Front to back, for setup and table rebuilds. Per-pick walks use first()/after() instead: an
   * iterator costs an allocation per step, which at 10 dests made a walk several times slower.
   */
  *[Symbol.iterator](): IterableIterator<LinkedDest> {
    for (let link = this.head.next; link !== this.head; link = link.next) yield link as LinkedDest;
  }

  toArray(): LinkedDest[] {
    const out: LinkedDest[] = [];
    for (let link = this.head.next; link !== this.head; link = link.next) out.push(link as LinkedDest);
    return out;
  }
}
