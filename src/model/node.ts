/** v1 Node: name, addresses, labels, pod CIDRs. */
import { child, type FieldReader, type JsonObject, isObject } from './fields.js';
import { readMetadata } from './metadata.js';
import type { Node, NodeAddress } from './types.js';

/** Address types that carry an IP address (the DNS ones carry names). */
export const IP_ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

export function decodeNode(doc: JsonObject, r: FieldReader): Node | undefined {
  const meta = readMetadata(doc, r, 'Node', false);
  if (!meta) return undefined;
  const spec = r.object_(doc, 'spec', '') ?? {};
  const status = r.object_(doc, 'status', '') ?? {};
  const addresses: NodeAddress[] = [];
  r.list(status, 'addresses', 'status').forEach((a, i) => {
    const path = child('status.addresses', i);
    if (!isObject(a)) {
      r.fail('KPSIM_ERR_MODEL_BAD_FIELD', path, 'is not an object');
      return;
    }
    const type = r.string(a, 'type', path, true);
    if (type === undefined) return;
    if (IP_ADDRESS_TYPES.has(type)) {
      const ip = r.ip(a['address'], child(path, 'address'));
      if (ip !== undefined) addresses.push({ type, address: ip });
    } else {
      const address = r.string(a, 'address', path, true);
      if (address !== undefined) addresses.push({ type, address });
    }
  });
  const podCIDRs = r.list(spec, 'podCIDRs', 'spec').map((c, i) => r.cidr(c, child('spec.podCIDRs', i))).filter((c): c is string => c !== undefined);
  const podCIDR = r.string(spec, 'podCIDR', 'spec');
  if (podCIDR !== undefined && podCIDRs.length === 0) {
    const cidr = r.cidr(podCIDR, 'spec.podCIDR');
    if (cidr !== undefined) podCIDRs.push(cidr);
  }
  return { kind: 'Node', origin: { file: r.file, object: r.object }, name: meta.name, labels: meta.labels, addresses, podCIDRs };
}

/** The node's IP addresses (InternalIP first, then ExternalIP), in order. */
export function nodeIPs(node: Node): string[] {
  const internal = node.addresses.filter((a) => a.type === 'InternalIP').map((a) => a.address);
  const external = node.addresses.filter((a) => a.type === 'ExternalIP').map((a) => a.address);
  return [...new Set([...internal, ...external])];
}
