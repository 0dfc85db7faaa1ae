/**
 * The `recent` module's address lists, as a walk sees them: the lists given in the context
 * (who was seen, how long ago, how often) plus what this walk itself did with --set, --update
 * and --remove. A walk's changes live in a small persistent overlay, so forking a walk into
 * statistic branches copies nothing.
 *
 * The kernel (xt_recent.c) keeps each list's addresses masked with the rule's --mask; kpsim
 * masks both the stored address and the packet's before comparing.
 */
import { ipToWords, type Words } from '../util/ip.js';
import { inNetwork, normalizeAddress } from './addresses.js';
import type { RecentEntry, RecentLookup, RecentState } from './types.js';

export interface RecentSeen {
  readonly ageSeconds: number;
  readonly hits: number;
}

interface StoredEntry extends RecentSeen {
  readonly ip: string;
  /** The address as words, made when a --mask lookup first needs them. */
  words: Words | undefined;
}

/** Recent lists as a walk asks them (RecentLists, or a caller's own: callerRecentLists). */
export interface RecentSource {
  /** No list has anyone in it: every lookup finds nothing. */
  readonly empty: boolean;
  find(list: string, ip: string, words: Words, mask: Words | undefined): RecentSeen | undefined;
}

/** The lists from the context, ready for lookups. */
export class RecentLists implements RecentSource {
  private readonly lists = new Map<string, Map<string, StoredEntry>>();
  /** No list has anyone in it: every lookup finds nothing. */
  readonly empty: boolean;

  constructor(state: RecentState | undefined) {
    let empty = true;
    for (const [name, entries] of Object.entries(state ?? {})) {
      const list = new Map<string, StoredEntry>();
      for (const entry of entries) {
        const stored = readEntry(entry);
        if (stored) list.set(stored.ip, stored);
      }
      if (list.size > 0) empty = false;
      this.lists.set(name, list);
    }
    this.empty = empty;
  }

  find(list: string, ip: string, words: Words, mask: Words | undefined): RecentSeen | undefined {
    const entries = this.lists.get(list);
    if (!entries) return undefined;
    if (!mask) return entries.get(ip);
    const masked = { network: words.map((w, i) => (w & mask[i]!) >>> 0), mask };
    for (const entry of entries.values()) if (inNetwork((entry.words ??= ipToWords(entry.ip)), masked)) return entry;
    return undefined;
  }
}

function readEntry(entry: RecentEntry): StoredEntry | undefined {
  const address = typeof entry === 'string' ? entry : entry.address;
  const ip = normalizeAddress(address);
  if (ip === undefined) return undefined;
  const ageSeconds = typeof entry === 'string' ? 0 : entry.ageSeconds ?? 0;
  const hits = typeof entry === 'string' ? 1 : entry.hits ?? 1;
  return { ageSeconds, hits, ip, words: undefined };
}

/** One change made during a walk; the newest comes first. */
export interface RecentChange {
  readonly list: string;
  readonly ip: string;
  /** undefined: removed. */
  readonly seen: RecentSeen | undefined;
  readonly previous: RecentChange | undefined;
}

/** Looks a (list, address) up in a walk's changes first, then in the context's lists. */
export function lookupRecent(
  changes: RecentChange | undefined, lists: RecentSource, list: string, ip: string, words: Words, mask: Words | undefined,
): RecentSeen | undefined {
  for (let c = changes; c; c = c.previous) {
    if (c.list === list && c.ip === ip) return c.seen;
  }
  return lists.find(list, ip, words, mask);
}

/** xt_recent keeps addresses masked with the rule's --mask. */
export function recentKey(ip: string, words: Words, mask: Words | undefined): string {
  if (!mask) return ip;
  return Array.from(words, (w, i) => ((w & mask[i]!) >>> 0).toString(16)).join(':');
}

/**
 * A caller's own lists (TraceOptions.recentLookup) as a walk asks them: nothing is copied, so a
 * simulator that keeps its clients' entries pays nothing per connection to show them.
 */
export function callerRecentLists(lookup: RecentLookup): RecentSource {
  return {
    empty: false,
    find(list, ip, words, mask) {
      if (mask === undefined || mask.every((w) => w === 0xffffffff)) return lookup.find(list, ip);
      const masked = { network: words.map((w, i) => (w & mask[i]!) >>> 0), mask };
      for (const [address, seen] of lookup.entries(list)) {
        const entry = normalizeAddress(address);
        if (entry !== undefined && inNetwork(ipToWords(entry), masked)) return seen;
      }
      return undefined;
    },
  };
}
