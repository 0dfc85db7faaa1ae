/**
 * IPVS-mode work shared by the compiles of every node of one cluster: each service port's plan
 * (its ipset entries and the virtual servers on service addresses, compile.ts PortPlan), kept for
 * the next node that holds the same port, or a port with the same endpoints; and the virtual
 * servers themselves, kept for a node whose port differs elsewhere (a local endpoint of an
 * externalTrafficPolicy Local service changes its load-balancer servers, not its ClusterIP one).
 *
 * A node's table is the one compileIpvs writes for it alone (test/cluster/shared-compile.test.ts).
 * Plans and virtual servers are shared between nodes' tables, so they must never change.
 */
import { sameEndpoints } from '../topology/categorize.js';
import type { EndpointInfo, ProxierServicePort, ServicePortInfo } from '../tracker/types.js';
import type { Family } from '../util/ip.js';
import { MAX_BASELINES, PositionCache, keepAsBaseline, nearestBaseline, withLast } from '../util/position-cache.js';
import { SourceRangeCheck } from '../tracker/source-ranges.js';
import { type PlanSums, type PortPlan, type ServerOp, addPlan } from './compile.js';
import { shareServerRendering } from './ipvsadm-format.js';
import type { VirtualServerKind, VirtualServerOrigin } from './table.js';

/** The endpoints a virtual server's real servers come from (real-servers.ts selectEndpoints). */
interface Selected {
  readonly endpoints: readonly EndpointInfo[];
  readonly scope: VirtualServerOrigin['endpointScope'];
}

export class IpvsSharedWork {
  readonly mode = 'ipvs' as const;
  readonly #syncs = new Map<string, PlanCache>();

  /** The plans made under the same sync-wide facts. */
  forSync(family: Family, scheduler: string, gracefulTermination: boolean): PlanCache {
    const key = `${family}\0${scheduler}\0${gracefulTermination}`;
    let cache = this.#syncs.get(key);
    if (cache === undefined) {
      // Draining real servers depend on every endpoint's state: plans are then shared only by identity.
      cache = new PlanCache(!gracefulTermination);
      this.#syncs.set(key, cache);
    }
    return cache;
  }
}

/** A port's plans by the node-dependent source-range bit (false, true). */
type PlanPair = [PortPlan | undefined, PortPlan | undefined];

/**
 * A virtual server kept for other nodes, as the plan op that adds it (its kind, address and
 * endpoint scope are the server's own: one record per server of a big cluster, kept small).
 */
interface KeptServer {
  readonly onlyNodeLocal: boolean;
  readonly endpoints: readonly EndpointInfo[];
  readonly op: ServerOp;
}

/**
 * What is kept of one port for other nodes. The lists are replaced, not grown by push, so each
 * is exactly as long as what it holds: a list grown by push keeps room for 17, and two are kept
 * for each of the 10k+ ports of a big cluster, mostly with one item.
 */
interface InfoWork {
  references: readonly { readonly sp: ProxierServicePort; readonly allowFromNode: boolean; readonly plan: PortPlan }[];
  servers: readonly KeptServer[];
}

const KEPT_VARIANTS = 4;

/** The lists of a port nothing is kept for yet: one each for every port. */
const NO_REFERENCES: InfoWork['references'] = Object.freeze([]);
const NO_SERVERS: InfoWork['servers'] = Object.freeze([]);

/** What makes a port's plan when no node made it before (compile.ts IpvsSync). */
export interface PortPlanMaker {
  /** `loopback`: the port's KUBE-LOOP-BACK entries, as `loopback(sp)` gives them. */
  plan(sp: ProxierServicePort, allowFromNode: boolean, loopback: readonly string[]): PortPlan;
  /** The port's KUBE-LOOP-BACK entries (one per local endpoint): none when it has no local endpoint. */
  loopback(sp: ProxierServicePort): readonly string[];
}

