/**
 * Every node's point of view of one cluster, with the work that does not depend on the node done
 * once: per IP family, the service ports with their endpoints and categorisation as a node
 * without local endpoints sees them (tracker/proxier-state.ts FamilyServicePorts). A node's
 * ProxierStates are then that, plus its own endpoints, zone and addresses: the same states
 * `buildProxierStates(cluster, node)` gives, made in time proportional to what the node changes.
 *
 * The modes share their own node-independent work the same way (ModeDriver.shareAcrossNodes):
 * a ClusterView keeps one shared work object per mode and compile options.
 */
import type { Cluster, Node } from '../model/types.js';
import type { CompiledNode, ModeCompileOptions, RulesMode, SharedModeWork } from '../node/mode-driver.js';
import { modeDriver } from '../node/modes.js';
import {
  type FamilyServicePorts,
  type NodeOverlayOptions,
  type ResolvedNode,
  buildFamilyServicePorts,
  familiesInUse,
  proxierStateOn,
  resolveNode,
  servicesPerFamily,
} from '../tracker/proxier-state.js';
import type { ProxierState } from '../tracker/types.js';
import { nodeIPs } from '../model/node.js';
import { type Family, parseCIDR } from '../util/ip.js';
import { mapSmallestFirst } from '../util/smallest-first.js';
import { HealthChecks } from './health-check.js';

/** Service port positions by what a packet is addressed to (ClusterView.positionsFor). */
interface PortIndex {
  readonly byAddress: Map<string | number, number[]>;
  readonly byNodePort: Map<string | number, number[]>;
  readonly byHealthCheckNodePort: Map<string | number, number[]>;
}

export interface NodeStatesOptions extends NodeOverlayOptions {
  /** Only this family (default: every family the node uses). */
  family?: Family;
}

export class ClusterView {
  readonly cluster: Cluster;
  /**
   * Services with a ClusterIP of each family (its keys are the services' families): a family's
   * states are built smallest first.
   */
  readonly #servicesPerFamily: ReadonlyMap<Family, number>;
  readonly #familyPorts = new Map<Family, FamilyServicePorts>();
  readonly #nodesByName: ReadonlyMap<string, Node>;
  readonly #shared = new Map<string, SharedModeWork>();

  /** The cluster must not change while the view is used: the view keeps what it worked out. */
  constructor(cluster: Cluster) {
    this.cluster = cluster;
    this.#servicesPerFamily = servicesPerFamily(cluster);
    this.#nodesByName = new Map(cluster.nodes.map((n) => [n.name, n]));
  }

  /** The Node objects, in input order. */
  get nodes(): readonly Node[] {
    return this.cluster.nodes;
  }

  nodeObject(name: string): Node | undefined {
    return this.#nodesByName.get(name);
  }

  readonly #resolved = new Map<string, ResolvedNode>();

  /** A node's name and addresses, as `--node NAME` resolves them. */
  resolve(name: string): ResolvedNode {
    let node = this.#resolved.get(name);
    if (node === undefined) {
      const object = this.#nodesByName.get(name);
      // resolveNode looks the name up among every node: hand it the one node instead.
      node = resolveNode(object !== undefined ? { ...this.cluster, nodes: [object] } : this.cluster, { node: name });
      this.#resolved.set(name, node);
    }
    return node;
  }

  /** The node kpsim takes without --node: the config's hostnameOverride, else the first Node. */
  resolveDefault(): ResolvedNode {
    return resolveNode(this.cluster);
  }

  /** The service ports every node of this family shares (built on first use). */
  familyPorts(family: Family): FamilyServicePorts {
    let shared = this.#familyPorts.get(family);
    if (shared === undefined) {
      shared = buildFamilyServicePorts(this.cluster, family);
      this.#familyPorts.set(family, shared);
    }
    return shared;
  }

  /** The positions in the family's servicePorts of the ports with an endpoint on the node. */
  positionsOnNode(family: Family, nodeName: string): readonly number[] {
    return this.familyPorts(family).portsByNode.get(nodeName) ?? [];
  }

  readonly #portIndex = new Map<Family, PortIndex>();

  /**
   * The positions in the family's servicePorts of the ports a packet to address:port may concern:
   * those with the address as ClusterIP, external IP or load-balancer IP, and those with the
   * port as node port or health check node port; in order. A packet's trace looks at these
   * instead of every port of the cluster.
   */
  positionsFor(family: Family, address: string, port: number): readonly number[] {
    let index = this.#portIndex.get(family);
    if (index === undefined) {
      index = { byAddress: new Map(), byNodePort: new Map(), byHealthCheckNodePort: new Map() };
      const add = (map: Map<string | number, number[]>, k: string | number, i: number): void => {
        const list = map.get(k);
        if (list === undefined) map.set(k, [i]);
        else if (list[list.length - 1] !== i) list.push(i);
      };
      const { byAddress, byNodePort, byHealthCheckNodePort } = index;
      this.familyPorts(family).servicePorts.forEach(({ info }, i) => {
        add(byAddress, info.clusterIP, i);
        for (const ip of info.externalIPs) add(byAddress, ip, i);
        for (const ip of info.loadBalancerVIPs) add(byAddress, ip, i);
        if (info.nodePort !== 0) add(byNodePort, info.nodePort, i);
        if (info.healthCheckNodePort !== 0) add(byHealthCheckNodePort, info.healthCheckNodePort, i);
      });
      this.#portIndex.set(family, index);
    }
    const lists = [index.byAddress.get(address), index.byNodePort.get(port), index.byHealthCheckNodePort.get(port)].filter((l) => l !== undefined);
    if (lists.length === 1) return lists[0]!;
    return [...new Set(lists.flat())].sort((a, b) => a - b);
  }

