/**
 * The kernel's iptables tables as kube-proxy's restores leave them: each user chain with its
 * rules, changed only by `iptables-restore --noflush` payloads (restore.ts). What the kernel
 * checks is checked here too, before anything is applied (a table is replaced whole at COMMIT,
 * so a failed restore changes nothing): a jump must name a chain that exists once the payload
 * is applied, and a chain may be deleted only when no rule jumps to it.
 *
 * Pure: this is the state an agent's syncs build up, saved as `iptables-save` would list it
 * (kube-proxy's form; chains in the order they were created), so that a partial sync's result
 * can be compared with a full compile and with a real kernel's. Chains keep the payload's
 * segments, and jump references are counted per segment: a restore that rewrites KUBE-SERVICES
 * with one service changed reads only that service's lines again.
 */
import type { Family } from '../util/ip.js';
import { type ChainRules, type RestorePayload, type RestoreTable, chainLines, lineCount } from './restore.js';
import type { TableName } from './types.js';

/** Why a restore was refused, as iptables-restore says it (the line it stopped at). */
export class RestoreError extends Error {
  override name = 'RestoreError';
}

interface KernelTable {
  /** User chains in creation order, each with its rules. */
  readonly chains: Map<string, ChainRules>;
  /** How many rules jump to each user chain. */
  readonly refs: Map<string, number>;
}

/** The user chains each segment's lines jump to, worked out once per segment. */
const targetsOfSegment = new WeakMap<readonly string[], readonly string[]>();

function segmentTargets(lines: readonly string[]): readonly string[] {
  let targets = targetsOfSegment.get(lines);
  if (targets === undefined) {
    const found: string[] = [];
    for (const line of lines) {
      const target = jumpTarget(line);
      if (target !== undefined) found.push(target);
    }
    targetsOfSegment.set(lines, (targets = found));
  }
  return targets;
}

export class IptablesKernel {
  readonly #tables = new Map<TableName, KernelTable>();

  constructor(readonly family: Family) {}

  /** Apply a restore payload with --noflush semantics; throws RestoreError (nothing applied) when the kernel would refuse it. */
  restore(payload: RestorePayload): void {
    // Every table is checked before any is changed, as a failed restore changes nothing.
    const checked = payload.tables.map((table) => ({ table, delta: this.#check(table) }));
    for (const { table, delta } of checked) this.#apply(table, delta);
  }

  /** The user chains of a table (what kube-proxy reads back with iptables-save -t nat). */
  chains(table: TableName): ReadonlySet<string> {
    return new Set(this.#tables.get(table)?.chains.keys() ?? []);
  }

  /** A chain's rule lines; undefined when the chain does not exist. */
  rules(table: TableName, chain: string): readonly string[] | undefined {
    const segments = this.#tables.get(table)?.chains.get(chain);
    return segments === undefined ? undefined : chainLines(segments);
  }

  ruleCount(table: TableName): number {
    let n = 0;
    for (const segments of this.#tables.get(table)?.chains.values() ?? []) n += lineCount(segments);
    return n;
  }

  /** iptables-save text of every table (filter, then nat), user chains in creation order. */
  save(): string {
    const parts: string[] = [];
    for (const name of ['filter', 'nat', 'mangle', 'raw'] as const) {
      const table = this.#tables.get(name);
      if (table === undefined) continue;
      parts.push(`*${name}`);
      for (const chain of table.chains.keys()) parts.push(`:${chain} - [0:0]`);
      for (const segments of table.chains.values()) for (const lines of segments) for (const line of lines) parts.push(line);
      parts.push('COMMIT');
    }
    parts.push('');
    return parts.join('\n');
  }

  /** The change in jump references the table's part makes; throws when the kernel would refuse it. */
  #check(payload: RestoreTable): Map<string, number> {
    const current = this.#tables.get(payload.name);
    const delta = new Map<string, number>();
    const adjust = (lines: readonly string[], by: number): void => {
      if (lines.length === 0) return;
      for (const target of segmentTargets(lines)) delta.set(target, (delta.get(target) ?? 0) + by);
    };
    const deleted = new Set(payload.deleted);
    // A declared chain is flushed and refilled: only the segments it gains or loses move
    // references. A partial sync's top-level chains keep most segments where they were, so
    // the common start and end are skipped by identity before anything is counted.
    for (const [chain, segments] of payload.chains) {
      const old = current?.chains.get(chain) ?? [];
      let start = 0;
      while (start < old.length && start < segments.length && old[start] === segments[start]) start++;
      let oldEnd = old.length;
      let newEnd = segments.length;
      while (oldEnd > start && newEnd > start && old[oldEnd - 1] === segments[newEnd - 1]) {
        oldEnd--;
        newEnd--;
      }
      for (let i = start; i < oldEnd; i++) adjust(old[i]!, -1);
      for (let i = start; i < newEnd; i++) adjust(segments[i]!, +1);
    }
    for (const chain of deleted) {
      if (!payload.chains.has(chain)) for (const lines of current?.chains.get(chain) ?? []) adjust(lines, -1);
    }
    const existsAfter = (chain: string): boolean => !deleted.has(chain) && (payload.chains.has(chain) || (current?.chains.has(chain) ?? false));
    for (const chain of deleted) {
      if ((current?.refs.get(chain) ?? 0) + (delta.get(chain) ?? 0) > 0) throw new RestoreError(`${payload.name}: -X ${chain}: Device or resource busy (a rule still jumps to it)`);
    }
    for (const [target, by] of delta) {
      if (by > 0 && !existsAfter(target)) {
        const line = [...payload.chains.values()].flat().flat().find((l) => jumpTarget(l) === target) ?? target;
        throw new RestoreError(`${payload.name}: ${line}: Couldn't load target \`${target}': No such file or directory`);
      }
    }
    return delta;
  }

  #apply(payload: RestoreTable, delta: ReadonlyMap<string, number>): void {
    let table = this.#tables.get(payload.name);
    if (table === undefined) this.#tables.set(payload.name, (table = { chains: new Map(), refs: new Map() }));
    // Map.set keeps an existing chain where it was: iptables-save lists chains in creation order.
    for (const [chain, segments] of payload.chains) table.chains.set(chain, segments);
    for (const chain of payload.deleted) table.chains.delete(chain);
    for (const [chain, by] of delta) {
      const count = (table.refs.get(chain) ?? 0) + by;
      if (count > 0) table.refs.set(chain, count);
      else table.refs.delete(chain);
    }
  }
}

/** The user chain a rule line jumps to (kube-proxy's chains all start KUBE-); undefined for a built-in target. */
export function jumpTarget(line: string): string | undefined {
  const at = line.lastIndexOf(' -j ');
  if (at < 0) return undefined;
  const start = at + 4;
  if (!line.startsWith('KUBE-', start)) return undefined;
  const end = line.indexOf(' ', start);
  return end < 0 ? line.slice(start) : line.slice(start, end);
}
