/**
 * Tracing packets on one node, in any mode: the mode's driver makes the tracer (the tracer
 * context, the node's local addresses and masquerade mark, comes from what was compiled), and
 * each packet goes to the proxier of its family. Prepared once, then used for any number of
 * packets (`--flows`).
 */
import type { Ruleset } from '../iptables/types.js';
import { createTracer } from '../trace/tracer.js';
import type { TraceContext } from '../trace/types.js';
import type { CompiledNode } from './mode-driver.js';
import { driverOf } from './modes.js';
import type { NodeTracer } from './trace-context.js';

export type { NodeTracer } from './trace-context.js';
export { traceContextOf } from './trace-context.js';

export function createNodeTracer(compiled: CompiledNode): NodeTracer {
  return driverOf(compiled).tracer(compiled);
}

/** A tracer over rulesets read from iptables-save dumps, with the node's addresses given. */
export function createRulesetTracer(rulesets: readonly Ruleset[], context: TraceContext): NodeTracer {
  return createTracer(rulesets, context);
}
