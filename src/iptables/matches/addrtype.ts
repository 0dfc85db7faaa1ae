/** `-m addrtype --src-type|--dst-type TYPES` (libxt_addrtype): the routing type of an address (LOCAL, ...). */
import { not, type MatchBase, type MatchModule, type Mutable } from './module.js';

export interface AddrtypeMatch extends MatchBase {
  readonly kind: 'addrtype';
  readonly srcType?: { readonly negated: boolean; readonly types: readonly string[] };
  readonly dstType?: { readonly negated: boolean; readonly types: readonly string[] };
  readonly limitIfaceIn: boolean;
  readonly limitIfaceOut: boolean;
}

/** libxt_addrtype's names, in the order of the kernel's RTN_* bits (the order it prints). */
export const ADDRESS_TYPES: readonly string[] = [
  'UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST',
  'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE',
];

export const addrtype: MatchModule<AddrtypeMatch> = {
  kind: 'addrtype',
  names: { addrtype: { arity: { '--src-type': 1, '--dst-type': 1, '--limit-iface-in': 0, '--limit-iface-out': 0 } } },

  read(reader) {
    const readTypes = (name: string): { negated: boolean; types: string[] } | undefined => {
      const option = reader.option(name);
      if (!option) return undefined;
      const types = option.values[0]!.split(',').map((t) => t.toUpperCase());
      const unknown = types.filter((t) => !ADDRESS_TYPES.includes(t));
      if (unknown.length > 0) reader.problems.push(`${name}: unknown address type ${unknown.join(',')}`);
      return { negated: option.negated, types: ADDRESS_TYPES.filter((t) => types.includes(t)) };
    };
    const srcType = readTypes('--src-type');
    const dstType = readTypes('--dst-type');
    const limitIfaceIn = reader.option('--limit-iface-in') !== undefined;
    const limitIfaceOut = reader.option('--limit-iface-out') !== undefined;
    if (limitIfaceIn || limitIfaceOut) reader.notes.push('-m addrtype --limit-iface-in/out is not evaluated');
    const match: Mutable<AddrtypeMatch> = { module: reader.module, implicit: reader.implicit, kind: 'addrtype' } as Mutable<AddrtypeMatch>;
    if (srcType) match.srcType = srcType;
    if (dstType) match.dstType = dstType;
    match.limitIfaceIn = limitIfaceIn;
    match.limitIfaceOut = limitIfaceOut;
    match.notes = reader.notes;
    match.other = reader.other;
    return match;
  },

  canonical(match) {
    const parts: string[] = [];
    const types = (t: readonly string[]): string => ADDRESS_TYPES.filter((x) => t.includes(x)).join(',');
    if (match.srcType) parts.push(`${not(match.srcType.negated)}--src-type ${types(match.srcType.types)}`);
    if (match.dstType) parts.push(`${not(match.dstType.negated)}--dst-type ${types(match.dstType.types)}`);
    if (match.limitIfaceIn) parts.push('--limit-iface-in');
    if (match.limitIfaceOut) parts.push('--limit-iface-out');
    return parts;
  },

  compile(match, checks) {
    if (match.srcType) checks.addressTypes('src', match.srcType.types, match.srcType.negated);
    if (match.dstType) checks.addressTypes('dst', match.dstType.types, match.dstType.negated);
  },
};
