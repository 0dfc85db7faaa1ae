/**
 * What a node's kube-proxy answers on a service's health check node port, as its health check
 * server gives it (pkg/proxy/healthcheck/service_health.go): every Service of type LoadBalancer
 * with externalTrafficPolicy Local gets a healthCheckNodePort; kube-proxy serves on it, for that
 * service, the number of its *ready* endpoints on this node (distinct IPs over all its ports:
 * EndpointsMap.LocalReadyEndpoints; a node with only terminating endpoints fails the check, so
 * balancers drain it), status 200 when that number is above zero and kube-proxy itself is
 * healthy, else 503, and this JSON body:
 *
 *   {
 *   	"service": {
 *   		"namespace": "ns",
 *   		"name": "web"
 *   	},
 *   	"localEndpoints": 1,
 *   	"serviceProxyHealthy": true
 *   }
 *
 * Each family's proxier runs its own health check server on the same port; for a dual-stack
 * service whichever binds the port first answers. kpsim takes the service's primary family. The
 * simulated kube-proxy is always healthy (it has just synced).
 */
import type { Cluster, EndpointSlice, Service } from '../model/types.js';
import { ipFamily } from '../util/ip.js';

export interface HealthCheckAnswer {
  /** "namespace/name". */
  readonly service: string;
  /** The service's healthCheckNodePort. */
  readonly port: number;
  readonly status: 200 | 503;
  /** Distinct ready endpoint IPs of the service on the node (of the answering family). */
  readonly localEndpoints: number;
  /** The response body, byte for byte. */
  readonly body: string;
}

/** The body kube-proxy writes (tabs, no trailing newline). */
export function healthCheckBody(namespace: string, name: string, localEndpoints: number, proxyHealthy = true): string {
  return `{\n\t"service": {\n\t\t"namespace": ${goQuote(namespace)},\n\t\t"name": ${goQuote(name)}\n\t},\n\t"localEndpoints": ${localEndpoints},\n\t"serviceProxyHealthy": ${proxyHealthy}\n}`;
}

/** Go's %q of a Kubernetes name (letters, digits, '-', '.'): the same as JSON's quoting. */
function goQuote(text: string): string {
  return JSON.stringify(text);
}

/** Whether kube-proxy runs a health check server for the service (NeedsHealthCheck and a port allocated). */
export function hasHealthCheck(svc: Service): boolean {
  return svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local' && svc.healthCheckNodePort !== 0 && !svc.headless && svc.clusterIPs.length > 0;
}

/** Every node's answer for every service with a health check, worked out once per service. */
export class HealthChecks {
  readonly #cluster: Cluster;
  /** Per service (namespace/name): ready endpoint IPs of its primary family, by node. */
  readonly #readyByNode = new Map<string, Map<string, Set<string>>>();
  readonly #services: readonly Service[];

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
    this.#services = cluster.services.filter(hasHealthCheck);
  }

  /** The services kube-proxy serves a health check for, in input order. */
  get services(): readonly Service[] {
    return this.#services;
  }

  /** The status `node` answers for `svc` (undefined when the service has no health check). */
  status(svc: Service, node: string): 200 | 503 | undefined {
    if (!hasHealthCheck(svc)) return undefined;
    return (this.#readyIPs(svc).get(node)?.size ?? 0) > 0 ? 200 : 503;
  }

  /** What `node` answers for `svc` (undefined when the service has no health check). */
  answer(svc: Service, node: string): HealthCheckAnswer | undefined {
    if (!hasHealthCheck(svc)) return undefined;
    const local = this.#readyIPs(svc).get(node)?.size ?? 0;
    return {
      service: `${svc.namespace}/${svc.name}`,
      port: svc.healthCheckNodePort,
      status: local > 0 ? 200 : 503,
      localEndpoints: local,
      body: healthCheckBody(svc.namespace, svc.name, local),
    };
  }

  #readyIPs(svc: Service): Map<string, Set<string>> {
    const key = `${svc.namespace}/${svc.name}`;
    let byNode = this.#readyByNode.get(key);
    if (byNode !== undefined) return byNode;
    byNode = new Map();
    const addressType = ipFamily(svc.clusterIPs[0]!) === 6 ? 'IPv6' : 'IPv4';
    for (const slice of this.#slicesOf(key)) {
      if (slice.addressType !== addressType) continue;
      // kube-proxy keeps a slice's endpoints only under ports with a number.
      if (!slice.ports.some((p) => p.port !== undefined && p.port !== 0)) continue;
      for (const ep of slice.endpoints) {
        if (ep.nodeName === undefined || !(ep.conditions.ready ?? true)) continue;
        let ips = byNode.get(ep.nodeName);
        if (ips === undefined) byNode.set(ep.nodeName, (ips = new Set()));
        ips.add(ep.addresses[0]!);
      }
    }
    this.#readyByNode.set(key, byNode);
    return byNode;
  }

  #slicesByService: Map<string, EndpointSlice[]> | undefined;

  #slicesOf(service: string): readonly EndpointSlice[] {
    if (this.#slicesByService === undefined) {
      this.#slicesByService = new Map();
      for (const slice of this.#cluster.endpointSlices) {
        const key = `${slice.namespace}/${slice.serviceName}`;
        const list = this.#slicesByService.get(key);
        if (list === undefined) this.#slicesByService.set(key, [slice]);
        else list.push(slice);
      }
    }
    return this.#slicesByService.get(service) ?? [];
  }
}
