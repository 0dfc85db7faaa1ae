/**
 * Where the compiler writes its chains and rules. kube-proxy writes them into one text buffer
 * per table; kpsim writes them either into a Ruleset (what the tracer walks and the renderers
 * print) or straight into iptables-save text (text-sink.ts), so `kpsim compile` need not build
 * 370k rule objects for a 10k-service cluster only to print them. The compiler is the same code
 * for both, so both say the same thing.
 */
import { EndpointChain, type EndpointChainShape, PolicyChain, type PolicyChainPlan } from './deferred-chains.js';
import { declareRunInto } from './declared-chains.js';
import { adoptChain, appendRule, declareChain, tableOf } from './ruleset-builder.js';
import type { ServicePortChains } from './service-port-chains.js';
import type { EndpointInfo } from '../tracker/types.js';
import type { Chain, Ruleset, TableName } from './types.js';

/** `C` is the sink's handle of a declared chain. */
export interface RuleSink<C> {
  /** Declare a chain (`:NAME - [0:0]`); chains are printed in the order they are declared. */
  declareChain(table: TableName, name: string): C;
  /** Append a rule to a declared chain; its rules are printed in the order they are appended. */
  appendRule(chain: C, args: readonly string[]): void;
  /**
   * Declare a chain and append its rules, all known at once (a KUBE-SEP chain): what
   * declareChain and an appendRule per rule do, but a Ruleset gets the chain's rules in an
   * array of exactly their number (one grown by push has room for 16 more, and a big cluster
   * has 100k of these chains).
   */
  writeChain(table: TableName, name: string, rules: readonly (readonly string[])[]): C;
  /**
   * Declare a chain another compile wrote, with its rules (shared-rules.ts: a cluster's nodes
   * share chains that do not depend on the node). Only a sink whose handles outlive a compile
   * can: the Ruleset sink.
   */
  adoptChain(table: TableName, chain: C): void;
  /**
   * The sink is done with a rule's arguments once appendRule or writeChain returns (it copies
   * them as text): the compiler may then hand it one array again and again, filled anew for each
   * endpoint, instead of a new array per rule (hundreds of thousands for a big cluster).
   */
  readonly copiesArgs?: boolean;
  /**
   * Declare a KUBE-SVC or KUBE-SVL chain with its rules, given as what they are made of
   * (deferred-chains.ts): a sink that keeps the plan and makes the rules when they are read.
   * Without it, the compiler appends the rules one by one.
   */
  writePolicyChain?(table: TableName, name: string, plan: PolicyChainPlan): C;
  /** The same for a KUBE-SEP chain: the port's shape and the endpoint. */
  writeEndpointChain?(table: TableName, name: string, shape: EndpointChainShape, ip: string, endpoint: string): C;
  /**
   * Declare a service port's KUBE-SVC/KUBE-SVL and KUBE-SEP chains at once, as what they are made
   * of (service-port-chains.ts): a sink that keeps them so, one object for the port's chains,
   * and writes them when it is read. Without it (or when chains are shared with other compiles),
   * the compiler declares them one by one.
   */
  writeServicePortChains?(table: TableName, chains: ServicePortChains): void;
  /**
   * Declare a port's KUBE-SEP chains, one per endpoint (`names[i]` for `endpoints[i]`), with their
   * rules, as one block: no handle per chain. Used when no single KUBE-SEP chain is taken over
   * from another compile (PortChainReuse.keepsEndpointChains); without it, one writeChain each.
   */
  writeEndpointChains?(table: TableName, shape: EndpointChainShape, endpoints: readonly EndpointInfo[], names: readonly string[]): void;
}

/** Writes into a Ruleset that has the tables written to. */
export class RulesetSink implements RuleSink<Chain> {
  constructor(private readonly ruleset: Ruleset) {}

  declareChain(table: TableName, name: string): Chain {
    return declareChain(tableOf(this.ruleset, table), name);
  }

  appendRule(chain: Chain, args: readonly string[]): void {
    appendRule(chain, args);
  }

  writeChain(table: TableName, name: string, rules: readonly (readonly string[])[]): Chain {
    const chain: Chain = { name, rules: rules.map((args) => ({ chain: name, args })) };
    adoptChain(tableOf(this.ruleset, table), chain);
    return chain;
  }

  adoptChain(table: TableName, chain: Chain): void {
    adoptChain(tableOf(this.ruleset, table), chain);
  }

  /** A chain whose rules are made when first read: most of a big ruleset is only ever rendered. */
  writePolicyChain(table: TableName, name: string, plan: PolicyChainPlan): Chain {
    const chain = new PolicyChain(name, plan);
    adoptChain(tableOf(this.ruleset, table), chain);
    return chain;
  }

  writeEndpointChain(table: TableName, name: string, shape: EndpointChainShape, ip: string, endpoint: string): Chain {
    const chain = new EndpointChain(name, shape, ip, endpoint);
    adoptChain(tableOf(this.ruleset, table), chain);
    return chain;
  }

  /** One object for the port's chains; their chain objects are made if the table's Map is read (declared-chains.ts). */
  writeServicePortChains(table: TableName, chains: ServicePortChains): void {
    declareRunInto(tableOf(this.ruleset, table), chains);
  }
}
