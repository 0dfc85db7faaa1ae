/**
 * One pod as one endpoint of one Service, as the EndpointSlice controller turns it
 * (staging/src/k8s.io/endpointslice/utils.go podToEndpoint, getEndpointPorts, FindPort,
 * getAddressTypesForService; util/controller_utils.go ShouldPodBeInEndpoints, ShouldSetHostname).
 */
import { ZONE_LABEL } from '../model/node.js';
import type { Endpoint, EndpointPort, EndpointSlice, Node, Pod, Service, ServicePort } from '../model/types.js';
import { ipFamily } from '../util/ip.js';

export type AddressType = Exclude<EndpointSlice['addressType'], 'FQDN'>;

/**
 * A pod is listed when it is not done (phase Succeeded or Failed) and has an address;
 * terminating pods are listed too (the controller always passes includeTerminating true now),
 * with their terminating condition set.
 */
export function shouldPodBeInEndpoints(pod: Pod, includeTerminating = true): boolean {
  if (pod.phase === 'Succeeded' || pod.phase === 'Failed') return false;
  if (pod.podIPs.length === 0) return false;
  return includeTerminating || !pod.terminating;
}

/**
 * ready / serving / terminating from the pod's Ready condition and deletion: serving is the Ready
 * condition, ready is serving and not terminating (or always, with publishNotReadyAddresses).
 */
export function podToEndpoint(pod: Pod, node: Node | undefined, service: Service, addressType: AddressType): Endpoint {
  const serving = pod.ready;
  const terminating = pod.terminating;
  // For compatibility, ready is never true for a terminating pod unless publishNotReadyAddresses is set.
  const ready = (service.publishNotReadyAddresses ?? false) || (serving && !terminating);
  const endpoint: Endpoint = {
    addresses: endpointAddresses(pod, addressType),
    conditions: { ready, serving, terminating },
    targetRef: { kind: 'Pod', namespace: pod.namespace, name: pod.name },
  };
  if (pod.spec.nodeName !== '') endpoint.nodeName = pod.spec.nodeName;
  const zone = node?.labels[ZONE_LABEL];
  if (zone !== undefined && zone !== '') endpoint.zone = zone;
  if (shouldSetHostname(pod, service)) endpoint.hostname = pod.spec.hostname;
  return endpoint;
}

/** The pod's addresses of the slice's family, in status.podIPs order (normalised: only IPv6 text has a colon). */
function endpointAddresses(pod: Pod, addressType: AddressType): string[] {
  const v6 = addressType === 'IPv6';
  return pod.podIPs.filter((ip) => ip.includes(':') === v6);
}

/** A pod's hostname goes into the endpoint when its subdomain names this Service (a StatefulSet's pods and its headless Service). */
export function shouldSetHostname(pod: Pod, service: Service): boolean {
  return pod.spec.hostname !== '' && pod.spec.subdomain === service.name && service.namespace === pod.namespace;
}

/**
 * The slice ports for this pod: one per Service port whose target the pod has. A port the pod
 * lacks (a named targetPort none of its containers declares for that protocol) is left out, so
 * the pod lands in a slice without it: kube-proxy then has no endpoint there for this pod.
 */
export function endpointPorts(service: Service, pod: Pod): EndpointPort[] {
  const ports: EndpointPort[] = [];
  // A headless Service may have no ports at all.
  if (service.ports.length === 0 && service.headless) return ports;
  for (const servicePort of service.ports) {
    const port = findPort(pod, servicePort);
    if (port === undefined) continue;
    const endpointPort: EndpointPort = { name: servicePort.name, protocol: servicePort.protocol, port };
    if (servicePort.appProtocol !== undefined) endpointPort.appProtocol = servicePort.appProtocol;
    ports.push(endpointPort);
  }
  return ports;
}

/**
 * FindPort: a number is used as it is; a name is looked up in the containers' ports (then the
 * sidecars'), matching the Service port's protocol too. The API server defaults targetPort to
 * the port when it is not set.
 */
export function findPort(pod: Pod, servicePort: ServicePort): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === 'number') return target;
  return pod.spec.ports.find((p) => p.name === target && p.protocol === servicePort.protocol)?.containerPort;
}

/**
 * The address types a Service gets slices of: its ipFamilies; without them (a manifest the API
 * server has not defaulted), the ClusterIP's family, or both families for a Service with no
 * ClusterIP, as the controller guesses for objects from an old API server.
 */
export function addressTypesForService(service: Service): AddressType[] {
  const types = new Set<AddressType>(service.ipFamilies);
  if (types.size > 0) return [...types];
  const clusterIP = service.clusterIPs[0];
  if (clusterIP !== undefined) return [ipFamily(clusterIP) === 6 ? 'IPv6' : 'IPv4'];
  return ['IPv4', 'IPv6'];
}

/**
 * The key pods are grouped by: pods with the same ports share slices (the controller's
 * PortMapKey, which hashes the sorted ports; kpsim keeps them in Service port order).
 */
export function portMapKey(ports: readonly EndpointPort[]): string {
  let key = '';
  for (const p of ports) key += `${p.name}\0${p.protocol}\0${String(p.port)}\0${p.appProtocol ?? ''}\n`;
  return key;
}
