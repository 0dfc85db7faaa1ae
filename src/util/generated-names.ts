/**
 * The API server's generateName, made repeatable: the base cut to 58 characters, then five
 * characters of apimachinery's safe alphabet. The API server draws them at random; kpsim draws
 * them from a hash of a key the caller chooses (what the object is) and a seed, so the same input
 * always gives the same names. A clash moves on to the next draw, as a client retries a taken name.
 */
import { stableSuffix } from './hash.js';

/** 63 characters in all: 58 of the base and 5 generated (apiserver names.SimpleNameGenerator). */
const MAX_GENERATED_BASE_LENGTH = 58;
const SUFFIX_LENGTH = 5;

export class GeneratedNames {
  private readonly taken = new Map<string, Set<string>>();

  constructor(private readonly seed = 0) {}

  /** Marks a name as used in the namespace (objects given in the input). */
  reserve(namespace: string, name: string): void {
    this.namesIn(namespace).add(name);
  }

  has(namespace: string, name: string): boolean {
    return this.taken.get(namespace)?.has(name) ?? false;
  }

  /** A name from generateName `base` in `namespace`, its random part drawn from `key`. */
  generate(namespace: string, base: string, key: string): string {
    const names = this.namesIn(namespace);
    const cut = base.slice(0, MAX_GENERATED_BASE_LENGTH);
    for (let attempt = 0; ; attempt++) {
      const name = cut + stableSuffix(`${this.seed}\0${namespace}\0${key}\0${attempt}`, SUFFIX_LENGTH);
      if (!names.has(name)) {
        names.add(name);
        return name;
      }
    }
  }

  private namesIn(namespace: string): Set<string> {
    let names = this.taken.get(namespace);
    if (!names) {
      names = new Set();
      this.taken.set(namespace, names);
    }
    return names;
  }
}
