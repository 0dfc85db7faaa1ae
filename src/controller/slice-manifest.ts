/**
 * An EndpointSlice the controller writes, as the API stores it: its generateName, labels and the
 * Service as its controlling owner, then the endpoints (each pod as targetRef, with its uid when
 * known) and ports. An update starts from the stored slice, so what the controller does not
 * manage (annotations, uid, creation time, resourceVersion) stays.
 */
import { type JsonObject, generateNamePrefix, isObject } from '../model/fields.js';
import type { Endpoint, EndpointPort, EndpointSlice } from '../model/types.js';

export interface SliceOwner {
  name: string;
  uid: string;
}

function endpointManifest(endpoint: Endpoint, podUID: (namespace: string, name: string) => string | undefined): JsonObject {
  const conditions: JsonObject = {};
  for (const key of ['ready', 'serving', 'terminating'] as const) if (endpoint.conditions[key] !== undefined) conditions[key] = endpoint.conditions[key]!;
  const out: JsonObject = { addresses: [...endpoint.addresses], conditions };
  if (endpoint.hostname !== undefined) out['hostname'] = endpoint.hostname;
  if (endpoint.targetRef) {
    const { kind, namespace, name } = endpoint.targetRef;
    const uid = namespace !== undefined ? podUID(namespace, name) : undefined;
    out['targetRef'] = { kind, ...(namespace !== undefined ? { namespace } : {}), name, ...(uid !== undefined ? { uid } : {}) };
  }
  if (endpoint.nodeName !== undefined) out['nodeName'] = endpoint.nodeName;
  if (endpoint.zone !== undefined) out['zone'] = endpoint.zone;
  if (endpoint.hints) {
    out['hints'] = {
      ...(endpoint.hints.forZones.length > 0 ? { forZones: endpoint.hints.forZones.map((name) => ({ name })) } : {}),
      ...(endpoint.hints.forNodes.length > 0 ? { forNodes: endpoint.hints.forNodes.map((name) => ({ name })) } : {}),
    };
  }
  return out;
}

function portManifest(port: EndpointPort): JsonObject {
  return { name: port.name, protocol: port.protocol, ...(port.port !== undefined ? { port: port.port } : {}), ...(port.appProtocol !== undefined ? { appProtocol: port.appProtocol } : {}) };
}

/** The slice as the controller writes it; `stored` is the slice as stored, for an update. */
export function endpointSliceManifest(slice: EndpointSlice, owner: SliceOwner, podUID: (namespace: string, name: string) => string | undefined, stored?: JsonObject): JsonObject {
  const base: JsonObject = stored ? structuredClone(stored) : { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice' };
  const meta = isObject(base['metadata']) ? base['metadata'] : {};
  base['metadata'] = {
    ...meta,
    name: slice.name,
    namespace: slice.namespace,
    generateName: generateNamePrefix(owner.name),
    labels: { ...slice.labels },
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true }],
  };
  base['addressType'] = slice.addressType;
  base['endpoints'] = slice.endpoints.map((e) => endpointManifest(e, podUID));
  base['ports'] = slice.ports.map(portManifest);
  return base;
}
