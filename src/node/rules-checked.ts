/**
 * How many iptables rules a packet is checked against on its path: the cost figure `kpsim
 * compare` prints per mode ("rules/lookup"). iptables mode scans KUBE-SERVICES one service at a
 * time; IPVS mode matches ipsets, so only iptables mode grows with the number of services.
 */
import { renderRule } from '../iptables/render.js';
import type { Ruleset } from '../iptables/types.js';
import type { Hop } from '../trace/types.js';

/** "table chain rule-text" → 1-based position of the rule in its chain. */
export function rulePositions(rulesets: readonly Ruleset[]): Map<string, number> {
  const positions = new Map<string, number>();
  for (const ruleset of rulesets) {
    for (const [tableName, table] of ruleset.tables) {
      for (const chain of table.chains.values()) {
        chain.rules.forEach((rule, i) => {
          const key = `${tableName} ${chain.name} ${renderRule(rule)}`;
          if (!positions.has(key)) positions.set(key, i + 1);
        });
      }
    }
  }
  return positions;
}

/**
 * Rules the packet is checked against on its path, up to each rule that matched: within one
 * visit of a chain, the rules from where the last match left off to the next match. A rule that
 * is not in the ruleset (one of kube-proxy's assumed jumps from a built-in chain) counts as one.
 * The rules a chain holds after its last match are not counted, so this is a lower bound.
 */
export function rulesCheckedOnPath(hops: readonly Hop[], positions: ReadonlyMap<string, number>): number {
  let checked = 0;
  const lastAtDepth: { chain: string; position: number }[] = [];
  for (const hop of hops) {
    const depth = hop.depth ?? 0;
    lastAtDepth.length = Math.min(lastAtDepth.length, depth + 1);
    const position = positions.get(`${hop.table} ${hop.chain} ${hop.rule}`);
    if (position === undefined) {
      checked += 1;
      continue;
    }
    const previous = lastAtDepth[depth];
    checked += previous !== undefined && previous.chain === `${hop.table} ${hop.chain}` ? position - previous.position : position;
    lastAtDepth[depth] = { chain: `${hop.table} ${hop.chain}`, position };
  }
  return checked;
}
