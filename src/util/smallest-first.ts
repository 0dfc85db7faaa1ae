/**
 * Work done item by item, the smallest item first, with the results in the items' own order.
 *
 * Why the order matters: V8 optimises a function once it has run enough, for the kinds of values
 * it has seen by then, and throws the optimised code away when a new kind turns up (a
 * deoptimisation, then a second compilation). A dual-stack cluster's families are one large and
 * one small (most services have only an IPv4 ClusterIP): run first, the large family makes the
 * code hot on IPv4 values alone, and the small one then deoptimises it on its first IPv6 address,
 * in function after function. Run first, the small family passes through that code before it is
 * hot, so both kinds are known when the large family makes it so. The first node of the
 * 5,000-node cluster, compiled in every mode, took 105 deoptimisations and 384 optimising
 * compilations that way, where it took 139 and 417: work that V8's compiler threads do beside
 * the main thread, on cores the main thread would else have to itself.
 */

/**
 * `fn` of every item, called in ascending order of `size` (items of one size in their order),
 * the results in the items' order: `items.map(fn)`, computed smallest first.
 */
export function mapSmallestFirst<T, R>(items: readonly T[], size: (item: T) => number, fn: (item: T, index: number) => R): R[] {
  if (items.length < 2) return items.map(fn);
  const order = items.map((_, i) => i);
  const sizes = items.map(size);
  order.sort((a, b) => sizes[a]! - sizes[b]! || a - b);
  const computed = new Array<R>(items.length);
  for (const i of order) computed[i] = fn(items[i]!, i);
  // Copied by map: a list made by length has holes, for V8, and code that reads these lists
  // would see two kinds of them.
  return items.map((_, i) => computed[i]!);
}
