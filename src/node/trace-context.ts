/** What a tracer over a compiled node knows of it: the node's addresses and masquerade mark. */
import type { Packet, TraceContext, TraceOptions, TraceResult } from '../trace/types.js';
import type { ProxierState } from '../tracker/types.js';

/** A tracer prepared for one node, in any mode: any number of packets (`--flows`). */
export interface NodeTracer {
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
}

/** The node's addresses and mark, as the compiled states know them. */
export function traceContextOf(states: readonly ProxierState[]): TraceContext {
  const localAddresses = [...new Set(states.flatMap((s) => s.localAddresses))];
  const mark = states[0]?.masqueradeMark;
  return { localAddresses, ...(mark !== undefined ? { masqueradeMark: Number.parseInt(mark, 16) } : {}) };
}
