/**
 * What decoded objects hold alike, made once and shared, so that a loaded cluster of 150,000 pods
 * and as many endpoints is not that many copies of the same few values: every pod of a ReplicaSet
 * has the same labels and owner reference, every endpoint one of a few condition triples. The
 * garbage collector walks the loaded cluster at every full collection, so each object it does not
 * hold makes every later compile cheaper.
 *
 * Shared values are frozen: nothing may change them in place (code that wants other labels makes
 * a new object, as it always did). Lists are copied to their exact length: a list built by
 * pushing keeps room for 16 more elements, which for a one-address endpoint is most of its size.
 */
import type { ContainerPort, EndpointConditions, OwnerReference } from './types.js';

/** The same elements in a list of exactly their number (what `push` and `filter` leave has spare room). */
export function exactList<T>(list: T[]): T[] {
  return list.slice();
}

/** A text in a key, length first: no two lists of texts make the same key, whatever they hold. */
function part(text: string): string {
  return `${text.length}:${text}`;
}

function portKey(port: ContainerPort): string {
  return `${part(port.name)}${port.containerPort}:${part(port.protocol)}`;
}

const EMPTY_MAP: Readonly<Record<string, string>> = Object.freeze({});
const EMPTY_LIST: readonly never[] = Object.freeze([]);

/** The 27 condition triples (each flag true, false or unset), one frozen object each. */
const CONDITIONS = new Map<number, EndpointConditions>();

function flagDigit(flag: boolean | undefined): number {
  return flag === undefined ? 0 : flag ? 1 : 2;
}

/** The shared, frozen conditions object with these flags (an unset flag stays unset, not false). */
export function sharedConditions(conditions: EndpointConditions): EndpointConditions {
  const key = flagDigit(conditions.ready) * 9 + flagDigit(conditions.serving) * 3 + flagDigit(conditions.terminating);
  let shared = CONDITIONS.get(key);
  if (shared === undefined) {
    shared = Object.freeze({ ...conditions });
    CONDITIONS.set(key, shared);
  }
  return shared;
}

/** How many references of one owner name are compared one by one before the rest are looked up by uid. */
const OWNERS_PER_NAME = 16;

/** Whether two owner references of the same name have the same other fields (an unset uid is not ""). */
function sameOwner(a: OwnerReference, b: OwnerReference): boolean {
  return a.uid === b.uid && a.kind === b.kind && a.apiVersion === b.apiVersion && a.controller === b.controller;
}

/** Whether two maps have the same entries in the same order (`keys` and `otherKeys` are their keys). */
function sameEntries(keys: readonly string[], map: Readonly<Record<string, string>>, otherKeys: readonly string[], other: Readonly<Record<string, string>>): boolean {
  if (keys.length !== otherKeys.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (k !== otherKeys[i] || map[k] !== other[k]) return false;
  }
  return true;
}

/** Whether two port lists have the same ports (every field) in the same order. */
function samePorts(ports: readonly ContainerPort[], other: readonly ContainerPort[]): boolean {
  if (ports.length !== other.length) return false;
  for (let i = 0; i < ports.length; i++) {
    const a = ports[i]!;
    const b = other[i]!;
    if (a.containerPort !== b.containerPort || a.name !== b.name || a.protocol !== b.protocol) return false;
  }
  return true;
}

/**
 * The shared, frozen conditions object with these flags, its keys in the order ready, serving,
 * terminating (the order readEndpoint gives sharedConditions), made without a conditions object first.
 */
export function sharedConditionsOf(ready: boolean | undefined, serving: boolean | undefined, terminating: boolean | undefined): EndpointConditions {
  const shared = CONDITIONS.get(flagDigit(ready) * 9 + flagDigit(serving) * 3 + flagDigit(terminating));
  if (shared !== undefined) return shared;
  const conditions: EndpointConditions = {};
  if (ready !== undefined) conditions.ready = ready;
  if (serving !== undefined) conditions.serving = serving;
  if (terminating !== undefined) conditions.terminating = terminating;
  return sharedConditions(conditions);
}

/**
 * Values shared within one load (one cluster): label maps, owner references and container ports
 * by content. Kept by the load only, so a long-running server does not gather every value it saw.
 */
