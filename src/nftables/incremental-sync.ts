/**
 * nftables syncs over time, as kube-proxy's nftables proxier makes them (pkg/proxy/nftables/
 * proxier.go, syncProxyRules with its nftElementStorage):
 *
 * - A full sync (at start, after a failure, after the node's labels changed, periodically)
 *   starts with setupNFTables: the table, the base chains (deleted and re-created once, on the
 *   writer's first sync, so a changed priority applies), every fixed chain added and flushed
 *   with its rules, the sets and maps, nodeport-ips refilled (or deleted when node ports match
 *   every address), and the six element stores flushed. Then every service port's chains, each
 *   added and flushed and written, and every element.
 * - A partial sync writes only the chains of Services whose Service or endpoints changed
 *   (added, flushed, rewritten); every service port's elements are "ensured" against what the
 *   element stores hold: a new key is added, a key with another value is deleted and re-added,
 *   and keys no service port ensured are deleted at the end. Nothing else is sent.
 * - Either way, service chains (names with "/") in the kernel that no service port uses any more
 *   are flushed and remembered; a later sync deletes those flushed more than a second before,
 *   in a transaction of its own ahead of the main one (before kernel 6.2 a chain stays "in use"
 *   for a moment after the last map element pointing to it goes). Affinity sets no endpoint
 *   uses are deleted at once.
 *
 * What a service port writes is kept per service port object (the proxier view keeps the object
 * of an unchanged service port), so a partial sync renders only what changed; a full sync
 * renders everything again.
 */
import { policyFacts } from '../topology/policy-facts.js';
import type { ProxierServicePort, ProxierState } from '../tracker/types.js';
import type { NftablesCompileOptions } from './compile.js';
import { BASE_CHAINS, writeFixedRules } from './fixed.js';
import { AFFINITY_PREFIX, CLUSTER_IPS_SET, FIREWALL_IPS_MAP, KUBE_PROXY_TABLE, NODEPORT_IPS_SET, NO_ENDPOINT_NODEPORTS_MAP, NO_ENDPOINT_SERVICES_MAP, SERVICE_IPS_MAP, SERVICE_NODEPORTS_MAP, TABLE_COMMENT, isServiceChainName } from './names.js';
import { serviceMapsOf, writeServicePort } from './service-rules.js';
import { createNftSyncContext, type NftSyncContext } from './sync-context.js';
import { createTable } from './table-builder.js';
import type { NftOp, NftSetSpec, NftTransaction } from './transaction.js';
import type { NftChain, NftElement, NftFamily, NftSet, NftTable } from './types.js';

/** kube-proxy's element stores, in the order it cleans them up. */
export const ELEMENT_STORES: readonly string[] = [CLUSTER_IPS_SET, SERVICE_IPS_MAP, FIREWALL_IPS_MAP, NO_ENDPOINT_SERVICES_MAP, NO_ENDPOINT_NODEPORTS_MAP, SERVICE_NODEPORTS_MAP];

/** A stale chain is deleted once it has been flushed for longer than this (ms). */
export const STALE_CHAIN_DELAY_MS = 1000;

export interface NftSyncInput {
  readonly state: ProxierState;
  readonly full: boolean;
  /** Services ("namespace/name") whose Service or endpoints changed since the last sync. */
  readonly updatedServices: ReadonlySet<string>;
  /** When the sync started, ms since the epoch. */
  readonly now: number;
  /** The chains and sets of the table now (knftables' List), after any stale-chain cleanup. */
  readonly existingChains: Iterable<string>;
  readonly existingSets: Iterable<string>;
  readonly options?: NftablesCompileOptions;
}

export interface NftSyncResult {
  readonly tx: NftTransaction;
  /** Service ports whose chains the transaction writes. */
  readonly servicePortsWritten: number;
  readonly staleChainsFlushed: number;
  readonly staleAffinitySetsDeleted: number;
  /** Service ports with a Local policy and no local endpoint (sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
}

/** What one service port writes: its elements per store, its chains, its affinity sets. */
interface Fragment {
  readonly elements: readonly (readonly [string, NftElement])[];
  readonly chains: readonly NftChain[];
  readonly affinitySets: readonly NftSetSpec[];
}

function serviceOf(sp: ProxierServicePort): string {
  return `${sp.info.svcPortName.namespace}/${sp.info.svcPortName.name}`;
}

function valueText(element: NftElement): string {
  return (element.value ?? []).join(' . ');
}

function specOf(set: NftSet): NftSetSpec {
  const { elements: _elements, ...spec } = set;
  return spec;
}

export class NftablesRulesWriter {
  /** kube-proxy's flushed: the base chains were deleted and re-created once. */
  #flushed = false;
  /** nftElementStorage: per store, key → value text, as the kernel holds them after the last sync. */
  readonly #stores = new Map<string, Map<string, string>>(ELEMENT_STORES.map((name) => [name, new Map()]));
  /** Flushed service chains and when they were flushed (ms since the epoch). */
  readonly #staleChains = new Map<string, number>();
  #fragments = new WeakMap<ProxierServicePort, Fragment>();
  #context: { state: ProxierState; ctx: NftSyncContext } | undefined;

