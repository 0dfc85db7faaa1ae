/**
 * The API server's generateName, made repeatable: the base cut to 58 characters, then five
 * characters of apimachinery's safe alphabet. The API server draws them at random; kpsim draws
 * them from a hash of a key the caller chooses (what the object is) and a seed, so the same input
 * always gives the same names. A clash moves on to the next draw, as a client retries a taken name.
 */
import { SAFE_ALPHABET, fnv32a, fnv32aUpdate, mix32 } from './hash.js';

/** 63 characters in all: 58 of the base and 5 generated (apiserver names.SimpleNameGenerator). */
const MAX_GENERATED_BASE_LENGTH = 58;
const SUFFIX_LENGTH = 5;
const SUFFIX_COUNT = SAFE_ALPHABET.length ** SUFFIX_LENGTH;

/** The five suffix characters of a draw: its base-27 digits, lowest first. */
function suffixText(code: number): string {
  let c = code;
  let out = '';
  for (let i = 0; i < SUFFIX_LENGTH; i++) {
    out += SAFE_ALPHABET[c % SAFE_ALPHABET.length];
    c = Math.floor(c / SAFE_ALPHABET.length);
  }
  return out;
}

interface Draw {
  readonly namespace: string;
  readonly base: string;
  readonly key: string;
  readonly cut: string;
  readonly drawn: Set<number>;
  readonly keyed: number;
}

export class GeneratedNames {
  /** Names taken by objects the caller reserved (given in the input), by namespace. */
  private readonly reserved = new Map<string, Set<string>>();
  /**
   * Suffixes drawn, by namespace and base. Every suffix has the same length, so two generated
   * names are equal only when their bases are: the suffix number alone tells them apart.
   */
  private readonly drawn = new Map<string, Set<number>>();
  private readonly seedHash: number;
  private last: Draw | undefined;

  constructor(seed = 0) {
    this.seedHash = fnv32a(`${seed}\0`);
  }

  /** Marks a name as used in the namespace (objects given in the input). */
  reserve(namespace: string, name: string): void {
    let names = this.reserved.get(namespace);
    if (!names) {
      names = new Set();
      this.reserved.set(namespace, names);
    }
    names.add(name);
  }

  /** Whether the name is taken in the namespace, reserved or generated. */
  has(namespace: string, name: string): boolean {
    if (this.reserved.get(namespace)?.has(name)) return true;
    if (name.length <= SUFFIX_LENGTH) return false;
    const drawn = this.drawn.get(`${namespace}\0${name.slice(0, -SUFFIX_LENGTH)}`);
    if (!drawn) return false;
    let code = 0;
    for (let i = SUFFIX_LENGTH; i >= 1; i--) {
      const digit = SAFE_ALPHABET.indexOf(name[name.length - i]!);
      if (digit < 0) return false;
      code = code + digit * SAFE_ALPHABET.length ** (SUFFIX_LENGTH - i);
    }
    return drawn.has(code);
  }

  /**
   * A name from generateName `base` in `namespace`, its random part drawn from `key` and
   * `index` (what the object is: "web-5d8f7c9b6" and 2 for a ReplicaSet's third pod).
   */
  generate(namespace: string, base: string, key: string, index = 0): string {
    // A controller names its objects one after another with the same base and key: keep the last.
    const last = this.last;
    let draw: Draw;
    if (last && last.namespace === namespace && last.base === base && last.key === key) {
      draw = last;
    } else {
      const cut = base.length > MAX_GENERATED_BASE_LENGTH ? base.slice(0, MAX_GENERATED_BASE_LENGTH) : base;
      const drawnKey = `${namespace}\0${cut}`;
      let drawn = this.drawn.get(drawnKey);
      if (!drawn) {
        drawn = new Set();
        this.drawn.set(drawnKey, drawn);
      }
      // FNV-1a over seed, namespace and key (no string is built for it); the index and the attempt are mixed in below.
      const keyed = fnv32aUpdate(fnv32aUpdate(fnv32aUpdate(this.seedHash, namespace), '\0'), key);
      draw = { namespace, base, key, cut, drawn, keyed };
      this.last = draw;
    }
    const { cut, drawn, keyed } = draw;
    const reserved = this.reserved.get(namespace);
    for (let attempt = 0; ; attempt++) {
      const code = mix32(Math.imul(Math.imul(keyed ^ (index + 1), 0x01000193) ^ (attempt + 1), 0x01000193)) % SUFFIX_COUNT;
      if (drawn.has(code)) continue;
      const name = cut + suffixText(code);
      if (reserved?.has(name)) continue;
      drawn.add(code);
      return name;
    }
  }
}
