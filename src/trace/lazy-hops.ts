/**
 * A result's or sample's `hops`, made when first read. Most callers (a load test, a simulation,
 * the bench) never read them, and a kept answer lives as long as the cache, so they are worked
 * out on demand.
 *
 * Why not a getter in the object literal (`{ ..., get hops() { ... } }`): V8 makes every such
 * literal a dictionary-mode object, with a closure, its context and an accessor pair of its own.
 * A kept walk's answer was three of those (its sample, its sampleOnly result, or its result of
 * every outcome), some 1.5 kB of heap per kept walk for the GC to mark on every major
 * collection, and slower to read. Here the accessor is one shared function, defined on an
 * object built in the answer's field order: objects stay in fast mode and share their hidden
 * class; what the hops come from sits behind a non-enumerable symbol (not in JSON, keys or
 * deep equality).
 */
import type { Hop } from './types.js';

/** Where the hops come from: a function or a hop log that makes them, or an answer that has them. */
export type HopsOrigin = (() => readonly Hop[]) | { toHops(): readonly Hop[] } | { readonly hops: readonly Hop[] };

class HopsSource {
  hops: readonly Hop[] | undefined = undefined;
  constructor(public origin: HopsOrigin | undefined) {}
}

const SOURCE = Symbol('hops source');

interface WithSource {
  readonly [SOURCE]: HopsSource;
}

function readHops(this: WithSource): readonly Hop[] {
  const source = this[SOURCE];
  if (source.hops === undefined) {
    const origin = source.origin!;
    source.hops = typeof origin === 'function' ? origin() : 'toHops' in origin ? origin.toHops() : origin.hops;
    source.origin = undefined;
  }
  return source.hops;
}

/** One descriptor (one getter function) for every object, so that they share hidden classes. */
const HOPS: PropertyDescriptor = { get: readHops, enumerable: true, configurable: true };

/**
 * Add `hops` to `target` (as its next property: JSON lists it there), made from `origin` when
 * first read, then kept.
 */
export function defineLazyHops<T extends object>(target: T, origin: HopsOrigin): T & { readonly hops: readonly Hop[] } {
  Object.defineProperty(target, SOURCE, { value: new HopsSource(origin) });
  return Object.defineProperty(target, 'hops', HOPS) as T & { readonly hops: readonly Hop[] };
}
