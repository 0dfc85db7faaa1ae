/**
 * Tracing packets on one node, in either mode: the tracer context (the node's local addresses,
 * the masquerade mark) comes from what was compiled, and each packet goes to the proxier of its
 * family. Prepared once, then used for any number of packets (`--flows`).
 */
import { KpsimError } from '../errors.js';
import type { Ruleset } from '../iptables/types.js';
import { traceIpvs } from '../trace/ipvs.js';
import { createTracer } from '../trace/tracer.js';
import type { Packet, TraceContext, TraceOptions, TraceResult } from '../trace/types.js';
import type { ProxierState } from '../tracker/types.js';
import { ipFamily } from '../util/ip.js';
import type { CompiledIpvsNode, CompiledIptables } from './compile-node.js';

export interface NodeTracer {
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
}

/** The node's addresses and mark, as the compiled states know them. */
export function traceContextOf(states: readonly ProxierState[]): TraceContext {
  const localAddresses = [...new Set(states.flatMap((s) => s.localAddresses))];
  const mark = states[0]?.masqueradeMark;
  return { localAddresses, ...(mark !== undefined ? { masqueradeMark: Number.parseInt(mark, 16) } : {}) };
}

export function createNodeTracer(compiled: CompiledIptables | CompiledIpvsNode): NodeTracer {
  if (compiled.mode === 'iptables') return createTracer(compiled.rulesets, traceContextOf(compiled.states));
  return {
    trace: (packet, opts = {}) => {
      const family = ipFamily(String(packet.dst));
      const table = compiled.tables.find((t) => t.family === family) ?? (family === undefined ? compiled.tables[0] : undefined);
      if (!table) {
        throw new KpsimError('KPSIM_ERR_TRACE_BAD_PACKET', `an IPv${family} packet, but node ${compiled.node.name} has no IPv${family} IPVS table`, { path: 'packet.dst' });
      }
      return traceIpvs(table, packet, opts);
    },
  };
}

/** A tracer over rulesets read from iptables-save dumps, with the node's addresses given. */
export function createRulesetTracer(rulesets: readonly Ruleset[], context: TraceContext): NodeTracer {
  return createTracer(rulesets, context);
}