  /** Chains flushed as stale and not deleted yet. */
  get staleChains(): ReadonlyMap<string, number> {
    return this.#staleChains;
  }

  /**
   * The transaction that deletes chains stale for more than a second, run before the sync's
   * own; undefined when there are none. They are forgotten either way: if the delete fails, the
   * chains are still there and the sync flushes them and remembers them again.
   */
  staleChainCleanup(family: NftFamily, now: number): NftTransaction | undefined {
    const ops: NftOp[] = [];
    for (const [chain, flushedAt] of this.#staleChains) {
      if (flushedAt >= now - STALE_CHAIN_DELAY_MS) continue;
      ops.push({ verb: 'delete', kind: 'chain', name: chain });
      this.#staleChains.delete(chain);
    }
    return ops.length === 0 ? undefined : { family, table: KUBE_PROXY_TABLE, ops };
  }

  /** The kernel refused the sync's transaction: what was remembered as flushed was not. */
  failed(): void {
    this.#staleChains.clear();
  }

  sync(input: NftSyncInput): NftSyncResult {
    const { state, full } = input;
    const family: NftFamily = state.family === 4 ? 'ip' : 'ip6';
    // A full sync renders everything again (the node, the configuration or the options may differ).
    if (full || this.#context?.state.config !== state.config) this.#fragments = new WeakMap();
    const fixed = createTable(family, KUBE_PROXY_TABLE, TABLE_COMMENT);
    const ctx = createNftSyncContext(state, input.options ?? {}, fixed);
    writeFixedRules(ctx);
    this.#context = { state, ctx };

    const ops: NftOp[] = [];
    if (full) this.#setup(fixed, ops);

    const activeChains = new Set<string>();
    const activeAffinitySets = new Set<string>();
    const ensured = new Map<string, Set<string>>(ELEMENT_STORES.map((name) => [name, new Set()]));
    let written = 0;
    let noLocalInternal = 0;
    let noLocalExternal = 0;
    for (const sp of state.servicePorts) {
      const fragment = this.#fragmentOf(sp, ctx);
      const facts = policyFacts(sp);
      if (facts.hasEndpoints && !facts.hasInternalEndpoints) noLocalInternal++;
      if (facts.hasEndpoints && !facts.hasExternalEndpoints) noLocalExternal++;
      for (const chain of fragment.chains) activeChains.add(chain.name);
      for (const set of fragment.affinitySets) activeAffinitySets.add(set.name);
      const write = full || input.updatedServices.has(serviceOf(sp));
      if (write) {
        written++;
        for (const chain of fragment.chains) ops.push({ verb: 'add', kind: 'chain', name: chain.name }, { verb: 'flush', kind: 'chain', name: chain.name });
        for (const set of fragment.affinitySets) ops.push({ verb: 'add', kind: 'set', set });
      }
      for (const [store, element] of fragment.elements) this.#ensure(store, element, ensured.get(store)!, ops);
      if (write) {
        for (const chain of fragment.chains) for (const rule of chain.rules) ops.push({ verb: 'add', kind: 'rule', chain: chain.name, rule });
      }
    }

    let staleChainsFlushed = 0;
    for (const chain of input.existingChains) {
      if (!isServiceChainName(chain)) continue;
      if (activeChains.has(chain)) {
        this.#staleChains.delete(chain);
      } else {
        ops.push({ verb: 'flush', kind: 'chain', name: chain });
        this.#staleChains.set(chain, input.now);
        staleChainsFlushed++;
      }
    }
    let staleAffinitySetsDeleted = 0;
    for (const set of input.existingSets) {
      if (!set.startsWith(AFFINITY_PREFIX) || activeAffinitySets.has(set)) continue;
      ops.push({ verb: 'delete', kind: 'set', name: set, setKind: 'set' });
      staleAffinitySetsDeleted++;
    }
    for (const store of ELEMENT_STORES) this.#cleanupLeftovers(store, fixed.sets.get(store)!.kind, ensured.get(store)!, ops);

    return {
      tx: { family, table: KUBE_PROXY_TABLE, ops },
      servicePortsWritten: written,
      staleChainsFlushed,
      staleAffinitySetsDeleted,
      noLocalEndpoints: { internal: noLocalInternal, external: noLocalExternal },
    };
  }

  /** setupNFTables, from the fixed part of a compiled table. */
  #setup(fixed: NftTable, ops: NftOp[]): void {
    ops.push({ verb: 'add', kind: 'table', ...(fixed.comment !== undefined ? { comment: fixed.comment } : {}) });
    if (!this.#flushed) {
      for (const { name } of BASE_CHAINS) ops.push({ verb: 'add', kind: 'chain', name }, { verb: 'delete', kind: 'chain', name });
      this.#flushed = true;
    }
    for (const chain of fixed.chains.values()) {
      ops.push({ verb: 'add', kind: 'chain', name: chain.name, ...(chain.comment !== undefined ? { comment: chain.comment } : {}), ...(chain.base !== undefined ? { base: chain.base } : {}) });
      ops.push({ verb: 'flush', kind: 'chain', name: chain.name });
    }
    const nodePortIPs = fixed.sets.get(NODEPORT_IPS_SET);
    for (const set of fixed.sets.values()) ops.push({ verb: 'add', kind: 'set', set: specOf(set) });
    if (nodePortIPs === undefined) {
      // Node ports on every address: "add+delete" makes sure the set is gone, without failing if it never was.
      ops.push({ verb: 'add', kind: 'set', set: { kind: 'set', name: NODEPORT_IPS_SET, type: fixed.family === 'ip' ? 'ipv4_addr' : 'ipv6_addr', comment: 'IPs that accept NodePort traffic' } });
      ops.push({ verb: 'delete', kind: 'set', name: NODEPORT_IPS_SET, setKind: 'set' });
    } else {
      ops.push({ verb: 'flush', kind: 'set', name: NODEPORT_IPS_SET, setKind: 'set' });
      for (const element of nodePortIPs.elements) ops.push({ verb: 'add', kind: 'element', set: NODEPORT_IPS_SET, setKind: 'set', element });
    }
    for (const chain of fixed.chains.values()) for (const rule of chain.rules) ops.push({ verb: 'add', kind: 'rule', chain: chain.name, rule });
    // nftElementStorage.reset: flushed, and known to be empty.
    for (const store of ELEMENT_STORES) {
      ops.push({ verb: 'flush', kind: 'set', name: store, setKind: fixed.sets.get(store)!.kind });
      this.#stores.get(store)!.clear();
    }
  }