/** A plan made for another view of the port that makes the same plan (a loop: no closure per port). */
function referenceFor(references: InfoWork['references'], sp: ProxierServicePort, allowFromNode: boolean): InfoWork['references'][number] | undefined {
  for (let i = 0; i < references.length; i++) {
    const r = references[i]!;
    if (r.allowFromNode === allowFromNode && sameIpvsInput(r.sp, sp)) return r;
  }
  return undefined;
}

export class PlanCache {
  readonly #positions = new PositionCache<ProxierServicePort, PlanPair>(KEPT_VARIANTS);
  readonly #byInfo = new WeakMap<ServicePortInfo, InfoWork>();
  /** Plans may be shared between ports with the same endpoints (not just the same port object). */
  readonly #byContent: boolean;

  constructor(byContent: boolean) {
    this.#byContent = byContent;
  }

  /**
   * The plan of `sp`, the port at position `index` of the node's servicePorts: one made before
   * for the same port, or for a port with the same endpoints (with this node's own KUBE-LOOP-BACK
   * entries), else `make()`.
   */
  plan(sp: ProxierServicePort, index: number, allowFromNode: boolean, maker: PortPlanMaker): PortPlan {
    const slot = allowFromNode ? 1 : 0;
    const pair = this.#positions.get(index, sp);
    const known = pair?.[slot];
    if (known !== undefined) return known;
    const work = this.#work(sp.info);
    // One walk over the endpoints for both: a port without local endpoints has no loopback entries.
    const loopback = maker.loopback(sp);
    const shareable = loopback.length === 0;
    let plan: PortPlan | undefined;
    if (this.#byContent) {
      const ref = referenceFor(work.references, sp, allowFromNode);
      if (ref !== undefined) plan = ref.plan.loopback.length === 0 && shareable ? ref.plan : { ...ref.plan, loopback };
    }
    if (plan === undefined) {
      plan = maker.plan(sp, allowFromNode, loopback);
      if (this.#byContent && (shareable || work.references.length === 0)) work.references = withLast(work.references, { sp, allowFromNode, plan }, KEPT_VARIANTS);
    }
    const kept: PlanPair = pair ?? [undefined, undefined];
    kept[slot] = plan;
    this.#positions.set(index, sp, kept, shareable);
    return plan;
  }

  /**
   * The op of a virtual server made before for this port, kind, address and endpoints (undefined
   * when plans are shared by identity only): the same op for every node, as its server is.
   */
  server(info: ServicePortInfo, kind: VirtualServerKind, address: string, onlyNodeLocal: boolean, selected: Selected): ServerOp | undefined {
    if (!this.#byContent) return undefined;
    // A loop, not find with a closure: one call per virtual server of the node.
    const servers = this.#work(info).servers;
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i]!;
      const vs = s.op.vs;
      const origin = vs.origin!;
      if (origin.kind === kind && vs.address === address && s.onlyNodeLocal === onlyNodeLocal && origin.endpointScope === selected.scope && sameEndpoints(s.endpoints, selected.endpoints)) return s.op;
    }
    return undefined;
  }

