/**
 * An nftables transaction as kube-proxy builds one with knftables (Transaction.Add / Flush /
 * Delete of tables, chains, sets, maps, rules and elements), and its text as knftables hands
 * it to `nft -f`: one command per line, applied by the kernel all or nothing.
 *
 *   add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
 *   flush chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
 *   add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
 *   delete element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 }
 *   delete chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
 */
import { chainLine, elementText, quoteComment, setLine, tableLine } from './render-script.js';
import type { NftBaseChain, NftElement, NftFamily, NftRule, NftSet } from './types.js';

/** A set's or map's definition (what `add set` / `add map` carries). */
export type NftSetSpec = Omit<NftSet, 'elements'>;

export type NftOp =
  | { readonly verb: 'add'; readonly kind: 'table'; readonly comment?: string }
  | { readonly verb: 'add'; readonly kind: 'chain'; readonly name: string; readonly comment?: string; readonly base?: NftBaseChain }
  | { readonly verb: 'flush' | 'delete'; readonly kind: 'chain'; readonly name: string }
  | { readonly verb: 'add'; readonly kind: 'set'; readonly set: NftSetSpec }
  | { readonly verb: 'flush' | 'delete'; readonly kind: 'set'; readonly name: string; readonly setKind: 'set' | 'map' }
  | { readonly verb: 'add'; readonly kind: 'rule'; readonly chain: string; readonly rule: NftRule }
  | { readonly verb: 'add' | 'delete'; readonly kind: 'element'; readonly set: string; readonly setKind: 'set' | 'map'; readonly element: NftElement };

/** One transaction against one table ("ip kube-proxy"): every op applies, or none does. */
export interface NftTransaction {
  readonly family: NftFamily;
  readonly table: string;
  readonly ops: readonly NftOp[];
}

/** Counts per verb and kind ("add element": 3), for logs and reports. */
export function countOps(tx: NftTransaction): Map<string, number> {
  const counts = new Map<string, number>();
  for (const op of tx.ops) {
    const key = `${op.verb} ${op.kind}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** One op as knftables writes it for `nft -f`. */
export function renderOp(family: NftFamily, table: string, op: NftOp): string {
  const prefix = `${family} ${table}`;
  switch (op.kind) {
    case 'table':
      return tableLine({ family, name: table, ...(op.comment !== undefined ? { comment: op.comment } : {}), sets: new Map(), chains: new Map() });
    case 'chain':
      if (op.verb === 'add') {
        return chainLine(prefix, { name: op.name, ...(op.comment !== undefined ? { comment: op.comment } : {}), ...(op.base !== undefined ? { base: op.base } : {}), rules: [] });
      }
      return `${op.verb} chain ${prefix} ${op.name}`;
    case 'set':
      if (op.verb === 'add') return setLine(prefix, { ...op.set, elements: [] });
      return `${op.verb} ${op.setKind} ${prefix} ${op.name}`;
    case 'rule':
      return `add rule ${prefix} ${op.chain} ${op.rule.text}${op.rule.comment !== undefined ? ` comment ${quoteComment(op.rule.comment)}` : ''}`;
    case 'element':
      // A delete names the key only, as knftables writes it.
      return op.verb === 'add'
        ? `add element ${prefix} ${op.set} { ${elementText(op.element)} }`
        : `delete element ${prefix} ${op.set} { ${op.element.key.join(' . ')} }`;
  }
}

/** The transaction as an `nft -f` file ('' for an empty one). */
export function renderTransaction(tx: NftTransaction): string {
  const out: string[] = [];
  for (const op of tx.ops) out.push(renderOp(tx.family, tx.table, op), '\n');
  return out.join('');
}
