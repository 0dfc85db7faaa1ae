/**
 * What the nftables sync tests share: one sync made as the agent's nftables syncer makes it
 * (stale-chain cleanup, then the sync's transaction), and the comparison of a kernel's tables
 * with a full compile, in any creation order, leaving out service chains flushed as stale.
 */
import { renderNftCanonical } from '../../src/nftables/canonical.js';
import type { NftablesRulesWriter } from '../../src/nftables/incremental-sync.js';
import type { NftKernel } from '../../src/nftables/kernel-nftables.js';
import { isServiceChainName } from '../../src/nftables/names.js';
import type { NftTransaction } from '../../src/nftables/transaction.js';
import type { NftRuleset, NftTable } from '../../src/nftables/types.js';
import type { ProxierState } from '../../src/tracker/types.js';

const byName = ([a]: readonly [string, unknown], [b]: readonly [string, unknown]): number => (a < b ? -1 : a > b ? 1 : 0);

/** The tables with chains and sets in name order, without the chains `leave` names. */
export function sortedRuleset(rs: NftRuleset, leave: (table: NftTable, chain: string) => boolean = () => false): NftRuleset {
  return {
    ...rs,
    tables: rs.tables.map((t) => ({
      ...t,
      sets: new Map([...t.sets].sort(byName)),
      chains: new Map([...t.chains].filter(([name]) => !leave(t, name)).sort(byName)),
    })),
  };
}

function firstDifference(want: string, got: string): string {
  const a = want.split('\n');
  const b = got.split('\n');
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return `line ${i + 1}:\n  want: ${JSON.stringify(a.slice(Math.max(0, i - 2), i + 3))}\n  got:  ${JSON.stringify(b.slice(Math.max(0, i - 2), i + 3))}`;
}

/**
 * undefined when the kernel's tables are the compiled ones (chains and sets in any order),
 * apart from empty service chains the compile does not have (flushed as stale, deleted later);
 * else the first difference.
 */
export function nftDifference(kernel: NftRuleset, compiled: NftRuleset): string | undefined {
  const compiledChains = new Set(compiled.tables.flatMap((t) => [...t.chains.keys()].map((c) => `${t.family} ${c}`)));
  const stale = (t: NftTable, chain: string): boolean =>
    isServiceChainName(chain) && !compiledChains.has(`${t.family} ${chain}`) && t.chains.get(chain)!.rules.length === 0;
  const want = renderNftCanonical(sortedRuleset(compiled));
  const got = renderNftCanonical(sortedRuleset(kernel, stale));
  return want === got ? undefined : firstDifference(want, got);
}

/** One sync as the agent's nftables syncer makes it: the stale-chain cleanup, then the sync. */
export function syncOnce(writer: NftablesRulesWriter, kernel: NftKernel, state: ProxierState, full: boolean, updatedServices: ReadonlySet<string>, now: number): { cleanup?: NftTransaction; tx: NftTransaction } {
  const family = state.family === 4 ? 'ip' : 'ip6';
  const cleanup = writer.staleChainCleanup(family, now);
  if (cleanup) kernel.apply(cleanup);
  const result = writer.sync({ state, full, updatedServices, now, existingChains: kernel.chainNames(family), existingSets: kernel.setNames(family) });
  kernel.apply(result.tx);
  return { ...(cleanup ? { cleanup } : {}), tx: result.tx };
}
