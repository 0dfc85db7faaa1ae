/**
 * The simulation side of a mode whose tracer walks the compiled rules (iptables and nftables
 * mode): connections placed by walking the rules with the kernel's draw, the expected shares
 * from a fresh client's trace, and the rules a first packet is checked against on its path.
 * The two modes differ only in their tracer, how their rules are numbered and the picker's label.
 */
import { type SampleTracer, ruleWalkPicker } from '../../simulate/rule-walk-picker.js';
import type { Packet, TraceOptions, TraceResult } from '../../trace/types.js';
import type { CompiledNode, ModeDriver } from '../mode-driver.js';
import { rulesCheckedOnPath } from '../rules-checked.js';

export interface RuleWalkTracer extends SampleTracer {
  trace(packet: Packet, opts?: TraceOptions): TraceResult;
}

export interface RuleWalkMode<C extends CompiledNode> {
  tracerOf(compiled: C): RuleWalkTracer;
  /** "table chain rule-text" → 1-based position of the rule in its chain. */
  rulePositions(compiled: C): ReadonlyMap<string, number>;
  /** How the picker names itself in reports ("iptables random"). */
  label: string;
}

/** A client the rules have never seen (no recent lists), outside the cluster: the expected shares. */
function freshClient(family: 4 | 6): string {
  return family === 4 ? '100.64.0.1' : '2001:db8:c11e::1';
}

export function ruleWalkSimulation<C extends CompiledNode>(mode: RuleWalkMode<C>): Pick<ModeDriver<C>, 'variants' | 'picker' | 'expectedShares' | 'rulesPerLookup'> {
  return {
    variants: () => [{ scheduler: 'random', options: {} }],
    picker(compiled, target, opts) {
      return ruleWalkPicker(mode.tracerOf(compiled), {
        packet: { proto: target.proto, dst: target.address, dport: target.port },
        endpoints: target.servicePort.categorized.allReachableEndpoints.map((e) => e.endpoint),
        seed: opts.seed,
        label: mode.label,
      });
    },
    expectedShares(compiled, target) {
      const traced = mode.tracerOf(compiled).trace({ proto: target.proto, src: freshClient(target.state.family), dst: target.address, dport: target.port }, { fromNode: false });
      return new Map(traced.endpoints.map((e) => [e, traced.probabilities[e] ?? 0]));
    },
    rulesPerLookup(compiled, packets) {
      const positions = mode.rulePositions(compiled);
      const tracer = mode.tracerOf(compiled);
      let checked = 0;
      packets.forEach((packet, i) => {
        checked += rulesCheckedOnPath(tracer.sample(packet, i + 1).hops, positions);
      });
      return packets.length > 0 ? checked / packets.length : 0;
    },
  };
}
