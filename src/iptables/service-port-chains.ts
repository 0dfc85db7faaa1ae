/**
 * A service port's KUBE-SVC, KUBE-SVL and KUBE-SEP chains as one run of a Ruleset table
 * (declared-chains.ts): what they are made of, kept in one object, not a chain object per
 * endpoint. The compile declares them one after the other (syncProxyRules writes the policy
 * chains, then one KUBE-SEP chain per reachable endpoint), so they take one place in the
 * table's order. The render writes their text from here; the first reader of the table's Map
 * gets them as deferred chains (deferred-chains.ts), whose rules are the lines written here.
 */
import type { EndpointInfo } from '../tracker/types.js';
import { ChainRun } from './declared-chains.js';
import {
  EndpointChain, type EndpointChainShape, PolicyChain, type PolicyChainPlan,
  endpointChainTextBytes, policyChainRuleCount, policyChainTextBytes, writeEndpointChainLines, writePolicyChainLines,
} from './deferred-chains.js';
import { LINE_SCRATCH, type LineScratch, asciiBytes } from './line-scratch.js';
import type { TextBuffer } from './save-text.js';
import type { Chain } from './types.js';

/** What one policy chain of the run is: its name and plan. */
export interface PlannedPolicyChain {
  readonly name: string;
  readonly plan: PolicyChainPlan;
}

export class ServicePortChains extends ChainRun {
  readonly chainCount: number;

  /**
   * `policies`: KUBE-SVC and/or KUBE-SVL, in declaration order; `endpoints`: the reachable
   * endpoints, each with its KUBE-SEP chain in `endpointChains` (same position).
   */
  constructor(
    readonly policies: readonly PlannedPolicyChain[],
    readonly shape: EndpointChainShape,
    readonly endpoints: readonly EndpointInfo[],
    readonly endpointChains: readonly string[],
  ) {
    super();
    this.chainCount = policies.length + endpoints.length;
  }

  makeChains(): Chain[] {
    const chains: Chain[] = [];
    for (const policy of this.policies) chains.push(new PolicyChain(policy.name, policy.plan));
    const { shape, endpoints, endpointChains } = this;
    for (let i = 0; i < endpoints.length; i++) chains.push(new EndpointChain(endpointChains[i]!, shape, endpoints[i]!.ip, endpoints[i]!.endpoint));
    return chains;
  }

  get entryChainCount(): number {
    return this.policies.length;
  }

  chainName(i: number): string {
    const policies = this.policies;
    return i < policies.length ? policies[i]!.name : this.endpointChains[i - policies.length]!;
  }

  ruleCount(): number {
    let n = 2 * this.endpoints.length;
    for (const policy of this.policies) n += policyChainRuleCount(policy.plan);
    return n;
  }

  writeDeclarations(out: TextBuffer): void {
    const scratch = LINE_SCRATCH;
    for (const policy of this.policies) writeDeclarationLine(scratch, out, policy.name);
    const names = this.endpointChains;
    for (let i = 0; i < this.endpoints.length; i++) writeDeclarationLine(scratch, out, names[i]!);
    scratch.flush(out);
  }

  writeRules(out: TextBuffer): void {
    const scratch = LINE_SCRATCH;
    for (const policy of this.policies) writePolicyChainLines(scratch, out, policy.name, policy.plan);
    const { shape, endpoints, endpointChains } = this;
    for (let i = 0; i < endpoints.length; i++) writeEndpointChainLines(scratch, out, endpointChains[i]!, shape, endpoints[i]!.ip, endpoints[i]!.endpoint);
    scratch.flush(out);
  }

  /**
   * Counted from the first endpoint, times their number: the endpoints of a port write lines
   * of about one length, and reading every endpoint here (110k, spread over the heap) cost a
   * tenth of the render. The estimate only sizes the render's buffer.
   */
  estimatedTextBytes(): number {
    let bytes = 0;
    for (const policy of this.policies) bytes += 2 * policy.name.length + 16 + policyChainTextBytes(policy.name, policy.plan);
    const { shape, endpoints, endpointChains } = this;
    if (endpoints.length > 0) {
      const name = endpointChains[0]!;
      bytes += endpoints.length * (2 * name.length + 16 + endpointChainTextBytes(name, shape, endpoints[0]!.ip, endpoints[0]!.endpoint));
    }
    return bytes;
  }
}

/**
 * KUBE-SEP chains as text: each endpoint's declaration (`:NAME - [0:0]`) into `declarations`,
 * its two rules into `rules`, in the order of `endpoints` (`names[i]` is the chain of
 * `endpoints[i]`), through the line scratch, which is left empty.
 */
export function writeEndpointChainsText(
  declarations: TextBuffer,
  rules: TextBuffer,
  shape: EndpointChainShape,
  endpoints: readonly EndpointInfo[],
  names: readonly string[],
): void {
  const scratch = LINE_SCRATCH;
  for (let i = 0; i < endpoints.length; i++) writeDeclarationLine(scratch, declarations, names[i]!);
  scratch.flush(declarations);
  for (let i = 0; i < endpoints.length; i++) writeEndpointChainLines(scratch, rules, names[i]!, shape, endpoints[i]!.ip, endpoints[i]!.endpoint);
  scratch.flush(rules);
}

/** `:NAME - [0:0]` through the scratch (TextBuffer.writeChainDeclaration's text), or through `out` for a name that is not ASCII. */
function writeDeclarationLine(scratch: LineScratch, out: TextBuffer, name: string): void {
  if (scratch.room(out, name.length + 10)) {
    const mark = scratch.length;
    scratch.code(58); // :
    if (scratch.ascii7(name)) {
      scratch.bytes(DECLARATION_END);
      return;
    }
    scratch.length = mark;
  }
  scratch.flush(out);
  out.writeChainDeclaration(name, undefined);
}

const DECLARATION_END = asciiBytes(' - [0:0]\n');
