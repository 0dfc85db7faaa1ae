/**
 * The chains of one service port that any node of a cluster may take over from another node's
 * compile (PortChainReuse): chain names already hashed, KUBE-SEP chains, KUBE-SVC/KUBE-SVL
 * chains over the same endpoints, and whole blocks of KUBE-SEP chains. Generic over the sink's
 * chain handle `C` (rule objects, or text: shared-text.ts) and the kept block `B`.
 */
import { sameEndpoints } from '../topology/categorize.js';
import { type EndpointBlock, EndpointBlocks } from '../topology/endpoint-blocks.js';
import type { EndpointInfo, ServicePortInfo } from '../tracker/types.js';
import type { Protocol } from '../model/types.js';
import { endpointChainName } from './names.js';
import type { PortChainReuse } from './sync-context.js';

/** How many views of one port's policy chains and endpoint chains are kept. */
export const KEPT_VARIANTS = 4;

/**
 * KUBE-SEP chain names by endpoint, per port: hashed once for every node, and for every kind of
 * fragment (rule objects and text) made of the port.
 */
export class EndpointChainNameCache {
  /** A Map, not a WeakMap: the ports live as long as the cluster view this cache belongs to. */
  readonly #byPort = new Map<ServicePortInfo, Map<string, string>>();

  of(info: ServicePortInfo): Map<string, string> {
    let names = this.#byPort.get(info);
    if (names === undefined) this.#byPort.set(info, (names = new Map()));
    return names;
  }

  /** The names hashed so far for `info`, if any (nothing is made). */
  peek(info: ServicePortInfo): Map<string, string> | undefined {
    return this.#byPort.get(info);
  }
}

export class PortReuse<C extends { readonly name: string }, B extends EndpointBlock> implements PortChainReuse<C> {
  /** Names hashed before, by endpoint (undefined: each is hashed when asked for, and not kept). */
  readonly #names: Map<string, string> | undefined;
  /** Single KUBE-SEP chains by name (undefined: only whole blocks are kept). */
  readonly #endpointChains: Map<string, C> | undefined;
  /**
   * Policy chains kept, oldest first, at most KEPT_VARIANTS of each name: a list, not a Map by
   * name, as a port has one or two (KUBE-SVC, KUBE-SVL) and a big cluster keeps this for each of
   * its 12k+ ports (a Map is some 200 bytes even when it holds one entry).
   */
  #policyChains: readonly { readonly endpoints: readonly EndpointInfo[]; readonly masquerade: boolean; readonly chain: C }[] = [];

  constructor(names: Map<string, string> | undefined, keepEndpointChains: boolean) {
    this.#names = names;
    this.#endpointChains = keepEndpointChains ? new Map() : undefined;
  }

  endpointChainName(spn: string, protocol: Protocol, endpoint: string): string {
    const names = this.#names;
    if (names === undefined) return endpointChainName(spn, protocol, endpoint);
    let name = names.get(endpoint);
    if (name === undefined) {
      name = endpointChainName(spn, protocol, endpoint);
      names.set(endpoint, name);
    }
    return name;
  }

  get keepsEndpointChains(): boolean {
    return this.#endpointChains !== undefined;
  }

  endpointChain(name: string): C | undefined {
    return this.#endpointChains?.get(name);
  }

  keepEndpointChain(chain: C): void {
    this.#endpointChains?.set(chain.name, chain);
  }

  policyChain(name: string, endpoints: readonly EndpointInfo[], masquerade: boolean): C | undefined {
    const kept = this.#policyChains;
    for (let i = 0; i < kept.length; i++) {
      const c = kept[i]!;
      if (c.chain.name === name && c.masquerade === masquerade && sameEndpoints(c.endpoints, endpoints)) return c.chain;
    }
    return undefined;
  }

  keepPolicyChain(chain: C, endpoints: readonly EndpointInfo[], masquerade: boolean): void {
    // A policy chain over a node's own local endpoints is that node's alone: keep only a few
    // (enough for the zones of a topology-aware service).
    const name = chain.name;
    let kept = this.#policyChains;
    let named = 0;
    for (let i = 0; i < kept.length; i++) if (kept[i]!.chain.name === name) named++;
    if (named >= KEPT_VARIANTS) {
      const oldest = kept.findIndex((c) => c.chain.name === name);
      kept = kept.slice(0, oldest).concat(kept.slice(oldest + 1));
    }
    // concat, not a spread: a list made by a spread keeps spare room, and one is kept per port.
    this.#policyChains = kept.concat([{ endpoints, masquerade, chain }]);
  }

  /** Whole KUBE-SEP blocks; the one the last takeEndpointChains gave is read by the fragment's writer. */
  readonly blocks = new EndpointBlocks<B>(KEPT_VARIANTS);

  takeEndpointChains(endpoints: readonly EndpointInfo[]): boolean {
    return this.blocks.take(endpoints);
  }
}