  readonly #localPolicyPositions = new Map<Family, number[]>();

  /** The positions of the ports that use local endpoints (externalTrafficPolicy or internalTrafficPolicy Local). */
  localPolicyPositions(family: Family): readonly number[] {
    let positions = this.#localPolicyPositions.get(family);
    if (positions === undefined) {
      positions = [];
      this.familyPorts(family).servicePorts.forEach((sp, i) => {
        if (sp.info.usesLocalEndpoints) positions!.push(i);
      });
      this.#localPolicyPositions.set(family, positions);
    }
    return positions;
  }

  readonly #families = new WeakMap<ResolvedNode, Family[]>();

  familiesOf(node: ResolvedNode): Family[] {
    let families = this.#families.get(node);
    if (families === undefined) {
      families = familiesInUse(this.cluster, node, this.#servicesPerFamily.keys());
      this.#families.set(node, families);
    }
    return families;
  }

  /**
   * The node's ProxierStates, one per family in use, IPv4 first (what buildProxierStates gives),
   * built smallest family first (util/smallest-first.ts says why).
   */
  statesOf(node: ResolvedNode, opts: NodeStatesOptions = {}): ProxierState[] {
    const overlay: NodeOverlayOptions = opts.only !== undefined ? { only: opts.only } : {};
    const families = this.familiesOf(node).filter((f) => opts.family === undefined || f === opts.family);
    return mapSmallestFirst(families, (family) => this.#servicesPerFamily.get(family) ?? 0, (family) => proxierStateOn(this.familyPorts(family), this.cluster, node, overlay));
  }

  /**
   * The mode's work shared across this cluster's nodes for these options (undefined when the
   * mode shares none: each node is then compiled on its own).
   */
  sharedWork(mode: RulesMode, opts: ModeCompileOptions = {}): SharedModeWork | undefined {
    const driver = modeDriver(mode);
    if (driver.shareAcrossNodes === undefined) return undefined;
    const { shared: _shared, onlyServicePorts: _only, servicePortPositions: _positions, ...keyed } = opts;
    const key = `${mode}\0${JSON.stringify(keyed, Object.keys(keyed).sort())}`;
    let work = this.#shared.get(key);
    if (work === undefined) {
      work = driver.shareAcrossNodes(opts);
      this.#shared.set(key, work);
    }
    return work;
  }

  #endpointNodes: Map<string, string> | undefined;
  #nodesByAddress: Map<string, Node> | undefined;
  /** Pod CIDRs by prefix length, then network address: the node of each. */
  #podCIDRs: Map<number, Map<string, string>> | undefined;
  #healthChecks: HealthChecks | undefined;

  /** Every node's health check answers (worked out once per service). */
  get healthChecks(): HealthChecks {
    return (this.#healthChecks ??= new HealthChecks(this.cluster));
  }

  /**
   * The node an endpoint address runs on, from its EndpointSlices' nodeName (the first slice
   * that names one), or undefined.
   */
  endpointNode(ip: string): string | undefined {
    if (this.#endpointNodes === undefined) {
      this.#endpointNodes = new Map();
      for (const slice of this.cluster.endpointSlices) {
        for (const ep of slice.endpoints) {
          const address = ep.addresses[0];
          if (address !== undefined && ep.nodeName !== undefined && !this.#endpointNodes.has(address)) this.#endpointNodes.set(address, ep.nodeName);
        }
      }
    }
    return this.#endpointNodes.get(ip);
  }

  /** The Node with this address (InternalIP or ExternalIP). */
  nodeWithAddress(ip: string): Node | undefined {
    if (this.#nodesByAddress === undefined) {
      this.#nodesByAddress = new Map();
      for (const node of this.cluster.nodes) for (const a of nodeIPs(node)) if (!this.#nodesByAddress.has(a)) this.#nodesByAddress.set(a, node);
    }
    return this.#nodesByAddress.get(ip);
  }

  /**
   * The node a pod address lives on, with flat pod routing: an endpoint's nodeName, else the
   * node whose podCIDR holds the address.
   */
  podNode(ip: string): string | undefined {
    const named = this.endpointNode(ip);
    if (named !== undefined) return named;
    if (this.#podCIDRs === undefined) {
      this.#podCIDRs = new Map();
      for (const node of this.cluster.nodes) {
        for (const text of node.podCIDRs) {
          const cidr = parseCIDR(text);
          if (cidr === undefined) continue;
          let byNetwork = this.#podCIDRs.get(cidr.prefixLength);
          if (byNetwork === undefined) this.#podCIDRs.set(cidr.prefixLength, (byNetwork = new Map()));
          if (!byNetwork.has(cidr.network)) byNetwork.set(cidr.network, node.name);
        }
      }
    }
    // A cluster's pod CIDRs come in one or two sizes: look the address's network up in each.
    for (const [prefix, byNetwork] of this.#podCIDRs) {
      const network = parseCIDR(`${ip}/${prefix}`)?.network;
      const node = network !== undefined ? byNetwork.get(network) : undefined;
      if (node !== undefined) return node;
    }
    return undefined;
  }

  /** One node compiled in `mode`, reusing what earlier nodes of this view compiled. */
  compile(mode: RulesMode, node: ResolvedNode, opts: ModeCompileOptions & NodeStatesOptions = {}): CompiledNode {
    const { family, only, ...compileOptions } = opts;
    const states = this.statesOf(node, { ...(family !== undefined ? { family } : {}), ...(only !== undefined ? { only } : {}) });
    const shared = this.sharedWork(mode, compileOptions);
    return modeDriver(mode).compile(node, states, {
      ...compileOptions,
      ...(shared !== undefined ? { shared } : {}),
      ...(only !== undefined ? { onlyServicePorts: only } : {}),
    });
  }
}