  /** ensureElem: add a new key; delete and re-add a key whose value changed; note it as used. */
  #ensure(store: string, element: NftElement, ensured: Set<string>, ops: NftOp[]): void {
    const elements = this.#stores.get(store)!;
    const key = element.key.join(' . ');
    const value = valueText(element);
    const setKind = element.value === undefined ? 'set' : 'map';
    const existing = elements.get(key);
    if (existing === undefined) {
      ops.push({ verb: 'add', kind: 'element', set: store, setKind, element });
      elements.set(key, value);
    } else if (existing !== value) {
      ops.push({ verb: 'delete', kind: 'element', set: store, setKind, element: { key: element.key } }, { verb: 'add', kind: 'element', set: store, setKind, element });
      elements.set(key, value);
    }
    ensured.add(key);
  }

  /** cleanupLeftoverKeys: delete every key no service port ensured this sync. */
  #cleanupLeftovers(store: string, setKind: 'set' | 'map', ensured: ReadonlySet<string>, ops: NftOp[]): void {
    const elements = this.#stores.get(store)!;
    for (const key of [...elements.keys()]) {
      if (ensured.has(key)) continue;
      ops.push({ verb: 'delete', kind: 'element', set: store, setKind, element: { key: key.split(' . ') } });
      elements.delete(key);
    }
  }

  /** What one service port writes, rendered once per service port object. */
  #fragmentOf(sp: ProxierServicePort, ctx: NftSyncContext): Fragment {
    const cached = this.#fragments.get(sp);
    if (cached !== undefined) return cached;
    const scratch = createTable(ctx.table.family, KUBE_PROXY_TABLE);
    const scratchCtx: NftSyncContext = { ...ctx, table: scratch };
    // The stores the service port writes into, and the chains its elements may name.
    for (const [name, set] of ctx.table.sets) scratch.sets.set(name, { ...set, elements: [] });
    writeServicePort(scratchCtx, serviceMapsOf(scratchCtx), sp);
    const elements: (readonly [string, NftElement])[] = [];
    for (const store of ELEMENT_STORES) for (const element of scratch.sets.get(store)!.elements) elements.push([store, element]);
    const affinitySets: NftSetSpec[] = [];
    for (const set of scratch.sets.values()) if (set.name.startsWith(AFFINITY_PREFIX)) affinitySets.push(specOf(set));
    const fragment: Fragment = { elements, chains: [...scratch.chains.values()], affinitySets };
    this.#fragments.set(sp, fragment);
    return fragment;
  }
}