  /** Keep a virtual server compile.ts made (with its origin) for other nodes. */
  keepServer(info: ServicePortInfo, onlyNodeLocal: boolean, selected: Selected, op: ServerOp): void {
    if (!this.#byContent) return;
    const work = this.#work(info);
    // One per address and policy for the view most nodes share, a few more for zones.
    const kept = KEPT_VARIANTS * (1 + info.externalIPs.length + info.loadBalancerVIPs.length);
    work.servers = withLast(work.servers, { onlyNodeLocal, endpoints: selected.endpoints, op }, kept);
    shareServerRendering(op.vs);
  }

  /** Which port (by name) made each virtual server key, and every address with a server on it. */
  readonly #keys = new Map<string, string>();
  readonly #addresses = new Set<string>();
  #claimedTwice = false;

  /**
   * Note which port's plan made each virtual server key, for mayClaimTwice: done only by
   * counting (countIpvs passes every plan it adds up through here), as a compile never asks,
   * and a map entry per virtual server of the cluster is work and memory kept.
   */
  register(plan: PortPlan): PortPlan {
    for (const op of plan.ops) {
      if (op.op !== 'server') continue;
      const owner = this.#keys.get(op.key);
      if (owner !== undefined && owner !== plan.spn) this.#claimedTwice = true;
      this.#keys.set(op.key, plan.spn);
      this.#addresses.add(op.vs.address);
    }
    return plan;
  }

  /**
   * Whether two service ports may claim one virtual server on a node with these node-port
   * addresses: two ports with one service address and port, or a node-port address that is also
   * a service address, among the plans registered (every plan of the node being counted is).
   * Plans then cannot simply be added up (compile.ts countIpvs).
   */
  mayClaimTwice(nodePortAddresses: readonly string[]): boolean {
    return this.#claimedTwice || nodePortAddresses.some((ip) => this.#addresses.has(ip));
  }

  /** The nodes' IPs in loadBalancerSourceRanges, checked once per port and node. */
  readonly sourceRanges = new SourceRangeCheck();

  readonly #baselines: { readonly ports: readonly ProxierServicePort[]; readonly plans: PortPlan[]; readonly sums: PlanSums }[] = [];

  /**
   * The plans' sums over the ports, counted against a baseline node: nodes share most port
   * objects at the same positions, so only the positions where a node's port is another object
   * are looked at (counts do not depend on the node's IP).
   */
  count(ports: readonly ProxierServicePort[], planOf: (sp: ProxierServicePort, index: number) => PortPlan): PlanSums {
    const nearest = nearestBaseline(this.#baselines, ports);
    if (nearest === undefined) {
      const plans = ports.map((sp, i) => planOf(sp, i));
      const sums: PlanSums = { servers: 0, realServers: 0, nodePorts: 0, nodePortRealServers: 0 };
      for (const plan of plans) addPlan(sums, plan, 1);
      if (this.#baselines.length < MAX_BASELINES) this.#baselines.push({ ports: [...ports], plans, sums });
      return { ...sums };
    }
    const { base, changed } = nearest;
    const sums = { ...base.sums };
    const made: PortPlan[] = [];
    for (const i of changed) {
      const plan = planOf(ports[i]!, i);
      addPlan(sums, base.plans[i]!, -1);
      addPlan(sums, plan, 1);
      made.push(plan);
    }
    if (keepAsBaseline(changed, ports.length, this.#baselines.length)) {
      // This node as a baseline: the nearest one's plans but where this node differs.
      const plans = base.plans.slice();
      changed.forEach((i, k) => (plans[i] = made[k]!));
      this.#baselines.push({ ports: [...ports], plans, sums: { ...sums } });
    }
    return sums;
  }

  /**
   * The last port's work, kept for the next call: a port's plan and each of its virtual servers
   * (server, keepServer) ask for the same port's work one after the other, and a weak map
   * lookup per ask was a tenth of the first node's IPVS compile.
   */
  #lastInfo: ServicePortInfo | undefined;
  #lastWork: InfoWork | undefined;

  #work(info: ServicePortInfo): InfoWork {
    if (info === this.#lastInfo) return this.#lastWork!;
    let work = this.#byInfo.get(info);
    if (work === undefined) {
      work = { references: NO_REFERENCES, servers: NO_SERVERS };
      this.#byInfo.set(info, work);
    }
    this.#lastInfo = info;
    this.#lastWork = work;
    return work;
  }
}

/**
 * Whether two views of one port make the same plan but for KUBE-LOOP-BACK: the plan reads the
 * cluster and local endpoints (real servers) and the port; draining servers are left out here
 * (the cache is not by content with gracefulTermination).
 */
function sameIpvsInput(a: ProxierServicePort, b: ProxierServicePort): boolean {
  return a === b || (a.info === b.info
    && sameEndpoints(a.categorized.localEndpoints, b.categorized.localEndpoints)
    && sameEndpoints(a.categorized.clusterEndpoints, b.categorized.clusterEndpoints));
}
