/**
 * What the proxy's entry points accept as "the node's view of the cluster": one proxier state,
 * one per family, or what the CLI's loadClusterFromOptions returns (it has `states`).
 */
import type { ProxierState } from '../tracker/types.js';

export type ProxyInput = ProxierState | readonly ProxierState[] | { readonly states: readonly ProxierState[] };

export function statesOf(input: ProxyInput): readonly ProxierState[] {
  if (Array.isArray(input)) return input as readonly ProxierState[];
  if ('states' in input) return input.states;
  return [input as ProxierState];
}