export class SharedValues {
  readonly #maps = new Map<string, Record<string, string>>();
  readonly #owners = new Map<string, OwnerReference>();
  readonly #ownersByUid = new Map<string, OwnerReference>();
  /** The references of each owner name: one, or a list of up to OWNERS_PER_NAME. */
  readonly #ownersByName = new Map<string, OwnerReference | OwnerReference[]>();
  readonly #ports = new Map<string, ContainerPort>();
  readonly #portLists = new Map<string, ContainerPort[]>();
  /**
   * The last map and port list handed out, and the map's keys: the pods of one workload mostly
   * come one after another, and one that has the same entries as the last is answered by
   * comparing them, with no key text made.
   */
  #lastMap: Record<string, string> | undefined;
  #lastMapKeys: string[] = [];
  #lastPorts: ContainerPort[] | undefined;

  /** A string map (labels, annotations) with the same entries in the same order, frozen. */
  stringMap(map: Record<string, string>): Record<string, string> {
    const keys = Object.keys(map);
    if (keys.length === 0) return EMPTY_MAP as Record<string, string>;
    const last = this.#lastMap;
    if (last !== undefined && sameEntries(keys, map, this.#lastMapKeys, last)) return last;
    let key = '';
    for (const k of keys) key += `${part(k)}${part(map[k]!)}`;
    let shared = this.#maps.get(key);
    if (shared === undefined) {
      shared = Object.freeze(map) as Record<string, string>;
      this.#maps.set(key, shared);
    }
    // The shared map has these keys in this order: its key text says so.
    this.#lastMap = shared;
    this.#lastMapKeys = keys;
    return shared;
  }

  /** The list, or one shared frozen empty list for an empty one (most pods have no tolerations). */
  list<T>(list: T[]): T[] {
    return list.length === 0 ? (EMPTY_LIST as unknown as T[]) : list;
  }

  /** A pod's container ports: one frozen list per content (the pods of a workload declare the same ones). */
  containerPorts(ports: ContainerPort[]): ContainerPort[] {
    if (ports.length === 0) return EMPTY_LIST as unknown as ContainerPort[];
    const last = this.#lastPorts;
    if (last !== undefined && samePorts(ports, last)) return last;
    let key = '';
    for (const port of ports) key += portKey(port);
    let shared = this.#portLists.get(key);
    if (shared === undefined) {
      shared = Object.freeze(ports.map((p) => this.containerPort(p))) as ContainerPort[];
      this.#portLists.set(key, shared);
    }
    this.#lastPorts = shared;
    return shared;
  }

  /** An owner reference with the same fields, frozen. */
  ownerReference(ref: OwnerReference): OwnerReference {
    // By the owner's name first: a workload's pods name one owner, so a load holds few names
    // for many references. The references of a name are compared field by field, up to
    // OWNERS_PER_NAME of them; past that (a generated cluster whose pods each name another
    // owner uid) by uid. A map entry per reference cost more than reading the reference did.
    const named = this.#ownersByName.get(ref.name);
    if (named === undefined) {
      const shared = Object.freeze(ref);
      this.#ownersByName.set(ref.name, shared);
      return shared;
    }
    if (!Array.isArray(named)) {
      if (sameOwner(named, ref)) return named;
      const shared = Object.freeze(ref);
      this.#ownersByName.set(ref.name, [named, shared]);
      return shared;
    }
    for (const known of named) if (sameOwner(known, ref)) return known;
    if (named.length < OWNERS_PER_NAME) {
      const shared = Object.freeze(ref);
      named.push(shared);
      return shared;
    }
    // A uid names its owner: looked up by it alone, the rest compared, no key text made.
    if (ref.uid !== undefined) {
      const known = this.#ownersByUid.get(ref.uid);
      if (known === undefined) {
        const shared = Object.freeze(ref);
        this.#ownersByUid.set(ref.uid, shared);
        return shared;
      }
      if (known.apiVersion === ref.apiVersion && known.kind === ref.kind && known.name === ref.name && known.controller === ref.controller) return known;
    }
    const key = `${part(ref.apiVersion)}${part(ref.kind)}${part(ref.name)}${ref.controller ? 1 : 0}${ref.uid === undefined ? '-' : part(ref.uid)}`;
    let shared = this.#owners.get(key);
    if (shared === undefined) {
      shared = Object.freeze(ref);
      this.#owners.set(key, shared);
    }
    return shared;
  }

  /** A container port with the same fields, frozen. */
  containerPort(port: ContainerPort): ContainerPort {
    const key = portKey(port);
    let shared = this.#ports.get(key);
    if (shared === undefined) {
      shared = Object.freeze(port);
      this.#ports.set(key, shared);
    }
    return shared;
  }
}
