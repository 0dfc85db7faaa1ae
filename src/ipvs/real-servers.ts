/**
 * Which real servers kube-proxy's IPVS proxier gives one virtual server (syncEndpoint in
 * pkg/proxy/ipvs/proxier.go), and in which order the kernel then holds them.
 *
 * - The endpoints come from CategorizeEndpoints: cluster endpoints, or for a "node-local" virtual
 *   server (ClusterIP with internalTrafficPolicy=Local; NodePort, externalIP and LoadBalancer with
 *   externalTrafficPolicy=Local) the local ones, falling back to the cluster endpoints when there
 *   is no local one (kubernetes#97081: pods on the node can still reach the service). Ready
 *   endpoints; serving-terminating ones only when no endpoint is ready (per policy). An endpoint
 *   outside that set is never added.
 * - Each is added with weight 1 and Masq forwarding.
 * - A real server that leaves the set is removed through the graceful termination manager
 *   (graceful_termination.go): deleted at once for UDP and SCTP or when it has no connection,
 *   otherwise set to weight 0 and re-checked every minute until its connections are gone. Weight 0
 *   is therefore history: it needs a real server that was in the kernel's table, with open
 *   connections, before the endpoint left the set. One sync from the objects (what `compile`
 *   shows) never writes one. `gracefulTermination` models the table some time into a rollout
 *   instead (for replays over time): a terminating endpoint that would be in the set were it
 *   ready (local for a node-local server) is taken as one kube-proxy is still draining, at
 *   weight 0, for TCP only.
 * - kube-proxy adds the new dests in Go map order, which is random; kpsim adds them in endpoint
 *   text order. The kernel links each new dest at the FRONT, so the list holds them reversed.
 */
import type { EndpointInfo, ProxierServicePort } from '../tracker/types.js';
import type { Family } from '../util/ip.js';
import { type DeferredDests, type IpvsProtocol, type RealServer, type VirtualServerOrigin, realServer } from './table.js';

export interface RealServerOptions {
  /**
   * Add the terminating endpoints kube-proxy would still be draining some time into a rollout,
   * as weight-0 dests (TCP only). Default false: what one sync from the objects writes.
   */
  gracefulTermination?: boolean;
}

export interface RealServerSelection {
  /** In the kernel's list order (front first). */
  readonly dests: RealServer[];
  readonly scope: VirtualServerOrigin['endpointScope'];
  /** The endpoints taking new connections (weight 1), sorted by endpoint text. */
  readonly endpoints: readonly EndpointInfo[];
}

/** The endpoints syncEndpoint uses for a virtual server, and which set they came from. */
export function selectEndpoints(sp: ProxierServicePort, onlyNodeLocalEndpoints: boolean): { endpoints: readonly EndpointInfo[]; scope: VirtualServerOrigin['endpointScope'] } {
  const { clusterEndpoints, localEndpoints } = sp.categorized;
  if (!onlyNodeLocalEndpoints) return { endpoints: clusterEndpoints ?? [], scope: 'cluster' };
  if (localEndpoints !== undefined && localEndpoints.length > 0) return { endpoints: localEndpoints, scope: 'local' };
  return { endpoints: clusterEndpoints ?? [], scope: 'local-fallback-cluster' };
}

/** kube-proxy's IsRsGracefulTerminationNeeded: only TCP dests wait for their connections. */
export function isGracefulTerminationNeeded(protocol: IpvsProtocol): boolean {
  return protocol === 'TCP';
}

/**
 * The real servers of one sync from the objects (no draining ones), made when first read: each
 * selected endpoint as a fresh dest (weight 1, Masq), the last added in front.
 */
export class PendingDests implements DeferredDests {
  /** The endpoints, in the order they are added (sorted by endpoint text): the list holds them reversed. */
  readonly endpoints: readonly EndpointInfo[];
  readonly family: Family;
  #made: RealServer[] | undefined;

  constructor(endpoints: readonly EndpointInfo[], family: Family) {
    this.endpoints = endpoints;
    this.family = family;
  }

  get length(): number {
    return this.endpoints.length;
  }

  /** Whether made() has been called (its records may have been changed since). */
  get isMade(): boolean {
    return this.#made !== undefined;
  }

  made(): RealServer[] {
    if (this.#made !== undefined) return this.#made;
    const endpoints = this.endpoints;
    const family = this.family;
    const dests = new Array<RealServer>(endpoints.length);
    for (let i = 0, k = endpoints.length - 1; k >= 0; i++, k--) {
      const ep = endpoints[k]!;
      dests[i] = realServer({ ip: ep.ip, port: ep.port, family });
    }
    this.#made = dests;
    return dests;
  }
}

/** What `selectRealServers` gives a virtual server: its dests, made or pending. */
export interface RealServerChoice {
  readonly dests: RealServer[] | PendingDests;
  readonly scope: VirtualServerOrigin['endpointScope'];
}

/**
 * realServersFor, with the dests left pending (PendingDests) when there is no draining one to
 * place among them: every dest is then a fresh one, in the reverse of the endpoints' order.
 */
export function selectRealServers(sp: ProxierServicePort, onlyNodeLocalEndpoints: boolean, protocol: IpvsProtocol, family: Family, opts: RealServerOptions = {}): RealServerChoice {
  if ((opts.gracefulTermination ?? false) && isGracefulTerminationNeeded(protocol)) return realServersFor(sp, onlyNodeLocalEndpoints, protocol, family, opts);
  const { endpoints, scope } = selectEndpoints(sp, onlyNodeLocalEndpoints);
  return { dests: new PendingDests(endpoints, family), scope };
}

export function realServersFor(sp: ProxierServicePort, onlyNodeLocalEndpoints: boolean, protocol: IpvsProtocol, family: Family, opts: RealServerOptions = {}): RealServerSelection {
  const { endpoints, scope } = selectEndpoints(sp, onlyNodeLocalEndpoints);
  const drain = (opts.gracefulTermination ?? false) && isGracefulTerminationNeeded(protocol);
  // The selected endpoints are a filter of sp.endpoints (same objects, same order, sorted by
  // endpoint text), so one walk over sp.endpoints gives the insertion order of both kinds.
  // Reversing it then puts each later dest in front, as the kernel links them.
  const added: RealServer[] = [];
  let next = 0;
  for (const ep of sp.endpoints) {
    if (next < endpoints.length && endpoints[next] === ep) {
      next++;
      added.push(realServer({ ip: ep.ip, port: ep.port, family }));
    } else if (drain && ep.terminating && (scope !== 'local' || ep.isLocal)) {
      added.push(realServer({ ip: ep.ip, port: ep.port, family, weight: 0, quiesced: true, draining: true }));
    }
  }
  if (next !== endpoints.length) throw new Error(`realServersFor: the endpoints of ${sp.info.spn} are not a subsequence of its endpoint list`);
  return { dests: added.reverse(), scope, endpoints };
}

/** Fresh dest records with the same contents, for another virtual server of the same port. */
export function copyDests(dests: readonly RealServer[]): RealServer[] {
  return dests.map((d) => ({ ...d }));
}
